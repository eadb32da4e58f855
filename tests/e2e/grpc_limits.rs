//! Limits on auth's and settings' gRPC ports: wrong credentials are limited per peer address
//! (right ones always pass), and calls beyond the concurrency limit are shed at once with
//! RATE_LIMITED and a retry delay — health checks never.

use crate::support::settings::{TestSettings, master_keys_text, settings_config};
use crate::support::{Backend, SYNC_SECRET, TestAuth, TestDb, auth_config, with_sync_secret};
use latchkey_proto::Reason;
use latchkey_proto::auth::v1 as pb;
use std::time::Duration;
use tonic::transport::Channel;

fn sync_request(secret: &str) -> tonic::Request<pb::SyncUserRequest> {
    with_sync_secret(
        pb::SyncUserRequest {
            provider: "github".into(),
            subject: "limited".into(),
            email: "limited@example.com".into(),
            name: String::new(),
            avatar_url: String::new(),
            email_verified: None,
        },
        secret,
    )
}

async fn wrong_credentials_are_limited_per_peer_and_right_ones_pass(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut config = auth_config(&db);
    config.limits.failures_per_minute = 3;
    let auth = TestAuth::spawn_with(config).await;
    let mut client = auth.client().await;
    for _ in 0..3 {
        let refused = client.sync_user(sync_request("wrong")).await;
        assert_eq!(crate::support::reason(refused), Reason::SyncSecretInvalid);
    }
    let limited = client
        .sync_user(sync_request("wrong"))
        .await
        .expect_err("over the limit");
    let error = latchkey_proto::ApiError::from_status(&limited);
    assert_eq!(error.reason, Reason::RateLimited);
    assert_eq!(limited.code(), tonic::Code::ResourceExhausted);
    assert!(
        error.retry_after.is_some_and(|wait| wait > Duration::ZERO),
        "RetryInfo says how long to wait: {error:?}"
    );

    // The right secret is never refused for others' failures.
    let synced = client.sync_user(sync_request(SYNC_SECRET)).await;
    assert!(synced.is_ok(), "{synced:?}");
    // Other credential RPCs share the peer's budget …
    let service = client
        .issue_service_token(pb::IssueServiceTokenRequest {
            client_id: "deployer".into(),
            client_secret: "wrong".into(),
            scopes: vec![],
        })
        .await;
    assert_eq!(crate::support::reason(service), Reason::RateLimited);
    // … and a refusal that is no credential failure is neither counted nor replaced.
    let unknown = client
        .issue_token(with_sync_secret(
            pb::IssueTokenRequest {
                user: Some(pb::issue_token_request::User::UserId("no-such-user".into())),
            },
            SYNC_SECRET,
        ))
        .await;
    assert_ne!(crate::support::reason(unknown), Reason::RateLimited);
    auth.stop().await;
}

backend_tests!(wrong_credentials_are_limited_per_peer_and_right_ones_pass);

/// Holds one call in progress: a reflection stream left open.
async fn open_stream(
    channel: Channel,
) -> tokio::sync::mpsc::Sender<tonic_reflection::pb::v1::ServerReflectionRequest> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    sender
        .send(ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        })
        .await
        .unwrap();
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .expect("the stream opens")
        .into_inner();
    stream.message().await.unwrap().expect("one answer");
    tokio::spawn(async move { while let Ok(Some(_)) = stream.message().await {} });
    sender
}

async fn health(channel: Channel) -> i32 {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health is never shed")
        .into_inner()
        .status
}

/// Expects `call` to be shed while a stream holds the only slot, and served once it is gone.
async fn shed_then_served<F, Fut>(channel: Channel, call: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    let holder = open_stream(channel.clone()).await;
    let shed = call().await.expect_err("beyond the limit");
    let error = latchkey_proto::ApiError::from_status(&shed);
    assert_eq!(error.reason, Reason::RateLimited, "{shed:?}");
    assert_eq!(error.retry_after, Some(Duration::from_secs(1)));
    assert_eq!(
        health(channel.clone()).await,
        1,
        "health checks are never shed"
    );
    drop(holder);
    for attempt in 0.. {
        match call().await {
            Ok(()) => break,
            Err(status) if attempt < 100 => {
                let reason = latchkey_proto::ApiError::from_status(&status).reason;
                assert_eq!(reason, Reason::RateLimited, "{status:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("still shed after the stream closed: {status:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_settings_shed_calls_beyond_their_concurrency_limit() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let mut config = auth_config(&db);
    config.limits.max_concurrent = 1;
    let auth = TestAuth::spawn_with(config).await;
    let channel = Channel::from_shared(auth.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    shed_then_served(channel.clone(), || {
        let mut client =
            latchkey_proto::auth::v1::auth_service_client::AuthServiceClient::new(channel.clone());
        async move { client.get_jwks(pb::GetJwksRequest {}).await.map(|_| ()) }
    })
    .await;

    // Synced before settings starts: settings warms its JWKS from auth as it starts, and auth,
    // with its one slot, would shed whichever of the two calls came second.
    let (_, token) = auth.user_token("shed").await;
    let mut settings_config = settings_config(&db, &auth.url(), &master_keys_text(&["k1"]));
    settings_config.limits.max_concurrent = 1;
    let settings = TestSettings::spawn_with(settings_config, &auth).await;
    let channel = Channel::from_shared(settings.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    shed_then_served(channel.clone(), || {
        let mut client =
            latchkey_proto::settings::v1::settings_service_client::SettingsServiceClient::new(
                channel.clone(),
            );
        let request = crate::support::with_bearer(
            latchkey_proto::settings::v1::ListSettingsRequest {},
            &token,
        );
        async move { client.list_settings(request).await.map(|_| ()) }
    })
    .await;
    settings.stop().await;
    auth.stop().await;
}
