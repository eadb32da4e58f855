//! Building and running the settings server: connect and migrate, refuse to start when a stored
//! row's master key is not configured, bind its own listener (port 0 in tests), serve
//! `SettingsService` with the common gRPC kit ([`latchkey_common::grpc`]: health, reflection,
//! limits, graceful stop), re-read master keys from their file.

use crate::config::SettingsConfig;
use crate::grpc::SettingsGrpc;
use crate::keyring::KeyRing;
use crate::schema::source::SchemaSource;
use crate::service::SettingsCore;
use anyhow::Context;
use latchkey_client::{Authenticator, VerifyRules};
use latchkey_common::breaker::DbBreaker;
use latchkey_common::clock::SharedClock;
use latchkey_common::config::AUTH_URL;
use latchkey_common::grpc::{ChannelProfile, CredentialChecks, GrpcServer};
use latchkey_common::hot_reads::HotReads;
use latchkey_common::shutdown::Shutdown;
use latchkey_proto::settings::v1::settings_service_server::SettingsServiceServer;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// Calls that never touch the database, served even while it is down.
const DATABASE_FREE: &[&str] = &["/grpc.health.v1.", "/grpc.reflection."];

/// A built, bound, not yet serving settings server.
pub struct SettingsApp {
    listener: TcpListener,
    core: Arc<SettingsCore>,
    keys: Arc<KeyRing>,
    schema: Arc<SchemaSource>,
    authn: Arc<Authenticator>,
    limits: latchkey_common::grpc_limits::GrpcLimits,
}

/// Connects, migrates (unless told not to), checks master keys, binds `config.listen`.
pub async fn build(config: &SettingsConfig, clock: SharedClock) -> anyhow::Result<SettingsApp> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    build_on(config, clock, listener).await
}

/// Like [`build`], on a listener the caller already bound (so auth can be told settings' address
/// before settings starts, as tests and `latchkey dev` do).
pub async fn build_on(
    config: &SettingsConfig,
    clock: SharedClock,
    listener: TcpListener,
) -> anyhow::Result<SettingsApp> {
    let db = latchkey_common::db::connect(config.database_url.expose_secret()).await?;
    if config.auto_migrate {
        crate::store::migrate(&db)
            .await
            .context("applying settings migrations")?;
    }
    crate::rotation::check_keys_configured(&db, &config.keys)
        .await
        .context("checking master keys against stored settings")?;
    let channel = auth_channel(&config.auth_urls)?;
    let rules = VerifyRules {
        issuer: config.issuer.clone(),
        audience: config.audience.clone(),
        leeway: config.leeway,
    };
    tracing::info!(
        active_key = %config.keys.active().id,
        active_key_fingerprint = %config.keys.active().key.fingerprint(),
        "settings master keys loaded"
    );
    let keys = Arc::new(KeyRing::new(config.keys.clone(), config.keys_file.clone()));
    let schema = Arc::new(SchemaSource::new(
        config.schema.clone(),
        config.schema_file.clone(),
    ));
    tracing::info!(
        declared = config.schema.settings.len(),
        allow_undeclared = config.schema.allow_undeclared,
        reloaded_from = %config.schema_file.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
        "settings schema loaded"
    );
    let hot = HotReads::for_url(config.database_url.expose_secret())?;
    let core = SettingsCore::with_keyring(db, keys.clone(), clock.clone())
        .with_schema(schema.clone())
        .with_hot_reads(hot);
    Ok(SettingsApp {
        listener,
        core: Arc::new(core),
        keys,
        schema,
        authn: Arc::new(crate::authn::authenticator(channel, rules, clock)),
        limits: config.limits,
    })
}

/// A lazily connected channel to auth, balanced per request over several URLs or every address
/// one name resolves to.
fn auth_channel(urls: &[String]) -> anyhow::Result<Channel> {
    ChannelProfile::TOKEN_CHECK
        .channel(urls)
        .with_context(|| AUTH_URL.env())
}

impl SettingsApp {
    /// Where the server listens (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The domain core (for in-process callers such as `latchkey dev`).
    pub fn core(&self) -> Arc<SettingsCore> {
        self.core.clone()
    }

    /// Serves until `shutdown` stops it (the kit's [`GrpcServer::serve`]), re-reading master keys
    /// and publishing key metrics meanwhile.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> anyhow::Result<()> {
        tokio::spawn(publish_key_metrics(self.core.clone(), shutdown.clone()));
        tokio::spawn(crate::schema::source::watch(
            self.schema.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(crate::keyring::watch(
            self.keys.clone(),
            self.core.db().clone(),
            shutdown.clone(),
        ));
        // Warm the JWKS cache; failure is fine (fetched again on the first token).
        if let Err(error) = self.authn.verifier().refresh().await {
            tracing::warn!(%error, "auth's JWKS not reachable yet; will fetch on first request");
        }
        let server = GrpcServer {
            name: "settings",
            descriptor_set: latchkey_proto::SETTINGS_DESCRIPTOR_SET,
            limits: self.limits,
            credential_checks: CredentialChecks::default(),
            breaker: DbBreaker::new(self.core.db().clone(), crate::error::DATABASE)
                .layer(DATABASE_FREE),
        };
        let service = SettingsServiceServer::new(SettingsGrpc::new(self.core, self.authn));
        server.serve(self.listener, service, shutdown).await
    }
}

/// Keeps the rows-per-key gauge current (every 30 s) while the service runs.
async fn publish_key_metrics(core: Arc<SettingsCore>, shutdown: Shutdown) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait() => return,
        }
        if let Err(error) = crate::rotation::publish_key_metrics(core.db()).await {
            tracing::warn!(%error, "rows-per-key metric refresh failed");
        }
        match core.users_missing_required().await {
            Ok(users) => latchkey_common::metrics::global()
                .users_missing_required
                .set(users),
            Err(error) => tracing::warn!(%error, "users-missing-required metric refresh failed"),
        }
    }
}
