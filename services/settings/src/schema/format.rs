//! A declared setting's format: a `pattern` (the `regex` crate: linear time, size-limited), a
//! length range, or a named preset. A value that breaks it is reported by the rule's name and
//! what the rule expects — never by the value.

use regex::{Regex, RegexBuilder};

/// Most bytes a compiled pattern may take, so a schema cannot make settings build a huge automaton.
pub const PATTERN_SIZE_LIMIT: usize = 256 * 1024;
/// Longest pattern text accepted in a schema.
pub const MAX_PATTERN_CHARS: usize = 1024;

/// The named formats apps arrive with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// OpenRouter: `sk-or-v1-` and 64 lowercase hex digits.
    OpenrouterKey,
    /// Fly.io: a `fo1_…` token or a `FlyV1 …` macaroon.
    FlyToken,
    /// An absolute `http://` or `https://` URL with a host.
    Url,
    /// A PEM block: `-----BEGIN X-----` … `-----END X-----`.
    Pem,
}

impl Preset {
    /// Every preset, in the order the docs list them.
    pub const ALL: [Preset; 4] = [
        Preset::OpenrouterKey,
        Preset::FlyToken,
        Preset::Url,
        Preset::Pem,
    ];

    /// The name a schema uses.
    pub fn name(self) -> &'static str {
        match self {
            Preset::OpenrouterKey => "openrouter_key",
            Preset::FlyToken => "fly_token",
            Preset::Url => "url",
            Preset::Pem => "pem",
        }
    }

    /// The preset a schema names, if it exists.
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }

    /// What a value must look like, for hints and violations (never a value).
    pub fn expects(self) -> &'static str {
        match self {
            Preset::OpenrouterKey => "sk-or-v1- followed by 64 lowercase hex digits",
            Preset::FlyToken => "a Fly.io token starting with fo1_, or with FlyV1 and a space",
            Preset::Url => "an http:// or https:// URL with a host and no spaces",
            Preset::Pem => "a PEM block from -----BEGIN …----- to -----END …-----",
        }
    }

    /// The preset's check, linear in the value's length.
    pub fn accepts(self, value: &str) -> bool {
        match self {
            Preset::OpenrouterKey => value.strip_prefix("sk-or-v1-").is_some_and(|hex| {
                hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            }),
            Preset::FlyToken => {
                (value.starts_with("fo1_") || value.starts_with("FlyV1 "))
                    && !value.contains(['\n', '\r'])
            }
            Preset::Url => url_ok(value),
            Preset::Pem => pem_ok(value),
        }
    }
}

fn url_ok(value: &str) -> bool {
    let Some(rest) = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
    else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    !host.is_empty()
        && !host.starts_with(':')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn pem_ok(value: &str) -> bool {
    let text = value.trim();
    let Some(after) = text.strip_prefix("-----BEGIN ") else {
        return false;
    };
    let Some((label, rest)) = after.split_once("-----") else {
        return false;
    };
    let end = format!("-----END {label}-----");
    let Some(body) = rest.strip_suffix(end.as_str()) else {
        return false;
    };
    !label.is_empty()
        && !body.trim().is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=:-, \r\n\t".contains(&b))
}

/// A compiled `pattern`, kept with its text (the text is shown to users as a hint).
#[derive(Debug, Clone)]
pub struct Pattern {
    pub text: String,
    regex: Regex,
}

impl Pattern {
    /// Compiles `text` within [`PATTERN_SIZE_LIMIT`]; the error says why, in one line.
    pub fn compile(text: &str) -> Result<Pattern, String> {
        if text.chars().count() > MAX_PATTERN_CHARS {
            return Err(format!("is longer than {MAX_PATTERN_CHARS} characters"));
        }
        RegexBuilder::new(text)
            .size_limit(PATTERN_SIZE_LIMIT)
            .dfa_size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map(|regex| Pattern {
                text: text.to_owned(),
                regex,
            })
            .map_err(|e| {
                let message = e.to_string();
                let last = message.lines().last().unwrap_or("does not compile").trim();
                format!("does not compile: {last}")
            })
    }

    /// Whether the value matches (anchor the pattern with `^…$` to match it whole).
    pub fn accepts(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

/// Everything a declared value must satisfy; every part optional.
#[derive(Debug, Clone, Default)]
pub struct Format {
    pub pattern: Option<Pattern>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub preset: Option<Preset>,
}

/// The rule a value broke, named as the schema names it, and what it expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// `pattern`, `min_length`, `max_length` or `preset`.
    pub rule: &'static str,
    /// What the rule expects, e.g. `sk-or-v1- followed by 64 lowercase hex digits`.
    pub expects: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "breaks the `{}` rule: expected {}",
            self.rule, self.expects
        )
    }
}

impl Format {
    /// Whether the format constrains anything.
    pub fn is_empty(&self) -> bool {
        self.pattern.is_none()
            && self.min_length.is_none()
            && self.max_length.is_none()
            && self.preset.is_none()
    }

    /// The first rule the value breaks (lengths in characters), if any.
    pub fn check(&self, value: &str) -> Result<(), Broken> {
        let length = value.chars().count();
        if let Some(min) = self.min_length.filter(|min| length < *min) {
            return Err(Broken {
                rule: "min_length",
                expects: format!("at least {min} characters"),
            });
        }
        if let Some(max) = self.max_length.filter(|max| length > *max) {
            return Err(Broken {
                rule: "max_length",
                expects: format!("at most {max} characters"),
            });
        }
        if let Some(preset) = self.preset.filter(|p| !p.accepts(value)) {
            return Err(Broken {
                rule: "preset",
                expects: format!("{} ({})", preset.expects(), preset.name()),
            });
        }
        if let Some(pattern) = self.pattern.as_ref().filter(|p| !p.accepts(value)) {
            return Err(Broken {
                rule: "pattern",
                expects: format!("a value matching {}", pattern.text),
            });
        }
        Ok(())
    }

    /// One line a form shows under the field.
    pub fn hint(&self) -> String {
        let mut parts = Vec::new();
        if let Some(preset) = self.preset {
            parts.push(preset.expects().to_owned());
        }
        if let Some(pattern) = &self.pattern {
            parts.push(format!("matches {}", pattern.text));
        }
        match (self.min_length, self.max_length) {
            (Some(min), Some(max)) => parts.push(format!("{min}–{max} characters")),
            (Some(min), None) => parts.push(format!("at least {min} characters")),
            (None, Some(max)) => parts.push(format!("at most {max} characters")),
            (None, None) => {}
        }
        parts.join("; ")
    }
}
