//! The reverse of parsing: pairs as a `.env` that [`super::parse`] reads back to the same values.

/// Writes pairs as a `.env` that [`super::parse`] reads back to the same values (values within
/// the value limit, as every stored value is); quotes only where needed.
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

/// Unquoted, a value must survive trimming, comments and quote detection unchanged.
fn needs_quotes(value: &str) -> bool {
    value.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '#' | '"' | '\'' | '\\' | '$' | '`' | '\u{FEFF}')
    })
}
