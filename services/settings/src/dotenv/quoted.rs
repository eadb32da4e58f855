//! Quoted values: single (literal), double (a few escapes) and `"""` (literal, the form
//! `fly secrets import` reads). Each reads forward from the opening quote across lines, looking
//! at every character once, and stops at the value limit instead of consuming the rest of the
//! text when the closing quote is missing.

use super::Parser;

/// Which quotes enclose a value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Quote {
    Single,
    Double,
    Triple,
}

impl Quote {
    fn name(self) -> &'static str {
        match self {
            Quote::Single => "single quote",
            Quote::Double => "double quote",
            Quote::Triple => "`\"\"\"`",
        }
    }

    fn closing(self) -> &'static str {
        match self {
            Quote::Single => "'",
            Quote::Double => "\"",
            Quote::Triple => "\"\"\"",
        }
    }
}

impl<'t> Parser<'t, '_> {
    /// Reads a single- or double-quoted value from just after its opening quote.
    pub(super) fn quoted(
        &mut self,
        number: usize,
        key: &str,
        first: &'t str,
        quote: Quote,
    ) -> Option<String> {
        let delimiter = if quote == Quote::Single { '\'' } else { '"' };
        let mut value = String::new();
        let mut rest = first;
        let mut escaped = false;
        let mut expansion = false;
        loop {
            for (index, c) in rest.char_indices() {
                if escaped {
                    escaped = false;
                    push_escape(&mut value, c);
                } else if quote == Quote::Double && c == '\\' {
                    escaped = true;
                } else if c == delimiter {
                    if expansion {
                        self.warn(number, key, "contains `$…` inside double quotes, which is stored as written (no variable expansion; Compose, Ruby and python-dotenv would expand it); write `\\$` or use single quotes to silence this");
                    }
                    return self.closed(number, key, value, &rest[index + 1..], quote);
                } else {
                    if quote == Quote::Double && c == '$' {
                        expansion |= starts_a_name(&rest[index + 1..]);
                    }
                    value.push(c);
                }
                if value.len() > self.options.max_value_bytes {
                    self.too_long(number, quote);
                    return None;
                }
            }
            let Some((_, line)) = self.next_line() else {
                self.never_closed(number, quote);
                return None;
            };
            // A backslash before a line break is not an escape: both are kept.
            if std::mem::take(&mut escaped) {
                value.push('\\');
            }
            value.push('\n');
            if value.len() > self.options.max_value_bytes {
                self.too_long(number, quote);
                return None;
            }
            rest = line;
        }
    }

    /// Reads a `"""` value from just after the opening `"""`: literal text up to the next `"""`.
    pub(super) fn triple_quoted(
        &mut self,
        number: usize,
        key: &str,
        first: &'t str,
    ) -> Option<String> {
        let mut value = String::new();
        let mut rest = first;
        loop {
            let end = rest.find("\"\"\"");
            let piece = &rest[..end.unwrap_or(rest.len())];
            if value.len() + piece.len() > self.options.max_value_bytes {
                self.too_long(number, Quote::Triple);
                return None;
            }
            value.push_str(piece);
            if let Some(end) = end {
                return self.closed(number, key, value, &rest[end + 3..], Quote::Triple);
            }
            let Some((_, line)) = self.next_line() else {
                self.never_closed(number, Quote::Triple);
                return None;
            };
            value.push('\n');
            rest = line;
        }
    }

    /// After the closing quote: only whitespace and a `# comment` may follow.
    fn closed(
        &mut self,
        number: usize,
        key: &str,
        value: String,
        after: &str,
        quote: Quote,
    ) -> Option<String> {
        let tail = after.trim_start();
        if !tail.is_empty() && !tail.starts_with('#') {
            self.error(number, after_quote_message(quote, &value, tail));
            return None;
        }
        self.quoted_warnings(number, key, &value, quote);
        Some(value)
    }

    fn quoted_warnings(&mut self, number: usize, key: &str, value: &str, quote: Quote) {
        if quote == Quote::Single && value.ends_with('\\') {
            self.warn(number, key, "the single-quoted value ends with a backslash, which is kept: inside single quotes `\\'` does not escape the quote, it ends the value; use double quotes for a value with a `'`");
        }
        let doubled = ['"', '\'']
            .iter()
            .any(|q| value.len() >= 2 && value.starts_with(*q) && value.ends_with(*q));
        if doubled {
            self.warn(number, key, "the value is quoted twice (e.g. \"'x'\"); the inner quotes are kept as part of the value");
        }
        if quote == Quote::Triple && value.starts_with('\n') {
            self.warn(number, key, "the value starts with a line break because it begins on the line after `\"\"\"` (kept, as `fly secrets import` keeps it); start the value right after `\"\"\"` if the line break is not wanted");
        } else if value.ends_with(char::is_whitespace) || value.starts_with(char::is_whitespace) {
            self.warn(number, key, "the value starts or ends with whitespace or a newline, which is kept; remove it if it was pasted by accident");
        }
    }

    fn too_long(&mut self, number: usize, quote: Quote) {
        let message = format!(
            "the {} opened here is not closed within {} bytes (the most a value may hold): the value is too long or its closing {} is missing; reading stopped on line {}, and the lines after it were read as new lines",
            quote.name(),
            self.options.max_value_bytes,
            quote.closing(),
            self.lines.number(),
        );
        self.error(number, message);
    }

    fn never_closed(&mut self, number: usize, quote: Quote) {
        let message = format!(
            "the {} opened here is never closed; add the closing {}",
            quote.name(),
            quote.closing()
        );
        self.error(number, message);
    }
}

/// True when `rest` (the text after a `$`) starts a `{` or a name, as in `${X}` or `$X`.
fn starts_a_name(rest: &str) -> bool {
    rest.chars()
        .next()
        .is_some_and(|c| c == '{' || c.is_ascii_alphabetic() || c == '_')
}

/// Inside double quotes: `\n \r \t \\ \" \$` are escapes; any other backslash is kept as written.
fn push_escape(value: &mut String, c: char) {
    match c {
        'n' => value.push('\n'),
        'r' => value.push('\r'),
        't' => value.push('\t'),
        '\\' | '"' | '$' => value.push(c),
        other => {
            value.push('\\');
            value.push(other);
        }
    }
}

/// Text after a closing quote, with a hint for the usual cause: a quote inside the value.
fn after_quote_message(quote: Quote, value: &str, tail: &str) -> String {
    match quote {
        Quote::Single if tail.contains('\'') || value.ends_with('\\') => {
            "a single-quoted value cannot hold a `'` (inside single quotes neither `\\'` nor `'\\''` works); use double quotes: VAR=\"Let's go!\"".to_owned()
        }
        Quote::Double if tail.contains('"') => {
            "a `\"` inside a double-quoted value must be written `\\\"` (or put the whole value in single quotes); only a `# comment` may follow the closing quote".to_owned()
        }
        _ => "unexpected text after the closing quote; only a `# comment` may follow".to_owned(),
    }
}
