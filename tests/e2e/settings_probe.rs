//! What an outside probe found against settings, replayed over real gRPC (and REST through a real
//! gateway) with auth running, on SQLite and PostgreSQL: hostile `.env` pastes answered
//! correctly and within their deadline (F1), a preview that never compares a guessed value with
//! the stored one (F9), error lists that fit in a status (F10), and a purge no write can
//! outlive (F5).

use crate::support::settings::*;
use crate::support::*;
use latchkey_proto::Reason;
use latchkey_proto::settings::v1 as pb;
use latchkey_settings::service::{Caller, Change, PURGE_SCOPE};
use zeroize::Zeroizing;

/// Auth (purging through settings) and settings on one fresh database.
struct Stack {
    db: TestDb,
    auth: TestAuth,
    settings: TestSettings,
}

async fn stack(backend: Backend) -> Option<Stack> {
    let db = TestDb::new(backend).await?;
    let listener = TestSettings::reserve().await;
    let settings_url = format!("http://{}", listener.local_addr().unwrap());
    let auth = spawn_auth(&db, Some(settings_url)).await;
    let config = settings_config(&db, &auth.url(), &master_keys_text(&["k1"]));
    let settings = TestSettings::spawn_on(config, listener, &auth).await;
    Some(Stack { db, auth, settings })
}

impl Stack {
    async fn stop(self) {
        self.settings.stop().await;
        self.auth.stop().await;
    }

    /// Rows stored for `user_id`, counted in the database itself.
    async fn stored_rows(&self, user_id: &str) -> u64 {
        use latchkey_settings::store::values;
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        let db = latchkey_common::db::connect(&self.db.url).await.unwrap();
        values::Entity::find()
            .filter(values::Column::UserId.eq(user_id))
            .count(&db)
            .await
            .unwrap()
    }
}

/// F1: `A="` and then line breaks up to the 256 KiB body limit once rescanned the body after
/// every line (about 45 s of CPU on a worker thread); 30,000 lines setting one name took 5 s.
async fn pathological_pastes_answer_correctly(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (user_id, token) = s.auth.user_token("f1").await;
    let unterminated = format!("A=\"{}", "\n".repeat(256 * 1024 - 3));
    assert_eq!(unterminated.len(), 256 * 1024);
    let error = s
        .settings
        .import(&token, &unterminated, pb::ImportMode::Merge, false)
        .await
        .unwrap_err();
    assert_eq!(error.reason, Reason::InvalidArgument, "{error:?}");
    assert_eq!(error.violations.len(), 1, "{:?}", error.violations);
    assert_eq!(error.violations[0].field, "line 1");
    assert!(
        error.violations[0]
            .description
            .contains("not closed within 16384 bytes"),
        "{:?}",
        error.violations
    );

    let duplicates: String = (0..30_000).map(|i| format!("A={i}\n")).collect();
    assert!(duplicates.len() <= 256 * 1024);
    let imported = s
        .settings
        .import(&token, &duplicates, pb::ImportMode::Merge, false)
        .await
        .unwrap();
    assert_eq!(imported.added, ["A"]);
    assert_eq!(
        imported.warnings.len(),
        latchkey_settings::import::MAX_LISTED + 1,
        "the first warnings, then how many more"
    );
    assert!(
        imported
            .warnings
            .last()
            .unwrap()
            .message
            .starts_with("and 29949 more warnings")
    );
    let deployer = service_token(&s.auth, "deployer").await;
    assert_eq!(
        s.settings
            .reveal(&deployer, &user_id, "A", "f1")
            .await
            .unwrap(),
        "29999"
    );
    s.stop().await;
}

/// F1: the import's deadline is the caller's gRPC deadline; past it the answer is
/// DEADLINE_EXCEEDED and nothing is written.
async fn an_import_past_its_deadline_writes_nothing(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (user_id, token) = s.auth.user_token("deadline").await;
    let mut request = with_bearer(
        pb::ImportDotenvRequest {
            dotenv: "A=1\nB=2\n".into(),
            mode: pb::ImportMode::Merge as i32,
            dry_run: false,
        },
        &token,
    );
    request.set_timeout(std::time::Duration::from_nanos(1));
    let status = s
        .settings
        .client()
        .await
        .import_dotenv(request)
        .await
        .unwrap_err();
    let error = latchkey_proto::ApiError::from_status(&status);
    assert_eq!(error.reason, Reason::DeadlineExceeded, "{status:?}");
    assert_eq!(s.stored_rows(&user_id).await, 0);
    // In the domain, deterministically: a budget already spent parses and writes nothing.
    let spent = latchkey_settings::budget::Budget::within(
        std::time::Instant::now(),
        std::time::Duration::ZERO,
    );
    let error = s
        .settings
        .core
        .import_within(
            &Caller::User(user_id.clone()),
            Zeroizing::new("A=1\n".into()),
            latchkey_settings::service::ImportMode::Merge,
            false,
            spent,
        )
        .await
        .unwrap_err();
    assert_eq!(
        latchkey_proto::ApiError::from(error).reason,
        Reason::DeadlineExceeded
    );
    assert_eq!(s.stored_rows(&user_id).await, 0);
    s.stop().await;
}

