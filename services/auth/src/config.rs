//! Auth's typed configuration, validated from the layered [`Config`] with one problem per mistake.

use crate::authjs::{AuthJsRules, AuthJsVersions, V5_COOKIE_NAMES};
use crate::key_policy::{KeyPolicy, SigningAlg, parse_period};
use crate::tokens::{LegacyRules, SecretHint, TokenRules};
use latchkey_common::config::validate::{database_url, listen_address};
use latchkey_common::config::{
    AUDIENCE, AUTH_LISTEN, AUTHJS_COOKIE_NAME, AUTHJS_TOKENS, AUTO_MIGRATE, Config, ISSUER,
    JIT_PROVISIONING, Key, LEEWAY_SECS, LEGACY_HS256_AUDIENCE, LEGACY_HS256_ENABLED,
    LEGACY_HS256_SECRET, LEGACY_ISSUER, LINK_VERIFIED_EMAILS, Problems, SEAL_KEY, SERVICE_CLIENTS,
    SETTINGS_URL, SIGNING_KEY_REFRESH_SECS, SYNC_SECRET, Setting, Source, TOKEN_TTL_SECS,
};
use latchkey_common::config::{JWKS_CACHE_SECS, SIGNING_ALG, SIGNING_ROTATE_EVERY};
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
    /// Where the seal key came from (`LATCHKEY_SEAL_KEY`, its `_FILE`, …), named when a stored
    /// signing key will not open.
    pub seal_key_variable: String,
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
    /// Lifetimes and grace window of refresh tokens.
    pub refresh: crate::refresh::RefreshRules,
    /// New keys' algorithm, automatic rotation and the standby lead.
    pub key_policy: KeyPolicy,
}

const GENERATE: &str = "generate one with `openssl rand -base64 32`";

impl AuthConfig {
    /// Validates auth's settings, reporting every problem at once.
    pub fn from_config(config: &Config) -> Result<AuthConfig, Problems> {
        let mut problems = config.load_problems();
        let database_url = database_url(config, &mut problems);
        let sync_secret = config.required_secret(
            SYNC_SECRET,
            &mut problems,
            &format!(
                "{GENERATE} and set the same value as {} here and in your web app's server",
                SYNC_SECRET.env()
            ),
        );
        let seal_key = config
            .required_secret(
                SEAL_KEY,
                &mut problems,
                &format!("{GENERATE}; keep it: it opens the stored signing keys"),
            )
            .and_then(|text| match SealKey::parse(text.expose_secret()) {
                Ok(key) => Some(key),
                Err(error) => {
                    problems.push(SEAL_KEY.env(), error.to_string(), GENERATE);
                    None
                }
            });
        let (legacy, authjs) = web_app_rules(config, &mut problems);
        let clients = config
            .secret(SERVICE_CLIENTS)
            .map(|text| parse_clients(text.expose_secret(), &mut problems))
            .unwrap_or_default();
        let rules = TokenRules {
            issuer: config.raw_or_default(ISSUER).to_owned(),
            audience: config.raw_or_default(AUDIENCE).to_owned(),
            ttl: positive(config, TOKEN_TTL_SECS, &mut problems).unwrap_or_default(),
            leeway: config
                .parsed(LEEWAY_SECS, "a number of seconds", &mut problems)
                .unwrap_or_default(),
            legacy,
            authjs,
        };
        let limits = latchkey_common::grpc_limits::GrpcLimits::from_config(config, &mut problems);
        let refresh = crate::refresh::RefreshRules::from_config(config, &mut problems);
        let key_policy = key_policy(config, &mut problems);
        let built = (|| {
            Some(AuthConfig {
                database_url,
                auto_migrate: config.flag(AUTO_MIGRATE, &mut Problems::default()),
                listen: listen_address(config, AUTH_LISTEN, &mut problems)?,
                sync_secret: sync_secret?,
                seal_key: seal_key?,
                seal_key_variable: origin(config, SEAL_KEY),
                rules,
                key_refresh: Duration::from_secs(positive(
                    config,
                    SIGNING_KEY_REFRESH_SECS,
                    &mut problems,
                )? as u64),
                clients,
                jit_provisioning: config.flag(JIT_PROVISIONING, &mut problems),
                link_verified_emails: config.flag(LINK_VERIFIED_EMAILS, &mut problems),
                settings_url: config.get(SETTINGS_URL).map(str::to_owned),
                limits,
                refresh: refresh?,
                key_policy: key_policy?,
            })
        })();
        config.flag(AUTO_MIGRATE, &mut problems);
        match built {
            Some(auth) if problems.0.is_empty() => Ok(auth),
            _ => Err(problems),
        }
    }
}

