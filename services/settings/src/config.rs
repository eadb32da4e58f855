//! Settings' typed configuration, validated from the layered [`Config`] with one problem per
//! mistake, and the master keys (`LATCHKEY_ENCRYPTION_KEYS`).

use crate::schema::Schema;
use latchkey_common::config::validate::{database_url, listen_address, upstream_urls};
use latchkey_common::config::{
    AUDIENCE, AUTH_URL, AUTO_MIGRATE, Config, ENCRYPTION_KEYS, ISSUER, LEEWAY_SECS, Problems,
    SETTINGS_LISTEN, SETTINGS_SCHEMA, SETTINGS_SCHEMA_FILE, Source,
};
use latchkey_common::seal::SealKey;
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;

/// The id given to a master key configured without one (`ENCRYPTION_KEY=<key>` or
/// `LATCHKEY_ENCRYPTION_KEYS=<key>`).
pub const DEFAULT_KEY_ID: &str = "k1";

/// How to make a master key, for the problems that need one.
fn generate() -> String {
    format!(
        "generate a key with `openssl rand -base64 32` and set {}=k1:<key>",
        ENCRYPTION_KEYS.env()
    )
}

/// One master key and the id stored beside every row it seals.
#[derive(Clone, Debug)]
pub struct MasterKey {
    pub id: String,
    pub key: SealKey,
}

/// The configured master keys: the first seals every new value, the others only open.
#[derive(Clone, Debug)]
pub struct MasterKeys {
    keys: Vec<MasterKey>,
}

impl MasterKeys {
    /// Keys in order; the first is active. Panics on an empty list (config never builds one).
    pub fn new(keys: Vec<MasterKey>) -> Self {
        assert!(!keys.is_empty(), "at least one master key");
        MasterKeys { keys }
    }

    /// The key new values are sealed with.
    pub fn active(&self) -> &MasterKey {
        &self.keys[0]
    }

    /// The key with this id, if configured.
    pub fn get(&self, id: &str) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Every configured key id, active first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// Parses `id:key,id2:key2` (the first is active). A single entry without an id gets
    /// [`DEFAULT_KEY_ID`]. Keys are 32 bytes as base64 or hex.
    pub fn parse(text: &str) -> Result<MasterKeys, Vec<String>> {
        let entries: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        let mut errors = Vec::new();
        let mut keys: Vec<MasterKey> = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let position = index + 1;
            let (id, key_text) = match entry.split_once(':') {
                Some((id, rest)) if id != "base64" => (id.trim(), rest.trim()),
                _ if entries.len() == 1 => (DEFAULT_KEY_ID, *entry),
                _ => {
                    errors.push(format!(
                        "entry {position} has no id; with several keys write each as id:key"
                    ));
                    continue;
                }
            };
            if !valid_key_id(id) {
                errors.push(format!(
                    "entry {position}: key id {id:?} must be 1-32 letters, digits, `-` or `_`"
                ));
                continue;
            }
            if keys.iter().any(|k| k.id == id) {
                errors.push(format!("key id {id} appears twice"));
                continue;
            }
            match SealKey::parse(key_text) {
                Ok(key) => keys.push(MasterKey {
                    id: id.to_owned(),
                    key,
                }),
                Err(error) => errors.push(format!("key {id}: {error}")),
            }
        }
        if keys.is_empty() && errors.is_empty() {
            errors.push("no key given".to_owned());
        }
        if errors.is_empty() {
            Ok(MasterKeys { keys })
        } else {
            Err(errors)
        }
    }
}

