//! `latchkey doctor` against real services (auth, settings, gateway on port 0) with deliberately
//! broken configuration: each fault shows as its own ✘ with the cause and the fix, and the exit
//! code is non-zero. The healthy stack passes, live probe included.

use crate::support::gateway::TestGateway;
use crate::support::settings::{TestSettings, master_keys_text, settings_config, spawn_auth};
use crate::support::*;

/// Runs the built binary's `doctor --json` with exactly `env` (plus PATH) and `extra` arguments.
fn doctor_with(env: &[(&str, String)], extra: &[&str]) -> (bool, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = ["doctor", "--json"]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect();
    let output = crate::support::process::latchkey(dir.path(), &args, &env)
        .output()
        .expect("run doctor");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("json: {}", String::from_utf8_lossy(&output.stdout)));
    (output.status.success(), report)
}

fn doctor(env: &[(&str, String)]) -> (bool, serde_json::Value) {
    doctor_with(env, &[])
}

fn checks(report: &serde_json::Value) -> &Vec<serde_json::Value> {
    report["checks"].as_array().unwrap()
}

fn failed<'a>(report: &'a serde_json::Value, name_prefix: &str) -> Option<&'a serde_json::Value> {
    checks(report)
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with(name_prefix) && c["ok"] == false)
}

fn passed<'a>(report: &'a serde_json::Value, name_prefix: &str) -> Option<&'a serde_json::Value> {
    checks(report)
        .iter()
        .find(|c| c["name"].as_str().unwrap().starts_with(name_prefix) && c["ok"] == true)
}

fn text<'a>(check: &'a serde_json::Value, field: &str) -> &'a str {
    check[field].as_str().unwrap_or_default()
}

/// Auth, settings and gateway on one database, as `latchkey dev` runs them.
struct Stack {
    db: TestDb,
    auth: TestAuth,
    settings: Option<TestSettings>,
    gateway: TestGateway,
    keys: String,
}

impl Stack {
    /// The stack on `backend`; `None` when PostgreSQL is not there outside CI.
    async fn start(backend: Backend) -> Option<Stack> {
        Stack::start_with_schema(backend, None).await
    }

    /// The stack with settings under declared settings `schema` (JSON), if any.
    async fn start_with_schema(backend: Backend, schema: Option<&str>) -> Option<Stack> {
        let db = TestDb::new(backend).await?;
        let listener = TestSettings::reserve().await;
        let settings_url = format!("http://{}", listener.local_addr().unwrap());
        let auth = spawn_auth(&db, Some(settings_url)).await;
        let keys = master_keys_text(&["k1"]);
        let config = match schema {
            Some(schema) => crate::declared_settings::config_with_schema(
                &db,
                &auth.url(),
                latchkey_common::config::SETTINGS_SCHEMA.env(),
                schema.to_owned(),
            ),
            None => settings_config(&db, &auth.url(), &keys),
        };
        let settings = TestSettings::spawn_on(config, listener, &auth).await;
        let gateway = TestGateway::spawn(&auth.url(), &settings.url()).await;
        Some(Stack {
            db,
            auth,
            settings: Some(settings),
            gateway,
            keys,
        })
    }

    fn settings_url(&self) -> String {
        self.settings
            .as_ref()
            .map(|s| s.url())
            .unwrap_or_else(|| format!("http://{}", crate::support::gateway::unused_addr()))
    }

    /// The environment of an operator machine holding the stack's configuration.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LATCHKEY_DATABASE_URL", self.db.url.clone()),
            ("LATCHKEY_AUTH_URL", self.auth.url()),
            ("LATCHKEY_SYNC_SECRET", SYNC_SECRET.to_owned()),
            (
                "LATCHKEY_SEAL_KEY",
                self.auth.config.seal_key.to_base64().to_string(),
            ),
            ("LATCHKEY_SETTINGS_URL", self.settings_url()),
            ("LATCHKEY_ENCRYPTION_KEYS", self.keys.clone()),
            ("LATCHKEY_GATEWAY_URL", self.gateway.url("")),
        ]
    }

    async fn stop(self) {
        self.gateway.stop().await;
        if let Some(settings) = self.settings {
            settings.stop().await;
        }
        self.auth.stop().await;
    }
}