fn positive(config: &Config, setting: Setting<i64>, problems: &mut Problems) -> Option<i64> {
    let value = config.parsed(setting, "a positive number of seconds", problems)?;
    if value <= 0 {
        problems.push(
            setting.env(),
            "must be positive",
            "set a positive number of seconds",
        );
        return None;
    }
    Some(value)
}

/// The signing-key policy: `LATCHKEY_SIGNING_ALG`, `LATCHKEY_SIGNING_ROTATE_EVERY`,
/// `LATCHKEY_JWKS_CACHE_SECS`.
fn key_policy(config: &Config, problems: &mut Problems) -> Option<KeyPolicy> {
    let algorithm = SigningAlg::parse(config.raw_or_default(SIGNING_ALG).trim());
    if algorithm.is_none() {
        problems.push(
            SIGNING_ALG.env(),
            format!(
                "`{}` is not a signing algorithm",
                config.raw_or_default(SIGNING_ALG)
            ),
            "set EdDSA (Ed25519, the default) or ES256 (P-256)",
        );
    }
    let rotate_every = match config.get(SIGNING_ROTATE_EVERY) {
        None => Some(None),
        Some(text) => match parse_period(text) {
            Some(seconds) => Some(Some(seconds)),
            None => {
                problems.push(
                    SIGNING_ROTATE_EVERY.env(),
                    format!("`{text}` is not a period"),
                    "set a positive number with a unit: `30d`, `12h`, `1m` (or leave it unset to rotate only with `latchkey keys rotate-signing`)",
                );
                None
            }
        },
    };
    let standby_lead = positive(config, JWKS_CACHE_SECS, problems);
    Some(KeyPolicy {
        algorithm: algorithm?,
        rotate_every: rotate_every?,
        standby_lead: standby_lead?,
    })
}

/// Rules for the web app's own tokens: legacy HS256 and Auth.js session tokens, both keyed by
/// the web app's secret (`LATCHKEY_LEGACY_HS256_SECRET`, or `NEXTAUTH_SECRET` / `AUTH_SECRET`).
fn web_app_rules(
    config: &Config,
    problems: &mut Problems,
) -> (Option<LegacyRules>, Option<AuthJsRules>) {
    let legacy_on = config.flag(LEGACY_HS256_ENABLED, problems);
    let authjs = match AuthJsVersions::parse(config.raw_or_default(AUTHJS_TOKENS)) {
        Ok(versions) => versions,
        Err(what) => {
            problems.push(
                AUTHJS_TOKENS.env(),
                what,
                "set v4 for next-auth 4, v5 for Auth.js 5 (@auth/core), both, or off",
            );
            None
        }
    };
    if !legacy_on && authjs.is_none() {
        return (None, None);
    }
    let Some(secret) = config.required_secret(
        LEGACY_HS256_SECRET,
        problems,
        "set it to your web app's AUTH_SECRET / NEXTAUTH_SECRET (those names are read too)",
    ) else {
        return (None, None);
    };
    let variable = origin(config, LEGACY_HS256_SECRET);
    let legacy = legacy_on
        .then(|| legacy_rules(config, &secret, &variable, problems))
        .flatten();
    let authjs = authjs.map(|versions| {
        let mut cookies: Vec<String> = config
            .get(AUTHJS_COOKIE_NAME)
            .map(|name| name.trim().to_owned())
            .into_iter()
            .collect();
        cookies.extend(V5_COOKIE_NAMES.iter().map(|name| (*name).to_owned()));
        cookies.dedup();
        let hint = SecretHint::new(&secret, variable.clone());
        AuthJsRules::new(&secret, versions, &cookies, hint)
    });
    (legacy, authjs)
}

