//! Prometheus metrics shared by every service in the process: request counts and latency by
//! RPC/route and status, failures by catalogue reason, JWKS refreshes, rows per encryption key.
//! `render()` gives the text exposition, served on `LATCHKEY_METRICS_LISTEN` only (never on a
//! public port). Every label comes from a closed set — catalogue reasons, gRPC methods of the
//! served descriptor sets (else `unknown`), the gateway's route templates (else `unmatched`) and
//! known HTTP methods (else `OTHER`) — so no request can add series.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

/// The process-wide metric families.
pub struct Metrics {
    registry: Registry,
    /// Requests by service, method (RPC path or route) and status (gRPC code or HTTP status).
    pub requests: IntCounterVec,
    /// Request latency in seconds by service and method.
    pub latency: HistogramVec,
    /// Refused requests by service and catalogue reason (TOKEN_EXPIRED, SYNC_SECRET_INVALID…).
    pub failures: IntCounterVec,
    /// JWKS fetches by the verifying service.
    pub jwks_refreshes: IntCounterVec,
    /// Stored settings rows per encryption key id.
    pub rows_per_key: IntGaugeVec,
    /// Users (among those holding any setting) missing a required declared setting; no labels.
    pub users_missing_required: IntGauge,
}

/// The global metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new_custom(Some("latchkey".into()), None).expect("registry");
        let requests = IntCounterVec::new(
            Opts::new("requests_total", "requests by service, method and status"),
            &["service", "method", "status"],
        )
        .expect("metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "request_duration_seconds",
                "request latency by service and method",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["service", "method"],
        )
        .expect("metric");
        let failures = IntCounterVec::new(
            Opts::new("failures_total", "refused requests by catalogue reason"),
            &["service", "reason"],
        )
        .expect("metric");
        let jwks_refreshes = IntCounterVec::new(
            Opts::new("jwks_refreshes_total", "JWKS fetches by verifying service"),
            &["service"],
        )
        .expect("metric");
        let rows_per_key = IntGaugeVec::new(
            Opts::new(
                "settings_rows_per_key",
                "stored settings rows per encryption key id",
            ),
            &["key_id"],
        )
        .expect("metric");
        let users_missing_required = IntGauge::new(
            "settings_users_missing_required",
            "users holding settings who miss a required declared setting",
        )
        .expect("metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(failures.clone()),
            Box::new(jwks_refreshes.clone()),
            Box::new(rows_per_key.clone()),
            Box::new(users_missing_required.clone()),
        ] {
            registry.register(collector).expect("unique metric names");
        }
        Metrics {
            registry,
            requests,
            latency,
            failures,
            jwks_refreshes,
            rows_per_key,
            users_missing_required,
        }
    }

    /// Counts one refusal by reason.
    pub fn failure(&self, service: &str, reason: latchkey_proto::Reason) {
        self.failures
            .with_label_values(&[service, reason.as_str()])
            .inc();
    }

    /// Records one finished request.
    pub fn observe(&self, service: &str, method: &str, status: &str, started: Instant) {
        self.requests
            .with_label_values(&[service, method, status])
            .inc();
        self.latency
            .with_label_values(&[service, method])
            .observe(started.elapsed().as_secs_f64());
    }
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    let mut buffer = Vec::new();
    TextEncoder::new()
        .encode(&global().registry.gather(), &mut buffer)
        .expect("text encoding");
    String::from_utf8(buffer).unwrap_or_default()
}

/// Serves `GET /metrics` on `listener` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: crate::shutdown::Shutdown,
) -> std::io::Result<()> {
    let app = axum::Router::new().route("/metrics", axum::routing::get(|| async { render() }));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}

/// The method label of a path no served service has: what the caller sent is never a label.
pub const UNKNOWN_METHOD: &str = "unknown";

/// gRPC methods every Latchkey server serves besides its own: health and reflection.
const STANDARD_METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// Every `/package.Service/Method` path of an encoded `FileDescriptorSet`.
pub fn grpc_methods(descriptor_set: &[u8]) -> Vec<String> {
    use prost::Message;
    let Ok(set) = prost_types::FileDescriptorSet::decode(descriptor_set) else {
        return Vec::new();
    };
    let mut paths = Vec::new();
    for file in &set.file {
        let package = file.package();
        for service in &file.service {
            for method in &service.method {
                let service_name = if package.is_empty() {
                    service.name().to_owned()
                } else {
                    format!("{package}.{}", service.name())
                };
                paths.push(format!("/{service_name}/{}", method.name()));
            }
        }
    }
    paths
}

/// A tower layer counting gRPC requests by method and `grpc-status` (trailers-only errors carry it
/// in the headers; a response without it in the headers is counted as OK). The method label is
/// the path when it is one the server serves, else [`UNKNOWN_METHOD`].
#[derive(Clone)]
pub struct GrpcMetricsLayer {
    service: &'static str,
    methods: std::sync::Arc<std::collections::HashSet<String>>,
}

impl GrpcMetricsLayer {
    /// Metrics labelled with `service`, knowing the methods of `descriptor_set` (plus health and
    /// reflection).
    pub fn new(service: &'static str, descriptor_set: &[u8]) -> Self {
        let methods = grpc_methods(descriptor_set)
            .into_iter()
            .chain(STANDARD_METHODS.iter().map(|m| (*m).to_owned()))
            .collect();
        GrpcMetricsLayer {
            service,
            methods: std::sync::Arc::new(methods),
        }
    }

    /// The label for a request path.
    pub fn method_label(&self, path: &str) -> String {
        match self.methods.get(path) {
            Some(known) => known.clone(),
            None => UNKNOWN_METHOD.to_owned(),
        }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`GrpcMetricsLayer`] wraps.
#[derive(Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    layer: GrpcMetricsLayer,
}

impl<S, B, RB> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = self.layer.method_label(request.uri().path());
        let service = self.layer.service;
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            let status = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|code| code.parse::<i32>().ok())
                .map(|code| format!("{:?}", tonic::Code::from_i32(code)))
                .unwrap_or_else(|| "Ok".to_owned());
            global().observe(service, &method, &status, started);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn grpc_method_labels_are_the_served_methods_or_unknown() {
        let layer = super::GrpcMetricsLayer::new("auth", latchkey_proto::AUTH_DESCRIPTOR_SET);
        assert_eq!(
            layer.method_label("/latchkey.auth.v1.AuthService/SyncUser"),
            "/latchkey.auth.v1.AuthService/SyncUser"
        );
        assert_eq!(
            layer.method_label("/grpc.health.v1.Health/Check"),
            "/grpc.health.v1.Health/Check"
        );
        assert_eq!(layer.method_label(&"/x".repeat(50_000)), "unknown");
        assert_eq!(
            layer.method_label("/latchkey.auth.v1.AuthService/NoSuchMethod"),
            "unknown"
        );
    }

    #[test]
    fn failures_show_in_the_exposition() {
        super::global().failure("auth", latchkey_proto::Reason::TokenExpired);
        let text = super::render();
        assert!(
            text.contains(r#"latchkey_failures_total{reason="TOKEN_EXPIRED",service="auth"}"#),
            "{text}"
        );
    }
}
