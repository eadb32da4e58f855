//! An import's CPU work, run on the blocking pool and free of the database: [`parse_checked`]
//! adapts the pure [`crate::dotenv`] parser to the service (bad lines as `line N` violations —
//! the first ones, and how many more —, names and values checked against the limits, warnings
//! passed on; the parser stops when told to), and [`plan`] sets the file against what is stored
//! (stored × parsed × mode → added, changed, removed, unchanged), with [`preview`] the list a
//! dry run would leave.

use crate::budget::StopCheck;
use crate::crypto;
use crate::dotenv::{self, Failure, Options};
use crate::error::{SettingsError, shown};
use crate::store::queries::Masked;
use crate::store::values;
use crate::validate::{limits, name_problem, value_problem};
use latchkey_proto::{Violation, fit_violations};
use std::collections::{BTreeMap, HashMap};
use zeroize::Zeroizing;

/// How an import combines with what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// Add and change; keep settings the file does not name.
    #[default]
    Merge,
    /// The file becomes the whole set.
    Replace,
}

/// A non-fatal remark about one imported line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportWarning {
    pub line: i64,
    pub name: String,
    pub message: String,
}

/// What an import did (or, for a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct ImportOutcome {
    pub applied: bool,
    pub added: Vec<String>,
    /// Names the file sets that were stored with another value. A dry run compares no values:
    /// it lists every name the file sets that is stored ("would be replaced"), so a preview never
    /// answers whether a guessed value is the stored one.
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Names whose stored value already equals the file's (left as they are). Always empty for a
    /// dry run.
    pub unchanged: Vec<String>,
    pub warnings: Vec<ImportWarning>,
    /// The resulting list (for a dry run: what it would be).
    pub settings: Vec<Masked>,
}

/// Bad lines and warnings reported in full; the rest are counted.
pub const MAX_LISTED: usize = latchkey_proto::error::MAX_VIOLATIONS;

/// A parsed, checked `.env`: entries in file order (last duplicate wins), and warnings.
pub struct Checked {
    pub entries: Vec<(String, Zeroizing<String>)>,
    /// The line of each entry, in the same order (for the schema's per-line violations).
    pub lines: Vec<usize>,
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
                .map(|e| Violation::new(format!("line {}", e.line), e.message))
                .collect();
            SettingsError::Invalid(
                format!("{total} line(s) of the .env cannot be read; nothing was imported."),
                fit_violations(violations, total - listed, "dotenv", "lines"),
            )
        }
    })?;
    let mut violations: Vec<Violation> = Vec::new();
    let mut entries = Vec::with_capacity(parsed.entries.len());
    let mut lines = Vec::with_capacity(parsed.entries.len());
    for entry in parsed.entries {
        let field = format!("line {}", entry.line);
        let name = shown(&entry.name);
        if let Some(problem) = name_problem(&entry.name) {
            violations.push(Violation::new(&field, format!("{name}: {problem}")));
        }
        if let Some(problem) = value_problem(&entry.value) {
            violations.push(Violation::new(&field, format!("{name}: {problem}")));
        }
        lines.push(entry.line);
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
    Ok(Checked {
        entries,
        lines,
        warnings,
    })
}

/// What an import would do: the outcome's name lists (sorted), the values to write, and the
/// stored rows it was planned against.
pub struct Plan {
    pub outcome: ImportOutcome,
    pub sets: BTreeMap<String, Zeroizing<String>>,
    pub stored: Vec<values::Model>,
}

