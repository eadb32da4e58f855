//! The gateway's auth routes over real HTTP against a real auth service: sync, token, me, JWKS,
//! every auth error code, request ids, CORS, limits, rate limiting, and an auth outage.

use crate::support::gateway::{
    CORS_ORIGIN, TestGateway, expect_problem, gateway_config, unused_addr,
};
use crate::support::{Backend, SYNC_SECRET, TestAuth, TestDb};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// Auth on its own database, a gateway in front (settings address unused here).
async fn start(backend: Backend) -> Option<(TestDb, TestAuth, TestGateway)> {
    let db = TestDb::new(backend).await?;
    let auth = TestAuth::spawn(&db).await;
    let gateway = TestGateway::spawn(&auth.url(), &format!("http://{}", unused_addr())).await;
    Some((db, auth, gateway))
}

async fn sync_user_token_me_and_jwks(backend: Backend) {
    let Some((_db, auth, gw)) = start(backend).await else {
        return;
    };
    let response = gw
        .http
        .post(gw.url("/api/auth/sync-user"))
        .header("X-Auth-Secret", SYNC_SECRET)
        .header("x-request-id", "req-from-client-1")
        .json(&json!({"provider": "github", "subject": "42", "email": " Ada@Example.com ", "name": "Ada", "avatar_url": "https://a.example.com/a.png"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-from-client-1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    assert_eq!(body["user"]["email"], "ada@example.com");
    let user_id = body["user"]["id"].as_str().unwrap().to_owned();
    let token = body["access_token"].as_str().unwrap().to_owned();

    for request in [
        json!({"user_id": user_id}),
        json!({"email": "ada@example.com"}),
    ] {
        let response = gw
            .http
            .post(gw.url("/api/auth/token"))
            .header("X-Latchkey-Sync-Secret", SYNC_SECRET)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert!(body["access_token"].as_str().unwrap().len() > 20);
    }

    let response = gw.call(Method::GET, "/api/auth/me", &token).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().contains_key("x-request-id"),
        "a request id is generated"
    );
    let me: Value = response.json().await.unwrap();
    for field in [
        "id",
        "email",
        "name",
        "provider",
        "created_at",
        "updated_at",
    ] {
        assert!(me.get(field).is_some(), "me has {field}: {me}");
    }
    assert_eq!(me["id"], user_id.as_str());

    let response = gw
        .http
        .get(gw.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let jwks: Value = response.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "EdDSA");
    assert!(key["kid"].as_str().is_some() && key["x"].as_str().is_some());
    assert!(key.get("key_use").is_none());
    auth.stop().await;
}

async fn auth_errors_are_problems_with_challenges(backend: Backend) {
    let Some((_db, auth, gw)) = start(backend).await else {
        return;
    };
    let sync = |secret: Option<&str>| {
        let mut request = gw.http.post(gw.url("/api/auth/sync-user"));
        if let Some(secret) = secret {
            request = request.header("X-Latchkey-Sync-Secret", secret);
        }
        request.json(&json!({"provider": "github", "subject": "1", "email": "a@example.com"}))
    };
    let missing = sync(None).send().await.unwrap();
    assert_eq!(
        missing.headers()["www-authenticate"],
        r#"Bearer realm="latchkey""#
    );
    expect_problem(missing, 401, "SYNC_SECRET_MISSING").await;
    let wrong = sync(Some("not-the-secret")).send().await.unwrap();
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    expect_problem(wrong, 401, "SYNC_SECRET_INVALID").await;

    // Bad bodies: unknown field, wrong type, not JSON, empty, both user_id and email.
    let bad_bodies = [
        (
            "/api/auth/sync-user",
            r#"{"provider":"github","subject":"1","email":"a@example.com","admin":true}"#,
            "admin",
        ),
        (
            "/api/auth/sync-user",
            r#"{"provider":"github","subject":1,"email":"a@example.com"}"#,
            "invalid type",
        ),
        ("/api/auth/sync-user", "provider=github", "expected"),
        ("/api/auth/sync-user", "", "empty"),
        (
            "/api/auth/token",
            r#"{"user_id":"x","email":"a@example.com"}"#,
            "exactly one",
        ),
        ("/api/auth/token", r#"{}"#, "exactly one"),
    ];
    for (path, body, mentions) in bad_bodies {
        let response = gw
            .http
            .post(gw.url(path))
            .header("X-Latchkey-Sync-Secret", SYNC_SECRET)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, 400, "INVALID_ARGUMENT").await;
        let text = problem.to_string();
        assert!(text.contains(mentions), "{path} {body}: {text}");
        assert!(
            problem["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "{problem}"
        );
    }

    let unknown_user = gw
        .http
        .post(gw.url("/api/auth/token"))
        .header("X-Latchkey-Sync-Secret", SYNC_SECRET)
        .json(&json!({"email": "nobody@example.com"}))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(unknown_user.status().as_u16(), 401 | 404),
        "{}",
        unknown_user.status()
    );

    // Bearer failures.
    let me = |token: Option<&str>| {
        let request = gw.http.get(gw.url("/api/auth/me"));
        match token {
            Some(token) => request.header("authorization", token),
            None => request,
        }
    };
    let response = me(None).send().await.unwrap();
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="latchkey""#
    );
    expect_problem(response, 401, "TOKEN_MISSING").await;
    expect_problem(
        me(Some("Basic abc")).send().await.unwrap(),
        401,
        "TOKEN_MALFORMED",
    )
    .await;
    let response = me(Some("Bearer not.a.jwt")).send().await.unwrap();
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge
            .starts_with(r#"Bearer realm="latchkey", error="invalid_token", error_description=""#),
        "{challenge}"
    );
    expect_problem(response, 401, "TOKEN_MALFORMED").await;

    // Expired: auth's clock moves past the token's lifetime.
    let (_, token) = gw.sync_user("expiring").await;
    auth.clock.advance(3600);
    let expired = gw.call(Method::GET, "/api/auth/me", &token).await;
    expect_problem(expired, 401, "TOKEN_EXPIRED").await;
    auth.clock.advance(-3600);

    // Never synced: a valid token whose user is gone after DELETE /api/auth/me (auth here has
    // no settings to purge) gets USER_NOT_SYNCED at once: the gateway forgets the cached answer.
    let (_, token) = gw.sync_user("short-lived").await;
    let me_ok = gw.call(Method::GET, "/api/auth/me", &token).await;
    assert_eq!(me_ok.status(), 200);
    let response = gw.call(Method::DELETE, "/api/auth/me", &token).await;
    assert_eq!(response.status(), 204);
    let gone = gw.call(Method::GET, "/api/auth/me", &token).await;
    let problem = expect_problem(gone, 401, "USER_NOT_SYNCED").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("sync-user"),
        "{problem}"
    );
    auth.stop().await;
}

