//! The signing-key life cycle on a real auth service with a hand-driven clock, on SQLite and
//! PostgreSQL: a standby key is published but does not sign, activation, retirement after the
//! last token's expiry, removal; automatic rotation across two auth replicas on one database
//! with exactly one of them rotating; EdDSA and ES256 keys side by side; the migration from the
//! schema before the life cycle, with keys in it.

use crate::support::*;
use latchkey_auth::key_policy::{KeyPolicy, SigningAlg};
use latchkey_auth::keys::KeyError;
use latchkey_auth::life_cycle::{self, TokenLife};
use latchkey_auth::store::{signing_key_lease, signing_keys};
use latchkey_common::clock::ManualClock;
use latchkey_proto::Reason;
use latchkey_proto::auth::v1 as pb;
use std::future::Future;
use std::time::Duration;

const LIFE: TokenLife = TokenLife {
    ttl: 900,
    leeway: 30,
};

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .unwrap()
        .kid
        .expect("a kid")
}

fn alg_of(token: &str) -> jsonwebtoken::Algorithm {
    jsonwebtoken::decode_header(token).unwrap().alg
}

async fn jwks(auth: &TestAuth) -> pb::GetJwksResponse {
    auth.client()
        .await
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
}

async fn published(auth: &TestAuth) -> Vec<String> {
    let mut kids: Vec<String> = jwks(auth).await.keys.into_iter().map(|k| k.kid).collect();
    kids.sort();
    kids
}

async fn stored(db: &TestDb) -> Vec<signing_keys::Model> {
    let conn = latchkey_common::db::connect(&db.url).await.unwrap();
    latchkey_auth::keys::status(&conn).await.unwrap()
}

fn in_state<'a>(keys: &'a [signing_keys::Model], state: &str) -> Vec<&'a str> {
    keys.iter()
        .filter(|key| key.state == state)
        .map(|key| key.kid.as_str())
        .collect()
}

/// Polls `check` every 100 ms until it answers Some (at most 20 s: replicas act on their own
/// refresh ticks), then answers it.
async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    for _ in 0..200 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

fn sorted(mut kids: Vec<String>) -> Vec<String> {
    kids.sort();
    kids
}

async fn standby_is_published_but_signs_only_once_activated(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (_, first_token) = auth.user_token("standby").await;
    let first_kid = kid_of(&first_token);
    let conn = latchkey_common::db::connect(&db.url).await.unwrap();
    let lead = auth.config.key_policy.standby_lead;
    assert_eq!(jwks(&auth).await.cache_max_age_seconds, lead);

    let standby = life_cycle::add_standby(
        &conn,
        &auth.config.seal_key,
        now(&auth),
        SigningAlg::EdDSA,
        lead,
    )
    .await
    .unwrap();
    auth.core.reload_keys().await.unwrap();
    assert_eq!(
        published(&auth).await,
        sorted(vec![first_kid.clone(), standby.kid.clone()]),
        "the standby key is published at once"
    );
    let (_, token) = auth.user_token("standby").await;
    assert_eq!(kid_of(&token), first_kid, "but the active key still signs");

    // Within the lead it may not sign: verifiers may hold a JWKS cached before it appeared.
    let early = life_cycle::activate(&conn, &standby.kid, now(&auth), LIFE, false).await;
    assert!(matches!(early, Err(KeyError::TooEarly { .. })), "{early:?}");
    auth.clock.advance(lead);
    let activation = life_cycle::activate(&conn, &standby.kid, now(&auth), LIFE, false)
        .await
        .unwrap();
    assert_eq!(activation.retired, [first_kid.as_str()]);
    assert_eq!(activation.publish_until, now(&auth) + 930);
    let again = life_cycle::activate(&conn, &standby.kid, now(&auth), LIFE, false).await;
    assert!(
        matches!(again, Err(KeyError::NotStandby { .. })),
        "{again:?}"
    );
    auth.core.reload_keys().await.unwrap();
    let (_, token) = auth.user_token("standby").await;
    assert_eq!(kid_of(&token), standby.kid, "the activated key signs");
    assert!(auth.authenticate(&first_token).await.is_ok());
    let keys = stored(&db).await;
    assert_eq!(
        in_state(&keys, signing_keys::ACTIVE),
        [standby.kid.as_str()]
    );
    assert_eq!(in_state(&keys, signing_keys::RETIRED), [first_kid.as_str()]);

    // The retired key stays until its last token has expired (ttl + leeway), then goes.
    auth.clock.advance(930);
    assert!(
        life_cycle::remove_expired(&conn, now(&auth))
            .await
            .unwrap()
            .is_empty()
    );
    auth.core.reload_keys().await.unwrap();
    assert!(published(&auth).await.contains(&first_kid));
    auth.clock.advance(1);
    let removed = life_cycle::remove_expired(&conn, now(&auth)).await.unwrap();
    assert_eq!(removed, [first_kid.as_str()]);
    auth.core.reload_keys().await.unwrap();
    assert_eq!(published(&auth).await, [standby.kid.as_str()]);
    assert_eq!(
        auth.authenticate(&first_token).await.unwrap_err().reason,
        Reason::TokenKeyUnknown
    );
    auth.stop().await;
}

