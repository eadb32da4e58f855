//! The REST contract of DESIGN.md §4a: one handler per route, each decoding JSON, calling one
//! RPC with what is left of the route's time budget as gRPC deadline (the budget counts from the
//! request's arrival and covers every call it makes), and encoding the answer. Only
//! `authorization`, `x-request-id`, `traceparent` and `tracestate` (plus the sync secret on the
//! sync routes) travel on as metadata.

use crate::authn::TokenCache;
use crate::client_ip::ClientIp;
use crate::config::GatewayConfig;
use crate::limits::{RateLimiter, VouchedSecrets, rate_limited, read_body};
use crate::problem::{PendingProblem, Problem, from_grpc, render};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use latchkey_common::upstream::{Deadline, retry_idempotent};
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use latchkey_proto::settings::v1 as settings_pb;
use latchkey_proto::settings::v1::settings_service_client::SettingsServiceClient;
use latchkey_proto::{ApiError, Reason, Violation};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::Channel;

/// Time budgets of whole requests, counted from their arrival; each upstream call carries what is
/// left as its gRPC deadline.
pub mod budget {
    use std::time::Duration;
    /// `Auth.Authenticate` before any bearer route.
    pub const AUTHENTICATE: Duration = Duration::from_secs(2);
    /// Sync-user and token issue.
    pub const SYNC: Duration = Duration::from_secs(5);
    /// Reads: me, JWKS, settings list.
    pub const READ: Duration = Duration::from_secs(3);
    /// Writes: patch, put, delete one.
    pub const WRITE: Duration = Duration::from_secs(10);
    /// A whole `.env` import.
    pub const IMPORT: Duration = Duration::from_secs(15);
    /// Deleting a user (auth purges settings first).
    pub const DELETE_USER: Duration = Duration::from_secs(15);
    /// One readiness probe per upstream.
    pub const HEALTH: Duration = Duration::from_secs(1);
}

const AUTH: &str = "the auth service";
const SETTINGS: &str = "the settings service";

/// The fixed identity `POST /api/dev/session` signs in (dev mode only).
pub const DEV_USER: (&str, &str, &str) = ("dev", "dev-user", "dev@latchkey.localhost");

/// Shared by every handler. Cheap to clone.
#[derive(Clone)]
pub struct GatewayState {
    inner: Arc<Inner>,
}

struct Inner {
    auth: AuthServiceClient<Channel>,
    settings: SettingsServiceClient<Channel>,
    auth_channel: Channel,
    settings_channel: Channel,
    cache: TokenCache,
    sync_limiter: RateLimiter,
    failure_limiter: RateLimiter,
    vouched_secrets: VouchedSecrets,
    client_ip: ClientIp,
    cors_origins: Vec<HeaderValue>,
    dev_session: Option<SecretString>,
    dev_hosts: crate::dev::DevHosts,
    page: String,
    /// Set once shutdown begins: `/readyz` answers 503 so load balancers move away.
    draining: AtomicBool,
}

impl GatewayState {
    /// Channels to the upstreams (connected lazily), limiters and the token cache.
    pub fn new(config: &GatewayConfig) -> anyhow::Result<Self> {
        use anyhow::Context;
        let auth_channel =
            crate::upstream::channel(&config.auth_urls).context("LATCHKEY_AUTH_URL")?;
        let settings_channel =
            crate::upstream::channel(&config.settings_urls).context("LATCHKEY_SETTINGS_URL")?;
        let cors_origins = config
            .cors_origins
            .iter()
            .map(|o| HeaderValue::from_str(o))
            .collect::<Result<Vec<_>, _>>()
            .context("LATCHKEY_CORS_ORIGINS")?;
        let client_ip_header = config
            .client_ip_header
            .as_deref()
            .map(|h| HeaderName::from_bytes(h.as_bytes()))
            .transpose()
            .context("LATCHKEY_CLIENT_IP_HEADER")?;
        Ok(GatewayState {
            inner: Arc::new(Inner {
                auth: AuthServiceClient::new(auth_channel.clone()),
                settings: SettingsServiceClient::new(settings_channel.clone()),
                auth_channel,
                settings_channel,
                cache: TokenCache::new(config.auth_cache),
                sync_limiter: RateLimiter::new(config.sync_rate_per_minute),
                failure_limiter: RateLimiter::new(config.auth_failure_rate_per_minute),
                vouched_secrets: VouchedSecrets::default(),
                client_ip: ClientIp::new(client_ip_header, config.trusted_proxies.clone()),
                cors_origins,
                dev_session: config.dev_session.clone(),
                dev_hosts: crate::dev::DevHosts(Arc::new(config.dev_hosts.clone())),
                page: crate::page::index_html(config.dev_session.is_some()),
                draining: AtomicBool::new(false),
            }),
        })
    }

