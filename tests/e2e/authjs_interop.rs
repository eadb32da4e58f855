//! Auth.js session tokens made by the real npm packages — next-auth@4's and @auth/core's
//! `encode` (tests/interop/authjs/mint.mjs) — sent to a real gateway in front of real auth and
//! settings, on SQLite and PostgreSQL: valid ones work on `/api/auth/me` and `/api/settings`,
//! expired ones are TOKEN_EXPIRED, and one made with another secret is TOKEN_SECRET_MISMATCH
//! (v5: its `kid` says so) or TOKEN_SIGNATURE_INVALID (v4), naming the variable Latchkey read
//! its secret from and that secret's fingerprint.
//!
//! Needs Node and `npm ci --prefix tests/interop/authjs`; without them the test is skipped with a
//! message, except with `CI=true`, where it fails.

use crate::support::gateway::{TestGateway, expect_problem};
use crate::support::settings::{TestSettings, master_keys_text, settings_config};
use crate::support::{Backend, TestAuth, TestDb};
use latchkey_auth::authjs::{AuthJsRules, AuthJsVersions, V5_COOKIE_NAMES};
use latchkey_auth::tokens::SecretHint;
use latchkey_common::SecretString;
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

/// The web app's secret, as its `.env.local` holds it under `AUTH_SECRET`.
pub(crate) const WEB_SECRET: &str = "web-app-auth-secret-5d0c7a1e9b2f4e6a8c3d1f0b";
const OTHER_SECRET: &str = "another-apps-secret-0f1e2d3c4b5a69788796a5b4";

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/authjs")
}

/// The tokens mint.mjs makes, or None (skipped) when Node or the packages are missing.
pub(crate) fn minted() -> Option<Value> {
    let dir = interop_dir();
    let installed =
        dir.join("node_modules/next-auth").is_dir() && dir.join("node_modules/@auth/core").is_dir();
    let output = installed
        .then(|| {
            std::process::Command::new("node")
                .arg("mint.mjs")
                .current_dir(&dir)
                .env("MINT_SECRET", WEB_SECRET)
                .env("MINT_OTHER_SECRET", OTHER_SECRET)
                .env("MINT_EMAIL", "Ada@Example.com")
                .output()
        })
        .and_then(Result::ok);
    match output {
        Some(output) if output.status.success() => {
            Some(serde_json::from_slice(&output.stdout).expect("mint.mjs prints JSON"))
        }
        other => {
            let why = match other {
                Some(output) => String::from_utf8_lossy(&output.stderr).into_owned(),
                None => "node or the npm packages are missing".to_owned(),
            };
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(
                !ci,
                "CI=true but Auth.js tokens cannot be minted ({why}); run `npm ci --prefix tests/interop/authjs`"
            );
            eprintln!(
                "skipping the Auth.js interop test: {why}; run `npm ci --prefix tests/interop/authjs` (Node 18+) to enable it"
            );
            None
        }
    }
}

pub(crate) fn token<'a>(tokens: &'a Value, version: &str, kind: &str) -> &'a str {
    tokens[version][kind]
        .as_str()
        .unwrap_or_else(|| panic!("mint.mjs made no {version}.{kind}"))
}

/// Auth accepting both majors, its secret read from `AUTH_SECRET`.
pub(crate) fn authjs_rules() -> AuthJsRules {
    let secret = SecretString::from(WEB_SECRET.to_owned());
    let cookies: Vec<String> = V5_COOKIE_NAMES.iter().map(|c| (*c).to_owned()).collect();
    let hint = SecretHint::new(&secret, "AUTH_SECRET");
    AuthJsRules::new(&secret, AuthJsVersions::Both, &cookies, hint)
}

async fn tokens_from_the_npm_packages(backend: Backend) {
    let Some(tokens) = minted() else {
        return;
    };
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let listener = TestSettings::reserve().await;
    let mut config = crate::support::auth_config(&db);
    config.rules.authjs = Some(authjs_rules());
    config.settings_url = Some(format!("http://{}", listener.local_addr().unwrap()));
    let auth = TestAuth::spawn_with(config).await;
    let settings_config = settings_config(&db, &auth.url(), &master_keys_text(&["k1"]));
    let settings = TestSettings::spawn_on(settings_config, listener, &auth).await;
    let gw = TestGateway::spawn(&auth.url(), &settings.url()).await;
    let (user_id, _) = gw.sync_user("ada").await;

    for (version, kind) in [("v4", "valid"), ("v5", "valid"), ("v5", "valid_secure")] {
        let session = token(&tokens, version, kind);
        let me = gw.call(Method::GET, "/api/auth/me", session).await;
        assert_eq!(me.status(), 200, "{version} {kind}");
        let me: Value = me.json().await.unwrap();
        assert_eq!(me["id"], user_id.as_str(), "{version} {kind}: {me}");
        let name = format!("KEY_{}_{}", version.to_uppercase(), kind.to_uppercase());
        let patch = gw
            .authed(Method::PATCH, "/api/settings", session)
            .json(&json!({"settings": {name.clone(): "sk-interop-0123456789abcdef"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(patch.status(), 200, "{version} {kind}");
        let (status, list) = gw.get_settings(session).await;
        assert_eq!(status, 200, "{version} {kind}");
        assert!(list.to_string().contains(&name), "{list}");
    }

    for version in ["v4", "v5"] {
        let expired = gw
            .call(
                Method::GET,
                "/api/settings",
                token(&tokens, version, "expired"),
            )
            .await;
        expect_problem(expired, 401, "TOKEN_EXPIRED").await;
    }

    let fingerprint = latchkey_common::secret::fingerprint(WEB_SECRET.as_bytes());
    for (version, code) in [
        ("v5", "TOKEN_SECRET_MISMATCH"),
        ("v4", "TOKEN_SIGNATURE_INVALID"),
    ] {
        let other = gw
            .call(
                Method::GET,
                "/api/settings",
                token(&tokens, version, "other_secret"),
            )
            .await;
        let problem = expect_problem(other, 401, code).await;
        let detail = problem["detail"].as_str().unwrap();
        for expected in ["AUTH_SECRET", fingerprint.as_str(), "latchkey fingerprint"] {
            assert!(detail.contains(expected), "{version}: {expected}: {detail}");
        }
    }
    settings.stop().await;
    auth.stop().await;
}

backend_tests!(tokens_from_the_npm_packages);
