//! The gateway under attack, over real TCP: metric labels that requests cannot grow, client
//! addresses that only trusted proxies may name, failure limits that spare an address's valid
//! callers, `latchkey dev`'s Host and Origin guards, and the server's header timeout, idle
//! timeout and connection cap.

use crate::support::gateway::{TestGateway, expect_problem, gateway_config, unused_addr};
use crate::support::{Backend, SYNC_SECRET, TestAuth, TestDb};
use reqwest::Method;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn dead() -> String {
    format!("http://{}", unused_addr())
}

/// Sends raw bytes on a fresh connection and reads until the server closes it (at most 30 s).
async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Reads until the peer closes the connection; answers how long that took (at most `limit`).
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_methods_and_paths_add_no_metric_series() {
    let gw = TestGateway::spawn(&dead(), &dead()).await;
    let before = latchkey_common::metrics::render().len();
    for i in 0..40 {
        let method = format!("M{i}{}", "X".repeat(100_000));
        let request =
            format!("{method} /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let answer = raw_exchange(gw.addr, request.as_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 405"),
            "{}",
            &answer[..answer.len().min(200)]
        );
        let path = format!("/p{i}{}", "y".repeat(60_000));
        let response = gw.http.get(gw.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 404);
    }
    let exposition = latchkey_common::metrics::render();
    let growth = exposition.len().saturating_sub(before);
    assert!(
        growth < 200_000,
        "40 hostile requests grew the exposition by {growth} bytes"
    );
    assert!(
        exposition.lines().all(|line| line.len() < 1_000),
        "a label carries request input"
    );
    assert!(
        exposition.contains("OTHER /healthz"),
        "unknown methods count as OTHER"
    );
    assert!(
        exposition.contains("GET unmatched"),
        "unknown paths count as unmatched"
    );

    // Metrics are not on the public port (they are on LATCHKEY_METRICS_LISTEN).
    let response = gw.http.get(gw.url("/metrics")).send().await.unwrap();
    expect_problem(response, 404, "NOT_FOUND").await;
    gw.stop().await;
}

/// A request failing authentication at the gateway itself (no upstream needed).
async fn fail_once(gw: &TestGateway, forwarded: &str) -> u16 {
    gw.http
        .get(gw.url("/api/settings"))
        .header("authorization", "Basic not-a-bearer")
        .header("x-forwarded-for", forwarded)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    // The peer (127.0.0.1) is not a trusted proxy: whatever it claims, it is one client.
    let mut config = gateway_config(&dead(), &dead());
    config.auth_failure_rate_per_minute = 3;
    config.client_ip_header = Some("x-forwarded-for".into());
    config.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    let untrusted = TestGateway::spawn_with(config.clone()).await;
    let statuses: Vec<u16> = futures_collect((0..5).map(|i| {
        let gw = &untrusted;
        async move { fail_once(gw, &format!("198.51.100.{i}")).await }
    }))
    .await;
    assert_eq!(
        statuses,
        [401, 401, 401, 429, 429],
        "spoofed XFF escapes no limit"
    );
    untrusted.stop().await;

    // Behind a trusted proxy: the rightmost untrusted entry is the client.
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let proxied = TestGateway::spawn_with(config).await;
    for _ in 0..3 {
        assert_eq!(fail_once(&proxied, "198.51.100.7").await, 401);
    }
    assert_eq!(
        fail_once(&proxied, "6.6.6.6, 198.51.100.7").await,
        429,
        "a client prepending an address stays itself"
    );
    // An attacker naming a victim spends only its own budget.
    for _ in 0..5 {
        fail_once(&proxied, "203.0.113.5, 198.51.100.9").await;
    }
    assert_eq!(
        fail_once(&proxied, "203.0.113.5").await,
        401,
        "the named victim is not locked out"
    );
    proxied.stop().await;
}

async fn futures_collect<F: std::future::Future<Output = u16>>(
    futures: impl Iterator<Item = F>,
) -> Vec<u16> {
    let mut out = Vec::new();
    for future in futures {
        out.push(future.await);
    }
    out
}

