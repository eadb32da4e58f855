//! The loader's layering, secrets, aliases and problems, over explicit environments.

use super::*;
use std::collections::HashMap;
use zeroize::Zeroizing;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn defaults_then_file_then_env() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latchkey.toml");
    std::fs::write(&file, "issuer = \"from-file\"\naudience = \"file-aud\"\n").unwrap();
    let config = Config::from_env_map(env(&[
        ("LATCHKEY_CONFIG", file.to_str().unwrap()),
        ("LATCHKEY_AUDIENCE", "env-aud"),
    ]));
    assert!(config.load_problems().0.is_empty());
    assert_eq!(config.raw(ISSUER), Some("from-file"));
    assert_eq!(config.raw(AUDIENCE), Some("env-aud"));
    assert_eq!(config.raw(TOKEN_TTL_SECS), Some("900"));
    assert_eq!(
        config.source(AUDIENCE),
        Some(&Source::Env("LATCHKEY_AUDIENCE".into()))
    );
}

#[test]
fn secrets_come_from_files_and_never_show_in_debug() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync");
    std::fs::write(&file, "file-held-secret-value\n").unwrap();
    let config = Config::from_env_map(env(&[(
        "LATCHKEY_SYNC_SECRET_FILE",
        file.to_str().unwrap(),
    )]));
    assert_eq!(config.raw(SYNC_SECRET), Some("file-held-secret-value"));
    assert!(!format!("{config:?}").contains("file-held-secret-value"));
}

#[test]
fn both_value_and_file_is_a_problem_and_unreadable_file_too() {
    let config = Config::from_env_map(env(&[
        ("LATCHKEY_SYNC_SECRET", "a"),
        ("LATCHKEY_SYNC_SECRET_FILE", "/nonexistent"),
        ("LATCHKEY_SEAL_KEY_FILE", "/nonexistent/seal"),
    ]));
    let problems = config.load_problems().0;
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.variable == "LATCHKEY_SYNC_SECRET" && p.what.contains("both"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.variable == "LATCHKEY_SEAL_KEY_FILE")
    );
}

#[test]
fn app_names_are_recognised_with_a_notice() {
    let config = Config::from_env_map(env(&[
        ("AUTH_SYNC_SECRET", "from-app"),
        ("NEXTAUTH_SECRET", "nx"),
    ]));
    assert_eq!(config.raw(SYNC_SECRET), Some("from-app"));
    assert_eq!(config.raw(LEGACY_HS256_SECRET), Some("nx"));
    assert!(
        config
            .notices
            .iter()
            .any(|n| n.contains("AUTH_SYNC_SECRET is read as LATCHKEY_SYNC_SECRET"))
    );
    assert!(
        config
            .notices
            .iter()
            .any(|n| n.contains("NEXTAUTH_SECRET is read as LATCHKEY_LEGACY_HS256_SECRET"))
    );
}

#[test]
fn two_names_with_different_values_warn_in_development_and_refuse_in_production() {
    let pairs = [
        ("AUTH_SECRET", "v5-app-secret"),
        ("NEXTAUTH_SECRET", "v4-app-secret"),
    ];
    let config = Config::from_env_map(env(&pairs));
    assert!(config.load_problems().0.is_empty(), "development starts");
    let [conflict] = config.conflicts() else {
        panic!("one conflict: {:?}", config.conflicts());
    };
    assert_eq!(conflict.setting, "LATCHKEY_LEGACY_HS256_SECRET");
    let names: Vec<&str> = conflict.names.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        ["NEXTAUTH_SECRET", "AUTH_SECRET"],
        "the used one first"
    );
    let what = conflict.what();
    for value in ["v5-app-secret", "v4-app-secret"] {
        let fingerprint = crate::secret::fingerprint(value.as_bytes());
        assert!(what.contains(&fingerprint), "{what}");
        assert!(!what.contains(value), "never the value: {what}");
    }
    assert!(
        what.contains("reads AUTH_SECRET first") && what.contains("reads NEXTAUTH_SECRET first")
    );

    let mut production = pairs.to_vec();
    production.push(("LATCHKEY_ENV", "production"));
    let config = Config::from_env_map(env(&production));
    let problems = config.load_problems().to_string();
    assert!(
        problems.contains("LATCHKEY_LEGACY_HS256_SECRET: NEXTAUTH_SECRET (fingerprint"),
        "{problems}"
    );
    assert!(!problems.contains("v5-app-secret"), "{problems}");
}

#[test]
fn the_latchkey_name_and_an_alias_differing_is_a_conflict_and_the_same_value_a_notice() {
    let config = Config::from_env_map(env(&[
        ("LATCHKEY_SYNC_SECRET", "one"),
        ("AUTH_SYNC_SECRET", "two"),
        ("ENCRYPTION_KEY", "key-material"),
        ("LATCHKEY_ENCRYPTION_KEYS", "k1:key-material"),
    ]));
    assert_eq!(config.raw(SYNC_SECRET), Some("one"));
    let settings: Vec<&str> = config
        .conflicts()
        .iter()
        .map(|c| c.setting.as_str())
        .collect();
    assert_eq!(settings, ["LATCHKEY_SYNC_SECRET"]);
    assert_eq!(config.conflicts()[0].names[0].name, "LATCHKEY_SYNC_SECRET");
    assert!(
            config.notices.iter().any(|n| n.contains(
                "ENCRYPTION_KEY and LATCHKEY_ENCRYPTION_KEYS both set LATCHKEY_ENCRYPTION_KEYS to the same value"
            )),
            "{:?}",
            config.notices
        );
}

