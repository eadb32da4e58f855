//! Tracing: the subscriber (text or JSON, filtered by `RUST_LOG`) and the span every gRPC request
//! runs in, carrying its request id so each log line and error can be tied to a request.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call twice (the second call is a no-op).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The request id of an incoming request: the caller's `x-request-id` when it is sane, else new.
pub fn request_id<B>(request: &http::Request<B>) -> String {
    request
        .headers()
        .get(latchkey_proto::REQUEST_ID_METADATA)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Gives a request without a usable `x-request-id` a fresh one, so the span, the handler's
/// errors and the logs all carry the same id. Used as a `MapRequestLayer` on gRPC servers.
pub fn ensure_request_id<B>(mut request: http::Request<B>) -> http::Request<B> {
    let id = request_id(&request);
    if let Ok(value) = http::HeaderValue::from_str(&id) {
        request
            .headers_mut()
            .insert(latchkey_proto::REQUEST_ID_METADATA, value);
    }
    request
}

/// The span for one gRPC call: method path and request id, nothing from the body or secrets.
pub fn grpc_span(request: &http::Request<()>) -> tracing::Span {
    tracing::info_span!("rpc", method = %request.uri().path(), request_id = %request_id(request))
}
