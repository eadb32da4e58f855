//! Runs settings (and auth) with every log line captured at DEBUG, all targets, through writes,
//! an import, reveals, a failed integrity check, a bad batch, a rotation and a purge, and proves
//! no plaintext value or master key appears in the logs.

use crate::support::settings::*;
use crate::support::*;
use latchkey_proto::settings::v1 as pb;
use sea_orm::ConnectionTrait;

const VALUES: [&str; 5] = [
    "fo1_plaintext_fly_token_4f2a9c",
    "sk-or-v1-plaintext-openrouter-77e1",
    "tampered-plaintext-value-b93d",
    "imported-plaintext-value-0c5e",
    "rotated-plaintext-value-a1d4",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_value_or_master_key_reaches_the_logs() {
    let captured = &crate::support::logs::capture().logs;

    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let auth = spawn_auth(&db, None).await;
    let k1 = master_keys_text(&["k1"]);
    let settings = TestSettings::spawn_with(settings_config(&db, &auth.url(), &k1), &auth).await;
    tracing::info!(config = ?settings.config, "settings config debug output");
    let (user_id, token) = auth.user_token("logs").await;
    let (other_id, other) = auth.user_token("logs-other").await;
    settings
        .patch(
            &token,
            &[
                ("FLY_API_TOKEN", Some(VALUES[0])),
                ("OPENROUTER_API_KEY", Some(VALUES[1])),
            ],
        )
        .await
        .unwrap();
    settings.put(&other, "MOVED", VALUES[2]).await;
    let _ = settings
        .patch(
            &token,
            &[("1BAD", Some(VALUES[0])), ("OK", Some(VALUES[1]))],
        )
        .await;
    let _ = settings
        .import(
            &token,
            &format!("IMPORTED='{}'\nIMPORTED={}\nBARE\n", VALUES[3], VALUES[3]),
            pb::ImportMode::Merge,
            false,
        )
        .await;
    let _ = settings
        .import(
            &token,
            &format!("IMPORTED={}\nROTATED={}\n", VALUES[3], VALUES[4]),
            pb::ImportMode::Merge,
            false,
        )
        .await;
    let deployer = service_token(&auth, "deployer").await;
    settings
        .reveal(&deployer, &user_id, "FLY_API_TOKEN", "log-req")
        .await
        .unwrap();
    let raw = sea_orm::Database::connect(&db.url).await.unwrap();
    raw.execute_unprepared(&format!(
        "UPDATE setting_values SET user_id = '{user_id}' WHERE user_id = '{other_id}'"
    ))
    .await
    .unwrap();
    let _ = settings
        .reveal(&deployer, &user_id, "MOVED", "log-req-2")
        .await;
    settings.stop().await;

    let k2 = format!("{},{k1}", master_keys_text(&["k2"]));
    let config = settings_config(&db, &auth.url(), &k2);
    let conn = latchkey_common::db::connect(&db.url).await.unwrap();
    latchkey_settings::rotation::rotate_encryption(&conn, &config.keys, 2, |_| {})
        .await
        .unwrap();
    let settings = TestSettings::spawn_with(config, &auth).await;
    let _ = settings
        .reveal(&deployer, &user_id, "OPENROUTER_API_KEY", "log-req-3")
        .await
        .unwrap();
    settings.stop().await;
    auth.stop().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("setting revealed") && logs.contains("failed its integrity check"),
        "the capture works: {logs}"
    );
    let keys: Vec<String> = k2
        .split(',')
        .map(|e| e.split_once(':').unwrap().1.to_owned())
        .collect();
    let mut secrets: Vec<&str> = VALUES.to_vec();
    secrets.extend(keys.iter().map(String::as_str));
    for secret in secrets {
        assert!(!logs.contains(secret), "a secret appears in the logs");
        let chars: Vec<char> = secret.chars().collect();
        for window in chars.windows(12).step_by(4) {
            let piece: String = window.iter().collect();
            assert!(
                !logs.contains(&piece),
                "part of a secret appears in the logs: {piece}"
            );
        }
    }
}
