//! The `.env` grammar of the README ("The `.env` grammar"), with no I/O: [`parse`] reads a pasted
//! file into entries, warnings and every bad line (with its number and a sentence saying how to
//! fix it); [`write`] is the reverse, quoting only where needed, so `parse(write(map)) == map`.
//!
//! Where node dotenv, dotenvy, python-dotenv and Compose disagree, we decide:
//! `export ` prefix allowed; only `=` separates (spaces around it allowed; a YAML-style `KEY: value`
//! is an error with its own hint); keys `[A-Za-z_][A-Za-z0-9_]*`; `#` starts a comment at the start
//! of a line or after whitespace in an unquoted value (`A=v#x` keeps `v#x`); unquoted values are
//! trimmed and taken as written (backticks included, with a warning); single quotes are literal;
//! double quotes take `\n \r \t \\ \" \$` (any other backslash is kept as written) and may span
//! lines; `"""` opens a literal multi-line value closed by the next `"""` (the form
//! `fly secrets import` reads); after a closing quote only whitespace and a `# comment` may follow;
//! `KEY=` is empty; CRLF and a leading BOM are accepted; duplicate keys: last wins, with a warning;
//! no variable expansion.
//!
//! Every input costs time linear in its size: one forward scan over the lines, quoted values
//! read once and cut off at the value limit, duplicates found through a map.

use std::collections::HashMap;

mod lines;
mod quoted;
mod write;

pub use write::write;

use lines::Lines;
use quoted::Quote;

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
/// occurrence stands) and warnings (the first [`Options::max_warnings`] of them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    pub entries: Vec<Entry>,
    pub warnings: Vec<Warning>,
    /// Warnings beyond [`Options::max_warnings`], counted but not kept.
    pub unlisted_warnings: usize,
}

/// Why [`parse_with`] gave no entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Some lines cannot be read: the first [`Options::max_errors`] of them, and how many there
    /// are in all.
    BadLines {
        errors: Vec<LineError>,
        total: usize,
    },
    /// [`Options::interrupted`] answered true (a deadline passed, or the caller went away).
    Interrupted,
}

/// How far [`parse_with`] goes. [`Options::default`] keeps everything and never stops early.
pub struct Options<'a> {
    /// The largest value, in bytes after unescaping: a quoted value still open past it stops
    /// being read there, with an error for its line, rather than consuming the rest of the text.
    pub max_value_bytes: usize,
    /// Bad lines kept in full; the rest are only counted.
    pub max_errors: usize,
    /// Warnings kept in full; the rest are only counted.
    pub max_warnings: usize,
    /// Asked every [`CHECK_EVERY_LINES`] lines; true stops the parse with [`Failure::Interrupted`].
    pub interrupted: &'a (dyn Fn() -> bool + Sync),
}

/// How often (in lines) [`Options::interrupted`] is asked.
pub const CHECK_EVERY_LINES: usize = 1024;

/// The value limit the parser applies by default: the service's (16 KiB).
pub const DEFAULT_MAX_VALUE_BYTES: usize = crate::validate::limits::MAX_VALUE_BYTES;

fn never() -> bool {
    false
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_errors: usize::MAX,
            max_warnings: usize::MAX,
            interrupted: &never,
        }
    }
}

/// True when `name` is a valid setting name: `^[A-Za-z_][A-Za-z0-9_]*$`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses the whole text with default [`Options`]; `Err` carries every bad line.
pub fn parse(text: &str) -> Result<Parsed, Vec<LineError>> {
    match parse_with(text, &Options::default()) {
        Ok(parsed) => Ok(parsed),
        Err(Failure::BadLines { errors, .. }) => Err(errors),
        Err(Failure::Interrupted) => unreachable!("the default options never interrupt"),
    }
}

/// Parses the whole text within `options`' limits.
pub fn parse_with(text: &str, options: &Options<'_>) -> Result<Parsed, Failure> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut parser = Parser {
        lines: Lines::new(text),
        options,
        interrupted: false,
        slots: Vec::new(),
        warnings: Vec::new(),
        unlisted_warnings: 0,
        errors: Vec::new(),
        error_count: 0,
        seen: HashMap::new(),
        open_backtick: None,
    };
    while let Some((number, raw)) = parser.next_line() {
        parser.line(number, raw);
    }
    if parser.interrupted {
        return Err(Failure::Interrupted);
    }
    if parser.error_count > 0 {
        return Err(Failure::BadLines {
            errors: parser.errors,
            total: parser.error_count,
        });
    }
    Ok(Parsed {
        entries: parser.slots.into_iter().flatten().collect(),
        warnings: parser.warnings,
        unlisted_warnings: parser.unlisted_warnings,
    })
}

struct Parser<'t, 'o> {
    lines: Lines<'t>,
    options: &'o Options<'o>,
    interrupted: bool,
    /// Entries in file order; a slot is emptied when a later line sets the same name.
    slots: Vec<Option<Entry>>,
    warnings: Vec<Warning>,
    unlisted_warnings: usize,
    errors: Vec<LineError>,
    error_count: usize,
    /// Name → (line it was first set on, index of its current slot).
    seen: HashMap<String, (usize, usize)>,
    /// The line of an unquoted value that opened a backtick and did not close it: the bad
    /// lines after it are most likely the rest of a multi-line backtick value, and say so.
    open_backtick: Option<usize>,
}

