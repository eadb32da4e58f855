//! The gateway's configuration, read from the shared settings table and validated once.

use latchkey_common::config::validate::{listen_address, upstream_urls};
use latchkey_common::config::{
    AUTH_CACHE_SECS, AUTH_FAILURE_RATE_PER_MINUTE, AUTH_URL, CLIENT_IP_HEADER, CORS_ORIGINS,
    Config, DEV_HOSTS, GATEWAY_LISTEN, HTTP_HEADER_TIMEOUT_SECS, HTTP_IDLE_TIMEOUT_SECS,
    HTTP_MAX_CONNECTIONS, Problems, SETTINGS_URL, SYNC_RATE_PER_MINUTE, Setting, TRUSTED_PROXIES,
};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::time::Duration;

/// The longest the gateway may trust auth's answer about a token: the documented bound within
/// which a revocation or deletion takes effect.
pub const MAX_AUTH_CACHE: Duration = Duration::from_secs(5);

/// Everything the gateway needs to run.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// Auth addresses (`http://host:port`); several are balanced.
    pub auth_urls: Vec<String>,
    /// Settings addresses; several are balanced.
    pub settings_urls: Vec<String>,
    /// Browser origins allowed by CORS (exact `scheme://host[:port]`).
    pub cors_origins: Vec<String>,
    /// Sync-user and token calls per client IP per minute; 0 disables the limit.
    pub sync_rate_per_minute: u32,
    /// Failed authentications per client IP per minute before 429; 0 disables the limit.
    pub auth_failure_rate_per_minute: u32,
    /// Header naming the client IP when behind proxies (lower case); read only from peers in
    /// `trusted_proxies`.
    pub client_ip_header: Option<String>,
    /// Proxies whose `client_ip_header` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long a successful `Authenticate` answer is reused (at most [`MAX_AUTH_CACHE`]).
    pub auth_cache: Duration,
    /// Set only by `latchkey dev`: mounts `POST /api/dev/session`, which signs in a fixed dev
    /// user with this sync secret, and restricts `Host` to loopback names and `dev_hosts`.
    pub dev_session: Option<SecretString>,
    /// Host names answered under `latchkey dev` besides the loopback ones (lower case).
    pub dev_hosts: Vec<String>,
    /// Timeouts and the connection cap of the HTTP server.
    pub http: HttpLimits,
}

/// The HTTP server's defences against slow and numerous clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request head must be complete this long after its first byte.
    pub header_timeout: Duration,
    /// A connection with no request in progress is closed after this long.
    pub idle_timeout: Duration,
    /// Open client connections at most.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    /// The table's defaults.
    fn default() -> Self {
        let seconds = |setting: Setting<u64>| {
            Duration::from_secs(setting.default_value().expect("the table's default parses"))
        };
        HttpLimits {
            header_timeout: seconds(HTTP_HEADER_TIMEOUT_SECS),
            idle_timeout: seconds(HTTP_IDLE_TIMEOUT_SECS),
            max_connections: HTTP_MAX_CONNECTIONS
                .default_value()
                .expect("the table's default parses") as usize,
        }
    }
}

impl GatewayConfig {
    /// Reads and validates the gateway's settings; every problem is reported at once.
    pub fn from_config(config: &Config) -> Result<GatewayConfig, Problems> {
        let mut problems = config.load_problems();
        let listen = listen_address(config, GATEWAY_LISTEN, &mut problems);
        let auth_urls = upstream_urls(config, AUTH_URL, "http://127.0.0.1:50051", &mut problems);
        let settings_urls = upstream_urls(
            config,
            SETTINGS_URL,
            "http://127.0.0.1:50052",
            &mut problems,
        );
        let cors_origins = cors_origins(config.get(CORS_ORIGINS).unwrap_or(""), &mut problems);
        let sync_rate_per_minute = config
            .parsed(SYNC_RATE_PER_MINUTE, "a whole number", &mut problems)
            .unwrap_or_default();
        let auth_failure_rate_per_minute = config
            .parsed(
                AUTH_FAILURE_RATE_PER_MINUTE,
                "a whole number",
                &mut problems,
            )
            .unwrap_or_default();
        let client_ip_header = config
            .get(CLIENT_IP_HEADER)
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty());
        if let Some(header) = &client_ip_header
            && http::HeaderName::from_bytes(header.as_bytes()).is_err()
        {
            problems.push(
                CLIENT_IP_HEADER.env(),
                format!("`{header}` is not a header name"),
                "set it to a header name such as x-forwarded-for, or unset it",
            );
        }
        let trusted_proxies = crate::client_ip::parse_proxies(
            config.get(TRUSTED_PROXIES).unwrap_or(""),
            &mut problems,
        );
        if client_ip_header.is_some() && trusted_proxies.is_empty() {
            let (header, proxies) = (CLIENT_IP_HEADER.env(), TRUSTED_PROXIES.env());
            problems.push(
                &header,
                format!("is set but {proxies} is empty, so anyone could name any client address in it"),
                format!("set {proxies} to the addresses your proxies connect from (e.g. 10.0.0.0/8), or unset {header}"),
            );
        }
        let dev_hosts = config
            .get(DEV_HOSTS)
            .unwrap_or("")
            .split(',')
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let http = http_limits(config, &mut problems);
        let cache_secs = config
            .parsed(
                AUTH_CACHE_SECS,
                "a whole number of seconds (0-5)",
                &mut problems,
            )
            .unwrap_or_default();
        if Duration::from_secs(cache_secs) > MAX_AUTH_CACHE {
            problems.push(
                AUTH_CACHE_SECS.env(),
                format!("{cache_secs} exceeds the 5 s revocation bound"),
                "set it to a value from 0 to 5",
            );
        }
        let Some(listen) = listen else {
            return Err(problems);
        };
        problems.into_result(GatewayConfig {
            listen,
            auth_urls,
            settings_urls,
            cors_origins,
            sync_rate_per_minute,
            auth_failure_rate_per_minute,
            client_ip_header,
            trusted_proxies,
            auth_cache: Duration::from_secs(cache_secs).min(MAX_AUTH_CACHE),
            dev_session: None,
            dev_hosts,
            http,
        })
    }
}

