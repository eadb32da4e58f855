//! A gRPC client transport straight on `h2`, for the gateway's calls to auth and settings.
//!
//! Why not tonic's `Channel`: every call through it crosses four tasks before a byte is written —
//! the `tower::Buffer` worker in front of the connection, hyper's client dispatch task, and a task
//! hyper spawns per call for the request body and another for the response — and the answer
//! crosses them back. On the gateway's hottest path (every REST request makes one such call) those
//! hand-offs were the largest cost left that was ours. Here the caller's own task opens the stream
//! on the shared HTTP/2 connection, writes the (unary) message and awaits the answer; only the
//! connection's socket I/O runs in a task of its own. tonic's generated clients and codecs are
//! used unchanged on top (this is their `GrpcService`).
//!
//! What it keeps from the channel it replaces: connections are opened lazily and again after
//! they end (a restart, a GOAWAY, a dead peer found by keep-alive pings), connect attempts are
//! bounded by the profile's connect timeout, the call's `grpc-timeout` is enforced on this side
//! too, calls spread round robin over every address a name resolves to (see [`crate::balance`]),
//! an address that refused a connection is skipped for a moment while another answers, and every
//! failure on the way is a `tonic::Status` the callers read as the upstream being unavailable.
//! Request bodies are read whole before they are sent: unary and server-streaming calls only.
//! Plain `http://` (h2c) only, as tonic's channel was without its TLS feature.

use crate::balance::{self, BalanceError, Target};
use crate::grpc::ChannelProfile;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tonic::body::Body;

/// HTTP/2 windows as hyper's client sets them (tonic's channel used those).
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;
/// How long an address that refused a connection is passed over while another answers.
const DOWN_FOR: Duration = Duration::from_secs(1);

/// A lazily connected, balanced HTTP/2 transport for tonic clients; cheap to clone.
#[derive(Clone)]
pub struct DirectChannel {
    shared: Arc<Shared>,
}

struct Shared {
    profile: ChannelProfile,
    peers: RwLock<Vec<Arc<Peer>>>,
    next: AtomicUsize,
}

/// One upstream address and its (at most one) live connection.
struct Peer {
    key: String,
    target: Target,
    live: Mutex<Option<Live>>,
    /// Held by the one connection attempt under way.
    connecting: Arc<tokio::sync::Mutex<()>>,
    generation: AtomicU64,
    /// When the last connection attempt failed, if the last one did.
    failed_at: Mutex<Option<Instant>>,
}