/// F9: a preview answered `unchanged` for a right guess and `changed` for a wrong one: an
/// unaudited, unlimited equality oracle. Now both answers are the same.
async fn a_dry_run_never_compares_a_guess_with_the_stored_value(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (_, token) = s.auth.user_token("f9").await;
    s.settings.put(&token, "PIN", "4711").await;
    let mut answers = Vec::new();
    for guess in ["4711", "1234"] {
        let preview = s
            .settings
            .import(
                &token,
                &format!("PIN={guess}\n"),
                pb::ImportMode::Merge,
                true,
            )
            .await
            .unwrap();
        assert!(!preview.applied);
        assert_eq!(
            preview.changed,
            ["PIN"],
            "would be replaced, whatever the value"
        );
        assert!(preview.unchanged.is_empty() && preview.added.is_empty());
        answers.push((preview.changed, preview.unchanged, preview.removed));
    }
    assert_eq!(answers[0], answers[1]);
    // A real import still compares (and overwrites what differs).
    let applied = s
        .settings
        .import(&token, "PIN=4711\n", pb::ImportMode::Merge, false)
        .await
        .unwrap();
    assert_eq!(applied.unchanged, ["PIN"]);
    s.stop().await;
}

/// F10: 150 bad lines (an unquoted certificate chain) or an 8 KB name once made an error too big
/// for gRPC headers, and the caller got UNAVAILABLE instead of the list.
async fn error_lists_fit_in_a_status(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (_, token) = s.auth.user_token("f10").await;
    let chain = format!(
        "CERT=-----BEGIN CERTIFICATE-----\n{}",
        "MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n".repeat(150)
    );
    let error = s
        .settings
        .import(&token, &chain, pb::ImportMode::Merge, false)
        .await
        .unwrap_err();
    assert_eq!(error.reason, Reason::InvalidArgument, "{error:?}");
    assert!(error.detail.starts_with("150 line(s)"), "{}", error.detail);
    let last = error.violations.last().unwrap();
    assert_eq!(last.field, "dotenv");
    assert!(last.description.starts_with("and "), "{last:?}");
    assert_eq!(error.violations[0].field, "line 2");

    let long = "N".repeat(8 * 1024);
    let error = s.settings.delete(&token, &long).await.unwrap_err();
    assert_eq!(error.reason, Reason::InvalidArgument, "{error:?}");
    let error = s
        .settings
        .patch(&token, &[(long.as_str(), Some("v"))])
        .await
        .unwrap_err();
    assert_eq!(error.reason, Reason::InvalidArgument, "{error:?}");
    assert!(error.violations[0].field.len() < 100);
    let many: Vec<String> = (0..20).map(|i| format!("{i}{long}")).collect();
    let entries: Vec<(&str, Option<&str>)> = many.iter().map(|n| (n.as_str(), Some("v"))).collect();
    let error = s.settings.patch(&token, &entries).await.unwrap_err();
    assert_eq!(error.reason, Reason::InvalidArgument, "{error:?}");
    s.stop().await;
}

/// F5: a token of a deleted user, still cached as valid (here: settings' own cache, as after
/// `DELETE /api/auth/me` through another token), wrote settings the purge never saw.
async fn nothing_is_written_for_a_purged_user(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (user_id, deleting) = s.auth.user_token("f5").await;
    let (same_user, other) = s.auth.user_token("f5").await;
    assert_eq!(user_id, same_user);
    s.settings.put(&other, "BEFORE", "v").await;
    // `other` is now cached as allowed in settings for ALLOWED_CACHE_SECS; the clock stays put.
    let deleted = s
        .auth
        .client()
        .await
        .delete_user(with_bearer(
            latchkey_proto::auth::v1::DeleteUserRequest {},
            &deleting,
        ))
        .await
        .expect("auth deletes the user")
        .into_inner()
        .settings_deleted;
    assert_eq!(deleted, 1);
    let refused = s
        .settings
        .patch(&other, &[("AFTER", Some("written-after-the-purge"))])
        .await
        .unwrap_err();
    assert_eq!(refused.reason, Reason::UserNotSynced, "{refused:?}");
    let refused = s
        .settings
        .import(&other, "AFTER=1\n", pb::ImportMode::Merge, false)
        .await
        .unwrap_err();
    assert_eq!(refused.reason, Reason::UserNotSynced, "{refused:?}");
    let refused = s
        .settings
        .replace(&other, &[("AFTER", Some("x"))])
        .await
        .unwrap_err();
    assert_eq!(refused.reason, Reason::UserNotSynced, "{refused:?}");
    assert_eq!(s.stored_rows(&user_id).await, 0);
    // Purging again is harmless.
    let purger = Caller::Service {
        client_id: "latchkey-auth".into(),
        scopes: vec![PURGE_SCOPE.into()],
    };
    assert_eq!(s.settings.core.purge(&purger, &user_id).await.unwrap(), 0);
    s.stop().await;
}

