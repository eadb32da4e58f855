//! Black-box tests of the settings service over real gRPC, with auth running, on SQLite and
//! PostgreSQL: masking, atomic batches, limits, isolation between users, AAD binding, scoped and
//! audited reveal, purge through auth's delete-user, .env import, master key rotation under load.

use crate::support::settings::*;
use crate::support::*;
use latchkey_proto::Reason;
use latchkey_proto::settings::v1 as pb;
use sea_orm::ConnectionTrait;
use std::time::Duration;

/// Auth and settings on one fresh database.
struct Stack {
    db: TestDb,
    auth: TestAuth,
    settings: TestSettings,
}

async fn stack(backend: Backend) -> Option<Stack> {
    let db = TestDb::new(backend).await?;
    let auth = spawn_auth(&db, None).await;
    let settings = TestSettings::spawn(&db, &auth).await;
    Some(Stack { db, auth, settings })
}

impl Stack {
    async fn stop(self) {
        self.settings.stop().await;
        self.auth.stop().await;
    }

    async fn sql(&self, statement: &str) -> u64 {
        let db = sea_orm::Database::connect(&self.db.url).await.unwrap();
        db.execute_unprepared(statement)
            .await
            .unwrap()
            .rows_affected()
    }
}

async fn lists_masked_values_never_plaintext(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (_, token) = s.auth.user_token("mask").await;
    let values = [
        ("EMPTY", ""),
        ("SHORT", "abc"),
        ("ELEVEN", "12345678901"),
        ("TWELVE", "123456789012"),
        ("FLY_API_TOKEN", "fo1_live_9f8e7d6c5b4a39281706"),
    ];
    let entries: Vec<_> = values.iter().map(|(n, v)| (*n, Some(*v))).collect();
    let answered = s.settings.patch(&token, &entries).await.unwrap();
    let listed = s.settings.list(&token).await.unwrap();
    assert_eq!(answered, listed);
    let shown: Vec<(&str, &str, i64)> = listed
        .iter()
        .map(|m| (m.name.as_str(), m.masked.as_str(), m.length))
        .collect();
    assert_eq!(
        shown,
        [
            ("ELEVEN", "****", 11),
            ("EMPTY", "", 0),
            ("FLY_API_TOKEN", "****1706", 29),
            ("SHORT", "****", 3),
            ("TWELVE", "****9012", 12),
        ]
    );
    assert!(listed.iter().all(|m| m.updated_at.ends_with('Z')));
    let everything = format!("{listed:?}");
    assert!(!everything.contains("fo1_live") && !everything.contains("12345678"));
    s.stop().await;
}

