//! The `latchkey` binary as an operator meets it: startup refusals that name each problem and its
//! fix, `config --required`, `fingerprint`, `migrate` and `keys` against a real database.

use crate::support::process::{self, text};
use std::process::{Command, Output};

fn latchkey(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    process::latchkey(dir, args, env)
        .output()
        .expect("run latchkey")
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
        text(&output).contains("cannot be opened: sealed with fingerprint"),
        "{}",
        text(&output)
    );
}

#[test]
fn production_refuses_the_sync_secret_latchkey_dev_generated() {
    let dir = tempfile::tempdir().unwrap();
    let dev_secret = format!(
        "{}{}",
        latchkey_common::secret::DEV_SECRET_PREFIX,
        "x7Yq2LmP9vR4tK8wZ3nB6cD1fG5hJ0sA"
    );
    let dev_seal = format!("{}{SEAL}", latchkey_common::secret::DEV_SECRET_PREFIX);
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

/// Runs `latchkey` with `stdin` fed to it.
fn latchkey_with_stdin(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> Output {
    use std::io::Write;
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("run latchkey");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn settings_import_then_export_gives_back_the_values_and_audits_each() {
    let dir = tempfile::tempdir().unwrap();
    let keys = format!("k1:{SEAL}");
    let env = [("LATCHKEY_ENCRYPTION_KEYS", keys.as_str())];
    let pem = "-----BEGIN KEY-----\nMIIB+plaintext-line\n-----END KEY-----";
    let pasted = format!(
        "export FLY_API_TOKEN=fo1_exported-secret-1 # comment\r\nSPACED=' two  words '\nPEM=\"{pem}\"\n"
    );
    let import = latchkey_with_stdin(
        dir.path(),
        &["settings", "import", "--user-id", "u-1", "--file", "-"],
        &env,
        &pasted,
    );
    assert!(import.status.success(), "{}", text(&import));
    assert!(
        text(&import).contains(r#"added ["FLY_API_TOKEN", "PEM", "SPACED"]"#),
        "{}",
        text(&import)
    );
    assert!(!text(&import).contains("fo1_exported-secret-1"));

    let bad = latchkey_with_stdin(
        dir.path(),
        &["settings", "import", "--user-id", "u-1", "--file", "-"],
        &env,
        "GOOD=1\nnot a line\n",
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).contains("line 2"), "{}", text(&bad));

    let export = latchkey(
        dir.path(),
        &[
            "settings",
            "export",
            "--user-id",
            "u-1",
            "--caller",
            "alice",
        ],
        &env,
    );
    assert!(export.status.success(), "{}", text(&export));
    let exported = String::from_utf8(export.stdout.clone()).unwrap();
    let parsed = latchkey_settings::dotenv::parse(&exported).expect("export parses back");
    let values: std::collections::BTreeMap<_, _> = parsed
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(
        values,
        [
            ("FLY_API_TOKEN", "fo1_exported-secret-1"),
            ("PEM", pem),
            ("SPACED", " two  words "),
        ]
        .into_iter()
        .collect(),
        "the bad import changed nothing: GOOD is absent"
    );
    assert!(
        !String::from_utf8_lossy(&export.stderr).contains("fo1_exported-secret-1"),
        "the value is on stdout only, never in the log"
    );

    let out = dir.path().join("u-1.env");
    let to_file = latchkey(
        dir.path(),
        &[
            "settings",
            "export",
            "--user-id",
            "u-1",
            "--out",
            out.to_str().unwrap(),
        ],
        &env,
    );
    assert!(to_file.status.success(), "{}", text(&to_file));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), exported);
    let again = latchkey(
        dir.path(),
        &[
            "settings",
            "export",
            "--user-id",
            "u-1",
            "--out",
            out.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(again.status.code(), Some(1), "never overwrites a file");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let audited: Vec<(String, String)> = rt.block_on(async {
        use sea_orm::{ConnectionTrait, Statement};
        let url = format!("sqlite://{}/.latchkey/latchkey.db", dir.path().display());
        let db = sea_orm::Database::connect(url).await.unwrap();
        let backend = db.get_database_backend();
        db.query_all_raw(Statement::from_string(
            backend,
            "SELECT caller, name FROM setting_reveals ORDER BY id",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get::<String>("", "caller").unwrap(),
                row.try_get::<String>("", "name").unwrap(),
            )
        })
        .collect()
    });
    assert_eq!(audited.len(), 6, "three settings, exported twice");
    assert_eq!(
        audited[..3],
        [
            ("cli:alice".to_owned(), "FLY_API_TOKEN".to_owned()),
            ("cli:alice".to_owned(), "PEM".to_owned()),
            ("cli:alice".to_owned(), "SPACED".to_owned()),
        ]
    );
}

#[test]
fn production_refuses_one_setting_under_two_names_with_different_values() {
    use latchkey_common::secret::fingerprint;
    let dir = tempfile::tempdir().unwrap();
    let (v5, v4) = (
        "the-auth-js-v5-secret-0123456789abcdef",
        "the-next-auth-v4-secret-0123456789abcd",
    );
    let env = [
        ("LATCHKEY_ENV", "production"),
        (
            "LATCHKEY_SYNC_SECRET",
            "Zx8q-Lm2v-Rt7w-Pk4n-Hy6c-Bd3f-Qs9g-Wj5e",
        ),
        ("LATCHKEY_SEAL_KEY", SEAL),
        (
            "LATCHKEY_DATABASE_URL",
            "postgres://latchkey@127.0.0.1:1/latchkey",
        ),
        ("AUTH_SECRET", v5),
        ("NEXTAUTH_SECRET", v4),
    ];
    let output = latchkey(dir.path(), &["auth"], &env);
    assert_eq!(output.status.code(), Some(2));
    let printed = text(&output);
    for expected in [
        format!(
            "LATCHKEY_LEGACY_HS256_SECRET: NEXTAUTH_SECRET (fingerprint {}) and AUTH_SECRET (fingerprint {}) set LATCHKEY_LEGACY_HS256_SECRET to different values",
            fingerprint(v4.as_bytes()),
            fingerprint(v5.as_bytes())
        ),
        "next-auth v4 (≥ 4.24.10) reads NEXTAUTH_SECRET first".to_owned(),
        "Auth.js v5 (next-auth@5, @auth/core) reads AUTH_SECRET first".to_owned(),
        "fix: give NEXTAUTH_SECRET and AUTH_SECRET the same value".to_owned(),
    ] {
        assert!(
            printed.contains(&expected),
            "missing {expected:?} in:\n{printed}"
        );
    }
    assert!(
        !printed.contains(v5) && !printed.contains(v4),
        "never the values:\n{printed}"
    );

    // A LATCHKEY_ name and an alias differing is the same conflict; the same value is fine.
    let env = [
        ("LATCHKEY_ENV", "production"),
        ("LATCHKEY_SYNC_SECRET", "short"),
        ("AUTH_SYNC_SECRET", "other"),
        ("AUTH_SECRET", v5),
        ("NEXTAUTH_SECRET", v5),
    ];
    let output = latchkey(dir.path(), &["auth"], &env);
    assert_eq!(output.status.code(), Some(2));
    let printed = text(&output);
    assert!(
        printed.contains("LATCHKEY_SYNC_SECRET: LATCHKEY_SYNC_SECRET (fingerprint"),
        "{printed}"
    );
    assert!(
        !printed.contains("LATCHKEY_LEGACY_HS256_SECRET:"),
        "{printed}"
    );
    assert!(
        printed.contains("both set LATCHKEY_LEGACY_HS256_SECRET to the same value"),
        "{printed}"
    );
}

/// The value `latchkey fingerprint` prints for `name`.
fn fingerprint_of(dir: &std::path::Path, name: &str, env: &[(&str, &str)]) -> String {
    let output = latchkey(dir, &["fingerprint"], env);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    stdout
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(name)).then(|| words.next().unwrap_or_default().to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} line in:\n{stdout}"))
}

#[test]
fn fingerprint_shows_the_seal_key_as_keys_status_and_the_refusal_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let sync = ("LATCHKEY_SYNC_SECRET", "sync-secret-0123456789abcdef0123");
    let env = [sync, ("LATCHKEY_SEAL_KEY", SEAL)];
    let rotate = latchkey(dir.path(), &["keys", "rotate-signing"], &env);
    assert!(rotate.status.success(), "{}", text(&rotate));
    let shown = fingerprint_of(dir.path(), "LATCHKEY_SEAL_KEY", &env);
    let status = text(&latchkey(dir.path(), &["keys", "status"], &env));
    assert!(
        status.contains(&format!("sealed with {shown}")),
        "fingerprint printed {shown}; keys status:\n{status}"
    );
    // The same key spelled in hex is the same key.
    let hex = "deadbeef00000000000000000000000000000000000000000000000000000000";
    assert_eq!(
        fingerprint_of(
            dir.path(),
            "LATCHKEY_SEAL_KEY",
            &[sync, ("LATCHKEY_SEAL_KEY", hex)]
        ),
        shown
    );

    // The refusal names both keys by the fingerprints `latchkey fingerprint` prints.
    let wrong = [sync, ("LATCHKEY_SEAL_KEY", "ab".repeat(32).leak() as &str)];
    let configured = fingerprint_of(dir.path(), "LATCHKEY_SEAL_KEY", &wrong);
    let mut command = Command::new("timeout");
    command
        .args(["20", env!("CARGO_BIN_EXE_latchkey"), "auth"])
        .current_dir(dir.path())
        .env_clear()
        .envs(wrong)
        .env("LATCHKEY_AUTH_LISTEN", "127.0.0.1:0");
    let refusal = text(&command.output().unwrap());
    assert!(
        refusal.contains(&format!(
            "sealed with fingerprint {shown}, configured {configured} (LATCHKEY_SEAL_KEY)"
        )),
        "{refusal}"
    );
}

