//! The settings table: every setting Latchkey reads, once, with a typed handle per row.
//!
//! A row names the file key (the `LATCHKEY_` variable is derived from it), the default, whether
//! the value is secret, which services read it and the help text `latchkey config` and the
//! README print. Code reaches a setting through its handle — `config.flag(AUTO_MIGRATE, …)`,
//! `config.parsed(LEEWAY_SECS, …)` — never through a string, so a misspelt setting is a compile
//! error and the value's type is fixed by the table.

use secrecy::SecretString;
use std::marker::PhantomData;
use std::net::SocketAddr;

/// Which component needs a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Auth,
    Settings,
    Gateway,
}

impl Service {
    /// Every service, in the order the README lists them.
    pub const ALL: [Service; 3] = [Service::Auth, Service::Settings, Service::Gateway];

    /// Lower-case name as used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Auth => "auth",
            Service::Settings => "settings",
            Service::Gateway => "gateway",
        }
    }
}

/// One setting: its file key, default, whether it is secret, who needs it.
#[derive(Debug, Clone, Copy)]
pub struct SettingSpec {
    /// Key in `latchkey.toml`; the env variable is `LATCHKEY_` + upper case of it.
    pub key: &'static str,
    /// The value when nothing sets it; the only place a default is written.
    pub default: Option<&'static str>,
    /// Secrets are redacted everywhere and may come from `…_FILE`.
    pub secret: bool,
    /// Services that read it.
    pub services: &'static [Service],
    /// Services that refuse to start without it.
    pub required_by: &'static [Service],
    /// Names apps arrive with that mean this setting (read as a fallback, with a notice).
    pub aliases: &'static [&'static str],
    /// One line for `latchkey config` and the README.
    pub help: &'static str,
}

impl SettingSpec {
    /// The environment variable, e.g. `LATCHKEY_SYNC_SECRET`.
    pub fn env(&self) -> String {
        format!("LATCHKEY_{}", self.key.to_ascii_uppercase())
    }
}

/// A typed handle on one row of [`SETTINGS`]: `T` is what the value parses into
/// (`SecretString` for secrets, `String` for free text).
pub struct Setting<T> {
    spec: &'static SettingSpec,
    value: PhantomData<fn() -> T>,
}

impl<T> Clone for Setting<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Setting<T> {}

impl<T> std::fmt::Debug for Setting<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.spec.key)
    }
}

impl<T> Setting<T> {
    const fn new(spec: &'static SettingSpec) -> Self {
        Setting {
            spec,
            value: PhantomData,
        }
    }

    /// The table row.
    pub const fn spec(self) -> &'static SettingSpec {
        self.spec
    }

    /// The key in `latchkey.toml`, e.g. `sync_secret`.
    pub const fn key(self) -> &'static str {
        self.spec.key
    }

    /// The environment variable, e.g. `LATCHKEY_SYNC_SECRET`, for messages that name it.
    pub fn env(self) -> String {
        self.spec.env()
    }
}

impl<T: std::str::FromStr> Setting<T> {
    /// The table's default, parsed; `None` when the table gives none. Types whose `Default`
    /// mirrors a setting build it from here, so the number is written once.
    pub fn default_value(self) -> Option<T> {
        self.spec.default.and_then(|text| text.parse().ok())
    }
}

/// Anything that names a table row: a typed handle, or a row met while walking [`SETTINGS`].
pub trait Key: Copy {
    /// The row it names.
    fn spec(self) -> &'static SettingSpec;
}

impl<T> Key for Setting<T> {
    fn spec(self) -> &'static SettingSpec {
        self.spec
    }
}

impl Key for &'static SettingSpec {
    fn spec(self) -> &'static SettingSpec {
        self
    }
}

