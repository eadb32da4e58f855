//! Building and running the auth server: bind its own listener (port 0 in tests), serve
//! `AuthService`, `grpc.health.v1` and reflection, refresh signing keys, stop gracefully.

use crate::config::AuthConfig;
use crate::grpc::AuthGrpc;
use crate::service::{AuthCore, SettingsPurger};
use latchkey_common::clock::SharedClock;
use latchkey_common::grpc_limits::{FailureLimitLayer, GrpcLimits, ShedLayer};
use latchkey_common::shutdown::Shutdown;
use latchkey_proto::Reason;
use latchkey_proto::auth::v1::auth_service_server::AuthServiceServer;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Calls that never touch the database, served even while it is down.
const DATABASE_FREE: &[&str] = &[
    "/grpc.health.v1.",
    "/grpc.reflection.",
    "/latchkey.auth.v1.AuthService/GetJwks",
    "/latchkey.auth.v1.AuthService/IssueServiceToken",
];

/// A built, bound, not yet serving auth server.
pub struct AuthApp {
    listener: TcpListener,
    core: Arc<AuthCore>,
    refresh: std::time::Duration,
    limits: GrpcLimits,
}

/// The RPCs that check a shared credential, and the refusals counted against the caller's
/// address when they fail (a right credential always passes).
const CREDENTIAL_METHODS: &[&str] = &[
    "/latchkey.auth.v1.AuthService/SyncUser",
    "/latchkey.auth.v1.AuthService/IssueToken",
    "/latchkey.auth.v1.AuthService/IssueServiceToken",
];
const CREDENTIAL_FAILURES: &[Reason] = &[
    Reason::SyncSecretMissing,
    Reason::SyncSecretInvalid,
    Reason::ClientCredentialsInvalid,
];

/// Connects to the database, migrates (unless told not to), loads keys, binds the listener.
pub async fn build(config: &AuthConfig, clock: SharedClock) -> anyhow::Result<AuthApp> {
    use anyhow::Context;
    let db = latchkey_common::db::connect(config.database_url.expose_secret()).await?;
    if config.auto_migrate {
        crate::store::migrate(&db)
            .await
            .context("applying auth migrations")?;
    }
    let purger: Option<Box<dyn SettingsPurger>> = match &config.settings_url {
        Some(url) => Some(Box::new(
            crate::purge::GrpcPurger::new(url)
                .context("LATCHKEY_SETTINGS_URL is not a valid URL")?,
        )),
        None => {
            tracing::warn!(
                "LATCHKEY_SETTINGS_URL is not set: deleting a user will not purge their settings"
            );
            None
        }
    };
    let core = AuthCore::new(db, config, clock, purger)
        .await
        .map_err(|e| anyhow::anyhow!("starting auth: {e}"))?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    Ok(AuthApp {
        listener,
        core: Arc::new(core),
        refresh: config.key_refresh,
        limits: config.limits,
    })
}

impl AuthApp {
    /// Where the server listens (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The domain core (for in-process callers such as `latchkey dev`).
    pub fn core(&self) -> Arc<AuthCore> {
        self.core.clone()
    }

    /// Serves until `shutdown` stops it: health flips to NOT_SERVING when draining begins, the
    /// listener closes at the stop, in-flight calls get until the drain deadline.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_serving::<AuthServiceServer<AuthGrpc>>().await;
        let (reflection, reflection_v1alpha) =
            reflection_services(latchkey_proto::AUTH_DESCRIPTOR_SET)?;
        tokio::spawn(refresh_keys(
            self.core.clone(),
            self.refresh,
            shutdown.clone(),
        ));
        tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                shutdown.draining().await;
                reporter
                    .set_not_serving::<AuthServiceServer<AuthGrpc>>()
                    .await;
            }
        });
        let stopping = {
            let shutdown = shutdown.clone();
            async move { shutdown.wait().await }
        };
        tracing::info!(addr = %self.local_addr(), "auth serving");
        let server = tonic::transport::Server::builder()
            .layer(tower::util::MapRequestLayer::new(
                latchkey_common::telemetry::ensure_request_id::<tonic::body::Body>,
            ))
            .layer(latchkey_common::metrics::GrpcMetricsLayer::new(
                "auth",
                latchkey_proto::AUTH_DESCRIPTOR_SET,
            ))
            .layer(tower::util::MapResponseLayer::new(
                latchkey_common::telemetry::stamp_version::<tonic::body::Body>,
            ))
            .layer(ShedLayer::new("auth", self.limits.max_concurrent))
            .layer(FailureLimitLayer::new(
                "auth",
                CREDENTIAL_METHODS,
                CREDENTIAL_FAILURES,
                self.limits.failures_per_minute,
            ))
            .layer(
                latchkey_common::breaker::DbBreaker::new(
                    self.core.db().clone(),
                    crate::error::DATABASE,
                )
                .layer(DATABASE_FREE),
            )
            .trace_fn(latchkey_common::telemetry::grpc_span)
            .add_service(health)
            .add_service(reflection)
            .add_service(reflection_v1alpha)
            .add_service(AuthServiceServer::new(AuthGrpc::new(self.core)))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(self.listener).with_nodelay(Some(true)),
                stopping,
            );
        tokio::select! {
            served = server => served?,
            _ = shutdown.deadline() => {
                tracing::warn!("drain deadline passed; dropping the calls still in progress");
            }
        }
        tracing::info!("auth stopped");
        Ok(())
    }
}

/// Reflection v1 and, for older clients (grpcurl < 1.9, Python's grpcio-reflection), v1alpha,
/// over one service's descriptor set (`latchkey_proto::AUTH_DESCRIPTOR_SET` or `…SETTINGS…`).
pub fn reflection_services(
    descriptor_set: &'static [u8],
) -> anyhow::Result<(
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
)> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(descriptor_set)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}

async fn refresh_keys(core: Arc<AuthCore>, every: std::time::Duration, shutdown: Shutdown) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait() => return,
        }
        if let Err(error) = core.reload_keys().await {
            tracing::warn!(%error, "signing key refresh failed; keeping the previous keys");
        }
    }
}
