//! Refresh tokens against real auth (gRPC) and a real gateway (REST), on both databases: rotation
//! on use, reuse revoking the whole family, parallel exchanges of one token within the grace
//! window, idle and absolute expiry on the controlled clock, sign-out everywhere and deletion.

use crate::support::gateway::{TestGateway, expect_problem, unused_addr};
use crate::support::{
    Backend, SYNC_SECRET, TestAuth, TestDb, reason, with_bearer, with_sync_secret,
};
use latchkey_auth::store::refresh_tokens;
use latchkey_common::config::{
    REFRESH_TOKEN_GRACE_SECS, REFRESH_TOKEN_IDLE_SECS, REFRESH_TOKEN_TTL_SECS,
};
use latchkey_proto::Reason;
use latchkey_proto::auth::v1 as pb;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

/// The table's defaults, read as the settings table writes them.
fn default_secs(setting: latchkey_common::config::Setting<i64>) -> i64 {
    setting.spec().default.unwrap().parse().unwrap()
}

/// (access token, refresh token) from `Auth.IssueRefreshToken` for the user `subject`.
async fn first_pair(auth: &TestAuth, subject: &str) -> (String, String) {
    let (user_id, _) = auth.user_token(subject).await;
    let request = with_sync_secret(
        pb::IssueRefreshTokenRequest {
            user: Some(pb::issue_refresh_token_request::User::UserId(user_id)),
        },
        SYNC_SECRET,
    );
    let answer = auth
        .client()
        .await
        .issue_refresh_token(request)
        .await
        .expect("issue a refresh token")
        .into_inner();
    let refresh = answer.refresh.unwrap();
    assert_eq!(
        refresh.refresh_expires_in,
        default_secs(REFRESH_TOKEN_IDLE_SECS)
    );
    (answer.token.unwrap().access_token, refresh.refresh_token)
}

/// `Auth.RefreshAccessToken`: (access token, next refresh token), or the refusal's reason.
async fn exchange(auth: &TestAuth, refresh_token: &str) -> Result<(String, String), Reason> {
    let request = pb::RefreshAccessTokenRequest {
        refresh_token: refresh_token.to_owned(),
    };
    match auth.client().await.refresh_access_token(request).await {
        Ok(answer) => {
            let answer = answer.into_inner();
            Ok((
                answer.token.unwrap().access_token,
                answer.refresh.unwrap().refresh_token,
            ))
        }
        Err(status) => Err(reason::<()>(Err(status))),
    }
}

async fn rows_in_state(auth: &TestAuth, state: &str) -> u64 {
    refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::State.eq(state))
        .count(auth.core.db())
        .await
        .unwrap()
}

async fn rotation_answers_a_new_pair_and_stores_only_digests(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (access, first) = first_pair(&auth, "rot").await;
    assert!(auth.authenticate(&access).await.is_ok());
    assert!(first.starts_with("lkr_") && first.len() == 47, "{first}");

    let (access, second) = exchange(&auth, &first)
        .await
        .expect("a current token rotates");
    assert_ne!(first, second);
    let who = auth
        .authenticate(&access)
        .await
        .expect("the new access token works");
    assert!(who.user.is_some());
    let (_, third) = exchange(&auth, &second)
        .await
        .expect("its successor rotates");
    assert_ne!(second, third);

    let stored: Vec<refresh_tokens::Model> = refresh_tokens::Entity::find()
        .all(auth.core.db())
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(rows_in_state(&auth, refresh_tokens::RETIRED).await, 2);
    assert_eq!(rows_in_state(&auth, refresh_tokens::CURRENT).await, 1);
    assert!(
        stored
            .iter()
            .all(|row| row.family_id == stored[0].family_id)
    );
    for token in [&first, &second, &third] {
        let random = &token["lkr_".len()..];
        assert!(
            stored
                .iter()
                .all(|row| !format!("{row:?}").contains(random)),
            "a token is stored as itself"
        );
    }
    auth.stop().await;
}

