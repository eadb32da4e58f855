//! The `users` table: one row per (provider, subject).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub provider: String,
    pub subject: String,
    pub email: String,
    pub name: String,
    pub avatar_url: String,
    pub disabled: bool,
    /// Tokens whose `iat` is before this unix second are revoked.
    pub tokens_valid_after: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
