//! A hand-rolled backend's calls, replayed over real HTTP against real auth, settings and gateway
//! on SQLite and PostgreSQL: the bare `{email, name}` sync with `X-Auth-Secret` exactly as
//! `curl -d` sends it, a token by email, the web app's own HS256 tokens (legacy mode), the
//! settings calls; identity linking over REST; an email several users share answered 409
//! USER_AMBIGUOUS with the count; hostile emails answered 400 naming the field.

use crate::support::gateway::{TestGateway, expect_problem};
use crate::support::settings::{TestSettings, master_keys_text, settings_config};
use crate::support::{Backend, LEGACY_SECRET, SYNC_SECRET, TestAuth, TestDb};
use latchkey_auth::tokens::{LegacyRules, sign_hs256};
use latchkey_common::SecretString;
use reqwest::Method;
use serde_json::{Value, json};

struct Stack {
    _db: TestDb,
    auth: TestAuth,
    settings: TestSettings,
    gw: TestGateway,
}

impl Stack {
    /// Auth in legacy mode (HS256 with the web app's secret, no issuer pinned, as a NextAuth app
    /// signs), settings, and a gateway in front of both.
    async fn start(backend: Backend) -> Option<Stack> {
        let db = TestDb::new(backend).await?;
        let listener = TestSettings::reserve().await;
        let mut config = crate::support::auth_config(&db);
        config.rules.legacy = Some(LegacyRules {
            issuer: None,
            ..crate::support::legacy_rules()
        });
        config.settings_url = Some(format!("http://{}", listener.local_addr().unwrap()));
        let auth = TestAuth::spawn_with(config).await;
        let settings = TestSettings::spawn_on(
            settings_config(&db, &auth.url(), &master_keys_text(&["k1"])),
            listener,
            &auth,
        )
        .await;
        let gw = TestGateway::spawn(&auth.url(), &settings.url()).await;
        Some(Stack {
            _db: db,
            auth,
            settings,
            gw,
        })
    }

    async fn stop(self) {
        self.gw.stop().await;
        self.settings.stop().await;
        self.auth.stop().await;
    }

    /// `POST path` with the sync secret as `X-Auth-Secret` and a JSON body.
    async fn with_secret(&self, path: &str, body: Value) -> reqwest::Response {
        self.gw
            .http
            .post(self.gw.url(path))
            .header("X-Auth-Secret", SYNC_SECRET)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// The web app's own HS256 token for `email`, as its NextAuth `jwt` callback signs it.
    fn web_app_token(&self, email: &str) -> String {
        let now = latchkey_common::clock::Clock::now(&*self.auth.clock);
        sign_hs256(
            &SecretString::from(LEGACY_SECRET.to_owned()),
            &json!({"email": email, "name": "A", "aud": crate::support::LEGACY_AUDIENCE, "iat": now, "exp": now + 3600}),
        )
    }
}

async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// Each call the app made to its hand-rolled backend, unchanged, against Latchkey.
async fn a_hand_rolled_backends_calls_work_unchanged(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let gw = &stack.gw;
    // `curl -X POST $G/api/auth/sync-user -H 'X-Auth-Secret: …' -d '{"email":"a@b.c","name":"A"}'`:
    // curl's own headers, form content type included.
    let response = gw
        .http
        .post(gw.url("/api/auth/sync-user"))
        .header("User-Agent", "curl/8.5.0")
        .header("Accept", "*/*")
        .header("X-Auth-Secret", SYNC_SECRET)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(r#"{"email":"a@b.c","name":"A"}"#)
        .send()
        .await
        .unwrap();
    let synced = ok_json(response).await;
    assert_eq!(synced["user"]["provider"], "email");
    assert_eq!(synced["user"]["subject"], "a@b.c");
    assert_eq!(synced["user"]["email"], "a@b.c");
    assert_eq!(synced["user"]["name"], "A");
    assert_eq!(synced["token_type"], "Bearer");
    let user_id = synced["user"]["id"].as_str().unwrap().to_owned();

    // A token by email, for the browser.
    let issued = ok_json(
        stack
            .with_secret("/api/auth/token", json!({"email": "A@B.C"}))
            .await,
    )
    .await;
    let token = issued["access_token"].as_str().unwrap().to_owned();
    let me = ok_json(gw.call(Method::GET, "/api/auth/me", &token).await).await;
    let mut keys: Vec<&str> = me.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "avatar_url",
            "created_at",
            "email",
            "id",
            "name",
            "provider",
            "updated_at"
        ]
    );
    assert_eq!(
        (me["id"].as_str(), me["provider"].as_str()),
        (Some(user_id.as_str()), Some("email"))
    );

