//! The `refresh_tokens` table: one row per refresh token issued, keyed by the SHA-256 digest of
//! the token (the token itself is never stored), with the family it belongs to, its owner and
//! its life cycle (`current` → `retired` on rotation; every row of a family → `revoked` on reuse
//! or sign-out everywhere). Lookups go by digest, so no stored value is ever compared with a
//! presented token.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{Set, TransactionTrait};

/// A token that may be exchanged (once) for a new one.
pub const CURRENT: &str = "current";
/// A token already exchanged; presented again outside the grace window it revokes its family.
pub const RETIRED: &str = "retired";
/// A token of a revoked family: refused.
pub const REVOKED: &str = "revoked";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    /// Lower-case hex SHA-256 of the token.
    #[sea_orm(primary_key, auto_increment = false)]
    pub digest: String,
    /// Every token descending from one sign-in shares this id.
    pub family_id: String,
    pub user_id: String,
    /// [`CURRENT`], [`RETIRED`] or [`REVOKED`].
    pub state: String,
    pub created_at: i64,
    /// Unused until this unix second, the token expires (the idle lifetime).
    pub idle_expires_at: i64,
    /// When the family's first token was issued; a family started before the user's revocation
    /// boundary is revoked.
    pub family_started_at: i64,
    /// No token of the family is honoured from this unix second on (the absolute lifetime).
    pub family_expires_at: i64,
    /// When the token was exchanged (starts the grace window).
    pub retired_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A token row to write: the digest of the new token and where it sits in its family.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub digest: String,
    pub family_id: String,
    pub user_id: String,
    pub created_at: i64,
    pub idle_expires_at: i64,
    pub family_started_at: i64,
    pub family_expires_at: i64,
}

impl NewToken {
    fn row(self) -> ActiveModel {
        ActiveModel {
            digest: Set(self.digest),
            family_id: Set(self.family_id),
            user_id: Set(self.user_id),
            state: Set(CURRENT.to_owned()),
            created_at: Set(self.created_at),
            idle_expires_at: Set(self.idle_expires_at),
            family_started_at: Set(self.family_started_at),
            family_expires_at: Set(self.family_expires_at),
            retired_at: Set(None),
        }
    }
}

/// The row of the token with this digest.
pub async fn find<C: ConnectionTrait>(db: &C, digest: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(digest.to_owned()).one(db).await
}

/// Writes a new current token (the first of a family, or a grace-window sibling).
pub async fn insert<C: ConnectionTrait>(db: &C, token: NewToken) -> Result<(), DbErr> {
    Entity::insert(token.row())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Retires the token `digest` and writes its successor, in one transaction, only if the token
/// was still current: the conditional UPDATE is the one place two exchanges of one token race,
/// and exactly one of them sees a row change (PostgreSQL re-checks `state` after waiting for the
/// other's row lock; SQLite serialises writers). Answers whether this call retired it.
pub async fn rotate(
    db: &DatabaseConnection,
    digest: &str,
    successor: NewToken,
    now: i64,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let retired = Entity::update_many()
        .col_expr(Column::State, Expr::value(RETIRED))
        .col_expr(Column::RetiredAt, Expr::value(now))
        .filter(Column::Digest.eq(digest))
        .filter(Column::State.eq(CURRENT))
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if !retired {
        txn.rollback().await?;
        return Ok(false);
    }
    insert(&txn, successor).await?;
    txn.commit().await?;
    Ok(true)
}

/// Revokes every token of a family (reuse detected); answers how many rows changed.
pub async fn revoke_family<C: ConnectionTrait>(db: &C, family_id: &str) -> Result<u64, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::State, Expr::value(REVOKED))
        .filter(Column::FamilyId.eq(family_id))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Revokes every family of a user (sign-out everywhere); answers how many rows changed.
pub async fn revoke_user<C: ConnectionTrait>(db: &C, user_id: &str) -> Result<u64, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::State, Expr::value(REVOKED))
        .filter(Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Deletes every token of a user (the user is being deleted).
pub async fn delete_of_user<C: ConnectionTrait>(db: &C, user_id: &str) -> Result<(), DbErr> {
    Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes a user's rows whose family has expired (nothing can use them any more), so a user's
/// rows do not grow without bound; run when a family starts.
pub async fn delete_expired_of_user<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    now: i64,
) -> Result<(), DbErr> {
    Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::FamilyExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(())
}
