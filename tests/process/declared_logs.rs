//! Runs settings with the seed app's declared settings and every log line captured at DEBUG:
//! generated values (made on first read, on request, and for an empty `.env` value) revealed,
//! and writes refused for breaking a format; proves none of those values reaches the logs.

use crate::support::settings::*;
use crate::support::*;
use latchkey_common::config as setting;
use latchkey_proto::settings::v1 as pb;
use latchkey_settings::SettingsConfig;

const SCHEMA: &str = r#"{"settings": {
  "FLY_API_TOKEN": {"label": "Fly.io API Token", "required": true, "preset": "fly_token"},
  "ENCRYPTION_KEY": {"label": "Encryption Key", "generate": {"bytes": 32}},
  "SIGNING_KEY": {"label": "Signing Key", "generate": {"bytes": 24, "encoding": "hex"}}
}}"#;

const WRONG_BOX: &str = "sk-or-v1-plaintext-in-the-wrong-box-5d1c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_and_refused_values_never_reach_the_logs() {
    let captured = &crate::support::logs::capture().logs;
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let auth = spawn_auth(&db, None).await;
    let loaded = crate::support::config::loaded([
        (setting::DATABASE_URL.env(), db.url.clone()),
        (setting::SETTINGS_LISTEN.env(), "127.0.0.1:0".to_owned()),
        (setting::AUTH_URL.env(), auth.url()),
        (setting::ENCRYPTION_KEYS.env(), master_keys_text(&["k1"])),
        (setting::SETTINGS_SCHEMA.env(), SCHEMA.to_owned()),
    ]);
    let config = crate::support::config::valid("settings", SettingsConfig::from_config(&loaded));
    let settings = TestSettings::spawn_with(config, &auth).await;
    let (user_id, token) = auth.user_token("declared-logs").await;
    let deployer = service_token(&auth, "deployer").await;

    // First read makes both generated values.
    let listed = settings.list(&token).await.unwrap();
    assert_eq!(listed.len(), 2);
    let mut revealed = vec![
        settings
            .reveal(&deployer, &user_id, "ENCRYPTION_KEY", "gen-1")
            .await
            .unwrap(),
        settings
            .reveal(&deployer, &user_id, "SIGNING_KEY", "gen-2")
            .await
            .unwrap(),
    ];
    // On request.
    settings
        .client()
        .await
        .generate_setting(with_bearer(
            pb::GenerateSettingRequest {
                name: "ENCRYPTION_KEY".into(),
            },
            &token,
        ))
        .await
        .unwrap();
    revealed.push(
        settings
            .reveal(&deployer, &user_id, "ENCRYPTION_KEY", "gen-3")
            .await
            .unwrap(),
    );
    // An empty value in a .env is generated too.
    settings
        .import(&token, "SIGNING_KEY=\n", pb::ImportMode::Merge, false)
        .await
        .unwrap();
    let made = settings
        .reveal(&deployer, &user_id, "SIGNING_KEY", "gen-4")
        .await
        .unwrap();
    assert_eq!(made.len(), 48);
    assert_ne!(made, revealed[1]);
    revealed.push(made);
    // Refused for its format, by batch and by import.
    let refused = settings
        .patch(&token, &[("FLY_API_TOKEN", Some(WRONG_BOX))])
        .await
        .unwrap_err();
    assert_eq!(refused.reason, latchkey_proto::Reason::InvalidArgument);
    let _ = settings
        .import(
            &token,
            &format!("FLY_API_TOKEN={WRONG_BOX}\n"),
            pb::ImportMode::Merge,
            true,
        )
        .await
        .unwrap_err();
    settings.stop().await;
    auth.stop().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("generated settings made on first read")
            && logs.contains("generated setting made on request"),
        "the capture works: {logs}"
    );
    let mut secrets: Vec<String> = revealed;
    secrets.push(WRONG_BOX.to_owned());
    for secret in &secrets {
        let chars: Vec<char> = secret.chars().collect();
        for window in chars.windows(12).step_by(4) {
            let piece: String = window.iter().collect();
            assert!(
                !logs.contains(&piece),
                "part of a generated or refused value appears in the logs: {piece}"
            );
        }
    }
}
