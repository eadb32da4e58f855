//! Who is calling and what they may do: a user acting on their own settings, or an internal
//! service holding scopes (`settings:reveal`, `settings:audit`, `settings:purge`).

use crate::error::SettingsError;
use latchkey_common::config::SERVICE_CLIENTS;

/// Who is calling, from a verified token (the one definition, in latchkey-client).
pub use latchkey_client::Caller;
/// Scopes a service token needs: to read plaintext, to delete a user's data (auth holds it), to
/// read the reveal audit log. Defined once, in the contract crate.
pub use latchkey_proto::scopes::{
    SETTINGS_AUDIT as AUDIT_SCOPE, SETTINGS_PURGE as PURGE_SCOPE, SETTINGS_REVEAL as REVEAL_SCOPE,
};

/// The user a user-facing call acts on: the token's `sub`. A service token is refused.
pub(crate) fn user_of(caller: &Caller) -> Result<&str, SettingsError> {
    match caller {
        Caller::User(id) => Ok(id),
        Caller::Service { client_id, .. } => Err(SettingsError::ScopeMissing {
            scope: "user".into(),
            detail: format!(
                "This call acts on the signed-in user's own settings and needs a user's access token; service client {client_id} should use RevealSetting with scope `{REVEAL_SCOPE}`."
            ),
        }),
    }
}

/// The client id of a service token carrying `scope`. User tokens never carry service scopes.
pub(crate) fn require_scope<'a>(caller: &'a Caller, scope: &str) -> Result<&'a str, SettingsError> {
    match caller {
        Caller::Service { client_id, scopes } if scopes.iter().any(|s| s == scope) => Ok(client_id),
        Caller::Service { client_id, .. } => Err(SettingsError::ScopeMissing {
            scope: scope.to_owned(),
            detail: format!(
                "This call needs a service token with scope `{scope}`; add it to client {client_id} in {} on auth and request a new token.",
                SERVICE_CLIENTS.env()
            ),
        }),
        Caller::User(_) => Err(SettingsError::ScopeMissing {
            scope: scope.to_owned(),
            detail: format!(
                "This call is for internal services: it needs a service token with scope `{scope}`, not a user's access token."
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_checked_by_kind_and_name() {
        let user = Caller::User("u".into());
        let reveal = Caller::Service {
            client_id: "deployer".into(),
            scopes: vec![REVEAL_SCOPE.into()],
        };
        assert!(user_of(&user).is_ok());
        assert!(matches!(
            user_of(&reveal),
            Err(SettingsError::ScopeMissing { .. })
        ));
        assert_eq!(require_scope(&reveal, REVEAL_SCOPE).unwrap(), "deployer");
        assert!(require_scope(&reveal, PURGE_SCOPE).is_err());
        assert!(require_scope(&user, REVEAL_SCOPE).is_err());
    }
}
