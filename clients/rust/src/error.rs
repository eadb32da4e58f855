//! Why a token or a caller was refused, each reason its own variant, and their one mapping onto
//! the catalogue ([`ApiError`]), shared by auth and every verifier.

use latchkey_common::config::{
    AUDIENCE, AUTHJS_COOKIE_NAME, AUTHJS_TOKENS, ISSUER, LEGACY_HS256_AUDIENCE,
    LEGACY_HS256_SECRET, LEGACY_ISSUER,
};
use latchkey_proto::{ApiError, Reason};
use secrecy::SecretString;

/// The auth service as answers and logs name it.
pub const AUTH: &str = "the auth service";

const SIGN_IN_AGAIN: &str = "Sign in again to get a new token.";

/// Why a token was refused, one variant per catalogue reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no token was presented")]
    Missing,
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(&'static str),
    #[error("algorithm {0} is not accepted")]
    AlgorithmRejected(String),
    #[error("no published key has kid {0}")]
    KeyUnknown(String),
    #[error("the signature does not verify")]
    SignatureInvalid,
    #[error("the token expired at {0}")]
    Expired(i64),
    #[error("the token is not valid before {0}")]
    NotYetValid(i64),
    #[error("issuer {0:?} is not trusted")]
    IssuerUntrusted(String),
    #[error("audience does not include {0}")]
    AudienceMismatch(String),
    /// A legacy token without Latchkey's legacy `aud`: maybe another JWT the web app signs with
    /// the same secret (an invite or unsubscribe link).
    #[error("the legacy token's audience does not include {0}")]
    LegacyAudienceMismatch(String),
    /// A legacy token whose signature fails, or an Auth.js token that no key derived from the
    /// secret decrypts: the web app's secret differs, or the token was altered.
    #[error("the {0} does not verify with the web app's secret from {var}", var = .1.variable)]
    WebAppSecretRejected(&'static str, SecretHint),
    /// An Auth.js v5 token whose `kid` is not the thumbprint of any key derived from our secret.
    #[error("the auth.js token's kid is not derived from the secret in {var}", var = .0.variable)]
    SecretMismatch(SecretHint),
    /// An Auth.js v5 token whose `kid` matches our key but whose tag does not verify.
    #[error("the auth.js token was altered: its kid matches our key, its tag does not")]
    AuthJsTampered,
    /// An Auth.js token while that major (or Auth.js mode) is off.
    #[error("{0} is not accepted ({variable})", variable = AUTHJS_TOKENS.env())]
    AuthJsOff(&'static str),
}

/// The web app's secret as refusals name it: the variable Latchkey read it from and its keyed
/// fingerprint (what `latchkey fingerprint` prints), never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHint {
    pub variable: String,
    pub fingerprint: String,
}

impl SecretHint {
    /// The hint for `secret`, read from `variable`.
    pub fn new(secret: &SecretString, variable: impl Into<String>) -> Self {
        SecretHint {
            variable: variable.into(),
            fingerprint: latchkey_common::secret::fingerprint_str(secret),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        let (reason, detail) = token_refusal(&error);
        ApiError::new(reason, detail)
    }
}

/// The reason and the what-to-do for each refusal.
fn token_refusal(error: &TokenError) -> (Reason, String) {
    use TokenError as T;
    match error {
        T::Missing => (
            Reason::TokenMissing,
            "Send the access token as `Authorization: Bearer <token>`.".to_owned(),
        ),
        T::Malformed(why) => (
            Reason::TokenMalformed,
            format!(
                "The token is not a well-formed JWT ({why}); send the access_token exactly as Latchkey issued it."
            ),
        ),
        T::AlgorithmRejected(alg) => (
            Reason::TokenAlgorithmRejected,
            format!(
                "Tokens signed with {alg} are not accepted; use a token issued by Latchkey (EdDSA or ES256, as its key says), or enable legacy HS256 mode for web-app-signed tokens."
            ),
        ),
        T::KeyUnknown(kid) => (
            Reason::TokenKeyUnknown,
            format!(
                "No published signing key has kid {kid}; the key was rotated out or the token comes from another installation. {SIGN_IN_AGAIN}"
            ),
        ),
        T::SignatureInvalid => (
            Reason::TokenSignatureInvalid,
            "The signature does not verify; the token was altered or signed with another key."
                .to_owned(),
        ),
        T::Expired(at) => (
            Reason::TokenExpired,
            format!(
                "The token expired at {}; request a new one with POST /api/auth/token.",
                latchkey_common::clock::rfc3339(*at)
            ),
        ),
        T::NotYetValid(at) => (
            Reason::TokenNotYetValid,
            format!(
                "The token is valid from {}; check the clocks of issuer and verifier.",
                latchkey_common::clock::rfc3339(*at)
            ),
        ),
        T::IssuerUntrusted(iss) => (
            Reason::TokenIssuerUntrusted,
            format!(
                "Issuer {iss:?} is not trusted; check {} (or {}).",
                ISSUER.env(),
                LEGACY_ISSUER.env()
            ),
        ),
        T::AudienceMismatch(aud) => (
            Reason::TokenAudienceMismatch,
            format!(
                "The token's audience does not include {aud}; check {}.",
                AUDIENCE.env()
            ),
        ),
        T::LegacyAudienceMismatch(aud) => (
            Reason::TokenAudienceMismatch,
            format!(
                "Legacy HS256 tokens must carry `aud: \"{aud}\"` ({}), so that other JWTs your web app signs with the same secret (invite or unsubscribe links) never pass for a session. Add it where the web app signs the token: jose `.setAudience(\"{aud}\")`, jsonwebtoken `{{ audience: \"{aud}\" }}`, or `aud: \"{aud}\"` in the claims.",
                LEGACY_HS256_AUDIENCE.env()
            ),
        ),
        T::WebAppSecretRejected(kind, secret) => (
            Reason::TokenSignatureInvalid,
            format!(
                "This {kind} does not verify with the secret Latchkey read from {} (fingerprint {}): your web app signs with another secret, or the token was altered. Run `latchkey fingerprint` on the web app's machine and compare with {}; set the same value on both.",
                secret.variable, secret.fingerprint, secret.fingerprint
            ),
        ),
        T::SecretMismatch(secret) => (
            Reason::TokenSecretMismatch,
            format!(
                "This Auth.js session token was encrypted with a key derived from another secret than the one Latchkey read from {} (fingerprint {}): its kid is not the thumbprint of the key Latchkey derives for the session cookie names it knows. Run `latchkey fingerprint` on the web app's machine and compare with {}; set the same AUTH_SECRET on both (or, if the web app renames its session cookie, set {}).",
                secret.variable,
                secret.fingerprint,
                secret.fingerprint,
                AUTHJS_COOKIE_NAME.env()
            ),
        ),
        T::AuthJsTampered => (
            Reason::TokenSignatureInvalid,
            "This Auth.js session token names the key Latchkey derives from your web app's secret, but its authentication tag does not verify: the token was altered or cut short. Send the session cookie's value unchanged (joined, when Auth.js split it into .0, .1 … chunks).".to_owned(),
        ),
        T::AuthJsOff(kind) => (
            Reason::TokenAlgorithmRejected,
            format!(
                "This is {kind}, which this Latchkey does not accept: set {} (v4, v5 or both) and give auth the web app's secret in {} (AUTH_SECRET and NEXTAUTH_SECRET are read too); or send the access_token Latchkey issued.",
                AUTHJS_TOKENS.env(),
                LEGACY_HS256_SECRET.env()
            ),
        ),
    }
}

/// Why a caller could not be authenticated away from auth.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// The token failed local verification.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Auth could not be reached (JWKS or `Authenticate`): UPSTREAM_UNAVAILABLE, never a token
    /// error.
    #[error("the auth service is unavailable")]
    Unavailable,
    /// Auth refused the user (revoked, deleted, disabled); its reason is passed on unchanged.
    #[error("auth refused the user: {}", .0.reason)]
    Refused(ApiError),
}

impl From<AuthnError> for ApiError {
    fn from(error: AuthnError) -> Self {
        match error {
            AuthnError::Token(token) => token.into(),
            AuthnError::Unavailable => ApiError::unavailable(AUTH),
            AuthnError::Refused(refusal) => refusal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_reason() {
        let cases = [
            (TokenError::Missing, Reason::TokenMissing),
            (TokenError::Expired(0), Reason::TokenExpired),
            (TokenError::KeyUnknown("k".into()), Reason::TokenKeyUnknown),
            (TokenError::AuthJsOff("x"), Reason::TokenAlgorithmRejected),
        ];
        for (error, reason) in cases {
            assert_eq!(ApiError::from(error).reason, reason);
        }
        let unavailable: ApiError = AuthnError::Unavailable.into();
        assert_eq!(unavailable.reason, Reason::UpstreamUnavailable);
    }
}
