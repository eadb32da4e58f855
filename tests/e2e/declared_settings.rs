//! Declared settings end to end, over real HTTP and gRPC against real auth and settings on
//! SQLite and PostgreSQL: the seed app's three settings declared; writes and imports that break
//! a format refused naming the rule (never the value) with nothing written; undeclared names
//! refused; `missing`, `declared`, `valid` in the list; the schema route; generated values made
//! on first read and on request, revealed with an audit row; a reveal that requires validity; a
//! schema file changed while settings runs.

use crate::support::gateway::{TestGateway, expect_problem};
use crate::support::settings::{TestSettings, master_keys_text, service_token, spawn_auth};
use crate::support::{Backend, TestAuth, TestDb, with_bearer};
use latchkey_common::config as setting;
use latchkey_proto::settings::v1 as pb;
use latchkey_proto::settings::v1::settings_service_client::SettingsServiceClient;
use latchkey_proto::{ApiError, Reason};
use latchkey_settings::SettingsConfig;
use reqwest::Method;
use serde_json::{Value, json};

/// The seed app's settings, as an operator declares them.
pub const SEED_SCHEMA: &str = r#"{
  "settings": {
    "FLY_API_TOKEN": {"label": "Fly.io API Token", "required": true, "preset": "fly_token",
                      "help": "Create one with `fly tokens create deploy`.",
                      "link": "https://fly.io/user/personal_access_tokens"},
    "OPENROUTER_API_KEY": {"label": "OpenRouter API Key", "required": true,
                           "preset": "openrouter_key", "link": "https://openrouter.ai/keys"},
    "ENCRYPTION_KEY": {"label": "Encryption Key (optional, auto-generated if empty)",
                       "generate": {"bytes": 32, "encoding": "base64"}}
  },
  "allow_undeclared": false
}"#;

const FLY: &str = "fo1_T6o2yqvYx0m0Yk1Zr7cQ4JpB1nH2dS3eF4gA5bC6dE7";

fn openrouter() -> String {
    format!("sk-or-v1-{}", "0123456789abcdef".repeat(4))
}

struct Stack {
    _db: TestDb,
    auth: TestAuth,
    settings: TestSettings,
    gw: TestGateway,
}

/// Settings' config with the schema given as `variable` (inline JSON or a file path).
pub(crate) fn config_with_schema(
    db: &TestDb,
    auth_url: &str,
    variable: String,
    value: String,
) -> SettingsConfig {
    let loaded = crate::support::config::loaded([
        (setting::DATABASE_URL.env(), db.url.clone()),
        (setting::SETTINGS_LISTEN.env(), "127.0.0.1:0".to_owned()),
        (setting::AUTH_URL.env(), auth_url.to_owned()),
        (setting::ENCRYPTION_KEYS.env(), master_keys_text(&["k1"])),
        (variable, value),
    ]);
    crate::support::config::valid("settings", SettingsConfig::from_config(&loaded))
}

async fn stack(backend: Backend, variable: String, value: String) -> Option<Stack> {
    let db = TestDb::new(backend).await?;
    let auth = spawn_auth(&db, None).await;
    let config = config_with_schema(&db, &auth.url(), variable, value);
    let settings = TestSettings::spawn_with(config, &auth).await;
    let gw = TestGateway::spawn(&auth.url(), &settings.url()).await;
    Some(Stack {
        _db: db,
        auth,
        settings,
        gw,
    })
}

async fn send(
    gw: &TestGateway,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
) -> reqwest::Response {
    gw.authed(method, path, token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn setting<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} listed in {list}"))
}

