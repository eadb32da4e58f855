//! Signing keys: Ed25519 pairs generated and stored by auth (private halves sealed at rest), one
//! active, older ones published until every token they signed has expired.
//!
//! Every auth replica keeps a [`KeyRing`] snapshot and re-reads the table every few seconds (and
//! at once, rate-limited, when a token names an unknown `kid`), so `latchkey keys rotate-signing`
//! takes effect everywhere without a restart.
//!
//! Each row records the fingerprint of the seal key that sealed it, so a key that will not open
//! says which seal key it needs; [`reset_signing`] is the way out when that key is lost.

use crate::store::signing_keys;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use latchkey_common::seal::SealKey;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set, TransactionTrait,
};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The JWS algorithm name of every key auth generates.
pub const ALGORITHM: &str = latchkey_client::verify::ALGORITHM;

/// The key currently used to sign.
pub struct ActiveKey {
    pub kid: String,
    pub encoding: EncodingKey,
}

/// A key tokens may still be verified with.
#[derive(Clone)]
pub struct PublishedKey {
    pub kid: String,
    /// Raw 32-byte Ed25519 public key.
    pub public_key: Vec<u8>,
    pub decoding: DecodingKey,
    pub publish_until: Option<i64>,
}

/// A consistent snapshot of the key table.
#[derive(Default)]
pub struct KeySet {
    pub active: Option<Arc<ActiveKey>>,
    pub published: HashMap<String, PublishedKey>,
}

impl latchkey_client::KeyLookup for KeySet {
    fn decoding_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.published.get(kid).map(|k| &k.decoding)
    }
}

/// Why keys could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error(
        "signing key {kid} cannot be opened: sealed with fingerprint {}, configured {configured}",
        sealed_with.as_deref().unwrap_or("(not recorded)")
    )]
    Unseal {
        kid: String,
        /// Fingerprint of the seal key that sealed it, when recorded.
        sealed_with: Option<String>,
        /// Fingerprint of the configured seal key.
        configured: String,
    },
    #[error("signing key {0} is corrupt: {1}")]
    Corrupt(String, String),
}

/// The shared, hot-swappable key snapshot.
#[derive(Clone, Default)]
pub struct KeyRing {
    inner: Arc<RwLock<Arc<KeySet>>>,
}

impl KeyRing {
    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<KeySet> {
        self.inner.read().expect("key ring lock").clone()
    }

    fn replace(&self, set: KeySet) {
        *self.inner.write().expect("key ring lock") = Arc::new(set);
    }

    /// Re-reads the key table, dropping keys past their publish window.
    pub async fn reload(
        &self,
        db: &DatabaseConnection,
        seal: &SealKey,
        now: i64,
    ) -> Result<(), KeyError> {
        let rows = signing_keys::Entity::find()
            .order_by_desc(signing_keys::Column::CreatedAt)
            .all(db)
            .await?;
        let mut set = KeySet::default();
        for row in rows {
            if row.publish_until.is_some_and(|until| until < now) {
                continue;
            }
            if row.retired_at.is_none() && set.active.is_none() {
                set.active = Some(Arc::new(ActiveKey {
                    kid: row.kid.clone(),
                    encoding: open_private(&row, seal)?,
                }));
            }
            let public = PublishedKey {
                kid: row.kid.clone(),
                decoding: DecodingKey::from_ed_der(&row.public_key),
                public_key: row.public_key,
                publish_until: row.publish_until,
            };
            set.published.insert(row.kid, public);
        }
        self.replace(set);
        Ok(())
    }
}

fn open_private(row: &signing_keys::Model, seal: &SealKey) -> Result<EncodingKey, KeyError> {
    let pkcs8 = seal
        .open(&row.private_sealed, row.kid.as_bytes())
        .map_err(|_| KeyError::Unseal {
            kid: row.kid.clone(),
            sealed_with: row.seal_fingerprint.clone(),
            configured: seal.fingerprint(),
        })?;
    Ed25519KeyPair::from_pkcs8(&pkcs8)
        .map_err(|e| KeyError::Corrupt(row.kid.clone(), e.to_string()))?;
    Ok(EncodingKey::from_ed_der(&pkcs8))
}

