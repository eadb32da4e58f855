//! Signing keys: Ed25519 pairs generated and stored by auth (private halves sealed at rest), one
//! active, older ones published until every token they signed has expired.
//!
//! Every auth replica keeps a [`KeyRing`] snapshot and re-reads the table every few seconds (and
//! at once, rate-limited, when a token names an unknown `kid`), so `latchkey keys rotate-signing`
//! takes effect everywhere without a restart.

use crate::store::signing_keys;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use latchkey_common::seal::SealKey;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set, TransactionTrait,
};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The JWS algorithm name of every key auth generates.
pub const ALGORITHM: &str = "EdDSA";

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

/// Why keys could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error(
        "signing key {kid} cannot be opened with the configured LATCHKEY_SEAL_KEY (fingerprint {fingerprint}); it was sealed with another key"
    )]
    Unseal { kid: String, fingerprint: String },
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
            fingerprint: seal.fingerprint(),
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
    }
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
