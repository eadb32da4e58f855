//! Reading settings through their typed handles: text, secrets, parsed values and flags, each
//! recording a [`Problems`] entry that names the variable and the fix.

use super::loader::{Config, Source};
use super::problems::Problems;
use super::table::{ENV, Key, Setting, SettingSpec};
use crate::aliases::Conflict;
use crate::secret::weakness;
use secrecy::SecretString;
use std::collections::BTreeSet;

impl Config {
    /// Settings given under several names with different values. Production refuses them (as
    /// load problems); development starts with a warning and doctor shows a ✘.
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }

    /// Problems found while loading (bad file, unreadable secret files); validation adds more.
    pub fn load_problems(&self) -> Problems {
        self.problems.clone()
    }

    /// The text of a free-text setting; `None` when unset or empty.
    pub fn get(&self, setting: Setting<String>) -> Option<&str> {
        self.raw(setting)
    }

    /// The text of a setting, or the table's default when it is set empty (`""` without one).
    pub fn raw_or_default(&self, key: impl Key) -> &str {
        self.raw(key).or(key.spec().default).unwrap_or_default()
    }

    /// The text of any setting as written, secret or not: for fingerprints and displays that
    /// walk the table. Prefer the typed accessors.
    pub fn raw(&self, key: impl Key) -> Option<&str> {
        let spec = self.note(key);
        self.values
            .get(spec.key)
            .map(|v| v.text.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Where a setting's value came from.
    pub fn source(&self, key: impl Key) -> Option<&Source> {
        let spec = self.note(key);
        self.values.get(spec.key).map(|v| &v.source)
    }

    /// Whether `LATCHKEY_ENV=production`.
    pub fn is_production(&self) -> bool {
        self.get(ENV) == Some("production")
    }

    /// A secret setting, wrapped so it cannot be printed.
    pub fn secret(&self, setting: Setting<SecretString>) -> Option<SecretString> {
        self.raw(setting).map(|v| SecretString::from(v.to_owned()))
    }

    /// A required secret: records a problem when missing or (in production) weak.
    pub fn required_secret(
        &self,
        setting: Setting<SecretString>,
        problems: &mut Problems,
        fix: &str,
    ) -> Option<SecretString> {
        let env = setting.env();
        let Some(value) = self.raw(setting) else {
            problems.push(
                &env,
                "is not set",
                format!("{fix} (or set {env}_FILE to a file holding it)"),
            );
            return None;
        };
        if let Some(weakness) = weakness(value).filter(|_| self.is_production()) {
            problems.push(env, format!("is {weakness}, which production refuses"), fix);
        }
        Some(SecretString::from(value.to_owned()))
    }

    /// Parses a setting, falling back to the table's default when it is set empty; records a
    /// problem naming the expected form when the text does not parse.
    pub fn parsed<T: std::str::FromStr>(
        &self,
        setting: Setting<T>,
        expected: &str,
        problems: &mut Problems,
    ) -> Option<T> {
        let spec = setting.spec();
        let text = self.raw(setting).or(spec.default)?;
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

    /// A boolean setting (`true/false/1/0/yes/no/on/off`); set empty, it is off.
    pub fn flag(&self, setting: Setting<bool>, problems: &mut Problems) -> bool {
        let Some(text) = self.raw(setting) else {
            return false;
        };
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => {
                problems.push(
                    setting.env(),
                    format!("`{text}` is not a boolean"),
                    "set it to true or false",
                );
                false
            }
        }
    }

    /// The keys read so far through this configuration, so a test can hold the table's
    /// services column to what each service's code actually reads.
    pub fn read_keys(&self) -> BTreeSet<&'static str> {
        self.reads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Records that `key` was read and returns its row.
    fn note(&self, key: impl Key) -> &'static SettingSpec {
        let spec = key.spec();
        self.reads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(spec.key);
        spec
    }
}
