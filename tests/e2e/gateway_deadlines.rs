//! A route's time budget covers the whole request, not each upstream call: with auth and settings
//! each answering within its own share but not both within the route's budget, the gateway answers
//! `504 DEADLINE_EXCEEDED` naming the budget, instead of succeeding late. Latency is put on the
//! wire by a small TCP forwarder between the gateway and each real service.

use crate::support::gateway::{TestGateway, expect_problem};
use crate::support::settings::{TestSettings, spawn_auth};
use crate::support::{Backend, TestDb};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards to `upstream`, delivering every chunk the upstream sends `delay` after it arrived.
async fn latency_line(upstream: SocketAddr, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let (chunks, mut delayed) = tokio::sync::mpsc::unbounded_channel();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 16 * 1024];
                    while let Ok(n) = server_read.read(&mut buffer).await {
                        if n == 0 || chunks.send((Instant::now(), buffer[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                });
                tokio::spawn(async move {
                    while let Some((arrived, chunk)) = delayed.recv().await {
                        tokio::time::sleep_until((arrived + delay).into()).await;
                        if client_write.write_all(&chunk).await.is_err() {
                            return;
                        }
                    }
                });
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_route_answers_within_its_budget_across_both_upstream_calls() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let auth = spawn_auth(&db, None).await;
    let settings = TestSettings::spawn(&db, &auth).await;
    // Authenticate takes ~1.2 s of the 2 s it may, ListSettings ~2.2 s of the 3 s it may: each
    // alone within budget, together past the route's 3 s.
    let slow_auth = latency_line(auth.addr, Duration::from_millis(1200)).await;
    let slow_settings = latency_line(settings.addr, Duration::from_millis(2200)).await;
    let gw = TestGateway::spawn(
        &format!("http://{slow_auth}"),
        &format!("http://{slow_settings}"),
    )
    .await;
    let (_, token) = auth.user_token("deadline-user").await;

    let response = gw
        .http
        .get(gw.url("/api/settings"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let body = expect_problem(response, 504, "DEADLINE_EXCEEDED").await;
    assert!(
        body["detail"].as_str().unwrap().contains("3000 ms"),
        "{body}"
    );
}
