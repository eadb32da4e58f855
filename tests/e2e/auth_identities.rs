//! Users own identities, over real gRPC on SQLite and PostgreSQL: a known identity is its user; a
//! new one joins the one user holding its email only when the provider vouches for it and linking
//! is on; an email several users hold is USER_AMBIGUOUS (the count, never the ids) wherever an
//! email names a user (token by email, legacy tokens); emails are normalised (NFKC, lower case)
//! and invisible, control and mixed-script look-alike characters refused; concurrent first
//! sign-ins and just-in-time provisioning end with one user; the migration from the first schema
//! keeps every user of a populated database.

use crate::support::*;
use latchkey_auth::tokens::sign_hs256;
use latchkey_common::SecretString;
use latchkey_proto::auth::v1 as pb;
use latchkey_proto::{ApiError, Reason};
use pb::issue_token_request::User;

async fn sync(
    auth: &TestAuth,
    provider: &str,
    subject: &str,
    email: &str,
    email_verified: Option<bool>,
) -> Result<pb::SyncUserResponse, ApiError> {
    let request = pb::SyncUserRequest {
        provider: provider.into(),
        subject: subject.into(),
        email: email.into(),
        name: format!("{provider} {subject}"),
        avatar_url: String::new(),
        email_verified,
    };
    auth.client()
        .await
        .sync_user(with_sync_secret(request, SYNC_SECRET))
        .await
        .map(|r| r.into_inner())
        .map_err(|s| ApiError::from_status(&s))
}

/// Syncs and answers (user id, created).
async fn synced(
    auth: &TestAuth,
    provider: &str,
    subject: &str,
    email: &str,
    email_verified: Option<bool>,
) -> (String, bool) {
    let response = sync(auth, provider, subject, email, email_verified)
        .await
        .expect("sync succeeds");
    (response.user.unwrap().id, response.created)
}

async fn token_for(auth: &TestAuth, who: User) -> Result<String, ApiError> {
    let request = with_sync_secret(pb::IssueTokenRequest { user: Some(who) }, SYNC_SECRET);
    auth.client()
        .await
        .issue_token(request)
        .await
        .map(|r| r.into_inner().token.unwrap().access_token)
        .map_err(|s| ApiError::from_status(&s))
}

/// The user id a token belongs to.
async fn owner(auth: &TestAuth, token: &str) -> String {
    auth.authenticate(token).await.unwrap().user.unwrap().id
}

fn legacy_token(auth: &TestAuth, email: &str) -> String {
    let now = latchkey_common::clock::Clock::now(&*auth.clock);
    sign_hs256(
        &SecretString::from(LEGACY_SECRET.to_owned()),
        &serde_json::json!({"sub": email, "iss": "https://app.example.com", "aud": crate::support::LEGACY_AUDIENCE, "iat": now, "exp": now + 600}),
    )
}

/// USER_AMBIGUOUS with the count in metadata and detail, and none of the users' ids.
fn assert_ambiguous(error: &ApiError, count: usize, ids: &[&str]) {
    assert_eq!(error.reason, Reason::UserAmbiguous, "{error:?}");
    assert_eq!(
        error.metadata.get("count").map(String::as_str),
        Some(count.to_string().as_str())
    );
    assert!(
        error
            .detail
            .starts_with(&format!("{count} users share this email")),
        "{}",
        error.detail
    );
    let shown = format!("{error:?}");
    for id in ids {
        assert!(!shown.contains(id), "the refusal names no user id: {shown}");
    }
}

