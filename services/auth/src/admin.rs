//! Operator actions on users, straight against auth's database (`latchkey users …`): look users
//! up — by id, or every user holding an email, with their identities and ids (what callers of the
//! API never see) — disable or enable one, revoke its tokens. Running auth replicas see the change
//! on the next verification (the gateway's cache holds an answer at most 5 s). None of them
//! touches `updated_at`: that is the last sign-in's time. Every query is in [`crate::store`].

use crate::error::AuthError;
use crate::store::{identities, users};
use sea_orm::DatabaseConnection;

/// Most users `lookup` lists for one email.
const MAX_LISTED: u64 = 1000;

/// A user and every identity they sign in with, oldest first.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: users::Model,
    pub identities: Vec<identities::Model>,
}

/// The database server's clock, in unix seconds: what an operator's command uses as "now", so
/// a laptop whose clock runs ahead cannot put a revocation boundary in the future (tokens issued
/// at it would not be valid yet).
pub async fn database_now(db: &DatabaseConnection) -> Result<i64, AuthError> {
    crate::store::database_now(db)
        .await?
        .ok_or_else(|| AuthError::Internal("the database did not say what time it is".into()))
}

/// The users `who` names: the user with that id, or every user holding that email (normalised
/// and validated as everywhere else). None is USER_NOT_SYNCED.
pub async fn lookup(db: &DatabaseConnection, who: &str) -> Result<Vec<Account>, AuthError> {
    if let Some(user) = users::find(db, who.trim()).await? {
        return Ok(vec![account(db, user).await?]);
    }
    if !who.contains('@') {
        return Err(AuthError::UserNotSynced(who.trim().to_owned()));
    }
    let email =
        crate::email::normalise(who).map_err(|error| AuthError::invalid_email("user", error))?;
    let mut found = Vec::new();
    for id in identities::user_ids_with_email(db, &email, MAX_LISTED).await? {
        if let Some(user) = users::find(db, &id).await? {
            found.push(account(db, user).await?);
        }
    }
    if found.is_empty() {
        return Err(AuthError::UserNotSynced(email));
    }
    found.sort_by(|a, b| (a.user.created_at, &a.user.id).cmp(&(b.user.created_at, &b.user.id)));
    Ok(found)
}

async fn account(db: &DatabaseConnection, user: users::Model) -> Result<Account, AuthError> {
    let identities = identities::of_user(db, &user.id).await?;
    Ok(Account { user, identities })
}

/// Disables (every token of the user is refused with USER_DISABLED, and no new one is issued) or
/// enables the user again.
pub async fn set_disabled(
    db: &DatabaseConnection,
    user_id: &str,
    disabled: bool,
) -> Result<Account, AuthError> {
    if !users::set_disabled(db, user_id, disabled).await? {
        return Err(AuthError::UserNotSynced(user_id.to_owned()));
    }
    tracing::info!(
        user_id,
        disabled,
        "user disabled flag changed by an operator"
    );
    reread(db, user_id).await
}

/// Refuses every token issued to the user up to now (TOKEN_REVOKED).
pub async fn revoke(
    db: &DatabaseConnection,
    user_id: &str,
    now: i64,
) -> Result<Account, AuthError> {
    if users::revoke_until_now(db, user_id, now).await?.is_none() {
        return Err(AuthError::UserNotSynced(user_id.to_owned()));
    }
    tracing::info!(user_id, "user's tokens revoked by an operator");
    reread(db, user_id).await
}

async fn reread(db: &DatabaseConnection, user_id: &str) -> Result<Account, AuthError> {
    let user = users::find(db, user_id)
        .await?
        .ok_or_else(|| AuthError::UserNotSynced(user_id.to_owned()))?;
    account(db, user).await
}
