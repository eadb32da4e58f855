//! Email addresses as Latchkey stores and compares them: one normaliser for every place an email
//! enters (sync, token by email, legacy and just-in-time tokens, `latchkey users`), so that two
//! spellings of one address are one address and an address that only looks like another is
//! refused rather than stored.
//!
//! Normal form: surrounding whitespace trimmed, Unicode NFKC, lower-cased (then NFKC again, so the
//! form is stable under re-normalisation). `\u{212A}ate@x` (KELVIN SIGN) becomes `kate@x`.
//!
//! Refused, with the reason and the code point (never the raw character, which may be invisible):
//! control characters (NUL included), invisible and format characters (zero-width, bidi
//! controls, soft hyphen, fillers, variation selectors), whitespace inside the address, non-ASCII
//! characters outside the UTS #39 identifier profile (symbols, emoji, historic scripts), and a
//! part of the address (the local part, or one domain label) that mixes scripts, e.g. Latin with
//! a Cyrillic look-alike. Syntax: exactly one `@`, a non-empty local part of RFC 5322 `atext`
//! characters and dots, a domain of non-empty labels of letters, digits and `-`, at most
//! [`MAX_CHARS`] characters in all.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use unicode_script::{Script, UnicodeScript};
use unicode_security::{GeneralSecurityProfile, MixedScript};

/// The longest address stored (the `email` columns are 320 characters: 64 + `@` + 255).
pub const MAX_CHARS: usize = 320;

/// Why an address is refused. Display text names code points as `U+XXXX`, never raw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("required: an address like ada@example.com")]
    Empty,
    #[error("longer than {MAX_CHARS} characters")]
    TooLong,
    #[error("contains the control character {0}; send the address without it")]
    Control(CodePoint),
    #[error(
        "contains the invisible character {0} (zero-width, bidi control, soft hyphen or similar); send the address without it"
    )]
    Invisible(CodePoint),
    #[error("contains whitespace ({0}) inside the address")]
    Whitespace(CodePoint),
    #[error("needs exactly one `@` (found {0})")]
    AtSigns(usize),
    #[error("has nothing before the `@`")]
    EmptyLocal,
    #[error("has nothing after the `@`")]
    EmptyDomain,
    #[error("has an empty label in the domain (two dots in a row, or a dot at either end)")]
    EmptyLabel,
    #[error("contains {0}, which an address cannot carry{1}")]
    Disallowed(CodePoint, &'static str),
    #[error("mixes {scripts} letters in {part}: a look-alike of another address")]
    MixedScripts { part: String, scripts: String },
}

/// A character named by its code point, e.g. `U+200B`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodePoint(pub char);

impl std::fmt::Display for CodePoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "U+{:04X}", self.0 as u32)
    }
}

/// Trims, checks and normalises an address; the one way an email becomes comparable.
pub fn normalise(raw: &str) -> Result<String, EmailError> {
    // Four bytes per character at most: anything longer cannot fit, whatever it normalises to.
    if raw.len() > MAX_CHARS * 4 + 64 {
        return Err(EmailError::TooLong);
    }
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(EmailError::Empty);
    }
    trimmed.chars().try_for_each(visible)?;
    let lowered: String = trimmed.nfkc().collect::<String>().to_lowercase();
    let email: String = lowered.nfkc().collect();
    if email.chars().count() > MAX_CHARS {
        return Err(EmailError::TooLong);
    }
    let (local, domain) = split(&email)?;
    local.chars().try_for_each(|c| allowed(c, is_atext))?;
    domain
        .chars()
        .try_for_each(|c| allowed(c, is_domain_char))?;
    single_script(local, "the part before the @")?;
    for (index, label) in domain.split('.').enumerate() {
        if label.is_empty() {
            return Err(EmailError::EmptyLabel);
        }
        single_script(label, &format!("label {} of the domain", index + 1))?;
    }
    Ok(email)
}

/// Refuses characters a reader cannot see or that break the line.
fn visible(c: char) -> Result<(), EmailError> {
    match c.general_category() {
        GeneralCategory::Control => Err(EmailError::Control(CodePoint(c))),
        GeneralCategory::Format => Err(EmailError::Invisible(CodePoint(c))),
        _ if is_invisible_non_format(c) => Err(EmailError::Invisible(CodePoint(c))),
        _ if c.is_whitespace() => Err(EmailError::Whitespace(CodePoint(c))),
        _ => Ok(()),
    }
}