fn new_key_row(seal: &SealKey, now: i64) -> signing_keys::ActiveModel {
    let pkcs8 = zeroize::Zeroizing::new(
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .expect("ed25519 key generation")
            .as_ref()
            .to_vec(),
    );
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).expect("freshly generated pkcs8");
    let public_key = pair.public_key().as_ref().to_vec();
    let kid = kid_for(&public_key);
    signing_keys::ActiveModel {
        private_sealed: Set(seal.seal(&pkcs8, kid.as_bytes())),
        kid: Set(kid),
        algorithm: Set(ALGORITHM.to_owned()),
        public_key: Set(public_key),
        created_at: Set(now),
        retired_at: Set(None),
        publish_until: Set(None),
        seal_fingerprint: Set(Some(seal.fingerprint())),
    }
}

/// The operator's refusal for a key that will not open: both fingerprints, the variable the seal
/// key came from, and both ways out. None for any other error.
pub fn unseal_refusal(error: &KeyError, variable: &str) -> Option<String> {
    let KeyError::Unseal {
        kid,
        sealed_with,
        configured,
    } = error
    else {
        return None;
    };
    let (sealed, restore) = match sealed_with {
        Some(fingerprint) => (
            fingerprint.clone(),
            format!("restore the seal key with fingerprint {fingerprint} in {variable}"),
        ),
        None => (
            "(not recorded: sealed before fingerprints were kept)".to_owned(),
            format!("restore in {variable} the seal key auth had when it sealed this key"),
        ),
    };
    Some(format!(
        "signing key {kid} cannot be opened: sealed with fingerprint {sealed}, configured {configured} ({variable}). \
         Either {restore} (`latchkey fingerprint` shows a seal key's fingerprint), \
         or run `latchkey keys reset-signing`, which after confirming retires every signing key the configured seal key cannot open \
         (every token they signed stops working: users sign in again) and creates a new active key"
    ))
}

/// Whether `seal` opens this key's private half.
pub fn opens(row: &signing_keys::Model, seal: &SealKey) -> bool {
    seal.open(&row.private_sealed, row.kid.as_bytes()).is_ok()
}

/// A key id derived from the public key (RFC 7638-style thumbprint, shortened).
fn kid_for(public_key: &[u8]) -> String {
    let x = URL_SAFE_NO_PAD.encode(public_key);
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

/// Creates the first signing key when the table has no active key.
pub async fn ensure_active_key(
    db: &DatabaseConnection,
    seal: &SealKey,
    now: i64,
) -> Result<(), KeyError> {
    let active = signing_keys::Entity::find()
        .filter(signing_keys::Column::RetiredAt.is_null())
        .one(db)
        .await?;
    if active.is_none() {
        new_key_row(seal, now).insert(db).await?;
        tracing::info!("generated the first signing key");
    }
    Ok(())
}

/// Records the seal key's fingerprint on keys sealed before fingerprints were recorded, when
/// `seal` opens them (so a later change of seal key can name the one they need).
pub async fn record_seal_fingerprints(
    db: &DatabaseConnection,
    seal: &SealKey,
) -> Result<(), KeyError> {
    let unrecorded = signing_keys::Entity::find()
        .filter(signing_keys::Column::SealFingerprint.is_null())
        .all(db)
        .await?;
    for row in unrecorded.into_iter().filter(|row| opens(row, seal)) {
        signing_keys::Entity::update_many()
            .col_expr(
                signing_keys::Column::SealFingerprint,
                sea_orm::sea_query::Expr::value(seal.fingerprint()),
            )
            .filter(signing_keys::Column::Kid.eq(row.kid.clone()))
            .filter(signing_keys::Column::SealFingerprint.is_null())
            .exec(db)
            .await?;
        tracing::info!(kid = %row.kid, "recorded the seal key fingerprint of a signing key");
    }
    Ok(())
}

/// A stored key the configured seal key cannot open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub kid: String,
    /// Fingerprint of the seal key that sealed it, when recorded.
    pub sealed_with: Option<String>,
    /// Whether it was the active key.
    pub active: bool,
}

/// Every key still in use (active, or published at `now`) that `seal` cannot open (for
/// `latchkey keys reset-signing`, before asking).
pub async fn unreadable(
    db: &impl ConnectionTrait,
    seal: &SealKey,
    now: i64,
) -> Result<Vec<Unreadable>, DbErr> {
    let rows = signing_keys::Entity::find()
        .order_by_desc(signing_keys::Column::CreatedAt)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|row| row.publish_until.is_none_or(|until| until >= now))
        .filter(|row| !opens(row, seal))
        .map(|row| Unreadable {
            active: row.retired_at.is_none(),
            kid: row.kid,
            sealed_with: row.seal_fingerprint,
        })
        .collect())
}

