//! The `.env` grammar of DESIGN §4a, with no I/O: [`parse`] reads a pasted file into entries,
//! warnings and every bad line (with its number and a sentence saying how to fix it); [`write`]
//! is the reverse, quoting only where needed, so `parse(write(map)) == map`.
//!
//! Where node dotenv, dotenvy, python-dotenv and Compose disagree, we go the way §4a decides:
//! `export ` prefix allowed; only `=` separates (spaces around it allowed); keys
//! `[A-Za-z_][A-Za-z0-9_]*`; `#` starts a comment at the start of a line or after whitespace in an
//! unquoted value (`A=v#x` keeps `v#x`); unquoted values are trimmed; single quotes are literal;
//! double quotes take `\n \r \t \\ \" \$` and may span lines; `KEY=` is empty; CRLF and a leading
//! BOM are accepted; duplicate keys: last wins, with a warning; no variable expansion.

use std::collections::HashMap;

/// One parsed entry: name, value as stored (no expansion), 1-based line where it starts.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub value: String,
    pub line: usize,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .field("line", &self.line)
            .finish()
    }
}

/// A non-fatal remark about one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub name: String,
    pub message: String,
}

/// A line that cannot be parsed, with a sentence saying what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// A parsed file: entries in file order (duplicates collapsed, last wins, kept where the last
/// occurrence stands) and warnings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    pub entries: Vec<Entry>,
    pub warnings: Vec<Warning>,
}

/// True when `name` is a valid setting name: `^[A-Za-z_][A-Za-z0-9_]*$`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses the whole text; `Err` carries every bad line, not just the first.
pub fn parse(text: &str) -> Result<Parsed, Vec<LineError>> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = normalised.split('\n').collect();
    let mut parser = Parser {
        lines: &lines,
        next: 0,
        parsed: Parsed::default(),
        errors: Vec::new(),
        seen: HashMap::new(),
    };
    while parser.next < lines.len() {
        parser.line();
    }
    if parser.errors.is_empty() {
        Ok(parser.parsed)
    } else {
        Err(parser.errors)
    }
}

struct Parser<'a> {
    lines: &'a [&'a str],
    /// Index of the next physical line to read.
    next: usize,
    parsed: Parsed,
    errors: Vec<LineError>,
    /// Name → line of its current entry, for duplicate warnings.
    seen: HashMap<String, usize>,
}

impl Parser<'_> {
    fn line(&mut self) {
        let number = self.next + 1;
        let raw = self.lines[self.next];
        self.next += 1;
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return;
        }
        let rest = strip_export(trimmed);
        let Some((key, value_part)) = rest.split_once('=') else {
            let shown = shorten(rest.trim());
            // A conventional upper-case name is echoed; anything else may be a piece of a
            // secret (an unquoted PEM or base64 body line) and is not.
            let conventional = !rest.trim().chars().any(|c| c.is_ascii_lowercase());
            let message = if is_valid_name(rest.trim()) && conventional {
                format!(
                    "`{shown}` has no `=`; write `{shown}=value` (or `{shown}=` for an empty value)"
                )
            } else {
                // Not echoed: such a line is often a piece of a secret (an unquoted PEM body).
                "is not a KEY=value line; quote multi-line values with double quotes, or comment the line out with `#`".to_owned()
            };
            self.error(number, message);
            return;
        };
        let key = key.trim();
        if !is_valid_name(key) {
            // Echoed only when short and name-like: base64 with `=` padding is not a name.
            let message = if key.chars().count() <= 40
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-. ".contains(c))
                && !key.chars().any(|c| c.is_ascii_digit())
            {
                format!(
                    "`{key}` is not a valid name: use letters, digits and `_`, not starting with a digit"
                )
            } else {
                "the text before `=` is not a valid name: use letters, digits and `_`, not starting with a digit".to_owned()
            };
            self.error(number, message);
            return;
        }
        let value_part = value_part.trim_start_matches([' ', '\t']);
        let value = match value_part.chars().next() {
            Some('"') => self.quoted(number, key, &value_part[1..], '"'),
            Some('\'') => self.quoted(number, key, &value_part[1..], '\''),
            _ => Some(self.unquoted(number, key, value_part)),
        };
        if let Some(value) = value {
            self.push(number, key, value);
        }
    }

    fn unquoted(&mut self, number: usize, key: &str, value_part: &str) -> String {
        let value = strip_comment(value_part).trim();
        if looks_like_expansion(value) {
            self.warn(number, key, "contains `$…`, which is stored as written (no variable expansion); quote it with single quotes to silence this");
        }
        value.to_owned()
    }

    /// Reads a quoted value starting after the opening quote, across lines if needed.
    fn quoted(&mut self, number: usize, key: &str, first: &str, quote: char) -> Option<String> {
        let mut body = first.to_owned();
        loop {
            if let Some(end) = closing_quote(&body, quote) {
                let after = &body[end + 1..];
                let tail = after.trim_start();
                if !tail.is_empty() && !tail.starts_with('#') {
                    let message =
                        "unexpected text after the closing quote; only a `# comment` may follow"
                            .to_owned();
                    self.error(number, message);
                    return None;
                }
                let inner = &body[..end];
                let value = if quote == '"' {
                    unescape(inner)
                } else {
                    inner.to_owned()
                };
                self.quoted_warnings(number, key, &value);
                return Some(value);
            }
            if self.next >= self.lines.len() {
                self.error(
                    number,
                    format!(
                        "the {} quote opened here is never closed; add the closing {quote}",
                        quote_name(quote)
                    ),
                );
                return None;
            }
            body.push('\n');
            body.push_str(self.lines[self.next]);
            self.next += 1;
        }
    }

    fn quoted_warnings(&mut self, number: usize, key: &str, value: &str) {
        let doubled = ['"', '\'']
            .iter()
            .any(|q| value.len() >= 2 && value.starts_with(*q) && value.ends_with(*q));
        if doubled {
            self.warn(number, key, "the value is quoted twice (e.g. \"'x'\"); the inner quotes are kept as part of the value");
        }
        if value.ends_with(char::is_whitespace) || value.starts_with(char::is_whitespace) {
            self.warn(number, key, "the value starts or ends with whitespace or a newline, which is kept; remove it if it was pasted by accident");
        }
    }

    fn push(&mut self, number: usize, key: &str, value: String) {
        if let Some(previous) = self.seen.insert(key.to_owned(), number) {
            self.parsed.entries.retain(|e| e.name != key);
            self.warn(
                number,
                key,
                &format!("{key} is set again (first on line {previous}); the last value wins"),
            );
        }
        self.parsed.entries.push(Entry {
            name: key.to_owned(),
            value,
            line: number,
        });
    }

    fn warn(&mut self, line: usize, name: &str, message: &str) {
        self.parsed.warnings.push(Warning {
            line,
            name: name.to_owned(),
            message: message.to_owned(),
        });
    }

    fn error(&mut self, line: usize, message: String) {
        self.errors.push(LineError { line, message });
    }
}

