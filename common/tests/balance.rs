//! Balancing that follows DNS, against real gRPC servers on two loopback addresses that a
//! test resolver answers for one name.

use latchkey_common::balance::{Configure, Resolver, channel_with};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Channel, Server};
use tonic_health::ServingStatus;
use tonic_health::pb::health_check_response::ServingStatus as Answer;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A health server on `addr` that answers `status` for the service `who`.
async fn health_server(listener: tokio::net::TcpListener, status: ServingStatus) {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter.set_service_status("who", status).await;
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
}

/// Two servers on one port at 127.0.0.2 (SERVING) and 127.0.0.3 (NOT_SERVING); `None` where
/// only 127.0.0.1 is a loopback address (macOS without aliases), with a note.
async fn two_instances() -> Option<(SocketAddr, SocketAddr)> {
    if tokio::net::TcpListener::bind("127.0.0.2:0").await.is_err() {
        eprintln!(
            "skipped: 127.0.0.2 cannot be bound here (Linux treats all of 127/8 as loopback)"
        );
        return None;
    }
    for _ in 0..20 {
        let a = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
        let port = a.local_addr().unwrap().port();
        let Ok(b) = tokio::net::TcpListener::bind(("127.0.0.3", port)).await else {
            continue;
        };
        let addrs = (a.local_addr().unwrap(), b.local_addr().unwrap());
        health_server(a, ServingStatus::Serving).await;
        health_server(b, ServingStatus::NotServing).await;
        return Some(addrs);
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

fn resolver(answer: Arc<Mutex<std::io::Result<Vec<SocketAddr>>>>) -> Resolver {
    Arc::new(move |_host, _port| {
        let answer = match &*answer.lock().unwrap() {
            Ok(addrs) => Ok(addrs.clone()),
            Err(error) => Err(std::io::Error::new(error.kind(), error.to_string())),
        };
        Box::pin(async move { answer })
    })
}

fn configure() -> Configure {
    Arc::new(|endpoint| endpoint.connect_timeout(Duration::from_secs(1)))
}

async fn ask(channel: &Channel) -> Result<Answer, tonic::Status> {
    let response = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "who".into(),
        })
        .await?;
    Ok(response.into_inner().status())
}

#[tokio::test]
async fn calls_spread_over_every_address_and_follow_a_scale_down() {
    let Some((a, b)) = two_instances().await else {
        return;
    };
    let answer = Arc::new(Mutex::new(Ok(vec![a, b])));
    let url = format!("http://settings.test:{}", a.port());
    let channel = channel_with(
        &[url],
        configure(),
        resolver(answer.clone()),
        Duration::from_millis(50),
    )
    .unwrap();

    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        seen.insert(ask(&channel).await.unwrap() as i32);
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "both instances behind the one name answered");

    *answer.lock().unwrap() = Ok(vec![a]);
    let mut consecutive = 0;
    for _ in 0..2000 {
        match ask(&channel).await.unwrap() {
            Answer::Serving => consecutive += 1,
            _ => consecutive = 0,
        }
        if consecutive == 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        consecutive, 50,
        "the instance gone from DNS no longer gets calls"
    );

    // A failed lookup keeps what is known.
    *answer.lock().unwrap() = Err(std::io::Error::other("SERVFAIL"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ask(&channel).await.unwrap(), Answer::Serving);
}

#[tokio::test]
async fn a_name_that_never_resolves_fails_as_unavailable_instead_of_waiting() {
    let answer = Arc::new(Mutex::new(Err(std::io::Error::other("NXDOMAIN"))));
    let channel = channel_with(
        &["http://nowhere.invalid:50052".to_owned()],
        configure(),
        resolver(answer),
        Duration::from_millis(50),
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), ask(&channel))
        .await
        .expect("the call ends without a deadline")
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
}

#[tokio::test]
async fn addresses_are_used_as_given() {
    let Some((a, _)) = two_instances().await else {
        return;
    };
    let never = Arc::new(Mutex::new(Err(std::io::Error::other("must not be asked"))));
    let channel = channel_with(
        &[format!("http://{a}")],
        configure(),
        resolver(never),
        Duration::from_millis(50),
    )
    .unwrap();
    assert_eq!(ask(&channel).await.unwrap(), Answer::Serving);
    assert!(
        channel_with(&[], configure(), system_resolver_unused(), Duration::ZERO).is_err(),
        "an empty list is refused"
    );
}

fn system_resolver_unused() -> Resolver {
    latchkey_common::balance::system_resolver()
}