/// Default-ignorable code points that are not format characters: the combining grapheme
/// joiner, the Hangul fillers, and the variation selectors.
fn is_invisible_non_format(c: char) -> bool {
    matches!(
        c,
        '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FFA0}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

fn split(email: &str) -> Result<(&str, &str), EmailError> {
    let ats = email.matches('@').count();
    if ats != 1 {
        return Err(EmailError::AtSigns(ats));
    }
    let (local, domain) = email.split_once('@').ok_or(EmailError::AtSigns(0))?;
    if local.is_empty() {
        return Err(EmailError::EmptyLocal);
    }
    if domain.is_empty() {
        return Err(EmailError::EmptyDomain);
    }
    Ok((local, domain))
}

/// ASCII is held to `ascii_ok`; anything else must be allowed in identifiers by UTS #39 (which
/// leaves out symbols, emoji, private-use and unassigned code points and historic scripts).
fn allowed(c: char, ascii_ok: fn(char) -> bool) -> Result<(), EmailError> {
    let ok = if c.is_ascii() {
        ascii_ok(c)
    } else {
        c.identifier_allowed()
    };
    if ok {
        return Ok(());
    }
    let hint = if c.is_ascii() {
        " (letters, digits and ! # $ % & ' * + - / = ? ^ _ ` { | } ~ . before the @; letters, digits, - and . after it)"
    } else {
        " (a symbol, emoji, or a character no current script uses in names)"
    };
    Err(EmailError::Disallowed(CodePoint(c), hint))
}

/// RFC 5322 `atext`, plus the dot that separates atoms.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
}

fn is_domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.'
}

/// One part of an address must be written in one script (UTS #39 single-script, so Japanese
/// mixing Han and Kana is one script, and digits or `-` go with any).
fn single_script(part: &str, name: &str) -> Result<(), EmailError> {
    if part.is_single_script() {
        return Ok(());
    }
    let mut scripts: Vec<&'static str> = Vec::new();
    for c in part.chars() {
        let script = c.script();
        if matches!(script, Script::Common | Script::Inherited | Script::Unknown) {
            continue;
        }
        if !scripts.contains(&script.full_name()) {
            scripts.push(script.full_name());
        }
    }
    Err(EmailError::MixedScripts {
        part: name.to_owned(),
        scripts: join_and(&scripts),
    })
}

