//! Loading in layers — defaults from the table, then what the command lays underneath
//! ([`Underlay`]: the secrets `latchkey dev` generates), then `latchkey.toml` (or the file
//! `LATCHKEY_CONFIG` names), then the environment. In the environment a setting is read from
//! `LATCHKEY_<NAME>`, `LATCHKEY_<NAME>_FILE` for a secret, else from the names apps arrive with
//! (its `aliases`, and their `_FILE` forms); two of those names holding different values is a
//! [`Conflict`]: a load problem in production, a warning in development.

use super::problems::Problems;
use super::table::{ENV, SETTINGS, SettingSpec, spec};
use crate::aliases::{self, Conflict, Named};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use zeroize::Zeroizing;

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

/// One setting's text as loaded, and where it came from.
pub(super) struct Value {
    pub(super) text: Zeroizing<String>,
    pub(super) source: Source,
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
    pub(super) values: BTreeMap<&'static str, Value>,
    /// Informational lines for the startup log (aliases used, unknown variables).
    pub notices: Vec<String>,
    pub(super) problems: Problems,
    /// Settings given under several names with different values (see [`crate::aliases`]).
    pub(super) conflicts: Vec<Conflict>,
    /// Keys the typed accessors were asked for (see [`Config::read_keys`]).
    pub(super) reads: Mutex<BTreeSet<&'static str>>,
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
            reads: Mutex::default(),
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
        let production = config
            .values
            .get(ENV.key())
            .is_some_and(|value| value.text.as_str() == "production");
        // Every service honours it here: production refuses conflicting names.
        config
            .reads
            .get_mut()
            .map(|reads| reads.insert(ENV.key()))
            .ok();
        if production {
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
            let named = |s: &&&SettingSpec| {
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
            let (base, from_file) = match spec(&key) {
                Some(_) => (key.as_str(), false),
                None => split_file_suffix(&key),
            };
            let Some(spec) = spec(base).filter(|s| !from_file || s.secret) else {
                self.problems.push(
                    format!("{} key `{key}`", path.display()),
                    "is not a Latchkey setting",
                    "remove it or correct its spelling; `latchkey config` lists every setting",
                );
                continue;
            };
            let text = file_value_text(value);
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

/// A file value as text: a TOML table or array (e.g. `[settings_schema]`) becomes its JSON.
fn file_value_text(value: config::Value) -> String {
    match value.kind {
        config::ValueKind::Table(_) | config::ValueKind::Array(_) => value
            .try_deserialize::<serde_json::Value>()
            .map(|json| json.to_string())
            .unwrap_or_default(),
        _ => value.into_string().unwrap_or_default(),
    }
}

fn split_file_suffix(key: &str) -> (&str, bool) {
    match key.strip_suffix("_file") {
        Some(base) => (base, true),
        None => (key, false),
    }
}