async fn verified_email_links_unverified_does_not(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (ada, created) = synced(&auth, "github", "1", "ada@example.com", None).await;
    assert!(created);

    // Google vouches for the address: the new identity joins Ada's user.
    let linked = sync(&auth, "google", "g-1", "Ada@Example.com", Some(true))
        .await
        .unwrap();
    let user = linked.user.unwrap();
    assert_eq!(
        user.id, ada,
        "a verified email links to the one user holding it"
    );
    assert!(!linked.created);
    assert_eq!(
        (user.provider.as_str(), user.subject.as_str()),
        ("google", "g-1")
    );
    // Each identity keeps finding the same user.
    assert_eq!(
        synced(&auth, "github", "1", "ada@example.com", None)
            .await
            .0,
        ada
    );
    assert_eq!(
        synced(&auth, "google", "g-1", "ada@example.com", Some(true))
            .await
            .0,
        ada
    );
    assert_eq!(
        owner(
            &auth,
            &token_for(&auth, User::Email("ADA@example.com".into()))
                .await
                .unwrap()
        )
        .await,
        ada
    );

    // GitLab does not vouch: a user of its own, and the email now names two users.
    let (other, created) = synced(&auth, "gitlab", "7", "ada@example.com", Some(false)).await;
    assert!(created && other != ada, "an unverified email never links");
    let error = token_for(&auth, User::Email("ada@example.com".into()))
        .await
        .unwrap_err();
    assert_ambiguous(&error, 2, &[&ada, &other]);
    // By id each is still reachable.
    assert_eq!(
        owner(
            &auth,
            &token_for(&auth, User::UserId(other.clone())).await.unwrap()
        )
        .await,
        other
    );

    // With two users on the address, even a verified newcomer is not linked to either.
    let (third, created) = synced(&auth, "apple", "a-1", "ada@example.com", Some(true)).await;
    assert!(created && third != ada && third != other);
    let error = token_for(&auth, User::Email("ada@example.com".into()))
        .await
        .unwrap_err();
    assert_ambiguous(&error, 3, &[&ada, &other, &third]);
    auth.stop().await;
}

async fn linking_off_never_links(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut config = auth_config(&db);
    config.link_verified_emails = false;
    let auth = TestAuth::spawn_with(config).await;
    let (ada, _) = synced(&auth, "github", "1", "ada@example.com", Some(true)).await;
    let (google, created) = synced(&auth, "google", "g-1", "ada@example.com", Some(true)).await;
    assert!(
        created && google != ada,
        "linking off: a new identity is a new user"
    );
    auth.stop().await;
}

async fn email_only_sync_is_identity_email(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let first = sync(&auth, "", "", " Bob@Example.com ", None)
        .await
        .unwrap();
    let user = first.user.unwrap();
    assert!(first.created);
    assert_eq!(
        (
            user.provider.as_str(),
            user.subject.as_str(),
            user.email.as_str()
        ),
        ("email", "bob@example.com", "bob@example.com")
    );
    let again = sync(&auth, "", "", "bob@example.com", None).await.unwrap();
    assert_eq!(again.user.unwrap().id, user.id);
    assert!(!again.created);
    // Half an identity is refused, naming the missing half.
    let error = sync(&auth, "github", "", "bob@example.com", None)
        .await
        .unwrap_err();
    assert_eq!(error.reason, Reason::InvalidArgument);
    assert_eq!(error.violations[0].field, "subject");
    let error = sync(&auth, "", "1", "bob@example.com", None)
        .await
        .unwrap_err();
    assert_eq!(error.violations[0].field, "provider");
    auth.stop().await;
}

/// F2: the Kelvin sign (U+212A) lower-cases to `k`; before normalisation `\u{212A}ate@…` was a
/// second spelling of Kate's address that token-by-email resolved to whoever synced last.
async fn kelvin_sign_is_the_same_address(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (kate, _) = synced(&auth, "github", "kate", "kate@example.com", None).await;
    let token = token_for(&auth, User::Email("\u{212A}ate@example.com".into()))
        .await
        .unwrap();
    assert_eq!(owner(&auth, &token).await, kate, "the Kelvin sign is a k");
    // An attacker's identity with the look-alike address is the same address: it does not take
    // Kate's place, it makes the email ambiguous.
    let mallory = sync(&auth, "", "", "\u{212A}ATE@example.com", None)
        .await
        .unwrap()
        .user
        .unwrap();
    assert_eq!(mallory.email, "kate@example.com");
    assert_ne!(mallory.id, kate);
    let error = token_for(&auth, User::Email("kate@example.com".into()))
        .await
        .unwrap_err();
    assert_ambiguous(&error, 2, &[&kate, &mallory.id]);
    auth.stop().await;
}