async fn reveal(
    settings: &TestSettings,
    token: &str,
    user_id: &str,
    name: &str,
    require_valid: bool,
) -> Result<String, ApiError> {
    let mut client = SettingsServiceClient::connect(settings.url())
        .await
        .unwrap();
    client
        .reveal_setting(with_bearer(
            pb::RevealSettingRequest {
                user_id: user_id.into(),
                name: name.into(),
                require_valid,
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().value)
        .map_err(|s| ApiError::from_status(&s))
}

async fn the_seed_schema_guides_a_fresh_user(backend: Backend) {
    let Some(Stack {
        _db,
        auth,
        settings,
        gw,
    }) = stack(
        backend,
        setting::SETTINGS_SCHEMA.env(),
        SEED_SCHEMA.to_owned(),
    )
    .await
    else {
        return;
    };
    let (user_id, token) = gw.sync_user("declared").await;

    // The schema: labels, formats, generators; no values.
    let schema: Value = gw
        .call(Method::GET, "/api/settings/schema", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(schema["allow_undeclared"], false);
    let declared = schema["settings"].as_array().unwrap();
    let names: Vec<&str> = declared
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["FLY_API_TOKEN", "OPENROUTER_API_KEY", "ENCRYPTION_KEY"],
        "listed in the order the schema declares them"
    );
    let fly = declared
        .iter()
        .find(|d| d["name"] == "FLY_API_TOKEN")
        .unwrap();
    assert_eq!(fly["label"], "Fly.io API Token");
    assert_eq!(fly["required"], true);
    assert_eq!(fly["preset"], "fly_token");
    assert!(fly["hint"].as_str().unwrap().contains("fo1_"));
    let key = declared
        .iter()
        .find(|d| d["name"] == "ENCRYPTION_KEY")
        .unwrap();
    assert_eq!(key["generate"], json!({"bytes": 32, "encoding": "base64"}));

    // First read: the encryption key is made, the two required keys are missing.
    let (status, list) = gw.get_settings(&token).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["missing"],
        json!(["FLY_API_TOKEN", "OPENROUTER_API_KEY"])
    );
    let generated = setting(&list, "ENCRYPTION_KEY");
    assert_eq!(generated["length"], 44);
    assert_eq!(generated["declared"], true);
    assert_eq!(generated["valid"], true);
    let first = reveal(
        &settings,
        &service_token(&auth, "deployer").await,
        &user_id,
        "ENCRYPTION_KEY",
        true,
    )
    .await
    .unwrap();
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&first)
            .unwrap()
            .len(),
        32
    );
    // The gauge's count: this user (the only one holding settings) misses a required setting.
    assert_eq!(settings.core.users_missing_required().await.unwrap(), 1);
    // A second read keeps the value made on the first.
    let (_, again) = gw.get_settings(&token).await;
    assert_eq!(
        setting(&again, "ENCRYPTION_KEY")["updated_at"],
        generated["updated_at"]
    );

    // An OpenRouter key in the Fly.io box: refused naming the rule, never the value; nothing written.
    let wrong = openrouter();
    let response = send(
        &gw,
        Method::PATCH,
        "/api/settings",
        &token,
        json!({"settings": {"FLY_API_TOKEN": wrong, "OPENROUTER_API_KEY": openrouter()}}),
    )
    .await;
    let problem = expect_problem(response, 400, "INVALID_ARGUMENT").await;
    let text = problem.to_string();
    assert!(!text.contains(&wrong[9..30]), "{text}");
    let violation = &problem["errors"][0];
    assert_eq!(violation["field"], "settings.FLY_API_TOKEN", "{problem}");
    assert!(
        violation["description"]
            .as_str()
            .unwrap()
            .contains("`preset`"),
        "{problem}"
    );
    assert!(
        violation["description"]
            .as_str()
            .unwrap()
            .contains("fly_token"),
        "{problem}"
    );
    let (_, list) = gw.get_settings(&token).await;
    assert_eq!(
        list["missing"],
        json!(["FLY_API_TOKEN", "OPENROUTER_API_KEY"])
    );

    // Undeclared names are refused (allow_undeclared is false), also by PUT.
    for method in [Method::PATCH, Method::PUT] {
        let response = send(
            &gw,
            method,
            "/api/settings",
            &token,
            json!({"settings": {"OTHER": "x"}}),
        )
        .await;
        let problem = expect_problem(response, 400, "INVALID_ARGUMENT").await;
        assert_eq!(problem["errors"][0]["field"], "settings.OTHER", "{problem}");
        assert!(
            problem["errors"][0]["description"]
                .as_str()
                .unwrap()
                .contains("allow_undeclared")
        );
    }

    // A .env with one wrong-format line: the whole import refused, the line named, even as a preview.
    let dotenv = format!("FLY_API_TOKEN={FLY}\nOPENROUTER_API_KEY=sk-or-v1-short\n");
    for dry_run in [true, false] {
        let response = send(
            &gw,
            Method::POST,
            "/api/settings/import",
            &token,
            json!({"dotenv": dotenv, "dry_run": dry_run}),
        )
        .await;
        let problem = expect_problem(response, 400, "INVALID_ARGUMENT").await;
        assert_eq!(problem["errors"].as_array().unwrap().len(), 1, "{problem}");
        assert_eq!(problem["errors"][0]["field"], "line 2", "{problem}");
        let description = problem["errors"][0]["description"].as_str().unwrap();
        assert!(
            description.starts_with("OPENROUTER_API_KEY: breaks the `preset` rule"),
            "{description}"
        );
        assert!(!problem.to_string().contains(FLY));
    }
    let (_, list) = gw.get_settings(&token).await;
    assert_eq!(
        list["settings"].as_array().unwrap().len(),
        1,
        "nothing imported: {list}"
    );

    // Fixed: imported; nothing missing, every value valid.
    let dotenv = format!("FLY_API_TOKEN={FLY}\nOPENROUTER_API_KEY={}\n", openrouter());
    let response = send(
        &gw,
        Method::POST,
        "/api/settings/import",
        &token,
        json!({"dotenv": dotenv}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let (_, list) = gw.get_settings(&token).await;
    assert_eq!(list["missing"], json!([]));
    assert_eq!(settings.core.users_missing_required().await.unwrap(), 0);
    for name in ["FLY_API_TOKEN", "OPENROUTER_API_KEY", "ENCRYPTION_KEY"] {
        assert_eq!(setting(&list, name)["valid"], true, "{name}");
        assert_eq!(setting(&list, name)["declared"], true, "{name}");
    }

    // Generate on request: a new value; a name without `generate` is refused.
    let response = gw
        .call(
            Method::POST,
            "/api/settings/ENCRYPTION_KEY/generate",
            &token,
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["setting"]["name"], "ENCRYPTION_KEY");
    assert_eq!(body["setting"]["length"], 44);
    let deployer = service_token(&auth, "deployer").await;
    let second = reveal(&settings, &deployer, &user_id, "ENCRYPTION_KEY", false)
        .await
        .unwrap();
    assert_ne!(first, second);
    let response = gw
        .call(Method::POST, "/api/settings/FLY_API_TOKEN/generate", &token)
        .await;
    expect_problem(response, 400, "INVALID_ARGUMENT").await;

    // Generated values' reveals are audited like any other.
    let auditor = service_token(&auth, "auditor").await;
    let audit = settings.audit(&auditor, &user_id, 50, "").await.unwrap();
    let audited = audit
        .entries
        .iter()
        .filter(|e| e.name == "ENCRYPTION_KEY")
        .count();
    assert_eq!(audited, 2, "{audit:?}");
    gw.stop().await;
    settings.stop().await;
}

async fn a_schema_file_change_applies_without_restart(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("schema.json");
    std::fs::write(
        &file,
        r#"{"settings": {"FLY_API_TOKEN": {"label": "Fly"}}}"#,
    )
    .unwrap();
    let Some(Stack {
        _db,
        auth,
        settings,
        gw,
    }) = stack(
        backend,
        setting::SETTINGS_SCHEMA_FILE.env(),
        file.display().to_string(),
    )
    .await
    else {
        return;
    };
    let (user_id, token) = gw.sync_user("reload").await;
    let response = send(
        &gw,
        Method::PATCH,
        "/api/settings",
        &token,
        json!({"settings": {"FLY_API_TOKEN": "not-a-fly-token", "OTHER": "kept"}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let (_, list) = gw.get_settings(&token).await;
    assert_eq!(setting(&list, "FLY_API_TOKEN")["valid"], true);
    assert_eq!(setting(&list, "OTHER")["declared"], false);

    // Tighten the schema on disk; settings re-reads it while running.
    std::fs::write(&file, r#"{"settings": {"FLY_API_TOKEN": {"label": "Fly", "required": true, "preset": "fly_token"}}}"#).unwrap();
    let mut tightened = false;
    for _ in 0..100 {
        let (_, list) = gw.get_settings(&token).await;
        if setting(&list, "FLY_API_TOKEN")["valid"] == false {
            tightened = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(tightened, "the changed schema file was taken");

    let deployer = service_token(&auth, "deployer").await;
    let refused = reveal(&settings, &deployer, &user_id, "FLY_API_TOKEN", true)
        .await
        .unwrap_err();
    assert_eq!(refused.reason, Reason::SettingInvalid);
    assert!(
        refused.detail.contains("fly_token") && !refused.detail.contains("not-a-fly-token"),
        "{}",
        refused.detail
    );
    assert_eq!(
        reveal(&settings, &deployer, &user_id, "FLY_API_TOKEN", false)
            .await
            .unwrap(),
        "not-a-fly-token"
    );

    // A broken file is not taken: the previous schema stays.
    std::fs::write(
        &file,
        r#"{"settings": {"FLY_API_TOKEN": {"preset": "nope"}}}"#,
    )
    .unwrap();
    tokio::time::sleep(latchkey_settings::schema::source::REFRESH * 2).await;
    let schema: Value = gw
        .call(Method::GET, "/api/settings/schema", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(schema["settings"][0]["preset"], "fly_token");
    gw.stop().await;
    settings.stop().await;
}

backend_tests!(
    the_seed_schema_guides_a_fresh_user,
    a_schema_file_change_applies_without_restart,
);

#[test]
fn a_broken_schema_refuses_to_start_one_line_per_problem() {
    let loaded = crate::support::config::loaded([
        (setting::ENCRYPTION_KEYS.env(), master_keys_text(&["k1"])),
        (
            setting::SETTINGS_SCHEMA.env(),
            r#"{"settings": {"A": {"preset": "nope"}, "B": {"pattern": "(", "min_length": 3, "max_length": 1}}}"#.to_owned(),
        ),
    ]);
    let problems = SettingsConfig::from_config(&loaded).expect_err("refused");
    let lines: Vec<String> = problems.0.iter().map(|p| p.what.clone()).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        problems
            .0
            .iter()
            .all(|p| p.variable == "LATCHKEY_SETTINGS_SCHEMA")
    );
}

/// `latchkey settings check` against a real (SQLite) database: counts per incomplete user, never
/// values, non-zero exit while any user is incomplete.
#[test]
fn settings_check_counts_missing_and_invalid_per_user() {
    use crate::support::process::{latchkey, text};
    let dir = tempfile::tempdir().unwrap();
    let keys = format!(
        "k1:{}",
        latchkey_common::seal::SealKey::generate()
            .to_base64()
            .as_str()
    );
    let env = [("LATCHKEY_ENCRYPTION_KEYS", keys.as_str())];
    let wrong_fly = "fo2_written-before-the-schema";
    let users = [
        (
            "u-1",
            format!(
                "FLY_API_TOKEN={wrong_fly}\nOPENROUTER_API_KEY={}\n",
                openrouter()
            ),
        ),
        (
            "u-2",
            format!("FLY_API_TOKEN={FLY}\nOPENROUTER_API_KEY={}\n", openrouter()),
        ),
        ("u-3", "OTHER=1\n".to_owned()),
    ];
    for (user, dotenv) in &users {
        let file = dir.path().join(format!("{user}.env"));
        std::fs::write(&file, dotenv).unwrap();
        let args = [
            "settings",
            "import",
            "--user-id",
            user,
            "--file",
            file.to_str().unwrap(),
        ];
        let output = latchkey(dir.path(), &args, &env).output().unwrap();
        assert!(output.status.success(), "{}", text(&output));
    }
    let with_schema = [
        ("LATCHKEY_ENCRYPTION_KEYS", keys.as_str()),
        ("LATCHKEY_SETTINGS_SCHEMA", SEED_SCHEMA),
    ];
    let output = latchkey(dir.path(), &["settings", "check"], &with_schema)
        .output()
        .unwrap();
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("user u-1: 0 required setting(s) missing, 1 invalid"),
        "{shown}"
    );
    assert!(
        shown.contains("user u-3: 2 required setting(s) missing, 0 invalid"),
        "{shown}"
    );
    assert!(!shown.contains("user u-2"), "{shown}");
    assert!(shown.contains("2 of 3 user(s)"), "{shown}");
    assert!(
        !shown.contains(wrong_fly) && !shown.contains("FLY_API_TOKEN"),
        "{shown}"
    );

    // A broken schema: settings check (like the service) refuses with one line per problem.
    let broken = [
        ("LATCHKEY_ENCRYPTION_KEYS", keys.as_str()),
        (
            "LATCHKEY_SETTINGS_SCHEMA",
            r#"{"settings": {"A": {"preset": "nope"}}}"#,
        ),
    ];
    let output = latchkey(dir.path(), &["settings", "check"], &broken)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("LATCHKEY_SETTINGS_SCHEMA: settings.A.preset"),
        "{}",
        text(&output)
    );
}
