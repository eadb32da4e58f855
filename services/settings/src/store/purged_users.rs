//! The `settings_purged_users` table: one row per user whose settings were purged (auth deleted
//! the user). Written in the purge's transaction and read inside every write transaction under
//! the same per-user lock, so a write racing a purge — through a token still cached as valid for
//! a few seconds — either lands before the purge (and is purged) or sees this row and is refused.
//! User ids are never reused, so a row stays for good; it holds no value.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "settings_purged_users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    /// Unix seconds of the (first) purge.
    pub purged_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