async fn reuse_after_the_grace_window_revokes_the_family(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let grace = default_secs(REFRESH_TOKEN_GRACE_SECS);
    let (_, first) = first_pair(&auth, "reuse").await;
    let (_, second) = exchange(&auth, &first).await.unwrap();

    // Within the window the retired token still answers (a sibling, see the parallel test).
    auth.clock.advance(grace);
    let (_, sibling) = exchange(&auth, &first)
        .await
        .expect("within the grace window");
    assert_ne!(sibling, second);

    auth.clock.advance(1);
    assert_eq!(
        exchange(&auth, &first).await,
        Err(Reason::RefreshTokenReused)
    );
    // Every token of the family is refused now, the newest included.
    assert_eq!(
        exchange(&auth, &second).await,
        Err(Reason::RefreshTokenRevoked)
    );
    assert_eq!(
        exchange(&auth, &sibling).await,
        Err(Reason::RefreshTokenRevoked)
    );
    assert_eq!(
        exchange(&auth, &first).await,
        Err(Reason::RefreshTokenRevoked)
    );

    // Another family of the same user is untouched, and a new sign-in works.
    let (user_id, _) = auth.user_token("reuse").await;
    let other = with_sync_secret(
        pb::IssueRefreshTokenRequest {
            user: Some(pb::issue_refresh_token_request::User::UserId(user_id)),
        },
        SYNC_SECRET,
    );
    let other = auth
        .client()
        .await
        .issue_refresh_token(other)
        .await
        .unwrap()
        .into_inner()
        .refresh
        .unwrap()
        .refresh_token;
    assert!(exchange(&auth, &other).await.is_ok());
    auth.stop().await;
}

/// `LATCHKEY_REFRESH_TOKEN_GRACE_SECS=0` turns the window off: a second use in the same second as
/// the rotation is already a reuse.
async fn a_zero_grace_window_makes_any_second_use_a_reuse(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut config = crate::support::auth_config(&db);
    config.refresh.grace = 0;
    let auth = TestAuth::spawn_with(config).await;
    let (_, first) = first_pair(&auth, "no-grace").await;
    let (_, second) = exchange(&auth, &first).await.unwrap();
    assert_eq!(
        exchange(&auth, &first).await,
        Err(Reason::RefreshTokenReused)
    );
    assert_eq!(
        exchange(&auth, &second).await,
        Err(Reason::RefreshTokenRevoked)
    );
    auth.stop().await;
}

async fn parallel_exchanges_of_one_token_all_succeed_in_the_grace_window(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (_, first) = first_pair(&auth, "tabs").await;
    const TABS: usize = 8;
    let mut tabs = tokio::task::JoinSet::new();
    for _ in 0..TABS {
        let client = auth.client().await;
        let token = first.clone();
        tabs.spawn(async move {
            let mut client = client;
            client
                .refresh_access_token(pb::RefreshAccessTokenRequest {
                    refresh_token: token,
                })
                .await
                .map(|answer| answer.into_inner().refresh.unwrap().refresh_token)
        });
    }
    let mut answered = Vec::new();
    while let Some(result) = tabs.join_next().await {
        answered.push(result.unwrap().expect("every tab gets an answer"));
    }
    answered.sort();
    answered.dedup();
    assert_eq!(answered.len(), TABS, "every tab got its own token");
    // Exactly one exchange retired the token; the others got siblings.
    assert_eq!(rows_in_state(&auth, refresh_tokens::RETIRED).await, 1);
    assert_eq!(
        rows_in_state(&auth, refresh_tokens::CURRENT).await,
        TABS as u64
    );
    for token in &answered {
        assert!(exchange(&auth, token).await.is_ok(), "each answer rotates");
    }

    // After the window the same presentation is a reuse.
    auth.clock
        .advance(default_secs(REFRESH_TOKEN_GRACE_SECS) + 1);
    assert_eq!(
        exchange(&auth, &first).await,
        Err(Reason::RefreshTokenReused)
    );
    assert_eq!(
        rows_in_state(&auth, refresh_tokens::REVOKED).await,
        1 + 2 * TABS as u64
    );
    auth.stop().await;
}

