//! Upstreams that are down answer 503 UPSTREAM_UNAVAILABLE quickly — with one address and with
//! several balanced ones — never a hang and never a 401.

use axum::body::Body;
use axum::http::Request;
use latchkey_gateway::{GatewayConfig, GatewayState, router};
use serde_json::Value;
use std::time::{Duration, Instant};
use tower::ServiceExt;

fn dead() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn config(auth_urls: Vec<String>) -> GatewayConfig {
    GatewayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        auth_urls,
        settings_urls: vec![dead()],
        cors_origins: vec![],
        sync_rate_per_minute: 0,
        auth_failure_rate_per_minute: 0,
        client_ip_header: None,
        trusted_proxies: vec![],
        dev_hosts: vec![],
        http: Default::default(),
        auth_cache: Duration::from_secs(5),
        dev_session: None,
    }
}

async fn answer(config: GatewayConfig, path: &str, bearer: bool) -> (u16, Value, Duration) {
    let app = router(
        GatewayState::new(
            &config,
            std::sync::Arc::new(latchkey_common::clock::SystemClock),
        )
        .unwrap(),
    );
    let mut request = Request::builder().uri(path);
    if bearer {
        request = request.header("authorization", "Bearer a.b.c");
    }
    let started = Instant::now();
    let response = app
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&body).unwrap(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn one_dead_upstream_is_503_fast() {
    for (path, bearer) in [("/.well-known/jwks.json", false), ("/api/settings", true)] {
        let (status, body, took) = answer(config(vec![dead()]), path, bearer).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(body["code"], "UPSTREAM_UNAVAILABLE");
        assert!(took < Duration::from_secs(3), "{path} took {took:?}");
    }
}

#[tokio::test]
async fn several_dead_balanced_upstreams_are_503_not_a_hang() {
    let (status, body, took) = answer(
        config(vec![dead(), dead()]),
        "/.well-known/jwks.json",
        false,
    )
    .await;
    assert!(status == 503 || status == 504, "{body}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
}