/// What a reset did.
#[derive(Debug)]
pub struct Reset {
    /// Keys retired and unpublished at once: every token they signed is refused.
    pub retired: Vec<Unreadable>,
    /// The new active key, when the active one was among them (or there was none).
    pub new_kid: Option<String>,
}

/// Retires every key `seal` cannot open and drops it from the JWKS at once (so every token it
/// signed is refused with TOKEN_KEY_UNKNOWN), then creates a new active key if none is left.
/// One transaction: a crash leaves the table as it was.
pub async fn reset_signing(
    db: &DatabaseConnection,
    seal: &SealKey,
    now: i64,
) -> Result<Reset, KeyError> {
    let txn = db.begin().await?;
    let retired = unreadable(&txn, seal, now).await?;
    let kids: Vec<String> = retired.iter().map(|key| key.kid.clone()).collect();
    if !kids.is_empty() {
        retire_now(&txn, kids, now).await?;
    }
    let active = signing_keys::Entity::find()
        .filter(signing_keys::Column::RetiredAt.is_null())
        .one(&txn)
        .await?;
    let new_kid = match active {
        Some(_) => None,
        None => Some(new_key_row(seal, now).insert(&txn).await?.kid),
    };
    txn.commit().await?;
    Ok(Reset { retired, new_kid })
}

/// Retires `kids` and takes them out of the JWKS at `now`.
async fn retire_now(txn: &impl ConnectionTrait, kids: Vec<String>, now: i64) -> Result<(), DbErr> {
    signing_keys::Entity::update_many()
        .col_expr(
            signing_keys::Column::RetiredAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .col_expr(
            signing_keys::Column::PublishUntil,
            sea_orm::sea_query::Expr::value(now - 1),
        )
        .filter(signing_keys::Column::Kid.is_in(kids))
        .exec(txn)
        .await?;
    Ok(())
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotation {
    pub new_kid: String,
    pub retired: Vec<String>,
    pub removed: Vec<String>,
    /// Unix second until which the retired keys stay published.
    pub publish_until: i64,
}

/// Makes a new key active; previously active keys keep verifying for `ttl + leeway` seconds
/// (the life of the last token they signed), and keys past their window are deleted.
pub async fn rotate(
    db: &DatabaseConnection,
    seal: &SealKey,
    now: i64,
    token_ttl: i64,
    leeway: i64,
) -> Result<Rotation, KeyError> {
    let txn = db.begin().await?;
    let publish_until = now + token_ttl + leeway;
    let expired = signing_keys::Entity::find()
        .filter(signing_keys::Column::PublishUntil.lt(now))
        .all(&txn)
        .await?;
    let removed: Vec<String> = expired.into_iter().map(|k| k.kid).collect();
    signing_keys::Entity::delete_many()
        .filter(signing_keys::Column::PublishUntil.lt(now))
        .exec(&txn)
        .await?;
    let active = signing_keys::Entity::find()
        .filter(signing_keys::Column::RetiredAt.is_null())
        .all(&txn)
        .await?;
    let retired: Vec<String> = active.iter().map(|k| k.kid.clone()).collect();
    signing_keys::Entity::update_many()
        .col_expr(
            signing_keys::Column::RetiredAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .col_expr(
            signing_keys::Column::PublishUntil,
            sea_orm::sea_query::Expr::value(publish_until),
        )
        .filter(signing_keys::Column::RetiredAt.is_null())
        .exec(&txn)
        .await?;
    let new_key = new_key_row(seal, now).insert(&txn).await?;
    txn.commit().await?;
    Ok(Rotation {
        new_kid: new_key.kid,
        retired,
        removed,
        publish_until,
    })
}

/// One line per key for `latchkey keys status`.
pub async fn status(db: &DatabaseConnection) -> Result<Vec<signing_keys::Model>, DbErr> {
    signing_keys::Entity::find()
        .order_by_desc(signing_keys::Column::CreatedAt)
        .all(db)
        .await
}

/// The JWK (RFC 8037) of a published key.
pub fn jwk(key: &PublishedKey) -> latchkey_proto::auth::v1::Jwk {
    latchkey_proto::auth::v1::Jwk {
        kty: "OKP".into(),
        crv: "Ed25519".into(),
        x: URL_SAFE_NO_PAD.encode(&key.public_key),
        kid: key.kid.clone(),
        alg: ALGORITHM.into(),
        key_use: "sig".into(),
    }
}