#[test]
fn the_environment_under_any_name_wins_over_the_underlay() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync");
    std::fs::write(&file, "from-a-file\n").unwrap();
    let underlay = |variable: &str| Underlay {
        variable: variable.to_owned(),
        value: Zeroizing::new(format!("generated-{variable}")),
        origin: ".latchkey/dev-secrets.env".to_owned(),
    };
    let config = Config::layered(
        vec![
            underlay("LATCHKEY_SYNC_SECRET"),
            underlay("LATCHKEY_LEGACY_HS256_SECRET"),
            underlay("LATCHKEY_SEAL_KEY"),
            underlay("LATCHKEY_DATABASE_URL"),
        ],
        env(&[
            ("AUTH_SYNC_SECRET", "the-apps-secret"),
            ("AUTH_SECRET_FILE", file.to_str().unwrap()),
            ("DATABASE_URL", "postgres://u@h/db"),
        ]),
    );
    assert!(
        config.load_problems().0.is_empty(),
        "{}",
        config.load_problems()
    );
    assert!(config.conflicts().is_empty(), "{:?}", config.conflicts());
    assert_eq!(config.raw(SYNC_SECRET), Some("the-apps-secret"));
    assert_eq!(config.raw(LEGACY_HS256_SECRET), Some("from-a-file"));
    assert_eq!(config.raw(DATABASE_URL), Some("postgres://u@h/db"));
    assert_eq!(config.raw(SEAL_KEY), Some("generated-LATCHKEY_SEAL_KEY"));
    assert_eq!(
        config.source(SEAL_KEY).unwrap().to_string(),
        ".latchkey/dev-secrets.env"
    );
    assert_eq!(
        config.source(SYNC_SECRET),
        Some(&Source::Alias("AUTH_SYNC_SECRET".into()))
    );
}

#[test]
fn a_file_key_and_an_alias_differing_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latchkey.toml");
    std::fs::write(&file, "database_url = \"postgres://a@h/one\"\n").unwrap();
    let config = Config::from_env_map(env(&[
        ("LATCHKEY_CONFIG", file.to_str().unwrap()),
        ("DATABASE_URL", "postgres://a@h/two"),
    ]));
    assert_eq!(config.raw(DATABASE_URL), Some("postgres://a@h/one"));
    let names: Vec<&str> = config.conflicts()[0]
        .names
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            format!("{} key `database_url`", file.display()).as_str(),
            "DATABASE_URL"
        ]
    );
}

#[test]
fn unknown_file_keys_are_problems_and_unknown_env_a_notice() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("l.toml");
    std::fs::write(&file, "isuer = \"typo\"\n").unwrap();
    let config = Config::from_env_map(env(&[
        ("LATCHKEY_CONFIG", file.to_str().unwrap()),
        ("LATCHKEY_SYNC_SECRT", "x"),
    ]));
    assert!(
        config.load_problems().0[0]
            .what
            .contains("not a Latchkey setting")
    );
    assert!(
        config
            .notices
            .iter()
            .any(|n| n.contains("LATCHKEY_SYNC_SECRT"))
    );
}

#[test]
fn required_secret_and_parse_problems_name_variable_and_fix() {
    let config = Config::from_env_map(env(&[
        ("LATCHKEY_TOKEN_TTL_SECS", "soon"),
        ("LATCHKEY_ENV", "production"),
        ("LATCHKEY_SEAL_KEY", "changeme"),
    ]));
    let mut problems = Problems::default();
    assert!(
        config
            .required_secret(SYNC_SECRET, &mut problems, "generate one")
            .is_none()
    );
    config.required_secret(SEAL_KEY, &mut problems, "generate one");
    assert!(
        config
            .parsed(TOKEN_TTL_SECS, "a number of seconds", &mut problems)
            .is_none()
    );
    let text = problems.to_string();
    assert!(text.contains("LATCHKEY_SYNC_SECRET: is not set"), "{text}");
    assert!(
        text.contains("LATCHKEY_SEAL_KEY: is shorter than 32 characters"),
        "{text}"
    );
    assert!(
        text.contains("LATCHKEY_TOKEN_TTL_SECS: `soon` is not a number of seconds"),
        "{text}"
    );
    assert!(!text.contains("changeme"));
}

#[test]
fn a_toml_table_is_read_as_json_with_its_keys_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latchkey.toml");
    std::fs::write(
        &file,
        "settings_schema_file = \"schema.json\"\n\
         [settings_schema]\nallow_undeclared = false\n\
         [settings_schema.settings.FLY_API_TOKEN]\nlabel = \"Fly.io API Token\"\nrequired = true\n",
    )
    .unwrap();
    let config = Config::from_env_map(env(&[("LATCHKEY_CONFIG", file.to_str().unwrap())]));
    assert!(
        config.load_problems().0.is_empty(),
        "{}",
        config.load_problems()
    );
    let json: serde_json::Value =
        serde_json::from_str(config.raw(SETTINGS_SCHEMA).unwrap()).unwrap();
    assert_eq!(json["allow_undeclared"], false);
    assert_eq!(json["settings"]["FLY_API_TOKEN"]["required"], true);
    assert_eq!(config.raw(SETTINGS_SCHEMA_FILE), Some("schema.json"));
}
