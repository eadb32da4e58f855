//! A short-lived "database down" breaker in front of a gRPC server. Once a call answers that the
//! server's database is unavailable, the breaker opens: further calls that need the database are
//! answered `UPSTREAM_UNAVAILABLE` at once instead of each waiting for the pool's acquire timeout,
//! while one background probe pings the database every [`PROBE_INTERVAL`]. The first ping that
//! succeeds closes the breaker, so service resumes within a fraction of a second of the database's
//! return, without a restart.

use latchkey_proto::ApiError;
use sea_orm::DatabaseConnection;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// How often an open breaker pings the database.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// How long one ping may take (a hung database never answers).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Shared state of one server's breaker. Cheap to clone.
#[derive(Clone)]
pub struct DbBreaker {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    /// The dependency named in answers, e.g. "the auth database".
    upstream: &'static str,
    open: AtomicBool,
    probing: AtomicBool,
}

impl DbBreaker {
    /// A closed breaker over `db`, answering as `upstream` while open.
    pub fn new(db: DatabaseConnection, upstream: &'static str) -> Self {
        DbBreaker {
            inner: Arc::new(Inner {
                db,
                upstream,
                open: AtomicBool::new(false),
                probing: AtomicBool::new(false),
            }),
        }
    }

    /// Whether calls needing the database are refused at once.
    pub fn is_open(&self) -> bool {
        self.inner.open.load(Ordering::Acquire)
    }

    /// Opens the breaker and starts the probe unless one runs. Must run inside a tokio runtime.
    pub fn trip(&self) {
        if !self.inner.open.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                upstream = self.inner.upstream,
                "database unavailable; answering 503 at once until a ping succeeds"
            );
        }
        if !self.inner.probing.swap(true, Ordering::AcqRel) {
            tokio::spawn(probe(self.inner.clone()));
        }
    }

    /// The answer while open.
    fn refusal(&self) -> ApiError {
        ApiError::unavailable(self.inner.upstream)
    }

    /// A tower layer applying this breaker to every method except those in `exempt` (full gRPC
    /// paths or prefixes of calls that never touch the database, e.g. health and reflection).
    pub fn layer(&self, exempt: &'static [&'static str]) -> DbBreakerLayer {
        DbBreakerLayer {
            breaker: self.clone(),
            exempt,
        }
    }
}

/// Pings until the database answers, then closes the breaker. The probe flag is cleared before
/// the breaker closes, so a trip racing with the close starts a new probe.
async fn probe(inner: Arc<Inner>) {
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        if let Ok(Ok(())) = tokio::time::timeout(PROBE_TIMEOUT, inner.db.ping()).await {
            inner.probing.store(false, Ordering::Release);
            inner.open.store(false, Ordering::Release);
            tracing::info!(upstream = inner.upstream, "database answers again");
            return;
        }
    }
}

/// Gates a gRPC server on its [`DbBreaker`].
#[derive(Clone)]
pub struct DbBreakerLayer {
    breaker: DbBreaker,
    exempt: &'static [&'static str],
}

impl<S> tower::Layer<S> for DbBreakerLayer {
    type Service = DbBreakerService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        DbBreakerService {
            inner,
            breaker: self.breaker.clone(),
            exempt: self.exempt,
        }
    }
}

/// The service [`DbBreakerLayer`] wraps.
#[derive(Clone)]
pub struct DbBreakerService<S> {
    inner: S,
    breaker: DbBreaker,
    exempt: &'static [&'static str],
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for DbBreakerService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let gated = !self.exempt.iter().any(|e| path.starts_with(e));
        if gated && self.breaker.is_open() {
            let response = self.breaker.refusal().to_status().into_http();
            return Box::pin(std::future::ready(Ok(response)));
        }
        let breaker = self.breaker.clone();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            if gated && names_outage(response.headers(), breaker.inner.upstream) {
                breaker.trip();
            }
            Ok(response)
        })
    }
}

