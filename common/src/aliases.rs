//! One setting, several names: a setting may arrive under its `LATCHKEY_` name, its `_FILE`
//! form, `latchkey.toml` and the names web apps already use (its aliases, e.g. `AUTH_SECRET`).
//! When two of them hold different values Latchkey cannot know which one the web app uses, so
//! [`Conflict`] names every variable with its fingerprint (never a value) and, for the NextAuth
//! secrets, which one each NextAuth major reads first. Production refuses to start on a
//! conflict; development warns and `latchkey doctor` shows it as a ✘ (see README.md,
//! "Configuration").

use crate::secret::{fingerprint, secrets_match};
use secrecy::SecretString;
use zeroize::Zeroizing;

/// Which web framework reads an alias first, for the names where that decides who signs with
/// what: next-auth v4 (≥ 4.24.10) falls back from `NEXTAUTH_SECRET` to `AUTH_SECRET`, Auth.js
/// v5 (`next-auth@5`, `@auth/core`) from `AUTH_SECRET` to `NEXTAUTH_SECRET`.
pub const READERS: &[(&str, &str)] = &[
    (
        "NEXTAUTH_SECRET",
        "next-auth v4 (≥ 4.24.10) reads NEXTAUTH_SECRET first",
    ),
    (
        "AUTH_SECRET",
        "Auth.js v5 (next-auth@5, @auth/core) reads AUTH_SECRET first",
    ),
];

/// What the frameworks read, for the names given (empty when none is a NextAuth name).
pub fn readers_of<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'static str> {
    let names: Vec<&str> = names
        .into_iter()
        .map(|n| n.strip_suffix("_FILE").unwrap_or(n))
        .collect();
    READERS
        .iter()
        .filter(|(name, _)| names.contains(name))
        .map(|(_, reader)| *reader)
        .collect()
}

/// Whether two values of one setting mean the same thing (compared in constant time). A master
/// key without an id is key `k1` (`ENCRYPTION_KEY=<key>` equals
/// `LATCHKEY_ENCRYPTION_KEYS=k1:<key>`).
pub fn same_value(key: &str, a: &str, b: &str) -> bool {
    let canonical = |v: &str| match key {
        "encryption_keys" if !v.contains(':') => Zeroizing::new(format!("k1:{}", v.trim())),
        "encryption_keys" => Zeroizing::new(v.trim().to_owned()),
        _ => Zeroizing::new(v.to_owned()),
    };
    let expected = SecretString::from(canonical(b).to_string());
    secrets_match(canonical(a).as_bytes(), &expected)
}

/// One name a setting was given under, with the fingerprint of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The variable (`AUTH_SECRET`, `LATCHKEY_SYNC_SECRET_FILE`) or `latchkey.toml key \`k\``.
    pub name: String,
    pub fingerprint: String,
}

impl Named {
    /// The name and the fingerprint of `value`.
    pub fn new(name: impl Into<String>, value: &str) -> Named {
        Named {
            name: name.into(),
            fingerprint: fingerprint(value.as_bytes()),
        }
    }
}

/// One setting set under several names to different values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The setting's `LATCHKEY_` variable.
    pub setting: String,
    /// Every name that sets it, the one Latchkey uses first.
    pub names: Vec<Named>,
}

impl Conflict {
    /// `A (fingerprint x) and B (fingerprint y)`.
    pub fn listed(&self) -> String {
        list(
            self.names
                .iter()
                .map(|n| format!("{} (fingerprint {})", n.name, n.fingerprint)),
        )
    }

    /// What is wrong, naming every variable, its fingerprint and who reads which.
    pub fn what(&self) -> String {
        let used = self.names.first().map(|n| n.name.as_str()).unwrap_or("");
        let mut text = format!(
            "{} set {} to different values; Latchkey would use {used}",
            self.listed(),
            self.setting
        );
        let readers = readers_of(self.names.iter().map(|n| n.name.as_str()));
        if !readers.is_empty() {
            text.push_str(&format!(
                ", while your web app uses the one its NextAuth major reads: {}",
                readers.join("; ")
            ));
        }
        text
    }

    /// How to resolve it.
    pub fn fix(&self) -> String {
        let names: Vec<&str> = self.names.iter().map(|n| n.name.as_str()).collect();
        format!(
            "give {} the same value (the one your web app uses), or unset all but one; compare with `latchkey fingerprint` on the web app's machine",
            list(names.iter().map(|n| n.to_string()))
        )
    }
}

/// `a`, `a and b`, `a, b and c`.
pub fn list(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nextauth_conflict_names_both_fingerprints_and_both_majors() {
        let conflict = Conflict {
            setting: "LATCHKEY_LEGACY_HS256_SECRET".into(),
            names: vec![
                Named::new("NEXTAUTH_SECRET", "one-value"),
                Named::new("AUTH_SECRET", "another-value"),
            ],
        };
        let what = conflict.what();
        assert!(what.contains(&format!(
            "NEXTAUTH_SECRET (fingerprint {}) and AUTH_SECRET (fingerprint {})",
            fingerprint(b"one-value"),
            fingerprint(b"another-value")
        )));
        assert!(what.contains("next-auth v4 (≥ 4.24.10) reads NEXTAUTH_SECRET first"));
        assert!(what.contains("Auth.js v5 (next-auth@5, @auth/core) reads AUTH_SECRET first"));
        assert!(!what.contains("one-value") && !conflict.fix().contains("one-value"));
    }

    #[test]
    fn a_master_key_without_an_id_is_k1() {
        assert!(same_value("encryption_keys", "abc", "k1:abc"));
        assert!(!same_value("encryption_keys", "abc", "k2:abc"));
        assert!(!same_value("sync_secret", "abc", "k1:abc"));
    }
}
