//! What a Latchkey token says: the claims auth signs, and what a verified token speaks for.

use serde::{Deserialize, Serialize};

/// Claims of every token auth issues.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IssuedClaims {
    pub iss: String,
    /// User id, or `client:<id>` for a service token.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Set on service tokens (RFC 9068).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// A token that passed every check that needs no database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub subject: Subject,
    pub scopes: Vec<String>,
    pub token_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// `EdDSA` or `ES256` (its key's algorithm), `HS256` for a legacy token, or the `enc` of an Auth.js session token.
    pub algorithm: &'static str,
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A Latchkey user id.
    User(String),
    /// A service client id.
    Service(String),
    /// The email in a token the web app made (legacy HS256 or Auth.js); only auth, which holds
    /// the web app's secret, yields this.
    LegacyEmail(String),
}