fn legacy_rules(
    config: &Config,
    secret: &SecretString,
    variable: &str,
    problems: &mut Problems,
) -> Option<LegacyRules> {
    let Some(audience) = config.get(LEGACY_HS256_AUDIENCE) else {
        problems.push(
            LEGACY_HS256_AUDIENCE.env(),
            "is empty, so any JWT your web app signs with this secret (an invite or unsubscribe link) would pass for a session",
            "leave it unset (default `latchkey`) or set the `aud` your web app puts in the tokens it signs for Latchkey",
        );
        return None;
    };
    Some(LegacyRules {
        secret: secret.clone(),
        issuer: config.get(LEGACY_ISSUER).map(str::to_owned),
        audience: audience.trim().to_owned(),
        secret_variable: variable.to_owned(),
    })
}

/// The variable (or file key) a setting's value came from, for refusals that name it.
pub fn origin(config: &Config, setting: impl Key) -> String {
    let spec = setting.spec();
    let key = spec.key;
    match config.source(setting) {
        Some(Source::Env(name) | Source::Alias(name) | Source::EnvFile(name, _)) => name.clone(),
        Some(Source::File(path)) => format!(
            "`{key}` in {}",
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        Some(Source::Underlay(from)) => format!("{} ({from})", spec.env()),
        _ => spec.env(),
    }
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
                SERVICE_CLIENTS.env(),
                format!("entry {} is not `id:secret:scopes`", index + 1),
                "write each client as id:secret:scope1 scope2, separated by `;`",
            );
            continue;
        };
        if id.trim().is_empty() || secret.is_empty() {
            problems.push(
                SERVICE_CLIENTS.env(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut env: HashMap<String, String> = [
            (
                "LATCHKEY_SYNC_SECRET",
                "sync-secret-0123456789abcdef0123456789",
            ),
            (
                "LATCHKEY_SEAL_KEY",
                "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        env.extend(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Config::from_env_map(env)
    }

    #[test]
    fn the_web_app_secret_is_named_by_the_variable_it_came_from() {
        let auth = AuthConfig::from_config(&config(&[
            ("LATCHKEY_LEGACY_HS256_ENABLED", "true"),
            ("LATCHKEY_AUTHJS_TOKENS", "both"),
            ("NEXTAUTH_SECRET", "web-app-secret-0123456789abcdef"),
        ]))
        .unwrap();
        let legacy = auth.rules.legacy.unwrap();
        assert_eq!(legacy.secret_variable, "NEXTAUTH_SECRET");
        assert_eq!(legacy.audience, "latchkey");
        let authjs = auth.rules.authjs.unwrap();
        assert_eq!(authjs.secret().variable, "NEXTAUTH_SECRET");
        assert_eq!(authjs.versions(), AuthJsVersions::Both);
        assert_eq!(auth.seal_key_variable, "LATCHKEY_SEAL_KEY");
    }

    #[test]
    fn legacy_tokens_cannot_be_unbound_and_authjs_needs_the_secret() {
        let problems = AuthConfig::from_config(&config(&[
            ("LATCHKEY_LEGACY_HS256_ENABLED", "true"),
            (
                "LATCHKEY_LEGACY_HS256_SECRET",
                "web-app-secret-0123456789abcdef",
            ),
            ("LATCHKEY_LEGACY_HS256_AUDIENCE", ""),
        ]))
        .err()
        .expect("refused")
        .to_string();
        assert!(
            problems.contains("LATCHKEY_LEGACY_HS256_AUDIENCE: is empty"),
            "{problems}"
        );
        let problems = AuthConfig::from_config(&config(&[("LATCHKEY_AUTHJS_TOKENS", "v4")]))
            .err()
            .expect("refused")
            .to_string();
        assert!(
            problems.contains("LATCHKEY_LEGACY_HS256_SECRET: is not set"),
            "{problems}"
        );
        let off =
            AuthConfig::from_config(&config(&[("AUTH_SECRET", "unused-0123456789")])).unwrap();
        assert!(off.rules.legacy.is_none() && off.rules.authjs.is_none());
    }
}