/// F10 over REST, as the probe sent it: 150 bad lines answer 400 with the first lines and how
/// many more (not 503 UPSTREAM_UNAVAILABLE), and so does an 8 KB name in DELETE; F1's
/// unterminated quote answers 400 naming line 1.
async fn rest_answers_400_with_a_capped_list(backend: Backend) {
    use crate::support::gateway::{TestGateway, expect_problem};
    use reqwest::Method;
    let Some(s) = stack(backend).await else {
        return;
    };
    let gw = TestGateway::spawn(&s.auth.url(), &s.settings.url()).await;
    let (_, token) = gw.sync_user("f10-rest").await;
    let chain = format!(
        "CERT=-----BEGIN CERTIFICATE-----\n{}-----END CERTIFICATE-----\n",
        "MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n".repeat(149)
    );
    let response = gw
        .authed(Method::POST, "/api/settings/import", &token)
        .header("content-type", "text/plain")
        .body(chain)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, 400, "INVALID_ARGUMENT").await;
    let errors = problem["errors"].as_array().unwrap();
    assert!(
        errors.len() <= latchkey_proto::error::MAX_VIOLATIONS + 1,
        "{problem}"
    );
    assert_eq!(errors[0]["line"], 2, "{problem}");
    let last = errors.last().unwrap();
    assert_eq!(last["field"], "dotenv", "{problem}");
    let more = 150 - (errors.len() - 1);
    assert_eq!(
        last["description"],
        format!(
            "and {more} more lines not listed; fix the ones listed and try again to see the rest"
        ),
        "{problem}"
    );
    assert!(!problem.to_string().contains("MIIDdzCC"), "no line echoed");

    // F1 over REST: the probe's body, exactly at the 256 KiB limit.
    let response = gw
        .authed(Method::POST, "/api/settings/import", &token)
        .header("content-type", "text/plain")
        .body(format!("A=\"{}", "\n".repeat(256 * 1024 - 3)))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, 400, "INVALID_ARGUMENT").await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 1, "{problem}");
    assert_eq!(problem["errors"][0]["line"], 1, "{problem}");

    let long = "N".repeat(8 * 1024);
    let response = gw
        .call(Method::DELETE, &format!("/api/settings/{long}"), &token)
        .await;
    let problem = expect_problem(response, 400, "INVALID_ARGUMENT").await;
    assert!(problem.to_string().len() < 2048, "{problem}");
    gw.stop().await;
    s.stop().await;
}

backend_tests!(
    rest_answers_400_with_a_capped_list,
    pathological_pastes_answer_correctly,
    an_import_past_its_deadline_writes_nothing,
    a_dry_run_never_compares_a_guess_with_the_stored_value,
    error_lists_fit_in_a_status,
    nothing_is_written_for_a_purged_user,
);

/// F5 on PostgreSQL (READ COMMITTED), interleaved on purpose: the purge takes the user's lock
/// first, a write that already passed its token check queues behind it; when both have run the
/// write is refused and nothing is stored. PostgreSQL grants queued advisory locks in order, and
/// `pg_locks` shows who waits, so the order is forced, not hoped for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_queued_behind_a_purge_is_refused_on_postgres() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
    let Some(s) = stack(Backend::Postgres).await else {
        return;
    };
    let (user_id, token) = s.auth.user_token("f5-race").await;
    s.settings.put(&token, "BEFORE", "v").await;
    let db = latchkey_common::db::connect(&s.db.url).await.unwrap();
    // Hold the user's write lock, as a write in flight would.
    let holder = db.begin().await.unwrap();
    holder
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            [user_id.clone().into()],
        ))
        .await
        .unwrap();
    let core = s.settings.core.clone();
    let purger = Caller::Service {
        client_id: "latchkey-auth".into(),
        scopes: vec![PURGE_SCOPE.into()],
    };
    let purge = {
        let (core, user_id) = (core.clone(), user_id.clone());
        tokio::spawn(async move { core.purge(&purger, &user_id).await })
    };
    waiting_for_advisory_locks(&db, 1).await;
    let write = {
        let (core, user_id) = (core.clone(), user_id.clone());
        tokio::spawn(async move {
            let change = Change {
                name: "AFTER".into(),
                value: Some(Zeroizing::new("written-after-the-purge".into())),
            };
            core.patch(&Caller::User(user_id), vec![change]).await
        })
    };
    waiting_for_advisory_locks(&db, 2).await;
    holder.commit().await.unwrap();
    assert_eq!(purge.await.unwrap().unwrap(), 1);
    let refused = write.await.unwrap().unwrap_err();
    assert_eq!(
        latchkey_proto::ApiError::from(refused).reason,
        Reason::UserNotSynced
    );
    assert_eq!(s.stored_rows(&user_id).await, 0);
    s.stop().await;
}

/// Waits until `count` advisory-lock requests wait in this test's database.
async fn waiting_for_advisory_locks(db: &sea_orm::DatabaseConnection, count: i64) {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    for _ in 0..6_000 {
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT count(*) AS waiting FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            ))
            .await
            .unwrap()
            .unwrap();
        let waiting: i64 = row.try_get("", "waiting").unwrap();
        if waiting >= count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{count} lock requests never queued");
}
