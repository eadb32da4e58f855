//! Configuration: one table ([`SETTINGS`]) naming every setting, loaded in layers — defaults,
//! then what the command lays underneath ([`Underlay`]: the secrets `latchkey dev` generates),
//! then `latchkey.toml` (or the file `LATCHKEY_CONFIG` names), then the environment — and
//! validated by each service into its own typed config, collecting one [`Problem`] per mistake
//! (variable, what is wrong, fix). In the environment a setting is read from `LATCHKEY_<NAME>`,
//! `LATCHKEY_<NAME>_FILE` for a secret, else from the names apps arrive with (its `aliases`,
//! and their `_FILE` forms); two of those names holding different values is a
//! [`Conflict`](crate::aliases::Conflict): a load problem in production, a warning in development.

use crate::aliases::{self, Conflict, Named};
use secrecy::SecretString;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Which component needs a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Auth,
    Settings,
    Gateway,
}

impl Service {
    /// Lower-case name as used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Auth => "auth",
            Service::Settings => "settings",
            Service::Gateway => "gateway",
        }
    }
}

/// One setting: its file key, environment variable, default, whether it is secret, who needs it.
#[derive(Debug, Clone, Copy)]
pub struct SettingSpec {
    /// Key in `latchkey.toml`; the env variable is `LATCHKEY_` + upper case of it.
    pub key: &'static str,
    pub default: Option<&'static str>,
    /// Secrets are redacted everywhere and may come from `…_FILE`.
    pub secret: bool,
    /// Services that read it.
    pub services: &'static [Service],
    /// Services that refuse to start without it.
    pub required_by: &'static [Service],
    /// Names apps arrive with that mean this setting (read as a fallback, with a notice).
    pub aliases: &'static [&'static str],
    pub help: &'static str,
}

impl SettingSpec {
    /// The environment variable, e.g. `LATCHKEY_SYNC_SECRET`.
    pub fn env(&self) -> String {
        format!("LATCHKEY_{}", self.key.to_ascii_uppercase())
    }
}

use Service::{Auth, Gateway, Settings};

const ALL: &[Service] = &[Auth, Settings, Gateway];

