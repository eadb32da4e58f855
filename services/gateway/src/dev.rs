//! Guards that apply only under `latchkey dev`, where `POST /api/dev/session` hands out a token
//! to anyone who asks:
//!
//! - **Host**: only loopback names are answered (`localhost`, `*.localhost`, `127.0.0.1`,
//!   `[::1]`, any port) plus `LATCHKEY_DEV_HOSTS`. A DNS-rebinding page (`evil.example` resolving
//!   to 127.0.0.1) sends its own name as `Host` and gets 400 instead of a dev token.
//! - **Same origin** for the dev session: a browser's `Origin` must be this Host's origin (a
//!   cross-site form or fetch is refused); without `Origin` (curl, scripts) the call must carry
//!   `X-Latchkey-Dev: 1`, which no cross-site page can add without a preflight.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey_common::config::DEV_HOSTS;
use latchkey_proto::{ApiError, Violation};
use std::sync::Arc;

/// The header the Settings page (and curl users) send with `POST /api/dev/session`.
pub const DEV_HEADER: &str = "x-latchkey-dev";

/// The Host names dev answers besides loopback ones.
#[derive(Debug, Clone, Default)]
pub struct DevHosts(pub Arc<Vec<String>>);

/// The host part of a `Host` value (no port; IPv6 keeps its brackets), lower case.
fn host_name(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    let name = if host.starts_with('[') {
        host.split_once(']')
            .map(|(inside, _)| format!("{inside}]"))
            .unwrap_or(host.clone())
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map(|(name, _)| name.to_owned())
            .unwrap_or(host.clone())
    };
    name.trim_end_matches('.').to_owned()
}

/// Whether dev answers a request with this `Host`.
pub fn host_allowed(host: &str, extra: &[String]) -> bool {
    let name = host_name(host);
    let loopback = name == "localhost"
        || name.ends_with(".localhost")
        || name == "127.0.0.1"
        || name == "[::1]";
    loopback || extra.contains(&name)
}

/// Refuses requests whose `Host` is not a loopback name or a configured dev host. A request
/// without any Host (HTTP/1.0, in-process calls) passes: browsers always send one.
pub async fn check_host(State(hosts): State<DevHosts>, request: Request, next: Next) -> Response {
    let host = match request.headers().get(header::HOST) {
        Some(value) => value.to_str().unwrap_or("\u{0}").to_owned(),
        None => match request.uri().authority() {
            Some(authority) => authority.to_string(),
            None => return next.run(request).await,
        },
    };
    if host_allowed(&host, &hosts.0) {
        return next.run(request).await;
    }
    let shown: String = host.chars().take(100).collect();
    crate::problem::HttpProblem(ApiError::invalid(
        format!(
            "`latchkey dev` answers only loopback host names (localhost, 127.0.0.1, [::1], *.localhost), not `{shown}`; open http://localhost:PORT/ instead, or add the name to {}.",
            DEV_HOSTS.env()
        ),
        vec![Violation::new(
            "host",
            format!("not a loopback name or one of {}", DEV_HOSTS.env()),
        )],
    ))
    .into_response()
}

/// Whether a dev-session request carries a same-origin signal (see the module docs).
pub fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let refuse = |description: &str| {
        ApiError::invalid(
            "The dev session is handed out to this page only: call it from the Settings page, or send `X-Latchkey-Dev: 1` without an Origin (curl).",
            vec![Violation::new("origin", description)],
        )
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match headers.get(header::ORIGIN).map(|v| v.to_str()) {
        Some(Ok(origin)) => {
            let origin = origin.to_ascii_lowercase();
            let matches = ["http://", "https://"]
                .iter()
                .any(|scheme| origin == format!("{scheme}{host}"));
            if matches && !host.is_empty() {
                Ok(())
            } else {
                Err(refuse("the Origin is not this page's origin"))
            }
        }
        Some(Err(_)) => Err(refuse("the Origin is not readable")),
        None if headers.get(DEV_HEADER).is_some_and(|v| v == "1") => Ok(()),
        None => Err(refuse("no Origin and no X-Latchkey-Dev: 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_with_any_port_pass_and_others_do_not() {
        for host in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.:8080",
            "app.localhost:3000",
            "127.0.0.1:8080",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(host_allowed(host, &[]), "{host}");
        }
        for host in [
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io:8080",
            "[::2]:8080",
            "0.0.0.0:8080",
            "",
        ] {
            assert!(!host_allowed(host, &[]), "{host}");
        }
        assert!(host_allowed("devbox.lan:8080", &["devbox.lan".into()]));
    }

    #[test]
    fn the_dev_session_needs_its_own_origin_or_the_dev_header() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "localhost:8080".parse().unwrap());
        assert!(same_origin(&headers).is_err(), "nothing at all");
        headers.insert(DEV_HEADER, "1".parse().unwrap());
        assert!(same_origin(&headers).is_ok(), "curl with the header");
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(
            same_origin(&headers).is_err(),
            "a foreign origin wins over the header"
        );
        headers.insert(header::ORIGIN, "http://localhost:8080".parse().unwrap());
        assert!(same_origin(&headers).is_ok());
        headers.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(same_origin(&headers).is_err());
    }
}
