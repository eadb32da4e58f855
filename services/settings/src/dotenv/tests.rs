//! The parser's unit tests: the grammar, every hint, linear cost on pathological input.

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
        parse("A=${HOME}/x\nB=\"'quoted twice'\"\nC=\"trailing \"\nD='$ok'\nE=price$5\n").unwrap();
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

fn bad_lines(text: &str) -> Vec<LineError> {
    parse(text).unwrap_err()
}

#[test]
fn fly_triple_quotes_span_lines_literally() {
    let text = "FOO=BAR\nMULTI=\"\"\"SOMETHING\nANOTHER \\n LINE\n\nENDSHERE\"\"\"\nNEXT=what\nPEM=\"\"\"\n-----BEGIN KEY-----\nMIIB\n\"\"\"\nONE=\"\"\"single line\"\"\" # note\nEMPTY=\"\"\"\"\"\"\n";
    assert_eq!(
        map(text),
        pairs(&[
            ("FOO", "BAR"),
            ("MULTI", "SOMETHING\nANOTHER \\n LINE\n\nENDSHERE"),
            ("NEXT", "what"),
            ("PEM", "\n-----BEGIN KEY-----\nMIIB\n"),
            ("ONE", "single line"),
            ("EMPTY", ""),
        ])
    );
    let parsed = parse(text).unwrap();
    let pem = parsed.warnings.iter().find(|w| w.name == "PEM").unwrap();
    assert!(pem.message.contains("line break"), "{pem:?}");
    let errors = bad_lines("A=\"\"\"open\nstill open\n");
    assert_eq!(errors[0].line, 1);
    assert!(
        errors[0]
            .message
            .contains("`\"\"\"` opened here is never closed")
    );
    let errors = bad_lines("A=\"\"\"x\"\"\" trailing\n");
    assert!(errors[0].message.contains("after the closing quote"));
}

#[test]
fn a_quote_inside_single_quotes_says_to_use_double_quotes() {
    for text in [
        "VAR='Let\\'s go!'\n",
        "VAR='Let'\\''s go!'\n",
        "VAR='it's'\n",
    ] {
        let errors = bad_lines(text);
        assert_eq!(errors.len(), 1, "{text}");
        assert!(
            errors[0]
                .message
                .contains("use double quotes: VAR=\"Let's go!\""),
            "{text}: {errors:?}"
        );
    }
    let errors = bad_lines("A=\"say \"hi\"\"\n");
    assert!(errors[0].message.contains("`\\\"`"), "{errors:?}");
    assert_eq!(map("VAR=\"Let's go!\"\n"), pairs(&[("VAR", "Let's go!")]));
}

#[test]
fn yaml_style_lines_get_their_own_hint() {
    for text in [
        "API_KEY: sk-123\n",
        "API_KEY:sk-123\n",
        "URL: http://x?a=b\n",
    ] {
        let errors = bad_lines(text);
        assert!(
            errors[0].message.contains("YAML-style")
                && errors[0].message.contains("`API_KEY=value`")
                || errors[0].message.contains("`URL=value`"),
            "{text}: {errors:?}"
        );
        assert!(!errors[0].message.contains("sk-123"));
    }
}

#[test]
fn backticks_are_kept_with_a_warning() {
    let parsed = parse("A=`quoted`\nB=plain\n").unwrap();
    assert_eq!(parsed.entries[0].value, "`quoted`");
    assert_eq!(parsed.warnings.len(), 1);
    assert_eq!(parsed.warnings[0].name, "A");
    assert!(parsed.warnings[0].message.contains("backtick"));
    assert_eq!(map(&write([("A", "`x`")])), pairs(&[("A", "`x`")]));
}

#[test]
fn unknown_escapes_are_kept_as_written() {
    assert_eq!(
        map("A=\"C:\\dir\\x \\' \\u12\"\nB=\"a\\\nb\"\n"),
        pairs(&[("A", "C:\\dir\\x \\' \\u12"), ("B", "a\\\nb")])
    );
}

