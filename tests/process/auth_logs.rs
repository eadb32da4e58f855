//! Runs auth with every log line captured (DEBUG, all targets) through sync, token issue, service
//! tokens, failed and legacy authentications, refresh tokens (issue, rotation, reuse), and proves no secret or token appears in the logs.

use crate::support::*;
use latchkey_auth::tokens::sign_hs256;
use latchkey_common::SecretString;
use latchkey_proto::auth::v1 as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_reaches_the_logs() {
    let captured = &crate::support::logs::capture().logs;

    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let mut config = auth_config(&db);
    config.rules.legacy = Some(legacy_rules());
    let seal_key_text = config.seal_key.to_base64().to_string();
    let auth = TestAuth::spawn_with(config).await;
    tracing::info!(config = ?auth.config.clients, "clients debug output");

    let (user_id, token) = auth.user_token("logs").await;
    let mut client = auth.client().await;
    let _ = client
        .sync_user(with_sync_secret(
            pb::SyncUserRequest::default(),
            "wrong-secret-guess-123456",
        ))
        .await;
    let service = client
        .issue_service_token(pb::IssueServiceTokenRequest {
            client_id: "deployer".into(),
            client_secret: "deployer-secret-0123456789".into(),
            scopes: vec![],
        })
        .await
        .unwrap()
        .into_inner()
        .token
        .unwrap()
        .access_token;
    let _ = client
        .issue_service_token(pb::IssueServiceTokenRequest {
            client_id: "deployer".into(),
            client_secret: "deployer-wrong-guess".into(),
            scopes: vec![],
        })
        .await;
    auth.authenticate(&service).await.unwrap();
    let mut tampered = token.clone();
    tampered.insert(token.len() - 10, 'x');
    let _ = auth.authenticate(&tampered).await;
    let legacy = sign_hs256(
        &SecretString::from(LEGACY_SECRET.to_owned()),
        &serde_json::json!({"sub": "logs@example.com", "iss": "https://app.example.com", "aud": "latchkey", "exp": 9_999_999_999i64}),
    );
    auth.authenticate(&legacy).await.unwrap();
    let first_refresh = client
        .issue_refresh_token(with_sync_secret(
            pb::IssueRefreshTokenRequest {
                user: Some(pb::issue_refresh_token_request::User::UserId(
                    user_id.clone(),
                )),
            },
            SYNC_SECRET,
        ))
        .await
        .unwrap()
        .into_inner()
        .refresh
        .unwrap()
        .refresh_token;
    let exchange = |token: &str| pb::RefreshAccessTokenRequest {
        refresh_token: token.to_owned(),
    };
    let next_refresh = client
        .refresh_access_token(exchange(&first_refresh))
        .await
        .unwrap()
        .into_inner()
        .refresh
        .unwrap()
        .refresh_token;
    auth.clock.advance(60);
    let reused = client.refresh_access_token(exchange(&first_refresh)).await;
    assert!(reused.is_err(), "a replayed refresh token is refused");
    let _ = client.refresh_access_token(exchange(&next_refresh)).await;
    client
        .revoke_user_tokens(with_bearer(pb::RevokeUserTokensRequest {}, &token))
        .await
        .unwrap();
    let _ = auth.authenticate(&token).await;
    let _ = auth.core.internal_token("settings:purge").map(|t| t.len());
    auth.stop().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("user synced") && logs.contains(&user_id),
        "the capture works: {logs}"
    );
    let secrets = [
        SYNC_SECRET,
        "wrong-secret-guess-123456",
        "deployer-secret-0123456789",
        "deployer-wrong-guess",
        LEGACY_SECRET,
        seal_key_text.as_str(),
        token.as_str(),
        service.as_str(),
        legacy.as_str(),
        tampered.as_str(),
        first_refresh.as_str(),
        next_refresh.as_str(),
    ];
    for secret in secrets {
        // Whole values, and any 16-character window of them (a token's signature alone is a leak).
        assert!(!logs.contains(secret), "a secret appears in the logs");
        let chars: Vec<char> = secret.chars().collect();
        for window in chars.windows(16).step_by(8) {
            let piece: String = window.iter().collect();
            assert!(
                !logs.contains(&piece),
                "part of a secret appears in the logs: {piece}"
            );
        }
    }
}