async fn a_batch_with_one_bad_entry_writes_nothing(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (_, token) = s.auth.user_token("atomic").await;
    s.settings.put(&token, "KEEP", "original-value").await;
    let big = "x".repeat(16 * 1024 + 1);
    let long_name = "N".repeat(129);
    let error = s
        .settings
        .patch(
            &token,
            &[
                ("GOOD", Some("fine")),
                ("KEEP", Some("changed")),
                ("1BAD", Some("v")),
                ("BIG", Some(&big)),
                (&long_name, Some("v")),
                ("KEEP", None),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(error.reason, Reason::InvalidArgument);
    let fields: Vec<&str> = error.violations.iter().map(|v| v.field.as_str()).collect();
    assert!(fields.contains(&"settings.1BAD"), "{fields:?}");
    assert!(fields.contains(&"settings.BIG"), "{fields:?}");
    // Echoed names are cut to a short prefix.
    assert!(fields.contains(&format!("settings.{}…", &long_name[..64]).as_str()));
    assert!(
        fields.contains(&"settings.KEEP"),
        "duplicate reported: {fields:?}"
    );
    let names: Vec<String> = s
        .settings
        .list(&token)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["KEEP"], "nothing of the bad batch was written");
    let reveal = service_token(&s.auth, "deployer").await;
    let (user_id, _) = s.auth.user_token("atomic").await;
    assert_eq!(
        s.settings
            .reveal(&reveal, &user_id, "KEEP", "r1")
            .await
            .unwrap(),
        "original-value"
    );
    s.stop().await;
}

async fn limits_are_checked_on_the_resulting_set(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (_, token) = s.auth.user_token("limits").await;
    let names: Vec<String> = (0..200).map(|i| format!("K_{i:03}")).collect();
    let first: Vec<(&str, Option<&str>)> = names.iter().map(|n| (n.as_str(), Some("v"))).collect();
    assert_eq!(s.settings.patch(&token, &first).await.unwrap().len(), 200);
    let error = s
        .settings
        .patch(&token, &[("ONE_TOO_MANY", Some("v"))])
        .await
        .unwrap_err();
    assert_eq!(error.reason, Reason::InvalidArgument);
    assert_eq!(error.violations[0].field, "settings");
    // Deleting one while adding one keeps 200: allowed.
    s.settings
        .patch(&token, &[("K_000", None), ("ONE_MORE", Some("v"))])
        .await
        .unwrap();
    // The value limit is 16 KiB exactly.
    s.settings
        .patch(&token, &[("K_001", Some(&"x".repeat(16 * 1024)))])
        .await
        .unwrap();
    // Import text above 256 KiB.
    let huge = format!("A={}\n", "x".repeat(256 * 1024));
    let error = s
        .settings
        .import(&token, &huge, pb::ImportMode::Merge, false)
        .await
        .unwrap_err();
    assert_eq!(error.reason, Reason::InvalidArgument);
    assert_eq!(error.violations[0].field, "dotenv");
    s.stop().await;
}

async fn users_never_see_or_touch_each_other(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (alice_id, alice) = s.auth.user_token("alice").await;
    let (bob_id, bob) = s.auth.user_token("bob").await;
    s.settings
        .put(&alice, "API_KEY", "alice-secret-value-1")
        .await;
    s.settings.put(&bob, "API_KEY", "bob-secret-value-22").await;
    s.settings.put(&bob, "BOB_ONLY", "bob-only-value-333").await;
    let alice_list = s.settings.list(&alice).await.unwrap();
    assert_eq!(alice_list.len(), 1);
    assert_eq!(alice_list[0].masked, "****ue-1");
    assert_eq!(
        s.settings
            .delete(&alice, "BOB_ONLY")
            .await
            .unwrap_err()
            .reason,
        Reason::NotFound
    );
    s.settings
        .replace(&alice, &[("X", Some("y"))])
        .await
        .unwrap();
    assert_eq!(
        s.settings.list(&bob).await.unwrap().len(),
        2,
        "bob untouched"
    );
    let reveal = service_token(&s.auth, "deployer").await;
    assert_eq!(
        s.settings
            .reveal(&reveal, &bob_id, "API_KEY", "r")
            .await
            .unwrap(),
        "bob-secret-value-22"
    );
    assert_eq!(
        s.settings
            .reveal(&reveal, &alice_id, "API_KEY", "r")
            .await
            .unwrap_err()
            .reason,
        Reason::NotFound
    );
    s.stop().await;
}

async fn patch_replace_and_delete(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (user_id, token) = s.auth.user_token("crud").await;
    s.settings
        .patch(
            &token,
            &[("A", Some("1")), ("B", Some("2")), ("C", Some("3"))],
        )
        .await
        .unwrap();
    let after = s
        .settings
        .patch(&token, &[("A", None), ("B", Some("22")), ("MISSING", None)])
        .await
        .unwrap();
    let names: Vec<&str> = after.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["B", "C"]);
    let replaced = s
        .settings
        .replace(&token, &[("C", Some("33")), ("D", Some("4"))])
        .await
        .unwrap();
    let names: Vec<&str> = replaced.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["C", "D"]);
    s.settings.delete(&token, "D").await.unwrap();
    assert_eq!(
        s.settings.delete(&token, "D").await.unwrap_err().reason,
        Reason::NotFound
    );
    let reveal = service_token(&s.auth, "deployer").await;
    assert_eq!(
        s.settings
            .reveal(&reveal, &user_id, "C", "r")
            .await
            .unwrap(),
        "33"
    );
    // The same byte-wise order on every database.
    let mixed = s
        .settings
        .replace(
            &token,
            &[
                ("b_lower", Some("1")),
                ("_under", Some("1")),
                ("Z", Some("1")),
                ("A_UPPER", Some("1")),
            ],
        )
        .await
        .unwrap();
    let names: Vec<&str> = mixed.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["A_UPPER", "Z", "_under", "b_lower"]);
    s.stop().await;
}

async fn tokens_are_verified_and_kinds_kept_apart(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (user_id, token) = s.auth.user_token("kinds").await;
    s.settings.put(&token, "A", "value-a").await;
    let mut client = s.settings.client().await;
    let missing = client
        .list_settings(tonic::Request::new(pb::ListSettingsRequest {}))
        .await;
    assert_eq!(reason(missing), Reason::TokenMissing);
    let mut tampered = token.clone();
    tampered.insert(token.len() - 8, 'x');
    assert_eq!(
        s.settings.list(&tampered).await.unwrap_err().reason,
        Reason::TokenSignatureInvalid
    );
    // A service token on a user call, and a user token on service calls: SCOPE_MISSING.
    let deployer = service_token(&s.auth, "deployer").await;
    assert_eq!(
        s.settings.list(&deployer).await.unwrap_err().reason,
        Reason::ScopeMissing
    );
    assert_eq!(
        s.settings
            .reveal(&token, &user_id, "A", "r")
            .await
            .unwrap_err()
            .reason,
        Reason::ScopeMissing
    );
    assert_eq!(
        s.settings.purge(&token, &user_id).await.unwrap_err().reason,
        Reason::ScopeMissing
    );
    assert_eq!(
        s.settings
            .audit(&token, "", 10, "")
            .await
            .unwrap_err()
            .reason,
        Reason::ScopeMissing
    );
    s.stop().await;
}

