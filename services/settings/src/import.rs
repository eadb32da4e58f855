//! An import's CPU work, run on the blocking pool: [`parse_checked`] adapts the pure
//! [`crate::dotenv`] parser to the service (bad lines as `line N` violations — the first ones,
//! and how many more —, names and values checked against the limits, warnings passed on; the
//! parser stops when told to), and [`plan`] sets the file against what is stored.

use crate::budget::StopCheck;
use crate::config::MasterKeys;
use crate::dotenv::{self, Failure, Options};
use crate::error::{SettingsError, shown, violation};
use crate::service::{
    ImportMode, ImportOutcome, ImportWarning, limits, name_problem, open_row, value_problem,
};
use crate::store::values;
use latchkey_proto::{Violation, fit_violations};
use std::collections::{BTreeMap, HashMap};
use zeroize::Zeroizing;

/// Bad lines and warnings reported in full; the rest are counted.
pub const MAX_LISTED: usize = latchkey_proto::error::MAX_VIOLATIONS;

/// A parsed, checked `.env`: entries in file order (last duplicate wins), and warnings.
pub struct Checked {
    pub entries: Vec<(String, Zeroizing<String>)>,
    pub warnings: Vec<ImportWarning>,
}

/// Parses and checks a pasted `.env`. Any bad line fails the whole import, listing the first
/// ones and counting the rest; `stop` turning true ends it with DEADLINE_EXCEEDED.
pub fn parse_checked(text: &str, stop: StopCheck<'_>) -> Result<Checked, SettingsError> {
    let options = Options {
        max_value_bytes: limits::MAX_VALUE_BYTES,
        max_errors: MAX_LISTED,
        max_warnings: MAX_LISTED,
        interrupted: stop,
    };
    let parsed = dotenv::parse_with(text, &options).map_err(|failure| match failure {
        Failure::Interrupted => SettingsError::DeadlineExceeded { allowed_ms: None },
        Failure::BadLines { errors, total } => {
            let listed = errors.len();
            let violations = errors
                .into_iter()
                .map(|e| violation(format!("line {}", e.line), e.message))
                .collect();
            SettingsError::Invalid(
                format!("{total} line(s) of the .env cannot be read; nothing was imported."),
                fit_violations(violations, total - listed, "dotenv", "lines"),
            )
        }
    })?;
    let mut violations: Vec<Violation> = Vec::new();
    let mut entries = Vec::with_capacity(parsed.entries.len());
    for entry in parsed.entries {
        let field = format!("line {}", entry.line);
        let name = shown(&entry.name);
        if let Some(problem) = name_problem(&entry.name) {
            violations.push(violation(&field, format!("{name}: {problem}")));
        }
        if let Some(problem) = value_problem(&entry.value) {
            violations.push(violation(&field, format!("{name}: {problem}")));
        }
        entries.push((entry.name, Zeroizing::new(entry.value)));
    }
    if !violations.is_empty() {
        return Err(SettingsError::Invalid(
            format!(
                "{} line(s) of the .env break the limits; nothing was imported.",
                violations.len()
            ),
            fit_violations(violations, 0, "dotenv", "lines"),
        ));
    }
    let mut warnings: Vec<ImportWarning> = parsed
        .warnings
        .into_iter()
        .map(|w| ImportWarning {
            line: w.line as i64,
            name: w.name,
            message: w.message,
        })
        .collect();
    if parsed.unlisted_warnings > 0 {
        warnings.push(ImportWarning {
            line: 0,
            name: String::new(),
            message: format!(
                "and {} more warnings not listed (only the first {MAX_LISTED} are)",
                parsed.unlisted_warnings
            ),
        });
    }
    Ok(Checked { entries, warnings })
}

/// What an import would do: the outcome's name lists (sorted), the values to write, and the
/// stored rows it was planned against.
pub struct Plan {
    pub outcome: ImportOutcome,
    pub sets: BTreeMap<String, Zeroizing<String>>,
    pub stored: Vec<values::Model>,
}