    /// Marks the gateway as shutting down: readiness answers 503 from now on.
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::Relaxed);
    }

    fn auth(&self) -> AuthServiceClient<Channel> {
        self.inner.auth.clone()
    }

    fn settings(&self) -> SettingsServiceClient<Channel> {
        self.inner.settings.clone()
    }
}

/// Every route, CORS, request ids, security headers, problem+json for every failure.
pub fn router(state: GatewayState) -> Router {
    let mut api = Router::new()
        .route("/api/auth/sync-user", post(sync_user))
        .route("/api/auth/token", post(issue_token))
        .route("/api/auth/me", get(get_me).delete(delete_me))
        .route("/api/auth/me/revoke", post(revoke_me))
        .route("/.well-known/jwks.json", get(jwks))
        .route(
            "/api/settings",
            get(list_settings)
                .patch(patch_settings)
                .put(replace_settings),
        )
        .route("/api/settings/import", post(import_dotenv))
        .route(
            "/api/settings/{name}",
            axum::routing::delete(delete_setting),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .route("/", get(page))
        .route("/assets/app.js", get(page_js))
        .route("/assets/app.css", get(page_css));
    if state.inner.dev_session.is_some() {
        api = api.route("/api/dev/session", post(dev_session));
    }
    let cors = cors_layer(&state.inner.cors_origins);
    let dev_host_check = state.inner.dev_session.is_some().then(|| {
        axum::middleware::from_fn_with_state(state.inner.dev_hosts.clone(), crate::dev::check_host)
    });
    api.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower::util::option_layer(dev_host_check))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .layer(tower::util::option_layer(cors))
        .with_state(state)
}

fn cors_layer(origins: &[HeaderValue]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("traceparent"),
                HeaderName::from_static("tracestate"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// Per-request facts every handler needs.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub request_id: String,
    pub client_ip: IpAddr,
    /// When the request arrived: every route budget counts from here, across all its calls.
    started: Instant,
    traceparent: Option<HeaderValue>,
    tracestate: Option<HeaderValue>,
}

/// Gives the request its id and client IP, renders any problem with that id, adds
/// `x-request-id` and security headers, and counts the request.
async fn request_context(
    State(state): State<GatewayState>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = latchkey_common::telemetry::request_id(&request);
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let client_ip = state.inner.client_ip.resolve(peer, request.headers());
    let ctx = Ctx {
        request_id: request_id.clone(),
        client_ip,
        traceparent: request.headers().get("traceparent").cloned(),
        tracestate: request.headers().get("tracestate").cloned(),
        started,
    };
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    request.extensions_mut().insert(ctx);
    let span = tracing::info_span!("http", method, route, request_id = %request_id);
    latchkey_common::telemetry::continue_trace(&span, request.headers());
    let mut response = {
        use tracing::Instrument;
        next.run(request).instrument(span.clone()).await
    };
    if let Some(PendingProblem(error)) = response.extensions_mut().remove::<PendingProblem>() {
        let _entered = span.enter();
        if error.reason == Reason::Internal || error.reason == Reason::UpstreamUnavailable {
            tracing::warn!(code = %error.reason, "request failed");
        } else {
            tracing::debug!(code = %error.reason, "request refused");
        }
        latchkey_common::metrics::global().failure("gateway", error.reason);
        response = render(&error, &request_id);
    }
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    latchkey_common::metrics::global().observe(
        "gateway",
        &format!("{method} {route}"),
        response.status().as_str(),
        started,
    );
    response
}

/// The method as a metric label and span field: a known method, or `OTHER` (a client may send
/// any token as a method, 100 KB long).
fn method_label(method: &Method) -> &'static str {
    const KNOWN: &[Method] = &[
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("OTHER", Method::as_str)
}

// ---------------------------------------------------------------------------------------------
// Helpers

impl Ctx {
    /// The request's deadline under `budget`, counted from its arrival.
    fn deadline(&self, budget: Duration) -> Deadline {
        Deadline::new(self.started, budget)
    }
}

/// A gRPC request carrying only the allowed metadata and the time left of the route's budget
/// (counted from the request's arrival, so every call of one request shares one budget).
fn grpc_request<T>(message: T, ctx: &Ctx, budget: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(ctx.deadline(budget).timeout());
    let metadata = request.metadata_mut();
    if let Ok(id) = MetadataValue::try_from(ctx.request_id.as_str()) {
        metadata.insert(latchkey_proto::REQUEST_ID_METADATA, id);
    }
    // With tracing recorded, the gateway's own span is the parent upstream; without it, the
    // caller's trace context is passed on unchanged.
    let injected = latchkey_common::telemetry::inject_into_metadata(metadata);
    if let Some(parent) = ctx.traceparent.as_ref().filter(|_| !injected) {
        insert_header(metadata, "traceparent", parent);
        if let Some(state) = &ctx.tracestate {
            insert_header(metadata, "tracestate", state);
        }
    }
    request
}

fn insert_header(metadata: &mut MetadataMap, key: &'static str, value: &HeaderValue) {
    if let Ok(value) = value.to_str().map(MetadataValue::try_from)
        && let Ok(value) = value
    {
        metadata.insert(key, value);
    }
}

/// Authenticates the caller, then wraps `message` for the upstream call made on their behalf:
/// their token (or its exchanged stand-in), request id, trace context and the route's deadline.
async fn on_behalf<T>(
    state: &GatewayState,
    headers: &HeaderMap,
    ctx: &Ctx,
    message: T,
    budget: Duration,
) -> Result<(Bearer, tonic::Request<T>), Problem> {
    let token = authenticate(state, headers, ctx).await?;
    let request = with_bearer(grpc_request(message, ctx, budget), &token);
    Ok((token, request))
}

/// A verified caller's token, and what to present upstream: for a legacy (HS256) token, the
/// Latchkey token auth exchanged it for (settings verifies only Latchkey's keys); otherwise itself.
struct Bearer {
    presented: String,
    exchanged: Option<SecretString>,
}

impl Bearer {
    fn upstream(&self) -> &str {
        self.exchanged
            .as_ref()
            .map_or(self.presented.as_str(), |token| token.expose_secret())
    }
}

fn with_bearer<T>(mut request: tonic::Request<T>, token: &Bearer) -> tonic::Request<T> {
    if let Ok(value) = MetadataValue::try_from(format!("Bearer {}", token.upstream())) {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The bearer token of `Authorization`, or TOKEN_MISSING / TOKEN_MALFORMED.
fn bearer_token(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            Reason::TokenMissing,
            "Send `Authorization: Bearer <access token>`; your web app's server gets one from POST /api/auth/sync-user or POST /api/auth/token.",
        ));
    };
    let text = value.to_str().unwrap_or_default().trim();
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::new(
            Reason::TokenMalformed,
            "The Authorization header must be `Bearer <access token>`.",
        ));
    }
    Ok(token.to_owned())
}