async fn revocation_reaches_settings_within_the_bound(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (_, token) = s.auth.user_token("revoked").await;
    s.settings.put(&token, "A", "v").await;
    s.auth.revoke_tokens_of(&token).await;
    s.auth
        .clock
        .advance(latchkey_settings::authn::ALLOWED_CACHE_SECS + 1);
    assert_eq!(
        s.settings.list(&token).await.unwrap_err().reason,
        Reason::TokenRevoked
    );
    let (_, fresh) = s.auth.user_token("revoked").await;
    assert_eq!(s.settings.list(&fresh).await.unwrap().len(), 1);
    s.stop().await;
}

/// A verdict in its last second is renewed in the background: the request is answered from it,
/// and a refusal at renewal (the user revoked meanwhile) takes effect at once, before the verdict
/// would have lapsed.
async fn a_revocation_seen_at_renewal_takes_effect_at_once(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (_, token) = s.auth.user_token("renewal").await;
    // moka frees the verdict 5 s of real time after it is stored: the wait below ends before.
    let freed = tokio::time::Instant::now() + Duration::from_millis(4500);
    s.settings.put(&token, "A", "v").await;
    s.auth.revoke_tokens_of(&token).await;
    s.auth
        .clock
        .advance(latchkey_settings::authn::ALLOWED_CACHE_SECS - 1);
    assert_eq!(
        s.settings.list(&token).await.unwrap().len(),
        1,
        "still within the bound: answered from the verdict, which is renewed meanwhile"
    );
    // The clock stands still, so without the renewal every list would be answered from the
    // verdict until moka frees it.
    let (settings, token) = (&s.settings, &token);
    let refused = wait_until(freed, || async move { settings.list(token).await.err() }).await;
    assert_eq!(refused.map(|e| e.reason), Some(Reason::TokenRevoked));
    s.stop().await;
}

/// latchkey-client's "still allowed" renews a verdict in use before it lapses, so steady use
/// never waits for auth; a revocation still takes effect within the bound.
async fn a_verdict_in_use_is_renewed_before_it_lapses(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let bound = latchkey_settings::authn::ALLOWED_CACHE_SECS;
    let channel = tonic::transport::Channel::from_shared(s.auth.url())
        .unwrap()
        .connect_lazy();
    let clock = &s.auth.clock;
    let allowed = latchkey_client::StillAllowed::new(
        channel,
        Duration::from_secs(bound as u64),
        clock.clone(),
    );
    let (_, token) = s.auth.user_token("renewed").await;
    allowed.check(&token).await.unwrap();
    clock.advance(bound - 1);
    allowed.check(&token).await.unwrap();
    clock.advance(1);
    // Renewed: a verdict is held past the first one's end (read without asking auth), aged
    // from the renewal's question a second ago.
    let (allowed, token) = (&allowed, &token);
    let held = || async move { allowed.cache().fresh(token).await };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    assert!(wait_until(deadline, held).await.is_some());
    s.auth.revoke_tokens_of(token).await;
    clock.advance(bound);
    let refused = allowed.check(token).await.unwrap_err();
    assert!(
        matches!(&refused, latchkey_client::AuthnError::Refused(e) if e.reason == Reason::TokenRevoked),
        "{refused:?}"
    );
    s.stop().await;
}

