//! Replicas share nothing but the database: a write made through one replica is what the next read
//! through any other answers. The caches that make reads fast hold verified token claims and
//! "still allowed" answers, never settings or profiles, and the hot-read connections hold no
//! data. Two settings replicas and two auth replicas on one database, SQLite and PostgreSQL.

use crate::support::settings::{TestSettings, master_keys_text, settings_config};
use crate::support::{
    Backend, SYNC_SECRET, TestAuth, TestDb, auth_config, with_bearer, with_sync_secret,
};
use latchkey_proto::auth::v1 as auth_pb;

backend_tests!(
    a_settings_write_is_read_back_through_the_other_replica,
    a_profile_change_is_read_back_through_the_other_auth_replica,
);

async fn a_settings_write_is_read_back_through_the_other_replica(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let keys = master_keys_text(&["k1"]);
    let a = TestSettings::spawn_with(settings_config(&db, &auth.url(), &keys), &auth).await;
    let b = TestSettings::spawn_with(settings_config(&db, &auth.url(), &keys), &auth).await;
    let (_, token) = auth.user_token("replica-reader").await;
    // Both replicas have verified the token and read the (empty) list once: caches are warm.
    assert!(a.list(&token).await.unwrap().is_empty());
    assert!(b.list(&token).await.unwrap().is_empty());
    for round in 0..20 {
        let (writer, reader) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let value = format!("value-from-replica-{round:04}");
        writer.put(&token, "API_KEY", &value).await;
        let listed = reader.list(&token).await.unwrap();
        assert_eq!(listed.len(), 1, "round {round}");
        assert_eq!(listed[0].length, value.len() as i64, "round {round}");
        assert!(
            listed[0].masked.ends_with(&format!("{round:04}")),
            "round {round}: {:?}",
            listed[0].masked
        );
    }
    a.delete(&token, "API_KEY").await.unwrap();
    assert!(b.list(&token).await.unwrap().is_empty());
}

async fn a_profile_change_is_read_back_through_the_other_auth_replica(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    // One configuration (seal key, sync secret) for both, as replicas of one deployment share.
    let config = auth_config(&db);
    let first = TestAuth::spawn_with(config.clone()).await;
    let second = TestAuth::spawn_with(config).await;
    let (_, token) = first.user_token("replica-profile").await;
    assert_eq!(name_through(&second, &token).await, "Test User");
    for round in 0..10 {
        let (writer, reader) = if round % 2 == 0 {
            (&first, &second)
        } else {
            (&second, &first)
        };
        let name = format!("Renamed {round}");
        let request = with_sync_secret(
            auth_pb::SyncUserRequest {
                provider: "github".into(),
                subject: "replica-profile".into(),
                email: "replica-profile@example.com".into(),
                name: name.clone(),
                avatar_url: String::new(),
                email_verified: None,
            },
            SYNC_SECRET,
        );
        writer
            .client()
            .await
            .sync_user(request)
            .await
            .expect("sync");
        assert_eq!(name_through(reader, &token).await, name, "round {round}");
    }
}

/// The user's name as `auth` answers `GetUser` for `token`.
async fn name_through(auth: &TestAuth, token: &str) -> String {
    auth.client()
        .await
        .get_user(with_bearer(auth_pb::GetUserRequest {}, token))
        .await
        .expect("get user")
        .into_inner()
        .user
        .unwrap()
        .name
}