/// Declares one handle per row and [`SETTINGS`] over all of them, from one list, so a row
/// cannot exist without its handle nor a handle without its row.
macro_rules! settings_table {
    ($(
        $name:ident: $ty:ty {
            key: $key:literal,
            default: $default:expr,
            secret: $secret:expr,
            services: $services:expr,
            required_by: $required_by:expr,
            aliases: $aliases:expr,
            help: $help:literal,
        },
    )*) => {
        $(
            #[doc = $help]
            pub const $name: Setting<$ty> = Setting::new(&SettingSpec {
                key: $key,
                default: $default,
                secret: $secret,
                services: $services,
                required_by: $required_by,
                aliases: $aliases,
                help: $help,
            });
        )*

        /// Every setting Latchkey reads, in the order `latchkey config` and the README list them.
        pub const SETTINGS: &[&SettingSpec] = &[$($name.spec()),*];

        /// Keys whose table default does not parse into the handle's type.
        #[cfg(test)]
        fn defaults_that_do_not_parse() -> Vec<&'static str> {
            let mut bad = Vec::new();
            $(
                if $default.is_some_and(|text: &str| !<$ty as tests::Parses>::parses(text)) {
                    bad.push($key);
                }
            )*
            bad
        }
    };
}

use Service::{Auth, Gateway, Settings};

const ALL: &[Service] = &Service::ALL;

