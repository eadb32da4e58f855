//! Operator actions on users, straight against auth's database (`latchkey users …`): look one up,
//! disable or enable it, revoke its tokens. Running auth replicas see the change on the next
//! verification (the gateway's cache holds an answer at most 5 s). None of them touches
//! `updated_at`: that is the profile's time, and legacy tokens pick among users sharing an email
//! by it.

use crate::error::{AuthError, violation};
use crate::service::normalise_email;
use crate::store::users;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, QueryFilter,
    Statement,
};

/// The database server's clock, in unix seconds: what an operator's command uses as "now", so
/// a laptop whose clock runs ahead cannot put a revocation boundary in the future (tokens issued
/// at it would not be valid yet).
pub async fn database_now(db: &DatabaseConnection) -> Result<i64, AuthError> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => "SELECT CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) AS now",
        _ => "SELECT CAST(strftime('%s', 'now') AS INTEGER) AS now",
    };
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .ok_or_else(|| AuthError::Internal("the database did not say what time it is".into()))?;
    Ok(row.try_get::<i64>("", "now")?)
}

/// The user with this id, or the one user with this email; an email several users share is
/// refused with their ids, so an operator never acts on the wrong account.
pub async fn find(db: &DatabaseConnection, who: &str) -> Result<users::Model, AuthError> {
    if let Some(user) = users::Entity::find_by_id(who.to_owned()).one(db).await? {
        return Ok(user);
    }
    if !who.contains('@') {
        return Err(AuthError::UserNotSynced(who.to_owned()));
    }
    let mut matches = users::Entity::find()
        .filter(users::Column::Email.eq(normalise_email(who)))
        .all(db)
        .await?;
    match matches.len() {
        0 => Err(AuthError::UserNotSynced(who.to_owned())),
        1 => Ok(matches.remove(0)),
        n => {
            let ids: Vec<String> = matches
                .iter()
                .map(|u| format!("{} ({})", u.id, u.provider))
                .collect();
            Err(AuthError::Invalid(
                format!(
                    "{n} users have this email: {}; name one by id.",
                    ids.join(", ")
                ),
                vec![violation("user", "matches several users")],
            ))
        }
    }
}

/// Disables (every token of the user is refused with USER_DISABLED, and no new one is issued) or
/// enables the user again.
pub async fn set_disabled(
    db: &DatabaseConnection,
    who: &str,
    disabled: bool,
) -> Result<users::Model, AuthError> {
    let user = find(db, who).await?;
    users::Entity::update_many()
        .col_expr(users::Column::Disabled, Expr::value(disabled))
        .filter(users::Column::Id.eq(&user.id))
        .exec(db)
        .await?;
    tracing::info!(user_id = %user.id, disabled, "user disabled flag changed by an operator");
    find(db, &user.id).await
}

/// Refuses every token issued to the user up to now (TOKEN_REVOKED); returns the new boundary.
pub async fn revoke(db: &DatabaseConnection, who: &str, now: i64) -> Result<i64, AuthError> {
    let user = find(db, who).await?;
    let boundary = revoke_until_now(db, &user.id, now).await?;
    tracing::info!(user_id = %user.id, "user's tokens revoked by an operator");
    Ok(boundary)
}

/// Moves the user's revocation boundary past `now` and past every token issued so far, in one
/// atomic UPDATE; the one place revocation is written. Tokens carry whole seconds and are issued
/// at the boundary after a revocation, so the boundary never moves back (another replica's clock
/// may lag, two revocations may race) and a second revocation within one second still refuses
/// the tokens issued since the first.
pub(crate) async fn revoke_until_now(
    db: &DatabaseConnection,
    user_id: &str,
    now: i64,
) -> Result<i64, AuthError> {
    let current = Expr::col(users::Column::TokensValidAfter);
    let next = Expr::case(current.clone().gte(now), current.add(1)).finally(now + 1);
    users::Entity::update_many()
        .col_expr(users::Column::TokensValidAfter, next.into())
        .filter(users::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    users::Entity::find_by_id(user_id.to_owned())
        .one(db)
        .await?
        .map(|user| user.tokens_valid_after)
        .ok_or_else(|| AuthError::UserNotSynced(user_id.to_owned()))
}