/// Every setting Latchkey reads. `latchkey config` and the README table come from here.
pub const SETTINGS: &[SettingSpec] = &[
    SettingSpec {
        key: "env",
        default: Some("development"),
        secret: false,
        services: ALL,
        required_by: &[],
        aliases: &[],
        help: "`development` or `production`; production refuses weak or placeholder secrets and SQLite",
    },
    SettingSpec {
        key: "database_url",
        default: Some("sqlite://.latchkey/latchkey.db?mode=rwc"),
        secret: true,
        services: &[Auth, Settings],
        required_by: &[],
        aliases: &["DATABASE_URL"],
        help: "sqlite://PATH?mode=rwc or postgres://USER:PASS@HOST/DB; secret because it may hold a password",
    },
    SettingSpec {
        key: "auto_migrate",
        default: Some("true"),
        secret: false,
        services: &[Auth, Settings],
        required_by: &[],
        aliases: &[],
        help: "apply pending migrations on start (otherwise run `latchkey migrate`)",
    },
    SettingSpec {
        key: "auth_listen",
        default: Some("127.0.0.1:50051"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "address the auth gRPC server binds",
    },
    SettingSpec {
        key: "settings_listen",
        default: Some("127.0.0.1:50052"),
        secret: false,
        services: &[Settings],
        required_by: &[],
        aliases: &[],
        help: "address the settings gRPC server binds",
    },
    SettingSpec {
        key: "gateway_listen",
        default: Some("127.0.0.1:8080"),
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "address the REST gateway binds",
    },
    SettingSpec {
        key: "auth_url",
        default: Some("http://127.0.0.1:50051"),
        secret: false,
        services: &[Settings, Gateway],
        required_by: &[],
        aliases: &[],
        help: "where settings and the gateway reach auth (comma-separated for several)",
    },
    SettingSpec {
        key: "settings_url",
        default: None,
        secret: false,
        services: &[Auth, Gateway],
        required_by: &[Gateway],
        aliases: &[],
        help: "where auth (to purge a deleted user's settings) and the gateway reach settings, e.g. http://127.0.0.1:50052",
    },
    SettingSpec {
        key: "cors_origins",
        default: None,
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "browser origins allowed to call the gateway with credentials, comma-separated (e.g. https://app.example.com); empty: same origin only",
    },
    SettingSpec {
        key: "sync_rate_per_minute",
        default: Some("60"),
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "sync-user and token requests allowed per client IP per minute (429 RATE_LIMITED beyond)",
    },
    SettingSpec {
        key: "auth_failure_rate_per_minute",
        default: Some("30"),
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "failed authentications (bad token or sync secret) allowed per client IP per minute before 429",
    },
    SettingSpec {
        key: "client_ip_header",
        default: None,
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "header naming the client IP when the gateway sits behind proxies (e.g. x-forwarded-for, fly-client-ip); read only from peers in LATCHKEY_TRUSTED_PROXIES; unset: the TCP peer",
    },
    SettingSpec {
        key: "trusted_proxies",
        default: None,
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "proxies whose LATCHKEY_CLIENT_IP_HEADER is believed, as CIDRs or addresses, comma-separated (e.g. 10.0.0.0/8); the client IP is the rightmost address in the header that is not one of them",
    },
    SettingSpec {
        key: "dev_hosts",
        default: None,
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "under `latchkey dev` only: Host names answered besides localhost, *.localhost, 127.0.0.1 and [::1] (comma-separated, e.g. devbox.lan); the rest get 400 (DNS-rebinding guard)",
    },
    SettingSpec {
        key: "http_header_timeout_secs",
        default: Some("10"),
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "a request head (request line and headers) must arrive whole within this many seconds of its first byte, or the connection is closed",
    },
    SettingSpec {
        key: "http_idle_timeout_secs",
        default: Some("75"),
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "a connection with no request for this many seconds is closed (keep it above your load balancer's idle timeout, often 60 s)",
    },
    SettingSpec {
        key: "http_max_connections",
        default: Some("4096"),
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "open client connections the gateway holds at most; beyond it new ones wait in the listen backlog (keep it below the process's file limit, `ulimit -n`)",
    },
    SettingSpec {
        key: "auth_cache_secs",
        default: Some("5"),
        secret: false,
        services: &[Gateway],
        required_by: &[],
        aliases: &[],
        help: "how long the gateway trusts auth's answer for a token (0-5 s; the revocation bound)",
    },
    SettingSpec {
        key: "sync_secret",
        default: None,
        secret: true,
        services: &[Auth],
        required_by: &[Auth],
        aliases: &["AUTH_SYNC_SECRET"],
        help: "shared with your web app's server; guards user sync and token issue (32+ random bytes)",
    },
    SettingSpec {
        key: "seal_key",
        default: None,
        secret: true,
        services: &[Auth],
        required_by: &[Auth],
        aliases: &[],
        help: "32-byte key (base64 or hex) sealing auth's private signing keys at rest",
    },
    SettingSpec {
        key: "issuer",
        default: Some("latchkey"),
        secret: false,
        services: &[Auth, Settings, Gateway],
        required_by: &[],
        aliases: &[],
        help: "`iss` of issued tokens, required on verification",
    },
    SettingSpec {
        key: "audience",
        default: Some("latchkey"),
        secret: false,
        services: &[Auth, Settings, Gateway],
        required_by: &[],
        aliases: &[],
        help: "`aud` of issued tokens, required on verification",
    },
    SettingSpec {
        key: "token_ttl_secs",
        default: Some("900"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "lifetime of issued access tokens, seconds",
    },
    SettingSpec {
        key: "leeway_secs",
        default: Some("30"),
        secret: false,
        services: &[Auth, Settings, Gateway],
        required_by: &[],
        aliases: &[],
        help: "clock skew tolerated on `exp`/`nbf`, seconds",
    },
    SettingSpec {
        key: "signing_key_refresh_secs",
        default: Some("5"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "how often auth re-reads signing keys, so a rotation needs no restart",
    },
    SettingSpec {
        key: "service_clients",
        default: None,
        secret: true,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "internal callers: `id:secret:scope1 scope2;id2:secret2:scope` (client-credentials tokens)",
    },
    SettingSpec {
        key: "legacy_hs256_enabled",
        default: Some("false"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "also accept HS256 tokens signed by your web app (NextAuth-style), `sub` = email",
    },
    SettingSpec {
        key: "legacy_hs256_secret",
        default: None,
        secret: true,
        services: &[Auth],
        required_by: &[],
        aliases: &["NEXTAUTH_SECRET", "AUTH_SECRET"],
        help: "the HS256 secret your web app signs legacy tokens with",
    },
    SettingSpec {
        key: "legacy_issuer",
        default: None,
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "when set, legacy tokens must carry this `iss`",
    },
    SettingSpec {
        key: "legacy_hs256_audience",
        default: Some("latchkey"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "`aud` every legacy token must carry, so other JWTs the web app signs with the same secret (invite, unsubscribe links) are never sessions",
    },
    SettingSpec {
        key: "authjs_tokens",
        default: Some("off"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "accept the web app's Auth.js session tokens (encrypted JWE): `off`, `v4` (next-auth 4), `v5` (Auth.js 5 / @auth/core) or `both`; keyed from LATCHKEY_LEGACY_HS256_SECRET",
    },
    SettingSpec {
        key: "authjs_cookie_name",
        default: None,
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "the web app's Auth.js v5 session cookie name when it renames it (v5 derives its key from the name); authjs.session-token and __Secure-authjs.session-token are always tried",
    },
    SettingSpec {
        key: "jit_provisioning",
        default: Some("false"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "create the user on first sight of a valid legacy token instead of USER_NOT_SYNCED",
    },
    SettingSpec {
        key: "link_verified_emails",
        default: Some("true"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "a new sign-in (provider + subject) whose provider vouches for its email (`email_verified: true`) joins the one existing user with that email; off: every new identity gets its own user. Unverified emails never link",
    },
    SettingSpec {
        key: "encryption_keys",
        default: None,
        secret: true,
        services: &[Settings],
        required_by: &[Settings],
        aliases: &["ENCRYPTION_KEY"],
        help: "master keys `id:key,id2:key2` (32 bytes base64/hex each); the first is active",
    },
    SettingSpec {
        key: "metrics_listen",
        default: None,
        secret: false,
        services: ALL,
        required_by: &[],
        aliases: &[],
        help: "address serving Prometheus `GET /metrics` (e.g. 0.0.0.0:9464); unset: no metrics (never on the gateway's public port)",
    },
    SettingSpec {
        key: "grpc_max_concurrent_requests",
        default: Some("512"),
        secret: false,
        services: &[Auth, Settings],
        required_by: &[],
        aliases: &[],
        help: "calls a gRPC server works on at once; beyond it calls are shed at once with RATE_LIMITED and a retry delay (health checks are never shed)",
    },
    SettingSpec {
        key: "grpc_failure_rate_per_minute",
        default: Some("60"),
        secret: false,
        services: &[Auth],
        required_by: &[],
        aliases: &[],
        help: "wrong sync secrets or client credentials (SyncUser, IssueToken, IssueServiceToken) allowed per peer address per minute before RATE_LIMITED; right ones always pass; 0 disables",
    },
    SettingSpec {
        key: "shutdown_delay",
        default: Some("0"),
        secret: false,
        services: ALL,
        required_by: &[],
        aliases: &[],
        help: "seconds a service keeps accepting after SIGTERM while its health and readiness already answer not-serving, so load balancers move away first",
    },
    SettingSpec {
        key: "shutdown_timeout",
        default: Some("20"),
        secret: false,
        services: ALL,
        required_by: &[],
        aliases: &[],
        help: "seconds in-flight requests get to finish once a service stops accepting; then remaining connections are dropped",
    },
    SettingSpec {
        key: "log_format",
        default: Some("text"),
        secret: false,
        services: ALL,
        required_by: &[],
        aliases: &[],
        help: "`text` or `json`; filter with RUST_LOG",
    },
];

/// Looks a setting up by its file key.
pub fn spec(key: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// Where a value came from (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    EnvFile(String, PathBuf),
    Alias(String),
    /// Laid beneath the file by the command (e.g. `.latchkey/dev-secrets.env` under `latchkey dev`).
    Underlay(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Env(name) => f.write_str(name),
            Source::EnvFile(name, path) => write!(f, "{name} ({})", path.display()),
            Source::Alias(name) => write!(f, "{name} (alias)"),
            Source::Underlay(origin) => f.write_str(origin),
        }
    }
}

/// One configuration mistake: which variable, what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub variable: String,
    pub what: String,
    pub fix: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}\n    fix: {}", self.variable, self.what, self.fix)
    }
}

/// Every problem found, reported together so one restart fixes them all.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "configuration has {} problem(s):", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl Problems {
    /// Records a problem.
    pub fn push(
        &mut self,
        variable: impl Into<String>,
        what: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Problem {
            variable: variable.into(),
            what: what.into(),
            fix: fix.into(),
        });
    }

    /// `Ok(value)` when nothing was recorded.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

struct Value {
    text: Zeroizing<String>,
    source: Source,
}

/// A value a command lays beneath `latchkey.toml` and the environment, so that anything set
/// there wins: what `latchkey dev` generates, or what `latchkey doctor` reads from dev's files.
pub struct Underlay {
    /// The setting's `LATCHKEY_` variable, e.g. `LATCHKEY_SEAL_KEY`.
    pub variable: String,
    pub value: Zeroizing<String>,
    /// Where it comes from, shown by `latchkey fingerprint` and doctor (never the value).
    pub origin: String,
}

/// The loaded, layered configuration: raw values by key, typed by each service.
pub struct Config {
    values: BTreeMap<&'static str, Value>,
    /// Informational lines for the startup log (aliases used, unknown variables).
    pub notices: Vec<String>,
    problems: Problems,
    /// Settings given under several names with different values (see [`crate::aliases`]).
    conflicts: Vec<Conflict>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.values {
            let secret = spec(key).is_some_and(|s| s.secret);
            let shown = if secret {
                "<redacted>"
            } else {
                value.text.as_str()
            };
            map.entry(key, &shown);
        }
        map.finish()
    }
}

impl Config {
    /// Loads from the process environment and `LATCHKEY_CONFIG` / `./latchkey.toml`.
    pub fn load() -> Config {
        Config::from_env_map(std::env::vars().collect())
    }

    /// Loads from an explicit environment (tests pass their own instead of mutating the process).
    pub fn from_env_map(env: HashMap<String, String>) -> Config {
        Config::layered(Vec::new(), env)
    }

    /// Loads defaults, then `underlay`, then the file, then `env`: the environment wins over
    /// everything, under its `LATCHKEY_` name or any alias.
    pub fn layered(underlay: Vec<Underlay>, env: HashMap<String, String>) -> Config {
        let path = env
            .get("LATCHKEY_CONFIG")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("latchkey.toml")).filter(|p| p.exists()));
        let mut config = Config {
            values: BTreeMap::new(),
            notices: Vec::new(),
            problems: Problems::default(),
            conflicts: Vec::new(),
        };
        for spec in SETTINGS {
            if let Some(default) = spec.default {
                config.set(spec.key, default.to_owned(), Source::Default);
            }
        }
        config.layer_underlay(underlay);
        if let Some(path) = path {
            config.layer_file(&path);
        }
        config.layer_env(&env);
        if config.is_production() {
            for conflict in &config.conflicts {
                config
                    .problems
                    .push(&conflict.setting, conflict.what(), conflict.fix());
            }
        }
        config
    }

    fn layer_underlay(&mut self, underlay: Vec<Underlay>) {
        for item in underlay {
            let named = |s: &&SettingSpec| {
                s.env() == item.variable || s.aliases.contains(&item.variable.as_str())
            };
            match SETTINGS.iter().find(named) {
                Some(spec) => self.values.insert(
                    spec.key,
                    Value {
                        text: item.value,
                        source: Source::Underlay(item.origin),
                    },
                ),
                None => {
                    self.notices.push(format!(
                        "{} in {} is not a Latchkey setting and is ignored",
                        item.variable, item.origin
                    ));
                    continue;
                }
            };
        }
    }

    fn set(&mut self, key: &'static str, text: String, source: Source) {
        self.values.insert(
            key,
            Value {
                text: Zeroizing::new(text),
                source,
            },
        );
    }

    fn layer_file(&mut self, path: &Path) {
        let loaded = config::Config::builder()
            .add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            )
            .build();
        let table = match loaded.and_then(|c| c.try_deserialize::<HashMap<String, config::Value>>())
        {
            Ok(table) => table,
            Err(error) => {
                self.problems.push(
                    path.display().to_string(),
                    format!("cannot be read as TOML: {error}"),
                    "fix the file's syntax, or point LATCHKEY_CONFIG at the right file",
                );
                return;
            }
        };
        for (key, value) in table {
            let (base, from_file) = split_file_suffix(&key);
            let Some(spec) = spec(base).filter(|s| !from_file || s.secret) else {
                self.problems.push(
                    format!("{} key `{key}`", path.display()),
                    "is not a Latchkey setting",
                    "remove it or correct its spelling; `latchkey config` lists every setting",
                );
                continue;
            };
            let text = value.into_string().unwrap_or_default();
            if from_file {
                let variable = format!("{} key `{key}`", path.display());
                let secret_path = PathBuf::from(&text);
                if let Some(secret) = self.read_secret_file(&variable, &secret_path) {
                    self.values.insert(
                        spec.key,
                        Value {
                            text: secret,
                            source: Source::EnvFile(variable, secret_path),
                        },
                    );
                }
            } else {
                self.set(spec.key, text, Source::File(path.to_path_buf()));
            }
        }
    }

    fn layer_env(&mut self, env: &HashMap<String, String>) {
        for spec in SETTINGS {
            if let Some((text, source)) = self.read_named(spec, &spec.env(), env) {
                self.values.insert(spec.key, Value { text, source });
            }
            self.layer_aliases(spec, env);
        }
        for name in env.keys().filter(|n| n.starts_with("LATCHKEY_")) {
            let base = name.trim_start_matches("LATCHKEY_").to_ascii_lowercase();
            let (base, _) = split_file_suffix(&base);
            if spec(base).is_none() && !KNOWN_EXTRA_ENV.contains(&name.as_str()) {
                self.notices.push(format!("{name} is not a Latchkey setting and is ignored; `latchkey config` lists every setting"));
            }
        }
    }

    /// The value `env` gives under `name` or (for a secret) `name_FILE`; both set is a problem.
    fn read_named(
        &mut self,
        spec: &'static SettingSpec,
        name: &str,
        env: &HashMap<String, String>,
    ) -> Option<(Zeroizing<String>, Source)> {
        let file_name = format!("{name}_FILE");
        let alias = name != spec.env();
        match (env.get(name), env.get(&file_name).filter(|_| spec.secret)) {
            (Some(_), Some(_)) => {
                self.problems.push(
                    name,
                    format!("is set both directly and through {file_name}"),
                    format!("unset one of {name} and {file_name}"),
                );
                None
            }
            (Some(value), None) if alias => Some((
                Zeroizing::new(value.clone()),
                Source::Alias(name.to_owned()),
            )),
            (Some(value), None) => {
                Some((Zeroizing::new(value.clone()), Source::Env(name.to_owned())))
            }
            (None, Some(path)) => self
                .read_secret_file(&file_name, Path::new(path))
                .map(|text| (text, Source::EnvFile(file_name, PathBuf::from(path)))),
            (None, None) => None,
        }
    }

    /// Names apps arrive with: used when nothing more explicit (the `LATCHKEY_` variable, its
    /// `_FILE`, `latchkey.toml`) set the setting; any of them holding another value than the
    /// one used is a [`Conflict`], the same value a notice.
    fn layer_aliases(&mut self, spec: &'static SettingSpec, env: &HashMap<String, String>) {
        let mut present: Vec<(Zeroizing<String>, Source)> = spec
            .aliases
            .iter()
            .filter_map(|alias| self.read_named(spec, alias, env))
            .collect();
        if present.is_empty() {
            return;
        }
        let explicit = self.values.get(spec.key).filter(|v| {
            matches!(
                v.source,
                Source::Env(_) | Source::EnvFile(..) | Source::File(_)
            )
        });
        let (used_name, used_value) = match explicit {
            Some(value) => (source_name(&value.source, spec), value.text.clone()),
            None => {
                let (text, source) = present.remove(0);
                let name = source_name(&source, spec);
                self.notices
                    .push(format!("{name} is read as {} ({})", spec.env(), spec.help));
                self.values.insert(
                    spec.key,
                    Value {
                        text: text.clone(),
                        source,
                    },
                );
                (name, text)
            }
        };
        let mut differing = Vec::new();
        for (text, source) in &present {
            let name = source_name(source, spec);
            if aliases::same_value(spec.key, &used_value, text) {
                self.notices.push(format!(
                    "{name} and {used_name} both set {} to the same value (fingerprint {})",
                    spec.env(),
                    crate::secret::fingerprint(used_value.as_bytes())
                ));
            } else {
                differing.push(Named::new(name, text));
            }
        }
        if !differing.is_empty() {
            let mut names = vec![Named::new(used_name, &used_value)];
            names.append(&mut differing);
            self.conflicts.push(Conflict {
                setting: spec.env(),
                names,
            });
        }
    }

    /// Reads a secret from the file a `…_FILE` variable (or file key) names.
    fn read_secret_file(&mut self, variable: &str, path: &Path) -> Option<Zeroizing<String>> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                Some(Zeroizing::new(
                    text.trim_end_matches(['\n', '\r']).to_owned(),
                ))
            }
            Err(error) => {
                self.problems.push(
                    variable,
                    format!(
                        "names {} which cannot be read: {}",
                        path.display(),
                        error.kind()
                    ),
                    "point it at the mounted secret file, or set the value directly",
                );
                None
            }
        }
    }

    /// Settings given under several names with different values. Production refuses them (as
    /// load problems); development starts with a warning and doctor shows a ✘.
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }

    /// Problems found while loading (bad file, unreadable secret files); validation adds more.
    pub fn load_problems(&self) -> Problems {
        self.problems.clone()
    }

    /// The raw text of a non-secret setting.
    pub fn get(&self, key: &str) -> Option<&str> {
        debug_assert!(spec(key).is_some(), "unknown setting {key}");
        self.values
            .get(key)
            .map(|v| v.text.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Where a setting's value came from.
    pub fn source(&self, key: &str) -> Option<&Source> {
        self.values.get(key).map(|v| &v.source)
    }

    /// Whether `LATCHKEY_ENV=production`.
    pub fn is_production(&self) -> bool {
        self.get("env") == Some("production")
    }

    /// A secret setting, wrapped so it cannot be printed.
    pub fn secret(&self, key: &str) -> Option<SecretString> {
        self.get(key).map(|v| SecretString::from(v.to_owned()))
    }

    /// A required secret: records a problem when missing or (in production) weak.
    pub fn required_secret(
        &self,
        key: &str,
        problems: &mut Problems,
        fix: &str,
    ) -> Option<SecretString> {
        let spec = spec(key).expect("known setting");
        let Some(value) = self.get(key) else {
            problems.push(
                spec.env(),
                "is not set",
                format!("{fix} (or set {}_FILE to a file holding it)", spec.env()),
            );
            return None;
        };
        if let Some(weakness) = weakness(value).filter(|_| self.is_production()) {
            problems.push(
                spec.env(),
                format!("is {weakness}, which production refuses"),
                fix,
            );
        }
        Some(SecretString::from(value.to_owned()))
    }

    /// Parses a setting with `FromStr`, recording a problem naming the expected form.
    pub fn parsed<T: std::str::FromStr>(
        &self,
        key: &str,
        expected: &str,
        problems: &mut Problems,
    ) -> Option<T> {
        let spec = spec(key).expect("known setting");
        let text = self.get(key)?;
        match text.trim().parse() {
            Ok(value) => Some(value),
            Err(_) => {
                let shown = if spec.secret {
                    "<redacted>".to_owned()
                } else {
                    format!("`{text}`")
                };
                problems.push(
                    spec.env(),
                    format!("{shown} is not {expected}"),
                    format!("set it to {expected}"),
                );
                None
            }
        }
    }

    /// A boolean setting (`true/false/1/0/yes/no/on/off`).
    pub fn flag(&self, key: &str, problems: &mut Problems) -> bool {
        let Some(text) = self.get(key) else {
            return false;
        };
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => {
                let spec = spec(key).expect("known setting");
                problems.push(
                    spec.env(),
                    format!("`{text}` is not a boolean"),
                    "set it to true or false",
                );
                false
            }
        }
    }
}

