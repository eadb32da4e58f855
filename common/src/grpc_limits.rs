//! Limits for the gRPC servers (auth and settings), as tower layers around tonic's router:
//!
//! - [`ShedLayer`]: at most `max_concurrent` calls in progress (a call counts until its response
//!   body is finished, so open streams count too); beyond it a call is refused at once with
//!   `RATE_LIMITED` and a one-second `RetryInfo`, instead of queueing until everything times out.
//!   Health checks are never shed (a shed liveness probe would restart a busy pod).
//! - [`FailureLimitLayer`]: per peer address, a budget of credential failures on the RPCs that
//!   check a shared secret (sync secret, client credentials). A right secret always passes; once a
//!   peer's wrong ones exceed the budget they are answered `RATE_LIMITED` with the wait.

use crate::config::{Config, GRPC_FAILURE_RATE_PER_MINUTE, GRPC_MAX_CONCURRENT_REQUESTS, Problems};
use crate::ratelimit::RateLimiter;
use latchkey_proto::{ApiError, Reason};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type BoxFuture<T, E> = Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;
type GrpcResponse = http::Response<tonic::body::Body>;

/// The gRPC servers' limits, from `LATCHKEY_GRPC_MAX_CONCURRENT_REQUESTS` and
/// `LATCHKEY_GRPC_FAILURE_RATE_PER_MINUTE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcLimits {
    /// Calls in progress at most before shedding.
    pub max_concurrent: usize,
    /// Credential failures per peer per minute (0: unlimited).
    pub failures_per_minute: u32,
}

impl Default for GrpcLimits {
    /// The table's defaults.
    fn default() -> Self {
        GrpcLimits {
            max_concurrent: GRPC_MAX_CONCURRENT_REQUESTS
                .default_value()
                .expect("the table's default parses"),
            failures_per_minute: GRPC_FAILURE_RATE_PER_MINUTE
                .default_value()
                .expect("the table's default parses"),
        }
    }
}

impl GrpcLimits {
    /// Reads both settings (auth), recording a problem for each malformed one.
    pub fn from_config(config: &Config, problems: &mut Problems) -> GrpcLimits {
        let shedding = GrpcLimits::shedding_from_config(config, problems);
        GrpcLimits {
            failures_per_minute: config
                .parsed(GRPC_FAILURE_RATE_PER_MINUTE, "a whole number", problems)
                .unwrap_or(shedding.failures_per_minute),
            ..shedding
        }
    }

    /// Reads only the shedding limit, for a server that checks no shared secret (settings);
    /// the failure limit keeps its default and goes unused.
    pub fn shedding_from_config(config: &Config, problems: &mut Problems) -> GrpcLimits {
        let defaults = GrpcLimits::default();
        let max_concurrent = config
            .parsed(
                GRPC_MAX_CONCURRENT_REQUESTS,
                "a whole number of at least 1",
                problems,
            )
            .unwrap_or(defaults.max_concurrent);
        if max_concurrent == 0 {
            problems.push(
                GRPC_MAX_CONCURRENT_REQUESTS.env(),
                "0 would refuse every call",
                format!(
                    "set it to a whole number of at least 1 (default {})",
                    defaults.max_concurrent
                ),
            );
        }
        GrpcLimits {
            max_concurrent: max_concurrent.max(1),
            ..defaults
        }
    }
}

/// Answers a refusal from the catalogue as a trailers-only gRPC response.
fn refusal(error: ApiError) -> GrpcResponse {
    error.to_status().into_http()
}

// ---------------------------------------------------------------------------------------------
// Load shedding

/// Sheds calls beyond `max_concurrent` in progress.
#[derive(Clone)]
pub struct ShedLayer {
    service: &'static str,
    permits: Arc<Semaphore>,
}

impl ShedLayer {
    /// A limit of `max_concurrent` calls for the server named `service` (for metrics).
    pub fn new(service: &'static str, max_concurrent: usize) -> Self {
        ShedLayer {
            service,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }
}

impl<S> tower::Layer<S> for ShedLayer {
    type Service = Shed<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            service: self.service,
            permits: self.permits.clone(),
        }
    }
}

