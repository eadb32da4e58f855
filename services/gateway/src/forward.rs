//! Building the gRPC request a route sends upstream: what is left of the route's time budget as
//! the gRPC deadline (the budget counts from the request's arrival and covers every call it
//! makes), and only the allowed metadata — `x-request-id`, `traceparent`, `tracestate`, the
//! caller's bearer token and, on the sync routes, the sync secret.

use crate::middleware::Ctx;
use axum::http::HeaderValue;
use latchkey_common::upstream::Deadline;
use secrecy::{ExposeSecret, SecretString};
use std::time::{Duration, Instant};
use tonic::metadata::{Ascii, MetadataMap, MetadataValue};

/// How errors name auth (e.g. "the auth service is unavailable").
pub const AUTH: &str = "the auth service";
/// How errors name settings.
pub const SETTINGS: &str = "the settings service";

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

impl Ctx {
    /// The request's deadline under `budget`, counted from its arrival.
    pub fn deadline(&self, budget: Duration) -> Deadline {
        Deadline::new(self.started, budget)
    }

    /// The same request's context with its budgets counted from now, for work it leaves
    /// running in the background.
    pub fn restarted(&self) -> Ctx {
        Ctx {
            started: Instant::now(),
            ..self.clone()
        }
    }
}

/// A gRPC request carrying only the allowed metadata and the time left of the route's budget
/// (counted from the request's arrival, so every call of one request shares one budget).
pub fn grpc_request<T>(message: T, ctx: &Ctx, budget: Duration) -> tonic::Request<T> {
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

/// A verified caller's token, and what to present upstream: for a legacy (HS256) token, the
/// Latchkey token auth exchanged it for (settings verifies only Latchkey's keys); otherwise itself.
pub struct Bearer {
    /// The token as the caller sent it (the token cache's key).
    pub presented: String,
    /// The Latchkey token auth exchanged a legacy token for, if it did.
    pub exchanged: Option<SecretString>,
}

impl Bearer {
    fn upstream(&self) -> &str {
        self.exchanged
            .as_ref()
            .map_or(self.presented.as_str(), |token| token.expose_secret())
    }
}

/// `request` carrying the caller's token (or its exchanged stand-in) as `authorization`, marked
/// sensitive so HTTP/2 never puts it in the header compression table (RFC 7541 §7.1.3).
pub fn with_bearer<T>(mut request: tonic::Request<T>, token: &Bearer) -> tonic::Request<T> {
    if let Ok(mut value) = MetadataValue::try_from(format!("Bearer {}", token.upstream())) {
        value.set_sensitive(true);
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// `request` carrying the web app's sync secret, for `SyncUser` and `IssueToken`; sensitive, as
/// the bearer is in [`with_bearer`].
pub fn with_sync_secret<T>(
    mut request: tonic::Request<T>,
    secret: &MetadataValue<Ascii>,
) -> tonic::Request<T> {
    let mut secret = secret.clone();
    secret.set_sensitive(true);
    request
        .metadata_mut()
        .insert(latchkey_proto::SYNC_SECRET_METADATA, secret);
    request
}
