//! Test helpers: a fresh database per test (SQLite file or a new PostgreSQL database), real
//! services started in-process on port 0, typed gRPC clients, and a hand-driven clock.
#![allow(dead_code)]

pub mod config;
pub mod gateway;
pub mod logs;
pub mod process;
pub mod settings;

use latchkey_auth::AuthConfig;
use latchkey_auth::service::AuthCore;
use latchkey_auth::tokens::LegacyRules;
use latchkey_common::clock::ManualClock;
use latchkey_common::config as setting;
use latchkey_common::seal::SealKey;
use latchkey_common::shutdown::Shutdown;
use latchkey_common::{ExposeSecret, SecretString};
use latchkey_proto::auth::v1 as pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::{ApiError, Reason};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `mod sqlite { … }` and `mod postgres { … }` running each named
/// `async fn name(backend: Backend)` on both databases.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::support::Backend::Sqlite).await } )+
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name($crate::support::Backend::Postgres).await } )+
        }
    };
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_base_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A database of its own for one test.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh database. PostgreSQL missing: panics on CI (`CI=true`), otherwise the test is
    /// skipped with a message.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}/latchkey.db?mode=rwc", dir.path().display());
                Some(TestDb {
                    url,
                    backend,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                use sea_orm::ConnectionTrait;
                let base = postgres_base_url();
                let admin = match sea_orm::Database::connect(&base).await {
                    Ok(db) => db,
                    Err(error) => {
                        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
                        assert!(
                            !ci,
                            "CI=true but PostgreSQL at {base} is unreachable: {error}"
                        );
                        eprintln!(
                            "skipping PostgreSQL test: {base} unreachable ({error}); set CI=true to make this fatal"
                        );
                        return None;
                    }
                };
                let name = format!("lk_test_{}", uuid::Uuid::new_v4().simple());
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                let url = match base.rsplit_once('/') {
                    Some((server, _)) => format!("{server}/{name}"),
                    None => panic!("LATCHKEY_TEST_POSTGRES_URL must end in /DATABASE"),
                };
                Some(TestDb {
                    url,
                    backend,
                    _dir: None,
                })
            }
        }
    }
}

/// A test sync secret (fixed so tests can send it).
pub const SYNC_SECRET: &str = "test-sync-secret-7c1f0e9a2b4d4c6e8f00112233445566";
/// A legacy HS256 secret for legacy-mode tests.
pub const LEGACY_SECRET: &str = "legacy-nextauth-secret-0a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// Service clients in the default test config: `deployer` may reveal settings, `reader` has an
/// unrelated scope.
pub const AUTH_CLIENTS: &str = "deployer:deployer-secret-0123456789:settings:reveal;reader:reader-secret-0123456789:profile:read";

/// An auth config for tests, read by the loader: given database, port 0, the test secrets and
/// clients, a fresh seal key, keys refreshed hourly; the table's defaults for everything else.
pub fn auth_config(db: &TestDb) -> AuthConfig {
    let loaded = config::loaded([
        (setting::DATABASE_URL.env(), db.url.clone()),
        (setting::AUTH_LISTEN.env(), "127.0.0.1:0".to_owned()),
        (setting::SYNC_SECRET.env(), SYNC_SECRET.to_owned()),
        (
            setting::SEAL_KEY.env(),
            SealKey::generate().to_base64().to_string(),
        ),
        (setting::SIGNING_KEY_REFRESH_SECS.env(), "3600".to_owned()),
        (setting::SERVICE_CLIENTS.env(), AUTH_CLIENTS.to_owned()),
    ]);
    config::valid("auth", AuthConfig::from_config(&loaded))
}

/// The `aud` legacy tokens carry in tests (the default of LATCHKEY_LEGACY_HS256_AUDIENCE).
pub const LEGACY_AUDIENCE: &str = "latchkey";

/// Legacy rules for a config, the secret read from `NEXTAUTH_SECRET`.
pub fn legacy_rules() -> LegacyRules {
    LegacyRules {
        secret: SecretString::from(LEGACY_SECRET.to_owned()),
        issuer: Some("https://app.example.com".into()),
        audience: LEGACY_AUDIENCE.into(),
        secret_variable: "NEXTAUTH_SECRET".into(),
    }
}

