//! Auth's domain errors, and their one mapping onto the catalogue ([`ApiError`]); the gRPC layer
//! turns that into a `google.rpc.Status`.

use crate::tokens::TokenError;
use latchkey_common::config::{SERVICE_CLIENTS, SYNC_SECRET};
use latchkey_proto::{ApiError, Reason, Violation};

/// The dependency named when auth's database is unavailable (in answers and by the breaker).
pub const DATABASE: &str = "the auth database";

/// Everything an auth operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("token was revoked")]
    TokenRevoked,
    #[error("user {0} is not synced")]
    UserNotSynced(String),
    #[error("user {0} is disabled")]
    UserDisabled(String),
    /// Several users hold the email a call named; the count, never their ids (those are for
    /// operators: `latchkey users show <email>`).
    #[error("{0} users share the email")]
    UserAmbiguous(u64),
    #[error("sync secret missing")]
    SyncSecretMissing,
    #[error("sync secret invalid")]
    SyncSecretInvalid,
    #[error("client credentials invalid")]
    ClientCredentialsInvalid,
    #[error("scope {0} missing")]
    ScopeMissing(String),
    #[error("invalid request")]
    Invalid(String, Vec<Violation>),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    #[error("{0} unavailable")]
    Upstream(&'static str),
    /// A stored signing key the configured seal key cannot open: the refusal names both
    /// fingerprints, the variable and both ways out (see [`crate::keys::unseal_refusal`]).
    #[error("{0}")]
    SealKeyMismatch(String),
    /// A call to another service failed; already classified (unavailable or out of time).
    #[error("{0}")]
    Remote(ApiError),
    #[error("{0}")]
    Internal(String),
    /// A refresh token auth never issued (or whose user is gone).
    #[error("refresh token invalid")]
    RefreshTokenInvalid,
    /// A refresh token past its idle or absolute lifetime.
    #[error("refresh token expired")]
    RefreshTokenExpired,
    /// A retired refresh token presented after the grace window; its family is now revoked.
    #[error("refresh token reused; family revoked")]
    RefreshTokenReused,
    /// A refresh token of a revoked family.
    #[error("refresh token family revoked")]
    RefreshTokenRevoked,
}

impl From<sea_orm::DbErr> for AuthError {
    fn from(error: sea_orm::DbErr) -> Self {
        if latchkey_common::db::is_outage(&error) {
            AuthError::DatabaseUnavailable(error.to_string())
        } else {
            AuthError::Internal(format!("database: {error}"))
        }
    }
}

impl From<crate::keys::KeyError> for AuthError {
    fn from(error: crate::keys::KeyError) -> Self {
        match error {
            crate::keys::KeyError::Db(db) => db.into(),
            other => AuthError::Internal(other.to_string()),
        }
    }
}

const SIGN_IN_AGAIN: &str = "Sign in again to get a new token.";

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        use AuthError as E;
        match error {
            E::Token(token) => token.into(),
            E::TokenRevoked => ApiError::new(Reason::TokenRevoked, format!("This token was revoked (sign-out everywhere, or an administrator). {SIGN_IN_AGAIN}")),
            E::UserNotSynced(who) => ApiError::new(
                Reason::UserNotSynced,
                format!("The token is valid but user {who} was never synced; call POST /api/auth/sync-user from your sign-in callback."),
            )
            .with_metadata("user", who),
            E::UserDisabled(id) => ApiError::new(Reason::UserDisabled, "This user is disabled; an operator must re-enable them.").with_metadata("user_id", id),
            E::UserAmbiguous(count) => ApiError::new(
                Reason::UserAmbiguous,
                format!("{count} users share this email, so Latchkey will not guess which one is meant; ask for the token by user id ({{\"user_id\": …}}), or have an operator run `latchkey users show <email>` to see them and disable or delete the wrong one."),
            )
            .with_metadata("count", count.to_string()),
            E::SyncSecretMissing => ApiError::new(
                Reason::SyncSecretMissing,
                format!("Send the sync secret in the X-Latchkey-Sync-Secret header (gRPC metadata x-latchkey-sync-secret); it is {} on the server.", SYNC_SECRET.env()),
            ),
            E::SyncSecretInvalid => ApiError::new(
                Reason::SyncSecretInvalid,
                format!("The sync secret does not match {}; compare `latchkey fingerprint` on both machines.", SYNC_SECRET.env()),
            ),
            E::ClientCredentialsInvalid => ApiError::new(
                Reason::ClientCredentialsInvalid,
                format!("Unknown client id or wrong client secret; check {} on the auth server.", SERVICE_CLIENTS.env()),
            ),
            E::ScopeMissing(scope) => ApiError::new(Reason::ScopeMissing, format!("This call needs a token with scope `{scope}`."))
                .with_metadata("scope", scope),
            E::Invalid(detail, violations) => ApiError::invalid(detail, violations),
            E::NotFound(what) => ApiError::new(Reason::NotFound, format!("{what} does not exist.")),
            E::DatabaseUnavailable(_) => ApiError::unavailable(DATABASE),
            E::Upstream(what) => ApiError::unavailable(what),
            E::Remote(error) => error,
            E::SealKeyMismatch(_) | E::Internal(_) => ApiError::internal(),
            E::RefreshTokenInvalid => ApiError::new(Reason::RefreshTokenInvalid, "This is not a refresh token Latchkey issued (or its user was deleted); sign in again and send the `refresh_token` exactly as it was answered."),
            E::RefreshTokenExpired => ApiError::new(Reason::RefreshTokenExpired, "This refresh token has expired (unused too long, or its sign-in reached its absolute lifetime); sign in again."),
            E::RefreshTokenReused => ApiError::new(Reason::RefreshTokenReused, "This refresh token was already exchanged, so it was presented twice: every refresh token from the same sign-in is now revoked. Sign in again, and store each rotated refresh token before using it."),
            E::RefreshTokenRevoked => ApiError::new(Reason::RefreshTokenRevoked, format!("This refresh token's family was revoked (sign-out everywhere, an administrator, or a reused token). {SIGN_IN_AGAIN}")),
        }
    }
}

impl AuthError {
    /// An email refused by [`crate::email::normalise`], naming the field it came in.
    pub fn invalid_email(field: &str, error: crate::email::EmailError) -> Self {
        AuthError::Invalid(
            format!("The email address in `{field}` is not accepted: it {error}."),
            vec![Violation::new(field, error.to_string())],
        )
    }

    /// A key error, as the seal-key refusal (naming `seal_variable`) when a stored key will not
    /// open.
    pub fn from_keys(error: crate::keys::KeyError, seal_variable: &str) -> Self {
        match crate::keys::unseal_refusal(&error, seal_variable) {
            Some(refusal) => AuthError::SealKeyMismatch(refusal),
            None => error.into(),
        }
    }
}
