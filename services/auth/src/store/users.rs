//! The `users` table: one row per person, owning one or more [`identities`](super::identities),
//! and its queries. `email`, `name` and `avatar_url` are the profile the identity signed in last
//! reported; which address a person may be found by is the identities' business.

use super::identities;
use latchkey_common::hot_reads::{CoalescedRead, HotReads};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{QueryOrder, Set};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub email: String,
    pub name: String,
    pub avatar_url: String,
    pub disabled: bool,
    /// Tokens whose `iat` is before this unix second are revoked.
    pub tokens_valid_after: i64,
    pub created_at: i64,
    /// The last sign-in that reported a profile (operator actions leave it alone).
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::identities::Entity")]
    Identities,
}

impl Related<identities::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Identities.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// What a sign-in reports about the person: written to the user row on every sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub email: String,
    pub name: String,
    pub avatar_url: String,
}

/// The user with this id.
pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id.to_owned()).one(db).await
}

/// The user with this id and, in the same query, the identity that speaks for them on the wire:
/// the one signed in with last (the earliest-created among equals).
pub async fn find_with_identity<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<(Model, Option<identities::Model>)>, DbErr> {
    Entity::find_by_id(id.to_owned())
        .find_also_related(identities::Entity)
        .order_by_desc(identities::Column::UpdatedAt)
        .order_by_asc(identities::Column::CreatedAt)
        .one(db)
        .await
}

/// The columns of a user and (LEFT JOINed, so absent when none) of an identity.
type UserRow = (
    String,
    String,
    String,
    String,
    bool,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<bool>,
    Option<i64>,
    Option<i64>,
);

/// A token's user with its identity, read through the hot-read connections: the query of
/// [`find_with_identity`] written out, one key (`$1`) and many (`= ANY($1)`, the most recently
/// used identity per user); concurrent reads share one query on PostgreSQL.
pub type HotUsers = CoalescedRead<UserRow>;

/// [`HotUsers`] over `hot`.
pub fn hot_users(hot: HotReads) -> HotUsers {
    CoalescedRead::new(
        hot,
        "SELECT u.id, u.email, u.name, u.avatar_url, u.disabled, u.tokens_valid_after, \
         u.created_at, u.updated_at, i.provider, i.subject, i.email, i.email_verified, \
         i.created_at, i.updated_at \
         FROM users u LEFT JOIN identities i ON i.user_id = u.id WHERE u.id = $1 \
         ORDER BY i.updated_at DESC, i.created_at ASC LIMIT 1",
        "SELECT DISTINCT ON (u.id) u.id, u.email, u.name, u.avatar_url, u.disabled, \
         u.tokens_valid_after, u.created_at, u.updated_at, i.provider, i.subject, i.email, \
         i.email_verified, i.created_at, i.updated_at \
         FROM users u LEFT JOIN identities i ON i.user_id = u.id WHERE u.id = ANY($1) \
         ORDER BY u.id, i.updated_at DESC, i.created_at ASC",
        |row| &row.0,
    )
}

/// [`find_with_identity`] through [`HotUsers`].
pub async fn find_with_identity_hot(
    hot: &HotUsers,
    id: &str,
) -> Result<Option<(Model, Option<identities::Model>)>, DbErr> {
    Ok(hot
        .fetch(id)
        .await?
        .into_iter()
        .next()
        .map(user_and_identity))
}

fn user_and_identity(row: UserRow) -> (Model, Option<identities::Model>) {
    let (id, email, name, avatar_url, disabled, tokens_valid_after, created_at, updated_at) =
        (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7);
    // The identity's columns are all present (a joined row) or all NULL (none joined).
    let identity = match (row.8, row.9, row.10, row.11, row.12, row.13) {
        (Some(provider), Some(subject), Some(email), Some(verified), Some(created), Some(used)) => {
            Some(identities::Model {
                provider,
                subject,
                email,
                email_verified: verified,
                user_id: id.clone(),
                created_at: created,
                updated_at: used,
            })
        }
        _ => None,
    };
    let user = Model {
        id,
        email,
        name,
        avatar_url,
        disabled,
        tokens_valid_after,
        created_at,
        updated_at,
    };
    (user, identity)
}

/// A new user with this profile, enabled and never revoked.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    id: &str,
    profile: &Profile,
    now: i64,
) -> Result<(), DbErr> {
    let row = ActiveModel {
        id: Set(id.to_owned()),
        email: Set(profile.email.clone()),
        name: Set(profile.name.clone()),
        avatar_url: Set(profile.avatar_url.clone()),
        disabled: Set(false),
        tokens_valid_after: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    };
    Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// Writes what a sign-in reported; answers whether the user still exists.
pub async fn update_profile<C: ConnectionTrait>(
    db: &C,
    id: &str,
    profile: &Profile,
    now: i64,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::Email, Expr::value(profile.email.clone()))
        .col_expr(Column::Name, Expr::value(profile.name.clone()))
        .col_expr(Column::AvatarUrl, Expr::value(profile.avatar_url.clone()))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Sets the disabled flag; answers whether the user exists.
pub async fn set_disabled<C: ConnectionTrait>(
    db: &C,
    id: &str,
    disabled: bool,
) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::Disabled, Expr::value(disabled))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

/// Moves the user's revocation boundary past `now` and past every token issued so far, in one
/// atomic UPDATE; the one place revocation is written. Tokens carry whole seconds and are issued
/// at the boundary after a revocation, so the boundary never moves back (another replica's clock
/// may lag, two revocations may race) and a second revocation within one second still refuses
/// the tokens issued since the first. Answers the new boundary, None when there is no such user.
pub async fn revoke_until_now<C: ConnectionTrait>(
    db: &C,
    id: &str,
    now: i64,
) -> Result<Option<i64>, DbErr> {
    let current = Expr::col(Column::TokensValidAfter);
    let next = Expr::case(current.clone().gte(now), current.add(1)).finally(now + 1);
    Entity::update_many()
        .col_expr(Column::TokensValidAfter, next.into())
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(find(db, id).await?.map(|user| user.tokens_valid_after))
}

/// Deletes the user, their identities and their refresh tokens, in one transaction.
pub async fn delete(db: &DatabaseConnection, id: &str) -> Result<(), DbErr> {
    use sea_orm::TransactionTrait;
    let txn = db.begin().await?;
    identities::delete_of_user(&txn, id).await?;
    super::refresh_tokens::delete_of_user(&txn, id).await?;
    Entity::delete_by_id(id.to_owned()).exec(&txn).await?;
    txn.commit().await
}
