//! The gateway's HTTP server: an accept loop over hyper (HTTP/1.1, and HTTP/2 with prior
//! knowledge) with the defences `axum::serve` lacks:
//!
//! - a **connection cap** (`LATCHKEY_HTTP_MAX_CONNECTIONS`): at the cap the loop stops accepting
//!   and new connections wait in the kernel's backlog, so descriptors are never exhausted;
//! - a **header timeout** (`LATCHKEY_HTTP_HEADER_TIMEOUT_SECS`): a request head must be whole this
//!   long after its first byte, or the connection is closed (slowloris);
//! - an **idle timeout** (`LATCHKEY_HTTP_IDLE_TIMEOUT_SECS`): a connection with no request in
//!   progress and nothing received for this long is closed. It is separate from the header
//!   timeout so it can stay above a load balancer's keep-alive (a backend that closes first
//!   races the balancer's next request on that connection);
//! - **graceful shutdown**: at the stop, connections the kernel has already completed are still
//!   accepted, then the listener closes; connections with a request in progress finish it
//!   (keep-alive off); idle keep-alive connections close at once; a connection without a complete
//!   head gets [`STOP_GRACE`] to finish sending it (a request in transit at the signal is served,
//!   a slowloris is not waited for); whatever is left at the drain deadline is dropped.
//!
//! A request counts as in progress from its complete head until its response body is written.

use crate::config::HttpLimits;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use latchkey_common::shutdown::Shutdown;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant};