/// Sets the file's entries against the stored rows. A real import opens each stored value the
/// file names with `open` and leaves equal ones alone (`unchanged`); one that does not open is
/// overwritten (setting it again is the repair). A dry run opens nothing and compares nothing:
/// every stored name the file sets is `changed` ("would be replaced"), so a preview is never an
/// oracle for whether a guessed value is the stored one.
pub fn plan<E>(
    open: impl Fn(&values::Model) -> Result<Zeroizing<String>, E>,
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
            Some(row) => match open(row) {
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

/// The list a dry run would leave: stored rows not removed, with the file's values masked.
pub fn preview(
    stored: &[values::Model],
    removed: &[String],
    sets: &BTreeMap<String, Zeroizing<String>>,
    now: i64,
) -> Vec<Masked> {
    let mut preview: BTreeMap<String, Masked> = stored
        .iter()
        .filter(|row| !removed.contains(&row.name))
        .map(|row| (row.name.clone(), Masked::of(row)))
        .collect();
    for (name, value) in sets {
        let (length, last4) = crypto::mask_parts(value);
        preview.insert(
            name.clone(),
            Masked {
                name: name.clone(),
                masked: crypto::masked(length, &last4),
                length,
                updated_at: now,
            },
        );
    }
    preview.into_values().collect()
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

    /// A stored row whose "sealed" bytes are its plaintext, opened by [`open_plain`]; a row
    /// holding `BROKEN` does not open.
    fn stored(name: &str, value: &str) -> values::Model {
        values::Model {
            user_id: "u".into(),
            name: name.into(),
            ciphertext: value.as_bytes().to_vec(),
            key_id: "k1".into(),
            length: value.chars().count() as i64,
            last4: String::new(),
            updated_at: 1,
        }
    }

    fn open_plain(row: &values::Model) -> Result<Zeroizing<String>, ()> {
        match String::from_utf8(row.ciphertext.clone()) {
            Ok(value) if value != "BROKEN" => Ok(Zeroizing::new(value)),
            _ => Err(()),
        }
    }

    fn parsed(entries: &[(&str, &str)]) -> Vec<(String, Zeroizing<String>)> {
        entries
            .iter()
            .map(|(name, value)| (name.to_string(), Zeroizing::new(value.to_string())))
            .collect()
    }

    fn names(plan: &Plan) -> [Vec<&str>; 4] {
        let o = &plan.outcome;
        [&o.added, &o.changed, &o.removed, &o.unchanged]
            .map(|list| list.iter().map(String::as_str).collect())
    }

    #[test]
    fn a_merge_adds_changes_and_keeps_what_the_file_does_not_name() {
        let rows = vec![stored("A", "1"), stored("B", "2"), stored("KEEP", "k")];
        let file = parsed(&[("A", "1"), ("B", "two"), ("C", "3")]);
        let plan = plan(open_plain, rows, file, ImportMode::Merge, false);
        assert_eq!(names(&plan), [vec!["C"], vec!["B"], vec![], vec!["A"]]);
        let written: Vec<&str> = plan.sets.keys().map(String::as_str).collect();
        assert_eq!(written, ["B", "C"], "an equal value is not written again");
        assert_eq!(plan.stored.len(), 3);
    }

    #[test]
    fn a_replace_removes_what_the_file_does_not_name() {
        let rows = vec![stored("A", "1"), stored("GONE", "x"), stored("OLD", "y")];
        let file = parsed(&[("A", "1"), ("NEW", "n")]);
        let plan = plan(open_plain, rows, file, ImportMode::Replace, false);
        assert_eq!(
            names(&plan),
            [vec!["NEW"], vec![], vec!["GONE", "OLD"], vec!["A"]]
        );
    }

    #[test]
    fn a_dry_run_compares_no_values() {
        let rows = vec![stored("A", "1"), stored("B", "2")];
        let file = parsed(&[("A", "1"), ("B", "other")]);
        let opened = std::cell::Cell::new(0);
        let counting = |row: &values::Model| {
            opened.set(opened.get() + 1);
            open_plain(row)
        };
        let plan = plan(counting, rows, file, ImportMode::Merge, true);
        assert_eq!(names(&plan), [vec![], vec!["A", "B"], vec![], vec![]]);
        assert_eq!(opened.get(), 0, "a preview opens no stored value");
    }

    #[test]
    fn a_stored_value_that_does_not_open_is_overwritten() {
        let rows = vec![stored("A", "BROKEN")];
        let plan = plan(
            open_plain,
            rows,
            parsed(&[("A", "BROKEN")]),
            ImportMode::Merge,
            false,
        );
        assert_eq!(names(&plan), [vec![], vec!["A"], vec![], vec![]]);
        assert!(plan.sets.contains_key("A"));
    }

    #[test]
    fn a_preview_masks_the_file_values_and_drops_the_removed() {
        let rows = vec![stored("A", "1"), stored("GONE", "x")];
        let sets: BTreeMap<String, Zeroizing<String>> = parsed(&[("B", "a-long-secret-value")])
            .into_iter()
            .collect();
        let list = preview(&rows, &["GONE".to_owned()], &sets, 42);
        let shown: Vec<(&str, i64)> = list
            .iter()
            .map(|m| (m.name.as_str(), m.updated_at))
            .collect();
        assert_eq!(shown, [("A", 1), ("B", 42)]);
        assert!(!list[1].masked.contains("a-long-secret"), "{:?}", list[1]);
    }
}