/// Verifies the caller's bearer token (cached for at most 5 s) and answers it. Failures spend
/// the address's failed-authentication budget; once it is spent, tokens auth has not accepted
/// before are refused without asking auth, while tokens it has accepted still pass.
async fn authenticate(
    state: &GatewayState,
    headers: &HeaderMap,
    ctx: &Ctx,
) -> Result<Bearer, Problem> {
    let failures = &state.inner.failure_limiter;
    let token = match bearer_token(headers) {
        Ok(token) => token,
        Err(error) => {
            return Err(match failures.take(ctx.client_ip) {
                Ok(()) => error.into(),
                Err(wait) => rate_limited(wait, "failed authentications").into(),
            });
        }
    };
    if let Some(verified) = state.inner.cache.fresh(&token) {
        return Ok(Bearer {
            presented: token,
            exchanged: verified.exchanged,
        });
    }
    if !state.inner.cache.is_vouched(&token)
        && let Err(wait) = failures.check(ctx.client_ip)
    {
        return Err(rate_limited(wait, "failed authentications").into());
    }
    let message = auth_pb::AuthenticateRequest {
        token: token.clone(),
    };
    // Verifying is idempotent: a call refused or cut on the way (auth restarting) is tried once more.
    let answer = retry_idempotent(&ctx.deadline(budget::AUTHENTICATE), || {
        let mut client = state.auth();
        let request = grpc_request(message.clone(), ctx, budget::AUTHENTICATE);
        async move { client.authenticate(request).await }
    })
    .await;
    match answer {
        Ok(response) => {
            let answer = response.into_inner();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            let left = (answer.expires_at > 0)
                .then(|| Duration::from_secs((answer.expires_at - now).max(0) as u64));
            let exchanged = (!answer.exchanged_token.is_empty())
                .then(|| SecretString::from(answer.exchanged_token));
            state.inner.cache.remember(&token, left, exchanged.clone());
            Ok(Bearer {
                presented: token,
                exchanged,
            })
        }
        Err(status) => {
            let error = from_grpc(&status, AUTH, ctx.deadline(budget::AUTHENTICATE));
            if matches!(error.reason.http_status(), 401 | 403) {
                state.inner.cache.forget(&token);
                let _ = failures.take(ctx.client_ip);
            }
            Err(error.into())
        }
    }
}