/// True for a trailers-only UNAVAILABLE answer naming `upstream` (our own database's outage).
fn names_outage(headers: &http::HeaderMap, upstream: &str) -> bool {
    let unavailable = (tonic::Code::Unavailable as i32).to_string();
    if headers.get("grpc-status").and_then(|v| v.to_str().ok()) != Some(unavailable.as_str()) {
        return false;
    }
    tonic::Status::from_header_map(headers)
        .map(|status| ApiError::from_status(&status))
        .is_some_and(|error| error.metadata.get("upstream").map(String::as_str) == Some(upstream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use tower::{Service, ServiceExt};

    const UPSTREAM: &str = "the test database";

    async fn sqlite() -> DatabaseConnection {
        sea_orm::Database::connect("sqlite::memory:").await.unwrap()
    }

    /// A server answering every call with `answer`, counting calls.
    fn server(
        answer: ApiError,
        calls: Arc<AtomicUsize>,
    ) -> impl tower::Service<
        http::Request<()>,
        Response = http::Response<tonic::body::Body>,
        Error = std::convert::Infallible,
        Future = impl Send + 'static,
    > + Clone {
        tower::service_fn(move |_request: http::Request<()>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let response = answer.to_status().into_http();
            async move { Ok(response) }
        })
    }

    fn call(path: &str) -> http::Request<()> {
        http::Request::builder().uri(path).body(()).unwrap()
    }

    #[tokio::test]
    async fn an_outage_answer_opens_it_and_later_calls_are_refused_without_reaching_the_server() {
        let breaker = DbBreaker::new(sqlite().await, UPSTREAM);
        let calls = Arc::new(AtomicUsize::new(0));
        let layer = breaker.layer(&["/grpc.health.v1."]);
        let mut service = tower::Layer::layer(
            &layer,
            server(ApiError::unavailable(UPSTREAM), calls.clone()),
        );
        let first = service
            .ready()
            .await
            .unwrap()
            .call(call("/x/A"))
            .await
            .unwrap();
        assert_eq!(first.headers()["grpc-status"], "14");
        assert!(breaker.is_open());
        let second = service
            .ready()
            .await
            .unwrap()
            .call(call("/x/A"))
            .await
            .unwrap();
        assert_eq!(second.headers()["grpc-status"], "14");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "refused without calling");
        service
            .ready()
            .await
            .unwrap()
            .call(call("/grpc.health.v1.Health/Check"))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "exempt calls pass");
    }

    #[tokio::test]
    async fn other_failures_leave_it_closed() {
        let breaker = DbBreaker::new(sqlite().await, UPSTREAM);
        let calls = Arc::new(AtomicUsize::new(0));
        let layer = breaker.layer(&[]);
        for answer in [
            ApiError::unavailable("the auth service"),
            ApiError::internal(),
        ] {
            let mut service = tower::Layer::layer(&layer, server(answer, calls.clone()));
            service
                .ready()
                .await
                .unwrap()
                .call(call("/x/A"))
                .await
                .unwrap();
            assert!(!breaker.is_open());
        }
    }

    #[tokio::test]
    async fn it_stays_open_while_the_database_refuses() {
        let mut options = sea_orm::ConnectOptions::new("postgres://nobody@127.0.0.1:1/none");
        options
            .connect_lazy(true)
            .acquire_timeout(Duration::from_millis(100));
        let unreachable = sea_orm::Database::connect(options).await.unwrap();
        let breaker = DbBreaker::new(unreachable, UPSTREAM);
        breaker.trip();
        tokio::time::sleep(PROBE_INTERVAL * 3).await;
        assert!(breaker.is_open());
    }

    #[tokio::test]
    async fn a_successful_ping_closes_it() {
        let breaker = DbBreaker::new(sqlite().await, UPSTREAM);
        breaker.trip();
        assert!(breaker.is_open());
        for _ in 0..50 {
            if !breaker.is_open() {
                return;
            }
            tokio::time::sleep(PROBE_INTERVAL / 4).await;
        }
        panic!("the breaker stays open although the database answers");
    }
}