/// F14: NUL, zero-width, bidi and mixed-script emails are refused wherever an email enters,
/// naming the field and the code point, never echoing the character.
async fn hostile_emails_are_refused(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut config = auth_config(&db);
    config.rules.legacy = Some(legacy_rules());
    config.jit_provisioning = true;
    let auth = TestAuth::spawn_with(config).await;
    let cases = [
        ("ada\u{0}@example.com", "U+0000", '\u{0}'),
        ("a\u{200B}da@example.com", "U+200B", '\u{200B}'),
        ("ada@\u{202E}elpmaxe.com", "U+202E", '\u{202E}'),
        ("ada@ex\u{0430}mple.com", "Latin and Cyrillic", '\u{0430}'),
    ];
    for (email, named, hidden) in cases {
        let sync_error = sync(&auth, "github", "h", email, Some(true))
            .await
            .unwrap_err();
        let token_error = token_for(&auth, User::Email(email.into()))
            .await
            .unwrap_err();
        let legacy_error = auth
            .authenticate(&legacy_token(&auth, email))
            .await
            .unwrap_err();
        for (error, field) in [
            (&sync_error, "email"),
            (&token_error, "email"),
            (&legacy_error, "token email (claim `email` or `sub`)"),
        ] {
            assert_eq!(
                error.reason,
                Reason::InvalidArgument,
                "{email:?}: {error:?}"
            );
            let violation = &error.violations[0];
            assert_eq!(violation.field, field, "{email:?}");
            assert!(
                violation.description.contains(named),
                "{email:?}: {violation:?}"
            );
            assert!(
                !format!("{error:?}").contains(hidden),
                "{email:?}: the character is named, not echoed: {error:?}"
            );
        }
    }
    // Nothing was created along the way, just-in-time provisioning included.
    assert_eq!(
        token_for(&auth, User::Email("ada@example.com".into()))
            .await
            .unwrap_err()
            .reason,
        Reason::UserNotSynced
    );
    auth.stop().await;
}

async fn legacy_tokens_never_guess_between_users(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut config = auth_config(&db);
    config.rules.legacy = Some(legacy_rules());
    config.jit_provisioning = true;
    let auth = TestAuth::spawn_with(config).await;
    let (first, _) = synced(&auth, "github", "1", "shared@example.com", None).await;
    let principal = auth
        .authenticate(&legacy_token(&auth, "Shared@example.com"))
        .await
        .unwrap();
    assert_eq!(principal.user.unwrap().id, first);
    let (second, _) = synced(&auth, "gitlab", "2", "shared@example.com", None).await;
    // Before: the most recently synced user (the second) received the first one's session.
    let error = auth
        .authenticate(&legacy_token(&auth, "shared@example.com"))
        .await
        .unwrap_err();
    assert_ambiguous(&error, 2, &[&first, &second]);
    auth.stop().await;
}