    // The settings calls, with Latchkey's token and with the web app's own.
    let web_token = stack.web_app_token("a@b.c");
    for (bearer, name) in [
        (&token, "FLY_API_TOKEN"),
        (&web_token, "OPENROUTER_API_KEY"),
    ] {
        let patch = gw
            .authed(Method::PATCH, "/api/settings", bearer)
            .json(&json!({"settings": {name: "value-0123456789abcdef"}}))
            .send()
            .await
            .unwrap();
        ok_json(patch).await;
    }
    let list = ok_json(gw.call(Method::GET, "/api/settings", &web_token).await).await;
    let names: Vec<&str> = list["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["FLY_API_TOKEN", "OPENROUTER_API_KEY"],
        "one user, both tokens"
    );
    let import = gw
        .authed(Method::POST, "/api/settings/import", &token)
        .header("Content-Type", "text/plain")
        .body("ANTHROPIC_API_KEY=sk-ant-0123456789abcdef\n")
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(import).await["added"], json!(["ANTHROPIC_API_KEY"]));
    let deleted = gw
        .call(Method::DELETE, "/api/settings/FLY_API_TOKEN", &web_token)
        .await;
    assert_eq!(deleted.status(), 204);
    stack.stop().await;
}

/// A sign-in the provider vouches for joins the user an email-only sync made; one it does not
/// vouch for makes a second user, and from then on the email alone names nobody: 409.
async fn linking_and_ambiguity_over_rest(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let bare = ok_json(
        stack
            .with_secret(
                "/api/auth/sync-user",
                json!({"email": "ada@example.com", "name": "Ada"}),
            )
            .await,
    )
    .await;
    let ada = bare["user"]["id"].as_str().unwrap().to_owned();
    // The next sign-in comes a second later (timestamps are whole seconds).
    stack.auth.clock.advance(1);
    let google = ok_json(
        stack
            .with_secret(
                "/api/auth/sync-user",
                json!({"provider": "google", "subject": "g-1", "email": "ada@example.com", "email_verified": true, "name": "Ada"}),
            )
            .await,
    )
    .await;
    assert_eq!(google["user"]["id"], ada.as_str());
    assert_eq!(google["user"]["provider"], "google");
    let token = google["access_token"].as_str().unwrap();
    let me = ok_json(stack.gw.call(Method::GET, "/api/auth/me", token).await).await;
    assert_eq!(
        me["provider"], "google",
        "me shows the identity signed in with last"
    );

    let github = ok_json(
        stack
            .with_secret(
                "/api/auth/sync-user",
                json!({"provider": "github", "subject": "1", "email": "ada@example.com"}),
            )
            .await,
    )
    .await;
    let second = github["user"]["id"].as_str().unwrap().to_owned();
    assert_ne!(
        second, ada,
        "an email the provider does not vouch for never links"
    );

    let refused = stack
        .with_secret("/api/auth/token", json!({"email": "ada@example.com"}))
        .await;
    let problem = expect_problem(refused, 409, "USER_AMBIGUOUS").await;
    assert_eq!(problem["count"], 2);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("2 users share this email")
    );
    let text = problem.to_string();
    assert!(!text.contains(&ada) && !text.contains(&second), "{text}");
    // The web app's own token carries only the email: the same refusal on any route.
    let me = stack
        .gw
        .call(
            Method::GET,
            "/api/settings",
            &stack.web_app_token("ada@example.com"),
        )
        .await;
    let problem = expect_problem(me, 409, "USER_AMBIGUOUS").await;
    assert_eq!(problem["count"], 2);
    // By id, each user is still reachable.
    ok_json(
        stack
            .with_secret("/api/auth/token", json!({"user_id": second}))
            .await,
    )
    .await;
    stack.stop().await;
}

/// Emails are normalised (the Kelvin sign is a k) and refused, naming the field, when they carry
/// control, invisible or mixed-script look-alike characters.
async fn emails_are_normalised_and_hostile_ones_refused(backend: Backend) {
    let Some(stack) = Stack::start(backend).await else {
        return;
    };
    let kate = ok_json(
        stack
            .with_secret(
                "/api/auth/sync-user",
                json!({"email": "\u{212A}ate@example.com"}),
            )
            .await,
    )
    .await;
    assert_eq!(kate["user"]["email"], "kate@example.com");
    for (email, named) in [
        ("kate\u{0}@example.com", "U+0000"),
        ("ka\u{200B}te@example.com", "U+200B"),
        ("kate@ex\u{0430}mple.com", "Latin and Cyrillic"),
    ] {
        for path in ["/api/auth/sync-user", "/api/auth/token"] {
            let refused = stack.with_secret(path, json!({"email": email})).await;
            let problem = expect_problem(refused, 400, "INVALID_ARGUMENT").await;
            assert_eq!(problem["errors"][0]["field"], "email", "{path}: {problem}");
            let description = problem["errors"][0]["description"].as_str().unwrap();
            assert!(description.contains(named), "{path}: {problem}");
        }
    }
    stack.stop().await;
}

backend_tests!(
    a_hand_rolled_backends_calls_work_unchanged,
    linking_and_ambiguity_over_rest,
    emails_are_normalised_and_hostile_ones_refused,
);