#[derive(Clone)]
struct Live {
    generation: u64,
    sender: h2::client::SendRequest<Bytes>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl DirectChannel {
    /// A channel over `urls` with `profile`'s connect timeout and keep-alive; names are
    /// re-resolved every [`balance::REFRESH`]. Must be called inside a tokio runtime when any URL
    /// is a name.
    pub fn new(profile: ChannelProfile, urls: &[String]) -> Result<DirectChannel, BalanceError> {
        DirectChannel::with_resolver(profile, urls, balance::system_resolver(), balance::REFRESH)
    }

    /// [`DirectChannel::new`] with the resolver and refresh interval given.
    pub fn with_resolver(
        profile: ChannelProfile,
        urls: &[String],
        resolver: balance::Resolver,
        refresh: Duration,
    ) -> Result<DirectChannel, BalanceError> {
        let targets = balance::targets(urls)?;
        if let Some((url, _)) = targets
            .iter()
            .find(|(_, target)| target.uri.scheme_str() != Some("http"))
        {
            // Plain HTTP/2 only: TLS between the services is the network's (a mesh, a VPN).
            return Err(BalanceError::InvalidUrl(url.clone()));
        }
        let shared = Arc::new(Shared {
            profile,
            peers: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
        });
        for (key, target) in &targets {
            shared.apply(balance::Change::Insert(key.clone(), target.clone()));
        }
        if let Some(mut followed) = balance::follow_names(&targets, resolver, refresh) {
            let weak = Arc::downgrade(&shared);
            tokio::spawn(async move {
                while let Some(change) = followed.recv().await {
                    let Some(shared) = weak.upgrade() else { return };
                    shared.apply(change);
                }
            });
        }
        Ok(DirectChannel { shared })
    }

    async fn call(
        shared: Arc<Shared>,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, BoxError> {
        match grpc_timeout(request.headers()) {
            Some(limit) => tokio::time::timeout(limit, shared.exchange(request))
                .await
                .map_err(|_| -> BoxError {
                    Box::new(tonic::Status::deadline_exceeded(
                        "the upstream did not answer within the call's deadline",
                    ))
                })?,
            None => shared.exchange(request).await,
        }
    }
}

impl Shared {
    fn apply(&self, change: balance::Change) {
        let mut peers = self.peers.write().unwrap_or_else(|p| p.into_inner());
        match change {
            balance::Change::Insert(key, target) => {
                peers.retain(|peer| peer.key != key);
                peers.push(Arc::new(Peer::new(key, target)));
            }
            balance::Change::Remove(key) => peers.retain(|peer| peer.key != key),
        }
    }

    /// The peers in the order this call tries them: round robin, addresses that just refused a
    /// connection or are still opening one last.
    fn candidates(&self) -> Vec<Arc<Peer>> {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        let count = peers.len();
        if count == 1 {
            return vec![peers[0].clone()];
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut order: Vec<Arc<Peer>> = (0..count)
            .map(|i| peers[(start + i) % count].clone())
            .collect();
        order.sort_by_key(|peer| peer.is_down(now) || peer.is_connecting());
        order
    }

    async fn exchange(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, BoxError> {
        let (parts, body) = request.into_parts();
        let message = http_body_util::BodyExt::collect(body).await?.to_bytes();
        let mut refused: Option<BoxError> = None;
        let candidates = self.candidates();
        for peer in &candidates {
            if let Some(answer) = self.try_peer(peer, &parts, &message, &mut refused).await {
                return answer;
            }
        }
        // No address had a connection: every one is being opened now; the first to answer
        // takes the call (an address that never answers is not waited on while another does).
        let mut attempts = tokio::task::JoinSet::new();
        for peer in candidates {
            attempts.spawn(async move {
                drop(peer.connecting.lock().await);
                peer.current().is_some().then_some(peer)
            });
        }
        while let Some(attempt) = attempts.join_next().await {
            let Ok(Some(peer)) = attempt else { continue };
            if let Some(answer) = self.try_peer(&peer, &parts, &message, &mut refused).await {
                return answer;
            }
        }
        Err(refused.unwrap_or_else(|| unavailable("no upstream address known")))
    }

    /// The call's answer from `peer`, or `None` (its reason kept in `refused`) when nothing was
    /// sent and another address may take it.
    async fn try_peer(
        &self,
        peer: &Arc<Peer>,
        parts: &http::request::Parts,
        message: &Bytes,
        refused: &mut Option<BoxError>,
    ) -> Option<Result<http::Response<Body>, BoxError>> {
        match self.send_to(peer, parts, message.clone()).await {
            Ok(response) => Some(Ok(response)),
            Err(Failure::Connect(error)) => {
                *refused = Some(error);
                None
            }
            Err(Failure::Call(error)) => Some(Err(error)),
        }
    }

    /// One call on `peer`'s live connection (`Failure::Connect` while it has none). A connection
    /// that ended before the stream opened (a GOAWAY, a restart) has sent nothing, and neither
    /// has a stream the peer refused unprocessed (REFUSED_STREAM): another connection or address
    /// may take the call.
    async fn send_to(
        &self,
        peer: &Arc<Peer>,
        parts: &http::request::Parts,
        message: Bytes,
    ) -> Result<http::Response<Body>, Failure> {
        let live = peer.live(&self.profile).map_err(Failure::Connect)?;
        let (response, mut stream) = match open(&live, peer.head(parts)?).await {
            Ok(opened) => opened,
            Err(error) => {
                peer.forget(live.generation);
                peer.connect_in_background(&self.profile);
                return Err(Failure::Connect(error));
            }
        };
        stream
            .send_data(message, true)
            .map_err(|e| Failure::Call(unavailable(e)))?;
        let response = response.await.map_err(|error| match error.reason() {
            Some(h2::Reason::REFUSED_STREAM) => Failure::Connect(unavailable(error)),
            _ => Failure::Call(unavailable(error)),
        })?;
        Ok(response.map(|recv| Body::new(Incoming::new(recv))))
    }
}

/// Why a call on one address failed: before anything was sent (another address may take it),
/// or after.
enum Failure {
    Connect(BoxError),
    Call(BoxError),
}

/// Opens a stream for `head` on `live` (h2 queues it while the peer's stream limit is reached).
async fn open(
    live: &Live,
    head: http::Request<()>,
) -> Result<(h2::client::ResponseFuture, h2::SendStream<Bytes>), BoxError> {
    let mut sender = live.sender.clone().ready().await.map_err(unavailable)?;
    sender.send_request(head, false).map_err(unavailable)
}

impl Peer {
    fn new(key: String, target: Target) -> Peer {
        Peer {
            key,
            target,
            live: Mutex::new(None),
            connecting: Arc::new(tokio::sync::Mutex::new(())),
            generation: AtomicU64::new(0),
            failed_at: Mutex::new(None),
        }
    }

    /// The request head for this address: the call's method, path and headers on its origin.
    fn head(&self, parts: &http::request::Parts) -> Result<http::Request<()>, Failure> {
        let mut head = http::Request::from_parts(parts.clone(), ());
        *head.uri_mut() = self
            .target
            .uri_for(parts.uri.path_and_query())
            .map_err(|e| Failure::Call(Box::new(e)))?;
        Ok(head)
    }

    /// Whether another call is opening this peer's connection (none live yet).
    fn is_connecting(&self) -> bool {
        self.current().is_none() && self.connecting.try_lock().is_err()
    }

    /// Whether a connection attempt failed within [`DOWN_FOR`].
    fn is_down(&self, now: Instant) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| now.saturating_duration_since(at) < DOWN_FOR)
    }

    fn set_failed_at(&self, at: Option<Instant>) {
        *self.failed_at.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    fn current(&self) -> Option<Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Drops the connection `generation` from the slot (a newer one stays).
    fn forget(&self, generation: u64) {
        let mut slot = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if slot
            .as_ref()
            .is_some_and(|live| live.generation == generation)
        {
            *slot = None;
        }
    }

    /// The live connection; without one, an attempt is started (by a task of its own, one at a
    /// time per address, so no call's deadline cancels an attempt others wait on) and the call
    /// is told at once.
    fn live(self: &Arc<Self>, profile: &ChannelProfile) -> Result<Live, BoxError> {
        if let Some(live) = self.current() {
            return Ok(live);
        }
        self.connect_in_background(profile);
        Err(unavailable(
            "no connection: the upstream refused it or did not answer in time",
        ))
    }

    /// Starts a connection attempt unless one is under way.
    fn connect_in_background(self: &Arc<Self>, profile: &ChannelProfile) {
        let Ok(attempt) = self.connecting.clone().try_lock_owned() else {
            return;
        };
        let peer = self.clone();
        let profile = *profile;
        tokio::spawn(async move {
            let _attempt = attempt;
            if peer.current().is_none() {
                peer.connect(&profile).await;
            }
        });
    }

    /// One connection attempt within the connect timeout: on success the connection is live and
    /// driven by a task of its own; on failure the address counts as down for [`DOWN_FOR`].
    async fn connect(self: &Arc<Self>, profile: &ChannelProfile) {
        let connected = tokio::time::timeout(profile.connect_timeout, self.handshake())
            .await
            .unwrap_or_else(|_| Err(unavailable("connecting timed out")));
        let Ok((sender, connection)) = connected else {
            self.set_failed_at(Some(Instant::now()));
            return;
        };
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *self.live.lock().unwrap_or_else(|p| p.into_inner()) = Some(Live { generation, sender });
        self.set_failed_at(None);
        let peer = Arc::downgrade(self);
        let keep_alive = profile.keep_alive;
        tokio::spawn(async move {
            drive(connection, keep_alive).await;
            if let Some(peer) = peer.upgrade() {
                peer.forget(generation);
            }
        });
    }

    async fn handshake(
        &self,
    ) -> Result<
        (
            h2::client::SendRequest<Bytes>,
            h2::client::Connection<TcpStream, Bytes>,
        ),
        BoxError,
    > {
        let stream = TcpStream::connect(self.target.connect_to())
            .await
            .map_err(unavailable)?;
        stream.set_nodelay(true).map_err(unavailable)?;
        h2::client::Builder::new()
            .enable_push(false)
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake(stream)
            .await
            .map_err(unavailable)
    }
}

/// Runs one connection until it ends; with keep-alive, a ping unanswered in time ends it.
async fn drive(
    mut connection: h2::client::Connection<TcpStream, Bytes>,
    keep_alive: Option<crate::grpc::channel::KeepAlive>,
) {
    let (Some(keep_alive), Some(mut pings)) = (keep_alive, connection.ping_pong()) else {
        let _ = connection.await;
        return;
    };
    loop {
        tokio::select! {
            _ = &mut connection => return,
            _ = tokio::time::sleep(keep_alive.interval) => {}
        }
        let pong = tokio::time::timeout(keep_alive.timeout, pings.ping(h2::Ping::opaque()));
        tokio::select! {
            _ = &mut connection => return,
            answered = pong => if !matches!(answered, Ok(Ok(_))) {
                tracing::warn!("an upstream connection did not answer a keep-alive ping; closing it");
                return;
            }
        }
    }
}

fn unavailable(error: impl std::fmt::Display) -> BoxError {
    Box::new(tonic::Status::unavailable(format!(
        "upstream connection: {error}"
    )))
}

/// The `grpc-timeout` a tonic client sets from `Request::set_timeout` (digits and a unit).
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// A response body read straight from the h2 stream, giving flow-control credit back as data
/// is read.
struct Incoming {
    recv: h2::RecvStream,
    data_done: bool,
}

impl Incoming {
    fn new(recv: h2::RecvStream) -> Incoming {
        Incoming {
            recv,
            data_done: false,
        }
    }
}

impl HttpBody for Incoming {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if !self.data_done {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => self.data_done = true,
            }
        }
        match ready!(self.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(error) => Poll::Ready(Some(Err(error))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}

impl tower::Service<http::Request<Body>> for DirectChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(DirectChannel::call(self.shared.clone(), request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_reads_every_unit_and_refuses_the_rest() {
        let timeout = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("grpc-timeout", value.parse().unwrap());
            grpc_timeout(&headers)
        };
        assert_eq!(timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(timeout("4S"), Some(Duration::from_secs(4)));
        assert_eq!(timeout("1500m"), Some(Duration::from_millis(1500)));
        assert_eq!(timeout("250u"), Some(Duration::from_micros(250)));
        assert_eq!(timeout("99n"), Some(Duration::from_nanos(99)));
        for bad in ["", "m", "12", "12x", "-1m", "1.5S"] {
            assert_eq!(timeout(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&http::HeaderMap::new()), None);
    }
}
