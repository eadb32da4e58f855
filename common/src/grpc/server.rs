//! Serving one gRPC service the way every Latchkey server does: on a listener it bound itself
//! (port 0 in tests), beside `grpc.health.v1` and reflection (v1 and v1alpha), behind the common
//! layers — request id, metrics, version stamp, load shedding, the credential-failure limit and
//! the database breaker — and stopped gracefully: health flips to NOT_SERVING when draining
//! begins, the listener closes at the stop, in-flight calls get until the drain deadline.

use crate::breaker::DbBreakerLayer;
use crate::grpc_limits::{FailureLimitLayer, GrpcLimits, ShedLayer};
use crate::shutdown::Shutdown;
use latchkey_proto::Reason;
use std::convert::Infallible;
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::server::NamedService;

/// The RPCs that check a shared credential, and the refusals counted against the caller's
/// address when they fail (a right credential always passes). Empty for servers without any.
#[derive(Debug, Clone, Copy, Default)]
pub struct CredentialChecks {
    /// Full method paths, e.g. `/latchkey.auth.v1.AuthService/SyncUser`.
    pub methods: &'static [&'static str],
    /// The reasons that count as a wrong credential.
    pub failures: &'static [Reason],
}

/// One gRPC server: what it is called, what it serves, and its limits.
pub struct GrpcServer {
    /// The service's name in logs and metrics (`auth`, `settings`).
    pub name: &'static str,
    /// Its contract's encoded descriptor set (for reflection and metric labels).
    pub descriptor_set: &'static [u8],
    /// Shedding and credential-failure limits.
    pub limits: GrpcLimits,
    /// Which calls count credential failures.
    pub credential_checks: CredentialChecks,
    /// The breaker answering 503 at once while the service's database is down.
    pub breaker: DbBreakerLayer,
}

impl GrpcServer {
    /// Serves `service` on `listener` until `shutdown` stops it (see the module doc).
    pub async fn serve<S>(
        self,
        listener: TcpListener,
        service: S,
        shutdown: Shutdown,
    ) -> anyhow::Result<()>
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let name = self.name;
        let health = health_until_draining::<S>(&shutdown).await;
        let (reflection, reflection_v1alpha) = reflection_services(self.descriptor_set)?;
        let stopping = {
            let shutdown = shutdown.clone();
            async move { shutdown.wait().await }
        };
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "{name} serving");
        let server = tonic::transport::Server::builder()
            .layer(tower::util::MapRequestLayer::new(
                crate::telemetry::ensure_request_id::<Body>,
            ))
            .layer(crate::metrics::GrpcMetricsLayer::new(
                name,
                self.descriptor_set,
            ))
            .layer(tower::util::MapResponseLayer::new(
                crate::telemetry::stamp_version::<Body>,
            ))
            .layer(ShedLayer::new(name, self.limits.max_concurrent))
            .layer(FailureLimitLayer::new(
                name,
                self.credential_checks.methods,
                self.credential_checks.failures,
                self.limits.failures_per_minute,
            ))
            .layer(self.breaker)
            .trace_fn(crate::telemetry::grpc_span)
            .add_service(health)
            .add_service(reflection)
            .add_service(reflection_v1alpha)
            .add_service(service)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                stopping,
            );
        tokio::select! {
            served = server => served?,
            _ = shutdown.deadline() => {
                tracing::warn!("drain deadline passed; dropping the calls still in progress");
            }
        }
        tracing::info!("{name} stopped");
        Ok(())
    }
}

/// `grpc.health.v1` reporting `S` as serving until draining begins, then NOT_SERVING.
async fn health_until_draining<S: NamedService>(
    shutdown: &Shutdown,
) -> tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<S>().await;
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        shutdown.draining().await;
        reporter.set_not_serving::<S>().await;
    });
    health
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
