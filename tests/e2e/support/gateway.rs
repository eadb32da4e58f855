//! Gateway test helpers: a real gateway on port 0 in front of real auth (and settings), and a
//! small HTTP client over it (reqwest, plain HTTP on loopback).

use latchkey_common::clock::{SharedClock, SystemClock};
use latchkey_common::config as setting;
use latchkey_common::shutdown::Shutdown;
use latchkey_gateway::GatewayConfig;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A gateway config for tests, read by the loader: port 0, generous rate limits, one allowed
/// CORS origin; the table's defaults (a 5 s auth cache among them) for everything else.
pub fn gateway_config(auth_url: &str, settings_url: &str) -> GatewayConfig {
    let loaded = super::config::loaded([
        (setting::GATEWAY_LISTEN.env(), "127.0.0.1:0".to_owned()),
        (setting::AUTH_URL.env(), auth_url.to_owned()),
        (setting::SETTINGS_URL.env(), settings_url.to_owned()),
        (setting::CORS_ORIGINS.env(), CORS_ORIGIN.to_owned()),
        (setting::SYNC_RATE_PER_MINUTE.env(), "10000".to_owned()),
        (
            setting::AUTH_FAILURE_RATE_PER_MINUTE.env(),
            "10000".to_owned(),
        ),
    ]);
    super::config::valid("gateway", GatewayConfig::from_config(&loaded))
}

/// The origin the test config allows.
pub const CORS_ORIGIN: &str = "https://app.example.com";

/// An address nothing listens on (bound once, then released).
pub fn unused_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A running gateway.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestGateway {
    /// A gateway in front of `auth_url` and `settings_url` with the test config.
    pub async fn spawn(auth_url: &str, settings_url: &str) -> TestGateway {
        Self::spawn_with(gateway_config(auth_url, settings_url)).await
    }

    /// A gateway with a given config.
    pub async fn spawn_with(config: GatewayConfig) -> TestGateway {
        Self::spawn_with_clock(config, Arc::new(SystemClock)).await
    }

    /// A gateway with a given config whose token cache reads `clock` (auth's, to move them
    /// together).
    pub async fn spawn_with_clock(config: GatewayConfig, clock: SharedClock) -> TestGateway {
        super::init_test_logging();
        let app = latchkey_gateway::build(&config, clock)
            .await
            .expect("gateway builds");
        let addr = app.local_addr();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        TestGateway {
            addr,
            http,
            shutdown,
            task,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `POST /api/auth/sync-user` with the test sync secret; answers (user id, access token).
    pub async fn sync_user(&self, subject: &str) -> (String, String) {
        let response = self
            .http
            .post(self.url("/api/auth/sync-user"))
            .header("X-Latchkey-Sync-Secret", super::SYNC_SECRET)
            .json(&json!({
                "provider": "github",
                "subject": subject,
                "email": format!("{subject}@example.com"),
                "name": "Test User",
            }))
            .send()
            .await
            .expect("sync-user request");
        assert_eq!(response.status(), 200, "sync-user succeeds");
        let body: Value = response.json().await.unwrap();
        (
            body["user"]["id"].as_str().unwrap().to_owned(),
            body["access_token"].as_str().unwrap().to_owned(),
        )
    }

    /// A request with a bearer token.
    pub fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(token)
    }

    /// `METHOD path` with a bearer token, sent: the gateway's answer, whatever its status.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::Response {
        self.authed(method, path, token)
            .send()
            .await
            .expect("the gateway answers")
    }

    /// `GET /api/settings`: (status, body).
    pub async fn get_settings(&self, token: &str) -> (u16, Value) {
        let response = self
            .call(reqwest::Method::GET, "/api/settings", token)
            .await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Stops the gateway and waits for it.
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.task
            .await
            .expect("gateway task")
            .expect("gateway stopped cleanly");
    }
}

/// Checks a problem+json answer: status, content type, `code`, `request_id`; answers the body.
pub async fn expect_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    let got = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "status for {code}: {body}");
    assert_eq!(content_type, "application/problem+json", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert_eq!(body["request_id"].as_str(), request_id.as_deref(), "{body}");
    body
}
