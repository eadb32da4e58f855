//! The `latchkey` binary as an operator meets it: startup refusals that name each problem and its
//! fix, `config --required`, `fingerprint`, `migrate` and `keys` against a real database.

use std::process::{Command, Output};

fn latchkey(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run latchkey")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const SEAL: &str = "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

#[test]
fn auth_without_secrets_refuses_with_every_problem_and_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    let output = latchkey(
        dir.path(),
        &["auth"],
        &[("LATCHKEY_TOKEN_TTL_SECS", "soon")],
    );
    assert_eq!(output.status.code(), Some(2));
    let text = text(&output);
    for expected in [
        "LATCHKEY_SYNC_SECRET: is not set",
        "LATCHKEY_SEAL_KEY: is not set",
        "LATCHKEY_TOKEN_TTL_SECS: `soon` is not",
        "fix: generate one with `openssl rand -base64 32`",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn production_refuses_weak_secrets_and_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("LATCHKEY_ENV", "production"),
        ("LATCHKEY_SYNC_SECRET", "changeme"),
        ("LATCHKEY_SEAL_KEY", SEAL),
    ];
    let output = latchkey(dir.path(), &["auth"], &env);
    assert_eq!(output.status.code(), Some(2));
    let text = text(&output);
    assert!(
        text.contains("LATCHKEY_SYNC_SECRET: is shorter than 32 characters"),
        "{text}"
    );
    assert!(
        text.contains("LATCHKEY_DATABASE_URL: points at SQLite"),
        "{text}"
    );
    assert!(
        !text.contains("changeme"),
        "the secret itself is never printed"
    );
}

#[test]
fn app_secret_names_are_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let output = latchkey(
        dir.path(),
        &["fingerprint"],
        &[("AUTH_SYNC_SECRET", "from-the-web-app-0123456789abcdef")],
    );
    let text = text(&output);
    assert!(
        text.contains("AUTH_SYNC_SECRET is read as LATCHKEY_SYNC_SECRET"),
        "{text}"
    );
    let fingerprint = latchkey_common::secret::fingerprint(b"from-the-web-app-0123456789abcdef");
    assert!(text.contains(&fingerprint), "{text}");
    assert!(!text.contains("from-the-web-app"), "{text}");
}

#[test]
fn config_required_lists_what_auth_cannot_start_without() {
    let dir = tempfile::tempdir().unwrap();
    let output = latchkey(
        dir.path(),
        &["config", "--required", "--service", "auth"],
        &[],
    );
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .collect::<Vec<_>>(),
        ["LATCHKEY_SYNC_SECRET", "LATCHKEY_SEAL_KEY"]
    );
}

#[test]
fn secrets_from_files_migrate_and_rotate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sync"),
        "file-sync-secret-0123456789abcdef\n",
    )
    .unwrap();
    let sync_file = dir.path().join("sync");
    let env = [
        ("LATCHKEY_SYNC_SECRET_FILE", sync_file.to_str().unwrap()),
        ("LATCHKEY_SEAL_KEY", SEAL),
    ];
    let migrate = latchkey(dir.path(), &["migrate"], &env);
    assert!(migrate.status.success(), "{}", text(&migrate));
    let rotate = latchkey(dir.path(), &["keys", "rotate-signing"], &env);
    assert!(rotate.status.success(), "{}", text(&rotate));
    assert!(text(&rotate).contains("new active signing key"));
    let status = latchkey(dir.path(), &["keys", "status"], &env);
    let status = text(&status);
    assert!(
        status.contains("active") && status.contains("retired, published until"),
        "{status}"
    );
    // Another seal key cannot open the stored private keys: auth refuses to start, saying why.
    let wrong_key = "ab".repeat(32);
    let mut command = Command::new("timeout");
    command
        .args(["20", env!("CARGO_BIN_EXE_latchkey"), "auth"])
        .current_dir(dir.path())
        .env_clear()
        .env("LATCHKEY_SYNC_SECRET_FILE", &sync_file)
        .env("LATCHKEY_SEAL_KEY", &wrong_key)
        .env("LATCHKEY_AUTH_LISTEN", "127.0.0.1:0");
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("cannot be opened with the configured LATCHKEY_SEAL_KEY"),
        "{}",
        text(&output)
    );
}

#[test]
fn production_refuses_the_sync_secret_latchkey_dev_generated() {
    let dir = tempfile::tempdir().unwrap();
    let dev_secret = format!(
        "{}{}",
        latchkey_common::config::DEV_SECRET_PREFIX,
        "x7Yq2LmP9vR4tK8wZ3nB6cD1fG5hJ0sA"
    );
    let dev_seal = format!("{}{SEAL}", latchkey_common::config::DEV_SECRET_PREFIX);
    let env = [
        ("LATCHKEY_ENV", "production"),
        ("LATCHKEY_SYNC_SECRET", dev_secret.as_str()),
        ("LATCHKEY_SEAL_KEY", dev_seal.as_str()),
        (
            "LATCHKEY_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        ),
    ];
    let output = latchkey(dir.path(), &["auth"], &env);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("LATCHKEY_SEAL_KEY: is generated by `latchkey dev`"),
        "{}",
        text(&output)
    );
    assert!(
        text(&output).contains("LATCHKEY_SYNC_SECRET: is generated by `latchkey dev`"),
        "{}",
        text(&output)
    );
}
