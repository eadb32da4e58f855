//! The `setting_values` table: one row per (user id, name), the value sealed with a master key.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "setting_values")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// `nonce || ciphertext || tag`, associated data = (user_id, name, key_id).
    pub ciphertext: Vec<u8>,
    /// Id of the master key that sealed it.
    pub key_id: String,
    /// Plaintext length in characters (masked reads need no decryption).
    pub length: i64,
    /// Last four characters when the value has at least 12, else empty.
    pub last4: String,
    pub updated_at: i64,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingValue")
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .field("length", &self.length)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