async fn failures_from_an_address_spare_its_valid_callers(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let mut config = gateway_config(&auth.url(), &dead());
    config.auth_failure_rate_per_minute = 3;
    // No answer reuse: what lets valid callers through below is auth's earlier verdict, not
    // the 5 s cache.
    config.auth_cache = Duration::ZERO;
    let gw = TestGateway::spawn_with(config).await;
    let (user_id, token) = gw.sync_user("valid-caller").await;
    let me = gw.call(Method::GET, "/api/auth/me", &token).await;
    assert_eq!(me.status(), 200);

    // Someone at the same address burns its failure budget.
    let mut last = 0;
    for _ in 0..5 {
        let response = gw
            .call(Method::GET, "/api/auth/me", "forged.token.value")
            .await;
        last = response.status().as_u16();
    }
    assert_eq!(last, 429);
    let wrong = gw
        .http
        .post(gw.url("/api/auth/token"))
        .header("X-Latchkey-Sync-Secret", "wrong-secret")
        .json(&json!({ "user_id": user_id }))
        .send()
        .await
        .unwrap();
    expect_problem(wrong, 429, "RATE_LIMITED").await;

    // The valid token and the right sync secret still pass.
    let me = gw.call(Method::GET, "/api/auth/me", &token).await;
    assert_eq!(me.status(), 200, "a token auth accepted is not refused");
    let issued = gw
        .http
        .post(gw.url("/api/auth/token"))
        .header("X-Latchkey-Sync-Secret", SYNC_SECRET)
        .json(&json!({ "user_id": user_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 200, "the right sync secret is not refused");
    let fresh: Value = issued.json().await.unwrap();

    // A token auth has not vouched for yet waits like any guess (no free oracle on auth).
    let unseen = fresh["access_token"].as_str().unwrap();
    let response = gw.call(Method::GET, "/api/auth/me", unseen).await;
    expect_problem(response, 429, "RATE_LIMITED").await;
    gw.stop().await;
    auth.stop().await;
}

async fn dev_answers_loopback_hosts_and_same_origin_sessions_only(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let mut config = gateway_config(&auth.url(), &dead());
    config.dev_session = Some(SYNC_SECRET.to_owned().into());
    config.dev_hosts = vec!["devbox.lan".into()];
    let gw = TestGateway::spawn_with(config).await;
    let port = gw.addr.port();

    // DNS rebinding: the attacker's name arrives as Host.
    for host in [
        format!("evil.example:{port}"),
        "localhost.evil.example".into(),
    ] {
        let response = gw
            .http
            .post(gw.url("/api/dev/session"))
            .header("host", &host)
            .header("origin", format!("http://{host}"))
            .send()
            .await
            .unwrap();
        let body = expect_problem(response, 400, "INVALID_ARGUMENT").await;
        assert_eq!(body["errors"][0]["field"], "host", "{body}");
        let page = gw
            .http
            .get(gw.url("/"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 400, "every route refuses a foreign Host");
    }
    for host in [
        format!("localhost:{port}"),
        format!("app.localhost:{port}"),
        format!("[::1]:{port}"),
        format!("devbox.lan:{port}"),
    ] {
        let page = gw
            .http
            .get(gw.url("/healthz"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "{host}");
    }

    // A cross-site page posting to localhost: its Origin gives it away.
    let cross_site = gw
        .http
        .post(gw.url("/api/dev/session"))
        .header("origin", "https://evil.example")
        .header("x-latchkey-dev", "1")
        .send()
        .await
        .unwrap();
    let body = expect_problem(cross_site, 400, "INVALID_ARGUMENT").await;
    assert_eq!(body["errors"][0]["field"], "origin", "{body}");
    let bare = gw
        .http
        .post(gw.url("/api/dev/session"))
        .send()
        .await
        .unwrap();
    expect_problem(bare, 400, "INVALID_ARGUMENT").await;

    // The page itself (same origin), and curl with the header, get a session.
    let page = gw
        .http
        .post(gw.url("/api/dev/session"))
        .header("origin", format!("http://{}", gw.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let curl = gw
        .http
        .post(gw.url("/api/dev/session"))
        .header("x-latchkey-dev", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(curl.status(), 200);
    gw.stop().await;
    auth.stop().await;
}

backend_tests!(
    failures_from_an_address_spare_its_valid_callers,
    dev_answers_loopback_hosts_and_same_origin_sessions_only
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_dev_any_host_is_answered() {
    let gw = TestGateway::spawn(&dead(), &dead()).await;
    let response = gw
        .http
        .get(gw.url("/healthz"))
        .header("host", "latchkey.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let dev = gw
        .http
        .post(gw.url("/api/dev/session"))
        .send()
        .await
        .unwrap();
    expect_problem(dev, 404, "NOT_FOUND").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_are_closed_and_idle_connections_outlive_the_header_timeout() {
    let mut config = gateway_config(&dead(), &dead());
    config.http.header_timeout = Duration::from_secs(1);
    config.http.idle_timeout = Duration::from_secs(4);
    let gw = TestGateway::spawn_with(config).await;

    // Slowloris: half a head, then nothing — closed at the header timeout.
    let mut slow = TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    let closed = until_closed(&mut slow, Duration::from_secs(20)).await;
    assert!(closed.is_some(), "a half-sent head is held open");
    // A connection that never sends a byte owes its first head just the same.
    let mut silent = TcpStream::connect(gw.addr).await.unwrap();
    assert!(
        until_closed(&mut silent, Duration::from_secs(20))
            .await
            .is_some()
    );

    // Keep-alive: idle longer than the header timeout, then a second request on the same
    // connection is still answered; then it is closed as idle.
    let mut kept = TcpStream::connect(gw.addr).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    kept.write_all(request).await.unwrap();
    let mut buffer = [0u8; 4096];
    let n = kept.read(&mut buffer).await.unwrap();
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    kept.write_all(request).await.unwrap();
    let n = kept.read(&mut buffer).await.unwrap();
    assert!(
        buffer[..n].starts_with(b"HTTP/1.1 200"),
        "an idle keep-alive connection is not cut at the header timeout"
    );
    assert!(
        until_closed(&mut kept, Duration::from_secs(30))
            .await
            .is_some()
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let mut config = gateway_config(&dead(), &dead());
    config.http.max_connections = 3;
    config.http.header_timeout = Duration::from_secs(600);
    config.http.idle_timeout = Duration::from_secs(600);
    let gw = TestGateway::spawn_with(config).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(gw.addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0u8; 1024];
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    // The fourth is left in the backlog, unanswered, while three are open.
    let mut fourth = TcpStream::connect(gw.addr).await.unwrap();
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(1_500), fourth.read(&mut buffer)).await;
    assert!(
        early.is_err(),
        "the fourth connection was served beyond the cap"
    );
    held.pop();
    let n = tokio::time::timeout(Duration::from_secs(20), fourth.read(&mut buffer))
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
    drop(held);
    gw.stop().await;
}
