//! The gateway as doctor reaches it over HTTP: its address, readiness, version and published
//! keys, and the problem+json answers it gives instead of the expected one.

use super::DoctorArgs;
use super::check::Check;
use super::fixes::{Cause, fix_for};
use latchkey_common::config::{AUTH_URL, Config, GATEWAY_LISTEN};

/// `--gateway-url`, LATCHKEY_GATEWAY_URL, else `http://` + LATCHKEY_GATEWAY_LISTEN (a wildcard
/// bind address becomes loopback).
pub(super) fn gateway_url(args: &DoctorArgs, config: &Config) -> String {
    if let Some(url) = args.gateway_url.as_deref().filter(|u| !u.trim().is_empty()) {
        return url.trim().to_owned();
    }
    let listen = config.raw_or_default(GATEWAY_LISTEN);
    let listen = match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => format!("127.0.0.1:{}", addr.port()),
        _ => listen.to_owned(),
    };
    format!("http://{listen}")
}

/// The gateway as doctor reaches it over HTTP.
pub(super) struct Gateway {
    pub(super) http: reqwest::Client,
    pub(super) base: String,
}

impl Gateway {
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// An answer that was not the expected one: why (a catalogue reason, another code, the bare
/// HTTP status, or no answer) and the detail that came with it.
pub(super) struct Unexpected {
    cause: Cause,
    detail: String,
}

impl Unexpected {
    /// Reads a problem+json answer.
    pub(super) async fn of(response: reqwest::Response) -> Unexpected {
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        Unexpected {
            cause: Cause::of(body["code"].as_str(), status),
            detail: body["detail"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// No answer at all.
    pub(super) fn transport(error: &reqwest::Error) -> Unexpected {
        Unexpected {
            cause: Cause::Unreachable,
            detail: format!("the gateway did not answer: {error}"),
        }
    }

    fn describe(&self) -> String {
        if self.detail.is_empty() {
            format!("the gateway answered {}", self.cause)
        } else {
            format!("the gateway answered {}: {}", self.cause, self.detail)
        }
    }

    pub(super) fn check(&self, name: &str) -> Check {
        Check::fail(name, self.describe(), fix_for(&self.cause, &self.detail))
    }
}

/// The gateway's version from `GET /healthz`.
pub(super) async fn gateway_version(gateway: &Gateway) -> Option<String> {
    let response = gateway
        .http
        .get(gateway.url("/healthz"))
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    Some(
        body["version"]
            .as_str()
            .unwrap_or("unknown (older than 0.1.0)")
            .to_owned(),
    )
}

/// `GET /readyz`; answers whether the gateway answered HTTP at all (so the probe can run and name
/// what is behind it).
pub(super) async fn check_gateway_ready(checks: &mut Vec<Check>, gateway: &Gateway) -> bool {
    let title = format!("service reachable: gateway ({})", gateway.base);
    match gateway.http.get(gateway.url("/readyz")).send().await {
        Ok(response) if response.status().is_success() => {
            checks.push(Check::pass(
                title,
                "GET /readyz: ready (auth and settings serving)",
            ));
            true
        }
        Ok(response) => {
            let problem = Unexpected::of(response).await;
            checks.push(Check::fail(
                title,
                format!("GET /readyz: {}", problem.describe()),
                fix_for(&problem.cause, &problem.detail),
            ));
            true
        }
        Err(error) => {
            checks.push(Check::fail(
                title,
                format!("cannot connect: {error}"),
                fix_for(&Cause::Unreachable, ""),
            ));
            false
        }
    }
}

/// The gateway's `/.well-known/jwks.json` names the same keys auth publishes.
pub(super) async fn check_gateway_jwks(
    checks: &mut Vec<Check>,
    gateway: &Gateway,
    auth_kids: &[String],
) {
    let name = "JWKS as the gateway serves it";
    let response = match gateway
        .http
        .get(gateway.url("/.well-known/jwks.json"))
        .send()
        .await
    {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => {
            checks.push(Unexpected::of(response).await.check(name));
            return;
        }
        Err(error) => {
            checks.push(Unexpected::transport(&error).check(name));
            return;
        }
    };
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let mut served: Vec<String> = body["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut published = auth_kids.to_vec();
    served.sort();
    published.sort();
    if served == published {
        checks.push(Check::pass(
            name,
            format!("the same {} key(s) auth publishes", served.len()),
        ));
    } else {
        checks.push(Check::fail(
            name,
            format!(
                "the gateway serves [{}] but auth publishes [{}]: they talk to different auths",
                served.join(", "),
                published.join(", ")
            ),
            format!(
                "point the gateway's {0} at the same auth doctor reaches ({0} / --auth-url)",
                AUTH_URL.env()
            ),
        ));
    }
}