/// The service [`ShedLayer`] wraps.
#[derive(Clone)]
pub struct Shed<S> {
    inner: S,
    service: &'static str,
    permits: Arc<Semaphore>,
}

impl<S, B> tower::Service<http::Request<B>> for Shed<S>
where
    S: tower::Service<http::Request<B>, Response = GrpcResponse>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = GrpcResponse;
    type Error = S::Error;
    type Future = BoxFuture<GrpcResponse, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path().starts_with("/grpc.health.v1.Health/") {
            return Box::pin(self.inner.call(request));
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            tracing::warn!(
                service = self.service,
                "too many calls in progress; shedding"
            );
            crate::metrics::global().failure(self.service, Reason::RateLimited);
            let error = ApiError::new(
                Reason::RateLimited,
                format!(
                    "The service is at its limit of calls in progress; retry after the delay ({}).",
                    GRPC_MAX_CONCURRENT_REQUESTS.env()
                ),
            )
            .with_retry_after(Duration::from_secs(1));
            return Box::pin(async move { Ok(refusal(error)) });
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|body| tonic::body::Body::new(PermitBody { body, permit })))
        })
    }
}

/// A response body holding its call's permit until it is finished or dropped.
struct PermitBody {
    body: tonic::body::Body,
    #[allow(dead_code)]
    permit: OwnedSemaphorePermit,
}

impl http_body::Body for PermitBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

// ---------------------------------------------------------------------------------------------
// Credential failures per peer

/// Counts the listed refusals of the listed RPCs against the caller's address.
#[derive(Clone)]
pub struct FailureLimitLayer {
    service: &'static str,
    methods: &'static [&'static str],
    reasons: &'static [Reason],
    limiter: Arc<RateLimiter>,
}

impl FailureLimitLayer {
    /// `per_minute` failures per peer (0: unlimited) on `methods` (full paths such as
    /// `/latchkey.auth.v1.AuthService/SyncUser`), counting refusals with one of `reasons`.
    pub fn new(
        service: &'static str,
        methods: &'static [&'static str],
        reasons: &'static [Reason],
        per_minute: u32,
    ) -> Self {
        FailureLimitLayer {
            service,
            methods,
            reasons,
            limiter: Arc::new(RateLimiter::new(per_minute)),
        }
    }
}

impl<S> tower::Layer<S> for FailureLimitLayer {
    type Service = FailureLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        FailureLimit {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`FailureLimitLayer`] wraps.
#[derive(Clone)]
pub struct FailureLimit<S> {
    inner: S,
    layer: FailureLimitLayer,
}

fn peer_ip<B>(request: &http::Request<B>) -> Option<IpAddr> {
    request
        .extensions()
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|info| info.remote_addr())
        .map(|addr| addr.ip())
}

impl<S, B> tower::Service<http::Request<B>> for FailureLimit<S>
where
    S: tower::Service<http::Request<B>, Response = GrpcResponse>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = GrpcResponse;
    type Error = S::Error;
    type Future = BoxFuture<GrpcResponse, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let guarded = self.layer.methods.contains(&request.uri().path());
        let peer = peer_ip(&request);
        let future = self.inner.call(request);
        let layer = self.layer.clone();
        Box::pin(async move {
            let response = future.await?;
            let (true, Some(peer)) = (guarded, peer) else {
                return Ok(response);
            };
            let Some(status) = tonic::Status::from_header_map(response.headers()) else {
                return Ok(response);
            };
            let reason = ApiError::from_status(&status).reason;
            if status.code() == tonic::Code::Ok || !layer.reasons.contains(&reason) {
                return Ok(response);
            }
            match layer.limiter.take(peer) {
                Ok(()) => Ok(response),
                Err(wait) => {
                    tracing::info!(service = layer.service, %peer, "credential failures over the limit");
                    crate::metrics::global().failure(layer.service, Reason::RateLimited);
                    let error = ApiError::new(
                        Reason::RateLimited,
                        format!(
                            "Too many wrong credentials from this address; wait {} s (RetryInfo) and check the secret with `latchkey fingerprint`.",
                            wait.as_secs().max(1)
                        ),
                    )
                    .with_retry_after(wait);
                    Ok(refusal(error))
                }
            }
        })
    }
}
