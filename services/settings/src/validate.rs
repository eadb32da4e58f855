//! What a setting may be: the limits (names, values, how many per user, import and audit page
//! sizes) and the checks that turn a bad name, value or batch into violations.

use crate::error::{SettingsError, shown};
use latchkey_proto::{Violation, fit_violations};
use std::collections::BTreeSet;

/// Limits from docs/ARCHITECTURE.md §3.
pub mod limits {
    /// Longest setting name, in characters.
    pub const MAX_NAME_CHARS: usize = 128;
    /// Largest value, in bytes (UTF-8).
    pub const MAX_VALUE_BYTES: usize = 16 * 1024;
    /// Most settings one user may hold (checked on the resulting set).
    pub const MAX_SETTINGS: usize = 200;
    /// Largest pasted `.env`, in bytes.
    pub const MAX_IMPORT_BYTES: usize = 256 * 1024;
    /// Largest audit page.
    pub const MAX_AUDIT_PAGE: u64 = 500;
    /// Audit page when none is asked for.
    pub const DEFAULT_AUDIT_PAGE: u64 = 50;
}

/// Checks every name and value of a batch of `(name, value or None to delete)`, reporting each
/// bad entry as `settings.NAME`.
pub fn check_batch<'a>(
    entries: impl ExactSizeIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), SettingsError> {
    let count = entries.len();
    let mut violations: Vec<Violation> = Vec::new();
    let mut seen = BTreeSet::new();
    for (name, value) in entries {
        let field = format!("settings.{}", shown(name));
        if let Some(problem) = name_problem(name) {
            violations.push(Violation::new(&field, problem));
        }
        if !seen.insert(name) {
            violations.push(Violation::new(
                &field,
                "appears more than once in the batch",
            ));
        }
        if let Some(problem) = value.and_then(value_problem) {
            violations.push(Violation::new(&field, problem));
        }
    }
    if count > limits::MAX_SETTINGS {
        violations.push(Violation::new(
            "settings",
            format!(
                "has {count} entries; at most {} are allowed",
                limits::MAX_SETTINGS
            ),
        ));
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(SettingsError::Invalid(
            format!(
                "{} problem(s) in the batch; nothing was changed.",
                violations.len()
            ),
            fit_violations(violations, 0, "settings", "problems"),
        ))
    }
}

/// The refusal of a write that would leave `resulting` settings, over the per-user limit.
pub fn too_many(resulting: usize) -> SettingsError {
    SettingsError::Invalid(
        format!(
            "This would leave {resulting} settings; at most {} are allowed per user.",
            limits::MAX_SETTINGS
        ),
        vec![Violation::new(
            "settings",
            format!(
                "would hold {resulting} settings; at most {} are allowed",
                limits::MAX_SETTINGS
            ),
        )],
    )
}

/// Why a setting name is refused, if it is.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the name must not be empty".into());
    }
    if name.chars().count() > limits::MAX_NAME_CHARS {
        return Some(format!(
            "the name is longer than {} characters",
            limits::MAX_NAME_CHARS
        ));
    }
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some(
            "the name must match ^[A-Za-z_][A-Za-z0-9_]*$ (letters, digits, underscore; not starting with a digit)"
                .into(),
        );
    }
    None
}

/// Why a value is refused, if it is.
pub fn value_problem(value: &str) -> Option<String> {
    (value.len() > limits::MAX_VALUE_BYTES).then(|| {
        format!(
            "the value is {} bytes; at most {} are allowed",
            value.len(),
            limits::MAX_VALUE_BYTES
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_grammar_and_length() {
        for good in ["A", "_x", "FLY_API_TOKEN", "a1"] {
            assert_eq!(name_problem(good), None, "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "É", &"A".repeat(129)] {
            assert!(name_problem(bad).is_some(), "{bad}");
        }
        assert_eq!(name_problem(&"A".repeat(128)), None);
    }

    #[test]
    fn values_up_to_16_kib() {
        assert_eq!(value_problem(&"x".repeat(16 * 1024)), None);
        assert!(value_problem(&"x".repeat(16 * 1024 + 1)).is_some());
    }
}
