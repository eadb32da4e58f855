//! Schema parsing and refusals, each preset against real-looking keys, and generators.

use super::format::Preset;
use super::generate::{Encoding, Generate};
use super::source::{Reload, SchemaSource};
use super::*;

/// The seed app's three settings.
pub const SEED: &str = r#"{
  "settings": {
    "FLY_API_TOKEN": {"label": "Fly.io API Token", "required": true, "preset": "fly_token",
                      "link": "https://fly.io/user/personal_access_tokens"},
    "OPENROUTER_API_KEY": {"label": "OpenRouter API Key", "required": true, "preset": "openrouter_key"},
    "ENCRYPTION_KEY": {"label": "Encryption Key (optional, auto-generated if empty)",
                       "generate": {"bytes": 32, "encoding": "base64"}}
  },
  "allow_undeclared": false
}"#;

fn openrouter() -> String {
    format!("sk-or-v1-{}", "0123456789abcdef".repeat(4))
}

#[test]
fn the_seed_schema_parses() {
    let schema = Schema::parse(SEED).unwrap();
    assert_eq!(schema.settings.len(), 3);
    assert!(!schema.allow_undeclared);
    let fly = schema.declared("FLY_API_TOKEN").unwrap();
    assert_eq!(fly.label, "Fly.io API Token");
    assert!(fly.required);
    assert_eq!(fly.format.preset, Some(Preset::FlyToken));
    let key = schema.declared("ENCRYPTION_KEY").unwrap();
    assert_eq!(
        key.generate,
        Some(Generate {
            bytes: 32,
            encoding: Encoding::Base64
        })
    );
}

#[test]
fn openrouter_key_preset() {
    let p = Preset::OpenrouterKey;
    assert!(p.accepts(&openrouter()));
    assert!(p.accepts(&format!("sk-or-v1-{}", "f".repeat(64))));
    for bad in [
        format!("sk-or-v1-{}", "0".repeat(63)),
        format!("sk-or-v1-{}", "0".repeat(65)),
        format!("sk-or-v1-{}", "A".repeat(64)),
        format!("sk-or-v2-{}", "0".repeat(64)),
        format!("sk-{}", "0".repeat(64)),
        "fo1_abcdefghijklmnopqrstuvwxyz".to_owned(),
        format!(" sk-or-v1-{}", "0".repeat(64)),
        String::new(),
    ] {
        assert!(!p.accepts(&bad), "{bad}");
    }
}

#[test]
fn fly_token_preset() {
    let p = Preset::FlyToken;
    assert!(p.accepts("fo1_T6o2yqvYx0m0Yk1Zr7cQ4JpB1nH2dS3eF4gA5bC6dE7"));
    assert!(p.accepts("FlyV1 fm2_lJPECAAAAAAAAMTuxBBAxyz,fm2_lJPETzjM1XWxyz"));
    for bad in [
        "fo2_abc",
        "flyv1 fm2_abc",
        "FlyV1fm2_abc",
        "sk-or-v1-0123",
        "fo1_abc\nsecond line",
        "",
    ] {
        assert!(!p.accepts(bad), "{bad}");
    }
}

#[test]
fn url_preset() {
    let p = Preset::Url;
    for good in [
        "https://api.example.com",
        "http://localhost:8080/v1?x=1",
        "https://user@host.example/path",
    ] {
        assert!(p.accepts(good), "{good}");
    }
    for bad in [
        "api.example.com",
        "ftp://example.com",
        "https://",
        "https:///path",
        "https://exa mple.com",
        "https://:80",
    ] {
        assert!(!p.accepts(bad), "{bad}");
    }
}

#[test]
fn pem_preset() {
    let p = Preset::Pem;
    let key = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKw1M1Mn9W3vYv5QZp1p6Wc+0mZr/3kTq1Z8w2n0aB6d\n-----END PRIVATE KEY-----\n";
    assert!(p.accepts(key));
    for bad in [
        "MC4CAQAwBQYDK2VwBCIEIKw1",
        "-----BEGIN PRIVATE KEY-----\nMC4C\n-----END PUBLIC KEY-----",
        "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----",
        "-----BEGIN CERTIFICATE-----\nMC4C<script>\n-----END CERTIFICATE-----",
    ] {
        assert!(!p.accepts(bad), "{bad}");
    }
}

#[test]
fn a_broken_value_names_the_rule_never_the_value() {
    let schema = Schema::parse(SEED).unwrap();
    let wrong = openrouter();
    let misfit = schema.check("FLY_API_TOKEN", &wrong).unwrap_err();
    let text = misfit.to_string();
    assert!(
        text.contains("`preset`") && text.contains("fly_token"),
        "{text}"
    );
    assert!(!text.contains(&wrong[..12]));
    assert_eq!(schema.check("OPENROUTER_API_KEY", &openrouter()), Ok(()));
    assert_eq!(schema.check("OTHER", "x"), Err(Misfit::Undeclared));
    assert!(schema.admits("FLY_API_TOKEN") && !schema.admits("OTHER"));
}

#[test]
fn pattern_and_lengths() {
    let schema = Schema::parse(
        r#"{"settings": {"A": {"pattern": "^[a-z]+$", "min_length": 3, "max_length": 5}}}"#,
    )
    .unwrap();
    assert!(schema.check("A", "abcd").is_ok());
    let rule = |v: &str| match schema.check("A", v) {
        Err(Misfit::Broken(b)) => b.rule,
        other => panic!("{other:?}"),
    };
    assert_eq!(rule("ab"), "min_length");
    assert_eq!(rule("abcdef"), "max_length");
    assert_eq!(rule("ABCD"), "pattern");
    assert!(schema.allow_undeclared && schema.check("OTHER", "x").is_ok());
}