fn valid_key_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Everything `latchkey settings` needs, parsed and checked.
#[derive(Clone)]
pub struct SettingsConfig {
    pub database_url: SecretString,
    pub auto_migrate: bool,
    pub listen: SocketAddr,
    /// Where auth is reached for its JWKS (several: client-side balanced).
    pub auth_urls: Vec<String>,
    pub issuer: String,
    pub audience: String,
    pub leeway: i64,
    pub keys: MasterKeys,
    /// The file the keys were read from (`LATCHKEY_ENCRYPTION_KEYS_FILE`): re-read while the
    /// service runs, so a rotation needs no restart.
    pub keys_file: Option<std::path::PathBuf>,
    /// Load shedding of the gRPC server.
    pub limits: latchkey_common::grpc_limits::GrpcLimits,
    /// The declared settings (empty, allowing every name, when none is configured).
    pub schema: Schema,
    /// The file the schema was read from: re-read while the service runs.
    pub schema_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for SettingsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsConfig")
            .field("listen", &self.listen)
            .field("auth_urls", &self.auth_urls)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl SettingsConfig {
    /// Validates settings' configuration, reporting every problem at once.
    pub fn from_config(config: &Config) -> Result<SettingsConfig, Problems> {
        let mut problems = config.load_problems();
        let database_url = database_url(config, &mut problems);
        let keys = config
            .required_secret(ENCRYPTION_KEYS, &mut problems, &generate())
            .and_then(
                |text| match MasterKeys::parse(text.expose_secret()) {
                    Ok(keys) if config.is_production() => {
                        weak_keys(text.expose_secret(), &mut problems);
                        Some(keys)
                    }
                    Ok(keys) => Some(keys),
                    Err(errors) => {
                        for error in errors {
                            problems.push(
                                ENCRYPTION_KEYS.env(),
                                error,
                                "write `id:key,id2:key2` with 32-byte keys (`openssl rand -base64 32`); the first is active",
                            );
                        }
                        None
                    }
                },
            );
        let auth_urls = upstream_urls(
            config,
            AUTH_URL,
            AUTH_URL.spec().default.unwrap_or_default(),
            &mut problems,
        );
        let listen = listen_address(config, SETTINGS_LISTEN, &mut problems);
        let leeway = config
            .parsed(LEEWAY_SECS, "a number of seconds", &mut problems)
            .unwrap_or_default();
        let auto_migrate = config.flag(AUTO_MIGRATE, &mut problems);
        let limits =
            latchkey_common::grpc_limits::GrpcLimits::shedding_from_config(config, &mut problems);
        let (schema, schema_file) = schema_from_config(config, &mut problems);
        match (listen, keys) {
            (Some(listen), Some(keys)) if problems.0.is_empty() => Ok(SettingsConfig {
                database_url,
                auto_migrate,
                listen,
                auth_urls,
                issuer: config.raw_or_default(ISSUER).to_owned(),
                audience: config.raw_or_default(AUDIENCE).to_owned(),
                leeway,
                keys,
                keys_file: match config.source(ENCRYPTION_KEYS) {
                    Some(Source::EnvFile(_, path)) => Some(path.clone()),
                    _ => None,
                },
                limits,
                schema,
                schema_file,
            }),
            _ => Err(problems),
        }
    }
}

/// The declared settings from `LATCHKEY_SETTINGS_SCHEMA` or the file
/// `LATCHKEY_SETTINGS_SCHEMA_FILE` names (not both), one problem per mistake in it.
pub fn schema_from_config(
    config: &Config,
    problems: &mut Problems,
) -> (Schema, Option<std::path::PathBuf>) {
    let inline = config.raw(SETTINGS_SCHEMA);
    let file = config
        .raw(SETTINGS_SCHEMA_FILE)
        .map(std::path::PathBuf::from);
    let fix = "correct the schema (README: Declared settings); `latchkey doctor` checks it";
    let (variable, text) = match (inline, &file) {
        (None, None) => return (Schema::default(), None),
        (Some(_), Some(_)) => {
            problems.push(
                SETTINGS_SCHEMA.env(),
                format!("is set together with {}", SETTINGS_SCHEMA_FILE.env()),
                format!(
                    "unset one of {} and {}",
                    SETTINGS_SCHEMA.env(),
                    SETTINGS_SCHEMA_FILE.env()
                ),
            );
            return (Schema::default(), None);
        }
        (Some(text), None) => (SETTINGS_SCHEMA.env(), text.to_owned()),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => (SETTINGS_SCHEMA_FILE.env(), text),
            Err(error) => {
                problems.push(
                    SETTINGS_SCHEMA_FILE.env(),
                    format!(
                        "names {} which cannot be read: {}",
                        path.display(),
                        error.kind()
                    ),
                    "point it at the schema's JSON file",
                );
                return (Schema::default(), None);
            }
        },
    };
    match Schema::parse(&text) {
        Ok(schema) => (schema, file),
        Err(errors) => {
            for error in errors {
                problems.push(&variable, error, fix);
            }
            (Schema::default(), None)
        }
    }
}