/// Thirty simultaneous first sign-ins of one identity: one user, every call answered.
async fn concurrent_first_syncs_give_one_user(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = std::sync::Arc::new(TestAuth::spawn(&db).await);
    let calls = (0..30).map(|_| {
        let auth = auth.clone();
        tokio::spawn(
            async move { sync(&auth, "github", "race", "race@example.com", Some(true)).await },
        )
    });
    let answers: Vec<_> = futures_all(calls).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|a| {
            a.as_ref()
                .expect("every sync succeeds")
                .user
                .clone()
                .unwrap()
                .id
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let created = answers
        .iter()
        .filter(|a| a.as_ref().unwrap().created)
        .count();
    assert_eq!(created, 1);
    std::sync::Arc::try_unwrap(auth).ok().unwrap().stop().await;
}

/// F13: thirty simultaneous first requests with one legacy token under JIT provisioning: every
/// one is answered with the same new user (before: 2 of 30 got 500).
async fn concurrent_jit_gives_one_user(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let mut config = auth_config(&db);
    config.rules.legacy = Some(legacy_rules());
    config.jit_provisioning = true;
    let auth = std::sync::Arc::new(TestAuth::spawn_with(config).await);
    let token = legacy_token(&auth, "Newcomer@Example.com");
    let calls = (0..30).map(|_| {
        let (auth, token) = (auth.clone(), token.clone());
        tokio::spawn(async move { auth.authenticate(&token).await })
    });
    let answers: Vec<_> = futures_all(calls).await;
    let users: Vec<pb::User> = answers
        .into_iter()
        .map(|a| a.expect("every first request succeeds").user.unwrap())
        .collect();
    let ids: std::collections::BTreeSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(
        (
            users[0].provider.as_str(),
            users[0].subject.as_str(),
            users[0].email.as_str()
        ),
        ("legacy", "newcomer@example.com", "newcomer@example.com")
    );
    std::sync::Arc::try_unwrap(auth).ok().unwrap().stop().await;
}

/// `GetUser` (`GET /api/auth/me`) shows the identity signed in with last.
async fn me_shows_the_identity_used_last(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (ada, _) = synced(&auth, "github", "1", "ada@example.com", Some(true)).await;
    let me = |token: String| {
        let auth = &auth;
        async move {
            auth.client()
                .await
                .get_user(with_bearer(pb::GetUserRequest {}, &token))
                .await
                .unwrap()
                .into_inner()
                .user
                .unwrap()
        }
    };
    let token = token_for(&auth, User::UserId(ada.clone())).await.unwrap();
    assert_eq!(me(token.clone()).await.provider, "github");
    auth.clock.advance(5);
    synced(&auth, "google", "g-1", "ada@example.com", Some(true)).await;
    assert_eq!(me(token.clone()).await.provider, "google");
    auth.clock.advance(5);
    synced(&auth, "github", "1", "ada@example.com", Some(true)).await;
    let user = me(token).await;
    assert_eq!(
        (user.id.as_str(), user.provider.as_str()),
        (ada.as_str(), "github")
    );
    auth.stop().await;
}

/// Deleting a user deletes their identities: the same sign-in afterwards is a new user.
async fn deleting_a_user_frees_their_identities(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (ada, _) = synced(&auth, "github", "1", "ada@example.com", Some(true)).await;
    synced(&auth, "google", "g-1", "ada@example.com", Some(true)).await;
    let token = token_for(&auth, User::UserId(ada.clone())).await.unwrap();
    auth.client()
        .await
        .delete_user(with_bearer(pb::DeleteUserRequest {}, &token))
        .await
        .unwrap();
    let (again, created) = synced(&auth, "google", "g-1", "ada@example.com", Some(true)).await;
    assert!(created && again != ada);
    auth.stop().await;
}

async fn futures_all<T: std::fmt::Debug>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        out.push(task.await.expect("task"));
    }
    out
}

backend_tests!(
    verified_email_links_unverified_does_not,
    linking_off_never_links,
    email_only_sync_is_identity_email,
    kelvin_sign_is_the_same_address,
    hostile_emails_are_refused,
    legacy_tokens_never_guess_between_users,
    concurrent_first_syncs_give_one_user,
    concurrent_jit_gives_one_user,
    me_shows_the_identity_used_last,
    deleting_a_user_frees_their_identities,
    migration_keeps_every_user_of_a_populated_database,
);

mod migration {
    //! The first schema with data in it, then the identities migration, then the service.

    use super::*;
    use latchkey_auth::store::migration::Migrator;
    use sea_orm::{ConnectionTrait, Statement};
    use sea_orm_migration::{MigratorTrait, SchemaManager};

    /// Rows as the first schema held them: (id, provider, subject, email).
    pub const OLD_USERS: [(&str, &str, &str, &str); 4] = [
        (
            "11111111-1111-4111-8111-111111111111",
            "github",
            "101",
            "ada@example.com",
        ),
        (
            "22222222-2222-4222-8222-222222222222",
            "google",
            "g-202",
            "grace@example.com",
        ),
        // Two rows with one email: the first schema allowed it (and picked the latest).
        (
            "33333333-3333-4333-8333-333333333333",
            "github",
            "303",
            "twin@example.com",
        ),
        (
            "44444444-4444-4444-8444-444444444444",
            "gitlab",
            "404",
            "twin@example.com",
        ),
    ];

    pub async fn populate_first_schema(db: &TestDb) {
        let conn = latchkey_common::db::connect(&db.url).await.unwrap();
        Migrator::up(&conn, Some(1)).await.expect("first migration");
        assert!(
            !SchemaManager::new(&conn)
                .has_table("identities")
                .await
                .unwrap()
        );
        for (index, (id, provider, subject, email)) in OLD_USERS.iter().enumerate() {
            let at = 1_700_000_000 + index as i64;
            conn.execute_raw(Statement::from_sql_and_values(
                conn.get_database_backend(),
                match db.backend {
                    Backend::Sqlite => "INSERT INTO users (id, provider, subject, email, name, avatar_url, disabled, tokens_valid_after, created_at, updated_at) VALUES (?, ?, ?, ?, ?, '', ?, 0, ?, ?)",
                    Backend::Postgres => "INSERT INTO users (id, provider, subject, email, name, avatar_url, disabled, tokens_valid_after, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, '', $6, 0, $7, $8)",
                },
                [
                    (*id).into(),
                    (*provider).into(),
                    (*subject).into(),
                    (*email).into(),
                    format!("user {index}").into(),
                    (index == 1).into(),
                    at.into(),
                    (at + 10).into(),
                ],
            ))
            .await
            .expect("insert an old-schema user");
        }
        conn.close().await.unwrap();
    }