#[test]
fn an_unterminated_quote_stops_at_the_value_limit() {
    // The F1 input: `A="` then newlines up to the 256 KiB body limit.
    let text = format!("A=\"{}", "\n".repeat(256 * 1024 - 3));
    let errors = bad_lines(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].line, 1);
    // Line 1 opens the quote; line n adds the (n-1)th line break, one too many on line 16386.
    let stopped = DEFAULT_MAX_VALUE_BYTES + 2;
    assert!(
        errors[0].message.contains("not closed within 16384 bytes")
            && errors[0]
                .message
                .contains(&format!("stopped on line {stopped}")),
        "{errors:?}"
    );
    // Lines after the cut are read again as lines of their own.
    let text = format!("A='{}\nB=1\nbad line\n", "x".repeat(20_000));
    let errors = bad_lines(&text);
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [1, 3]);
    // A value of exactly the limit, escaped or not, is fine.
    let exact = "\n".repeat(DEFAULT_MAX_VALUE_BYTES);
    for text in [
        format!("A=\"{exact}\""),
        write([("A", exact.as_str())]),
        format!("A='{}'", "y".repeat(DEFAULT_MAX_VALUE_BYTES)),
        format!("A=\"\"\"{}\"\"\"", "y".repeat(DEFAULT_MAX_VALUE_BYTES)),
    ] {
        assert_eq!(
            parse(&text).unwrap().entries[0].value.len(),
            DEFAULT_MAX_VALUE_BYTES
        );
    }
    let over = format!("A=\"\"\"{}\"\"\"", "y".repeat(DEFAULT_MAX_VALUE_BYTES + 1));
    assert!(bad_lines(&over)[0].message.contains("not closed within"));
}

#[test]
fn thirty_thousand_duplicates_collapse_to_one_entry() {
    let text: String = (0..30_000).map(|i| format!("A={i}\n")).collect();
    let parsed = parse(&text).unwrap();
    assert_eq!(parsed.entries.len(), 1);
    assert_eq!(parsed.entries[0].value, "29999");
    assert_eq!(parsed.entries[0].line, 30_000);
    assert_eq!(parsed.warnings.len(), 29_999);
    assert!(parsed.warnings[5].message.contains("first on line 1"));
}

#[test]
fn errors_and_warnings_beyond_the_caps_are_counted_not_kept() {
    let options = Options {
        max_errors: 3,
        max_warnings: 2,
        ..Options::default()
    };
    let bad: String = (0..10).map(|_| "bare line\n").collect();
    assert_eq!(
        parse_with(&bad, &options).unwrap_err(),
        Failure::BadLines {
            errors: (1..=3)
                .map(|line| LineError {
                    line,
                    message: no_equals_message("bare line"),
                })
                .collect(),
            total: 10,
        }
    );
    let dups: String = (0..10).map(|i| format!("A={i}\n")).collect();
    let parsed = parse_with(&dups, &options).unwrap();
    assert_eq!((parsed.warnings.len(), parsed.unlisted_warnings), (2, 7));
}

#[test]
fn interrupted_is_asked_every_so_many_lines_and_stops_the_parse() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let asked = AtomicUsize::new(0);
    let stop_on_third = || asked.fetch_add(1, Ordering::SeqCst) == 2;
    let options = Options {
        interrupted: &stop_on_third,
        ..Options::default()
    };
    let text = "A=1\n".repeat(10 * CHECK_EVERY_LINES);
    assert_eq!(parse_with(&text, &options), Err(Failure::Interrupted));
    assert_eq!(asked.load(Ordering::SeqCst), 3);
    // Inside a long quoted value too.
    let asked = AtomicUsize::new(0);
    let always = || {
        asked.fetch_add(1, Ordering::SeqCst);
        true
    };
    let options = Options {
        interrupted: &always,
        max_value_bytes: usize::MAX,
        ..Options::default()
    };
    let text = format!("A=\"{}\"", "\n".repeat(5 * CHECK_EVERY_LINES));
    assert_eq!(parse_with(&text, &options), Err(Failure::Interrupted));
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}

#[test]
fn hints_from_comparing_with_other_dotenv_tools() {
    // `#` with no space before it is kept, with a warning (node would cut there).
    let parsed = parse("PASSWORD=abc#123\nOTHER=abc #comment\n").unwrap();
    assert_eq!(parsed.entries[0].value, "abc#123");
    let names: Vec<&str> = parsed.warnings.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["PASSWORD"]);
    // `$NAME` in double quotes is stored as written, with a warning; `\$` silences it.
    let parsed = parse("A=\"x $HOME\"\nB=\"x \\$HOME\"\nC=\"cost: $5\"\n").unwrap();
    let names: Vec<&str> = parsed.warnings.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["A"]);
    assert_eq!(parsed.entries[0].value, "x $HOME");
    // A single-quoted value ending in a backslash was probably meant to hold a `'`.
    let parsed = parse("KEY='value\\'\n").unwrap();
    assert_eq!(parsed.entries[0].value, "value\\");
    assert!(parsed.warnings[0].message.contains("does not escape"));
    // The lines after an unclosed backtick say why they cannot be read.
    let errors = bad_lines("M=`THIS\nIS\nSTRING`\nB=2\nbare\n");
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 3, 5]);
    assert!(
        errors[0]
            .message
            .contains("backtick value opened on line 1")
    );
    assert!(
        errors[1]
            .message
            .contains("backtick value opened on line 1")
    );
    assert!(!errors[2].message.contains("backtick"), "{errors:?}");
}
