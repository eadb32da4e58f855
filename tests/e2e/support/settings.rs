//! Settings test helpers: [`TestSettings`] runs the settings service in-process on port 0 against
//! a [`TestAuth`], with typed calls that answer `Result<_, ApiError>`.

use super::{TestAuth, TestDb, with_bearer};
use latchkey_common::config as setting;
use latchkey_common::seal::SealKey;
use latchkey_common::shutdown::Shutdown;
use latchkey_proto::ApiError;
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::settings::v1 as pb;
use latchkey_proto::settings::v1::settings_service_client::SettingsServiceClient;
use latchkey_settings::SettingsConfig;
use latchkey_settings::service::SettingsCore;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// Service clients for settings tests: `deployer` may reveal, `auditor` may read the audit log,
/// `reader` has an unrelated scope.
pub const SETTINGS_CLIENTS: &str = "deployer:deployer-secret-0123456789:settings:reveal;\
auditor:auditor-secret-0123456789:settings:audit;\
reader:reader-secret-0123456789:profile:read";

/// `id:key,…` text for freshly generated master keys with these ids (the first active).
pub fn master_keys_text(ids: &[&str]) -> String {
    ids.iter()
        .map(|id| format!("{id}:{}", SealKey::generate().to_base64().as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

/// A settings config for tests, read by the loader: `db`, port 0, auth at `auth_url`, the given
/// master keys; the table's defaults for everything else.
pub fn settings_config(db: &TestDb, auth_url: &str, keys_text: &str) -> SettingsConfig {
    let loaded = super::config::loaded([
        (setting::DATABASE_URL.env(), db.url.clone()),
        (setting::SETTINGS_LISTEN.env(), "127.0.0.1:0".to_owned()),
        (setting::AUTH_URL.env(), auth_url.to_owned()),
        (setting::ENCRYPTION_KEYS.env(), keys_text.to_owned()),
    ]);
    super::config::valid("settings", SettingsConfig::from_config(&loaded))
}

/// Starts auth on `db` with [`SETTINGS_CLIENTS`] and, when given, a settings URL to purge through.
pub async fn spawn_auth(db: &TestDb, settings_url: Option<String>) -> TestAuth {
    let mut config = super::auth_config(db);
    config.clients =
        latchkey_auth::config::parse_clients(SETTINGS_CLIENTS, &mut Default::default());
    config.settings_url = settings_url;
    TestAuth::spawn_with(config).await
}

/// A client-credentials token for one of [`SETTINGS_CLIENTS`].
pub async fn service_token(auth: &TestAuth, client_id: &str) -> String {
    let secret = SETTINGS_CLIENTS
        .split(';')
        .find_map(|entry| {
            let mut parts = entry.split(':');
            (parts.next() == Some(client_id)).then(|| parts.next().unwrap().to_owned())
        })
        .expect("known test client");
    auth.client()
        .await
        .issue_service_token(auth_pb::IssueServiceTokenRequest {
            client_id: client_id.into(),
            client_secret: secret,
            scopes: vec![],
        })
        .await
        .expect("service token")
        .into_inner()
        .token
        .unwrap()
        .access_token
}

/// A running settings service.
pub struct TestSettings {
    pub addr: SocketAddr,
    pub config: SettingsConfig,
    pub core: Arc<SettingsCore>,
    pub shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestSettings {
    /// Starts settings on `db`, verifying against `auth`, with one fresh master key `k1`.
    pub async fn spawn(db: &TestDb, auth: &TestAuth) -> TestSettings {
        Self::spawn_with(
            settings_config(db, &auth.url(), &master_keys_text(&["k1"])),
            auth,
        )
        .await
    }

    /// Starts settings with a given config.
    pub async fn spawn_with(config: SettingsConfig, auth: &TestAuth) -> TestSettings {
        let listener = Self::reserve().await;
        Self::spawn_on(config, listener, auth).await
    }

    /// Binds a listener first, so auth can be told settings' address before settings starts.
    pub async fn reserve() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").await.expect("bind")
    }

    /// Starts settings on an already bound listener.
    pub async fn spawn_on(
        config: SettingsConfig,
        listener: TcpListener,
        auth: &TestAuth,
    ) -> TestSettings {
        super::init_test_logging();
        let app = latchkey_settings::build_on(&config, auth.clock.clone(), listener)
            .await
            .expect("settings builds");
        let addr = app.local_addr();
        let core = app.core();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        TestSettings {
            addr,
            config,
            core,
            shutdown,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connected client.
    pub async fn client(&self) -> SettingsServiceClient<Channel> {
        SettingsServiceClient::connect(self.url())
            .await
            .expect("connect to settings")
    }

    /// Lists the token's settings.
    pub async fn list(&self, token: &str) -> Result<Vec<pb::MaskedSetting>, ApiError> {
        self.client()
            .await
            .list_settings(with_bearer(pb::ListSettingsRequest {}, token))
            .await
            .map(|r| r.into_inner().settings)
            .map_err(|s| ApiError::from_status(&s))
    }

    /// Merges `(name, Some(value) | None)` entries.
    pub async fn patch(
        &self,
        token: &str,
        entries: &[(&str, Option<&str>)],
    ) -> Result<Vec<pb::MaskedSetting>, ApiError> {
        self.client()
            .await
            .patch_settings(with_bearer(
                pb::PatchSettingsRequest {
                    settings: changes(entries),
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().settings)
            .map_err(|s| ApiError::from_status(&s))
    }

    /// Sets one value.
    pub async fn put(&self, token: &str, name: &str, value: &str) {
        self.patch(token, &[(name, Some(value))])
            .await
            .expect("patch succeeds");
    }

    /// Replaces the whole set.
    pub async fn replace(
        &self,
        token: &str,
        entries: &[(&str, Option<&str>)],
    ) -> Result<Vec<pb::MaskedSetting>, ApiError> {
        self.client()
            .await
            .replace_settings(with_bearer(
                pb::ReplaceSettingsRequest {
                    settings: changes(entries),
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().settings)
            .map_err(|s| ApiError::from_status(&s))
    }

    /// Imports a `.env`.
    pub async fn import(
        &self,
        token: &str,
        dotenv: &str,
        mode: pb::ImportMode,
        dry_run: bool,
    ) -> Result<pb::ImportDotenvResponse, ApiError> {
        self.client()
            .await
            .import_dotenv(with_bearer(
                pb::ImportDotenvRequest {
                    dotenv: dotenv.into(),
                    mode: mode as i32,
                    dry_run,
                },
                token,
            ))
            .await
            .map(|r| r.into_inner())
            .map_err(|s| ApiError::from_status(&s))
    }

    /// Deletes one setting.
    pub async fn delete(&self, token: &str, name: &str) -> Result<(), ApiError> {
        self.client()
            .await
            .delete_setting(with_bearer(
                pb::DeleteSettingRequest { name: name.into() },
                token,
            ))
            .await
            .map(|_| ())
            .map_err(|s| ApiError::from_status(&s))
    }

    /// Reveals one value with a service token; `request_id` is sent as `x-request-id`.
    pub async fn reveal(
        &self,
        token: &str,
        user_id: &str,
        name: &str,
        request_id: &str,
    ) -> Result<String, ApiError> {
        let mut request = with_bearer(
            pb::RevealSettingRequest {
                user_id: user_id.into(),
                name: name.into(),
                require_valid: false,
            },
            token,
        );
        request
            .metadata_mut()
            .insert("x-request-id", request_id.parse().unwrap());
        self.client()
            .await
            .reveal_setting(request)
            .await
            .map(|r| r.into_inner().value)
            .map_err(|s| ApiError::from_status(&s))
    }

    /// Reads one page of the reveal audit log.
    pub async fn audit(
        &self,
        token: &str,
        user_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<pb::ListRevealAuditResponse, ApiError> {
        self.client()
            .await
            .list_reveal_audit(with_bearer(
                pb::ListRevealAuditRequest {
                    user_id: user_id.into(),
                    page_size,
                    page_token: page_token.into(),
                },
                token,
            ))
            .await
            .map(|r| r.into_inner())
            .map_err(|s| ApiError::from_status(&s))
    }

    /// Purges a user with a service token.
    pub async fn purge(&self, token: &str, user_id: &str) -> Result<i64, ApiError> {
        self.client()
            .await
            .purge_user(with_bearer(
                pb::PurgeUserRequest {
                    user_id: user_id.into(),
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().settings_deleted)
            .map_err(|s| ApiError::from_status(&s))
    }

    /// Stops the service and waits for it.
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.task
            .await
            .expect("settings task")
            .expect("settings stopped cleanly");
    }
}

fn changes(entries: &[(&str, Option<&str>)]) -> Vec<pb::SettingChange> {
    entries
        .iter()
        .map(|(name, value)| pb::SettingChange {
            name: (*name).to_owned(),
            value: value.map(str::to_owned),
        })
        .collect()
}