/// The rotation lease: while one replica holds it another cannot take it; once it has lapsed
/// the other can.
async fn one_replica_holds_the_rotation_lease(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let conn = latchkey_common::db::connect(&db.url).await.unwrap();
    let now = now(&auth);
    let lease = signing_key_lease::ROTATION;
    assert!(
        signing_key_lease::take(&conn, lease, "a", now, 30)
            .await
            .unwrap()
    );
    assert!(
        !signing_key_lease::take(&conn, lease, "b", now, 30)
            .await
            .unwrap()
    );
    assert!(
        signing_key_lease::take(&conn, lease, "a", now + 10, 30)
            .await
            .unwrap()
    );
    assert!(
        !signing_key_lease::take(&conn, lease, "b", now + 40, 30)
            .await
            .unwrap()
    );
    assert!(
        signing_key_lease::take(&conn, lease, "b", now + 41, 30)
            .await
            .unwrap()
    );
    assert_eq!(
        signing_key_lease::find(&conn, lease)
            .await
            .unwrap()
            .unwrap()
            .holder,
        "b"
    );
    auth.stop().await;
}

/// Two replicas on one database and one clock, rotating every hour with a ten-minute lead:
/// exactly one standby key appears per rotation (one replica rotates), both replicas publish it
/// before either signs with it, both sign with it once it activates, and the retired key is
/// removed after its last token's expiry. Three rotations, the third to ES256.
async fn two_replicas_rotate_automatically_exactly_once(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let clock = ManualClock::starting_now();
    let mut config = auth_config(&db);
    config.key_refresh = Duration::from_millis(100);
    config.key_policy = KeyPolicy {
        rotate_every: Some(3_600),
        standby_lead: 600,
        ..KeyPolicy::default()
    };
    let mut replicas = (
        TestAuth::spawn_with_clock(config.clone(), clock.clone()).await,
        TestAuth::spawn_with_clock(config.clone(), clock.clone()).await,
    );
    let (_, token) = replicas.0.user_token("rotating").await;
    let mut previous = (kid_of(&token), token);

    for round in 0..3 {
        if round == 2 {
            // The operator switches to ES256 and restarts both replicas: the next key the
            // rotation makes is P-256.
            replicas.0.stop().await;
            replicas.1.stop().await;
            config.key_policy.algorithm = SigningAlg::Es256;
            replicas = (
                TestAuth::spawn_with_clock(config.clone(), clock.clone()).await,
                TestAuth::spawn_with_clock(config.clone(), clock.clone()).await,
            );
        }
        let (a, b) = (&replicas.0, &replicas.1);
        let active = previous.0.clone();
        // One lead before the hour is up: a standby key, made by one replica only.
        clock.advance(3_000);
        let standby = eventually("a standby key", || async {
            let keys = stored(&db).await;
            in_state(&keys, signing_keys::STANDBY)
                .first()
                .map(|kid| kid.to_string())
        })
        .await;
        for replica in [a, b] {
            eventually("the standby key in every replica's JWKS", || async {
                published(replica).await.contains(&standby).then_some(())
            })
            .await;
            let (_, token) = replica.user_token("rotating").await;
            assert_eq!(
                kid_of(&token),
                active,
                "round {round}: standby keys do not sign"
            );
            // The last token the active key signs: it must outlive the key's retirement.
            previous.1 = token;
        }
        let keys = stored(&db).await;
        assert_eq!(
            in_state(&keys, signing_keys::STANDBY),
            [standby.as_str()],
            "round {round}: exactly one replica made a standby key"
        );
        assert_eq!(in_state(&keys, signing_keys::ACTIVE), [active.as_str()]);

        // The hour is up and the lead has passed: the standby key signs on both replicas.
        clock.advance(600);
        for replica in [a, b] {
            let token = eventually("the standby key signing", || async {
                let (_, token) = replica.user_token("rotating").await;
                (kid_of(&token) == standby).then_some(token)
            })
            .await;
            let expected = if round == 2 {
                jsonwebtoken::Algorithm::ES256
            } else {
                jsonwebtoken::Algorithm::EdDSA
            };
            assert_eq!(alg_of(&token), expected, "round {round}");
            for verifier in [a, b] {
                assert!(verifier.authenticate(&token).await.is_ok());
                assert!(
                    verifier.authenticate(&previous.1).await.is_ok(),
                    "round {round}: tokens of the retired key still verify"
                );
            }
        }
        let keys = stored(&db).await;
        assert_eq!(in_state(&keys, signing_keys::ACTIVE), [standby.as_str()]);
        assert!(in_state(&keys, signing_keys::STANDBY).is_empty());
        assert!(in_state(&keys, signing_keys::RETIRED).contains(&active.as_str()));

        // Past the last token it signed, the retired key is removed and its tokens refused.
        clock.advance(931);
        eventually("the retired key removed", || async {
            let keys = stored(&db).await;
            (!keys.iter().any(|key| key.kid == active)).then_some(())
        })
        .await;
        for replica in [a, b] {
            eventually("the retired key unpublished", || async {
                (!published(replica).await.contains(&active)).then_some(())
            })
            .await;
            assert_eq!(
                replica.authenticate(&previous.1).await.unwrap_err().reason,
                Reason::TokenKeyUnknown
            );
        }
        let (_, token) = a.user_token("rotating").await;
        previous = (kid_of(&token), token);
        assert_eq!(previous.0, standby);
    }
    let lease = signing_key_lease::find(
        &latchkey_common::db::connect(&db.url).await.unwrap(),
        signing_key_lease::ROTATION,
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!lease.holder.is_empty(), "a replica took the lease");
    let jwk = jwks(&replicas.0)
        .await
        .keys
        .into_iter()
        .find(|key| key.kid == previous.0)
        .unwrap();
    assert_eq!(
        (jwk.kty.as_str(), jwk.crv.as_str(), jwk.alg.as_str()),
        ("EC", "P-256", "ES256")
    );
    assert!(!jwk.x.is_empty() && !jwk.y.is_empty());
    replicas.0.stop().await;
    replicas.1.stop().await;
}

