//! The gateway's HTTP/2 transport ([`DirectChannel`]) against real tonic servers: answers,
//! reconnects after a restart, spreads over every address a name resolves to, passes over an
//! address that refuses, and ends calls at their deadline or connect timeout with a status.

use latchkey_common::balance::Resolver;
use latchkey_common::grpc::ChannelProfile;
use latchkey_common::grpc::direct::DirectChannel;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_health::pb::health_check_response::ServingStatus as Answer;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Short timeouts, so failures show within a test's patience.
const PROFILE: ChannelProfile = ChannelProfile {
    name: "test",
    connect_timeout: Duration::from_millis(300),
    request_timeout: None,
    keep_alive: None,
};

/// A health server on `listener` answering `status` for `who`, until `stop` fires.
async fn health_server(
    listener: TcpListener,
    status: ServingStatus,
) -> tokio::sync::oneshot::Sender<()> {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter.set_service_status("who", status).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            ),
    );
    stop
}

async fn ask(channel: &DirectChannel, timeout: Option<Duration>) -> Result<Answer, tonic::Status> {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: "who".into(),
    });
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    let response = HealthClient::new(channel.clone()).check(request).await?;
    Ok(response.into_inner().status())
}

fn resolver(answer: Arc<Mutex<Vec<SocketAddr>>>) -> Resolver {
    Arc::new(move |_host, _port| {
        let addrs = answer.lock().unwrap().clone();
        Box::pin(async move { Ok(addrs) })
    })
}

#[tokio::test]
async fn answers_and_reconnects_after_the_upstream_restarts() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = health_server(listener, ServingStatus::Serving).await;
    let channel = DirectChannel::new(PROFILE, &[format!("http://{addr}")]).unwrap();
    for _ in 0..3 {
        assert_eq!(ask(&channel, None).await.unwrap(), Answer::Serving);
    }

    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let down = ask(&channel, None).await.unwrap_err();
    assert_eq!(down.code(), tonic::Code::Unavailable, "{down:?}");

    let listener = TcpListener::bind(addr).await.unwrap();
    let _stop = health_server(listener, ServingStatus::NotServing).await;
    assert_eq!(ask(&channel, None).await.unwrap(), Answer::NotServing);
}

/// Two servers on one port at 127.0.0.2 (SERVING) and 127.0.0.3 (NOT_SERVING); `None` where
/// only 127.0.0.1 is a loopback address.
async fn two_instances() -> Option<(SocketAddr, SocketAddr)> {
    if TcpListener::bind("127.0.0.2:0").await.is_err() {
        eprintln!("skipped: 127.0.0.2 cannot be bound here");
        return None;
    }
    for _ in 0..20 {
        let a = TcpListener::bind("127.0.0.2:0").await.unwrap();
        let port = a.local_addr().unwrap().port();
        let Ok(b) = TcpListener::bind(("127.0.0.3", port)).await else {
            continue;
        };
        let addrs = (a.local_addr().unwrap(), b.local_addr().unwrap());
        std::mem::forget(health_server(a, ServingStatus::Serving).await);
        std::mem::forget(health_server(b, ServingStatus::NotServing).await);
        return Some(addrs);
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

#[tokio::test]
async fn calls_spread_over_a_names_addresses_and_pass_over_one_that_refuses() {
    let Some((a, b)) = two_instances().await else {
        return;
    };
    let answer = Arc::new(Mutex::new(vec![a, b]));
    let url = format!("http://settings.test:{}", a.port());
    let channel = DirectChannel::with_resolver(
        PROFILE,
        &[url],
        resolver(answer.clone()),
        Duration::from_millis(50),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(ask(&channel, None).await.unwrap());
    }
    assert!(
        seen.contains(&Answer::Serving) && seen.contains(&Answer::NotServing),
        "{seen:?}"
    );

    // 127.0.0.3 stops answering on that port: every call still succeeds, on 127.0.0.2.
    let refusing: SocketAddr = format!("127.0.0.4:{}", a.port()).parse().unwrap();
    *answer.lock().unwrap() = vec![a, refusing];
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..10 {
        assert_eq!(ask(&channel, None).await.unwrap(), Answer::Serving);
    }

    // Scaled down to one address: only it answers.
    *answer.lock().unwrap() = vec![b];
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..5 {
        assert_eq!(ask(&channel, None).await.unwrap(), Answer::NotServing);
    }
}

#[tokio::test]
async fn nobody_listening_fails_as_unavailable_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let channel = DirectChannel::new(PROFILE, &[format!("http://{addr}")]).unwrap();
    let status = ask(&channel, None).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        DirectChannel::new(PROFILE, &[]).is_err(),
        "an empty list is refused"
    );
    assert!(DirectChannel::new(PROFILE, &["not a url".into()]).is_err());
    assert!(
        DirectChannel::new(PROFILE, &["https://auth.internal:50051".into()]).is_err(),
        "plain HTTP/2 only: an https URL is refused, not tried in clear text"
    );
}

#[tokio::test]
async fn a_peer_that_never_speaks_http2_ends_the_call_at_its_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let channel = DirectChannel::new(PROFILE, &[format!("http://{addr}")]).unwrap();
    let status = tokio::time::timeout(
        Duration::from_secs(10),
        ask(&channel, Some(Duration::from_millis(300))),
    )
    .await
    .expect("the channel ends the call at its deadline")
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
}

/// An HTTP/2 server that takes every call and never answers (nor reads `grpc-timeout`, as a
/// tonic server would): only the channel can end the call.
async fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let never = hyper::service::service_fn(|_request| {
                std::future::pending::<
                    Result<http::Response<http_body_util::Empty<bytes::Bytes>>, Infallible>,
                >()
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), never),
            );
        }
    });
    addr
}

#[tokio::test]
async fn a_call_ends_at_its_deadline_when_the_upstream_never_answers() {
    let addr = silent_server().await;
    let channel = DirectChannel::new(PROFILE, &[format!("http://{addr}")]).unwrap();
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        ask(&channel, Some(Duration::from_millis(300))),
    )
    .await
    .expect("the channel ends the call at its deadline");
    let status = outcome.unwrap_err();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
}

/// A listener whose accept queue is full: the kernel drops further connection attempts
/// unanswered, like a host that was switched off. `None` where the queue never fills.
fn blackhole() -> Option<(SocketAddr, Vec<std::net::TcpStream>, TcpListener)> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(stream) => held.push(stream),
            Err(_) => return Some((addr, held, listener)),
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_never_answers_is_passed_over_not_waited_on() {
    let Some((dark, _held, _listener)) = blackhole() else {
        eprintln!("skipped: the accept queue never filled here");
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let healthy = listener.local_addr().unwrap();
    let _stop = health_server(listener, ServingStatus::Serving).await;
    let profile = ChannelProfile {
        connect_timeout: Duration::from_secs(3),
        ..PROFILE
    };
    let answer = Arc::new(Mutex::new(vec![dark, healthy]));
    let channel = DirectChannel::with_resolver(
        profile,
        &["http://upstream.test:1".to_owned()],
        resolver(answer),
        Duration::from_millis(50),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for call in 0..10 {
        let answered = ask(&channel, Some(Duration::from_millis(500))).await;
        assert_eq!(answered.unwrap(), Answer::Serving, "call {call}");
    }
}
