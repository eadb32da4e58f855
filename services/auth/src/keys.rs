//! Signing keys: Ed25519 or P-256 pairs generated and stored by auth (private halves sealed at
//! rest), each in one state of its life cycle (see [`crate::life_cycle`]): standby keys are
//! published before they sign, one key is active, retired ones stay published until every token
//! they signed has expired.
//!
//! Every auth replica keeps a [`KeyRing`] snapshot and re-reads the table every few seconds (and
//! at once, rate-limited, when a token names an unknown `kid`), so `latchkey keys rotate-signing`
//! and automatic rotation take effect everywhere without a restart.
//!
//! Each row records the fingerprint of the seal key that sealed it, so a key that will not open
//! says which seal key it needs; [`reset_signing`] is the way out when that key is lost.

pub use crate::key_policy::SigningAlg;
use crate::store::signing_key_lease;
use crate::store::signing_keys::{self, ACTIVE, RETIRED};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use latchkey_common::seal::SealKey;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set, TransactionTrait,
};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The JWS algorithm name of keys auth generates unless `LATCHKEY_SIGNING_ALG` says otherwise.
pub const ALGORITHM: &str = latchkey_client::verify::ALGORITHM;

/// The private half that signs, by algorithm (ring in both cases).
enum Signer {
    Ed25519(Ed25519KeyPair),
    /// ECDSA P-256, fixed-length (r‖s) signatures as JWS wants them.
    Es256(EcdsaKeyPair, SystemRandom),
}

/// The key currently used to sign.
pub struct ActiveKey {
    pub kid: String,
    pub algorithm: SigningAlg,
    signer: Signer,
}

impl ActiveKey {
    /// Opens a PKCS#8 private key of `algorithm`; the error says why it is not one.
    pub fn from_pkcs8(kid: String, algorithm: SigningAlg, pkcs8: &[u8]) -> Result<Self, String> {
        let signer = match algorithm {
            SigningAlg::EdDSA => {
                Signer::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| e.to_string())?)
            }
            SigningAlg::Es256 => {
                let rng = SystemRandom::new();
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
                    .map_err(|e| e.to_string())?;
                Signer::Es256(pair, rng)
            }
        };
        Ok(ActiveKey {
            kid,
            algorithm,
            signer,
        })
    }

    /// A fresh key of `algorithm` with its public half (tests, benchmarks, fuzzing).
    pub fn generate(kid: &str, algorithm: SigningAlg) -> (ActiveKey, PublishedKey) {
        let generated = generate(algorithm);
        let active = ActiveKey::from_pkcs8(kid.to_owned(), algorithm, &generated.pkcs8)
            .expect("freshly generated pkcs8");
        let public = PublishedKey::new(kid.to_owned(), algorithm, generated.public_key, None);
        (active, public)
    }

    /// The JWS signature of `message` (the signing input `header.payload`).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.signer {
            Signer::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::Es256(pair, rng) => pair
                .sign(rng, message)
                .expect("p-256 signing cannot fail with a valid key")
                .as_ref()
                .to_vec(),
        }
    }
}

/// A key tokens may still be verified with.
#[derive(Clone)]
pub struct PublishedKey {
    pub kid: String,
    pub algorithm: SigningAlg,
    /// Raw 32-byte Ed25519 public key, or the 65-byte uncompressed P-256 point.
    pub public_key: Vec<u8>,
    pub decoding: DecodingKey,
    pub publish_until: Option<i64>,
}

impl PublishedKey {
    /// A published key from its stored public half.
    pub fn new(
        kid: String,
        algorithm: SigningAlg,
        public_key: Vec<u8>,
        publish_until: Option<i64>,
    ) -> Self {
        let decoding = match algorithm {
            SigningAlg::EdDSA => DecodingKey::from_ed_der(&public_key),
            SigningAlg::Es256 => DecodingKey::from_ec_der(&public_key),
        };
        PublishedKey {
            kid,
            algorithm,
            public_key,
            decoding,
            publish_until,
        }
    }
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