fn strip_export(line: &str) -> &str {
    match line.strip_prefix("export") {
        Some(rest)
            if rest.starts_with([' ', '\t'])
                && rest
                    .trim_start()
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_') =>
        {
            rest.trim_start()
        }
        _ => line,
    }
}

/// Cuts an unquoted value at a `#` that starts the value or follows whitespace.
fn strip_comment(value: &str) -> &str {
    let mut previous_is_space = true;
    for (index, c) in value.char_indices() {
        if c == '#' && previous_is_space {
            return &value[..index];
        }
        previous_is_space = c == ' ' || c == '\t';
    }
    value
}

/// Byte index of the closing quote; in double quotes a backslash escapes the next character.
fn closing_quote(body: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (index, c) in body.char_indices() {
        if quote == '"' && escaped {
            escaped = false;
            continue;
        }
        if quote == '"' && c == '\\' {
            escaped = true;
        } else if c == quote {
            return Some(index);
        }
    }
    None
}

fn unescape(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('$') => out.push('$'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `${…}` or `$NAME` in an unquoted value.
fn looks_like_expansion(value: &str) -> bool {
    value.match_indices('$').any(|(index, _)| {
        value[index + 1..]
            .chars()
            .next()
            .is_some_and(|c| c == '{' || c.is_ascii_alphabetic() || c == '_')
    })
}

fn quote_name(quote: char) -> &'static str {
    if quote == '"' { "double" } else { "single" }
}

/// Caller text in messages: at most 40 characters, never a whole long value.
fn shorten(text: &str) -> String {
    let mut shown: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        shown.push('…');
    }
    shown
}

/// Writes pairs as a `.env` that [`parse`] reads back to the same values; quotes only where needed.
pub fn write<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (name, value) in entries {
        out.push_str(name);
        out.push('=');
        if needs_quotes(value) {
            out.push('"');
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '$' => out.push_str("\\$"),
                    other => out.push(other),
                }
            }
            out.push('"');
        } else {
            out.push_str(value);
        }
        out.push('\n');
    }
    out
}