/// Variables outside the table that Latchkey reads on purpose.
const KNOWN_EXTRA_ENV: &[&str] = &[
    "LATCHKEY_CONFIG",
    "LATCHKEY_TEST_POSTGRES_URL",
    "LATCHKEY_DEV_DIR",
    // read by `latchkey doctor` only (where to reach the gateway)
    "LATCHKEY_GATEWAY_URL",
];

/// The name a value arrived under, as conflicts and notices show it.
fn source_name(source: &Source, spec: &SettingSpec) -> String {
    match source {
        Source::Env(name) | Source::EnvFile(name, _) | Source::Alias(name) => name.clone(),
        Source::File(path) => format!("{} key `{}`", path.display(), spec.key),
        Source::Default => format!("{} (default)", spec.env()),
        Source::Underlay(origin) => format!("{} ({origin})", spec.env()),
    }
}

fn split_file_suffix(key: &str) -> (&str, bool) {
    match key.strip_suffix("_file") {
        Some(base) => (base, true),
        None => (key, false),
    }
}

/// Prefix of the sync secret `latchkey dev` generates, so production can recognise and refuse it.
pub const DEV_SECRET_PREFIX: &str = "latchkey-dev-";

/// Why a secret is unfit for production, if it is.
pub fn weakness(value: &str) -> Option<&'static str> {
    const PLACEHOLDERS: &[&str] = &[
        "changeme",
        "change-me",
        "secret",
        "password",
        "example",
        "placeholder",
        "your-secret",
        "xxx",
        "dev-",
    ];
    let lower = value.to_ascii_lowercase();
    if lower.starts_with(DEV_SECRET_PREFIX) {
        return Some("generated by `latchkey dev`");
    }
    if value.len() < 32 {
        return Some("shorter than 32 characters");
    }
    if PLACEHOLDERS.iter().any(|p| lower.starts_with(p)) {
        return Some("a placeholder value");
    }
    let distinct = value
        .chars()
        .collect::<std::collections::HashSet<_>>()
        .len();
    if distinct < 8 {
        return Some("too repetitive to be random");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_then_file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("latchkey.toml");
        std::fs::write(&file, "issuer = \"from-file\"\naudience = \"file-aud\"\n").unwrap();
        let config = Config::from_env_map(env(&[
            ("LATCHKEY_CONFIG", file.to_str().unwrap()),
            ("LATCHKEY_AUDIENCE", "env-aud"),
        ]));
        assert!(config.load_problems().0.is_empty());
        assert_eq!(config.get("issuer"), Some("from-file"));
        assert_eq!(config.get("audience"), Some("env-aud"));
        assert_eq!(config.get("token_ttl_secs"), Some("900"));
        assert_eq!(
            config.source("audience"),
            Some(&Source::Env("LATCHKEY_AUDIENCE".into()))
        );
    }

    #[test]
    fn secrets_come_from_files_and_never_show_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sync");
        std::fs::write(&file, "file-held-secret-value\n").unwrap();
        let config = Config::from_env_map(env(&[(
            "LATCHKEY_SYNC_SECRET_FILE",
            file.to_str().unwrap(),
        )]));
        assert_eq!(config.get("sync_secret"), Some("file-held-secret-value"));
        assert!(!format!("{config:?}").contains("file-held-secret-value"));
    }

    #[test]
    fn both_value_and_file_is_a_problem_and_unreadable_file_too() {
        let config = Config::from_env_map(env(&[
            ("LATCHKEY_SYNC_SECRET", "a"),
            ("LATCHKEY_SYNC_SECRET_FILE", "/nonexistent"),
            ("LATCHKEY_SEAL_KEY_FILE", "/nonexistent/seal"),
        ]));
        let problems = config.load_problems().0;
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.variable == "LATCHKEY_SYNC_SECRET" && p.what.contains("both"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.variable == "LATCHKEY_SEAL_KEY_FILE")
        );
    }

    #[test]
    fn app_names_are_recognised_with_a_notice() {
        let config = Config::from_env_map(env(&[
            ("AUTH_SYNC_SECRET", "from-app"),
            ("NEXTAUTH_SECRET", "nx"),
        ]));
        assert_eq!(config.get("sync_secret"), Some("from-app"));
        assert_eq!(config.get("legacy_hs256_secret"), Some("nx"));
        assert!(
            config
                .notices
                .iter()
                .any(|n| n.contains("AUTH_SYNC_SECRET is read as LATCHKEY_SYNC_SECRET"))
        );
        assert!(
            config
                .notices
                .iter()
                .any(|n| n.contains("NEXTAUTH_SECRET is read as LATCHKEY_LEGACY_HS256_SECRET"))
        );
    }

    #[test]
    fn two_names_with_different_values_warn_in_development_and_refuse_in_production() {
        let pairs = [
            ("AUTH_SECRET", "v5-app-secret"),
            ("NEXTAUTH_SECRET", "v4-app-secret"),
        ];
        let config = Config::from_env_map(env(&pairs));
        assert!(config.load_problems().0.is_empty(), "development starts");
        let [conflict] = config.conflicts() else {
            panic!("one conflict: {:?}", config.conflicts());
        };
        assert_eq!(conflict.setting, "LATCHKEY_LEGACY_HS256_SECRET");
        let names: Vec<&str> = conflict.names.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            ["NEXTAUTH_SECRET", "AUTH_SECRET"],
            "the used one first"
        );
        let what = conflict.what();
        for value in ["v5-app-secret", "v4-app-secret"] {
            let fingerprint = crate::secret::fingerprint(value.as_bytes());
            assert!(what.contains(&fingerprint), "{what}");
            assert!(!what.contains(value), "never the value: {what}");
        }
        assert!(
            what.contains("reads AUTH_SECRET first")
                && what.contains("reads NEXTAUTH_SECRET first")
        );

        let mut production = pairs.to_vec();
        production.push(("LATCHKEY_ENV", "production"));
        let config = Config::from_env_map(env(&production));
        let problems = config.load_problems().to_string();
        assert!(
            problems.contains("LATCHKEY_LEGACY_HS256_SECRET: NEXTAUTH_SECRET (fingerprint"),
            "{problems}"
        );
        assert!(!problems.contains("v5-app-secret"), "{problems}");
    }

    #[test]
    fn the_latchkey_name_and_an_alias_differing_is_a_conflict_and_the_same_value_a_notice() {
        let config = Config::from_env_map(env(&[
            ("LATCHKEY_SYNC_SECRET", "one"),
            ("AUTH_SYNC_SECRET", "two"),
            ("ENCRYPTION_KEY", "key-material"),
            ("LATCHKEY_ENCRYPTION_KEYS", "k1:key-material"),
        ]));
        assert_eq!(config.get("sync_secret"), Some("one"));
        let settings: Vec<&str> = config
            .conflicts()
            .iter()
            .map(|c| c.setting.as_str())
            .collect();
        assert_eq!(settings, ["LATCHKEY_SYNC_SECRET"]);
        assert_eq!(config.conflicts()[0].names[0].name, "LATCHKEY_SYNC_SECRET");
        assert!(
            config.notices.iter().any(|n| n.contains(
                "ENCRYPTION_KEY and LATCHKEY_ENCRYPTION_KEYS both set LATCHKEY_ENCRYPTION_KEYS to the same value"
            )),
            "{:?}",
            config.notices
        );
    }

    #[test]
    fn the_environment_under_any_name_wins_over_the_underlay() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sync");
        std::fs::write(&file, "from-a-file\n").unwrap();
        let underlay = |variable: &str| Underlay {
            variable: variable.to_owned(),
            value: Zeroizing::new(format!("generated-{variable}")),
            origin: ".latchkey/dev-secrets.env".to_owned(),
        };
        let config = Config::layered(
            vec![
                underlay("LATCHKEY_SYNC_SECRET"),
                underlay("LATCHKEY_LEGACY_HS256_SECRET"),
                underlay("LATCHKEY_SEAL_KEY"),
                underlay("LATCHKEY_DATABASE_URL"),
            ],
            env(&[
                ("AUTH_SYNC_SECRET", "the-apps-secret"),
                ("AUTH_SECRET_FILE", file.to_str().unwrap()),
                ("DATABASE_URL", "postgres://u@h/db"),
            ]),
        );
        assert!(
            config.load_problems().0.is_empty(),
            "{}",
            config.load_problems()
        );
        assert!(config.conflicts().is_empty(), "{:?}", config.conflicts());
        assert_eq!(config.get("sync_secret"), Some("the-apps-secret"));
        assert_eq!(config.get("legacy_hs256_secret"), Some("from-a-file"));
        assert_eq!(config.get("database_url"), Some("postgres://u@h/db"));
        assert_eq!(config.get("seal_key"), Some("generated-LATCHKEY_SEAL_KEY"));
        assert_eq!(
            config.source("seal_key").unwrap().to_string(),
            ".latchkey/dev-secrets.env"
        );
        assert_eq!(
            config.source("sync_secret"),
            Some(&Source::Alias("AUTH_SYNC_SECRET".into()))
        );
    }

    #[test]
    fn a_file_key_and_an_alias_differing_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("latchkey.toml");
        std::fs::write(&file, "database_url = \"postgres://a@h/one\"\n").unwrap();
        let config = Config::from_env_map(env(&[
            ("LATCHKEY_CONFIG", file.to_str().unwrap()),
            ("DATABASE_URL", "postgres://a@h/two"),
        ]));
        assert_eq!(config.get("database_url"), Some("postgres://a@h/one"));
        let names: Vec<&str> = config.conflicts()[0]
            .names
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                format!("{} key `database_url`", file.display()).as_str(),
                "DATABASE_URL"
            ]
        );
    }

    #[test]
    fn unknown_file_keys_are_problems_and_unknown_env_a_notice() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("l.toml");
        std::fs::write(&file, "isuer = \"typo\"\n").unwrap();
        let config = Config::from_env_map(env(&[
            ("LATCHKEY_CONFIG", file.to_str().unwrap()),
            ("LATCHKEY_SYNC_SECRT", "x"),
        ]));
        assert!(
            config.load_problems().0[0]
                .what
                .contains("not a Latchkey setting")
        );
        assert!(
            config
                .notices
                .iter()
                .any(|n| n.contains("LATCHKEY_SYNC_SECRT"))
        );
    }

    #[test]
    fn required_secret_and_parse_problems_name_variable_and_fix() {
        let config = Config::from_env_map(env(&[
            ("LATCHKEY_TOKEN_TTL_SECS", "soon"),
            ("LATCHKEY_ENV", "production"),
            ("LATCHKEY_SEAL_KEY", "changeme"),
        ]));
        let mut problems = Problems::default();
        assert!(
            config
                .required_secret("sync_secret", &mut problems, "generate one")
                .is_none()
        );
        config.required_secret("seal_key", &mut problems, "generate one");
        assert!(
            config
                .parsed::<u64>("token_ttl_secs", "a number of seconds", &mut problems)
                .is_none()
        );
        let text = problems.to_string();
        assert!(text.contains("LATCHKEY_SYNC_SECRET: is not set"), "{text}");
        assert!(
            text.contains("LATCHKEY_SEAL_KEY: is shorter than 32 characters"),
            "{text}"
        );
        assert!(
            text.contains("LATCHKEY_TOKEN_TTL_SECS: `soon` is not a number of seconds"),
            "{text}"
        );
        assert!(!text.contains("changeme"));
    }

    #[test]
    fn every_spec_has_help_and_required_implies_used() {
        for spec in SETTINGS {
            assert!(!spec.help.is_empty(), "{}", spec.key);
            for service in spec.required_by {
                assert!(spec.services.contains(service), "{}", spec.key);
            }
        }
    }
}