/// The store's rotate, raced directly: of many exchanges of one current token exactly one
/// retires it (and writes its successor), whatever the interleaving.
async fn concurrent_rotations_of_one_row_retire_it_once(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (_, first) = first_pair(&auth, "race").await;
    let row = refresh_tokens::Entity::find()
        .one(auth.core.db())
        .await
        .unwrap()
        .unwrap();
    assert!(!row.digest.contains(&first[4..]));
    const RACERS: usize = 16;
    let mut racers = tokio::task::JoinSet::new();
    for n in 0..RACERS {
        let db = auth.core.db().clone();
        let row = row.clone();
        racers.spawn(async move {
            let successor = refresh_tokens::NewToken {
                digest: format!("{:064x}", n + 1),
                family_id: row.family_id.clone(),
                user_id: row.user_id.clone(),
                created_at: row.created_at,
                idle_expires_at: row.idle_expires_at,
                family_started_at: row.family_started_at,
                family_expires_at: row.family_expires_at,
            };
            refresh_tokens::rotate(&db, &row.digest, successor, row.created_at).await
        });
    }
    let mut won = 0;
    while let Some(result) = racers.join_next().await {
        if result.unwrap().expect("a rotation answers") {
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one rotation retires the token");
    assert_eq!(rows_in_state(&auth, refresh_tokens::CURRENT).await, 1);
    assert_eq!(rows_in_state(&auth, refresh_tokens::RETIRED).await, 1);
    auth.stop().await;
}

async fn idle_and_absolute_lifetimes_expire_tokens(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let idle = default_secs(REFRESH_TOKEN_IDLE_SECS);
    let absolute = default_secs(REFRESH_TOKEN_TTL_SECS);

    // Idle: unused for the idle lifetime, a token expires; one second earlier it works.
    let (_, unused) = first_pair(&auth, "idle").await;
    let (_, kept) = first_pair(&auth, "idle-kept").await;
    auth.clock.advance(idle - 1);
    assert!(exchange(&auth, &kept).await.is_ok());
    auth.clock.advance(1);
    assert_eq!(
        exchange(&auth, &unused).await,
        Err(Reason::RefreshTokenExpired)
    );

    // Absolute: rotating within the idle lifetime keeps a family going until its absolute
    // lifetime from sign-in, and no longer.
    let (_, mut token) = first_pair(&auth, "absolute").await;
    let step = idle - 1;
    let mut elapsed = 0;
    while elapsed + step < absolute {
        auth.clock.advance(step);
        elapsed += step;
        token = exchange(&auth, &token)
            .await
            .expect("within both lifetimes")
            .1;
    }
    auth.clock.advance(absolute - elapsed);
    assert_eq!(
        exchange(&auth, &token).await,
        Err(Reason::RefreshTokenExpired)
    );
    auth.stop().await;
}

async fn sign_out_everywhere_and_deletion_revoke_every_family(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (access, laptop) = first_pair(&auth, "out").await;
    let (_, phone) = first_pair(&auth, "out").await;
    let (_, bystander) = first_pair(&auth, "bystander").await;
    auth.client()
        .await
        .revoke_user_tokens(with_bearer(pb::RevokeUserTokensRequest {}, &access))
        .await
        .expect("sign out everywhere");
    assert_eq!(
        exchange(&auth, &laptop).await,
        Err(Reason::RefreshTokenRevoked)
    );
    assert_eq!(
        exchange(&auth, &phone).await,
        Err(Reason::RefreshTokenRevoked)
    );
    assert!(
        exchange(&auth, &bystander).await.is_ok(),
        "other users keep theirs"
    );

    // A sign-in after the revocation starts a family that works.
    let (access, fresh) = first_pair(&auth, "out").await;
    let (_, fresh) = exchange(&auth, &fresh).await.expect("a new family works");

    auth.client()
        .await
        .delete_user(with_bearer(pb::DeleteUserRequest {}, &access))
        .await
        .expect("delete the user");
    assert_eq!(
        exchange(&auth, &fresh).await,
        Err(Reason::RefreshTokenInvalid)
    );
    assert_eq!(
        refresh_tokens::Entity::find()
            .filter(refresh_tokens::Column::State.ne(refresh_tokens::CURRENT))
            .count(auth.core.db())
            .await
            .unwrap(),
        1,
        "only the bystander's retired token is left"
    );
    auth.stop().await;
}

async fn malformed_and_unknown_tokens_are_refused_by_name(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (access, _) = first_pair(&auth, "bad").await;
    assert_eq!(exchange(&auth, "").await, Err(Reason::InvalidArgument));
    assert_eq!(
        exchange(&auth, &access).await,
        Err(Reason::RefreshTokenInvalid)
    );
    let unknown = format!("lkr_{}", "A".repeat(43));
    assert_eq!(
        exchange(&auth, &unknown).await,
        Err(Reason::RefreshTokenInvalid)
    );
    // Asking for a refresh token needs the sync secret like the token route.
    let refused = auth
        .client()
        .await
        .issue_refresh_token(pb::IssueRefreshTokenRequest {
            user: Some(pb::issue_refresh_token_request::User::Email(
                "bad@example.com".into(),
            )),
        })
        .await;
    assert_eq!(reason(refused), Reason::SyncSecretMissing);
    // Reflection describes the new RPCs, so grpcurl can call them.
    let channel = tonic::transport::Channel::from_shared(auth.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    for rpc in ["IssueRefreshToken", "RefreshAccessToken"] {
        let symbol = format!("latchkey.auth.v1.AuthService.{rpc}");
        assert!(
            crate::support::reflection_describes(channel.clone(), &symbol).await,
            "{symbol}"
        );
    }
    auth.stop().await;
}

/// Auth on its own database, a gateway in front (settings address unused here).
async fn start_gateway(backend: Backend) -> Option<(TestDb, TestAuth, TestGateway)> {
    let db = TestDb::new(backend).await?;
    let auth = TestAuth::spawn(&db).await;
    let gateway = TestGateway::spawn(&auth.url(), &format!("http://{}", unused_addr())).await;
    Some((db, auth, gateway))
}

async fn post(gw: &TestGateway, path: &str, body: Value) -> reqwest::Response {
    gw.http
        .post(gw.url(path))
        .header("X-Latchkey-Sync-Secret", SYNC_SECRET)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn rest_token_sync_and_refresh_routes(backend: Backend) {
    let Some((_db, auth, gw)) = start_gateway(backend).await else {
        return;
    };
    let (user_id, _) = gw.sync_user("rest").await;

    // Not asked: the answer is exactly what it always was.
    let plain: Value = post(&gw, "/api/auth/token", json!({"user_id": user_id}))
        .await
        .json()
        .await
        .unwrap();
    let mut keys: Vec<_> = plain.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["access_token", "expires_in", "token_type"]);

    let asked = post(
        &gw,
        "/api/auth/token",
        json!({"email": "rest@example.com", "refresh": true}),
    )
    .await;
    assert_eq!(asked.status(), 200);
    let asked: Value = asked.json().await.unwrap();
    assert_eq!(asked["token_type"], "Bearer");
    assert_eq!(
        asked["refresh_expires_in"],
        default_secs(REFRESH_TOKEN_IDLE_SECS)
    );
    let first = asked["refresh_token"].as_str().unwrap().to_owned();

    let synced = post(
        &gw,
        "/api/auth/sync-user",
        json!({"provider": "github", "subject": "rest", "email": "rest@example.com", "refresh": true}),
    )
    .await;
    assert_eq!(synced.status(), 200);
    let synced: Value = synced.json().await.unwrap();
    assert_eq!(synced["user"]["id"], user_id.as_str());
    assert!(
        synced["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("lkr_")
    );
    let me = gw
        .call(
            reqwest::Method::GET,
            "/api/auth/me",
            synced["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(
        me.status(),
        200,
        "the sync answer's access token is accepted"
    );

    let refreshed = gw
        .http
        .post(gw.url("/api/auth/refresh"))
        .json(&json!({"refresh_token": first}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let second = refreshed["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert!(refreshed["expires_in"].as_i64().unwrap() > 0);
    let me = gw
        .call(
            reqwest::Method::GET,
            "/api/auth/me",
            refreshed["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(me.status(), 200);

    // Two tabs at once with the next token: both answered.
    let tab = |token: String| {
        let request = gw
            .http
            .post(gw.url("/api/auth/refresh"))
            .json(&json!({"refresh_token": token}));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let (a, b) = tokio::join!(tab(second.clone()), tab(second.clone()));
    assert_eq!((a, b), (200, 200));

    auth.clock
        .advance(default_secs(REFRESH_TOKEN_GRACE_SECS) + 1);
    let reused = gw
        .http
        .post(gw.url("/api/auth/refresh"))
        .json(&json!({"refresh_token": first}))
        .send()
        .await
        .unwrap();
    let body = expect_problem(reused, 401, "REFRESH_TOKEN_REUSED").await;
    assert!(
        !body.to_string().contains(&first[4..]),
        "the token is never echoed"
    );
    let revoked = gw
        .http
        .post(gw.url("/api/auth/refresh"))
        .json(&json!({"refresh_token": second}))
        .send()
        .await
        .unwrap();
    expect_problem(revoked, 401, "REFRESH_TOKEN_REVOKED").await;

    // The Settings page loads its refresh hook before its main script.
    let page = gw
        .http
        .get(gw.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let hook = page
        .find("assets/refresh.js")
        .expect("the page loads refresh.js");
    assert!(hook < page.find("assets/app.js").unwrap());
    let script = gw
        .http
        .get(gw.url("/assets/refresh.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.text().await.unwrap().contains("api/auth/refresh"));

    let missing = gw
        .http
        .post(gw.url("/api/auth/refresh"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(missing, 400, "INVALID_ARGUMENT").await;
    gw.stop().await;
    auth.stop().await;
}

/// `POST /api/auth/me/refresh` with the bearer token `token`.
async fn start_with(gw: &TestGateway, token: &str) -> reqwest::Response {
    gw.authed(reqwest::Method::POST, "/api/auth/me/refresh", token)
        .send()
        .await
        .unwrap()
}

/// A 200 answer's pair works: the access token is `user_id`'s, the refresh token rotates.
async fn assert_started(
    gw: &TestGateway,
    auth: &TestAuth,
    answer: reqwest::Response,
    user_id: &str,
    what: &str,
) {
    assert_eq!(answer.status(), 200, "{what}");
    let pair: Value = answer.json().await.unwrap();
    assert_eq!(pair["token_type"], "Bearer", "{what}");
    assert_eq!(
        pair["refresh_expires_in"],
        default_secs(REFRESH_TOKEN_IDLE_SECS),
        "{what}"
    );
    let who = auth
        .authenticate(pair["access_token"].as_str().unwrap())
        .await;
    assert_eq!(who.expect(what).user.unwrap().id, user_id, "{what}");
    let renewed = gw
        .http
        .post(gw.url("/api/auth/refresh"))
        .json(&json!({"refresh_token": pair["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        renewed.status(),
        200,
        "{what}: the first refresh token rotates"
    );
}

/// A browser holding only its web app's token — Auth.js v4 (JWS) or v5 (JWE) made by the real
/// npm packages, or a legacy HS256 one — or a Latchkey access token starts a family through
/// `POST /api/auth/me/refresh` (gRPC: `IssueRefreshToken` with the token as `authorization` and
/// no sync secret). Tokens that do not verify, are revoked, or name no user are refused by the
/// usual reasons, and nothing is stored for them.
async fn web_app_tokens_start_a_family(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut config = crate::support::auth_config(&db);
    config.rules.legacy = Some(crate::support::legacy_rules());
    config.rules.authjs = Some(crate::authjs_interop::authjs_rules());
    let auth = TestAuth::spawn_with(config).await;
    let gw = TestGateway::spawn(&auth.url(), &format!("http://{}", unused_addr())).await;
    let (user_id, access) = gw.sync_user("ada").await;
    let minted = crate::authjs_interop::minted();

    let now = latchkey_common::clock::Clock::now(&*auth.clock);
    let legacy = latchkey_auth::tokens::sign_hs256(
        &latchkey_common::SecretString::from(crate::support::LEGACY_SECRET.to_owned()),
        &json!({"sub": "Ada@Example.com", "iss": "https://app.example.com", "aud": crate::support::LEGACY_AUDIENCE, "iat": now, "exp": now + 600}),
    );
    let mut started = vec![
        ("legacy HS256", legacy.clone()),
        ("Latchkey", access.clone()),
    ];
    if let Some(tokens) = &minted {
        for (version, kind) in [("v4", "valid"), ("v5", "valid"), ("v5", "valid_secure")] {
            let token = crate::authjs_interop::token(tokens, version, kind).to_owned();
            started.push((version, token));
        }
    }
    for (what, token) in &started {
        assert_started(&gw, &auth, start_with(&gw, token).await, &user_id, what).await;
    }
    let families = started.len() as u64;
    assert_eq!(
        rows_in_state(&auth, refresh_tokens::CURRENT).await,
        families
    );
    assert_eq!(
        rows_in_state(&auth, refresh_tokens::RETIRED).await,
        families
    );

    // gRPC: the bearer token instead of the sync secret.
    let answer = auth
        .client()
        .await
        .issue_refresh_token(with_bearer(
            pb::IssueRefreshTokenRequest { user: None },
            &legacy,
        ))
        .await
        .expect("a legacy token starts a family over gRPC")
        .into_inner();
    assert!(answer.refresh.unwrap().refresh_token.starts_with("lkr_"));

    // Refused by the usual reasons.
    if let Some(tokens) = &minted {
        for version in ["v4", "v5"] {
            let expired = crate::authjs_interop::token(tokens, version, "expired");
            expect_problem(start_with(&gw, expired).await, 401, "TOKEN_EXPIRED").await;
        }
        let other = crate::authjs_interop::token(tokens, "v4", "other_secret");
        expect_problem(start_with(&gw, other).await, 401, "TOKEN_SIGNATURE_INVALID").await;
    }
    let forged = latchkey_auth::tokens::sign_hs256(
        &latchkey_common::SecretString::from("not-the-web-apps-secret-0123456789abcdef".to_owned()),
        &json!({"sub": "Ada@Example.com", "iss": "https://app.example.com", "aud": crate::support::LEGACY_AUDIENCE, "iat": now, "exp": now + 600}),
    );
    expect_problem(
        start_with(&gw, &forged).await,
        401,
        "TOKEN_SIGNATURE_INVALID",
    )
    .await;
    let bare = gw
        .http
        .post(gw.url("/api/auth/me/refresh"))
        .send()
        .await
        .unwrap();
    expect_problem(bare, 401, "TOKEN_MISSING").await;
    let service = crate::support::settings::service_token(&auth, "deployer").await;
    expect_problem(start_with(&gw, &service).await, 400, "INVALID_ARGUMENT").await;
    let bad_grpc = auth
        .client()
        .await
        .issue_refresh_token(with_bearer(
            pb::IssueRefreshTokenRequest { user: None },
            &forged,
        ))
        .await;
    assert_eq!(reason(bad_grpc), Reason::TokenSignatureInvalid);
    let neither = auth
        .client()
        .await
        .issue_refresh_token(pb::IssueRefreshTokenRequest { user: None })
        .await;
    assert_eq!(
        reason(neither),
        Reason::SyncSecretMissing,
        "unchanged without a bearer"
    );

    // Signed out everywhere: the tokens issued before are revoked, and so are the families.
    auth.clock.advance(5);
    let revoked = gw
        .authed(reqwest::Method::POST, "/api/auth/me/revoke", &access)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    expect_problem(start_with(&gw, &legacy).await, 401, "TOKEN_REVOKED").await;
    expect_problem(start_with(&gw, &access).await, 401, "TOKEN_REVOKED").await;
    if let Some(tokens) = &minted {
        let v5 = crate::authjs_interop::token(tokens, "v5", "valid");
        expect_problem(start_with(&gw, v5).await, 401, "TOKEN_REVOKED").await;
    }
    assert_eq!(rows_in_state(&auth, refresh_tokens::CURRENT).await, 0);
    // Each family started over REST has rotated once (two rows); the gRPC one has one row.
    assert_eq!(
        rows_in_state(&auth, refresh_tokens::REVOKED).await,
        2 * families + 1
    );
    gw.stop().await;
    auth.stop().await;
}

backend_tests!(
    rotation_answers_a_new_pair_and_stores_only_digests,
    reuse_after_the_grace_window_revokes_the_family,
    a_zero_grace_window_makes_any_second_use_a_reuse,
    parallel_exchanges_of_one_token_all_succeed_in_the_grace_window,
    concurrent_rotations_of_one_row_retire_it_once,
    idle_and_absolute_lifetimes_expire_tokens,
    sign_out_everywhere_and_deletion_revoke_every_family,
    malformed_and_unknown_tokens_are_refused_by_name,
    rest_token_sync_and_refresh_routes,
    web_app_tokens_start_a_family,
);