#[test]
fn missing_and_to_generate() {
    let schema = Schema::parse(SEED).unwrap();
    let stored: BTreeSet<String> = ["FLY_API_TOKEN".to_owned()].into();
    assert_eq!(schema.missing(&stored), ["OPENROUTER_API_KEY"]);
    let generate = schema.to_generate(&stored);
    assert_eq!(generate.len(), 1);
    assert_eq!(generate[0].0, "ENCRYPTION_KEY");
}

#[test]
fn every_mistake_is_one_line() {
    let problems = Schema::parse(
        r#"{"settings": {
            "1BAD": {},
            "A": {"pattern": "([a-z]"},
            "B": {"preset": "aws_key"},
            "C": {"min_length": 9, "max_length": 2},
            "D": {"generate": {"bytes": 0}},
            "E": {"generate": {"bytes": 8, "encoding": "base32"}},
            "F": {"link": "javascript:alert(1)"},
            "G": {"generate": {"bytes": 32}, "preset": "url"},
            "H": {"generate": {"bytes": 32}, "pattern": "^[0-9a-f]+$"}
        }}"#,
    )
    .unwrap_err();
    let wanted = [
        "settings.1BAD: the name",
        "settings.A.pattern: does not compile",
        "settings.B.preset: \"aws_key\" is not a preset",
        "settings.C: min_length 9 is greater than max_length 2",
        "settings.D.generate.bytes",
        "settings.E.generate.encoding",
        "settings.F.link",
        "settings.G.generate: a generated value cannot meet a preset",
        "settings.H.generate: a generated base64 value",
    ];
    assert_eq!(problems.len(), wanted.len(), "{problems:#?}");
    for want in wanted {
        assert!(
            problems.iter().any(|p| p.starts_with(want)),
            "{want} in {problems:#?}"
        );
    }
    let unknown = Schema::parse(r#"{"settings": {"A": {"requird": true}}}"#).unwrap_err();
    assert_eq!(unknown.len(), 1);
    assert!(unknown[0].contains("requird"), "{unknown:?}");
    assert!(Schema::parse("not json").is_err());
}

#[test]
fn huge_patterns_are_refused_not_built() {
    let big = r#"{"settings": {"A": {"pattern": "^(\\w{100}){100}$"}}}"#;
    let problems = Schema::parse(big).unwrap_err();
    assert!(
        problems[0].starts_with("settings.A.pattern: does not compile"),
        "{problems:?}"
    );
}

#[test]
fn generated_values_have_their_length_and_alphabet() {
    let base64 = Generate {
        bytes: 32,
        encoding: Encoding::Base64,
    };
    let hex = Generate {
        bytes: 16,
        encoding: Encoding::Hex,
    };
    let a = base64.make().unwrap();
    let b = base64.make().unwrap();
    assert_ne!(*a, *b);
    assert_eq!(a.len(), 44);
    assert_eq!(a.len(), base64.length());
    assert!(
        a.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c))
    );
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(a.as_bytes())
            .unwrap()
            .len(),
        32
    );
    let h = hex.make().unwrap();
    assert_eq!(h.len(), 32);
    assert!(
        h.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
}

#[test]
fn a_changed_file_is_reloaded_and_a_broken_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.json");
    std::fs::write(&path, r#"{"settings": {"A": {}}}"#).unwrap();
    let schema = Schema::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let source = SchemaSource::new(schema, Some(path.clone()));
    assert_eq!(source.reload(), Reload::Unchanged);
    std::fs::write(
        &path,
        r#"{"settings": {"A": {}, "BB": {"required": true}}}"#,
    )
    .unwrap();
    assert_eq!(source.reload(), Reload::Replaced);
    assert!(source.current().declared("BB").is_some());
    std::fs::write(&path, r#"{"settings": {"A": {"preset": "nope!"}}}"#).unwrap();
    assert!(matches!(source.reload(), Reload::Refused(p) if p.len() == 1));
    assert!(source.current().declared("BB").is_some());
}

#[test]
fn declaration_order_is_kept_through_parse_missing_and_the_message() {
    let schema = Schema::parse(
        r#"{"settings": {
            "ZETA_TOKEN": {"label": "Zeta", "required": true},
            "ALPHA_KEY": {"label": "Alpha"},
            "MIDDLE_URL": {"label": "Middle", "required": true, "preset": "url"}
        }}"#,
    )
    .unwrap();
    let names: Vec<&str> = schema.in_order().map(|(name, _)| name).collect();
    assert_eq!(names, ["ZETA_TOKEN", "ALPHA_KEY", "MIDDLE_URL"]);
    assert_eq!(
        schema.missing(&BTreeSet::new()),
        ["ZETA_TOKEN", "MIDDLE_URL"]
    );
    let message = super::wire::schema_message(&schema);
    let names: Vec<&str> = message.settings.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["ZETA_TOKEN", "ALPHA_KEY", "MIDDLE_URL"]);
    let seed = Schema::parse(SEED).unwrap();
    let seed: Vec<&str> = seed.in_order().map(|(name, _)| name).collect();
    assert_eq!(
        seed,
        ["FLY_API_TOKEN", "OPENROUTER_API_KEY", "ENCRYPTION_KEY"]
    );
}

#[test]
fn a_name_declared_twice_is_refused() {
    let problems =
        Schema::parse(r#"{"settings": {"A_KEY": {}, "B_KEY": {}, "A_KEY": {"required": true}}}"#)
            .unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("settings.A_KEY: is declared twice"),
        "{problems:?}"
    );
}