impl<'t> Parser<'t, '_> {
    /// The next physical line, or None at the end or when told to stop.
    fn next_line(&mut self) -> Option<(usize, &'t str)> {
        if self.interrupted {
            return None;
        }
        let (number, line) = self.lines.next()?;
        if number % CHECK_EVERY_LINES == 0 && (self.options.interrupted)() {
            self.interrupted = true;
            return None;
        }
        Some((number, line))
    }

    fn line(&mut self, number: usize, raw: &'t str) {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return;
        }
        let rest = strip_export(trimmed);
        let Some((key, value_part)) = rest.split_once('=') else {
            let message = no_equals_message(rest.trim());
            self.bad_line(number, rest, message);
            return;
        };
        let key = key.trim();
        if !is_valid_name(key) {
            let message = match yaml_style_name(rest) {
                Some(name) => yaml_message(name),
                None => invalid_name_message(key),
            };
            self.bad_line(number, rest, message);
            return;
        }
        self.open_backtick = None;
        let value_part = value_part.trim_start_matches([' ', '\t']);
        let value = if let Some(body) = value_part.strip_prefix("\"\"\"") {
            self.triple_quoted(number, key, body)
        } else if let Some(body) = value_part.strip_prefix('"') {
            self.quoted(number, key, body, Quote::Double)
        } else if let Some(body) = value_part.strip_prefix('\'') {
            self.quoted(number, key, body, Quote::Single)
        } else {
            Some(self.unquoted(number, key, value_part))
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
        if value.starts_with('`') {
            self.warn(number, key, "starts with a backtick, which Latchkey keeps as part of the value (node's dotenv treats backticks as quotes and strips them); use double quotes if the backticks are not part of the value");
            if value.len() == 1 || !value.ends_with('`') {
                self.open_backtick = Some(number);
            }
        }
        if value.contains('#') {
            self.warn(number, key, "contains `#` with no space before it, which is kept as part of the value (node's and Ruby's dotenv would cut the value there as a comment); quote the value to silence this");
        }
        value.to_owned()
    }

    fn push(&mut self, number: usize, key: &str, value: String) {
        let slot = self.slots.len();
        self.slots.push(Some(Entry {
            name: key.to_owned(),
            value,
            line: number,
        }));
        match self.seen.get_mut(key) {
            Some((first, current)) => {
                self.slots[*current] = None;
                *current = slot;
                let first = *first;
                // Formatted only when kept: 30,000 repeats cost a count, not 30,000 strings.
                if self.warnings.len() < self.options.max_warnings {
                    let message =
                        format!("{key} is set again (first on line {first}); the last value wins");
                    self.warn(number, key, &message);
                } else {
                    self.unlisted_warnings += 1;
                }
            }
            None => {
                self.seen.insert(key.to_owned(), (number, slot));
            }
        }
    }

    /// An unreadable line; after an unclosed backtick, the message says what went wrong there.
    fn bad_line(&mut self, number: usize, rest: &str, message: String) {
        let message = match self.open_backtick {
            Some(opened) => format!(
                "is not a KEY=value line: it looks like the rest of the backtick value opened on line {opened}, but backticks are not quotes here; put a multi-line value in double quotes"
            ),
            None => message,
        };
        if rest.contains('`') {
            self.open_backtick = None;
        }
        self.error(number, message);
    }

    fn warn(&mut self, line: usize, name: &str, message: &str) {
        if self.warnings.len() >= self.options.max_warnings {
            self.unlisted_warnings += 1;
            return;
        }
        self.warnings.push(Warning {
            line,
            name: name.to_owned(),
            message: message.to_owned(),
        });
    }

    fn error(&mut self, line: usize, message: String) {
        self.error_count += 1;
        if self.errors.len() < self.options.max_errors {
            self.errors.push(LineError { line, message });
        }
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

/// The message for a line without `=`. A conventional upper-case name is echoed; anything else
/// may be a piece of a secret (an unquoted PEM or base64 body line) and is not.
fn no_equals_message(rest: &str) -> String {
    if let Some(name) = yaml_style_name(rest) {
        return yaml_message(name);
    }
    let conventional = !rest.chars().any(|c| c.is_ascii_lowercase());
    if is_valid_name(rest) && conventional {
        let shown = shorten(rest);
        format!("`{shown}` has no `=`; write `{shown}=value` (or `{shown}=` for an empty value)")
    } else {
        "is not a KEY=value line; quote multi-line values with double quotes, or comment the line out with `#`".to_owned()
    }
}

/// The name of a YAML-style `NAME: value` line (the name before the first `:` is valid).
fn yaml_style_name(rest: &str) -> Option<&str> {
    let (name, _) = rest.split_once(':')?;
    let name = name.trim_end();
    is_valid_name(name).then_some(name)
}

fn yaml_message(name: &str) -> String {
    let shown = shorten(name);
    format!(
        "`{shown}:` is a YAML-style separator; a .env line uses `=`: write `{shown}=value` (quote the value if it has spaces)"
    )
}

/// Echoed only when short and name-like: base64 with `=` padding is not a name.
fn invalid_name_message(key: &str) -> String {
    let echo = key.chars().count() <= 40
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-. ".contains(c))
        && !key.chars().any(|c| c.is_ascii_digit());
    if echo {
        format!(
            "`{key}` is not a valid name: use letters, digits and `_`, not starting with a digit"
        )
    } else {
        "the text before `=` is not a valid name: use letters, digits and `_`, not starting with a digit".to_owned()
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

/// `${…}` or `$NAME` in an unquoted value.
fn looks_like_expansion(value: &str) -> bool {
    value.match_indices('$').any(|(index, _)| {
        value[index + 1..]
            .chars()
            .next()
            .is_some_and(|c| c == '{' || c.is_ascii_alphabetic() || c == '_')
    })
}

/// Caller text in messages: at most 40 characters, never a whole long value.
fn shorten(text: &str) -> String {
    let mut shown: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests;