fn set(env: &mut [(&'static str, String)], key: &str, value: String) {
    env.iter_mut().find(|(k, _)| *k == key).unwrap().1 = value;
}

const PROBE_STEPS: &[&str] = &[
    "live probe: sync probe user",
    "live probe: read settings",
    "live probe: write a setting",
    "live probe: list shows it masked",
    "live probe: delete probe user",
];

async fn a_healthy_stack_passes_with_the_live_probe(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let (ok, report) = doctor(&stack.env());
    assert!(ok, "{report:#}");
    for name in [
        "config: auth",
        "config: settings",
        "config: gateway",
        "database migrated: auth",
        "database migrated: settings",
        "database key ids: settings",
        "service reachable: auth",
        "service reachable: settings",
        "service reachable: gateway",
        "JWKS served",
        "JWKS as the gateway serves it",
        "sync secret as auth sees it",
    ]
    .iter()
    .chain(PROBE_STEPS)
    {
        assert!(passed(&report, name).is_some(), "no ✔ {name}: {report:#}");
    }
    let masked = passed(&report, "live probe: list shows it masked").unwrap();
    assert!(text(masked, "detail").contains("DOCTOR_PROBE"), "{masked}");
    // The signing keys with their state: the one auth created on start signs.
    let keys = passed(&report, "signing keys").expect("a ✔ for the signing keys");
    assert!(
        text(keys, "detail").contains("(EdDSA) active since"),
        "{keys}"
    );
    let version = env!("CARGO_PKG_VERSION");
    let versions = passed(&report, "versions").expect("a ✔ for versions");
    assert!(
        text(versions, "detail").contains(&format!(
            "auth {version}, settings {version}, gateway {version}"
        )),
        "{versions}"
    );
    // The probe cleaned up after itself: no settings rows are left behind.
    let (ok, report) = doctor(&stack.env());
    assert!(ok, "{report:#}");
    let keys = passed(&report, "database key ids: settings").unwrap();
    assert_eq!(keys["detail"], "no stored settings yet", "{keys}");
    stack.stop().await;
}

/// Under declared settings that refuse undeclared names the probe cannot write `DOCTOR_PROBE`:
/// it has a declared generated setting made instead, and the stack still passes.
async fn the_live_probe_respects_declared_settings(backend: Backend) {
    let schema = crate::declared_settings::SEED_SCHEMA;
    let Some(stack) = Stack::start_with_schema(backend, Some(schema)).await else {
        return;
    };
    let (ok, report) = doctor(&stack.env());
    assert!(ok, "{report:#}");
    let write = passed(&report, "live probe: write a setting").unwrap();
    assert!(
        text(write, "detail").contains("/api/settings/ENCRYPTION_KEY/generate"),
        "{write}"
    );
    let masked = passed(&report, "live probe: list shows it masked").unwrap();
    assert!(
        text(masked, "detail").contains("ENCRYPTION_KEY"),
        "{masked}"
    );
    stack.stop().await;
}

async fn a_mismatched_sync_secret_is_named_with_its_fix(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let mut env = stack.env();
    set(
        &mut env,
        "LATCHKEY_SYNC_SECRET",
        "the-web-apps-different-secret-0123456789".into(),
    );
    let (ok, report) = doctor(&env);
    assert!(!ok);
    let check = failed(&report, "sync secret as auth sees it").expect("a ✘ for the sync secret");
    assert!(
        text(check, "cause").contains("different secrets"),
        "{check}"
    );
    assert!(
        text(check, "fix").contains("latchkey fingerprint"),
        "{check}"
    );
    let probe = failed(&report, "live probe: sync probe user").expect("the probe cannot sign in");
    assert!(
        text(probe, "cause").contains("SYNC_SECRET_INVALID"),
        "{probe}"
    );
    assert!(
        text(probe, "fix").contains("latchkey fingerprint"),
        "{probe}"
    );
    assert!(
        passed(&report, "live probe: read settings").is_none(),
        "{report:#}"
    );
    stack.stop().await;
}

async fn stopped_settings_is_named_and_the_probe_says_upstream_unavailable(backend: Backend) {
    let Some(mut stack) = Stack::start(backend).await else {
        return;
    };
    let env = stack.env();
    stack.settings.take().unwrap().stop().await;
    let (ok, report) = doctor(&env);
    assert!(!ok);
    let down = failed(&report, "service reachable: settings").expect("settings down is a ✘");
    assert!(text(down, "fix").contains("latchkey settings"), "{down}");
    let ready = failed(&report, "service reachable: gateway").expect("readyz fails");
    assert!(
        text(ready, "cause").contains("UPSTREAM_UNAVAILABLE"),
        "{ready}"
    );
    assert!(
        passed(&report, "live probe: sync probe user").is_some(),
        "{report:#}"
    );
    let step = failed(&report, "live probe: read settings").expect("the probe stops at settings");
    assert!(
        text(step, "cause").contains("UPSTREAM_UNAVAILABLE"),
        "{step}"
    );
    assert!(
        text(step, "fix").contains("start `latchkey settings`"),
        "{step}"
    );
    stack.stop().await;
}

async fn an_unconfigured_key_id_is_named_with_its_row_count(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let (_, token) = stack.gateway.sync_user("key-owner").await;
    stack
        .settings
        .as_ref()
        .unwrap()
        .put(&token, "OPENROUTER_API_KEY", "sk-or-0123456789")
        .await;
    let mut env = stack.env();
    set(
        &mut env,
        "LATCHKEY_ENCRYPTION_KEYS",
        master_keys_text(&["k2"]),
    );
    let (ok, report) = doctor(&env);
    assert!(!ok);
    let check =
        failed(&report, "database key ids: settings: key `k1`").expect("k1 unconfigured is a ✘");
    assert!(text(check, "cause").contains("1 stored setting"), "{check}");
    assert!(
        text(check, "fix").contains("add `k1:<key>` to LATCHKEY_ENCRYPTION_KEYS"),
        "{check}"
    );
    // Only that is wrong: the running stack still works end to end.
    for step in PROBE_STEPS {
        assert!(passed(&report, step).is_some(), "no ✔ {step}: {report:#}");
    }
    stack.stop().await;
}

async fn a_stopped_auth_and_missing_migrations_are_named(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let mut env = stack.env();
    let fresh = TestDb::new(backend).await.unwrap();
    set(&mut env, "LATCHKEY_DATABASE_URL", fresh.url.clone());
    set(
        &mut env,
        "LATCHKEY_AUTH_URL",
        format!("http://{}", crate::support::gateway::unused_addr()),
    );
    let (ok, report) = doctor(&env);
    assert!(!ok);
    let down = failed(&report, "service reachable: auth").expect("auth unreachable is a ✘");
    assert!(text(down, "fix").contains("latchkey auth"), "{down}");
    for service in ["auth", "settings"] {
        let migration = failed(&report, &format!("database migrated: {service}"))
            .unwrap_or_else(|| panic!("missing {service} migration is a ✘: {report:#}"));
        assert_eq!(migration["fix"], "run `latchkey migrate`");
    }
    stack.stop().await;
}

async fn a_missing_secret_is_a_config_failure_per_service(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let env: Vec<_> = stack
        .env()
        .into_iter()
        .filter(|(k, _)| !matches!(*k, "LATCHKEY_SEAL_KEY" | "LATCHKEY_ENCRYPTION_KEYS"))
        .collect();
    let (ok, report) = doctor(&env);
    assert!(!ok);
    let check =
        failed(&report, "config: auth: LATCHKEY_SEAL_KEY").expect("missing seal key is a ✘");
    assert_eq!(check["cause"], "is not set");
    let check = failed(&report, "config: settings: LATCHKEY_ENCRYPTION_KEYS")
        .expect("missing encryption keys is a ✘");
    assert_eq!(check["cause"], "is not set");
    assert!(!text(check, "fix").is_empty(), "{check}");
    stack.stop().await;
}

async fn service_restricts_config_and_database_checks(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    // An auth host: no settings keys, no gateway addresses in its environment.
    let env: Vec<_> = stack
        .env()
        .into_iter()
        .filter(|(k, _)| *k != "LATCHKEY_ENCRYPTION_KEYS")
        .collect();
    let (_, report) = doctor_with(&env, &["--service", "auth"]);
    assert!(passed(&report, "config: auth").is_some(), "{report:#}");
    assert!(
        passed(&report, "database migrated: auth").is_some(),
        "{report:#}"
    );
    for skipped in [
        "config: settings",
        "config: gateway",
        "database migrated: settings",
    ] {
        assert!(
            !checks(&report)
                .iter()
                .any(|c| c["name"].as_str().unwrap().starts_with(skipped)),
            "{skipped} should not run with --service auth: {report:#}"
        );
    }
    let (ok, report) = doctor_with(
        &stack.env(),
        &["--service", "settings", "--service", "gateway"],
    );
    assert!(ok, "{report:#}");
    assert!(passed(&report, "config: settings").is_some(), "{report:#}");
    assert!(
        !checks(&report)
            .iter()
            .any(|c| c["name"].as_str().unwrap().starts_with("config: auth")),
        "{report:#}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_unknown_to_settings_auth_is_user_not_synced() {
    use sea_orm::ConnectionTrait;
    // Two auths on two databases holding the same signing keys (the second database is a copy
    // of the first, as after restoring a backup): the gateway syncs users into one, settings asks
    // the other whether they exist.
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let listener = TestSettings::reserve().await;
    let settings_url = format!("http://{}", listener.local_addr().unwrap());
    let auth = spawn_auth(&db, Some(settings_url)).await;
    let copy = TestDb::new(Backend::Sqlite).await.unwrap();
    let copy_path = copy
        .url
        .trim_start_matches("sqlite://")
        .trim_end_matches("?mode=rwc")
        .to_owned();
    sea_orm::Database::connect(&db.url)
        .await
        .unwrap()
        .execute_unprepared(&format!("VACUUM INTO '{copy_path}'"))
        .await
        .expect("copy the database");
    let mut other_config = auth.config.clone();
    other_config.database_url = latchkey_common::SecretString::from(copy.url.clone());
    other_config.settings_url = None;
    let other_auth = TestAuth::spawn_with(other_config).await;
    let keys = master_keys_text(&["k1"]);
    let settings = TestSettings::spawn_on(
        settings_config(&db, &other_auth.url(), &keys),
        listener,
        &other_auth,
    )
    .await;
    let gateway = TestGateway::spawn(&auth.url(), &settings.url()).await;
    let stack = Stack {
        db,
        auth,
        settings: Some(settings),
        gateway,
        keys,
    };
    let (ok, report) = doctor(&stack.env());
    assert!(!ok);
    assert!(
        passed(&report, "live probe: sync probe user").is_some(),
        "{report:#}"
    );
    let step = failed(&report, "live probe: read settings").expect("settings refuses the user");
    assert!(text(step, "cause").contains("USER_NOT_SYNCED"), "{step}");
    assert!(
        text(step, "fix").contains("LATCHKEY_DATABASE_URL"),
        "{step}"
    );
    stack.stop().await;
    other_auth.stop().await;
}

async fn a_gateway_on_another_auth_is_named_by_its_jwks(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    // A second auth with its own database and signing keys, and a gateway in front of it: the
    // operator's LATCHKEY_AUTH_URL and the gateway disagree about which auth is "the" auth.
    let other_db = TestDb::new(backend).await.unwrap();
    let other_auth = TestAuth::spawn(&other_db).await;
    let stray_gateway = TestGateway::spawn(&other_auth.url(), &stack.settings_url()).await;
    let mut env = stack.env();
    set(&mut env, "LATCHKEY_GATEWAY_URL", stray_gateway.url(""));
    let (ok, report) = doctor(&env);
    assert!(!ok);
    let check = failed(&report, "JWKS as the gateway serves it").expect("a ✘ for the JWKS");
    assert!(text(check, "cause").contains("different auths"), "{check}");
    assert!(text(check, "fix").contains("LATCHKEY_AUTH_URL"), "{check}");
    stray_gateway.stop().await;
    other_auth.stop().await;
    stack.stop().await;
}

backend_tests!(
    a_healthy_stack_passes_with_the_live_probe,
    the_live_probe_respects_declared_settings,
    a_mismatched_sync_secret_is_named_with_its_fix,
    stopped_settings_is_named_and_the_probe_says_upstream_unavailable,
    an_unconfigured_key_id_is_named_with_its_row_count,
    a_stopped_auth_and_missing_migrations_are_named,
    a_missing_secret_is_a_config_failure_per_service,
    service_restricts_config_and_database_checks,
    a_gateway_on_another_auth_is_named_by_its_jwks,
);

/// `doctor --web-app-env PATH`: the web app's own env file (its sync secret, AUTH_SECRET /
/// NEXTAUTH_SECRET, the Latchkey URL it calls) checked against a running stack whose auth
/// accepts the web app's legacy tokens; every ✘ with its fix, never a value printed.
mod web_app {
    use super::*;

    /// The stack with legacy mode on: auth holds [`LEGACY_SECRET`].
    async fn legacy_stack(backend: Backend) -> Option<Stack> {
        let db = TestDb::new(backend).await?;
        let listener = TestSettings::reserve().await;
        let settings_url = format!("http://{}", listener.local_addr().unwrap());
        let mut config = auth_config(&db);
        config.clients = latchkey_auth::config::parse_clients(
            crate::support::settings::SETTINGS_CLIENTS,
            &mut Default::default(),
        );
        config.settings_url = Some(settings_url);
        config.rules.legacy = Some(legacy_rules());
        let auth = TestAuth::spawn_with(config).await;
        let keys = master_keys_text(&["k1"]);
        let settings =
            TestSettings::spawn_on(settings_config(&db, &auth.url(), &keys), listener, &auth).await;
        let gateway = TestGateway::spawn(&auth.url(), &settings.url()).await;
        Some(Stack {
            db,
            auth,
            settings: Some(settings),
            gateway,
            keys,
        })
    }

    /// Writes the web app's env file; answers its path.
    fn web_app_env(dir: &tempfile::TempDir, text: &str) -> String {
        let path = dir.path().join(".env.local");
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn never_printed(report: &serde_json::Value, values: &[&str]) {
        let printed = report.to_string();
        for value in values {
            assert!(!printed.contains(value), "a value was printed: {report:#}");
        }
    }

    async fn a_matching_web_app_env_passes(backend: Backend) {
        let Some(stack) = legacy_stack(backend).await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = web_app_env(
            &dir,
            &format!(
                "# the web app's .env.local\nLATCHKEY_SYNC_SECRET={SYNC_SECRET}\nAUTH_SECRET=\"{LEGACY_SECRET}\"\nNEXTAUTH_SECRET='{LEGACY_SECRET}'\nLATCHKEY_URL={}/api\n",
                stack.gateway.url("")
            ),
        );
        let (ok, report) = doctor_with(&stack.env(), &["--web-app-env", &path]);
        assert!(ok, "{report:#}");
        for name in [
            "web app env:",
            "web app: sync secret as auth sees it",
            "web app: AUTH_SECRET and NEXTAUTH_SECRET",
            "web app: AUTH_SECRET as auth sees it",
            "web app: NEXTAUTH_SECRET as auth sees it",
            "web app: LATCHKEY_URL",
        ] {
            assert!(passed(&report, name).is_some(), "no ✔ {name}: {report:#}");
        }
        let legacy = passed(&report, "web app: AUTH_SECRET as auth sees it").unwrap();
        assert!(
            text(legacy, "detail").contains("auth verifies a token signed with AUTH_SECRET"),
            "{legacy}"
        );
        never_printed(&report, &[SYNC_SECRET, LEGACY_SECRET]);
        stack.stop().await;
    }

    async fn a_mismatched_web_app_env_names_each_problem_with_its_fix(backend: Backend) {
        use latchkey_common::secret::fingerprint;
        let Some(stack) = legacy_stack(backend).await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (wrong_sync, wrong_auth) = (
            "the-web-apps-stale-sync-secret-0123456789",
            "an-auth-js-v5-secret-nobody-told-latchkey",
        );
        let unused = format!("http://{}", crate::support::gateway::unused_addr());
        let path = web_app_env(
            &dir,
            &format!(
                "AUTH_SYNC_SECRET={wrong_sync}\nAUTH_SECRET={wrong_auth}\nNEXTAUTH_SECRET={LEGACY_SECRET}\nNEXT_PUBLIC_LATCHKEY_URL={unused}\n"
            ),
        );
        let (ok, report) = doctor_with(&stack.env(), &["--web-app-env", &path]);
        assert!(!ok);

        let sync = failed(&report, "web app: sync secret as auth sees it").expect("sync ✘");
        assert!(text(sync, "cause").contains("different secrets"), "{sync}");
        assert!(
            text(sync, "cause").contains(&fingerprint(wrong_sync.as_bytes())),
            "{sync}"
        );
        assert!(
            text(sync, "fix").contains(&format!("set AUTH_SYNC_SECRET in {path}")),
            "{sync}"
        );

        let pair = failed(&report, "web app: AUTH_SECRET and NEXTAUTH_SECRET").expect("pair ✘");
        for expected in [
            format!(
                "AUTH_SECRET (fingerprint {})",
                fingerprint(wrong_auth.as_bytes())
            ),
            format!(
                "NEXTAUTH_SECRET (fingerprint {})",
                fingerprint(LEGACY_SECRET.as_bytes())
            ),
            "Auth.js v5 (next-auth@5, @auth/core) reads AUTH_SECRET first".to_owned(),
            "next-auth v4 (≥ 4.24.10) reads NEXTAUTH_SECRET first".to_owned(),
        ] {
            assert!(
                text(pair, "cause").contains(&expected),
                "{expected}: {pair}"
            );
        }

        let legacy =
            failed(&report, "web app: AUTH_SECRET as auth sees it").expect("AUTH_SECRET ✘");
        assert!(
            text(legacy, "cause").contains("auth holds another legacy secret"),
            "{legacy}"
        );
        assert!(
            text(legacy, "fix").contains("LATCHKEY_LEGACY_HS256_SECRET"),
            "{legacy}"
        );
        assert!(
            passed(&report, "web app: NEXTAUTH_SECRET as auth sees it").is_some(),
            "{report:#}"
        );

        let url = failed(&report, "web app: NEXT_PUBLIC_LATCHKEY_URL").expect("URL ✘");
        assert!(text(url, "cause").contains("cannot connect"), "{url}");
        assert!(
            text(url, "fix").contains(&stack.gateway.url("")),
            "the fix names the gateway doctor reached: {url}"
        );
        never_printed(
            &report,
            &[wrong_sync, wrong_auth, LEGACY_SECRET, SYNC_SECRET],
        );

        // A file naming nothing Latchkey knows, and a file the parser refuses.
        let path = web_app_env(&dir, "NEXT_PUBLIC_SITE_NAME=Acme\n");
        let (_, report) = doctor_with(&stack.env(), &["--web-app-env", &path]);
        let none = failed(&report, "web app: sync secret as auth sees it").expect("no sync ✘");
        assert!(
            text(none, "cause").contains("sets none of LATCHKEY_SYNC_SECRET, AUTH_SYNC_SECRET"),
            "{none}"
        );
        assert!(
            failed(&report, "web app: AUTH_SECRET / NEXTAUTH_SECRET").is_none(),
            "doctor's environment holds no legacy secret: nothing to demand: {report:#}"
        );
        assert!(
            failed(&report, "web app: Latchkey URL").is_some(),
            "{report:#}"
        );
        let path = web_app_env(&dir, "GOOD=1\nAUTH_SECRET='s3cr3t-left-unclosed\n");
        let (_, report) = doctor_with(&stack.env(), &["--web-app-env", &path]);
        let bad = failed(&report, "web app env:").expect("parse ✘");
        assert!(text(bad, "cause").contains("line 2"), "{bad}");
        never_printed(&report, &["s3cr3t-left-unclosed"]);
        stack.stop().await;
    }

    backend_tests!(
        a_matching_web_app_env_passes,
        a_mismatched_web_app_env_names_each_problem_with_its_fix,
    );
}