async fn unknown_routes_methods_limits_and_cors(backend: Backend) {
    let Some((_db, auth, gw)) = start(backend).await else {
        return;
    };
    expect_problem(
        gw.http.get(gw.url("/nope")).send().await.unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
    expect_problem(
        gw.http.patch(gw.url("/api/auth/me")).send().await.unwrap(),
        405,
        "METHOD_NOT_ALLOWED",
    )
    .await;

    let (_, token) = gw.sync_user("big").await;
    let big = "x".repeat(300 * 1024);
    let response = gw
        .authed(Method::POST, "/api/settings/import", &token)
        .header("content-type", "text/plain")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    expect_problem(response, 413, "PAYLOAD_TOO_LARGE").await;
    let chunked = reqwest::Body::wrap_stream(futures_stream(big));
    let response = gw
        .http
        .post(gw.url("/api/auth/sync-user"))
        .header("X-Latchkey-Sync-Secret", SYNC_SECRET)
        .body(chunked)
        .send()
        .await
        .unwrap();
    expect_problem(response, 413, "PAYLOAD_TOO_LARGE").await;

    // CORS: the allowed origin gets a cached preflight with credentials; others get nothing.
    let preflight = gw
        .http
        .request(Method::OPTIONS, gw.url("/api/settings"))
        .header("origin", CORS_ORIGIN)
        .header("access-control-request-method", "PATCH")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], CORS_ORIGIN);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert_eq!(headers["access-control-max-age"], "600");
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("PATCH")
    );
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && !allowed.contains("sync-secret"),
        "{allowed}"
    );
    let foreign = gw
        .http
        .request(Method::OPTIONS, gw.url("/api/settings"))
        .header("origin", "https://evil.example.com")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(
        !foreign
            .headers()
            .contains_key("access-control-allow-origin")
    );
    let simple = gw
        .http
        .get(gw.url("/api/auth/me"))
        .header("origin", CORS_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(simple.headers()["access-control-allow-origin"], CORS_ORIGIN);
    assert!(
        simple.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("x-request-id")
    );

    // The page: security headers, no inline script, assets served.
    let page = gw.http.get(gw.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'none'")
            && csp.contains("script-src 'self'")
            && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    // Relative, so an app can serve the page under its own prefix (`/latchkey/`).
    assert!(html.contains(r#"<script src="assets/app.js" defer></script>"#));
    assert!(html.contains(r#"content="false""#), "dev mode is off");
    assert!(!html.contains("<script>"), "no inline script");
    for asset in ["/assets/app.js", "/assets/app.css"] {
        let response = gw.http.get(gw.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
    }
    expect_problem(
        gw.http
            .post(gw.url("/api/dev/session"))
            .send()
            .await
            .unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
    let health = gw.http.get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // settings is not running: not ready, and the problem says which upstream.
    let ready = expect_problem(
        gw.http.get(gw.url("/readyz")).send().await.unwrap(),
        503,
        "UPSTREAM_UNAVAILABLE",
    )
    .await;
    assert!(
        ready["detail"].as_str().unwrap().contains("settings"),
        "{ready}"
    );
    auth.stop().await;
}

fn futures_stream(
    text: String,
) -> impl tokio_stream::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = text
        .into_bytes()
        .chunks(16 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    tokio_stream::iter(chunks)
}

async fn rate_limits_answer_429_with_retry_after(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let mut config = gateway_config(&auth.url(), &format!("http://{}", unused_addr()));
    config.sync_rate_per_minute = 3;
    config.auth_failure_rate_per_minute = 2;
    let gw = TestGateway::spawn_with(config).await;
    for _ in 0..3 {
        gw.sync_user("rl").await;
    }
    let response = gw
        .http
        .post(gw.url("/api/auth/token"))
        .header("X-Latchkey-Sync-Secret", SYNC_SECRET)
        .json(&json!({"email": "rl@example.com"}))
        .send()
        .await
        .unwrap();
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    expect_problem(response, 429, "RATE_LIMITED").await;

    for _ in 0..2 {
        let response = gw.call(Method::GET, "/api/auth/me", "bad.token.here").await;
        expect_problem(response, 401, "TOKEN_MALFORMED").await;
    }
    let response = gw.call(Method::GET, "/api/auth/me", "bad.token.here").await;
    assert!(response.headers().contains_key("retry-after"));
    expect_problem(response, 429, "RATE_LIMITED").await;
    auth.stop().await;
}

async fn auth_outage_is_503_fast_never_401(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let gw = TestGateway::spawn(&auth.url(), &format!("http://{}", unused_addr())).await;
    let (_, token) = gw.sync_user("outage").await;
    let mut config = auth.config.clone();
    config.listen = auth.addr;
    auth.stop().await;
    crate::support::until_refused(config.listen).await;
    let started = std::time::Instant::now();
    let sync = gw
        .http
        .post(gw.url("/api/auth/sync-user"))
        .header("X-Latchkey-Sync-Secret", SYNC_SECRET)
        .json(&json!({"provider": "github", "subject": "x", "email": "x@example.com"}))
        .send()
        .await
        .unwrap();
    expect_problem(sync, 503, "UPSTREAM_UNAVAILABLE").await;
    // A token the gateway has not seen in the last 5 s needs auth: 503, not 401.
    let unseen = format!("{token}x");
    let me = gw.call(Method::GET, "/api/auth/me", &unseen).await;
    expect_problem(me, 503, "UPSTREAM_UNAVAILABLE").await;
    let jwks = gw
        .http
        .get(gw.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    expect_problem(jwks, 503, "UPSTREAM_UNAVAILABLE").await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );

    // Auth back on the same address: the gateway recovers without a restart.
    let auth = TestAuth::spawn_with(config).await;
    let mut recovered = false;
    for _ in 0..50 {
        let response = gw
            .http
            .get(gw.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "gateway reconnects to auth");
    auth.stop().await;
}

/// `latchkey users …` against auth's database, as an operator runs it; then auth's test clock
/// catches up with the wall clock the CLI used, so both agree on "now".
fn users_cli_at(auth: &TestAuth, db: &TestDb, args: &[&str]) -> String {
    use latchkey_common::clock::{Clock, SystemClock};
    let text = users_cli(db, args);
    let behind = SystemClock.now() - auth.clock.now();
    if behind > 0 {
        auth.clock.advance(behind);
    }
    text
}

/// Runs `latchkey users …` against auth's database, as an operator does.
fn run_users(db: &TestDb, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("users")
        .args(args)
        .env_clear()
        .env("LATCHKEY_DATABASE_URL", &db.url)
        .env("LATCHKEY_SYNC_SECRET", SYNC_SECRET)
        .env(
            "LATCHKEY_SEAL_KEY",
            "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .output()
        .expect("run latchkey users")
}

/// `latchkey users …` that must succeed; its output.
fn users_cli(db: &TestDb, args: &[&str]) -> String {
    let output = run_users(db, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "latchkey users {args:?}: {text}");
    text
}

async fn fresh_token(gw: &TestGateway, user_id: &str) -> reqwest::Response {
    gw.http
        .post(gw.url("/api/auth/token"))
        .header("X-Latchkey-Sync-Secret", SYNC_SECRET)
        .json(&json!({"user_id": user_id}))
        .send()
        .await
        .unwrap()
}

async fn token_of(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// USER_DISABLED and TOKEN_REVOKED over REST, caused the way an operator causes them.
async fn operator_disables_enables_and_revokes_a_user(backend: Backend) {
    let Some((db, auth, gw)) = start(backend).await else {
        return;
    };
    let (user_id, _) = gw.sync_user("operated").await;
    let unseen = token_of(fresh_token(&gw, &user_id).await).await;

    let shown = users_cli_at(&auth, &db, &["disable", "operated@example.com"]);
    assert!(
        shown.contains(&user_id) && shown.contains("disabled:           true"),
        "{shown}"
    );
    let me = gw.call(Method::GET, "/api/auth/me", &unseen).await;
    let problem = expect_problem(me, 403, "USER_DISABLED").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("disabled"),
        "{problem}"
    );
    expect_problem(fresh_token(&gw, &user_id).await, 403, "USER_DISABLED").await;

    users_cli_at(&auth, &db, &["enable", &user_id]);
    let before_revoke = token_of(fresh_token(&gw, &user_id).await).await;
    let me = gw.call(Method::GET, "/api/auth/me", &before_revoke).await;
    assert_eq!(me.status(), 200);
    let unseen = token_of(fresh_token(&gw, &user_id).await).await;

    let shown = users_cli_at(&auth, &db, &["revoke", &user_id]);
    assert!(!shown.contains("(never revoked)"), "{shown}");
    let me = gw.call(Method::GET, "/api/auth/me", &unseen).await;
    expect_problem(me, 401, "TOKEN_REVOKED").await;
    // Tokens issued after the revocation work.
    let after = token_of(fresh_token(&gw, &user_id).await).await;
    let me = gw.call(Method::GET, "/api/auth/me", &after).await;
    assert_eq!(me.status(), 200);

    // The user signs out everywhere over REST: the token used and any other one are refused.
    let other = token_of(fresh_token(&gw, &user_id).await).await;
    let revoked = gw.call(Method::POST, "/api/auth/me/revoke", &after).await;
    assert_eq!(revoked.status(), 200);
    let body: Value = revoked.json().await.unwrap();
    assert!(
        body["revoked_before"].as_str().unwrap().ends_with('Z'),
        "{body}"
    );
    for token in [&after, &other] {
        let me = gw.call(Method::GET, "/api/auth/me", token).await;
        expect_problem(me, 401, "TOKEN_REVOKED").await;
    }

    let missing = run_users(&db, &["show", "nobody@example.com"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("no user with email nobody@example.com (sync-user has never seen it)")
    );

    // A second account with the same email (another provider): the email alone is refused.
    let second = gw
        .http
        .post(gw.url("/api/auth/sync-user"))
        .header("X-Latchkey-Sync-Secret", SYNC_SECRET)
        .json(&json!({"provider": "gitlab", "subject": "7", "email": "operated@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 200);
    let second_id = second.json::<Value>().await.unwrap()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ambiguous = run_users(&db, &["disable", "operated@example.com"]);
    assert_eq!(ambiguous.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&ambiguous.stderr);
    let stdout = String::from_utf8_lossy(&ambiguous.stdout);
    assert!(
        stderr.contains("USER_AMBIGUOUS: 2 users hold this email"),
        "{stderr}"
    );
    assert!(
        stdout.contains(&user_id) && stdout.contains(&second_id),
        "the operator sees both ids: {stdout}"
    );
    // `show` lists every user holding the email, with their identities.
    let shown = users_cli(&db, &["show", "Operated@Example.com"]);
    assert!(shown.contains("2 users hold this email"), "{shown}");
    assert!(
        shown.contains(&format!("id:                 {user_id}"))
            && shown.contains(&format!("id:                 {second_id}"))
            && shown.contains("identity:           gitlab/7 <operated@example.com>"),
        "{shown}"
    );
    auth.stop().await;
}

/// An upstream that accepts connections and never answers: the route's budget ends the call
/// with 504 DEADLINE_EXCEEDED instead of a hang.
async fn a_silent_upstream_is_504_deadline_exceeded(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let gw = TestGateway::spawn(&auth.url(), &silent_url).await;
    let (_, token) = gw.sync_user("patient").await;
    let list = gw.call(Method::GET, "/api/settings", &token).await;
    let problem = expect_problem(list, 504, "DEADLINE_EXCEEDED").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("budget"),
        "{problem}"
    );
    held.abort();
    auth.stop().await;
}

backend_tests!(
    sync_user_token_me_and_jwks,
    auth_errors_are_problems_with_challenges,
    unknown_routes_methods_limits_and_cors,
    rate_limits_answer_429_with_retry_after,
    auth_outage_is_503_fast_never_401,
    operator_disables_enables_and_revokes_a_user,
    a_silent_upstream_is_504_deadline_exceeded,
);
