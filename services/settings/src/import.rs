//! Adapts the pure [`crate::dotenv`] parser to the service: every bad line as a `line N`
//! violation, names and values checked against the limits (also `line N`), warnings passed on.

use crate::dotenv;
use crate::error::{SettingsError, violation};
use crate::service::{ImportWarning, name_problem, value_problem};
use zeroize::Zeroizing;

/// A parsed, checked `.env`: entries in file order (last duplicate wins), and warnings.
pub struct Checked {
    pub entries: Vec<(String, Zeroizing<String>)>,
    pub warnings: Vec<ImportWarning>,
}

/// Parses and checks a pasted `.env`. Any bad line fails the whole import, listing every one.
pub fn parse_checked(text: &str) -> Result<Checked, SettingsError> {
    let parsed = dotenv::parse(text).map_err(|errors| {
        let count = errors.len();
        SettingsError::Invalid(
            format!("{count} line(s) of the .env cannot be read; nothing was imported."),
            errors
                .into_iter()
                .map(|e| violation(format!("line {}", e.line), e.message))
                .collect(),
        )
    })?;
    let mut violations = Vec::new();
    let mut entries = Vec::with_capacity(parsed.entries.len());
    for entry in parsed.entries {
        let field = format!("line {}", entry.line);
        if let Some(problem) = name_problem(&entry.name) {
            violations.push(violation(&field, format!("{}: {problem}", entry.name)));
        }
        if let Some(problem) = value_problem(&entry.value) {
            violations.push(violation(&field, format!("{}: {problem}", entry.name)));
        }
        entries.push((entry.name, Zeroizing::new(entry.value)));
    }
    if !violations.is_empty() {
        return Err(SettingsError::Invalid(
            format!(
                "{} line(s) of the .env break the limits; nothing was imported.",
                violations.len()
            ),
            violations,
        ));
    }
    let warnings = parsed
        .warnings
        .into_iter()
        .map(|w| ImportWarning {
            line: w.line as i64,
            name: w.name,
            message: w.message,
        })
        .collect();
    Ok(Checked { entries, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_and_limits_are_line_violations() {
        let Err(SettingsError::Invalid(_, violations)) = parse_checked("OK=1\nBARE\nX=\"open\n")
        else {
            panic!("expected invalid");
        };
        assert!(violations.iter().any(|v| v.field == "line 2"));
        let long = format!("{}=1\nB={}\n", "N".repeat(129), "x".repeat(16 * 1024 + 1));
        let Err(SettingsError::Invalid(_, violations)) = parse_checked(&long) else {
            panic!("expected invalid");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["line 1", "line 2"]);
    }

    #[test]
    fn bad_lines_never_echo_what_may_be_a_secret() {
        let pasted = "PEM=-----BEGIN KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\nc2VjcmV0LXBhcnQtb2YtYS1rZXk+/w\nQ=\"x\" sk-live-trailing-secret\n";
        let Err(SettingsError::Invalid(_, violations)) = parse_checked(pasted) else {
            panic!("expected invalid");
        };
        assert_eq!(violations.len(), 3, "{violations:?}");
        for v in &violations {
            for secret in ["MIIBIjAN", "c2VjcmV0", "sk-live"] {
                assert!(!v.description.contains(secret), "{v:?}");
            }
        }
    }

    #[test]
    fn duplicates_collapse_with_a_warning() {
        let checked = parse_checked("A=1\nA=2\n").unwrap();
        assert_eq!(checked.entries.len(), 1);
        assert_eq!(checked.entries[0].1.as_str(), "2");
        assert_eq!(checked.warnings[0].line, 2);
    }
}