settings_table! {
    ENV: String {
        key: "env",
        default: Some("development"),
        secret: false,
        services: ALL,
        required_by: &[],
        aliases: &[],
        help: "`development` or `production`; production refuses weak or placeholder secrets and SQLite",
    },
    DATABASE_URL: SecretString {
        key: "database_url",
        default: Some("sqlite://.latchkey/latchkey.db?mode=rwc"),
        secret: true,
        services: &[Auth, Settings],
        required_by: &[],
        aliases: &["DATABASE_URL"],
        help: "sqlite://PATH?mode=rwc or postgres://USER:PASS@HOST/DB; secret because it may hold a password",
    },
    AUTO_MIGRATE: bool {
        key: "auto_migrate",
        default: Some("true"),
        secret: false,
        services: &[Auth, Settings],
        required_by: &[],
        aliases: &[],
        help: "apply pending migrations on start (otherwise run `latchkey migrate`)",
    },
    AUTH_LISTEN: SocketAddr {
        key: "auth_listen",
        default: Some("127.0.0.1:50051"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "address the auth gRPC server binds",
    },
    SETTINGS_LISTEN: SocketAddr {
        key: "settings_listen",
        default: Some("127.0.0.1:50052"),
        secret: false,
        services: &[Settings],
        required_by: &[],
        aliases: &[],
        help: "address the settings gRPC server binds",
    },
    GATEWAY_LISTEN: SocketAddr {
        key: "gateway_listen",
        default: Some("127.0.0.1:8080"),
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "address the REST gateway binds",
    },
    AUTH_URL: String {
        key: "auth_url",
        default: Some("http://127.0.0.1:50051"),
        secret: false,
        services: &[Settings, Gateway],
        required_by: &[],
        aliases: &[],
        help: "where settings and the gateway reach auth (comma-separated for several)",
    },
    SETTINGS_URL: String {
        key: "settings_url",
        default: None,
        secret: false,
        services: &[Auth, Gateway],
        required_by: &[Gateway],
        aliases: &[],
        help: "where auth (to purge a deleted user's settings) and the gateway reach settings, e.g. http://127.0.0.1:50052",
    },
    CORS_ORIGINS: String {
        key: "cors_origins",
        default: None,
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "browser origins allowed to call the gateway with credentials, comma-separated (e.g. https://app.example.com); empty: same origin only",
    },
    SYNC_RATE_PER_MINUTE: u32 {
        key: "sync_rate_per_minute",
        default: Some("60"),
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "sync-user and token requests allowed per client IP per minute (429 RATE_LIMITED beyond)",
    },
    AUTH_FAILURE_RATE_PER_MINUTE: u32 {
        key: "auth_failure_rate_per_minute",
        default: Some("30"),
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "failed authentications (bad token or sync secret) allowed per client IP per minute before 429",
    },
    CLIENT_IP_HEADER: String {
        key: "client_ip_header",
        default: None,
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "header naming the client IP when the gateway sits behind proxies (e.g. x-forwarded-for, fly-client-ip); read only from peers in LATCHKEY_TRUSTED_PROXIES; unset: the TCP peer",
    },
    TRUSTED_PROXIES: String {
        key: "trusted_proxies",
        default: None,
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "proxies whose LATCHKEY_CLIENT_IP_HEADER is believed, as CIDRs or addresses, comma-separated (e.g. 10.0.0.0/8); the client IP is the rightmost address in the header that is not one of them",
    },
    DEV_HOSTS: String {
        key: "dev_hosts",
        default: None,
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "under `latchkey dev` only: Host names answered besides localhost, *.localhost, 127.0.0.1 and [::1] (comma-separated, e.g. devbox.lan); the rest get 400 (DNS-rebinding guard)",
    },
    HTTP_HEADER_TIMEOUT_SECS: u64 {
        key: "http_header_timeout_secs",
        default: Some("10"),
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "a request head (request line and headers) must arrive whole within this many seconds of its first byte, or the connection is closed",
    },
    HTTP_IDLE_TIMEOUT_SECS: u64 {
        key: "http_idle_timeout_secs",
        default: Some("75"),
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "a connection with no request for this many seconds is closed (keep it above your load balancer's idle timeout, often 60 s)",
    },
    HTTP_MAX_CONNECTIONS: u64 {
        key: "http_max_connections",
        default: Some("4096"),
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "open client connections the gateway holds at most; beyond it new ones wait in the listen backlog (keep it below the process's file limit, `ulimit -n`)",
    },
    AUTH_CACHE_SECS: u64 {
        key: "auth_cache_secs",
        default: Some("5"),
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "how long the gateway trusts auth's answer for a token (0-5 s; the revocation bound; from 4 s, answers in use are renewed in the background)",
    },
    SYNC_SECRET: SecretString {
        key: "sync_secret",
        default: None,
        secret: true,
        services: &[Auth],
        required_by: &[Auth],
        aliases: &["AUTH_SYNC_SECRET"],
        help: "shared with your web app's server; guards user sync and token issue (32+ random bytes)",
    },
    SEAL_KEY: SecretString {
        key: "seal_key",
        default: None,
        secret: true,
        services: &[Auth],
        required_by: &[Auth],
        aliases: &[],
        help: "32-byte key (base64 or hex) sealing auth's private signing keys at rest",
    },
    ISSUER: String {
        key: "issuer",
        default: Some("latchkey"),
        secret: false,
        services: &[Auth, Settings],
        required_by: &[],
        aliases: &[],
        help: "`iss` of issued tokens, required on verification",
    },
    AUDIENCE: String {
        key: "audience",
        default: Some("latchkey"),
        secret: false,
        services: &[Auth, Settings],
        required_by: &[],
        aliases: &[],
        help: "`aud` of issued tokens, required on verification",
    },
    TOKEN_TTL_SECS: i64 {
        key: "token_ttl_secs",
        default: Some("900"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "lifetime of issued access tokens, seconds",
    },
    REFRESH_TOKEN_TTL_SECS: i64 {
        key: "refresh_token_ttl_secs",
        default: Some("2592000"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "absolute lifetime of a refresh token family (from sign-in; rotation does not extend it), seconds",
    },
    REFRESH_TOKEN_IDLE_SECS: i64 {
        key: "refresh_token_idle_secs",
        default: Some("604800"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "a refresh token unused this long expires (each rotation starts it again), seconds",
    },
    REFRESH_TOKEN_GRACE_SECS: i64 {
        key: "refresh_token_grace_secs",
        default: Some("10"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "a refresh token presented again this soon after its rotation gets a sibling instead of revoking its family (two tabs), seconds; 0 turns the window off",
    },
    LEEWAY_SECS: i64 {
        key: "leeway_secs",
        default: Some("30"),
        secret: false,
        services: &[Auth, Settings],
        required_by: &[],
        aliases: &[],
        help: "clock skew tolerated on `exp`/`nbf`, seconds",
    },
    SIGNING_KEY_REFRESH_SECS: i64 {
        key: "signing_key_refresh_secs",
        default: Some("5"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "how often auth re-reads signing keys, so a rotation needs no restart",
    },
    SERVICE_CLIENTS: SecretString {
        key: "service_clients",
        default: None,
        secret: true,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "internal callers: `id:secret:scope1 scope2;id2:secret2:scope` (client-credentials tokens)",
    },
    LEGACY_HS256_ENABLED: bool {
        key: "legacy_hs256_enabled",
        default: Some("false"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "also accept HS256 tokens signed by your web app (NextAuth-style), `sub` = email",
    },
    LEGACY_HS256_SECRET: SecretString {
        key: "legacy_hs256_secret",
        default: None,
        secret: true,
        services: &[Auth],
        required_by: &[],
        aliases: &["NEXTAUTH_SECRET", "AUTH_SECRET"],
        help: "the HS256 secret your web app signs legacy tokens with",
    },
    LEGACY_ISSUER: String {
        key: "legacy_issuer",
        default: None,
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "when set, legacy tokens must carry this `iss`",
    },
    LEGACY_HS256_AUDIENCE: String {
        key: "legacy_hs256_audience",
        default: Some("latchkey"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "`aud` every legacy token must carry, so other JWTs the web app signs with the same secret (invite, unsubscribe links) are never sessions",
    },
    AUTHJS_TOKENS: String {
        key: "authjs_tokens",
        default: Some("off"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "accept the web app's Auth.js session tokens (encrypted JWE): `off`, `v4` (next-auth 4), `v5` (Auth.js 5 / @auth/core) or `both`; keyed from LATCHKEY_LEGACY_HS256_SECRET",
    },
    AUTHJS_COOKIE_NAME: String {
        key: "authjs_cookie_name",
        default: None,
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "the web app's Auth.js v5 session cookie name when it renames it (v5 derives its key from the name); authjs.session-token and __Secure-authjs.session-token are always tried",
    },
    JIT_PROVISIONING: bool {
        key: "jit_provisioning",
        default: Some("false"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "create the user on first sight of a valid legacy token instead of USER_NOT_SYNCED",
    },
    LINK_VERIFIED_EMAILS: bool {
        key: "link_verified_emails",
        default: Some("true"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "a new sign-in (provider + subject) whose provider vouches for its email (`email_verified: true`) joins the one existing user with that email; off: every new identity gets its own user. Unverified emails never link",
    },
    ENCRYPTION_KEYS: SecretString {
        key: "encryption_keys",
        default: None,
        secret: true,
        services: &[Settings],
        required_by: &[Settings],
        aliases: &["ENCRYPTION_KEY"],
        help: "master keys `id:key,id2:key2` (32 bytes base64/hex each); the first is active",
    },
    METRICS_LISTEN: String {
        key: "metrics_listen",
        default: None,
        secret: false,
        services: ALL,
        required_by: &[],
        aliases: &[],
        help: "address serving Prometheus `GET /metrics` (e.g. 0.0.0.0:9464); unset: no metrics (never on the gateway's public port)",
    },
    GRPC_MAX_CONCURRENT_REQUESTS: usize {
        key: "grpc_max_concurrent_requests",
        default: Some("512"),
        secret: false,
        services: &[Auth, Settings],
        required_by: &[],
        aliases: &[],
        help: "calls a gRPC server works on at once; beyond it calls are shed at once with RATE_LIMITED and a retry delay (health checks are never shed)",
    },
    GRPC_FAILURE_RATE_PER_MINUTE: u32 {
        key: "grpc_failure_rate_per_minute",
        default: Some("60"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "wrong sync secrets or client credentials (SyncUser, IssueToken, IssueServiceToken) allowed per peer address per minute before RATE_LIMITED; right ones always pass; 0 disables",
    },
    SHUTDOWN_DELAY: u64 {
        key: "shutdown_delay",
        default: Some("0"),
        secret: false,
        services: ALL,
        required_by: &[],
        aliases: &[],
        help: "seconds a service keeps accepting after SIGTERM while its health and readiness already answer not-serving, so load balancers move away first",
    },
    SHUTDOWN_TIMEOUT: u64 {
        key: "shutdown_timeout",
        default: Some("20"),
        secret: false,
        services: ALL,
        required_by: &[],
        aliases: &[],
        help: "seconds in-flight requests get to finish once a service stops accepting; then remaining connections are dropped",
    },
    LOG_FORMAT: String {
        key: "log_format",
        default: Some("text"),
        secret: false,
        services: ALL,
        required_by: &[],
        aliases: &[],
        help: "`text` or `json`; filter with RUST_LOG",
    },
    SETTINGS_SCHEMA: String {
        key: "settings_schema",
        default: None,
        secret: false,
        services: &[Settings],
        required_by: &[],
        aliases: &[],
        help: "declared settings as JSON `{\"settings\": {NAME: {label, help, link, required, pattern, min_length, max_length, preset, generate}}, \"allow_undeclared\": true}` (README: Declared settings); in latchkey.toml also as a `[settings_schema]` table; read at start",
    },
    SETTINGS_SCHEMA_FILE: String {
        key: "settings_schema_file",
        default: None,
        secret: false,
        services: &[Settings],
        required_by: &[],
        aliases: &[],
        help: "a JSON file holding the declared settings (instead of LATCHKEY_SETTINGS_SCHEMA); re-read every 2 s while settings runs, so a change needs no restart",
    },
    SIGNING_ROTATE_EVERY: String {
        key: "signing_rotate_every",
        default: None,
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "rotate the signing key automatically this often (`30d`, `12h`, `1m`): a standby key is published `jwks_cache_secs` before it signs; unset, only `latchkey keys rotate-signing` rotates",
    },
    JWKS_CACHE_SECS: i64 {
        key: "jwks_cache_secs",
        default: Some("600"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "how long verifiers may cache the JWKS (its `Cache-Control: max-age`); a new signing key is published at least this long before it signs",
    },
    SIGNING_ALG: String {
        key: "signing_alg",
        default: Some("EdDSA"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "algorithm of new signing keys: `EdDSA` (Ed25519) or `ES256` (P-256); keys of both verify side by side",
    },
}

/// Looks a setting up by its file key (for names read from outside: the file, the environment).
pub fn spec(key: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().copied().find(|s| s.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_has_help_and_required_implies_used() {
        for spec in SETTINGS {
            assert!(!spec.help.is_empty(), "{}", spec.key);
            for service in spec.required_by {
                assert!(spec.services.contains(service), "{}", spec.key);
            }
        }
    }

    #[test]
    fn keys_are_unique_so_every_variable_names_one_setting() {
        let mut keys: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), SETTINGS.len());
    }

    /// Whether a table default is a valid value of the handle's type.
    pub(super) trait Parses {
        fn parses(text: &str) -> bool;
    }

    macro_rules! parses_with_from_str {
        ($($ty:ty),*) => {
            $(impl Parses for $ty {
                fn parses(text: &str) -> bool {
                    text.parse::<$ty>().is_ok()
                }
            })*
        };
    }

    parses_with_from_str!(String, bool, u32, u64, i64, usize, SocketAddr);

    impl Parses for SecretString {
        fn parses(_: &str) -> bool {
            true
        }
    }

    #[test]
    fn every_default_parses_into_its_handles_type() {
        assert!(
            defaults_that_do_not_parse().is_empty(),
            "{:?}",
            defaults_that_do_not_parse()
        );
        assert_eq!(LEEWAY_SECS.default_value(), Some(30));
        assert_eq!(
            GATEWAY_LISTEN.default_value(),
            Some(SocketAddr::from(([127, 0, 0, 1], 8080)))
        );
        assert_eq!(HTTP_MAX_CONNECTIONS.default_value(), Some(4096));
        assert_eq!(AUTO_MIGRATE.default_value(), Some(true));
        assert_eq!(SETTINGS_URL.default_value(), None);
    }
}