/// Sets the file's entries against the stored rows. A real import opens each stored value the
/// file names and leaves equal ones alone (`unchanged`). A dry run opens nothing and compares
/// nothing: every stored name the file sets is `changed` ("would be replaced"), so a preview is
/// never an oracle for whether a guessed value is the stored one.
pub fn plan(
    keys: &MasterKeys,
    stored: Vec<values::Model>,
    entries: Vec<(String, Zeroizing<String>)>,
    mode: ImportMode,
    dry_run: bool,
) -> Plan {
    let by_name: HashMap<&str, &values::Model> =
        stored.iter().map(|row| (row.name.as_str(), row)).collect();
    let mut outcome = ImportOutcome::default();
    let mut sets = BTreeMap::new();
    for (name, value) in entries {
        match by_name.get(name.as_str()) {
            None => outcome.added.push(name.clone()),
            Some(_) if dry_run => outcome.changed.push(name.clone()),
            Some(row) => match open_row(keys, row) {
                Ok(current) if *current == *value => {
                    outcome.unchanged.push(name);
                    continue;
                }
                // A value that does not open is overwritten: setting it again is the repair.
                _ => outcome.changed.push(name.clone()),
            },
        }
        sets.insert(name, value);
    }
    if mode == ImportMode::Replace {
        outcome.removed = stored
            .iter()
            .map(|row| row.name.clone())
            .filter(|name| !sets.contains_key(name) && !outcome.unchanged.contains(name))
            .collect();
    }
    for names in [
        &mut outcome.added,
        &mut outcome.changed,
        &mut outcome.removed,
        &mut outcome.unchanged,
    ] {
        names.sort();
    }
    drop(by_name);
    Plan {
        outcome,
        sets,
        stored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_and_limits_are_line_violations() {
        let Err(SettingsError::Invalid(_, violations)) =
            parse_checked("OK=1\nBARE\nX=\"open\n", &|| false)
        else {
            panic!("expected invalid");
        };
        assert!(violations.iter().any(|v| v.field == "line 2"));
        let long = format!("{}=1\nB={}\n", "N".repeat(129), "x".repeat(16 * 1024 + 1));
        let Err(SettingsError::Invalid(_, violations)) = parse_checked(&long, &|| false) else {
            panic!("expected invalid");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["line 1", "line 2"]);
    }

    #[test]
    fn bad_lines_never_echo_what_may_be_a_secret() {
        let pasted = "PEM=-----BEGIN KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\nc2VjcmV0LXBhcnQtb2YtYS1rZXk+/w\nQ=\"x\" sk-live-trailing-secret\n";
        let Err(SettingsError::Invalid(_, violations)) = parse_checked(pasted, &|| false) else {
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
        let checked = parse_checked("A=1\nA=2\n", &|| false).unwrap();
        assert_eq!(checked.entries.len(), 1);
        assert_eq!(checked.entries[0].1.as_str(), "2");
        assert_eq!(checked.warnings[0].line, 2);
    }

    #[test]
    fn a_pasted_certificate_chain_lists_the_first_lines_and_counts_the_rest() {
        let chain = format!(
            "CERT=-----BEGIN CERTIFICATE-----\n{}",
            "MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n".repeat(150)
        );
        let Err(SettingsError::Invalid(detail, violations)) = parse_checked(&chain, &|| false)
        else {
            panic!("expected invalid");
        };
        assert!(detail.starts_with("150 line(s)"), "{detail}");
        assert!(violations.len() <= MAX_LISTED + 1);
        assert_eq!(violations[0].field, "line 2");
        let last = violations.last().unwrap();
        assert_eq!(last.field, "dotenv");
        let listed = violations.len() - 1;
        assert_eq!(
            last.description,
            format!(
                "and {} more lines not listed; fix the ones listed and try again to see the rest",
                150 - listed
            )
        );
    }

    #[test]
    fn warnings_beyond_the_first_are_counted() {
        let text: String = (0..30_000).map(|i| format!("A={i}\n")).collect();
        let checked = parse_checked(&text, &|| false).unwrap();
        assert_eq!(checked.entries.len(), 1);
        assert_eq!(checked.entries[0].1.as_str(), "29999");
        assert_eq!(checked.warnings.len(), MAX_LISTED + 1);
        assert!(
            checked.warnings[MAX_LISTED]
                .message
                .starts_with(&format!("and {} more warnings", 29_999 - MAX_LISTED))
        );
    }

    #[test]
    fn a_stop_ends_the_parse_as_deadline_exceeded() {
        let text = "A=1\n".repeat(5 * dotenv::CHECK_EVERY_LINES);
        assert!(matches!(
            parse_checked(&text, &|| true),
            Err(SettingsError::DeadlineExceeded { .. })
        ));
    }
}
