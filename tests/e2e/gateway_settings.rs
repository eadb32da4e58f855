//! The whole REST contract end to end over real HTTP, against real auth and settings on SQLite
//! and PostgreSQL: sync → token → patch → list masked → import → delete one → delete me; token
//! errors over REST; a settings outage answered 503 and healed without restarting the gateway.

use crate::support::gateway::{TestGateway, expect_problem, gateway_config};
use crate::support::settings::{TestSettings, master_keys_text, settings_config, spawn_auth};
use crate::support::{Backend, SYNC_SECRET, TestAuth, TestDb};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

struct Stack {
    _db: TestDb,
    auth: TestAuth,
    settings: TestSettings,
    gw: TestGateway,
}

/// Auth (purging through settings), settings, and a gateway in front of both.
async fn stack(backend: Backend) -> Option<Stack> {
    let db = TestDb::new(backend).await?;
    let listener = TestSettings::reserve().await;
    let settings_url = format!("http://{}", listener.local_addr().unwrap());
    let auth = spawn_auth(&db, Some(settings_url)).await;
    let config = settings_config(&db, &auth.url(), &master_keys_text(&["k1"]));
    let settings = TestSettings::spawn_on(config, listener, &auth).await;
    let gw = TestGateway::spawn(&auth.url(), &settings.url()).await;
    Some(Stack {
        _db: db,
        auth,
        settings,
        gw,
    })
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["settings"]
        .as_array()
        .expect("a settings array")
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn send_json(
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

const FLY: &str = "fo1_abcdefghijklmnopqrstuvwxyz";
const OPENROUTER: &str = "sk-or-v1-0123456789abcdef";

async fn the_whole_contract(backend: Backend) {
    let Some(Stack {
        _db,
        auth,
        settings,
        gw,
    }) = stack(backend).await
    else {
        return;
    };
    let (_, token) = gw.sync_user("flow").await;
    let token_response = gw
        .http
        .post(gw.url("/api/auth/token"))
        .header("X-Latchkey-Sync-Secret", SYNC_SECRET)
        .json(&json!({"email": "flow@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(token_response.status(), 200);
    let token: String = if token.is_empty() {
        token_response.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    } else {
        token
    };

    let (status, list) = gw.get_settings(&token).await;
    assert_eq!((status, names(&list)), (200, vec![]));

    // PATCH: set two, answer the new list, masked.
    let response = send_json(
        &gw,
        Method::PATCH,
        "/api/settings",
        &token,
        json!({"settings": {"FLY_API_TOKEN": FLY, "SHORT": "abc"}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let list: Value = response.json().await.unwrap();
    assert_eq!(names(&list), ["FLY_API_TOKEN", "SHORT"]);
    let fly = list["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "FLY_API_TOKEN")
        .unwrap();
    assert_eq!(fly["length"], FLY.len());
    let masked = fly["masked"].as_str().unwrap();
    assert!(
        masked.ends_with("wxyz") && !masked.contains("abcdefgh"),
        "{masked}"
    );
    assert!(fly["updated_at"].as_str().is_some());
    let short = list["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "SHORT")
        .unwrap();
    assert!(
        !short["masked"].as_str().unwrap().contains("abc"),
        "{short}"
    );

    // null deletes; PUT replaces the whole set.
    let response = send_json(
        &gw,
        Method::PATCH,
        "/api/settings",
        &token,
        json!({"settings": {"SHORT": null}}),
    )
    .await;
    assert_eq!(names(&response.json().await.unwrap()), ["FLY_API_TOKEN"]);
    let response = send_json(
        &gw,
        Method::PUT,
        "/api/settings",
        &token,
        json!({"settings": {"A_KEY": "value-a-0123456789", "B_KEY": "value-b"}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(names(&response.json().await.unwrap()), ["A_KEY", "B_KEY"]);

    // Import as text/plain, dry run: reported, nothing written.
    let dotenv = format!(
        "# keys\nexport FLY_API_TOKEN={FLY}\nOPENROUTER_API_KEY=\"{OPENROUTER}\"\nA_KEY=value-a-changed\n"
    );
    let response = gw
        .authed(Method::POST, "/api/settings/import?dry_run=true", &token)
        .header("content-type", "text/plain")
        .body(dotenv.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let preview: Value = response.json().await.unwrap();
    assert_eq!(preview["applied"], false);
    assert_eq!(
        preview["added"],
        json!(["FLY_API_TOKEN", "OPENROUTER_API_KEY"]),
        "{preview}"
    );
    assert_eq!(preview["changed"], json!(["A_KEY"]), "{preview}");
    assert!(preview["warnings"].is_array());
    assert_eq!(names(&gw.get_settings(&token).await.1), ["A_KEY", "B_KEY"]);

    // Import as JSON, replace mode: applied atomically, B_KEY removed.
    let response = send_json(
        &gw,
        Method::POST,
        "/api/settings/import",
        &token,
        json!({"dotenv": dotenv, "mode": "replace", "dry_run": false}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let applied: Value = response.json().await.unwrap();
    assert_eq!(applied["applied"], true);
    assert_eq!(applied["removed"], json!(["B_KEY"]), "{applied}");
    assert_eq!(
        names(&gw.get_settings(&token).await.1),
        ["A_KEY", "FLY_API_TOKEN", "OPENROUTER_API_KEY"]
    );

    // Bad lines: 400 listing every bad line with its number, nothing applied.
    let response = gw
        .authed(Method::POST, "/api/settings/import", &token)
        .header("content-type", "text/plain; charset=utf-8")
        .body("GOOD_ONE=1\nBARE_KEY\nfine=2\nQUOTED=\"never closed\n")
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, 400, "INVALID_ARGUMENT").await;
    let lines: Vec<u64> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["line"].as_u64())
        .collect();
    assert!(lines.contains(&2) && lines.contains(&4), "{problem}");
    assert!(!names(&gw.get_settings(&token).await.1).contains(&"GOOD_ONE".to_owned()));

    // Invalid names and bodies.
    let response = send_json(
        &gw,
        Method::PATCH,
        "/api/settings",
        &token,
        json!({"settings": {"1BAD-NAME": "x"}}),
    )
    .await;
    let problem = expect_problem(response, 400, "INVALID_ARGUMENT").await;
    assert!(
        problem["errors"].to_string().contains("1BAD-NAME"),
        "{problem}"
    );
    let response = send_json(
        &gw,
        Method::PATCH,
        "/api/settings",
        &token,
        json!({"settings": {"A": 1}}),
    )
    .await;
    expect_problem(response, 400, "INVALID_ARGUMENT").await;
    let response = send_json(
        &gw,
        Method::PATCH,
        "/api/settings",
        &token,
        json!({"values": {}}),
    )
    .await;
    let problem = expect_problem(response, 400, "INVALID_ARGUMENT").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("values"),
        "{problem}"
    );
    let response = gw
        .authed(Method::POST, "/api/settings/import?mode=sideways", &token)
        .header("content-type", "text/plain")
        .body("A=1")
        .send()
        .await
        .unwrap();
    expect_problem(response, 400, "INVALID_ARGUMENT").await;
    // Found by schemathesis: a bad name is refused even with a null value in a PUT, and a
    // query string beside a JSON import body is refused instead of ignored.
    let response = send_json(
        &gw,
        Method::PUT,
        "/api/settings",
        &token,
        json!({"settings": {"": null}}),
    )
    .await;
    let problem = expect_problem(response, 400, "INVALID_ARGUMENT").await;
    assert_eq!(problem["errors"][0]["field"], "settings.", "{problem}");
    let response = send_json(
        &gw,
        Method::POST,
        "/api/settings/import?mode=replace",
        &token,
        json!({"dotenv": "A=1\n"}),
    )
    .await;
    let problem = expect_problem(response, 400, "INVALID_ARGUMENT").await;
    assert_eq!(problem["errors"][0]["field"], "query", "{problem}");

    // Never plaintext to the browser.
    let response = gw.call(Method::GET, "/api/settings", &token).await;
    let text = response.text().await.unwrap();
    assert!(!text.contains(FLY) && !text.contains(OPENROUTER), "{text}");

    // Delete one: 204, then 404.
    let response = gw
        .call(Method::DELETE, "/api/settings/OPENROUTER_API_KEY", &token)
        .await;
    assert_eq!(response.status(), 204);
    let response = gw
        .call(Method::DELETE, "/api/settings/OPENROUTER_API_KEY", &token)
        .await;
    expect_problem(response, 404, "NOT_FOUND").await;
    assert_eq!(
        names(&gw.get_settings(&token).await.1),
        ["A_KEY", "FLY_API_TOKEN"]
    );

    // Delete me: 204; the token is refused at once; the settings are gone with the user.
    let (user_id, _) = (gw.sync_user("flow").await.0, ());
    let response = gw.call(Method::DELETE, "/api/auth/me", &token).await;
    assert_eq!(response.status(), 204);
    let response = gw.call(Method::GET, "/api/settings", &token).await;
    expect_problem(response, 401, "USER_NOT_SYNCED").await;
    let (again_id, again) = gw.sync_user("flow").await;
    assert_ne!(again_id, user_id, "a re-synced user is a new user");
    assert_eq!(
        names(&gw.get_settings(&again).await.1),
        Vec::<String>::new()
    );
    settings.stop().await;
    auth.stop().await;
}

/// Rewrites one part of a JWT.
fn with_header(token: &str, header: Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        parts[1],
        parts[2]
    )
}

async fn token_errors_over_rest(backend: Backend) {
    let Some(Stack {
        _db,
        auth,
        settings,
        gw,
    }) = stack(backend).await
    else {
        return;
    };
    let (_, token) = gw.sync_user("tokens").await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[10] ^= 0x55;
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode(&signature)
    );
    let mut unknown_kid = header.clone();
    unknown_kid["kid"] = "no-such-key".into();
    let cases = [
        (tampered, "TOKEN_SIGNATURE_INVALID"),
        (with_header(&token, unknown_kid), "TOKEN_KEY_UNKNOWN"),
        (
            with_header(&token, json!({"alg": "none", "typ": "JWT"})),
            "TOKEN_ALGORITHM_REJECTED",
        ),
        (
            with_header(
                &token,
                json!({"alg": "HS256", "typ": "JWT", "kid": header["kid"]}),
            ),
            "TOKEN_ALGORITHM_REJECTED",
        ),
        ("eyJhbGciOi.broken".to_owned(), "TOKEN_MALFORMED"),
    ];
    for (bad, code) in cases {
        let response = gw.call(Method::GET, "/api/settings", &bad).await;
        expect_problem(response, 401, code).await;
    }

    // Issuer and audience: tokens signed with auth's own keys by an auth configured otherwise.
    for (field, code) in [
        ("issuer", "TOKEN_ISSUER_UNTRUSTED"),
        ("audience", "TOKEN_AUDIENCE_MISMATCH"),
    ] {
        let mut config = auth.config.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.settings_url = None;
        match field {
            "issuer" => config.rules.issuer = "https://someone-else.example.com".into(),
            _ => config.rules.audience = "another-api".into(),
        }
        let other = TestAuth::spawn_with(config).await;
        let (_, foreign) = other.user_token("tokens").await;
        let response = gw.call(Method::GET, "/api/settings", &foreign).await;
        expect_problem(response, 401, code).await;
        other.stop().await;
    }

    // A service token on a user route: 403 SCOPE_MISSING with an insufficient_scope challenge.
    let service = crate::support::settings::service_token(&auth, "reader").await;
    let response = gw.call(Method::GET, "/api/settings", &service).await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    expect_problem(response, 403, "SCOPE_MISSING").await;

    // Not yet valid: auth's clock runs an hour behind the token's issue time.
    auth.clock.advance(-3600);
    let response = gw.call(Method::GET, "/api/auth/me", &token).await;
    expect_problem(response, 401, "TOKEN_NOT_YET_VALID").await;
    auth.clock.advance(3600);

    // Revoked: immediate through a gateway without cache; within 5 s through the cached one.
    let (_, fresh) = gw.sync_user("revoked").await;
    assert_eq!(gw.get_settings(&fresh).await.0, 200);
    auth.clock.advance(2);
    auth.revoke_tokens_of(&fresh).await;
    let mut config = gateway_config(&auth.url(), &settings.url());
    config.auth_cache = Duration::ZERO;
    let uncached = TestGateway::spawn_with(config).await;
    let response = uncached.call(Method::GET, "/api/settings", &fresh).await;
    expect_problem(response, 401, "TOKEN_REVOKED").await;
    tokio::time::sleep(Duration::from_millis(5100)).await;
    let response = gw.call(Method::GET, "/api/settings", &fresh).await;
    expect_problem(response, 401, "TOKEN_REVOKED").await;
    settings.stop().await;
    auth.stop().await;
}

/// The gateway renews a verdict in use in the background (its cache on auth's clock here): in
/// the verdict's last second a request is still answered from it, and auth's refusal at renewal
/// applies at once. With settings stopped, the gateway's own answer shows which it used: a
/// cached verdict goes on to settings (503), a refused token stops at the gateway (401).
async fn the_gateway_renews_a_verdict_in_use(backend: Backend) {
    let Some(Stack {
        _db,
        auth,
        settings,
        gw,
    }) = stack(backend).await
    else {
        return;
    };
    let clocked = TestGateway::spawn_with_clock(
        gateway_config(&auth.url(), &settings.url()),
        auth.clock.clone(),
    )
    .await;
    let (_, token) = clocked.sync_user("renewal").await;
    // With the 5 s TTL, moka frees the verdict 6 s of real time after it is stored: the wait
    // below ends before.
    let freed = tokio::time::Instant::now() + Duration::from_millis(5500);
    assert_eq!(clocked.get_settings(&token).await.0, 200);
    settings.stop().await;
    auth.revoke_tokens_of(&token).await;
    auth.clock.advance(4);
    let response = clocked.call(Method::GET, "/api/settings", &token).await;
    expect_problem(response, 503, "UPSTREAM_UNAVAILABLE").await;
    // The clock stands still: without the renewal the verdict would hold until moka frees it,
    // and settings stay 503.
    let mut status = 503;
    while status == 503 && tokio::time::Instant::now() < freed {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let response = clocked.call(Method::GET, "/api/settings", &token).await;
        status = response.status().as_u16();
    }
    assert_eq!(
        status, 401,
        "the refusal at renewal reached the gateway's cache"
    );
    let response = clocked.call(Method::GET, "/api/settings", &token).await;
    expect_problem(response, 401, "TOKEN_REVOKED").await;
    clocked.stop().await;
    gw.stop().await;
    auth.stop().await;
}

async fn settings_outage_is_503_and_heals(backend: Backend) {
    let Some(Stack {
        _db,
        auth,
        settings,
        gw,
    }) = stack(backend).await
    else {
        return;
    };
    let (_, token) = gw.sync_user("outage").await;
    let response = send_json(
        &gw,
        Method::PATCH,
        "/api/settings",
        &token,
        json!({"settings": {"KEEP_ME": "value-0123456789"}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let (addr, config) = (settings.addr, settings.config.clone());
    settings.stop().await;
    crate::support::until_refused(addr).await;

    let started = std::time::Instant::now();
    let response = gw.call(Method::GET, "/api/settings", &token).await;
    let problem = expect_problem(response, 503, "UPSTREAM_UNAVAILABLE").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("settings"),
        "{problem}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered fast: {:?}",
        started.elapsed()
    );
    let ready = gw.http.get(gw.url("/readyz")).send().await.unwrap();
    expect_problem(ready, 503, "UPSTREAM_UNAVAILABLE").await;

    // Settings back on the same port: 200 again, the gateway untouched.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("rebind the same port");
    let settings = TestSettings::spawn_on(config, listener, &auth).await;
    let mut last = 0;
    for _ in 0..60 {
        let (status, list) = gw.get_settings(&token).await;
        last = status;
        if status == 200 {
            assert_eq!(names(&list), ["KEEP_ME"]);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, 200, "the gateway reconnects to settings");
    let ready = gw.http.get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    settings.stop().await;
    auth.stop().await;
}

/// Legacy mode: the web app's own NextAuth-style HS256 token works on every route, settings
/// included, although settings verifies only Latchkey's Ed25519 keys: auth hands the gateway a
/// Latchkey token for the same user, which the gateway forwards instead.
async fn legacy_tokens_reach_settings(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let listener = TestSettings::reserve().await;
    let settings_url = format!("http://{}", listener.local_addr().unwrap());
    let mut config = crate::support::auth_config(&db);
    config.rules.legacy = Some(crate::support::legacy_rules());
    config.settings_url = Some(settings_url);
    let auth = TestAuth::spawn_with(config).await;
    let settings_config = settings_config(&db, &auth.url(), &master_keys_text(&["k1"]));
    let settings = TestSettings::spawn_on(settings_config, listener, &auth).await;
    let gw = TestGateway::spawn(&auth.url(), &settings.url()).await;
    gw.sync_user("nextauth").await;

    let now = latchkey_common::clock::Clock::now(&*auth.clock);
    let legacy = latchkey_auth::tokens::sign_hs256(
        &latchkey_common::SecretString::from(crate::support::LEGACY_SECRET.to_owned()),
        &json!({"sub": "NextAuth@example.com", "iss": "https://app.example.com", "aud": crate::support::LEGACY_AUDIENCE, "iat": now, "exp": now + 600}),
    );
    let me = gw.call(Method::GET, "/api/auth/me", &legacy).await;
    assert_eq!(me.status(), 200);
    for _ in 0..2 {
        // The second round is answered from the gateway's cache.
        let patch = send_json(
            &gw,
            Method::PATCH,
            "/api/settings",
            &legacy,
            json!({"settings": {"OPENROUTER_API_KEY": "sk-or-v1-legacy-0123456789"}}),
        )
        .await;
        assert_eq!(patch.status(), 200, "{:?}", patch.text().await);
        let list = gw.call(Method::GET, "/api/settings", &legacy).await;
        assert_eq!(list.status(), 200);
        let list: Value = list.json().await.unwrap();
        assert_eq!(names(&list), ["OPENROUTER_API_KEY"]);
    }
    let forged = latchkey_auth::tokens::sign_hs256(
        &latchkey_common::SecretString::from("not-the-legacy-secret-0123456789abcdef".to_owned()),
        &json!({"sub": "nextauth@example.com", "iss": "https://app.example.com", "aud": crate::support::LEGACY_AUDIENCE, "iat": now, "exp": now + 600}),
    );
    let list = gw.call(Method::GET, "/api/settings", &forged).await;
    expect_problem(list, 401, "TOKEN_SIGNATURE_INVALID").await;
    settings.stop().await;
    auth.stop().await;
}

/// A database that answers but is broken (a table dropped behind the service's back): 500
/// INTERNAL over REST, with nothing of the database's own message in the answer.
async fn a_broken_database_is_500_internal_without_internals(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let Some(stack) = stack(backend).await else {
        return;
    };
    let (_, token) = stack.gw.sync_user("broken").await;
    let db = sea_orm::Database::connect(&stack._db.url).await.unwrap();
    db.execute_unprepared("DROP TABLE setting_values")
        .await
        .unwrap();
    let response = stack.gw.call(Method::GET, "/api/settings", &token).await;
    let problem = expect_problem(response, 500, "INTERNAL").await;
    let text = problem.to_string().to_lowercase();
    for internal in ["setting_values", "sql", "relation", "no such table"] {
        assert!(!text.contains(internal), "{internal} leaked: {problem}");
    }
    stack.settings.stop().await;
    stack.auth.stop().await;
}

backend_tests!(
    the_whole_contract,
    the_gateway_renews_a_verdict_in_use,
    token_errors_over_rest,
    settings_outage_is_503_and_heals,
    legacy_tokens_reach_settings,
    a_broken_database_is_500_internal_without_internals,
);
