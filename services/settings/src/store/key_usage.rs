//! The `settings_key_usage` table: how many values each master key has sealed (every write and
//! every re-encryption draws one random 96-bit nonce), so `keys status` can warn before a key
//! nears the AES-GCM random-nonce budget.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "settings_key_usage")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_id: String,
    pub encryptions: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