/// The README's configuration table, generated from [`SETTINGS`] (a test keeps them in step).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| variable | file key | default | secret | services (required by) | what it is |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for spec in SETTINGS {
        let services: Vec<String> = spec
            .services
            .iter()
            .map(|s| {
                if spec.required_by.contains(s) {
                    format!("**{}**", s.as_str())
                } else {
                    s.as_str().to_owned()
                }
            })
            .collect();
        let aliases = if spec.aliases.is_empty() {
            String::new()
        } else {
            format!(" Also read from `{}`.", spec.aliases.join("`, `"))
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} | {}{} |\n",
            spec.env(),
            spec.key,
            spec.default
                .map(|d| format!("`{d}`"))
                .unwrap_or_else(|| "—".into()),
            if spec.secret {
                "yes (`_FILE` too)"
            } else {
                "no"
            },
            services.join(", "),
            spec.help.replace('|', "\\|"),
            aliases
        ));
    }
    out
}

#[cfg(test)]
mod readme_tests {
    #[test]
    fn readme_configuration_table_matches_the_settings_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md");
        let start = readme
            .find("<!-- config-table:start -->\n")
            .expect("start marker")
            + "<!-- config-table:start -->\n".len();
        let end = readme
            .find("<!-- config-table:end -->")
            .expect("end marker");
        assert_eq!(
            &readme[start..end],
            super::markdown_table(),
            "README's configuration table is stale: run `cargo run -- config --markdown` and paste it between the markers"
        );
    }
}