/// A folder as `latchkey dev` leaves it: its secrets file, nothing in the environment.
fn dev_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".latchkey")).unwrap();
    std::fs::write(
        dir.path().join(".latchkey/dev-secrets.env"),
        format!(
            "LATCHKEY_SYNC_SECRET=latchkey-dev-sync-secret-0123456789abcdef\n\
             LATCHKEY_SEAL_KEY=latchkey-dev-{SEAL}\n\
             LATCHKEY_ENCRYPTION_KEYS=dev1:latchkey-dev-{SEAL}\n"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn operator_commands_next_to_dev_read_its_files() {
    let dir = dev_folder();
    let note = "(next to `latchkey dev`: read .latchkey/dev-secrets.env; the environment wins)";
    for args in [
        &["keys", "status"][..],
        &["keys", "rotate-signing"],
        &["users", "show", "ada@example.com"],
    ] {
        let output = latchkey(dir.path(), args, &[]);
        let printed = text(&output);
        assert!(!printed.contains("is not set"), "{args:?}:\n{printed}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(note),
            "{args:?}:\n{printed}"
        );
    }
    let status = text(&latchkey(dir.path(), &["keys", "status"], &[]));
    assert!(status.contains("dev1"), "{status}");

    // `settings export` keeps stdout a .env: the note goes to stderr.
    let export = latchkey(
        dir.path(),
        &[
            "settings",
            "export",
            "--user-id",
            "00000000-0000-0000-0000-000000000000",
        ],
        &[],
    );
    assert!(export.status.success(), "{}", text(&export));
    assert!(String::from_utf8_lossy(&export.stderr).contains(note));
    assert!(!String::from_utf8_lossy(&export.stdout).contains("latchkey dev"));

    // The environment still wins.
    let other_seal = "ab".repeat(32);
    let fingerprint = text(&latchkey(
        dir.path(),
        &["fingerprint"],
        &[("LATCHKEY_SEAL_KEY", &other_seal)],
    ));
    assert!(
        fingerprint.contains("(from LATCHKEY_SEAL_KEY)"),
        "{fingerprint}"
    );
}

#[test]
fn users_show_names_an_unknown_email_in_operator_words() {
    let dir = dev_folder();
    let output = latchkey(dir.path(), &["users", "show", "nobody@example.com"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let printed = text(&output);
    assert!(
        printed.contains("no user with email nobody@example.com (sync-user has never seen it)"),
        "{printed}"
    );
    assert!(!printed.contains("USER_NOT_SYNCED"), "{printed}");
}

#[test]
fn auth_that_cannot_bind_its_port_stores_no_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let env = [
        ("LATCHKEY_SYNC_SECRET", "sync-secret-0123456789abcdef0123"),
        ("LATCHKEY_SEAL_KEY", SEAL),
        ("LATCHKEY_AUTH_LISTEN", port.as_str()),
    ];
    let output = latchkey(dir.path(), &["auth"], &env);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains(&format!("binding {port}")),
        "{}",
        text(&output)
    );
    let status = text(&latchkey(dir.path(), &["keys", "status"], &env[..2]));
    assert!(
        !status.contains("sealed with"),
        "a key was stored:\n{status}"
    );
}

/// The operator's life cycle by hand: `--standby` publishes a key that does not sign yet,
/// `--activate` refuses it within the JWKS cache lifetime (unless `--force`), and `keys status`
/// names each key's state and when it changes next; with ES256 configured the new key is P-256.
#[test]
fn standby_then_activate_by_hand_with_status_between() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("LATCHKEY_SYNC_SECRET", "sync-secret-0123456789abcdef0123"),
        ("LATCHKEY_SEAL_KEY", SEAL),
        ("LATCHKEY_SIGNING_ALG", "ES256"),
    ];
    let standby = latchkey(dir.path(), &["keys", "rotate-signing", "--standby"], &env);
    assert!(standby.status.success(), "{}", text(&standby));
    let said = text(&standby);
    let kid = said
        .lines()
        .find_map(|line| line.strip_prefix("new standby signing key: "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no standby kid in:\n{said}"))
        .to_owned();
    assert!(said.contains("(ES256)"), "{said}");
    let status = text(&latchkey(dir.path(), &["keys", "status"], &env));
    assert!(
        status.contains("standby (published, not signing)")
            && status.contains(&format!("--activate {kid}"))
            && status.contains("active since"),
        "{status}"
    );
    let early = latchkey(
        dir.path(),
        &["keys", "rotate-signing", "--activate", &kid],
        &env,
    );
    assert!(!early.status.success(), "{}", text(&early));
    assert!(text(&early).contains("--force"), "{}", text(&early));
    let forced = latchkey(
        dir.path(),
        &["keys", "rotate-signing", "--activate", &kid, "--force"],
        &env,
    );
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(text(&forced).contains(&format!("active signing key: {kid}")));
    let status = text(&latchkey(dir.path(), &["keys", "status"], &env));
    assert!(
        status.contains(&format!("{kid}  ES256"))
            && status.contains("retired, published until")
            && status.contains("removed once its last token has expired"),
        "{status}"
    );
}
