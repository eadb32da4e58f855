//! The `latchkey-client` example, end to end: the deployer (`examples/deployer`) runs against
//! real auth and settings on port 0 and reveals a signed-in user's `FLY_API_TOKEN` — only
//! through `latchkey-client` — and the reveal shows in the audit log read with the same crate.

use crate::support::settings::*;
use crate::support::*;
use latchkey_client::{ClientCredentials, ServiceTokenSource, SettingsClient, VerifyRules};
use latchkey_common::{ExposeSecret, SecretString};
use latchkey_example_deployer::{Deployed, DeployerConfig, FLY_API_TOKEN, Launch};
use latchkey_proto::auth::v1::RevokeUserTokensRequest;
use latchkey_proto::scopes::{SETTINGS_AUDIT, SETTINGS_REVEAL};
use std::sync::{Arc, Mutex};

/// The secret of one of [`SETTINGS_CLIENTS`].
fn credentials(client_id: &str, scope: &str) -> ClientCredentials {
    let secret = SETTINGS_CLIENTS
        .split(';')
        .find_map(|entry| entry.strip_prefix(&format!("{client_id}:")))
        .and_then(|rest| rest.split(':').next())
        .expect("known test client");
    ClientCredentials {
        client_id: client_id.into(),
        client_secret: SecretString::from(secret.to_owned()),
        scopes: vec![scope.into()],
    }
}

/// Starts the deployer on port 0; what its deploy step received is recorded.
async fn spawn_deployer(
    auth: &TestAuth,
    settings: &TestSettings,
) -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let config = DeployerConfig {
        auth_url: auth.url(),
        settings_url: settings.url(),
        rules: VerifyRules {
            issuer: "latchkey".into(),
            audience: "latchkey".into(),
            leeway: 30,
        },
        credentials: credentials("deployer", SETTINGS_REVEAL),
    };
    let launched = Arc::new(Mutex::new(Vec::new()));
    let record = launched.clone();
    let launch: Launch = Arc::new(move |user_id: &str, token: &SecretString| {
        let mut launched = record.lock().unwrap();
        launched.push((user_id.to_owned(), token.expose_secret().to_owned()));
        format!("deploy-{}", launched.len())
    });
    let router = latchkey_example_deployer::router(&config, auth.clock.clone(), launch).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/deploy", listener.local_addr().unwrap());
    tokio::spawn(latchkey_example_deployer::serve(listener, router));
    (url, launched)
}

async fn deploy(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn problem_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

async fn the_deployer_reveals_the_users_fly_token(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = spawn_auth(&db, None).await;
    let settings = TestSettings::spawn(&db, &auth).await;
    let (user_id, token) = auth.user_token("ada").await;
    settings
        .put(&token, FLY_API_TOKEN, "fo1_ada-fly-token")
        .await;
    let (url, launched) = spawn_deployer(&auth, &settings).await;

    let response = deploy(&url, Some(&token)).await;
    assert_eq!(response.status(), 200);
    let deployed: Deployed = response.json().await.unwrap();
    assert_eq!(deployed.user_id, user_id);
    assert_eq!(deployed.deployment, "deploy-1");
    assert_eq!(
        launched.lock().unwrap().as_slice(),
        [(user_id.clone(), "fo1_ada-fly-token".to_owned())]
    );

    // The reveal is audited, and the audit log reads through the same crate.
    let auditor = ServiceTokenSource::new(
        tonic::transport::Endpoint::from_shared(auth.url())
            .unwrap()
            .connect_lazy(),
        credentials("auditor", SETTINGS_AUDIT),
        auth.clock.clone(),
    );
    let audit = SettingsClient::new(
        tonic::transport::Endpoint::from_shared(settings.url())
            .unwrap()
            .connect_lazy(),
        auditor,
    )
    .audit(&user_id, 0, "")
    .await
    .unwrap();
    let entries: Vec<_> = audit
        .entries
        .iter()
        .map(|e| (e.caller.as_str(), e.user_id.as_str(), e.name.as_str()))
        .collect();
    assert_eq!(entries, [("deployer", user_id.as_str(), FLY_API_TOKEN)]);
    settings.stop().await;
    auth.stop().await;
}

async fn the_deployer_refuses_without_a_user_and_after_revocation(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = spawn_auth(&db, None).await;
    let settings = TestSettings::spawn(&db, &auth).await;
    let (_, token) = auth.user_token("bob").await;
    let (url, launched) = spawn_deployer(&auth, &settings).await;

    assert_eq!(
        problem_code(deploy(&url, None).await).await,
        (401, "TOKEN_MISSING".to_owned())
    );
    let service = service_token(&auth, "deployer").await;
    assert_eq!(
        problem_code(deploy(&url, Some(&service)).await).await,
        (403, "SCOPE_MISSING".to_owned())
    );
    assert_eq!(
        problem_code(deploy(&url, Some(&token)).await).await,
        (404, "NOT_FOUND".to_owned()),
        "bob has no FLY_API_TOKEN"
    );
    auth.client()
        .await
        .revoke_user_tokens(with_bearer(RevokeUserTokensRequest {}, &token))
        .await
        .unwrap();
    auth.clock
        .advance(latchkey_example_deployer::REVOCATION_BOUND.as_secs() as i64 + 1);
    assert_eq!(
        problem_code(deploy(&url, Some(&token)).await).await,
        (401, "TOKEN_REVOKED".to_owned())
    );
    assert!(launched.lock().unwrap().is_empty());
    settings.stop().await;
    auth.stop().await;
}

async fn the_service_token_is_reused_and_renewed_before_it_expires(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = spawn_auth(&db, None).await;
    let source = ServiceTokenSource::new(
        tonic::transport::Endpoint::from_shared(auth.url())
            .unwrap()
            .connect_lazy(),
        credentials("deployer", SETTINGS_REVEAL),
        auth.clock.clone(),
    );
    let first = source.token().await.unwrap();
    let again = source.token().await.unwrap();
    assert_eq!(first.expose_secret(), again.expose_secret(), "reused");
    // Test tokens live 900 s; a fifth of that before expiry, a new one is fetched.
    auth.clock.advance(900 - 180 + 1);
    let renewed = source.token().await.unwrap();
    assert_ne!(first.expose_secret(), renewed.expose_secret(), "renewed");
    let principal = auth.authenticate(renewed.expose_secret()).await.unwrap();
    assert_eq!(principal.client_id, "deployer");
    assert_eq!(principal.scopes, [SETTINGS_REVEAL]);
    let wrong = ServiceTokenSource::new(
        tonic::transport::Endpoint::from_shared(auth.url())
            .unwrap()
            .connect_lazy(),
        ClientCredentials {
            client_secret: SecretString::from("not-the-secret".to_owned()),
            ..credentials("deployer", SETTINGS_REVEAL)
        },
        auth.clock.clone(),
    );
    assert_eq!(
        wrong.token().await.unwrap_err().reason,
        latchkey_proto::Reason::ClientCredentialsInvalid
    );
    auth.stop().await;
}

backend_tests!(
    the_deployer_reveals_the_users_fly_token,
    the_deployer_refuses_without_a_user_and_after_revocation,
    the_service_token_is_reused_and_renewed_before_it_expires,
);