/// How long a connection without a complete request head is kept after the stop.
pub const STOP_GRACE: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown` stops it, then drains (see the module docs).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: Shutdown,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Some(permit) = connection_permit(&permits, limits.max_connections, &shutdown).await
        else {
            break;
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error, &shutdown).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let connection = Connection::new(limits, shutdown.clone(), permit);
        connections.spawn(connection.serve(stream, peer, router.clone()));
    }
    // Clients whose handshake completed before the stop sent their request to us: serve them
    // rather than reset them with the listener.
    while let Ok(permit) = permits.clone().try_acquire_owned() {
        let Ok(Ok((stream, peer))) = tokio::time::timeout(Duration::ZERO, listener.accept()).await
        else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection::new(limits, shutdown.clone(), permit);
        connections.spawn(connection.serve(stream, peer, router.clone()));
    }
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        "gateway stopped accepting; finishing requests in progress"
    );
    let drained = async { while connections.join_next().await.is_some() {} };
    tokio::select! {
        _ = drained => {}
        _ = shutdown.deadline() => {
            tracing::warn!(
                connections = connections.len(),
                "drain deadline passed; dropping the connections left"
            );
            connections.abort_all();
        }
    }
    Ok(())
}

/// A slot under the connection cap, waiting (not accepting) while the cap is reached; None once
/// shutdown stops the server.
async fn connection_permit(
    permits: &Arc<Semaphore>,
    max: usize,
    shutdown: &Shutdown,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = permits.clone().try_acquire_owned() {
        return Some(permit);
    }
    tracing::warn!(
        max_connections = max,
        "connection cap reached; new connections wait in the listen backlog"
    );
    tokio::select! {
        permit = permits.clone().acquire_owned() => permit.ok(),
        _ = shutdown.wait() => None,
    }
}

/// An accept error: a client that left before we accepted is nothing; anything else (such as
/// running out of descriptors) is logged and retried shortly.
async fn accept_failed(error: io::Error, shutdown: &Shutdown) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "accepting a connection failed; retrying");
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        _ = shutdown.wait() => {}
    }
}

/// Marks "no partial head".
const NO_HEAD: u64 = u64::MAX;

/// What one connection's watchdog needs to know, updated by its I/O and its requests.
struct ConnState {
    opened: Instant,
    /// Requests whose head arrived and whose response body is not written yet.
    in_flight: AtomicUsize,
    /// When the first byte of a not yet complete head arrived (ms since `opened`), or NO_HEAD.
    head_since: AtomicU64,
    /// When bytes last arrived or a request finished (ms since `opened`).
    last_activity: AtomicU64,
    /// A write is waiting for the client to read.
    write_blocked: AtomicBool,
    /// Wakes the watchdog when its deadline may have moved earlier or a request ended.
    changed: Notify,
}

impl ConnState {
    /// A new connection owes its first head from the moment it opened.
    fn new() -> Self {
        ConnState {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            head_since: AtomicU64::new(0),
            last_activity: AtomicU64::new(0),
            write_blocked: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    fn received(&self) {
        let now = self.now_ms();
        self.last_activity.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0
            && self
                .head_since
                .compare_exchange(NO_HEAD, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(NO_HEAD, Ordering::Release);
        self.changed.notify_one();
    }

    fn request_finished(&self) {
        self.last_activity.store(self.now_ms(), Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    fn is_quiet(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && !self.write_blocked.load(Ordering::Acquire)
    }

    /// When the connection must be closed if nothing changes: none while a request is in
    /// progress, the header deadline while a head is arriving, else the idle deadline.
    fn deadline(&self, limits: &HttpLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let head = self.head_since.load(Ordering::Acquire);
        if head != NO_HEAD {
            return Some(self.at(head) + limits.header_timeout);
        }
        Some(self.at(self.last_activity.load(Ordering::Relaxed)) + limits.idle_timeout)
    }
}

/// One accepted connection.
struct Connection {
    limits: HttpLimits,
    shutdown: Shutdown,
    state: Arc<ConnState>,
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    fn new(limits: HttpLimits, shutdown: Shutdown, permit: OwnedSemaphorePermit) -> Self {
        Connection {
            limits,
            shutdown,
            state: Arc::new(ConnState::new()),
            _permit: permit,
        }
    }

    async fn serve(self, stream: TcpStream, peer: SocketAddr, router: Router) {
        let io = TokioIo::new(WatchedIo {
            inner: stream,
            state: self.state.clone(),
        });
        let service = hyper::service::service_fn({
            let state = self.state.clone();
            move |request: http::Request<hyper::body::Incoming>| {
                handle(router.clone(), state.clone(), peer, request)
            }
        });
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        let connection = builder.serve_connection_with_upgrades(io, service);
        tokio::pin!(connection);
        let mut stopped_at: Option<Instant> = None;
        loop {
            let mut deadline = self.state.deadline(&self.limits);
            if let Some(stop) = stopped_at
                && self.state.is_quiet()
            {
                let grace = stop + STOP_GRACE;
                deadline = Some(deadline.map_or(grace, |due| due.min(grace)));
            }
            tokio::select! {
                biased;
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    return;
                }
                _ = self.shutdown.wait(), if stopped_at.is_none() => {
                    stopped_at = Some(Instant::now());
                    connection.as_mut().graceful_shutdown();
                }
                _ = sleep_until(deadline) => {
                    let now = Instant::now();
                    let grace_over = stopped_at.is_some_and(|stop| stop + STOP_GRACE <= now)
                        && self.state.is_quiet();
                    let timed_out = self.state.deadline(&self.limits).is_some_and(|d| d <= now);
                    if grace_over || timed_out {
                        tracing::debug!(%peer, "closing a connection: header or idle timeout, or stopped");
                        return;
                    }
                }
                _ = self.state.changed.notified() => {}
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Runs one request through the router, with the peer address for the per-IP limits, counting
/// it in progress until its response body is dropped (written or abandoned).
async fn handle(
    router: Router,
    state: Arc<ConnState>,
    peer: SocketAddr,
    request: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Body>, std::convert::Infallible> {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    state.request_started();
    let guard = InFlight(state);
    let mut request = request.map(Body::new);
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = router.oneshot(request).await?;
    Ok(response.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _held = &guard;
            frame
        }))
    }))
}

/// Ends a request's "in progress" when dropped with its response body.
struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// The socket, reporting to the connection's watchdog when bytes arrive and when a write waits.
struct WatchedIo {
    inner: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.received();
        }
        polled
    }
}

impl WatchedIo {
    fn note_write<T>(&self, polled: &Poll<io::Result<T>>) {
        self.state
            .write_blocked
            .store(polled.is_pending(), Ordering::Release);
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note_write(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_write(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.note_write(&polled);
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
