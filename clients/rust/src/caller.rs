//! Who is calling, once a token has been verified: a user acting on their own data, or an
//! internal service acting within its scopes.

/// The caller a request was authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A user, by the token's `sub`; acts on their own data only.
    User(String),
    /// An internal service, by client id, with the token's scopes.
    Service {
        client_id: String,
        scopes: Vec<String>,
    },
}

impl Caller {
    /// Whether this is a service token carrying `scope` (user tokens never carry service
    /// scopes).
    pub fn has_scope(&self, scope: &str) -> bool {
        matches!(self, Caller::Service { scopes, .. } if scopes.iter().any(|s| s == scope))
    }

    /// The user id, for a user token.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Caller::User(id) => Some(id),
            Caller::Service { .. } => None,
        }
    }
}
