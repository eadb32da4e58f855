//! The `signing_keys` table: Ed25519 and P-256 key pairs, private halves sealed with the seal
//! key, each in one state of its life cycle: `standby` (published, not signing yet), `active`
//! (signing), `retired` (published until `publish_until`, then removed).

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// JWS `alg`: `EdDSA` or `ES256`.
    pub algorithm: String,
    /// Raw 32-byte Ed25519 public key, or the 65-byte uncompressed P-256 point.
    pub public_key: Vec<u8>,
    /// PKCS#8 document sealed with AES-256-GCM, associated data = kid.
    pub private_sealed: Vec<u8>,
    pub created_at: i64,
    /// When a newer key took over signing; None while active.
    pub retired_at: Option<i64>,
    /// After this unix second no live token can carry this key; it is dropped from JWKS.
    pub publish_until: Option<i64>,
    /// Fingerprint of the seal key that sealed `private_sealed`, so a key that will not open
    /// can say which seal key it needs; None for keys sealed before it was recorded.
    pub seal_fingerprint: Option<String>,
    /// `standby`, `active` or `retired` (see [`STANDBY`], [`ACTIVE`], [`RETIRED`]).
    pub state: String,
    /// When it started signing; None while on standby.
    pub activated_at: Option<i64>,
    /// A standby key's earliest activation: one JWKS cache lifetime after it was published.
    pub activates_at: Option<i64>,
}

/// Published, not signing yet.
pub const STANDBY: &str = "standby";
/// The one key that signs.
pub const ACTIVE: &str = "active";
/// No longer signing; published until the last token it signed expires.
pub const RETIRED: &str = "retired";

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .field("state", &self.state)
            .field("activated_at", &self.activated_at)
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .field("seal_fingerprint", &self.seal_fingerprint)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
