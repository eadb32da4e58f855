//! The seal key as an operator loses it, with the `latchkey` binary on SQLite and PostgreSQL:
//! auth started with one seal key, restarted with another, refuses with both fingerprints, the
//! variable and both ways out; putting the old key back works; `latchkey keys reset-signing`
//! asks first (and without a terminal or `--yes` changes nothing), then retires the unreadable
//! keys, after which auth starts with the new seal key. Keys sealed before fingerprints were
//! recorded say so, and get their fingerprint recorded on the next start that opens them.

use crate::support::process::{self, latchkey, text};
use crate::support::{Backend, TestDb};
use std::process::{Command, Output};

const SEAL_A: &str = "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const SEAL_B: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";

/// A `latchkey` command on the test's database, with a seal key and nothing else inherited.
fn command(db: &TestDb, dir: &std::path::Path, seal: &str, args: &[&str]) -> Command {
    let env = [
        ("LATCHKEY_DATABASE_URL", db.url.as_str()),
        ("LATCHKEY_SYNC_SECRET", crate::support::SYNC_SECRET),
        ("LATCHKEY_SEAL_KEY", seal),
    ];
    latchkey(dir, args, &env)
}

/// Starts auth and stops it again: Ok when it served, Err with its refusal.
fn start_auth(command: Command) -> Result<(), String> {
    process::start_auth(command).map(drop)
}

fn run(mut command: Command) -> Output {
    command.output().expect("run latchkey")
}

fn fingerprint(seal: &str) -> String {
    latchkey_common::seal::SealKey::parse(seal)
        .unwrap()
        .fingerprint()
}

async fn forget_seal_fingerprints(db: &TestDb) {
    use sea_orm::ConnectionTrait;
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    conn.execute_unprepared("UPDATE signing_keys SET seal_fingerprint = NULL")
        .await
        .unwrap();
}

async fn a_lost_seal_key_is_named_and_reset(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (fingerprint(SEAL_A), fingerprint(SEAL_B));
    start_auth(command(&db, dir.path(), SEAL_A, &[])).expect("auth starts with seal key A");

    // A key sealed before fingerprints were recorded: the refusal says so.
    forget_seal_fingerprints(&db).await;
    let refusal = start_auth(command(&db, dir.path(), SEAL_B, &[])).unwrap_err();
    assert!(
        refusal.contains("sealed with fingerprint (not recorded"),
        "{refusal}"
    );
    // The next start that opens it records the fingerprint.
    start_auth(command(&db, dir.path(), SEAL_A, &[])).expect("auth starts with A again");

    let refusal = start_auth(command(&db, dir.path(), SEAL_B, &[])).unwrap_err();
    for expected in [
        format!("sealed with fingerprint {a}, configured {b} (LATCHKEY_SEAL_KEY)"),
        format!("restore the seal key with fingerprint {a} in LATCHKEY_SEAL_KEY"),
        "latchkey keys reset-signing".to_owned(),
        "every token they signed stops working".to_owned(),
    ] {
        assert!(refusal.contains(&expected), "{expected:?} in:\n{refusal}");
    }
    assert!(!refusal.contains("internal:"), "{refusal}");
    // The variable is the one the key came from.
    let seal_file = dir.path().join("seal");
    std::fs::write(&seal_file, SEAL_B).unwrap();
    let mut from_file = command(&db, dir.path(), SEAL_B, &[]);
    from_file
        .env_remove("LATCHKEY_SEAL_KEY")
        .env("LATCHKEY_SEAL_KEY_FILE", &seal_file);
    let refusal = start_auth(from_file).unwrap_err();
    assert!(
        refusal.contains(&format!("configured {b} (LATCHKEY_SEAL_KEY_FILE)")),
        "{refusal}"
    );

    // Way out 1: the old key back.
    start_auth(command(&db, dir.path(), SEAL_A, &[])).expect("A opens its keys");

    let status = text(&run(command(&db, dir.path(), SEAL_B, &["keys", "status"])));
    assert!(
        status.contains(&format!("sealed with {a}")) && status.contains("✘ cannot be opened"),
        "{status}"
    );

    // Way out 2: reset, only once confirmed.
    let unconfirmed = run(command(&db, dir.path(), SEAL_B, &["keys", "reset-signing"]));
    assert_eq!(unconfirmed.status.code(), Some(1), "{}", text(&unconfirmed));
    assert!(
        text(&unconfirmed).contains("pass --yes"),
        "{}",
        text(&unconfirmed)
    );
    start_auth(command(&db, dir.path(), SEAL_B, &[])).expect_err("nothing was changed");

    let reset = run(command(
        &db,
        dir.path(),
        SEAL_B,
        &["keys", "reset-signing", "--yes"],
    ));
    assert!(reset.status.success(), "{}", text(&reset));
    let said = text(&reset);
    assert!(
        said.contains("1 signing key(s) cannot be opened") && said.contains("retired "),
        "{said}"
    );
    assert!(said.contains("new active signing key"), "{said}");
    start_auth(command(&db, dir.path(), SEAL_B, &[])).expect("auth starts after the reset");
    let again = text(&run(command(
        &db,
        dir.path(),
        SEAL_B,
        &["keys", "reset-signing", "--yes"],
    )));
    assert!(again.contains("nothing to reset"), "{again}");
    let status = text(&run(command(&db, dir.path(), SEAL_B, &["keys", "status"])));
    assert!(
        status.contains("unpublished since") && status.contains(&format!("sealed with {b}")),
        "{status}"
    );
}

