//! Operator actions on users, straight against auth's database (`latchkey users …`): look one up,
//! disable or enable it, revoke its tokens. Running auth replicas see the change on the next
//! verification (the gateway's cache holds an answer at most 5 s).

use crate::error::AuthError;
use crate::service::normalise_email;
use crate::store::users;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};

/// The user with this id or, when it holds an `@`, the most recently updated one with this email.
pub async fn find(db: &DatabaseConnection, who: &str) -> Result<users::Model, AuthError> {
    if let Some(user) = users::Entity::find_by_id(who.to_owned()).one(db).await? {
        return Ok(user);
    }
    if who.contains('@') {
        let email = normalise_email(who);
        if let Some(user) = users::Entity::find()
            .filter(users::Column::Email.eq(email))
            .order_by_desc(users::Column::UpdatedAt)
            .one(db)
            .await?
        {
            return Ok(user);
        }
    }
    Err(AuthError::UserNotSynced(who.to_owned()))
}

/// Disables (every token of the user is refused with USER_DISABLED, and no new one is issued) or
/// enables the user again.
pub async fn set_disabled(
    db: &DatabaseConnection,
    who: &str,
    disabled: bool,
    now: i64,
) -> Result<users::Model, AuthError> {
    let user = find(db, who).await?;
    if user.disabled == disabled {
        return Ok(user);
    }
    let mut row: users::ActiveModel = user.into();
    row.disabled = Set(disabled);
    row.updated_at = Set(now);
    let user = row.update(db).await?;
    tracing::info!(user_id = %user.id, disabled, "user disabled flag changed by an operator");
    Ok(user)
}

/// Refuses every token issued to the user up to now (TOKEN_REVOKED); returns the new boundary.
pub async fn revoke(db: &DatabaseConnection, who: &str, now: i64) -> Result<i64, AuthError> {
    let user = find(db, who).await?;
    let user_id = user.id.clone();
    let boundary = revoke_until_now(db, user, now).await?;
    tracing::info!(%user_id, "user's tokens revoked by an operator");
    Ok(boundary)
}

/// Moves the user's revocation boundary past `now` and past every token issued so far; the one
/// place revocation is written. Tokens carry whole seconds and are issued at the boundary after a
/// revocation, so the boundary never moves back (another replica's clock may lag) and a second
/// revocation within one second still refuses the tokens issued since the first.
pub(crate) async fn revoke_until_now(
    db: &DatabaseConnection,
    user: users::Model,
    now: i64,
) -> Result<i64, AuthError> {
    let boundary = now.max(user.tokens_valid_after) + 1;
    let mut row: users::ActiveModel = user.into();
    row.tokens_valid_after = Set(boundary);
    row.updated_at = Set(now);
    row.update(db).await?;
    Ok(boundary)
}
