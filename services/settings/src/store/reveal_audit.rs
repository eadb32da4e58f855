//! The `setting_reveals` table: every plaintext reveal (caller, user, name, time, request id).
//! Never the value.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "setting_reveals")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The service client id of the token that asked.
    pub caller: String,
    pub user_id: String,
    pub name: String,
    pub revealed_at: i64,
    pub request_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
