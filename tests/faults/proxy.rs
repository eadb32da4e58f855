//! A TCP proxy the test owns, in front of the machine's PostgreSQL: it forwards, refuses (stops
//! listening and cuts every open connection, as a database that went down), hangs (accepts and
//! holds every connection without passing a byte, as a database that stopped answering) and
//! resumes. The real PostgreSQL is never touched.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Forward,
    Refuse,
    Hang,
}

/// A running proxy; dropped with the test's runtime.
pub struct PgProxy {
    /// Where the services connect instead of PostgreSQL.
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    open: Arc<AtomicUsize>,
}

impl PgProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().unwrap();
        let (mode, _) = watch::channel(Mode::Forward);
        let open = Arc::new(AtomicUsize::new(0));
        tokio::spawn(accept_loop(
            listener,
            addr,
            upstream,
            mode.subscribe(),
            open.clone(),
        ));
        PgProxy { addr, mode, open }
    }

    /// Switches mode; open connections follow at once.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Connections currently held open through the proxy.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

async fn accept_loop(
    first: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    open: Arc<AtomicUsize>,
) {
    let mut listener = Some(first);
    loop {
        let Some(bound) = listener.take() else {
            // Refusing: wait for another mode, then listen on the same port again.
            if mode.wait_for(|m| *m != Mode::Refuse).await.is_err() {
                return;
            }
            listener = Some(rebind(addr).await);
            continue;
        };
        tokio::select! {
            accepted = bound.accept() => {
                if let Ok((client, _)) = accepted {
                    let _ = client.set_nodelay(true);
                    tokio::spawn(pipe(client, upstream, mode.clone(), open.clone()));
                }
                listener = Some(bound);
            }
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                if *mode.borrow() != Mode::Refuse {
                    listener = Some(bound);
                }
                // Refuse: the listener is dropped here, so connecting is refused.
            }
        }
    }
}

async fn rebind(addr: SocketAddr) -> TcpListener {
    for _ in 0..500 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the proxy cannot listen on {addr} again");
}

/// One client connection: connects upstream only while forwarding, then copies both ways under
/// the mode; Refuse closes it.
async fn pipe(
    client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    open: Arc<AtomicUsize>,
) {
    open.fetch_add(1, Ordering::SeqCst);
    let _counted = Decrement(open);
    if !matches!(
        mode.wait_for(|m| *m != Mode::Hang).await.map(|m| *m),
        Ok(Mode::Forward)
    ) {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        _ = copy(client_read, server_write, mode.clone()) => {}
        _ = copy(server_read, client_write, mode.clone()) => {}
        _ = mode.wait_for(|m| *m == Mode::Refuse) => {}
    }
}

/// Copies while the mode is Forward; holds (reads nothing) while Hang; ends on Refuse or EOF.
async fn copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match mode.wait_for(|m| *m != Mode::Hang).await.map(|m| *m) {
            Ok(Mode::Forward) => {}
            _ => return,
        }
        tokio::select! {
            read = from.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if to.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            },
            _ = mode.changed() => {}
        }
    }
}

struct Decrement(Arc<AtomicUsize>);

impl Drop for Decrement {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