    fn key_algorithm(&self, kid: &str) -> Option<Algorithm> {
        self.published.get(kid).map(|k| k.algorithm.jwt())
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
    #[error("no signing key {0}: `latchkey keys status` lists them")]
    NotFound(String),
    #[error("signing key {kid} is {state}, not standby: only a standby key can be activated")]
    NotStandby { kid: String, state: String },
    #[error(
        "signing key {kid} has been published for less than one JWKS cache lifetime: verifiers may not know it until {}; activate it then, or pass --force",
        latchkey_common::clock::rfc3339(*activates_at)
    )]
    TooEarly { kid: String, activates_at: i64 },
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
            .order_by_desc(signing_keys::Column::ActivatedAt)
            .order_by_desc(signing_keys::Column::CreatedAt)
            .all(db)
            .await?;
        let mut set = KeySet::default();
        for row in rows {
            if row.publish_until.is_some_and(|until| until < now) {
                continue;
            }
            let algorithm = algorithm_of(&row)?;
            if row.state == ACTIVE && set.active.is_none() {
                set.active = Some(Arc::new(open_private(&row, algorithm, seal)?));
            }
            let public = PublishedKey::new(
                row.kid.clone(),
                algorithm,
                row.public_key,
                row.publish_until,
            );
            set.published.insert(row.kid, public);
        }
        self.replace(set);
        Ok(())
    }
}

/// The stored algorithm of a key.
fn algorithm_of(row: &signing_keys::Model) -> Result<SigningAlg, KeyError> {
    SigningAlg::parse(&row.algorithm).ok_or_else(|| {
        KeyError::Corrupt(
            row.kid.clone(),
            format!("unknown algorithm `{}`", row.algorithm),
        )
    })
}

fn open_private(
    row: &signing_keys::Model,
    algorithm: SigningAlg,
    seal: &SealKey,
) -> Result<ActiveKey, KeyError> {
    let pkcs8 = seal
        .open(&row.private_sealed, row.kid.as_bytes())
        .map_err(|_| KeyError::Unseal {
            kid: row.kid.clone(),
            sealed_with: row.seal_fingerprint.clone(),
            configured: seal.fingerprint(),
        })?;
    ActiveKey::from_pkcs8(row.kid.clone(), algorithm, &pkcs8)
        .map_err(|e| KeyError::Corrupt(row.kid.clone(), e))
}

/// A freshly generated key pair: PKCS#8 private half, raw public half.
struct Generated {
    pkcs8: zeroize::Zeroizing<Vec<u8>>,
    public_key: Vec<u8>,
}

fn generate(algorithm: SigningAlg) -> Generated {
    let rng = SystemRandom::new();
    match algorithm {
        SigningAlg::EdDSA => {
            let pkcs8 = zeroize::Zeroizing::new(
                Ed25519KeyPair::generate_pkcs8(&rng)
                    .expect("ed25519 key generation")
                    .as_ref()
                    .to_vec(),
            );
            let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).expect("freshly generated pkcs8");
            let public_key = pair.public_key().as_ref().to_vec();
            Generated { pkcs8, public_key }
        }
        SigningAlg::Es256 => {
            let pkcs8 = zeroize::Zeroizing::new(
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .expect("p-256 key generation")
                    .as_ref()
                    .to_vec(),
            );
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
                .expect("freshly generated pkcs8");
            let public_key = pair.public_key().as_ref().to_vec();
            Generated { pkcs8, public_key }
        }
    }
}