/// A switch of algorithm by hand: after `rotate-signing` with ES256 configured, tokens of the
/// old EdDSA key and the new ES256 key both verify, in auth and in latchkey-client.
async fn eddsa_and_es256_tokens_verify_side_by_side(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (_, eddsa) = auth.user_token("switch").await;
    let conn = latchkey_common::db::connect(&db.url).await.unwrap();
    life_cycle::rotate_now(
        &conn,
        &auth.config.seal_key,
        now(&auth),
        LIFE,
        SigningAlg::Es256,
    )
    .await
    .unwrap();
    auth.core.reload_keys().await.unwrap();
    let (_, es256) = auth.user_token("switch").await;
    assert_eq!(alg_of(&eddsa), jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(alg_of(&es256), jsonwebtoken::Algorithm::ES256);
    let verifier = latchkey_client::JwksVerifier::new(
        tonic::transport::Endpoint::from_shared(auth.url())
            .unwrap()
            .connect_lazy(),
        latchkey_client::VerifyRules {
            issuer: "latchkey".into(),
            audience: "latchkey".into(),
            leeway: 30,
        },
        auth.clock.clone(),
    );
    verifier.refresh().await.unwrap();
    for token in [&eddsa, &es256] {
        assert!(auth.authenticate(token).await.is_ok());
        verifier
            .verify(token)
            .await
            .expect("latchkey-client verifies");
    }
    // An outside verifier with only the JWKS and a stock JWT library.
    let set = jwks(&auth).await;
    let ec = set.keys.iter().find(|key| key.kty == "EC").unwrap();
    let key = jsonwebtoken::DecodingKey::from_ec_components(&ec.x, &ec.y).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["latchkey"]);
    validation.validate_exp = false;
    jsonwebtoken::decode::<serde_json::Value>(&es256, &key, &validation).unwrap();
    auth.stop().await;
}