/// Parses a JSON body, naming the problem (unknown field, wrong type, syntax) on failure.
fn parse_json<T: serde::de::DeserializeOwned>(bytes: &Bytes, example: &str) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            format!("The request body is empty; send JSON like {example}."),
            vec![Violation {
                field: "body".into(),
                description: "empty".into(),
            }],
        ));
    }
    serde_json::from_slice(bytes).map_err(|error| {
        ApiError::invalid(
            format!(
                "The request body is not valid for this route: {error}. Send JSON like {example}."
            ),
            vec![Violation {
                field: "body".into(),
                description: error.to_string(),
            }],
        )
    })
}

fn user_json(user: Option<auth_pb::User>) -> Value {
    let user = user.unwrap_or_default();
    json!({
        "id": user.id,
        "provider": user.provider,
        "subject": user.subject,
        "email": user.email,
        "name": user.name,
        "avatar_url": user.avatar_url,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    })
}

fn token_fields(token: Option<auth_pb::AccessToken>, into: &mut Value) {
    let token = token.unwrap_or_default();
    into["access_token"] = token.access_token.into();
    into["token_type"] = if token.token_type.is_empty() {
        "Bearer".into()
    } else {
        token.token_type.into()
    };
    into["expires_in"] = token.expires_in.into();
}

fn masked_json(settings: Vec<settings_pb::MaskedSetting>) -> Value {
    settings
        .into_iter()
        .map(|s| {
            json!({
                "name": s.name,
                "masked": s.masked,
                "length": s.length,
                "updated_at": s.updated_at,
            })
        })
        .collect()
}

fn sync_secret(headers: &HeaderMap) -> Result<MetadataValue<tonic::metadata::Ascii>, ApiError> {
    let value = headers
        .get("x-latchkey-sync-secret")
        .or_else(|| headers.get("x-auth-secret"));
    let Some(value) = value else {
        return Err(ApiError::new(
            Reason::SyncSecretMissing,
            "Send the sync secret (LATCHKEY_SYNC_SECRET) in the X-Latchkey-Sync-Secret header; this route is for your web app's server, never the browser.",
        ));
    };
    value
        .to_str()
        .ok()
        .and_then(|v| MetadataValue::try_from(v).ok())
        .ok_or_else(|| {
            ApiError::new(
                Reason::SyncSecretInvalid,
                "The sync secret does not match; compare fingerprints with `latchkey fingerprint` on both machines.",
            )
        })
}

/// Counts a refused sync secret against the caller's failed-authentication budget, and
/// remembers auth's verdict on the secret either way.
fn sync_verdict<T>(
    state: &GatewayState,
    ctx: &Ctx,
    secret: &MetadataValue<tonic::metadata::Ascii>,
    result: &Result<T, ApiError>,
) {
    let vouched = &state.inner.vouched_secrets;
    match result {
        Ok(_) => vouched.vouch(secret.as_bytes()),
        Err(error) => {
            if matches!(
                error.reason,
                Reason::SyncSecretInvalid | Reason::SyncSecretMissing
            ) {
                vouched.forget(secret.as_bytes());
                let _ = state.inner.failure_limiter.take(ctx.client_ip);
            }
        }
    }
}

/// The sync routes' shared gate: request budget, secret present, and the failed-auth budget —
/// which a secret auth accepted lately skips (failures from the same address must not lock out
/// the web app's server).
fn sync_gate(
    state: &GatewayState,
    ctx: &Ctx,
    headers: &HeaderMap,
) -> Result<MetadataValue<tonic::metadata::Ascii>, ApiError> {
    if let Err(wait) = state.inner.sync_limiter.take(ctx.client_ip) {
        return Err(rate_limited(wait, "sync and token requests"));
    }
    let failures = &state.inner.failure_limiter;
    let secret = match sync_secret(headers) {
        Ok(secret) => secret,
        Err(error) => {
            return Err(match failures.take(ctx.client_ip) {
                Ok(()) => error,
                Err(wait) => rate_limited(wait, "failed authentications"),
            });
        }
    };
    if !state.inner.vouched_secrets.is_vouched(secret.as_bytes())
        && let Err(wait) = failures.check(ctx.client_ip)
    {
        return Err(rate_limited(wait, "failed authentications"));
    }
    Ok(secret)
}

// ---------------------------------------------------------------------------------------------
// Auth routes

/// `{provider, subject, email, email_verified?, name?, avatar_url?}`, or the bare
/// `{email, name}` a hand-rolled backend's sign-in callback sends (identity provider `email`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncUserBody {
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    email: String,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    avatar_url: Option<String>,
}

