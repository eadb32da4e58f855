//! Per-request facts and the middleware that sets them: the request id, the client IP behind
//! trusted proxies, the trace context, the arrival time, the span and the request metric. The
//! metric's route label is the matched route template (`MatchedPath`), or `unmatched`: labels
//! come from a closed set whatever the client sends.

use crate::state::GatewayState;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use tracing::Instrument;

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// Per-request facts every handler needs.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The caller's `x-request-id` when acceptable, else a fresh one; logged and sent upstream.
    pub request_id: String,
    /// The address the per-IP limits count: the peer, or the client a trusted proxy names.
    pub client_ip: IpAddr,
    /// When the request arrived: every route budget counts from here, across all its calls.
    pub(crate) started: Instant,
    /// The caller's trace context, passed on when the gateway records no trace of its own.
    pub(crate) traceparent: Option<HeaderValue>,
    pub(crate) tracestate: Option<HeaderValue>,
}

/// Gives the request its id and client IP, renders any problem with that id, adds
/// `x-request-id` and security headers, and counts the request.
pub async fn request_context(
    State(state): State<GatewayState>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let ctx = context_of(&state, &request, started);
    let request_id = ctx.request_id.clone();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |m| m.as_str().to_owned());
    request.extensions_mut().insert(ctx);
    let span = tracing::info_span!("http", method, route, request_id = %request_id);
    latchkey_common::telemetry::continue_trace(&span, request.headers());
    let response = next.run(request).instrument(span.clone()).await;
    let mut response = super::problem::render_pending(response, &span, &request_id);
    super::headers::secure(response.headers_mut(), &request_id);
    latchkey_common::metrics::global().observe(
        "gateway",
        &format!("{method} {route}"),
        response.status().as_str(),
        started,
    );
    response
}

/// The request's [`Ctx`]: its id (the caller's, if acceptable), the client address resolved
/// through the trusted proxies, and the trace context to pass on.
fn context_of(state: &GatewayState, request: &Request, started: Instant) -> Ctx {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    Ctx {
        request_id: latchkey_common::telemetry::request_id(request),
        client_ip: state.inner.client_ip.resolve(peer, request.headers()),
        traceparent: request.headers().get("traceparent").cloned(),
        tracestate: request.headers().get("tracestate").cloned(),
        started,
    }
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
