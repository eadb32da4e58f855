//! Black-box tests of the auth service over real gRPC, on SQLite and PostgreSQL: every reason
//! auth can answer, idempotent sync, revocation, rotation, legacy mode, health and reflection.

use crate::support::*;
use latchkey_auth::tokens::sign_hs256;
use latchkey_common::SecretString;
use latchkey_proto::Reason;
use latchkey_proto::auth::v1 as pb;

async fn sync_is_idempotent_and_normalises_email(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let first = auth.sync_user("gh-1", "  Ada@Example.COM ").await;
    let second = auth.sync_user("gh-1", "ada@example.com").await;
    let (a, b) = (first.user.unwrap(), second.user.unwrap());
    assert!(first.created && !second.created);
    assert_eq!(a.id, b.id);
    assert_eq!(b.email, "ada@example.com");
    let token = second.token.unwrap();
    assert_eq!(token.token_type, "Bearer");
    assert!(token.expires_in > 800 && token.expires_in <= 900);
    let other = auth.sync_user("gh-2", "ada@example.com").await;
    assert_ne!(
        other.user.unwrap().id,
        a.id,
        "another subject is another user"
    );
    auth.stop().await;
}

async fn sync_secret_is_required_and_compared(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let body = || pb::SyncUserRequest {
        provider: "github".into(),
        subject: "s".into(),
        email: "s@example.com".into(),
        ..Default::default()
    };
    let mut client = auth.client().await;
    assert_eq!(
        reason(client.sync_user(tonic::Request::new(body())).await),
        Reason::SyncSecretMissing
    );
    // Same length, one character off; and a prefix of the right secret.
    let mut wrong = SYNC_SECRET.to_owned();
    wrong.pop();
    wrong.push('X');
    assert_eq!(
        reason(client.sync_user(with_sync_secret(body(), &wrong)).await),
        Reason::SyncSecretInvalid
    );
    assert_eq!(
        reason(
            client
                .sync_user(with_sync_secret(body(), &SYNC_SECRET[..10]))
                .await
        ),
        Reason::SyncSecretInvalid
    );
    // The X-Auth-Secret spelling is accepted too.
    let mut request = tonic::Request::new(body());
    request
        .metadata_mut()
        .insert("x-auth-secret", SYNC_SECRET.parse().unwrap());
    assert!(client.sync_user(request).await.is_ok());
    auth.stop().await;
}

async fn sync_rejects_bad_fields_listing_each(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let request = with_sync_secret(
        pb::SyncUserRequest {
            provider: "Bad Provider!".into(),
            subject: "".into(),
            email: "not-an-email".into(),
            name: String::new(),
            avatar_url: "ftp://x".into(),
            email_verified: None,
        },
        SYNC_SECRET,
    );
    let status = auth.client().await.sync_user(request).await.unwrap_err();
    let error = latchkey_proto::ApiError::from_status(&status);
    assert_eq!(error.reason, Reason::InvalidArgument);
    let fields: Vec<&str> = error.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["provider", "subject", "email", "avatar_url"]);
    auth.stop().await;
}

async fn issued_tokens_verify_against_the_published_jwks(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (user_id, token) = auth.user_token("jwks").await;
    let principal = auth.authenticate(&token).await.unwrap();
    assert_eq!(principal.kind, pb::PrincipalKind::User as i32);
    assert_eq!(principal.user.unwrap().id, user_id);
    assert_eq!(principal.algorithm, "EdDSA");

    // An outside verifier: only the JWKS and a stock JWT library.
    let jwks = auth
        .client()
        .await
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    let jwk = jwks
        .keys
        .iter()
        .find(|k| Some(&k.kid) == header.kid.as_ref())
        .expect("kid published");
    assert_eq!(
        (
            jwk.kty.as_str(),
            jwk.crv.as_str(),
            jwk.alg.as_str(),
            jwk.key_use.as_str()
        ),
        ("OKP", "Ed25519", "EdDSA", "sig")
    );
    let key = jsonwebtoken::DecodingKey::from_ed_components(&jwk.x).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["latchkey"]);
    validation.set_issuer(&["latchkey"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], user_id.as_str());
    for claim in ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope"] {
        assert!(claims.get(claim).is_some(), "claim {claim} missing");
    }
    auth.stop().await;
}

