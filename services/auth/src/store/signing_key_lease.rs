//! The `signing_key_lease` table: one row per lease, so exactly one auth replica rotates signing
//! keys at a time. Taking it is one conditional UPDATE (`WHERE expires_at < now OR holder = me`),
//! which SQLite and PostgreSQL both run atomically: two replicas cannot both see it free.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, DbErr};

/// The lease automatic rotation runs under.
pub const ROTATION: &str = "rotation";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_key_lease")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// The replica holding it (a random id per auth process); empty when never taken.
    pub holder: String,
    /// Unix second after which another replica may take it.
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Takes (or renews) lease `name` for `holder` until `now + ttl` when it is free or already
/// `holder`'s; answers whether `holder` holds it now.
pub async fn take(
    db: &impl ConnectionTrait,
    name: &str,
    holder: &str,
    now: i64,
    ttl: i64,
) -> Result<bool, DbErr> {
    let taken = Entity::update_many()
        .col_expr(Column::Holder, Expr::value(holder))
        .col_expr(Column::ExpiresAt, Expr::value(now + ttl))
        .filter(Column::Name.eq(name))
        .filter(
            sea_orm::Condition::any()
                .add(Column::ExpiresAt.lt(now))
                .add(Column::Holder.eq(holder)),
        )
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// The lease as stored (for `keys status` and tests).
pub async fn find(db: &impl ConnectionTrait, name: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(name.to_owned()).one(db).await
}

/// Gives lease `name` up if `holder` holds it, so another replica may take it at once.
pub async fn release(db: &impl ConnectionTrait, name: &str, holder: &str) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::ExpiresAt, Expr::value(0i64))
        .filter(Column::Name.eq(name))
        .filter(Column::Holder.eq(holder))
        .exec(db)
        .await?;
    Ok(())
}
