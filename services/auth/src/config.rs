//! Auth's typed configuration, validated from the layered [`Config`] with one problem per mistake.

use crate::tokens::{LegacyRules, TokenRules};
use latchkey_common::config::{Config, Problems};
use latchkey_common::seal::SealKey;
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::time::Duration;

/// An internal caller allowed to get service tokens.
#[derive(Clone)]
pub struct ServiceClient {
    pub id: String,
    pub secret: SecretString,
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("id", &self.id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Everything `latchkey auth` needs, parsed and checked.
#[derive(Clone)]
pub struct AuthConfig {
    pub database_url: SecretString,
    pub auto_migrate: bool,
    pub listen: SocketAddr,
    pub sync_secret: SecretString,
    pub seal_key: SealKey,
    pub rules: TokenRules,
    pub key_refresh: Duration,
    pub clients: Vec<ServiceClient>,
    pub jit_provisioning: bool,
    /// Whether a new identity with a verified email joins the one user already holding it.
    pub link_verified_emails: bool,
    /// Where to purge a deleted user's settings; None skips it (logged at start).
    pub settings_url: Option<String>,
    /// Load shedding and the per-peer credential-failure limit of the gRPC server.
    pub limits: latchkey_common::grpc_limits::GrpcLimits,
}

const GENERATE: &str = "generate one with `openssl rand -base64 32`";

impl AuthConfig {
    /// Validates auth's settings, reporting every problem at once.
    pub fn from_config(config: &Config) -> Result<AuthConfig, Problems> {
        let mut problems = config.load_problems();
        let database_url = config
            .secret("database_url")
            .unwrap_or_else(|| SecretString::from(String::new()));
        check_database_url(config, &database_url, &mut problems);
        let sync_secret = config.required_secret(
            "sync_secret",
            &mut problems,
            &format!("{GENERATE} and set the same value as LATCHKEY_SYNC_SECRET here and in your web app's server"),
        );
        let seal_key = config
            .required_secret(
                "seal_key",
                &mut problems,
                &format!("{GENERATE}; keep it: it opens the stored signing keys"),
            )
            .and_then(|text| match SealKey::parse(text.expose_secret()) {
                Ok(key) => Some(key),
                Err(error) => {
                    problems.push("LATCHKEY_SEAL_KEY", error.to_string(), GENERATE);
                    None
                }
            });
        let legacy = legacy_rules(config, &mut problems);
        let clients = config
            .secret("service_clients")
            .map(|text| parse_clients(text.expose_secret(), &mut problems))
            .unwrap_or_default();
        let rules = TokenRules {
            issuer: config.get("issuer").unwrap_or("latchkey").to_owned(),
            audience: config.get("audience").unwrap_or("latchkey").to_owned(),
            ttl: positive(config, "token_ttl_secs", &mut problems).unwrap_or(900),
            leeway: config
                .parsed("leeway_secs", "a number of seconds", &mut problems)
                .unwrap_or(30),
            legacy,
        };
        let limits = latchkey_common::grpc_limits::GrpcLimits::from_config(config, &mut problems);
        let built = (|| {
            Some(AuthConfig {
                database_url,
                auto_migrate: config.flag("auto_migrate", &mut Problems::default()),
                listen: config.parsed(
                    "auth_listen",
                    "a socket address like 0.0.0.0:50051",
                    &mut problems,
                )?,
                sync_secret: sync_secret?,
                seal_key: seal_key?,
                rules,
                key_refresh: Duration::from_secs(positive(
                    config,
                    "signing_key_refresh_secs",
                    &mut problems,
                )? as u64),
                clients,
                jit_provisioning: config.flag("jit_provisioning", &mut problems),
                link_verified_emails: config.flag("link_verified_emails", &mut problems),
                settings_url: config.get("settings_url").map(str::to_owned),
                limits,
            })
        })();
        config.flag("auto_migrate", &mut problems);
        match built {
            Some(auth) if problems.0.is_empty() => Ok(auth),
            _ => Err(problems),
        }
    }
}

fn positive(config: &Config, key: &str, problems: &mut Problems) -> Option<i64> {
    let value: i64 = config.parsed(key, "a positive number of seconds", problems)?;
    if value <= 0 {
        problems.push(
            latchkey_common::config::spec(key).expect("known").env(),
            "must be positive",
            "set a positive number of seconds",
        );
        return None;
    }
    Some(value)
}

fn check_database_url(config: &Config, url: &SecretString, problems: &mut Problems) {
    use latchkey_common::db::DbKind;
    match DbKind::of(url.expose_secret()) {
        None => problems.push(
            "LATCHKEY_DATABASE_URL",
            "is neither sqlite:// nor postgres://",
            "set sqlite://PATH?mode=rwc or postgres://USER@HOST/DB",
        ),
        Some(DbKind::Sqlite) if config.is_production() => problems.push(
            "LATCHKEY_DATABASE_URL",
            "points at SQLite, which production refuses (one file, one machine)",
            "set postgres://USER:PASS@HOST/DB, or LATCHKEY_ENV=development",
        ),
        Some(_) => {}
    }
}

fn legacy_rules(config: &Config, problems: &mut Problems) -> Option<LegacyRules> {
    if !config.flag("legacy_hs256_enabled", problems) {
        return None;
    }
    let secret = config.required_secret(
        "legacy_hs256_secret",
        problems,
        "set it to the secret your web app signs HS256 tokens with (NEXTAUTH_SECRET / AUTH_SECRET are read too)",
    )?;
    Some(LegacyRules {
        secret,
        issuer: config.get("legacy_issuer").map(str::to_owned),
    })
}

/// Parses `id:secret:scope1 scope2;id2:secret2:scope`.
pub fn parse_clients(text: &str, problems: &mut Problems) -> Vec<ServiceClient> {
    let mut clients = Vec::new();
    for (index, entry) in text
        .split(';')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .enumerate()
    {
        let mut parts = entry.splitn(3, ':');
        let (Some(id), Some(secret)) = (parts.next(), parts.next()) else {
            problems.push(
                "LATCHKEY_SERVICE_CLIENTS",
                format!("entry {} is not `id:secret:scopes`", index + 1),
                "write each client as id:secret:scope1 scope2, separated by `;`",
            );
            continue;
        };
        if id.trim().is_empty() || secret.is_empty() {
            problems.push(
                "LATCHKEY_SERVICE_CLIENTS",
                format!("entry {} has an empty id or secret", index + 1),
                "give every client an id and a secret",
            );
            continue;
        }
        let scopes = parts
            .next()
            .unwrap_or("")
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        clients.push(ServiceClient {
            id: id.trim().to_owned(),
            secret: SecretString::from(secret.to_owned()),
            scopes,
        });
    }
    clients
}