fn needs_quotes(value: &str) -> bool {
    value.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '#' | '"' | '\'' | '\\' | '$' | '\u{FEFF}')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .entries
            .into_iter()
            .map(|e| (e.name, e.value))
            .collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_messy_real_world_file() {
        let text = "\u{FEFF}# Deploy keys\r\n\
            export FLY_API_TOKEN=fo1_abc123 # from fly tokens create\r\n\
            OPENROUTER_API_KEY = sk-or-v1-xyz\r\n\
            \r\n\
            EMPTY=\r\n\
            HASH_IN_VALUE=v#x\r\n\
            SINGLE='literal $HOME \\n'\r\n\
            DOUBLE=\"line1\\nline2 \\\"q\\\" \\$HOME\"  # comment\r\n\
            PEM=\"-----BEGIN PRIVATE KEY-----\r\n\
            MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\r\n\
            -----END PRIVATE KEY-----\"\r\n\
            \texport\tTABBED=yes\r\n";
        assert_eq!(
            map(text),
            pairs(&[
                ("FLY_API_TOKEN", "fo1_abc123"),
                ("OPENROUTER_API_KEY", "sk-or-v1-xyz"),
                ("EMPTY", ""),
                ("HASH_IN_VALUE", "v#x"),
                ("SINGLE", "literal $HOME \\n"),
                ("DOUBLE", "line1\nline2 \"q\" $HOME"),
                (
                    "PEM",
                    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
                ),
                ("TABBED", "yes"),
            ])
        );
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let text = "GOOD=1\nBARE_KEY\n9NAME=x\nA-B=1\nQ=\"unterminated\nMORE=2\n";
        let errors = parse(text).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5]);
        assert!(errors[0].message.contains("has no `=`"), "{errors:?}");
        assert!(errors[1].message.contains("not a valid name"));
        assert!(errors[3].message.contains("never closed"));
    }

    #[test]
    fn text_after_a_closing_quote_is_an_error_but_a_comment_is_fine() {
        assert_eq!(map("A=\"x\" # note\n"), pairs(&[("A", "x")]));
        let errors = parse("A=\"x\" y\n").unwrap_err();
        assert_eq!(errors[0].line, 1);
        assert!(errors[0].message.contains("after the closing quote"));
    }

    #[test]
    fn comments_need_whitespace_before_the_hash() {
        assert_eq!(
            map("A=v #x\nB=#all comment\nC=a#b\n"),
            pairs(&[("A", "v"), ("B", ""), ("C", "a#b")])
        );
    }

    #[test]
    fn duplicates_warn_and_the_last_wins_in_its_place() {
        let parsed = parse("A=1\nB=2\nA=3\n").unwrap();
        let got: Vec<(&str, &str, usize)> = parsed
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(got, [("B", "2", 2), ("A", "3", 3)]);
        assert_eq!(parsed.warnings.len(), 1);
        assert!(parsed.warnings[0].message.contains("first on line 1"));
    }

    #[test]
    fn warnings_for_expansion_double_quoting_and_whitespace() {
        let parsed =
            parse("A=${HOME}/x\nB=\"'quoted twice'\"\nC=\"trailing \"\nD='$ok'\nE=price$5\n")
                .unwrap();
        let lines: Vec<(usize, &str)> = parsed
            .warnings
            .iter()
            .map(|w| (w.line, w.name.as_str()))
            .collect();
        assert_eq!(lines, [(1, "A"), (2, "B"), (3, "C")]);
    }

    #[test]
    fn multi_line_values_advance_line_numbers() {
        let parsed = parse("A=\"1\n2\n3\"\nB=x\nbad\n").unwrap_err();
        assert_eq!(parsed[0].line, 5);
    }

    #[test]
    fn export_alone_is_a_key() {
        assert_eq!(map("export=1\n"), pairs(&[("export", "1")]));
    }

    #[test]
    fn debug_never_shows_values() {
        let entry = Entry {
            name: "K".into(),
            value: "sk-live-secret".into(),
            line: 1,
        };
        assert!(!format!("{entry:?}").contains("sk-live-secret"));
        let parsed = parse("K=sk-live-secret\n").unwrap();
        assert!(!format!("{parsed:?}").contains("sk-live-secret"));
    }

    #[test]
    fn write_quotes_only_where_needed() {
        let text = write([
            ("A", "plain"),
            ("B", ""),
            ("C", "two words"),
            ("D", "a\"b\\c$d\ne"),
        ]);
        assert_eq!(
            text,
            "A=plain\nB=\nC=\"two words\"\nD=\"a\\\"b\\\\c\\$d\\ne\"\n"
        );
        assert_eq!(
            map(&text),
            pairs(&[
                ("A", "plain"),
                ("B", ""),
                ("C", "two words"),
                ("D", "a\"b\\c$d\ne")
            ])
        );
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        fn names() -> impl Strategy<Value = String> {
            "[A-Za-z_][A-Za-z0-9_]{0,20}"
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn write_then_parse_gives_back_the_map(map in prop::collection::btree_map(names(), any::<String>(), 0..12)) {
                let text = write(map.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let parsed = parse(&text).expect("what write produces parses");
                let back: BTreeMap<String, String> = parsed.entries.into_iter().map(|e| (e.name, e.value)).collect();
                prop_assert_eq!(back, map);
            }

            #[test]
            fn tricky_values_round_trip(value in "[ \t\"'#$\\\\\r\n=a-z{}]{0,24}") {
                let text = write([("KEY", value.as_str())]);
                let parsed = parse(&text).expect("parses");
                prop_assert_eq!(&parsed.entries[0].value, &value);
            }

            #[test]
            fn parse_never_panics(text in any::<String>()) {
                let _ = parse(&text);
            }

            #[test]
            fn parse_never_panics_on_dotenv_like_text(text in "([A-Za-z_ =\"'#$\\\\\r\n\t]|export ){0,80}") {
                let _ = parse(&text);
            }
        }
    }
}