async fn every_token_failure_has_its_own_reason(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (_, token) = auth.user_token("reasons").await;
    let check = |t: String, expected: Reason| {
        let auth = &auth;
        async move {
            assert_eq!(
                auth.authenticate(&t).await.unwrap_err().reason,
                expected,
                "token {t}"
            )
        }
    };
    check(String::new(), Reason::TokenMissing).await;
    check("not-a-jwt".into(), Reason::TokenMalformed).await;
    check("a.b.c".into(), Reason::TokenMalformed).await;
    let (_, rest) = token.split_once('.').unwrap();
    let none_header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
    check(
        format!("{none_header}.{}", rest.split('.').next().unwrap()) + ".",
        Reason::TokenAlgorithmRejected,
    )
    .await;
    let rs_header = base64_url(br#"{"alg":"RS256","kid":"x"}"#);
    check(
        format!("{rs_header}.{rest}"),
        Reason::TokenAlgorithmRejected,
    )
    .await;
    let hs = sign_hs256(
        &SecretString::from(LEGACY_SECRET.to_owned()),
        &serde_json::json!({"sub": "reasons@example.com", "exp": 9_999_999_999i64}),
    );
    check(hs, Reason::TokenAlgorithmRejected).await;
    let unknown_kid = base64_url(br#"{"alg":"EdDSA","kid":"not-a-published-kid"}"#);
    check(format!("{unknown_kid}.{rest}"), Reason::TokenKeyUnknown).await;
    // Flip one character in the middle of the signature (the last one carries padding bits).
    let mut tampered: Vec<char> = token.chars().collect();
    let at = tampered.len() - 20;
    tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
    check(
        tampered.into_iter().collect(),
        Reason::TokenSignatureInvalid,
    )
    .await;
    // Another issuer / audience sharing the same keys: signature fine, claims not ours.
    for (issuer, audience, expected) in [
        ("someone-else", "latchkey", Reason::TokenIssuerUntrusted),
        ("latchkey", "another-app", Reason::TokenAudienceMismatch),
    ] {
        let mut config = auth.config.clone();
        config.rules.issuer = issuer.into();
        config.rules.audience = audience.into();
        let foreign = TestAuth::spawn_with(config).await;
        let (_, foreign_token) = foreign.user_token("reasons").await;
        check(foreign_token, expected).await;
        foreign.stop().await;
    }
    auth.clock.advance(900 + 31);
    check(token.clone(), Reason::TokenExpired).await;
    auth.clock.advance(-(900 + 31) - 120);
    check(token, Reason::TokenNotYetValid).await;
    auth.stop().await;
}

async fn unsynced_and_disabled_users_are_named(backend: Backend) {
    use sea_orm::{ConnectionTrait, Statement};
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (user_id, token) = auth.user_token("gone").await;
    let mut client = auth.client().await;
    client
        .delete_user(with_bearer(pb::DeleteUserRequest {}, &token))
        .await
        .unwrap();
    let error = auth.authenticate(&token).await.unwrap_err();
    assert_eq!(error.reason, Reason::UserNotSynced);
    assert!(error.detail.contains("sync-user"), "{}", error.detail);
    assert_eq!(error.metadata.get("user"), Some(&user_id));

    let (disabled_id, token) = auth.user_token("disabled").await;
    assert!(
        auth.authenticate(&token).await.is_ok(),
        "remembered as verified"
    );
    let conn = latchkey_common::db::connect(&db.url).await.unwrap();
    let sql = format!("UPDATE users SET disabled = true WHERE id = '{disabled_id}'");
    conn.execute_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap();
    assert_eq!(
        auth.authenticate(&token).await.unwrap_err().reason,
        Reason::UserDisabled
    );
    let issue = with_sync_secret(
        pb::IssueTokenRequest {
            user: Some(pb::issue_token_request::User::UserId(disabled_id)),
        },
        SYNC_SECRET,
    );
    assert_eq!(
        reason(client.issue_token(issue).await),
        Reason::UserDisabled
    );
    auth.stop().await;
}

async fn revocation_rejects_old_tokens_and_new_ones_work(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (user_id, token) = auth.user_token("revoke").await;
    // Verified once before the revocation, so its claims are remembered: the revocation must
    // still stop it (the user is read on every call).
    assert!(auth.authenticate(&token).await.is_ok());
    let mut client = auth.client().await;
    client
        .revoke_user_tokens(with_bearer(pb::RevokeUserTokensRequest {}, &token))
        .await
        .unwrap();
    assert_eq!(
        auth.authenticate(&token).await.unwrap_err().reason,
        Reason::TokenRevoked
    );
    // A token issued in the same second, after the revocation, is good.
    let issue = with_sync_secret(
        pb::IssueTokenRequest {
            user: Some(pb::issue_token_request::User::UserId(user_id)),
        },
        SYNC_SECRET,
    );
    let fresh = client
        .issue_token(issue)
        .await
        .unwrap()
        .into_inner()
        .token
        .unwrap()
        .access_token;
    assert!(auth.authenticate(&fresh).await.is_ok());
    auth.stop().await;
}

async fn issue_token_by_id_or_email(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (user_id, _) = auth.user_token("issue").await;
    let mut client = auth.client().await;
    use pb::issue_token_request::User;
    for who in [
        User::UserId(user_id.clone()),
        User::Email("ISSUE@example.com".into()),
    ] {
        let token = client
            .issue_token(with_sync_secret(
                pb::IssueTokenRequest { user: Some(who) },
                SYNC_SECRET,
            ))
            .await
            .unwrap();
        let principal = auth
            .authenticate(&token.into_inner().token.unwrap().access_token)
            .await
            .unwrap();
        assert_eq!(principal.user.unwrap().id, user_id);
    }
    let unknown = with_sync_secret(
        pb::IssueTokenRequest {
            user: Some(User::Email("nobody@example.com".into())),
        },
        SYNC_SECRET,
    );
    assert_eq!(
        reason(client.issue_token(unknown).await),
        Reason::UserNotSynced
    );
    let neither = with_sync_secret(pb::IssueTokenRequest { user: None }, SYNC_SECRET);
    assert_eq!(
        reason(client.issue_token(neither).await),
        Reason::InvalidArgument
    );
    let no_secret = tonic::Request::new(pb::IssueTokenRequest {
        user: Some(User::UserId(user_id)),
    });
    assert_eq!(
        reason(client.issue_token(no_secret).await),
        Reason::SyncSecretMissing
    );
    auth.stop().await;
}

async fn service_clients_get_only_their_scopes(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let mut client = auth.client().await;
    let ask = |id: &str, secret: &str, scopes: &[&str]| pb::IssueServiceTokenRequest {
        client_id: id.into(),
        client_secret: secret.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    };
    let issued = client
        .issue_service_token(ask("deployer", "deployer-secret-0123456789", &[]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(issued.scopes, ["settings:reveal"]);
    let principal = auth
        .authenticate(&issued.token.unwrap().access_token)
        .await
        .unwrap();
    assert_eq!(principal.kind, pb::PrincipalKind::Service as i32);
    assert_eq!(principal.client_id, "deployer");
    assert_eq!(principal.scopes, ["settings:reveal"]);
    assert_eq!(
        reason(
            client
                .issue_service_token(ask("deployer", "wrong", &[]))
                .await
        ),
        Reason::ClientCredentialsInvalid
    );
    assert_eq!(
        reason(client.issue_service_token(ask("nobody", "x", &[])).await),
        Reason::ClientCredentialsInvalid
    );
    assert_eq!(
        reason(
            client
                .issue_service_token(ask(
                    "reader",
                    "reader-secret-0123456789",
                    &["settings:reveal"]
                ))
                .await
        ),
        Reason::ScopeMissing
    );
    auth.stop().await;
}

async fn legacy_hs256_tokens_when_enabled(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut config = auth_config(&db);
    config.rules.legacy = Some(legacy_rules());
    let auth = TestAuth::spawn_with(config.clone()).await;
    let (user_id, _) = auth.user_token("legacy").await;
    let now = auth.clock_now();
    let legacy = |sub: &str, iss: &str| {
        sign_hs256(
            &SecretString::from(LEGACY_SECRET.to_owned()),
            &serde_json::json!({"sub": sub, "iss": iss, "aud": LEGACY_AUDIENCE, "iat": now, "exp": now + 600}),
        )
    };
    let principal = auth
        .authenticate(&legacy("Legacy@example.com", "https://app.example.com"))
        .await
        .unwrap();
    assert_eq!(principal.user.as_ref().unwrap().id, user_id);
    assert_eq!(principal.algorithm, "HS256");
    // The legacy token comes with a Latchkey token for the same user, expiring no later.
    assert!(
        !format!("{principal:?}").contains(&principal.exchanged_token),
        "Debug redacts the exchanged token"
    );
    let exchanged = auth
        .authenticate(&principal.exchanged_token)
        .await
        .expect("the exchanged token verifies");
    assert_eq!(exchanged.algorithm, "EdDSA");
    assert_eq!(exchanged.user.unwrap().id, user_id);
    assert!(
        exchanged.expires_at <= now + 600,
        "{}",
        exchanged.expires_at
    );
    assert!(
        exchanged.exchanged_token.is_empty(),
        "only legacy tokens are exchanged"
    );
    assert_eq!(
        auth.authenticate(&legacy("stranger@example.com", "https://app.example.com"))
            .await
            .unwrap_err()
            .reason,
        Reason::UserNotSynced
    );
    assert_eq!(
        auth.authenticate(&legacy("legacy@example.com", "https://evil.example.com"))
            .await
            .unwrap_err()
            .reason,
        Reason::TokenIssuerUntrusted
    );
    let forged = sign_hs256(
        &SecretString::from("not-the-secret".to_owned()),
        &serde_json::json!({"sub": "legacy@example.com", "iss": "https://app.example.com", "aud": LEGACY_AUDIENCE, "exp": now + 600}),
    );
    let refused = auth.authenticate(&forged).await.unwrap_err();
    assert_eq!(refused.reason, Reason::TokenSignatureInvalid);
    // The refusal names where Latchkey read its secret and that secret's fingerprint.
    let fingerprint = latchkey_common::secret::fingerprint(LEGACY_SECRET.as_bytes());
    for expected in [
        "NEXTAUTH_SECRET",
        fingerprint.as_str(),
        "latchkey fingerprint",
    ] {
        assert!(
            refused.detail.contains(expected),
            "{expected}: {}",
            refused.detail
        );
    }
    // F3: an invite link the web app signs with the same secret, an email in it and no `aud`,
    // is not a session.
    let invite = sign_hs256(
        &SecretString::from(LEGACY_SECRET.to_owned()),
        &serde_json::json!({"email": "legacy@example.com", "iss": "https://app.example.com", "purpose": "invite", "iat": now, "exp": now + 600}),
    );
    let refused = auth.authenticate(&invite).await.unwrap_err();
    assert_eq!(refused.reason, Reason::TokenAudienceMismatch);
    assert!(
        refused.detail.contains(r#"aud: "latchkey""#)
            && refused.detail.contains("LATCHKEY_LEGACY_HS256_AUDIENCE"),
        "{}",
        refused.detail
    );
    auth.stop().await;

    config.jit_provisioning = true;
    let jit = TestAuth::spawn_with(config).await;
    let principal = jit
        .authenticate(&legacy("newcomer@example.com", "https://app.example.com"))
        .await
        .unwrap();
    let user = principal.user.unwrap();
    assert_eq!(
        (user.provider.as_str(), user.email.as_str()),
        ("legacy", "newcomer@example.com")
    );
    jit.stop().await;
}

async fn rotation_keeps_old_tokens_until_their_key_is_removed(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (user_id, old_token) = auth.user_token("rotate").await;
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .unwrap()
        .kid
        .unwrap();
    let conn = latchkey_common::db::connect(&db.url).await.unwrap();
    let rotation = latchkey_auth::life_cycle::rotate_now(
        &conn,
        &auth.config.seal_key,
        auth.clock_now(),
        latchkey_auth::life_cycle::TokenLife {
            ttl: 900,
            leeway: 30,
        },
        latchkey_auth::keys::SigningAlg::EdDSA,
    )
    .await
    .unwrap();
    assert_eq!(rotation.retired, std::slice::from_ref(&old_kid));
    auth.core.reload_keys().await.unwrap();

    let issue = with_sync_secret(
        pb::IssueTokenRequest {
            user: Some(pb::issue_token_request::User::UserId(user_id)),
        },
        SYNC_SECRET,
    );
    let new_token = auth
        .client()
        .await
        .issue_token(issue)
        .await
        .unwrap()
        .into_inner()
        .token
        .unwrap()
        .access_token;
    assert_eq!(
        jsonwebtoken::decode_header(&new_token)
            .unwrap()
            .kid
            .unwrap(),
        rotation.new_kid
    );
    assert!(
        auth.authenticate(&old_token).await.is_ok(),
        "a token signed before rotation still verifies"
    );
    let kids: Vec<String> = auth
        .client()
        .await
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert!(kids.contains(&old_kid) && kids.contains(&rotation.new_kid));

    // Past the old key's publish window it is gone: its tokens fail with TOKEN_KEY_UNKNOWN.
    auth.clock.advance(900 + 30 + 1);
    auth.core.reload_keys().await.unwrap();
    assert_eq!(
        auth.authenticate(&old_token).await.unwrap_err().reason,
        Reason::TokenKeyUnknown
    );
    let kids: Vec<String> = auth
        .client()
        .await
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, [rotation.new_kid]);
    auth.stop().await;
}

async fn a_second_auth_replica_picks_up_rotation_without_restart(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let first = TestAuth::spawn(&db).await;
    let mut config = first.config.clone();
    config.key_refresh = std::time::Duration::from_millis(200);
    let second = TestAuth::spawn_with(config).await;
    let conn = latchkey_common::db::connect(&db.url).await.unwrap();
    let rotation = latchkey_auth::life_cycle::rotate_now(
        &conn,
        &first.config.seal_key,
        first.clock_now(),
        latchkey_auth::life_cycle::TokenLife {
            ttl: 900,
            leeway: 30,
        },
        latchkey_auth::keys::SigningAlg::EdDSA,
    )
    .await
    .unwrap();
    // The first replica has a one-hour refresh; a token with the new kid makes it re-read at once.
    let mut new_token = String::new();
    for _ in 0..50 {
        let (_, token) = second.user_token("replica").await;
        if jsonwebtoken::decode_header(&token).unwrap().kid.as_deref()
            == Some(rotation.new_kid.as_str())
        {
            new_token = token;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        !new_token.is_empty(),
        "the second replica never signed with the new key"
    );
    assert!(first.authenticate(&new_token).await.is_ok());
    first.stop().await;
    second.stop().await;
}

/// Rotates the signing key behind `auth`'s back and has it sign with the new one; answers a
/// token carrying the new `kid`.
async fn rotate_and_sign(db: &TestDb, auth: &TestAuth) -> String {
    let conn = latchkey_common::db::connect(&db.url).await.unwrap();
    let rotation = latchkey_auth::life_cycle::rotate_now(
        &conn,
        &auth.config.seal_key,
        auth.clock_now(),
        latchkey_auth::life_cycle::TokenLife {
            ttl: 900,
            leeway: 30,
        },
        latchkey_auth::keys::SigningAlg::EdDSA,
    )
    .await
    .unwrap();
    auth.core.reload_keys().await.unwrap();
    let (_, token) = auth.user_token("new-kid").await;
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid;
    assert_eq!(kid.as_deref(), Some(rotation.new_kid.as_str()));
    token
}

/// Many tokens with a `kid` a replica has not loaded yet arrive together (another replica rotated
/// under load): all verify after the one forced re-read, none is refused while it runs.
async fn tokens_with_a_new_kid_arriving_together_all_verify(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let first = TestAuth::spawn(&db).await;
    let second = TestAuth::spawn_with(first.config.clone()).await;
    let token = rotate_and_sign(&db, &second).await;
    let client = first.client().await;
    let mut checks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (mut client, token) = (client.clone(), token.clone());
        checks.spawn(async move {
            client
                .authenticate(pb::AuthenticateRequest { token })
                .await
                .map(|_| ())
                .map_err(|s| latchkey_proto::ApiError::from_status(&s).reason)
        });
    }
    let refused: Vec<_> = checks
        .join_all()
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert!(refused.is_empty(), "refused meanwhile: {refused:?}");

    // The same for a verifier away from auth (settings'), fetching the JWKS.
    let other = TestAuth::spawn_with(first.config.clone()).await;
    let verifier = latchkey_client::JwksVerifier::new(
        tonic::transport::Endpoint::from_shared(other.url())
            .unwrap()
            .connect_lazy(),
        latchkey_client::VerifyRules {
            issuer: "latchkey".into(),
            audience: "latchkey".into(),
            leeway: 30,
        },
        other.clock.clone(),
    );
    verifier.refresh().await.unwrap();
    let token = rotate_and_sign(&db, &other).await;
    let mut checks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (verifier, token) = (verifier.clone(), token.clone());
        checks.spawn(async move {
            verifier
                .verify(&token)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
    }
    let refused: Vec<_> = checks
        .join_all()
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert!(refused.is_empty(), "refused meanwhile: {refused:?}");
    assert_eq!(verifier.refresh_count(), 2, "one fetch for all of them");
    for auth in [first, second, other] {
        auth.stop().await;
    }
}

async fn get_and_delete_me(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (user_id, token) = auth.user_token("me").await;
    let mut client = auth.client().await;
    let me = client
        .get_user(with_bearer(pb::GetUserRequest {}, &token))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(
        (me.id.as_str(), me.email.as_str(), me.provider.as_str()),
        (user_id.as_str(), "me@example.com", "github")
    );
    assert!(me.created_at.ends_with('Z'));
    assert_eq!(
        reason(
            client
                .get_user(tonic::Request::new(pb::GetUserRequest {}))
                .await
        ),
        Reason::TokenMissing
    );
    client
        .delete_user(with_bearer(pb::DeleteUserRequest {}, &token))
        .await
        .unwrap();
    assert_eq!(
        reason(
            client
                .get_user(with_bearer(pb::GetUserRequest {}, &token))
                .await
        ),
        Reason::UserNotSynced
    );
    auth.stop().await;
}

async fn health_and_reflection_are_served(backend: Backend) {
    use tonic_health::pb::health_check_response::ServingStatus;
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let channel = tonic::transport::Endpoint::from_shared(auth.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status =
        crate::support::health_status(channel.clone(), "latchkey.auth.v1.AuthService").await;
    assert_eq!(status, ServingStatus::Serving as i32);
    // Stock clients (grpcurl) decode the error details only when reflection describes them.
    for detail in [
        "google.rpc.ErrorInfo",
        "google.rpc.BadRequest",
        "google.rpc.RetryInfo",
    ] {
        assert!(
            crate::support::reflection_describes(channel.clone(), detail).await,
            "{detail} is not described by reflection"
        );
    }
    let services = list_services(channel).await;
    for expected in ["latchkey.auth.v1.AuthService", "grpc.health.v1.Health"] {
        assert!(
            services.iter().any(|s| s == expected),
            "{expected} missing from {services:?}"
        );
    }
    auth.stop().await;
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

trait ClockNow {
    fn clock_now(&self) -> i64;
}

impl ClockNow for TestAuth {
    fn clock_now(&self) -> i64 {
        use latchkey_common::clock::Clock;
        self.clock.now()
    }
}

backend_tests!(
    sync_is_idempotent_and_normalises_email,
    sync_secret_is_required_and_compared,
    sync_rejects_bad_fields_listing_each,
    issued_tokens_verify_against_the_published_jwks,
    every_token_failure_has_its_own_reason,
    unsynced_and_disabled_users_are_named,
    revocation_rejects_old_tokens_and_new_ones_work,
    issue_token_by_id_or_email,
    service_clients_get_only_their_scopes,
    legacy_hs256_tokens_when_enabled,
    rotation_keeps_old_tokens_until_their_key_is_removed,
    a_second_auth_replica_picks_up_rotation_without_restart,
    tokens_with_a_new_kid_arriving_together_all_verify,
    get_and_delete_me,
    health_and_reflection_are_served,
);

/// A database outage is UPSTREAM_UNAVAILABLE (503), never a token error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_is_upstream_unavailable() {
    use sea_orm::ConnectionTrait;
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (_, token) = auth.user_token("outage").await;
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let admin = sea_orm::Database::connect(postgres_base_url())
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
    let error = auth.authenticate(&token).await.unwrap_err();
    assert_eq!(error.reason, Reason::UpstreamUnavailable, "{error:?}");
    let mut client = auth.client().await;
    let sync = client.sync_user(with_sync_secret(
        pb::SyncUserRequest {
            provider: "github".into(),
            subject: "x".into(),
            email: "x@example.com".into(),
            ..Default::default()
        },
        SYNC_SECRET,
    ));
    assert_eq!(reason(sync.await), Reason::UpstreamUnavailable);
    auth.stop().await;
}