/// Keys stored before the life cycle (an active one, a retired one still published) come
/// through the migration as `active` and `retired`, activated when created; the tokens they
/// signed keep verifying and the active one keeps signing. Down and up again keeps them too.
async fn the_life_cycle_migration_keeps_the_stored_keys(backend: Backend) {
    use latchkey_auth::store::migration::Migrator;
    use sea_orm_migration::{MigratorTrait, SchemaManager};
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let (_, old_token) = auth.user_token("migrated").await;
    let conn = latchkey_common::db::connect(&db.url).await.unwrap();
    let rotation = life_cycle::rotate_now(
        &conn,
        &auth.config.seal_key,
        now(&auth),
        LIFE,
        SigningAlg::EdDSA,
    )
    .await
    .unwrap();
    life_cycle::add_standby(
        &conn,
        &auth.config.seal_key,
        now(&auth),
        SigningAlg::EdDSA,
        600,
    )
    .await
    .unwrap();
    let config = auth.config.clone();
    let clock = auth.clock.clone();
    auth.stop().await;

    // Back to the schema before the life cycle: keys as it stored them (no state; the one
    // without `retired_at` is the active one). A standby key never signed and goes.
    Migrator::down(&conn, Some(1)).await.expect("down");
    let manager = SchemaManager::new(&conn);
    assert!(!manager.has_column("signing_keys", "state").await.unwrap());
    assert!(!manager.has_table("signing_key_lease").await.unwrap());
    let before: Vec<(String, Option<i64>)> = {
        use sea_orm::{ConnectionTrait, Statement};
        conn.query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT kid, retired_at FROM signing_keys ORDER BY created_at, kid",
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            (
                row.try_get("", "kid").unwrap(),
                row.try_get("", "retired_at").unwrap(),
            )
        })
        .collect()
    };
    assert_eq!(before.len(), 2, "{before:?}");

    // Auth migrates on start.
    let auth = TestAuth::spawn_with_clock(config, clock).await;
    let keys = stored(&db).await;
    assert_eq!(
        in_state(&keys, signing_keys::ACTIVE),
        [rotation.new_kid.as_str()]
    );
    assert_eq!(
        in_state(&keys, signing_keys::RETIRED),
        rotation
            .retired
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    for key in &keys {
        assert_eq!(key.activated_at, Some(key.created_at), "{key:?}");
        assert_eq!(key.activates_at, None);
    }
    assert!(auth.authenticate(&old_token).await.is_ok());
    let (_, token) = auth.user_token("migrated").await;
    assert_eq!(kid_of(&token), rotation.new_kid);
    assert!(
        signing_key_lease::find(&conn, signing_key_lease::ROTATION)
            .await
            .unwrap()
            .is_some()
    );
    auth.stop().await;
}

/// Two replicas starting together on a database with no signing key create exactly one: the one
/// holding the rotation lease creates it, the other waits for it.
async fn replicas_starting_together_create_one_first_key(backend: Backend) {
    use sea_orm::{EntityTrait, PaginatorTrait, QueryFilter};
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let auth = TestAuth::spawn(&db).await;
    let seal = auth.config.seal_key.clone();
    let at = now(&auth);
    auth.stop().await;
    let conn = latchkey_common::db::connect(&db.url).await.unwrap();
    for _ in 0..5 {
        signing_keys::Entity::delete_many()
            .exec(&conn)
            .await
            .unwrap();
        let (a, b, c) = tokio::join!(
            latchkey_auth::keys::ensure_active_key(&conn, &seal, at, SigningAlg::EdDSA),
            latchkey_auth::keys::ensure_active_key(&conn, &seal, at, SigningAlg::Es256),
            latchkey_auth::keys::ensure_active_key(&conn, &seal, at, SigningAlg::EdDSA),
        );
        for answer in [a, b, c] {
            answer.unwrap();
        }
        let active = signing_keys::Entity::find()
            .filter(sea_orm::ColumnTrait::eq(
                &signing_keys::Column::State,
                signing_keys::ACTIVE,
            ))
            .count(&conn)
            .await
            .unwrap();
        assert_eq!(active, 1, "exactly one first key");
    }
}

backend_tests!(
    the_life_cycle_migration_keeps_the_stored_keys,
    standby_is_published_but_signs_only_once_activated,
    one_replica_holds_the_rotation_lease,
    two_replicas_rotate_automatically_exactly_once,
    eddsa_and_es256_tokens_verify_side_by_side,
    replicas_starting_together_create_one_first_key,
);

fn now(auth: &TestAuth) -> i64 {
    use latchkey_common::clock::Clock;
    auth.clock.now()
}