/// In production, refuses placeholder or repetitive keys (e.g. base64 of 32 zero bytes), by id.
fn weak_keys(text: &str, problems: &mut Problems) {
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, key) = match entry.split_once(':') {
            Some((id, key)) if id != "base64" => (id.trim(), key.trim()),
            _ => (DEFAULT_KEY_ID, entry),
        };
        if let Some(weakness) = latchkey_common::secret::weakness(key) {
            problems.push(
                ENCRYPTION_KEYS.env(),
                format!("key {id} is {weakness}, which production refuses"),
                generate(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn key() -> String {
        SealKey::generate().to_base64().to_string()
    }

    #[test]
    fn keys_parse_with_ids_first_active() {
        let keys = MasterKeys::parse(&format!("k2:{}, k1:{}", key(), key())).unwrap();
        assert_eq!(keys.active().id, "k2");
        assert_eq!(keys.ids().collect::<Vec<_>>(), ["k2", "k1"]);
        assert!(keys.get("k1").is_some() && keys.get("k3").is_none());
    }

    #[test]
    fn a_single_key_without_id_is_k1() {
        let keys = MasterKeys::parse(&key()).unwrap();
        assert_eq!(keys.active().id, DEFAULT_KEY_ID);
        let keys = MasterKeys::parse(&"ab".repeat(32)).unwrap();
        assert_eq!(keys.active().id, DEFAULT_KEY_ID);
    }

    #[test]
    fn bad_entries_are_each_reported_without_key_material() {
        let secret = key();
        let errors = MasterKeys::parse(&format!(
            "{secret},a:{secret},a:{secret},b c:{secret},d:short"
        ))
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors.iter().all(|e| !e.contains(&secret[..10])));
    }

    #[test]
    fn encryption_key_alias_and_problems() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        let secret = key();
        let config = Config::from_env_map(env(&[("ENCRYPTION_KEY", &secret)]));
        let settings = SettingsConfig::from_config(&config).unwrap();
        assert_eq!(settings.keys.active().id, "k1");
        assert!(!format!("{settings:?}").contains(&secret[..10]));

        let zeros = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let config = Config::from_env_map(env(&[
            ("LATCHKEY_ENV", "production"),
            ("LATCHKEY_DATABASE_URL", "postgres://u@db/x"),
            (
                "LATCHKEY_ENCRYPTION_KEYS",
                &format!("k2:{secret},k1:{zeros}"),
            ),
        ]));
        let problems = SettingsConfig::from_config(&config).unwrap_err();
        assert!(
            problems.0.iter().any(|p| p.what.starts_with("key k1 is")),
            "{problems}"
        );
        assert!(!problems.0.iter().any(|p| p.what.contains("key k2")));

        let config = Config::from_env_map(env(&[]));
        let problems = SettingsConfig::from_config(&config).unwrap_err();
        assert!(
            problems
                .0
                .iter()
                .any(|p| p.variable == "LATCHKEY_ENCRYPTION_KEYS"),
            "{problems}"
        );
    }
}
