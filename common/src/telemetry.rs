//! Tracing: the subscriber (text or JSON, filtered by `RUST_LOG`), OTLP export when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, W3C trace context carried across gRPC calls, and the span
//! every gRPC request runs in with its request id, so each log line and error ties to a request.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Flushes exported spans when dropped (keep it alive for the life of the process).
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber (a second call is a no-op) and, when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, an OTLP/gRPC span exporter named after `service`.
pub fn init(json: bool, service: &'static str) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|endpoint| !endpoint.is_empty())
        .and_then(|endpoint| otlp_provider(&endpoint, service));
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service)));
    // Logs go to stderr, so command output on stdout (`config --required`, `doctor --json`) stays clean.
    let fmt_text = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
    });
    let fmt_json = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_target(false)
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(fmt_text)
        .with(fmt_json)
        .try_init();
    TelemetryGuard { provider }
}

fn otlp_provider(endpoint: &str, service: &'static str) -> Option<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build();
    match exporter {
        Ok(exporter) => Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name(service)
                        .build(),
                )
                .build(),
        ),
        Err(error) => {
            eprintln!(
                "latchkey: OTEL_EXPORTER_OTLP_ENDPOINT is set but the exporter failed: {error}"
            );
            None
        }
    }
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

/// The version every Latchkey process reports (the workspace shares one version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Response metadata naming the build that answered a gRPC call, so `doctor` can tell whether
/// every service runs the same release.
pub const VERSION_METADATA: &str = "x-latchkey-version";

/// Stamps a gRPC response with [`VERSION_METADATA`]. Used as a `MapResponseLayer` on the servers.
pub fn stamp_version<B>(mut response: http::Response<B>) -> http::Response<B> {
    response
        .headers_mut()
        .insert(VERSION_METADATA, http::HeaderValue::from_static(VERSION));
    response
}

/// The span for one gRPC call: method path and request id, nothing from the body or secrets;
/// its parent is the caller's W3C `traceparent`, so one trace spans gateway → auth → settings.
pub fn grpc_span(request: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!("rpc", method = %request.uri().path(), request_id = %request_id(request));
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
    let _ = span.set_parent(parent);
    span
}

/// Writes the current span's W3C trace context into outgoing headers (gRPC metadata or HTTP).
pub fn inject_trace_context(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

/// Makes `span` a child of the W3C trace context in incoming HTTP headers (when there is one).
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
}

/// [`inject_trace_context`] for a tonic request's metadata. Returns false when no trace is
/// being recorded (no OpenTelemetry layer), so the caller may forward the incoming header as is.
pub fn inject_into_metadata(metadata: &mut tonic::metadata::MetadataMap) -> bool {
    let mut headers = http::HeaderMap::new();
    inject_trace_context(&mut headers);
    let injected = headers.contains_key("traceparent");
    for (name, value) in headers.iter() {
        let key = tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes());
        let value = value
            .to_str()
            .ok()
            .and_then(|v| tonic::metadata::MetadataValue::try_from(v).ok());
        if let (Ok(key), Some(value)) = (key, value) {
            metadata.insert(key, value);
        }
    }
    injected
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}
