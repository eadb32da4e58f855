//! The `identities` table: one row per way a person signs in — a provider and the provider's id
//! for them (`github`/`12345`; `email`/`ada@example.com` for an email-only sync; `legacy`/email
//! for a user provisioned from a legacy token) — owned by one user. The primary key (provider,
//! subject) is what makes concurrent first sign-ins of one identity end with one user.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{QueryOrder, QuerySelect};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "identities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: String,
    /// The normalised address the provider reported last.
    pub email: String,
    /// Whether the provider vouched for `email` when it reported it.
    pub email_verified: bool,
    pub user_id: String,
    pub created_at: i64,
    /// The last sign-in through this identity.
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// The identity (provider, subject).
pub async fn find<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    subject: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id((provider.to_owned(), subject.to_owned()))
        .one(db)
        .await
}

/// Every identity of a user, oldest first.
pub async fn of_user<C: ConnectionTrait>(db: &C, user_id: &str) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::Provider)
        .all(db)
        .await
}

/// The identity that speaks for a user on the wire: the one signed in with last.
pub async fn last_used<C: ConnectionTrait>(db: &C, user_id: &str) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .order_by_desc(Column::UpdatedAt)
        .order_by_asc(Column::CreatedAt)
        .one(db)
        .await
}

/// At most `limit` distinct users holding an identity with this (normalised) email.
pub async fn user_ids_with_email<C: ConnectionTrait>(
    db: &C,
    email: &str,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::UserId)
        .distinct()
        .filter(Column::Email.eq(email))
        .order_by_asc(Column::UserId)
        .limit(limit)
        .into_tuple::<String>()
        .all(db)
        .await
}

/// How many distinct users hold an identity with this (normalised) email.
pub async fn count_users_with_email<C: ConnectionTrait>(db: &C, email: &str) -> Result<u64, DbErr> {
    let count = Entity::find()
        .select_only()
        .column_as(Expr::col(Column::UserId).count_distinct(), "users")
        .filter(Column::Email.eq(email))
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(u64::try_from(count.unwrap_or(0)).unwrap_or(0))
}

/// Inserts the identity unless (provider, subject) exists already; answers whether it did. Never
/// fails on a concurrent insert of the same identity: one caller inserts, the others get false.
pub async fn insert_new<C: ConnectionTrait>(db: &C, row: Model) -> Result<bool, DbErr> {
    let row: ActiveModel = row.into();
    let inserted = Entity::insert(row)
        .on_conflict(
            OnConflict::columns([Column::Provider, Column::Subject])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted > 0)
}

/// Records a sign-in through the identity: the address the provider reports now, and whether it
/// vouches for it.
pub async fn record_sign_in<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    subject: &str,
    email: &str,
    email_verified: bool,
    now: i64,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Email, Expr::value(email.to_owned()))
        .col_expr(Column::EmailVerified, Expr::value(email_verified))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Provider.eq(provider))
        .filter(Column::Subject.eq(subject))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes every identity of a user (the foreign key cascades too; this does not rely on it).
pub async fn delete_of_user<C: ConnectionTrait>(db: &C, user_id: &str) -> Result<(), DbErr> {
    Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// A new identity row owned by `user_id`, first and last used `now`.
pub fn new_row(
    provider: &str,
    subject: &str,
    email: &str,
    email_verified: bool,
    user_id: &str,
    now: i64,
) -> Model {
    Model {
        provider: provider.to_owned(),
        subject: subject.to_owned(),
        email: email.to_owned(),
        email_verified,
        user_id: user_id.to_owned(),
        created_at: now,
        updated_at: now,
    }
}