const SYNC_EXAMPLE: &str = r#"{"provider": "github", "subject": "12345", "email": "ada@example.com", "email_verified": true, "name": "Ada"} or {"email": "ada@example.com", "name": "Ada"}"#;

async fn sync_user(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Problem> {
    let secret = sync_gate(&state, &ctx, &headers)?;
    let bytes = read_body(&headers, body).await?;
    let message = sync_request(&bytes)?;
    Ok(Json(call_sync_user(&state, &ctx, message, secret).await?))
}

/// The sync-user body as the RPC's request.
fn sync_request(bytes: &Bytes) -> Result<auth_pb::SyncUserRequest, ApiError> {
    let body: SyncUserBody = parse_json(bytes, SYNC_EXAMPLE)?;
    Ok(auth_pb::SyncUserRequest {
        provider: body.provider.unwrap_or_default(),
        subject: body.subject.unwrap_or_default(),
        email: body.email,
        name: body.name.unwrap_or_default(),
        avatar_url: body.avatar_url.unwrap_or_default(),
        email_verified: body.email_verified,
    })
}

async fn call_sync_user(
    state: &GatewayState,
    ctx: &Ctx,
    message: auth_pb::SyncUserRequest,
    secret: MetadataValue<tonic::metadata::Ascii>,
) -> Result<Value, ApiError> {
    let mut request = grpc_request(message, ctx, budget::SYNC);
    request
        .metadata_mut()
        .insert(latchkey_proto::SYNC_SECRET_METADATA, secret.clone());
    let result = state
        .auth()
        .sync_user(request)
        .await
        .map_err(|s| from_grpc(&s, AUTH, ctx.deadline(budget::SYNC)));
    sync_verdict(state, ctx, &secret, &result);
    let response = result?.into_inner();
    let mut answer = json!({ "user": user_json(response.user) });
    token_fields(response.token, &mut answer);
    Ok(answer)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

async fn issue_token(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Problem> {
    let secret = sync_gate(&state, &ctx, &headers)?;
    let bytes = read_body(&headers, body).await?;
    let user = token_user(&bytes)?;
    let mut request = grpc_request(
        auth_pb::IssueTokenRequest { user: Some(user) },
        &ctx,
        budget::SYNC,
    );
    request
        .metadata_mut()
        .insert(latchkey_proto::SYNC_SECRET_METADATA, secret.clone());
    let result = state
        .auth()
        .issue_token(request)
        .await
        .map_err(|s| from_grpc(&s, AUTH, ctx.deadline(budget::SYNC)));
    sync_verdict(&state, &ctx, &secret, &result);
    let response = result?.into_inner();
    let mut answer = json!({});
    token_fields(response.token, &mut answer);
    Ok(Json(answer))
}

/// The token body's user: exactly one of `user_id` or `email`.
fn token_user(bytes: &Bytes) -> Result<auth_pb::issue_token_request::User, ApiError> {
    let body: TokenBody = parse_json(bytes, r#"{"user_id": "…"} or {"email": "ada@example.com"}"#)?;
    match (body.user_id, body.email) {
        (Some(id), None) => Ok(auth_pb::issue_token_request::User::UserId(id)),
        (None, Some(email)) => Ok(auth_pb::issue_token_request::User::Email(email)),
        _ => Err(ApiError::invalid(
            "Name the user with exactly one of `user_id` or `email`.",
            vec![Violation {
                field: "user_id".into(),
                description: "exactly one of user_id or email is required".into(),
            }],
        )),
    }
}

async fn get_me(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
) -> Result<Json<Value>, Problem> {
    let token = authenticate(&state, &headers, &ctx).await?;
    let user = retry_idempotent(&ctx.deadline(budget::READ), || {
        let mut client = state.auth();
        let request = with_bearer(
            grpc_request(auth_pb::GetUserRequest {}, &ctx, budget::READ),
            &token,
        );
        async move { client.get_user(request).await }
    })
    .await
    .map_err(|s| from_grpc(&s, AUTH, ctx.deadline(budget::READ)))?
    .into_inner()
    .user
    .unwrap_or_default();
    Ok(Json(json!({
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "provider": user.provider,
        "avatar_url": user.avatar_url,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    })))
}

async fn delete_me(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let (token, request) = on_behalf(
        &state,
        &headers,
        &ctx,
        auth_pb::DeleteUserRequest {},
        budget::DELETE_USER,
    )
    .await?;
    state
        .auth()
        .delete_user(request)
        .await
        .map_err(|s| from_grpc(&s, AUTH, ctx.deadline(budget::DELETE_USER)))?;
    state.inner.cache.forget(&token.presented);
    Ok(StatusCode::NO_CONTENT)
}

/// Sign out everywhere: every token issued to the caller so far is refused from now on.
async fn revoke_me(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
) -> Result<Json<Value>, Problem> {
    let (token, request) = on_behalf(
        &state,
        &headers,
        &ctx,
        auth_pb::RevokeUserTokensRequest {},
        budget::WRITE,
    )
    .await?;
    let revoked_before = state
        .auth()
        .revoke_user_tokens(request)
        .await
        .map_err(|s| from_grpc(&s, AUTH, ctx.deadline(budget::WRITE)))?
        .into_inner()
        .revoked_before;
    state.inner.cache.forget(&token.presented);
    Ok(Json(json!({
        "revoked_before": latchkey_common::clock::rfc3339(revoked_before),
    })))
}

async fn jwks(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Response, Problem> {
    let keys = retry_idempotent(&ctx.deadline(budget::READ), || {
        let mut client = state.auth();
        let request = grpc_request(auth_pb::GetJwksRequest {}, &ctx, budget::READ);
        async move { client.get_jwks(request).await }
    })
    .await
    .map_err(|s| from_grpc(&s, AUTH, ctx.deadline(budget::READ)))?
    .into_inner()
    .keys;
    let keys: Vec<Value> = keys
        .into_iter()
        .map(|k| {
            json!({
                "kty": k.kty, "crv": k.crv, "x": k.x, "kid": k.kid, "alg": k.alg, "use": k.key_use,
            })
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "public, max-age=60"),
        ],
        json!({ "keys": keys }).to_string(),
    )
        .into_response())
}

async fn dev_session(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
) -> Result<Json<Value>, Problem> {
    crate::dev::same_origin(&headers)?;
    let Some(secret) = state.inner.dev_session.as_ref() else {
        return Err(ApiError::new(
            Reason::NotFound,
            "Dev sign-in exists only under `latchkey dev`.",
        )
        .into());
    };
    let secret =
        MetadataValue::try_from(secret.expose_secret()).map_err(|_| ApiError::internal())?;
    let (provider, subject, email) = DEV_USER;
    let message = auth_pb::SyncUserRequest {
        provider: provider.into(),
        subject: subject.into(),
        email: email.into(),
        name: "Dev User".into(),
        avatar_url: String::new(),
        email_verified: None,
    };
    Ok(Json(call_sync_user(&state, &ctx, message, secret).await?))
}

// ---------------------------------------------------------------------------------------------
// Settings routes

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    settings: BTreeMap<String, Option<String>>,
}

const SETTINGS_EXAMPLE: &str = r#"{"settings": {"FLY_API_TOKEN": "fo1_…", "OLD_KEY": null}}"#;

async fn list_settings(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
) -> Result<Json<Value>, Problem> {
    let token = authenticate(&state, &headers, &ctx).await?;
    let settings = retry_idempotent(&ctx.deadline(budget::READ), || {
        let mut client = state.settings();
        let request = with_bearer(
            grpc_request(settings_pb::ListSettingsRequest {}, &ctx, budget::READ),
            &token,
        );
        async move { client.list_settings(request).await }
    })
    .await
    .map_err(|s| from_grpc(&s, SETTINGS, ctx.deadline(budget::READ)))?
    .into_inner()
    .settings;
    Ok(Json(json!({ "settings": masked_json(settings) })))
}

/// The body's entries, nulls included: settings checks every name (a PUT with a bad name and a
/// null value is still a bad request) and treats a null in a PUT as absent.
async fn changes_from(
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<settings_pb::SettingChange>, Problem> {
    let bytes = read_body(headers, body).await?;
    Ok(setting_changes(&bytes)?)
}

/// A PATCH or PUT body as the RPC's changes.
fn setting_changes(bytes: &Bytes) -> Result<Vec<settings_pb::SettingChange>, ApiError> {
    let body: SettingsBody = parse_json(bytes, SETTINGS_EXAMPLE)?;
    Ok(body
        .settings
        .into_iter()
        .map(|(name, value)| settings_pb::SettingChange { name, value })
        .collect())
}

async fn patch_settings(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Problem> {
    write_settings(&state, &ctx, &headers, body, WriteMode::Merge).await
}

async fn replace_settings(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Problem> {
    write_settings(&state, &ctx, &headers, body, WriteMode::Replace).await
}

/// PATCH merges (null deletes), PUT replaces the whole set.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteMode {
    Merge,
    Replace,
}

/// The shared body of PATCH and PUT /api/settings: authenticate, decode, one gRPC call.
async fn write_settings(
    state: &GatewayState,
    ctx: &Ctx,
    headers: &HeaderMap,
    body: Body,
    mode: WriteMode,
) -> Result<Json<Value>, Problem> {
    let token = authenticate(state, headers, ctx).await?;
    let settings = changes_from(headers, body).await?;
    let mut client = state.settings();
    let answer = match mode {
        WriteMode::Merge => {
            let message = settings_pb::PatchSettingsRequest { settings };
            let request = with_bearer(grpc_request(message, ctx, budget::WRITE), &token);
            client
                .patch_settings(request)
                .await
                .map(|r| r.into_inner().settings)
        }
        WriteMode::Replace => {
            let message = settings_pb::ReplaceSettingsRequest { settings };
            let request = with_bearer(grpc_request(message, ctx, budget::WRITE), &token);
            client
                .replace_settings(request)
                .await
                .map(|r| r.into_inner().settings)
        }
    };
    let settings = answer.map_err(|s| from_grpc(&s, SETTINGS, ctx.deadline(budget::WRITE)))?;
    Ok(Json(json!({ "settings": masked_json(settings) })))
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ModeName {
    Merge,
    Replace,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    dotenv: String,
    #[serde(default)]
    mode: Option<ModeName>,
    #[serde(default)]
    dry_run: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    #[serde(default)]
    mode: Option<ModeName>,
    #[serde(default)]
    dry_run: Option<bool>,
}

/// The import request from either form: JSON `{dotenv, mode, dry_run}`, or the `.env` itself as
/// `text/plain` with `?mode=replace&dry_run=true`.
fn import_request(
    headers: &HeaderMap,
    uri: &http::Uri,
    bytes: &Bytes,
) -> Result<settings_pb::ImportDotenvRequest, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/plain")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let is_json = content_type == "application/json" || content_type.ends_with("+json");
    let is_text = content_type.starts_with("text/") || content_type == "application/octet-stream";
    // The query is checked whatever the body, so a wrong `?mode=` never passes unnoticed.
    let query: ImportQuery = match uri.query() {
        Some(_) => axum::extract::Query::try_from_uri(uri)
            .map(|q| q.0)
            .map_err(|e| {
                ApiError::invalid(
                    format!("The query string is invalid: {}. Use ?mode=merge|replace&dry_run=true|false.", e.body_text()),
                    vec![Violation { field: "query".into(), description: e.body_text() }],
                )
            })?,
        None => ImportQuery::default(),
    };
    let (dotenv, mode, dry_run) = if is_json {
        if query.mode.is_some() || query.dry_run.is_some() {
            return Err(ApiError::invalid(
                "With a JSON body, mode and dry_run go in the body, not in the query string.",
                vec![Violation {
                    field: "query".into(),
                    description: "mode and dry_run apply to text/plain bodies only".into(),
                }],
            ));
        }
        let body: ImportBody = parse_json(
            bytes,
            r#"{"dotenv": "FLY_API_TOKEN=fo1_…\n", "mode": "merge", "dry_run": true}"#,
        )?;
        (body.dotenv, body.mode, body.dry_run)
    } else if is_text {
        let text = String::from_utf8(bytes.to_vec()).map_err(|e| {
            ApiError::invalid(
                "The .env is not valid UTF-8; save it as UTF-8 and paste it again.",
                vec![Violation {
                    field: "body".into(),
                    description: format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
                }],
            )
        })?;
        (text, query.mode, query.dry_run.unwrap_or(false))
    } else {
        return Err(ApiError::invalid(
            format!(
                "Content-Type `{content_type}` is not accepted here; send the .env as text/plain, or JSON {{\"dotenv\": …}} as application/json."
            ),
            vec![Violation {
                field: "content-type".into(),
                description: "expected text/plain or application/json".into(),
            }],
        ));
    };
    let mode = match mode {
        Some(ModeName::Replace) => settings_pb::ImportMode::Replace,
        Some(ModeName::Merge) | None => settings_pb::ImportMode::Merge,
    };
    Ok(settings_pb::ImportDotenvRequest {
        dotenv,
        mode: mode as i32,
        dry_run,
    })
}

async fn import_dotenv(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    uri: http::Uri,
    body: Body,
) -> Result<Json<Value>, Problem> {
    let token = authenticate(&state, &headers, &ctx).await?;
    let bytes = read_body(&headers, body).await?;
    let message = import_request(&headers, &uri, &bytes)?;
    let request = with_bearer(grpc_request(message, &ctx, budget::IMPORT), &token);
    let response = state
        .settings()
        .import_dotenv(request)
        .await
        .map_err(|s| from_grpc(&s, SETTINGS, ctx.deadline(budget::IMPORT)))?
        .into_inner();
    let warnings: Vec<Value> = response
        .warnings
        .into_iter()
        .map(|w| json!({ "line": w.line, "name": w.name, "message": w.message }))
        .collect();
    Ok(Json(json!({
        "applied": response.applied,
        "added": response.added,
        "changed": response.changed,
        "removed": response.removed,
        "unchanged": response.unchanged,
        "warnings": warnings,
        "settings": masked_json(response.settings),
    })))
}

async fn delete_setting(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<StatusCode, Problem> {
    let token = authenticate(&state, &headers, &ctx).await?;
    let Path(name) = name.map_err(|e| {
        ApiError::invalid(
            "The setting name in the path is not valid.",
            vec![Violation {
                field: "name".into(),
                description: e.body_text(),
            }],
        )
    })?;
    let request = with_bearer(
        grpc_request(
            settings_pb::DeleteSettingRequest { name },
            &ctx,
            budget::WRITE,
        ),
        &token,
    );
    state
        .settings()
        .delete_setting(request)
        .await
        .map_err(|s| from_grpc(&s, SETTINGS, ctx.deadline(budget::WRITE)))?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Operations, docs, the page, fallbacks

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok", "version": latchkey_common::telemetry::VERSION }))
}

async fn upstream_health(channel: Channel) -> &'static str {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request.set_timeout(budget::HEALTH);
    let mut client = HealthClient::new(channel);
    match tokio::time::timeout(budget::HEALTH, client.check(request)).await {
        Ok(Ok(response)) if response.get_ref().status == 1 => "serving",
        Ok(Ok(_)) => "not_serving",
        _ => "unreachable",
    }
}

async fn readyz(State(state): State<GatewayState>) -> Result<Json<Value>, Problem> {
    if state.inner.draining.load(Ordering::Relaxed) {
        return Err(ApiError::new(
            Reason::UpstreamUnavailable,
            "This gateway instance is shutting down; send requests to another instance.",
        )
        .with_metadata("state", "draining")
        .into());
    }
    let (auth, settings) = tokio::join!(
        upstream_health(state.inner.auth_channel.clone()),
        upstream_health(state.inner.settings_channel.clone())
    );
    if auth != "serving" {
        return Err(ApiError::unavailable(AUTH)
            .with_metadata("state", auth)
            .into());
    }
    if settings != "serving" {
        return Err(ApiError::unavailable(SETTINGS)
            .with_metadata("state", settings)
            .into());
    }
    Ok(Json(
        json!({ "status": "ready", "auth": auth, "settings": settings }),
    ))
}

async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document().to_string(),
    )
}

async fn page(State(state): State<GatewayState>) -> Response {
    crate::page::html_response(state.inner.page.clone())
}

async fn page_js() -> Response {
    crate::page::asset_response(crate::page::APP_JS, "text/javascript; charset=utf-8")
}

async fn page_css() -> Response {
    crate::page::asset_response(crate::page::APP_CSS, "text/css; charset=utf-8")
}

async fn not_found(method: Method, uri: http::Uri) -> Problem {
    ApiError::new(
        Reason::NotFound,
        format!(
            "There is no route {method} {}; /openapi.json lists every route.",
            uri.path()
        ),
    )
    .into()
}

async fn method_not_allowed(method: Method, uri: http::Uri) -> Response {
    let allowed = crate::openapi::methods_of(uri.path());
    let mut response = Problem(ApiError::new(
        Reason::MethodNotAllowed,
        format!(
            "{} does not accept {method}; it accepts {}. /openapi.json lists every route.",
            uri.path(),
            allowed.join(", ")
        ),
    ))
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Bodies without upstreams

/// A route that decodes a request body before its upstream call, for [`decode_body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRoute {
    /// `POST /api/auth/sync-user`.
    SyncUser,
    /// `POST /api/auth/token`.
    IssueToken,
    /// `PATCH` and `PUT /api/settings`.
    WriteSettings,
    /// `POST /api/settings/import`.
    Import,
}

/// Decodes and checks a body exactly as `route` does before its upstream call, calling nothing:
/// the `gateway_json` fuzz target (fuzz/README.md) drives hostile bodies through here.
pub fn decode_body(
    route: BodyRoute,
    headers: &HeaderMap,
    uri: &http::Uri,
    bytes: &Bytes,
) -> Result<(), ApiError> {
    match route {
        BodyRoute::SyncUser => sync_request(bytes).map(drop),
        BodyRoute::IssueToken => token_user(bytes).map(drop),
        BodyRoute::WriteSettings => setting_changes(bytes).map(drop),
        BodyRoute::Import => import_request(headers, uri, bytes).map(drop),
    }
}