    /// The identities as stored: (provider, subject, email, verified, user id).
    pub async fn identities(db: &TestDb) -> Vec<(String, String, String, bool, String)> {
        let conn = latchkey_common::db::connect(&db.url).await.unwrap();
        let rows = conn
            .query_all_raw(Statement::from_string(
                conn.get_database_backend(),
                "SELECT provider, subject, email, email_verified, user_id FROM identities ORDER BY user_id",
            ))
            .await
            .unwrap();
        let out = rows
            .iter()
            .map(|row| {
                (
                    row.try_get("", "provider").unwrap(),
                    row.try_get("", "subject").unwrap(),
                    row.try_get("", "email").unwrap(),
                    row.try_get("", "email_verified").unwrap(),
                    row.try_get("", "user_id").unwrap(),
                )
            })
            .collect();
        conn.close().await.unwrap();
        out
    }

    /// Down (lossy: a user keeps their first identity) and up again, as an operator rolling back
    /// and forward would.
    pub async fn down_and_up(db: &TestDb) {
        let conn = latchkey_common::db::connect(&db.url).await.unwrap();
        // This migration and every one after it (the seal-key fingerprint column, …).
        let migrations = Migrator::migrations();
        let identities = migrations
            .iter()
            .position(|m| m.name().ends_with("_users_own_identities"))
            .expect("the identities migration is listed");
        let steps = (migrations.len() - identities) as u32;
        Migrator::down(&conn, Some(steps)).await.expect("down");
        let manager = SchemaManager::new(&conn);
        assert!(!manager.has_table("identities").await.unwrap());
        assert!(manager.has_column("users", "provider").await.unwrap());
        Migrator::up(&conn, None).await.expect("up again");
        conn.close().await.unwrap();
    }
}

async fn migration_keeps_every_user_of_a_populated_database(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    migration::populate_first_schema(&db).await;
    // Auth applies the pending migration on start, as a deployment would.
    let auth = TestAuth::spawn(&db).await;
    let expected: Vec<_> = migration::OLD_USERS
        .iter()
        .map(|(id, provider, subject, email)| {
            (
                provider.to_string(),
                subject.to_string(),
                email.to_string(),
                false,
                id.to_string(),
            )
        })
        .collect();
    assert_eq!(migration::identities(&db).await, expected);

    let [ada, _grace, twin_a, twin_b] = migration::OLD_USERS.map(|(id, ..)| id);
    // The same sign-in finds the same user.
    let again = sync(&auth, "github", "101", "ada@example.com", None)
        .await
        .unwrap();
    assert_eq!(again.user.unwrap().id, ada);
    assert!(!again.created);
    // Email lookups: one holder resolves, the disabled flag survived, two holders refuse.
    let token = token_for(&auth, User::Email("ada@example.com".into()))
        .await
        .unwrap();
    assert_eq!(owner(&auth, &token).await, ada);
    assert_eq!(
        token_for(&auth, User::Email("grace@example.com".into()))
            .await
            .unwrap_err()
            .reason,
        Reason::UserDisabled
    );
    let error = token_for(&auth, User::Email("twin@example.com".into()))
        .await
        .unwrap_err();
    assert_ambiguous(&error, 2, &[twin_a, twin_b]);
    // A migrated identity's email is not verified, but a verified newcomer may join its user.
    let linked = sync(&auth, "google", "g-101", "ada@example.com", Some(true))
        .await
        .unwrap();
    assert_eq!(linked.user.unwrap().id, ada);
    auth.stop().await;

    migration::down_and_up(&db).await;
    let after = migration::identities(&db).await;
    assert_eq!(
        after.len(),
        4,
        "down keeps each user's first identity: {after:?}"
    );
    assert!(after.iter().any(|i| i.0 == "github" && i.4 == ada));
}
