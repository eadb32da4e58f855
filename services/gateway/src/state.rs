//! The state every handler shares: upstream clients and channels, the token cache, the per-IP
//! limits, the trusted-proxy rule, CORS origins, dev mode and the draining flag. Built once from
//! the configuration; cloning it is one `Arc` clone.

use crate::client_ip::ClientIp;
use crate::config::GatewayConfig;
use crate::dev::DevHosts;
use crate::limits::{RateLimiter, VouchedSecrets};
use axum::http::{HeaderName, HeaderValue};
use latchkey_common::clock::SharedClock;
use latchkey_common::config::{AUTH_URL, CLIENT_IP_HEADER, CORS_ORIGINS, SETTINGS_URL};
use latchkey_common::grpc::direct::DirectChannel as Channel;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::settings::v1::settings_service_client::SettingsServiceClient;
use secrecy::SecretString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct GatewayState {
    pub(crate) inner: Arc<Inner>,
}

/// What [`GatewayState`] shares; read by the handlers, middleware and the router.
pub(crate) struct Inner {
    auth: AuthServiceClient<Channel>,
    settings: SettingsServiceClient<Channel>,
    /// For `/readyz`: the health service of each upstream.
    pub(crate) auth_channel: Channel,
    pub(crate) settings_channel: Channel,
    /// Bearer tokens auth accepted lately (for at most [`crate::config::MAX_AUTH_CACHE`]).
    pub(crate) cache: latchkey_client::VerdictCache,
    /// Sync and token calls per client address.
    pub(crate) sync_limiter: RateLimiter,
    /// Failed authentications per client address.
    pub(crate) failure_limiter: RateLimiter,
    /// Sync secrets auth accepted lately: they skip the failure budget.
    pub(crate) vouched_secrets: VouchedSecrets,
    pub(crate) client_ip: ClientIp,
    /// Origins CORS allows; empty: no CORS layer.
    pub(crate) cors_origins: Vec<HeaderValue>,
    /// The sync secret `POST /api/dev/session` signs in with; `Some` only under `latchkey dev`.
    pub(crate) dev_session: Option<SecretString>,
    pub(crate) dev_hosts: DevHosts,
    /// The Settings page's HTML, rendered once for this mode.
    pub(crate) page: String,
    /// Set once shutdown begins: `/readyz` answers 503 so load balancers move away.
    draining: AtomicBool,
}

impl GatewayState {
    /// Channels to the upstreams (connected lazily), limiters and the token cache (on `clock`).
    pub fn new(config: &GatewayConfig, clock: SharedClock) -> anyhow::Result<Self> {
        use anyhow::Context;
        let auth_channel =
            crate::upstream::channel(&config.auth_urls).with_context(|| AUTH_URL.env())?;
        let settings_channel =
            crate::upstream::channel(&config.settings_urls).with_context(|| SETTINGS_URL.env())?;
        let cors_origins = config
            .cors_origins
            .iter()
            .map(|o| HeaderValue::from_str(o))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| CORS_ORIGINS.env())?;
        let client_ip_header = config
            .client_ip_header
            .as_deref()
            .map(|h| HeaderName::from_bytes(h.as_bytes()))
            .transpose()
            .with_context(|| CLIENT_IP_HEADER.env())?;
        Ok(GatewayState {
            inner: Arc::new(Inner {
                auth: AuthServiceClient::new(auth_channel.clone()),
                settings: SettingsServiceClient::new(settings_channel.clone()),
                auth_channel,
                settings_channel,
                cache: crate::authn::verdict_cache(config.auth_cache, clock),
                sync_limiter: RateLimiter::new(config.sync_rate_per_minute),
                failure_limiter: RateLimiter::new(config.auth_failure_rate_per_minute),
                vouched_secrets: VouchedSecrets::default(),
                client_ip: ClientIp::new(client_ip_header, config.trusted_proxies.clone()),
                cors_origins,
                dev_session: config.dev_session.clone(),
                dev_hosts: DevHosts(Arc::new(config.dev_hosts.clone())),
                page: crate::page::index_html(config.dev_session.is_some()),
                draining: AtomicBool::new(false),
            }),
        })
    }

    /// Marks the gateway as shutting down: readiness answers 503 from now on.
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
    }

    /// Whether shutdown has begun.
    pub(crate) fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    /// Whether `POST /api/dev/session` is mounted (`latchkey dev` only).
    pub(crate) fn dev_mode(&self) -> bool {
        self.inner.dev_session.is_some()
    }

    /// A client of auth on the shared (balanced, lazily connected) channel.
    pub(crate) fn auth(&self) -> AuthServiceClient<Channel> {
        self.inner.auth.clone()
    }

    /// A client of settings on the shared channel.
    pub(crate) fn settings(&self) -> SettingsServiceClient<Channel> {
        self.inner.settings.clone()
    }
}