/// A running auth service.
pub struct TestAuth {
    pub addr: SocketAddr,
    pub clock: Arc<ManualClock>,
    pub core: Arc<AuthCore>,
    pub config: AuthConfig,
    pub shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestAuth {
    /// Starts auth on `db` with the default test config.
    pub async fn spawn(db: &TestDb) -> TestAuth {
        Self::spawn_with(auth_config(db)).await
    }

    /// Starts auth with a given config.
    pub async fn spawn_with(config: AuthConfig) -> TestAuth {
        Self::spawn_with_clock(config, ManualClock::starting_now()).await
    }

    /// Starts auth with a given config on a given clock (replicas sharing one clock).
    pub async fn spawn_with_clock(config: AuthConfig, clock: Arc<ManualClock>) -> TestAuth {
        init_test_logging();
        let app = latchkey_auth::build(&config, clock.clone())
            .await
            .expect("auth builds");
        let addr = app.local_addr();
        let core = app.core();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        TestAuth {
            addr,
            clock,
            core,
            config,
            shutdown,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connected client.
    pub async fn client(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::connect(self.url())
            .await
            .expect("connect to auth")
    }

    /// Syncs a user with the right secret; answers the response.
    pub async fn sync_user(&self, subject: &str, email: &str) -> pb::SyncUserResponse {
        let request = with_sync_secret(
            pb::SyncUserRequest {
                provider: "github".into(),
                subject: subject.into(),
                email: email.into(),
                name: "Test User".into(),
                avatar_url: String::new(),
                email_verified: None,
            },
            SYNC_SECRET,
        );
        self.client()
            .await
            .sync_user(request)
            .await
            .expect("sync succeeds")
            .into_inner()
    }

    /// Syncs a user and answers (user id, access token).
    pub async fn user_token(&self, subject: &str) -> (String, String) {
        let response = self
            .sync_user(subject, &format!("{subject}@example.com"))
            .await;
        (
            response.user.unwrap().id,
            response.token.unwrap().access_token,
        )
    }

    /// Revokes every token of the user `token` belongs to, as that user, through auth itself.
    pub async fn revoke_tokens_of(&self, token: &str) {
        self.client()
            .await
            .revoke_user_tokens(with_bearer(pb::RevokeUserTokensRequest {}, token))
            .await
            .expect("revoke");
    }

    /// Authenticates a token; Err carries the catalogue reason.
    pub async fn authenticate(&self, token: &str) -> Result<pb::AuthenticateResponse, ApiError> {
        self.client()
            .await
            .authenticate(pb::AuthenticateRequest {
                token: token.to_owned(),
            })
            .await
            .map(|r| r.into_inner())
            .map_err(|s| ApiError::from_status(&s))
    }

    /// Stops the service and waits for it.
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.task
            .await
            .expect("auth task")
            .expect("auth stopped cleanly");
    }
}

/// A request with the sync secret in metadata.
pub fn with_sync_secret<T>(message: T, secret: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-latchkey-sync-secret", secret.parse().unwrap());
    request
}

/// A request with a bearer token in metadata.
pub fn with_bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// The catalogue reason of a failed call.
pub fn reason<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Reason {
    ApiError::from_status(&result.expect_err("the call should fail")).reason
}

/// Logs only when TEST_LOG is set.
pub fn init_test_logging() {
    if std::env::var("TEST_LOG").is_ok() {
        std::mem::forget(latchkey_common::telemetry::init(false, "latchkey-test"));
    }
}

/// Exposes a secret for building requests.
pub fn expose(secret: &SecretString) -> &str {
    secret.expose_secret()
}

/// The health status (`ServingStatus` as i32) a server reports for `service` ("" for the server).
pub async fn health_status(channel: tonic::transport::Channel, service: &str) -> i32 {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status
}

/// The services a server lists through gRPC reflection (v1).
pub async fn list_services(channel: tonic::transport::Channel) -> Vec<String> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    match stream.message().await.unwrap().unwrap().message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

/// Whether a server's reflection (v1) describes `symbol`, as grpcurl asks before decoding it.
pub async fn reflection_describes(channel: tonic::transport::Channel, symbol: &str) -> bool {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.to_owned())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    matches!(
        stream.message().await.unwrap().unwrap().message_response,
        Some(MessageResponse::FileDescriptorResponse(_))
    )
}

/// Waits until `addr` refuses connections, like the port of a stopped process. A server drops its
/// listener a moment after it stops; until then the kernel still completes handshakes nobody
/// serves, which a caller would see as a hang rather than an outage.
pub async fn until_refused(addr: SocketAddr) {
    for _ in 0..250 {
        match tokio::net::TcpStream::connect(addr).await {
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => return,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    panic!("{addr} still accepts connections 5 s after its server stopped");
}
