//! Users and their identities: which user a sign-in belongs to, and which user an email names.
//!
//! - A sign-in is an identity (provider, subject). A known identity is its user. A new one is
//!   linked to the existing user with the same email only when the provider vouches for the
//!   address (`email_verified`), linking is on (`LATCHKEY_LINK_VERIFIED_EMAILS`) and exactly one
//!   user holds it; otherwise it gets a user of its own.
//! - A new identity and its user are written in one transaction whose identity insert yields to
//!   a concurrent one (`ON CONFLICT DO NOTHING`): of two simultaneous first sign-ins one commits,
//!   the other rolls back and reads the winner's user. Nothing to retry, nothing to clean up.
//! - An email names a user only when exactly one user holds it (through any identity): several
//!   is `USER_AMBIGUOUS` with their count, never a guess.

use crate::error::AuthError;
use crate::store::identities;
use crate::store::users::{self, Profile};
use sea_orm::{DatabaseConnection, TransactionTrait};

/// How many times a sign-in re-reads after losing a race before giving up (each loss means the
/// identity was just written, so the next read finds it; a second loss needs a concurrent
/// delete of that user).
const ATTEMPTS: usize = 3;

/// One sign-in, validated and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    pub provider: String,
    pub subject: String,
    /// Normalised (see [`crate::email`]).
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub avatar_url: String,
}

impl SignIn {
    fn profile(&self) -> Profile {
        Profile {
            email: self.email.clone(),
            name: self.name.clone(),
            avatar_url: self.avatar_url.clone(),
        }
    }
}

/// What a sign-in did to the user table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The identity was known: its user, profile updated.
    Returning,
    /// A new identity joined the one existing user with its verified email.
    Linked,
    /// A new identity with a new user.
    Created,
}

/// The user a sign-in resolved to, the identity it came through, and how.
#[derive(Debug, Clone)]
pub struct Synced {
    pub user: users::Model,
    pub identity: identities::Model,
    pub outcome: Outcome,
}

/// Resolves a sign-in to its user (see the module docs), recording the profile it reports.
pub async fn sync(
    db: &DatabaseConnection,
    sign_in: &SignIn,
    link_verified_emails: bool,
    now: i64,
) -> Result<Synced, AuthError> {
    for _ in 0..ATTEMPTS {
        if let Some(identity) = identities::find(db, &sign_in.provider, &sign_in.subject).await? {
            if let Some(synced) = returning(db, identity, sign_in, now).await? {
                return Ok(synced);
            }
            continue;
        }
        let link_to = if sign_in.email_verified && link_verified_emails {
            sole_holder(db, &sign_in.email).await?
        } else {
            None
        };
        if let Some(synced) = claim(db, sign_in, link_to, now).await? {
            return Ok(synced);
        }
    }
    Err(contended(sign_in))
}

/// The identity's user, creating both when the identity is new (never linking: used for
/// just-in-time users, whose email the caller has already found no user for). The profile of a
/// known identity is left as it is.
pub async fn provision(
    db: &DatabaseConnection,
    sign_in: &SignIn,
    now: i64,
) -> Result<users::Model, AuthError> {
    for _ in 0..ATTEMPTS {
        if let Some(identity) = identities::find(db, &sign_in.provider, &sign_in.subject).await? {
            if let Some(user) = users::find(db, &identity.user_id).await? {
                return Ok(user);
            }
            continue;
        }
        if let Some(synced) = claim(db, sign_in, None, now).await? {
            tracing::info!(user_id = %synced.user.id, provider = %sign_in.provider, "user provisioned just in time");
            return Ok(synced.user);
        }
    }
    Err(contended(sign_in))
}

/// The one user holding this (normalised) email: None when nobody does, USER_AMBIGUOUS with the
/// count when several do.
pub async fn user_by_email(
    db: &DatabaseConnection,
    email: &str,
) -> Result<Option<users::Model>, AuthError> {
    let ids = identities::user_ids_with_email(db, email, 2).await?;
    match ids.as_slice() {
        [] => Ok(None),
        [id] => Ok(users::find(db, id).await?),
        _ => Err(AuthError::UserAmbiguous(
            identities::count_users_with_email(db, email).await?,
        )),
    }
}

/// The user a new verified identity may join: the only one holding the email, if exactly one does.
async fn sole_holder(
    db: &DatabaseConnection,
    email: &str,
) -> Result<Option<users::Model>, AuthError> {
    match identities::user_ids_with_email(db, email, 2)
        .await?
        .as_slice()
    {
        [id] => Ok(users::find(db, id).await?),
        _ => Ok(None),
    }
}

/// A known identity signs in again: what the provider reports now is written to the identity and
/// to its user. None when the user vanished meanwhile (deleted with its identities).
async fn returning(
    db: &DatabaseConnection,
    identity: identities::Model,
    sign_in: &SignIn,
    now: i64,
) -> Result<Option<Synced>, AuthError> {
    let txn = db.begin().await?;
    if !users::update_profile(&txn, &identity.user_id, &sign_in.profile(), now).await? {
        return Ok(None);
    }
    identities::record_sign_in(
        &txn,
        &sign_in.provider,
        &sign_in.subject,
        &sign_in.email,
        sign_in.email_verified,
        now,
    )
    .await?;
    txn.commit().await?;
    let identity = identities::Model {
        email: sign_in.email.clone(),
        email_verified: sign_in.email_verified,
        updated_at: now,
        ..identity
    };
    Ok(synced(db, identity, Outcome::Returning).await?)
}

/// Writes a new identity, for `link_to` or for a new user, in one transaction. None when a
/// concurrent sign-in wrote the same identity first, or the user to link to was deleted
/// meanwhile (this one's writes are rolled back).
async fn claim(
    db: &DatabaseConnection,
    sign_in: &SignIn,
    link_to: Option<users::Model>,
    now: i64,
) -> Result<Option<Synced>, AuthError> {
    let profile = sign_in.profile();
    // Every branch writes first: a SQLite transaction that reads before writing cannot wait
    // for a concurrent writer, and fails instead.
    let txn = db.begin().await?;
    let (user_id, outcome) = match link_to {
        Some(user) => {
            if !users::update_profile(&txn, &user.id, &profile, now).await? {
                return Ok(None);
            }
            (user.id, Outcome::Linked)
        }
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            users::insert(&txn, &id, &profile, now).await?;
            (id, Outcome::Created)
        }
    };
    let identity = identities::new_row(
        &sign_in.provider,
        &sign_in.subject,
        &sign_in.email,
        sign_in.email_verified,
        &user_id,
        now,
    );
    if !identities::insert_new(&txn, identity.clone()).await? {
        txn.rollback().await?;
        return Ok(None);
    }
    txn.commit().await?;
    Ok(synced(db, identity, outcome).await?)
}

async fn synced(
    db: &DatabaseConnection,
    identity: identities::Model,
    outcome: Outcome,
) -> Result<Option<Synced>, sea_orm::DbErr> {
    Ok(users::find(db, &identity.user_id)
        .await?
        .map(|user| Synced {
            user,
            identity,
            outcome,
        }))
}

fn contended(sign_in: &SignIn) -> AuthError {
    AuthError::Internal(format!(
        "an identity of provider {} kept changing under concurrent sign-ins and deletions",
        sign_in.provider
    ))
}