/// Polls `probe` until it answers something, until `deadline` at most (None after that).
async fn wait_until<T, F, Fut>(deadline: tokio::time::Instant, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    while tokio::time::Instant::now() < deadline {
        if let Some(found) = probe().await {
            return Some(found);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn reveal_needs_its_scope_and_every_reveal_is_audited(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (user_id, token) = s.auth.user_token("reveal").await;
    s.settings
        .put(&token, "FLY_API_TOKEN", "fo1_reveal_me_123456")
        .await;
    let reader = service_token(&s.auth, "reader").await;
    let deployer = service_token(&s.auth, "deployer").await;
    let auditor = service_token(&s.auth, "auditor").await;
    // Permission before existence: no scope is 403 even for a setting that does not exist.
    for name in ["FLY_API_TOKEN", "NOPE"] {
        let error = s
            .settings
            .reveal(&reader, &user_id, name, "r")
            .await
            .unwrap_err();
        assert_eq!(error.reason, Reason::ScopeMissing);
        assert_eq!(error.metadata["scope"], "settings:reveal");
    }
    assert_eq!(
        s.settings
            .reveal(&deployer, &user_id, "NOPE", "r")
            .await
            .unwrap_err()
            .reason,
        Reason::NotFound
    );
    for request_id in ["req-1", "req-2", "req-3"] {
        assert_eq!(
            s.settings
                .reveal(&deployer, &user_id, "FLY_API_TOKEN", request_id)
                .await
                .unwrap(),
            "fo1_reveal_me_123456"
        );
    }
    assert_eq!(
        s.settings
            .audit(&deployer, "", 10, "")
            .await
            .unwrap_err()
            .reason,
        Reason::ScopeMissing
    );
    let page = s.settings.audit(&auditor, &user_id, 2, "").await.unwrap();
    assert_eq!(page.entries.len(), 2);
    assert!(!page.next_page_token.is_empty());
    let entry = &page.entries[0];
    assert_eq!(
        (
            entry.caller.as_str(),
            entry.user_id.as_str(),
            entry.name.as_str(),
            entry.request_id.as_str()
        ),
        ("deployer", user_id.as_str(), "FLY_API_TOKEN", "req-3")
    );
    assert!(entry.revealed_at.ends_with('Z'));
    let rest = s
        .settings
        .audit(&auditor, &user_id, 2, &page.next_page_token)
        .await
        .unwrap();
    assert_eq!(rest.entries.len(), 1);
    assert_eq!(rest.entries[0].request_id, "req-1");
    assert!(rest.next_page_token.is_empty());
    assert!(
        !format!("{page:?}{rest:?}").contains("fo1_reveal"),
        "the audit log never holds the value"
    );
    let other = s
        .settings
        .audit(&auditor, "someone-else", 10, "")
        .await
        .unwrap();
    assert!(other.entries.is_empty());
    s.stop().await;
}

async fn a_reveal_that_cannot_be_audited_is_refused(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (user_id, token) = s.auth.user_token("noaudit").await;
    s.settings.put(&token, "A", "value-never-leaves").await;
    s.sql("DROP TABLE setting_reveals").await;
    let deployer = service_token(&s.auth, "deployer").await;
    let error = s
        .settings
        .reveal(&deployer, &user_id, "A", "r")
        .await
        .unwrap_err();
    assert!(
        matches!(error.reason, Reason::Internal | Reason::UpstreamUnavailable),
        "{error:?}"
    );
    assert!(!error.detail.contains("value-never-leaves"));
    s.stop().await;
}

async fn a_row_moved_to_another_user_fails_integrity_without_crashing(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (alice_id, alice) = s.auth.user_token("aad-alice").await;
    let (mallory_id, mallory) = s.auth.user_token("aad-mallory").await;
    s.settings
        .put(&alice, "ALICE_KEY", "alice-precious-secret")
        .await;
    s.settings.put(&mallory, "OWN", "mallory-own-value").await;
    let moved = s
        .sql(&format!(
            "UPDATE setting_values SET user_id = '{mallory_id}' WHERE user_id = '{alice_id}' AND name = 'ALICE_KEY'"
        ))
        .await;
    assert_eq!(moved, 1);
    // Listing needs no decryption and still works.
    let listed = s.settings.list(&mallory).await.unwrap();
    assert_eq!(listed.len(), 2);
    let deployer = service_token(&s.auth, "deployer").await;
    let error = s
        .settings
        .reveal(&deployer, &mallory_id, "ALICE_KEY", "r")
        .await
        .unwrap_err();
    assert_eq!(error.reason, Reason::DataIntegrity);
    assert!(!error.detail.contains("alice-precious"));
    // Renaming a row fails the same way.
    s.sql(&format!(
        "UPDATE setting_values SET name = 'OWN2' WHERE user_id = '{mallory_id}' AND name = 'OWN'"
    ))
    .await;
    assert_eq!(
        s.settings
            .reveal(&deployer, &mallory_id, "OWN2", "r")
            .await
            .unwrap_err()
            .reason,
        Reason::DataIntegrity
    );
    // The masking columns are checked against the sealed value on reveal.
    s.settings
        .put(&mallory, "MASKED", "mallory-value-0123456789")
        .await;
    s.sql(&format!(
        "UPDATE setting_values SET last4 = 'XXXX' WHERE user_id = '{mallory_id}' AND name = 'MASKED'"
    ))
    .await;
    assert_eq!(
        s.settings
            .reveal(&deployer, &mallory_id, "MASKED", "r")
            .await
            .unwrap_err()
            .reason,
        Reason::DataIntegrity
    );
    // The service is still up; setting the value again repairs it.
    s.settings.put(&mallory, "ALICE_KEY", "fresh").await;
    assert_eq!(
        s.settings
            .reveal(&deployer, &mallory_id, "ALICE_KEY", "r")
            .await
            .unwrap(),
        "fresh"
    );
    s.stop().await;
}

async fn purge_and_delete_user_remove_every_setting(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let listener = TestSettings::reserve().await;
    let settings_url = format!("http://{}", listener.local_addr().unwrap());
    let auth = spawn_auth(&db, Some(settings_url)).await;
    let settings = TestSettings::spawn_on(
        settings_config(&db, &auth.url(), &master_keys_text(&["k1"])),
        listener,
        &auth,
    )
    .await;
    let (gone_id, gone) = auth.user_token("to-delete").await;
    let (kept_id, kept) = auth.user_token("to-keep").await;
    settings
        .patch(
            &gone,
            &[("A", Some("1")), ("B", Some("2")), ("C", Some("3"))],
        )
        .await
        .unwrap();
    settings.put(&kept, "A", "kept-value").await;
    // Only a token with settings:purge may purge.
    let deployer = service_token(&auth, "deployer").await;
    assert_eq!(
        settings
            .purge(&deployer, &gone_id)
            .await
            .unwrap_err()
            .reason,
        Reason::ScopeMissing
    );
    let deleted = auth
        .client()
        .await
        .delete_user(with_bearer(
            latchkey_proto::auth::v1::DeleteUserRequest {},
            &gone,
        ))
        .await
        .expect("auth deletes the user")
        .into_inner()
        .settings_deleted;
    assert_eq!(deleted, 3);
    assert_eq!(
        settings
            .reveal(&deployer, &gone_id, "A", "r")
            .await
            .unwrap_err()
            .reason,
        Reason::NotFound
    );
    assert_eq!(
        settings
            .reveal(&deployer, &kept_id, "A", "r")
            .await
            .unwrap(),
        "kept-value"
    );
    // Once auth's cached answer lapses, the deleted user's unexpired token writes nothing.
    auth.clock
        .advance(latchkey_settings::authn::ALLOWED_CACHE_SECS + 1);
    assert_eq!(
        settings
            .patch(&gone, &[("ORPHAN", Some("x"))])
            .await
            .unwrap_err()
            .reason,
        Reason::UserNotSynced
    );
    settings.stop().await;
    auth.stop().await;
}

const MESSY_ENV: &str = "\u{feff}# deploy keys\r\nexport FLY_API_TOKEN=fo1_abcdefghijklmnop\r\nOPENROUTER_API_KEY = \"sk-or-v1-0123456789\"   # inline\r\nSINGLE='literal $NOT_EXPANDED'\r\nPEM=\"-----BEGIN KEY-----\nMIIB\nabc\n-----END KEY-----\"\r\nHASH=v#x\r\nEMPTY=\r\nFLY_API_TOKEN=fo1_second_wins_0000\r\n";

async fn dotenv_import_merge_replace_and_dry_run(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (user_id, token) = s.auth.user_token("dotenv").await;
    s.settings.put(&token, "OLD", "old-value").await;
    s.settings.put(&token, "HASH", "v#x").await;
    let preview = s
        .settings
        .import(&token, MESSY_ENV, pb::ImportMode::Replace, true)
        .await
        .unwrap();
    assert!(!preview.applied);
    assert_eq!(
        preview.added,
        [
            "EMPTY",
            "FLY_API_TOKEN",
            "OPENROUTER_API_KEY",
            "PEM",
            "SINGLE"
        ]
    );
    // A dry run compares no values: a stored name the file sets "would be replaced".
    assert_eq!(preview.changed, ["HASH"]);
    assert!(preview.unchanged.is_empty());
    assert_eq!(preview.removed, ["OLD"]);
    assert!(
        preview
            .warnings
            .iter()
            .any(|w| w.name == "FLY_API_TOKEN" && w.line == 11),
        "duplicate warned: {:?}",
        preview.warnings
    );
    let names: Vec<&str> = preview.settings.iter().map(|m| m.name.as_str()).collect();
    assert!(!names.contains(&"OLD") && names.contains(&"PEM"));
    let stored: Vec<String> = s
        .settings
        .list(&token)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(stored, ["HASH", "OLD"], "a dry run writes nothing");

    let merged = s
        .settings
        .import(&token, MESSY_ENV, pb::ImportMode::Merge, false)
        .await
        .unwrap();
    assert!(merged.applied);
    assert!(merged.removed.is_empty());
    assert_eq!(merged.settings.len(), 7);
    let reveal = service_token(&s.auth, "deployer").await;
    for (name, value) in [
        ("FLY_API_TOKEN", "fo1_second_wins_0000"),
        ("OPENROUTER_API_KEY", "sk-or-v1-0123456789"),
        ("SINGLE", "literal $NOT_EXPANDED"),
        ("PEM", "-----BEGIN KEY-----\nMIIB\nabc\n-----END KEY-----"),
        ("HASH", "v#x"),
        ("EMPTY", ""),
        ("OLD", "old-value"),
    ] {
        assert_eq!(
            s.settings
                .reveal(&reveal, &user_id, name, "r")
                .await
                .unwrap(),
            value,
            "{name}"
        );
    }
    let replaced = s
        .settings
        .import(&token, "A=1\nHASH=v#x\n", pb::ImportMode::Replace, false)
        .await
        .unwrap();
    assert_eq!(replaced.added, ["A"]);
    assert_eq!(replaced.unchanged, ["HASH"]);
    assert_eq!(replaced.removed.len(), 6);
    assert_eq!(s.settings.list(&token).await.unwrap().len(), 2);

    // Bad lines: every one reported with its number, nothing applied.
    let bad = "GOOD=1\nBARE_KEY\nQ=\"unterminated\n";
    let error = s
        .settings
        .import(&token, bad, pb::ImportMode::Merge, false)
        .await
        .unwrap_err();
    assert_eq!(error.reason, Reason::InvalidArgument);
    let lines: Vec<&str> = error.violations.iter().map(|v| v.field.as_str()).collect();
    assert!(lines.contains(&"line 2"), "{lines:?}");
    assert!(lines.contains(&"line 3"), "{lines:?}");
    assert!(
        s.settings
            .list(&token)
            .await
            .unwrap()
            .iter()
            .all(|m| m.name != "GOOD")
    );
    s.stop().await;
}

async fn exported_dotenv_imports_back_to_the_same_values(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (from_id, from) = s.auth.user_token("export-from").await;
    let (to_id, to) = s.auth.user_token("export-to").await;
    let values = [
        ("PLAIN", "abc"),
        ("SPACES", "  padded value  "),
        ("QUOTES", r#"it's "quoted" \ $HOME ${X}"#),
        (
            "PEM",
            "-----BEGIN KEY-----\nMIIB\r\nabc\n-----END KEY-----\n",
        ),
        ("HASHES", "v #not-a-comment#"),
        ("EMPTY", ""),
        ("UNICODE", "pässwörd🔑"),
    ];
    let entries: Vec<_> = values.iter().map(|(n, v)| (*n, Some(*v))).collect();
    s.settings.patch(&from, &entries).await.unwrap();
    let deployer = service_token(&s.auth, "deployer").await;
    let mut revealed = Vec::new();
    for (name, _) in values {
        revealed.push((
            name,
            s.settings
                .reveal(&deployer, &from_id, name, "export")
                .await
                .unwrap(),
        ));
    }
    let text = latchkey_settings::dotenv::write(revealed.iter().map(|(n, v)| (*n, v.as_str())));
    let imported = s
        .settings
        .import(&to, &text, pb::ImportMode::Replace, false)
        .await
        .unwrap();
    assert_eq!(
        imported.added.len(),
        values.len(),
        "{:?}",
        imported.warnings
    );
    for (name, value) in values {
        assert_eq!(
            s.settings
                .reveal(&deployer, &to_id, name, "export")
                .await
                .unwrap(),
            value,
            "{name}"
        );
    }
    // Importing the same file again changes nothing.
    let again = s
        .settings
        .import(&to, &text, pb::ImportMode::Merge, false)
        .await
        .unwrap();
    assert_eq!(again.unchanged.len(), values.len());
    assert!(again.added.is_empty() && again.changed.is_empty());
    s.stop().await;
}

async fn start_refuses_when_a_stored_key_is_not_configured(backend: Backend) {
    let Some(s) = stack(backend).await else {
        return;
    };
    let (_, token) = s.auth.user_token("keys").await;
    s.settings
        .patch(
            &token,
            &[("A", Some("1")), ("B", Some("2")), ("C", Some("3"))],
        )
        .await
        .unwrap();
    let config = settings_config(&s.db, &s.auth.url(), &master_keys_text(&["k2"]));
    let error = latchkey_settings::build(&config, s.auth.clock.clone())
        .await
        .err()
        .expect("start refused");
    let message = format!("{error:#}");
    assert!(
        message.contains("master key k1") && message.contains("guards 3"),
        "{message}"
    );
    s.stop().await;
}

async fn rotation_reencrypts_while_reads_and_writes_continue(backend: Backend) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = spawn_auth(&db, None).await;
    let old_keys = master_keys_text(&["k1"]);
    let old = TestSettings::spawn_with(settings_config(&db, &auth.url(), &old_keys), &auth).await;
    let mut users = Vec::new();
    for u in 0..3 {
        let (id, token) = auth.user_token(&format!("rot-{u}")).await;
        let entries: Vec<(String, String)> = (0..40)
            .map(|i| (format!("K_{i:02}"), format!("value-{u}-{i}-0123456789")))
            .collect();
        let borrowed: Vec<(&str, Option<&str>)> = entries
            .iter()
            .map(|(n, v)| (n.as_str(), Some(v.as_str())))
            .collect();
        old.patch(&token, &borrowed).await.unwrap();
        users.push((id, token));
    }
    old.stop().await;
    // Restart with a new active key k2, keeping k1 to open old rows.
    let new_keys = format!("{},{}", master_keys_text(&["k2"]), old_keys);
    let config = settings_config(&db, &auth.url(), &new_keys);
    let settings = Arc::new(TestSettings::spawn_with(config.clone(), &auth).await);
    let deployer = service_token(&auth, "deployer").await;

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (u, (id, _)) in users.iter().enumerate() {
        let (settings, stop, reads, deployer, id) = (
            settings.clone(),
            stop.clone(),
            reads.clone(),
            deployer.clone(),
            id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("K_{:02}", (i * 7) % 40);
                let value = settings.reveal(&deployer, &id, &name, "rot").await;
                let value = value.expect("reads keep working during rotation");
                assert!(value.starts_with(&format!("value-{u}-")), "{value}");
                reads.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    // Concurrent edits by user 0 while the rotation runs: never overwritten.
    let writer = {
        let (settings, token) = (settings.clone(), users[0].1.clone());
        tokio::spawn(async move {
            for round in 0..10 {
                settings
                    .patch(
                        &token,
                        &[("K_05", Some(&format!("value-0-edited-{round}")))],
                    )
                    .await
                    .unwrap();
            }
        })
    };
    let db_conn = latchkey_common::db::connect(&db.url).await.unwrap();
    let report = latchkey_settings::rotation::rotate_encryption(&db_conn, &config.keys, 7, |_| {})
        .await
        .unwrap();
    writer.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert_eq!(report.failed, 0);
    // K_05 may have been re-written under k2 before the rotation reached it.
    let touched = report.rotated + report.conflicts;
    assert!((119..=120).contains(&touched), "{report:?}");
    let status = latchkey_settings::rotation::status(&db_conn, &config.keys)
        .await
        .unwrap();
    let k1 = status.iter().find(|k| k.key_id == "k1").unwrap();
    let k2 = status.iter().find(|k| k.key_id == "k2").unwrap();
    assert_eq!((k1.rows, k2.rows), (0, 120));
    assert!(k1.removable() && !k2.removable() && k2.active);
    assert!(k2.encryptions >= 120);
    // The concurrent edit survived; a second run is a no-op.
    assert_eq!(
        settings
            .reveal(&deployer, &users[0].0, "K_05", "r")
            .await
            .unwrap(),
        "value-0-edited-9"
    );
    let again = latchkey_settings::rotation::rotate_encryption(&db_conn, &config.keys, 7, |_| {})
        .await
        .unwrap();
    assert_eq!(again.rotated + again.conflicts + again.failed, 0);
    // Now k1 can go: start with k2 alone.
    let only_k2 = settings_config(&db, &auth.url(), new_keys.split(',').next().unwrap());
    let restarted = TestSettings::spawn_with(only_k2, &auth).await;
    assert_eq!(
        restarted
            .reveal(&deployer, &users[1].0, "K_39", "r")
            .await
            .unwrap(),
        "value-1-39-0123456789"
    );
    restarted.stop().await;
    Arc::into_inner(settings).unwrap().stop().await;
    auth.stop().await;
}

async fn compare_and_swap_never_overwrites_a_concurrent_edit(backend: Backend) {
    use latchkey_settings::store::values;
    use sea_orm::EntityTrait;
    let Some(s) = stack(backend).await else {
        return;
    };
    let (user_id, token) = s.auth.user_token("cas").await;
    s.settings.put(&token, "A", "before-the-edit").await;
    let db = latchkey_common::db::connect(&s.db.url).await.unwrap();
    let read = values::Entity::find_by_id((user_id.clone(), "A".to_owned()))
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    // A user edit lands between the rotation's read and its swap.
    s.settings.put(&token, "A", "after-the-edit").await;
    let swapped = latchkey_settings::rotation::swap(&db, &read, "k9", vec![1, 2, 3])
        .await
        .unwrap();
    assert!(!swapped);
    let deployer = service_token(&s.auth, "deployer").await;
    assert_eq!(
        s.settings
            .reveal(&deployer, &user_id, "A", "r")
            .await
            .unwrap(),
        "after-the-edit"
    );
    s.stop().await;
}

async fn health_and_reflection_are_served(backend: Backend) {
    use tonic_health::pb::health_check_response::ServingStatus;
    let Some(s) = stack(backend).await else {
        return;
    };
    let channel = tonic::transport::Endpoint::from_shared(s.settings.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status =
        crate::support::health_status(channel.clone(), "latchkey.settings.v1.SettingsService")
            .await;
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
    for expected in [
        "latchkey.settings.v1.SettingsService",
        "grpc.health.v1.Health",
    ] {
        assert!(services.iter().any(|s| s == expected), "{expected} missing");
    }
    s.stop().await;
}

backend_tests!(
    lists_masked_values_never_plaintext,
    a_batch_with_one_bad_entry_writes_nothing,
    limits_are_checked_on_the_resulting_set,
    users_never_see_or_touch_each_other,
    patch_replace_and_delete,
    tokens_are_verified_and_kinds_kept_apart,
    revocation_reaches_settings_within_the_bound,
    a_revocation_seen_at_renewal_takes_effect_at_once,
    a_verdict_in_use_is_renewed_before_it_lapses,
    reveal_needs_its_scope_and_every_reveal_is_audited,
    a_reveal_that_cannot_be_audited_is_refused,
    a_row_moved_to_another_user_fails_integrity_without_crashing,
    purge_and_delete_user_remove_every_setting,
    dotenv_import_merge_replace_and_dry_run,
    exported_dotenv_imports_back_to_the_same_values,
    start_refuses_when_a_stored_key_is_not_configured,
    rotation_reencrypts_while_reads_and_writes_continue,
    compare_and_swap_never_overwrites_a_concurrent_edit,
    health_and_reflection_are_served,
);

/// Auth unreachable while a token needs its JWKS: UPSTREAM_UNAVAILABLE, never a 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_unreachable_is_upstream_unavailable() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let auth = spawn_auth(&db, None).await;
    let (_, token) = auth.user_token("down").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let settings = TestSettings::spawn_with(
        settings_config(&db, &dead_url, &master_keys_text(&["k1"])),
        &auth,
    )
    .await;
    assert_eq!(
        settings.list(&token).await.unwrap_err().reason,
        Reason::UpstreamUnavailable
    );
    settings.stop().await;
    auth.stop().await;
}

/// A database outage is UPSTREAM_UNAVAILABLE (503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_is_upstream_unavailable() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let auth_db = TestDb::new(Backend::Postgres).await.unwrap();
    let auth = spawn_auth(&auth_db, None).await;
    let settings = TestSettings::spawn(&db, &auth).await;
    let (_, token) = auth.user_token("outage").await;
    settings.put(&token, "A", "v").await;
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let admin = sea_orm::Database::connect(postgres_base_url())
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
    assert_eq!(
        settings.list(&token).await.unwrap_err().reason,
        Reason::UpstreamUnavailable
    );
    settings.stop().await;
    auth.stop().await;
}

/// `latchkey keys rotate-encryption` and `keys status` as an operator runs them: rows per key,
/// the nonce-budget warning, removability, and a resumable run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_commands_rotate_and_report_per_master_key() {
    let Some(s) = stack(Backend::Sqlite).await else {
        return;
    };
    let (user_id, token) = s.auth.user_token("cli").await;
    s.settings
        .patch(&token, &[("A", Some("value-a")), ("B", Some("value-b"))])
        .await
        .unwrap();
    let k1 = s
        .settings
        .config
        .keys
        .ids()
        .next()
        .map(str::to_owned)
        .unwrap();
    assert_eq!(k1, "k1");
    let old_key = s.settings.config.keys.active().key.to_base64().to_string();
    let new_keys = format!("{},k1:{old_key}", master_keys_text(&["k2"]));
    let run = |args: &[&str], keys: &str| {
        let dir = tempfile::tempdir().unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LATCHKEY_DATABASE_URL", &s.db.url)
            .env("LATCHKEY_ENCRYPTION_KEYS", keys)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), text)
    };
    // Near the nonce budget: status warns.
    s.sql("UPDATE settings_key_usage SET encryptions = 2147483650 WHERE key_id = 'k1'")
        .await;
    let (code, text) = run(&["keys", "status"], &format!("k1:{old_key}"));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("k1") && text.contains("2 row(s)"), "{text}");
    assert!(text.contains("warning: k1 has sealed 2147483650"), "{text}");
    // Rotation moves both rows; status then shows k1 removable.
    let (code, text) = run(
        &["keys", "rotate-encryption", "--batch-size", "1"],
        &new_keys,
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("done: 2 re-encrypted"), "{text}");
    assert!(text.contains("guards no rows: removable"), "{text}");
    let (_, text) = run(&["keys", "rotate-encryption"], &new_keys);
    assert!(
        text.contains("done: 0 re-encrypted"),
        "a re-run is a no-op: {text}"
    );
    // Dropped once it guards no rows, k1 is listed (it sealed values once) as gone, not missing.
    let only_new = new_keys.split(',').next().unwrap();
    let (code, text) = run(&["keys", "status"], only_new);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("NOT CONFIGURED"), "{text}");
    assert!(
        text.contains("not configured, guards no rows: nothing to do"),
        "{text}"
    );
    // A key still guarding rows cannot be dropped: rotation (and start) refuse, naming it.
    let (code, text) = run(&["keys", "rotate-encryption"], &format!("k1:{old_key}"));
    assert_ne!(code, Some(0));
    assert!(
        text.contains("master key k2 is not configured but guards 2"),
        "{text}"
    );
    // Why the procedure is "configure every instance with the new key first, then rotate": an
    // instance still holding only k1 cannot open rows rotated to k2 (and says so).
    let deployer = service_token(&s.auth, "deployer").await;
    assert_eq!(
        s.settings
            .reveal(&deployer, &user_id, "A", "r")
            .await
            .unwrap_err()
            .reason,
        Reason::DataIntegrity
    );
    s.stop().await;
}
