//! Settings' domain errors, and their one mapping onto the catalogue ([`ApiError`]); the gRPC
//! layer turns that into a `google.rpc.Status`. No variant carries a value.

use latchkey_client::AuthnError;
use latchkey_proto::{ApiError, Reason, Violation};

/// The dependency named when settings' database is unavailable (in answers and by the breaker).
pub const DATABASE: &str = "the settings database";

/// Everything a settings operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The bearer token failed verification, auth could not be asked, or auth refused the user
    /// (revoked, deleted, disabled: its reason is passed on unchanged).
    #[error(transparent)]
    Authn(#[from] AuthnError),
    /// The token lacks the scope (or is the wrong kind of token) for this call.
    #[error("scope {scope} missing")]
    ScopeMissing { scope: String, detail: String },
    #[error("invalid request")]
    Invalid(String, Vec<Violation>),
    #[error("setting {0} not found")]
    NotFound(String),
    /// A stored value did not open: moved between users or names, altered, or wrong key.
    #[error("stored value for user {user_id} setting {name} failed its integrity check")]
    DataIntegrity { user_id: String, name: String },
    /// The user was purged (deleted through auth): nothing may be written for them again, even
    /// with a token that is still cached as valid somewhere.
    #[error("user {0} was purged")]
    UserPurged(String),
    /// The request's deadline passed before the work was done; nothing was written.
    #[error("deadline exceeded")]
    DeadlineExceeded { allowed_ms: Option<u64> },
    /// A reveal asked for a valid value and the stored one breaks the declared schema.
    #[error("setting {name} does not fit the schema: {rule}")]
    SettingInvalid { name: String, rule: String },
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<sea_orm::DbErr> for SettingsError {
    fn from(error: sea_orm::DbErr) -> Self {
        if latchkey_common::db::is_outage(&error) {
            SettingsError::DatabaseUnavailable(error.to_string())
        } else {
            SettingsError::Internal(format!("database: {error}"))
        }
    }
}

impl From<sea_orm::TransactionError<SettingsError>> for SettingsError {
    fn from(error: sea_orm::TransactionError<SettingsError>) -> Self {
        match error {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(inner) => inner,
        }
    }
}

impl From<SettingsError> for ApiError {
    fn from(error: SettingsError) -> Self {
        use SettingsError as E;
        match error {
            E::Authn(authn) => authn.into(),
            E::ScopeMissing { scope, detail } => {
                ApiError::new(Reason::ScopeMissing, detail).with_metadata("scope", scope)
            }
            E::Invalid(detail, violations) => ApiError::invalid(detail, violations),
            E::NotFound(name) => {
                let name = shown(&name);
                ApiError::new(
                    Reason::NotFound,
                    format!(
                        "Setting {name} does not exist; list settings to see the names stored."
                    ),
                )
                .with_metadata("name", name)
            }
            E::DataIntegrity { name, .. } => {
                let name = shown(&name);
                ApiError::new(
                    Reason::DataIntegrity,
                    format!(
                        "The stored value of {name} failed its integrity check (it was altered or moved in the database); set it again, and check the database for tampering."
                    ),
                )
                .with_metadata("name", name)
            }
            E::UserPurged(_) => ApiError::new(
                Reason::UserNotSynced,
                "This user was deleted and their settings purged, so nothing is written for them; sign in again (the web app syncs a new user) and use that user's token.",
            ),
            E::DeadlineExceeded { allowed_ms } => ApiError::new(
                Reason::DeadlineExceeded,
                match allowed_ms {
                    Some(ms) => format!(
                        "Settings did not finish within this request's {ms} ms deadline; nothing was changed. Retry; if it persists, import the .env in smaller parts."
                    ),
                    None => "Settings stopped this request before it finished; nothing was changed. Retry.".to_owned(),
                },
            ),
            E::SettingInvalid { name, rule } => {
                let name = shown(&name);
                ApiError::new(
                    Reason::SettingInvalid,
                    format!(
                        "The stored value of {name} {rule}, and the caller asked for a valid value only; ask the user to set it again on the Settings page."
                    ),
                )
                .with_metadata("name", name)
            }
            E::DatabaseUnavailable(_) => ApiError::unavailable(DATABASE),
            E::Internal(_) => ApiError::internal(),
        }
    }
}

/// Most characters of a caller-supplied name echoed in an error.
pub const SHOWN_NAME_CHARS: usize = 64;

/// A caller-supplied name as echoed in errors: at most [`SHOWN_NAME_CHARS`] characters, so an
/// 8 KB name cannot swell an error past what a status can carry.
pub fn shown(name: &str) -> String {
    let mut chars = name.chars();
    let mut out: String = chars.by_ref().take(SHOWN_NAME_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_reason_and_no_internals() {
        let cases = [
            (
                SettingsError::ScopeMissing {
                    scope: latchkey_proto::scopes::SETTINGS_REVEAL.into(),
                    detail: "x".into(),
                },
                Reason::ScopeMissing,
            ),
            (SettingsError::NotFound("A".into()), Reason::NotFound),
            (
                SettingsError::DataIntegrity {
                    user_id: "u".into(),
                    name: "A".into(),
                },
                Reason::DataIntegrity,
            ),
            (
                SettingsError::DatabaseUnavailable("connection refused to db-host".into()),
                Reason::UpstreamUnavailable,
            ),
            (
                SettingsError::Internal("secret internals".into()),
                Reason::Internal,
            ),
            (
                SettingsError::Authn(AuthnError::Unavailable),
                Reason::UpstreamUnavailable,
            ),
        ];
        for (error, reason) in cases {
            let api: ApiError = error.into();
            assert_eq!(api.reason, reason);
            assert!(!api.detail.contains("internals") && !api.detail.contains("db-host"));
        }
    }
}