/// A database from before fingerprints were recorded (only the first migration applied) with a
/// signing key in it: auth migrates it, the key's seal fingerprint reads "not recorded" until auth
/// starts with a seal key that opens it, which records it.
async fn an_old_database_gets_its_fingerprints(backend: Backend) {
    use latchkey_auth::store::migration::Migrator;
    use sea_orm::{ConnectionTrait, Statement};
    use sea_orm_migration::MigratorTrait;
    let (Some(current), Some(old)) = (TestDb::new(backend).await, TestDb::new(backend).await)
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    start_auth(command(&current, dir.path(), SEAL_A, &[])).expect("auth starts");
    let source = sea_orm::Database::connect(&current.url).await.unwrap();
    let row = source
        .query_one_raw(Statement::from_string(
            source.get_database_backend(),
            "SELECT kid, algorithm, public_key, private_sealed, created_at FROM signing_keys",
        ))
        .await
        .unwrap()
        .expect("the first key");
    let target = sea_orm::Database::connect(&old.url).await.unwrap();
    Migrator::up(&target, Some(1)).await.unwrap();
    let backend_kind = target.get_database_backend();
    let insert = match backend {
        Backend::Sqlite => {
            "INSERT INTO signing_keys (kid, algorithm, public_key, private_sealed, created_at) VALUES (?, ?, ?, ?, ?)"
        }
        Backend::Postgres => {
            "INSERT INTO signing_keys (kid, algorithm, public_key, private_sealed, created_at) VALUES ($1, $2, $3, $4, $5)"
        }
    };
    let values = [
        row.try_get::<String>("", "kid").unwrap().into(),
        row.try_get::<String>("", "algorithm").unwrap().into(),
        row.try_get::<Vec<u8>>("", "public_key").unwrap().into(),
        row.try_get::<Vec<u8>>("", "private_sealed").unwrap().into(),
        row.try_get::<i64>("", "created_at").unwrap().into(),
    ];
    target
        .execute_raw(Statement::from_sql_and_values(backend_kind, insert, values))
        .await
        .unwrap();

    let refusal = start_auth(command(&old, dir.path(), SEAL_B, &[])).unwrap_err();
    assert!(
        refusal.contains("sealed with fingerprint (not recorded"),
        "{refusal}"
    );
    start_auth(command(&old, dir.path(), SEAL_A, &[])).expect("the old key opens");
    let status = text(&run(command(&old, dir.path(), SEAL_A, &["keys", "status"])));
    assert!(
        status.contains(&format!("sealed with {}", fingerprint(SEAL_A))),
        "{status}"
    );
}

backend_tests!(
    a_lost_seal_key_is_named_and_reset,
    an_old_database_gets_its_fingerprints
);
