//! Building and running the auth server: bind its own listener (port 0 in tests), serve
//! `AuthService` with the common gRPC kit ([`latchkey_common::grpc`]: health, reflection, limits,
//! graceful stop), refresh signing keys.

use crate::config::AuthConfig;
use crate::grpc::AuthGrpc;
use crate::life_cycle::TokenLife;
use crate::rotation::Rotator;
use crate::service::{AuthCore, SettingsPurger};
use latchkey_common::breaker::DbBreaker;
use latchkey_common::clock::SharedClock;
use latchkey_common::config::SETTINGS_URL;
use latchkey_common::grpc::{CredentialChecks, GrpcServer};
use latchkey_common::grpc_limits::GrpcLimits;
use latchkey_common::hot_reads::HotReads;
use latchkey_common::shutdown::Shutdown;
use latchkey_proto::Reason;
use latchkey_proto::auth::v1::auth_service_server::AuthServiceServer;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpSocket};

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
    /// Automatic rotation, when `LATCHKEY_SIGNING_ROTATE_EVERY` is set.
    rotator: Option<Rotator>,
}

/// The RPCs that check a shared credential, and the refusals counted against the caller's
/// address when they fail (a right credential always passes).
const CREDENTIAL_METHODS: &[&str] = &[
    "/latchkey.auth.v1.AuthService/SyncUser",
    "/latchkey.auth.v1.AuthService/IssueToken",
    "/latchkey.auth.v1.AuthService/IssueServiceToken",
    "/latchkey.auth.v1.AuthService/IssueRefreshToken",
];
const CREDENTIAL_FAILURES: &[Reason] = &[
    Reason::SyncSecretMissing,
    Reason::SyncSecretInvalid,
    Reason::ClientCredentialsInvalid,
];

/// Connects to the database, migrates (unless told not to), loads keys, binds the listener.
pub async fn build(config: &AuthConfig, clock: SharedClock) -> anyhow::Result<AuthApp> {
    use anyhow::Context;
    // The port is taken first, so a start that cannot have it (another auth there) stores
    // nothing, not even a first signing key sealed with this start's seal key; it listens only
    // once the keys are loaded, so a connection that succeeds reaches a ready auth.
    let socket = reserve(config.listen).with_context(|| format!("binding {}", config.listen))?;
    let db = latchkey_common::db::connect(config.database_url.expose_secret()).await?;
    if config.auto_migrate {
        crate::store::migrate(&db)
            .await
            .context("applying auth migrations")?;
    }
    let purger: Option<Box<dyn SettingsPurger>> = match &config.settings_url {
        Some(url) => Some(Box::new(
            crate::purge::GrpcPurger::new(url)
                .with_context(|| format!("{} is not a valid URL", SETTINGS_URL.env()))?,
        )),
        None => {
            tracing::warn!(
                "{} is not set: deleting a user will not purge their settings",
                SETTINGS_URL.env()
            );
            None
        }
    };
    let rotator = config.key_policy.rotate_every.map(|_| {
        Rotator::new(
            db.clone(),
            config.seal_key.clone(),
            config.key_policy,
            TokenLife {
                ttl: config.rules.ttl,
                leeway: config.rules.leeway,
            },
            clock.clone(),
        )
    });
    let core = AuthCore::new(db, config, clock, purger)
        .await
        .map_err(|e| anyhow::anyhow!("starting auth: {e}"))?
        .with_hot_reads(HotReads::for_url(config.database_url.expose_secret())?);
    let listener = socket
        .listen(LISTEN_BACKLOG)
        .with_context(|| format!("listening on {}", config.listen))?;
    Ok(AuthApp {
        listener,
        core: Arc::new(core),
        refresh: config.key_refresh,
        limits: config.limits,
        rotator,
    })
}

/// The listen backlog, as `TcpListener::bind` would use.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds `addr` without listening yet: the port is ours (a second auth on it fails here), while
/// connections are refused until [`TcpSocket::listen`].
fn reserve(addr: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket)
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

    /// Serves until `shutdown` stops it (the kit's [`GrpcServer::serve`]), refreshing (and,
    /// with automatic rotation, rotating) the signing keys meanwhile.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> anyhow::Result<()> {
        tokio::spawn(refresh_keys(
            self.core.clone(),
            self.rotator,
            self.refresh,
            shutdown.clone(),
        ));
        let server = GrpcServer {
            name: "auth",
            descriptor_set: latchkey_proto::AUTH_DESCRIPTOR_SET,
            limits: self.limits,
            credential_checks: CredentialChecks {
                methods: CREDENTIAL_METHODS,
                failures: CREDENTIAL_FAILURES,
            },
            breaker: DbBreaker::new(self.core.db().clone(), crate::error::DATABASE)
                .layer(DATABASE_FREE),
        };
        let service = AuthServiceServer::new(AuthGrpc::new(self.core));
        server.serve(self.listener, service, shutdown).await
    }
}

/// Every `every`: one automatic-rotation round (when on; only the lease holder acts), then a
/// re-read of the key table, so this replica signs with whatever key is active now.
async fn refresh_keys(
    core: Arc<AuthCore>,
    rotator: Option<Rotator>,
    every: std::time::Duration,
    shutdown: Shutdown,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait() => return,
        }
        if let Some(rotator) = &rotator
            && let Err(error) = rotator.tick().await
        {
            tracing::warn!(%error, "automatic signing key rotation failed; trying again next refresh");
        }
        if let Err(error) = core.reload_keys().await {
            tracing::warn!(%error, "signing key refresh failed; keeping the previous keys");
        }
    }
}
