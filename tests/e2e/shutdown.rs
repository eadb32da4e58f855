//! SIGTERM against real processes: requests in progress complete, a client holding half a
//! request cannot keep the gateway from exiting, and with `LATCHKEY_SHUTDOWN_DELAY` a service
//! answers not-ready at once while it keeps accepting, then stops accepting and exits.

use crate::support::gateway::unused_addr;
use crate::support::{Backend, SYNC_SECRET, TestAuth, TestDb, until_refused};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A `latchkey` service process, killed on drop if still running.
struct Service {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    fn start(command: &str, listen_key: &str, env: &[(&str, String)]) -> Service {
        let addr = unused_addr();
        let mut process = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        process
            .arg(command)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(listen_key, addr.to_string())
            .stdout(Stdio::null())
            .stderr(if std::env::var("TEST_LOG").is_ok() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        for (key, value) in env {
            process.env(key, value);
        }
        Service {
            child: process.spawn().expect("start latchkey"),
            addr,
        }
    }

    fn gateway(env: &[(&str, String)]) -> Service {
        let mut all = vec![
            ("LATCHKEY_AUTH_URL", format!("http://{}", unused_addr())),
            ("LATCHKEY_SETTINGS_URL", format!("http://{}", unused_addr())),
        ];
        all.extend(env.iter().cloned());
        Service::start("gateway", "LATCHKEY_GATEWAY_LISTEN", &all)
    }

    /// Waits until the gateway answers `/healthz`.
    async fn until_healthy(&self) {
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(response) = http
                .get(format!("http://{}/healthz", self.addr))
                .send()
                .await
                && response.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the gateway did not come up on {}", self.addr);
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (at most `limit`) and answers whether it exited cleanly.
    async fn exited_cleanly(&mut self, limit: Duration) -> bool {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(
                started.elapsed() < limit,
                "still running {limit:?} after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Timeouts far beyond the test's patience: whatever ends a connection below, it is not them.
fn patient() -> Vec<(&'static str, String)> {
    vec![
        ("LATCHKEY_HTTP_HEADER_TIMEOUT_SECS", "600".into()),
        ("LATCHKEY_HTTP_IDLE_TIMEOUT_SECS", "600".into()),
        ("LATCHKEY_SHUTDOWN_TIMEOUT", "600".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_and_idle_connections_do_not_hold_the_gateway() {
    let mut gateway = Service::gateway(&patient());
    gateway.until_healthy().await;
    let mut half = TcpStream::connect(gateway.addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Half: ")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(gateway.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 1024];
    let n = idle.read(&mut buffer).await.unwrap();
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
    let mut silent = TcpStream::connect(gateway.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    gateway.terminate();
    assert!(
        gateway.exited_cleanly(Duration::from_secs(30)).await,
        "the gateway exits 0"
    );
    for stream in [&mut half, &mut idle, &mut silent] {
        let n = stream.read(&mut buffer).await.unwrap_or(0);
        assert_eq!(n, 0, "closed without an answer");
    }
}

async fn requests_in_progress_complete_after_sigterm(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let mut env = patient();
    env.push(("LATCHKEY_AUTH_URL", auth.url()));
    let mut gateway = Service::gateway(&env);
    gateway.until_healthy().await;

    // A sync-user call whose head is in and whose body is half sent.
    let body = json!({
        "provider": "github", "subject": "in-flight", "email": "in-flight@example.com",
    })
    .to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut in_flight = TcpStream::connect(gateway.addr).await.unwrap();
    let head = format!(
        "POST /api/auth/sync-user HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nX-Latchkey-Sync-Secret: {SYNC_SECRET}\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    );
    in_flight.write_all(head.as_bytes()).await.unwrap();
    let mut half = TcpStream::connect(gateway.addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: localh")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    gateway.terminate();
    until_refused(gateway.addr).await;
    let mut buffer = [0u8; 64];
    assert_eq!(
        half.read(&mut buffer).await.unwrap_or(0),
        0,
        "half a head is dropped at the stop"
    );
    in_flight.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    in_flight.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let json_start = answer.find("\r\n\r\n").unwrap() + 4;
    let body: Value = serde_json::from_str(answer[json_start..].trim()).unwrap();
    assert_eq!(body["user"]["email"], "in-flight@example.com");
    assert!(
        gateway.exited_cleanly(Duration::from_secs(30)).await,
        "the gateway exits 0 once the request is done"
    );
    auth.stop().await;
}

backend_tests!(requests_in_progress_complete_after_sigterm);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_keeps_accepting_while_not_ready_during_the_delay() {
    let mut env = patient();
    env.push(("LATCHKEY_SHUTDOWN_DELAY", "5".into()));
    let mut gateway = Service::gateway(&env);
    gateway.until_healthy().await;
    gateway.terminate();
    let http = reqwest::Client::new();
    let ready = http
        .get(format!("http://{}/readyz", gateway.addr))
        .send()
        .await
        .expect("still accepting after SIGTERM");
    assert_eq!(ready.status(), 503);
    let problem: Value = ready.json().await.unwrap();
    assert_eq!(problem["code"], "UPSTREAM_UNAVAILABLE", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("shutting down"),
        "{problem}"
    );
    let alive = http
        .get(format!("http://{}/healthz", gateway.addr))
        .header("connection", "close")
        .send()
        .await
        .expect("new connections are still served");
    assert_eq!(alive.status(), 200);
    until_refused_within(gateway.addr, Duration::from_secs(30)).await;
    assert!(gateway.exited_cleanly(Duration::from_secs(30)).await);
}

async fn until_refused_within(addr: SocketAddr, limit: Duration) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Err(error) = TcpStream::connect(addr).await
            && error.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{addr} still accepts {limit:?} after SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_reports_not_serving_at_once_and_keeps_accepting_during_the_delay() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let mut auth = Service::start(
        "auth",
        "LATCHKEY_AUTH_LISTEN",
        &[
            ("LATCHKEY_DATABASE_URL", db.url.clone()),
            ("LATCHKEY_SYNC_SECRET", SYNC_SECRET.into()),
            (
                "LATCHKEY_SEAL_KEY",
                latchkey_common::seal::SealKey::generate()
                    .to_base64()
                    .as_str()
                    .to_owned(),
            ),
            ("LATCHKEY_SHUTDOWN_DELAY", "5".into()),
        ],
    );
    let url = format!("http://{}", auth.addr);
    let check = |url: String| async move {
        let channel = tonic::transport::Endpoint::from_shared(url)
            .unwrap()
            .connect()
            .await?;
        let status = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: "latchkey.auth.v1.AuthService".into(),
            })
            .await
            .map(|r| r.into_inner().status)
            .unwrap_or(-1);
        Ok::<i32, tonic::transport::Error>(status)
    };
    let started = Instant::now();
    while check(url.clone()).await.ok() != Some(1) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "auth did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    auth.terminate();
    let started = Instant::now();
    loop {
        // A new connection each time: accepted, and NOT_SERVING (2) once the signal is seen.
        let status = check(url.clone())
            .await
            .expect("still accepting after SIGTERM");
        if status == 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(4), "still SERVING");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until_refused_within(auth.addr, Duration::from_secs(30)).await;
    assert!(auth.exited_cleanly(Duration::from_secs(30)).await);
}