fn http_limits(config: &Config, problems: &mut Problems) -> HttpLimits {
    let defaults = HttpLimits::default();
    let mut at_least_one = |setting: Setting<u64>, default: u64| -> u64 {
        let Some(value) = config.parsed(setting, "a whole number of at least 1", problems) else {
            return default;
        };
        if value == 0 {
            problems.push(
                setting.env(),
                "must be at least 1",
                format!("set a whole number of at least 1 (default {default})"),
            );
            return default;
        }
        value
    };
    HttpLimits {
        header_timeout: Duration::from_secs(at_least_one(
            HTTP_HEADER_TIMEOUT_SECS,
            defaults.header_timeout.as_secs(),
        )),
        idle_timeout: Duration::from_secs(at_least_one(
            HTTP_IDLE_TIMEOUT_SECS,
            defaults.idle_timeout.as_secs(),
        )),
        max_connections: at_least_one(HTTP_MAX_CONNECTIONS, defaults.max_connections as u64)
            as usize,
    }
}

/// Parses the CORS allow-list; `*` is refused because credentials are allowed.
pub fn cors_origins(text: &str, problems: &mut Problems) -> Vec<String> {
    let mut origins = Vec::new();
    for origin in text.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let origin = origin.trim_end_matches('/');
        let uri = origin.parse::<http::Uri>().ok();
        let well_formed = uri.as_ref().is_some_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https"))
                && u.host().is_some()
                && u.path_and_query()
                    .is_none_or(|p| p.as_str() == "/" || p.as_str().is_empty())
        });
        if origin == "*" || !well_formed {
            problems.push(
                CORS_ORIGINS.env(),
                format!("`{origin}` is not an origin like https://app.example.com (`*` is not allowed with credentials)"),
                "list exact origins, comma-separated: scheme://host[:port]",
            );
            continue;
        }
        origins.push(origin.to_owned());
    }
    origins
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<GatewayConfig, Problems> {
        let mut env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        env.insert(
            "LATCHKEY_SETTINGS_URL".into(),
            "http://127.0.0.1:50052".into(),
        );
        GatewayConfig::from_config(&Config::from_env_map(env))
    }

    #[test]
    fn a_client_ip_header_needs_trusted_proxies() {
        let problems = load(&[("LATCHKEY_CLIENT_IP_HEADER", "x-forwarded-for")])
            .expect_err("anyone could name any client");
        let text = problems.to_string();
        assert!(text.contains("LATCHKEY_TRUSTED_PROXIES"), "{text}");
        let config = load(&[
            ("LATCHKEY_CLIENT_IP_HEADER", "x-forwarded-for"),
            ("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7"),
            ("LATCHKEY_DEV_HOSTS", "DevBox.lan."),
        ])
        .unwrap();
        assert_eq!(config.trusted_proxies.len(), 2);
        assert_eq!(config.dev_hosts, ["devbox.lan"]);
    }

    #[test]
    fn server_limits_have_defaults_and_refuse_zero() {
        let config = load(&[]).unwrap();
        assert_eq!(config.http, HttpLimits::default());
        let problems = load(&[("LATCHKEY_HTTP_MAX_CONNECTIONS", "0")]).expect_err("zero");
        assert!(
            problems
                .to_string()
                .contains("LATCHKEY_HTTP_MAX_CONNECTIONS")
        );
        let config = load(&[
            ("LATCHKEY_HTTP_HEADER_TIMEOUT_SECS", "3"),
            ("LATCHKEY_HTTP_IDLE_TIMEOUT_SECS", "120"),
            ("LATCHKEY_HTTP_MAX_CONNECTIONS", "100"),
        ])
        .unwrap();
        assert_eq!(
            config.http,
            HttpLimits {
                header_timeout: Duration::from_secs(3),
                idle_timeout: Duration::from_secs(120),
                max_connections: 100,
            }
        );
    }
}
