//! `latchkey doctor` against real services with deliberately broken configuration: each fault
//! shows as its own ✘ with the cause and the fix, and the exit code is non-zero.

mod support;

use std::process::Command;
use support::*;

fn doctor(env: &[(&str, String)]) -> (bool, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .args(["doctor", "--json"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run doctor");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("json: {}", String::from_utf8_lossy(&output.stdout)));
    (output.status.success(), report)
}

fn failed<'a>(report: &'a serde_json::Value, name_prefix: &str) -> Option<&'a serde_json::Value> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with(name_prefix) && c["ok"] == false)
}

fn base_env(db: &TestDb, auth: &TestAuth) -> Vec<(&'static str, String)> {
    vec![
        ("LATCHKEY_DATABASE_URL", db.url.clone()),
        ("LATCHKEY_AUTH_URL", auth.url()),
        ("LATCHKEY_SYNC_SECRET", SYNC_SECRET.to_owned()),
        (
            "LATCHKEY_SEAL_KEY",
            auth.config.seal_key.to_base64().to_string(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_auth_passes() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let auth = TestAuth::spawn(&db).await;
    let (ok, report) = doctor(&base_env(&db, &auth));
    assert!(ok, "{report:#}");
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mismatched_sync_secret_is_named_with_its_fix() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let auth = TestAuth::spawn(&db).await;
    let mut env = base_env(&db, &auth);
    env[2].1 = "the-web-apps-different-secret-0123456789".into();
    let (ok, report) = doctor(&env);
    assert!(!ok);
    let check = failed(&report, "sync secret as auth sees it").expect("a ✘ for the sync secret");
    assert!(
        check["cause"]
            .as_str()
            .unwrap()
            .contains("different secrets"),
        "{check}"
    );
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("latchkey fingerprint"),
        "{check}"
    );
    auth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_service_and_a_missing_migration_are_named() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let auth = TestAuth::spawn(&db).await;
    let mut env = base_env(&db, &auth);
    auth.stop().await;
    let fresh = TestDb::new(Backend::Sqlite).await.unwrap();
    env[0].1 = fresh.url.clone();
    let (ok, report) = doctor(&env);
    assert!(!ok);
    let down = failed(&report, "service reachable: auth").expect("auth down is a ✘");
    assert!(
        down["fix"].as_str().unwrap().contains("latchkey auth"),
        "{down}"
    );
    let migration = failed(&report, "database migrated: auth").expect("missing migration is a ✘");
    assert_eq!(migration["fix"], "run `latchkey migrate`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_a_config_failure() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let auth = TestAuth::spawn(&db).await;
    let env: Vec<_> = base_env(&db, &auth)
        .into_iter()
        .filter(|(k, _)| *k != "LATCHKEY_SEAL_KEY")
        .collect();
    let (ok, report) = doctor(&env);
    assert!(!ok);
    let check =
        failed(&report, "config: auth: LATCHKEY_SEAL_KEY").expect("missing seal key is a ✘");
    assert_eq!(check["cause"], "is not set");
    auth.stop().await;
}