fn join_and(names: &[&str]) -> String {
    match names {
        [] => "several scripts'".to_owned(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_folds_case_and_compatibility_forms() {
        assert_eq!(normalise("  Ada@Example.COM ").unwrap(), "ada@example.com");
        // KELVIN SIGN folds to k, so it cannot stand in for another user's address.
        assert_eq!(normalise("\u{212A}ate@x.io").unwrap(), "kate@x.io");
        // Full-width letters and the full-width @ are the ASCII ones.
        assert_eq!(
            normalise("\u{FF21}da\u{FF20}example.com").unwrap(),
            "ada@example.com"
        );
        // Precomposed and decomposed é are one address.
        assert_eq!(
            normalise("re\u{0301}my@example.fr").unwrap(),
            normalise("r\u{00E9}my@example.fr").unwrap()
        );
        assert_eq!(
            normalise("ΑΘΗΝΑ@παράδειγμα.gr").unwrap(),
            "αθηνα@παράδειγμα.gr"
        );
        assert_eq!(normalise("用户@例子.广告").unwrap(), "用户@例子.广告");
        assert_eq!(
            normalise("o'brien+tag@sub.example-site.co.uk").unwrap(),
            "o'brien+tag@sub.example-site.co.uk"
        );
    }

    #[test]
    fn normal_form_is_stable() {
        for raw in [
            "\u{212A}ate@x.io",
            "\u{0130}stanbul@example.com",
            "STRASSE@example.de",
            "ǅemal@example.com",
            "ﬁle@example.com",
        ] {
            let once = normalise(raw).unwrap();
            assert_eq!(normalise(&once).unwrap(), once, "{raw}");
        }
    }

    proptest::proptest! {
        /// Any input: no panic, and an accepted address is its own normal form.
        #[test]
        fn never_panics_and_accepted_forms_are_fixed_points(raw in concat!(
            "\\PC{0,40}@\\PC{0,40}|\\PC{0,80}|",
            "[a-zA-Z0-9.+\u{212A}\u{FF21}-\u{FF3A}\u{00C0}-\u{017F}\u{0130}]{1,20}@[a-zA-Z\u{0400}-\u{04FF}\u{03B1}-\u{03C9}]{1,12}\\.[a-z]{2,4}"
        )) {
            if let Ok(email) = normalise(&raw) {
                proptest::prop_assert_eq!(normalise(&email), Ok(email.clone()));
                proptest::prop_assert!(email.chars().count() <= MAX_CHARS);
            }
        }
    }

    #[test]
    fn invisible_and_control_characters_are_named_by_code_point() {
        let cases = [
            ("a\u{0}b@x.io", "U+0000", "control"),
            ("ada@x.io\u{7F}", "U+007F", "control"),
            ("a\u{200B}da@x.io", "U+200B", "invisible"),
            ("ada@exa\u{200D}mple.com", "U+200D", "invisible"),
            ("ada@\u{202E}moc.x", "U+202E", "invisible"),
            ("a\u{00AD}da@x.io", "U+00AD", "invisible"),
            ("\u{FEFF}ada@x.io", "U+FEFF", "invisible"),
            ("ad\u{3164}a@x.io", "U+3164", "invisible"),
            ("ada\u{FE0F}@x.io", "U+FE0F", "invisible"),
            ("a da@x.io", "U+0020", "whitespace"),
            ("ada@x\u{00A0}io", "U+00A0", "whitespace"),
        ];
        for (raw, code, kind) in cases {
            let message = normalise(raw).unwrap_err().to_string();
            assert!(message.contains(code), "{raw:?}: {message}");
            assert!(message.contains(kind), "{raw:?}: {message}");
            if let Some(hidden) = raw.chars().find(|c| !c.is_ascii_graphic() && *c != ' ') {
                assert!(!message.contains(hidden), "{raw:?}: {message}");
            }
        }
    }

    #[test]
    fn look_alikes_mixing_scripts_are_refused() {
        // Cyrillic а (U+0430) in a Latin word.
        let error = normalise("p\u{0430}ypal@example.com").unwrap_err();
        assert_eq!(
            error,
            EmailError::MixedScripts {
                part: "the part before the @".into(),
                scripts: "Latin and Cyrillic".into(),
            }
        );
        let error = normalise("ada@ex\u{0430}mple.com").unwrap_err();
        assert!(
            error.to_string().contains("label 1 of the domain"),
            "{error}"
        );
        // Greek omicron in a Latin label.
        assert!(matches!(
            normalise("ada@g\u{03BF}\u{03BF}gle.com"),
            Err(EmailError::MixedScripts { .. })
        ));
        // Separate labels may be written in separate scripts; Japanese mixes Han and Kana.
        assert!(normalise("ivan@пример.com").is_ok());
        assert!(normalise("やまだ太郎@example.jp").is_ok());
    }

    #[test]
    fn syntax_is_checked() {
        assert_eq!(normalise(""), Err(EmailError::Empty));
        assert_eq!(normalise("   "), Err(EmailError::Empty));
        assert_eq!(normalise("not-an-email"), Err(EmailError::AtSigns(0)));
        assert_eq!(normalise("a@b@c.io"), Err(EmailError::AtSigns(2)));
        assert_eq!(normalise("@x.io"), Err(EmailError::EmptyLocal));
        assert_eq!(normalise("ada@"), Err(EmailError::EmptyDomain));
        assert_eq!(normalise("ada@x..io"), Err(EmailError::EmptyLabel));
        assert_eq!(normalise("ada@x.io."), Err(EmailError::EmptyLabel));
        assert!(matches!(
            normalise("<ada>@x.io"),
            Err(EmailError::Disallowed(CodePoint('<'), _))
        ));
        assert!(matches!(
            normalise("ada@x_y.io"),
            Err(EmailError::Disallowed(CodePoint('_'), _))
        ));
        assert!(matches!(
            normalise("ada\u{1F600}@x.io"),
            Err(EmailError::Disallowed(CodePoint('\u{1F600}'), _))
        ));
        let longest = format!("{}@{}.io", "a".repeat(64), "b".repeat(MAX_CHARS - 68));
        assert_eq!(longest.chars().count(), MAX_CHARS);
        assert!(normalise(&longest).is_ok());
        assert_eq!(normalise(&format!("b{longest}")), Err(EmailError::TooLong));
        assert_eq!(normalise(&"a".repeat(100_000)), Err(EmailError::TooLong));
    }
}