/// A new key row of `algorithm` in `state` (`active` or `standby`; a standby key may sign from
/// `activates_at`).
pub(crate) fn new_key_row(
    seal: &SealKey,
    now: i64,
    algorithm: SigningAlg,
    state: &str,
    activates_at: Option<i64>,
) -> signing_keys::ActiveModel {
    let Generated { pkcs8, public_key } = generate(algorithm);
    let kid = kid_for(algorithm, &public_key);
    let active = state == ACTIVE;
    signing_keys::ActiveModel {
        private_sealed: Set(seal.seal(&pkcs8, kid.as_bytes())),
        kid: Set(kid),
        algorithm: Set(algorithm.as_str().to_owned()),
        public_key: Set(public_key),
        created_at: Set(now),
        retired_at: Set(None),
        publish_until: Set(None),
        seal_fingerprint: Set(Some(seal.fingerprint())),
        state: Set(state.to_owned()),
        activated_at: Set(active.then_some(now)),
        activates_at: Set(if active { None } else { activates_at }),
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

/// A key id derived from the public key (RFC 7638 thumbprint, shortened).
fn kid_for(algorithm: SigningAlg, public_key: &[u8]) -> String {
    let canonical = match algorithm {
        SigningAlg::EdDSA => {
            let x = URL_SAFE_NO_PAD.encode(public_key);
            format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#)
        }
        SigningAlg::Es256 => {
            let (x, y) = p256_coordinates(public_key);
            format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
        }
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

/// The base64url `x` and `y` of an uncompressed P-256 point (`04 ‖ x ‖ y`).
fn p256_coordinates(point: &[u8]) -> (String, String) {
    let coordinates = point.get(1..).unwrap_or_default();
    let (x, y) = coordinates.split_at(coordinates.len() / 2);
    (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y))
}

/// Creates the first signing key (of `algorithm`) when the table has no active key.
pub async fn ensure_active_key(
    db: &DatabaseConnection,
    seal: &SealKey,
    now: i64,
    algorithm: SigningAlg,
) -> Result<(), KeyError> {
    // Replicas starting together on an empty database would each create a first key: the one
    // holding the rotation lease creates it, the others wait until it is there.
    let holder = format!("first-key-{}", uuid::Uuid::new_v4());
    for _ in 0..FIRST_KEY_ATTEMPTS {
        if has_active_key(db).await? {
            return Ok(());
        }
        if signing_key_lease::take(db, signing_key_lease::ROTATION, &holder, now, 30).await? {
            let created = create_first_key(db, seal, now, algorithm).await;
            signing_key_lease::release(db, signing_key_lease::ROTATION, &holder).await?;
            return created;
        }
        tokio::time::sleep(FIRST_KEY_WAIT).await;
    }
    Err(KeyError::Db(DbErr::Custom(
        "no active signing key appeared while another auth replica held the rotation lease"
            .to_owned(),
    )))
}

/// How often, and how long between, a starting replica checks for the first key another one
/// is creating (the lease is held for a single insert, so a few tries are plenty).
const FIRST_KEY_ATTEMPTS: usize = 120;
const FIRST_KEY_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Whether a key signs now.
async fn has_active_key(db: &DatabaseConnection) -> Result<bool, KeyError> {
    Ok(signing_keys::Entity::find()
        .filter(signing_keys::Column::State.eq(ACTIVE))
        .one(db)
        .await?
        .is_some())
}

/// Creates the first active key, unless one appeared meanwhile; called under the rotation lease.
async fn create_first_key(
    db: &DatabaseConnection,
    seal: &SealKey,
    now: i64,
    algorithm: SigningAlg,
) -> Result<(), KeyError> {
    if !has_active_key(db).await? {
        new_key_row(seal, now, algorithm, ACTIVE, None)
            .insert(db)
            .await?;
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
            active: row.state == ACTIVE,
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
/// signed is refused with TOKEN_KEY_UNKNOWN), then creates a new active key (of `algorithm`) if
/// none is left. One transaction: a crash leaves the table as it was.
pub async fn reset_signing(
    db: &DatabaseConnection,
    seal: &SealKey,
    now: i64,
    algorithm: SigningAlg,
) -> Result<Reset, KeyError> {
    let txn = db.begin().await?;
    let retired = unreadable(&txn, seal, now).await?;
    let kids: Vec<String> = retired.iter().map(|key| key.kid.clone()).collect();
    if !kids.is_empty() {
        retire_now(&txn, kids, now).await?;
    }
    let active = signing_keys::Entity::find()
        .filter(signing_keys::Column::State.eq(ACTIVE))
        .one(&txn)
        .await?;
    let new_kid = match active {
        Some(_) => None,
        None => Some(
            new_key_row(seal, now, algorithm, ACTIVE, None)
                .insert(&txn)
                .await?
                .kid,
        ),
    };
    txn.commit().await?;
    Ok(Reset { retired, new_kid })
}

/// Retires `kids` and takes them out of the JWKS at `now`.
async fn retire_now(txn: &impl ConnectionTrait, kids: Vec<String>, now: i64) -> Result<(), DbErr> {
    signing_keys::Entity::update_many()
        .col_expr(
            signing_keys::Column::State,
            sea_orm::sea_query::Expr::value(RETIRED),
        )
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

/// Every key, newest first (for `latchkey keys status` and `doctor`).
pub async fn status(db: &impl ConnectionTrait) -> Result<Vec<signing_keys::Model>, DbErr> {
    signing_keys::Entity::find()
        .order_by_desc(signing_keys::Column::CreatedAt)
        .all(db)
        .await
}

/// The JWK of a published key: RFC 8037 (OKP, Ed25519) or RFC 7518 (EC, P-256), with its `alg`.
pub fn jwk(key: &PublishedKey) -> latchkey_proto::auth::v1::Jwk {
    let (kty, crv, x, y) = match key.algorithm {
        SigningAlg::EdDSA => (
            "OKP",
            "Ed25519",
            URL_SAFE_NO_PAD.encode(&key.public_key),
            String::new(),
        ),
        SigningAlg::Es256 => {
            let (x, y) = p256_coordinates(&key.public_key);
            ("EC", "P-256", x, y)
        }
    };
    latchkey_proto::auth::v1::Jwk {
        kty: kty.into(),
        crv: crv.into(),
        x,
        kid: key.kid.clone(),
        alg: key.algorithm.as_str().into(),
        key_use: "sig".into(),
        y,
    }
}
