//! Token rules, free of transport and storage: what auth signs, and the checks a presented token
//! must pass, each failure its own [`TokenError`] (never a generic "invalid token").
//!
//! Three shapes are read: Latchkey's own EdDSA tokens, the web app's HS256 tokens (legacy mode,
//! bound to Latchkey by a required `aud`) and the web app's Auth.js session tokens (encrypted,
//! see [`crate::authjs`]). The web app's two kinds name the user by email.

use crate::authjs::AuthJsRules;
use crate::keys::{ALGORITHM, ActiveKey, KeySet};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
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

/// The audience claim as other issuers send it: one string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Claims as presented; lenient in shape so a foreign token gets a precise reason, not a parse error.
#[derive(Debug, Clone, Deserialize)]
struct PresentedClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
    jti: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    email: Option<String>,
}

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
    #[error("{0} is not accepted (LATCHKEY_AUTHJS_TOKENS)")]
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

/// A token that passed every check that needs no database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub subject: Subject,
    pub scopes: Vec<String>,
    pub token_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// `EdDSA`, `HS256` for a legacy token, or the `enc` of an Auth.js session token.
    pub algorithm: &'static str,
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A Latchkey user id.
    User(String),
    /// A service client id.
    Service(String),
    /// The email in a token the web app made (legacy HS256 or Auth.js); the user is looked up
    /// (or provisioned) by email.
    LegacyEmail(String),
}

/// Settings for HS256 tokens signed by the web app (NextAuth-style), off unless configured.
#[derive(Clone)]
pub struct LegacyRules {
    pub secret: SecretString,
    /// When set, `iss` must equal it.
    pub issuer: Option<String>,
    /// `aud` every legacy token must carry, so no other JWT the web app signs with the same
    /// secret (invite, unsubscribe or password-reset links) passes for a session.
    pub audience: String,
    /// The variable the secret came from (`NEXTAUTH_SECRET`, …), named when a signature fails.
    pub secret_variable: String,
}

/// The issuer/audience/leeway every token is held to.
#[derive(Clone)]
pub struct TokenRules {
    pub issuer: String,
    pub audience: String,
    pub ttl: i64,
    pub leeway: i64,
    pub legacy: Option<LegacyRules>,
    /// Accepting the web app's Auth.js session tokens; None when off.
    pub authjs: Option<AuthJsRules>,
}

/// Signs claims with the active key.
pub fn sign(key: &ActiveKey, claims: &IssuedClaims) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding)
        .expect("ed25519 signing cannot fail with a valid key")
}

/// Signs an HS256 token (legacy mode's shape; used by tests and benchmarks).
pub fn sign_hs256(secret: &SecretString, claims: &serde_json::Value) -> String {
    let key = EncodingKey::from_secret(secret.expose_secret().as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key)
        .expect("hs256 signing cannot fail")
}

impl TokenRules {
    /// Claims for a token issued now.
    pub fn claims(
        &self,
        sub: String,
        scope: String,
        client_id: Option<String>,
        iat: i64,
    ) -> IssuedClaims {
        IssuedClaims {
            iss: self.issuer.clone(),
            sub,
            aud: self.audience.clone(),
            exp: iat + self.ttl,
            iat,
            nbf: iat,
            jti: uuid::Uuid::new_v4().to_string(),
            scope,
            client_id,
        }
    }

    /// Checks signature, algorithm, key, expiry, issuer and audience against `keys` at `now`.
    pub fn verify(
        &self,
        token: &str,
        keys: &KeySet,
        now: i64,
    ) -> Result<VerifiedToken, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > crate::authjs::MAX_TOKEN_LEN {
            return Err(TokenError::Malformed("the token is longer than 32 KiB"));
        }
        if token.bytes().filter(|b| *b == b'.').count() == 4 {
            return self.verify_authjs(token, now);
        }
        let header = read_header(token)?;
        match header.alg.as_str() {
            ALGORITHM => self.verify_eddsa(token, header.kid, keys, now),
            "HS256" => match &self.legacy {
                Some(legacy) => self.verify_legacy(token, legacy, now),
                None => Err(TokenError::AlgorithmRejected(
                    "HS256 (legacy mode is off)".into(),
                )),
            },
            other => Err(TokenError::AlgorithmRejected(printable(other))),
        }
    }

    fn verify_eddsa(
        &self,
        token: &str,
        kid: Option<String>,
        keys: &KeySet,
        now: i64,
    ) -> Result<VerifiedToken, TokenError> {
        let kid =
            kid.ok_or_else(|| TokenError::KeyUnknown("(none: the token has no kid)".into()))?;
        let key = keys
            .published
            .get(&kid)
            .ok_or_else(|| TokenError::KeyUnknown(printable(&kid)))?;
        let claims = decode(token, &key.decoding, Algorithm::EdDSA)?;
        let (expires_at, issued_at) = self.check_times(&claims, now)?;
        if claims.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(TokenError::IssuerUntrusted(printable(
                claims.iss.as_deref().unwrap_or(""),
            )));
        }
        if !audience_contains(claims.aud.as_ref(), &self.audience) {
            return Err(TokenError::AudienceMismatch(self.audience.clone()));
        }
        let sub = claims
            .sub
            .filter(|s| !s.is_empty())
            .ok_or(TokenError::Malformed("no sub claim"))?;
        let subject = match claims.client_id {
            Some(client) => Subject::Service(client),
            None => Subject::User(sub),
        };
        Ok(VerifiedToken {
            subject,
            scopes: split_scopes(claims.scope.as_deref()),
            token_id: claims.jti.unwrap_or_default(),
            issued_at,
            expires_at,
            algorithm: ALGORITHM,
        })
    }

    fn verify_legacy(
        &self,
        token: &str,
        legacy: &LegacyRules,
        now: i64,
    ) -> Result<VerifiedToken, TokenError> {
        let key = DecodingKey::from_secret(legacy.secret.expose_secret().as_bytes());
        let claims = decode(token, &key, Algorithm::HS256).map_err(|error| match error {
            TokenError::SignatureInvalid => TokenError::WebAppSecretRejected(
                "HS256 legacy token",
                SecretHint::new(&legacy.secret, legacy.secret_variable.clone()),
            ),
            other => other,
        })?;
        let (expires_at, issued_at) = self.check_times(&claims, now)?;
        let legacy_issuer = legacy.issuer.as_deref();
        if legacy_issuer.is_some_and(|issuer| claims.iss.as_deref() != Some(issuer)) {
            let presented = claims.iss.as_deref().unwrap_or("");
            return Err(TokenError::IssuerUntrusted(printable(presented)));
        }
        if !audience_contains(claims.aud.as_ref(), &legacy.audience) {
            return Err(TokenError::LegacyAudienceMismatch(legacy.audience.clone()));
        }
        Ok(VerifiedToken {
            subject: Subject::LegacyEmail(web_app_email(claims.email, claims.sub)?),
            scopes: split_scopes(claims.scope.as_deref()),
            token_id: claims.jti.unwrap_or_default(),
            issued_at,
            expires_at,
            algorithm: "HS256",
        })
    }

    /// An Auth.js session token: decrypted with a key derived from the web app's secret, then
    /// held to `exp`/`nbf`; its `email` (or an email `sub`) names the user.
    fn verify_authjs(&self, token: &str, now: i64) -> Result<VerifiedToken, TokenError> {
        let Some(authjs) = self.authjs.as_ref() else {
            crate::authjs::check_shape(token)?;
            return Err(TokenError::AuthJsOff(
                "an encrypted Auth.js session token (JWE)",
            ));
        };
        let opened = authjs.open(token)?;
        let claims: PresentedClaims = serde_json::from_slice(&opened.payload).map_err(|_| {
            TokenError::Malformed("the decrypted payload is not a JSON object of claims")
        })?;
        let (expires_at, issued_at) = self.check_times(&claims, now)?;
        Ok(VerifiedToken {
            subject: Subject::LegacyEmail(web_app_email(claims.email, claims.sub)?),
            scopes: Vec::new(),
            token_id: claims.jti.unwrap_or_default(),
            issued_at,
            expires_at,
            algorithm: opened.enc,
        })
    }

    /// Returns (exp, iat); `exp` is required, `nbf` optional, both with leeway. Times are
    /// floats clamped to i64 (NaN is 0) and compared with saturating sums, so a claim of 1e300
    /// is "never expires", not an overflow.
    fn check_times(&self, claims: &PresentedClaims, now: i64) -> Result<(i64, i64), TokenError> {
        let exp = claims.exp.ok_or(TokenError::Malformed("no exp claim"))? as i64;
        if now > exp.saturating_add(self.leeway) {
            return Err(TokenError::Expired(exp));
        }
        if let Some(nbf) = claims
            .nbf
            .map(|n| n as i64)
            .filter(|nbf| now.saturating_add(self.leeway) < *nbf)
        {
            return Err(TokenError::NotYetValid(nbf));
        }
        let iat = claims.iat.map(|i| i as i64).unwrap_or(0);
        Ok((exp, iat))
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
}

/// Reads the header ourselves: jsonwebtoken refuses unknown algorithms (such as `none`) with a
/// parse error, and we want those reported as TOKEN_ALGORITHM_REJECTED.
fn read_header(token: &str) -> Result<RawHeader, TokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed(
            "a JWT has exactly three dot-separated parts (five for an encrypted Auth.js token)",
        ));
    };
    if header.is_empty() || payload.is_empty() {
        return Err(TokenError::Malformed("empty header or payload"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed("the header is not base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| TokenError::Malformed("the header is not a JSON object with alg"))
}

fn decode(
    token: &str,
    key: &DecodingKey,
    algorithm: Algorithm,
) -> Result<PresentedClaims, TokenError> {
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    match jsonwebtoken::decode::<PresentedClaims>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(error) => Err(match error.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidEddsaKey => {
                TokenError::SignatureInvalid
            }
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                TokenError::AlgorithmRejected(format!("{algorithm:?}"))
            }
            ErrorKind::Base64(_) => TokenError::Malformed("a part is not base64url"),
            ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                TokenError::Malformed("the payload is not a JSON object of claims")
            }
            _ => TokenError::Malformed("the token cannot be decoded"),
        }),
    }
}

/// The user's email in a token the web app made: `email`, else `sub` when it is an address.
fn web_app_email(email: Option<String>, sub: Option<String>) -> Result<String, TokenError> {
    email
        .or(sub)
        .filter(|e| e.contains('@'))
        .map(|e| e.trim().to_lowercase())
        .ok_or(TokenError::Malformed(
            "the web app's token has no email in its email or sub claim",
        ))
}

fn audience_contains(aud: Option<&Audience>, expected: &str) -> bool {
    match aud {
        Some(Audience::One(one)) => one == expected,
        Some(Audience::Many(many)) => many.iter().any(|a| a == expected),
        None => false,
    }
}

fn split_scopes(scope: Option<&str>) -> Vec<String> {
    scope
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Caller-supplied text in messages: short and printable only.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{ActiveKey, KeySet, PublishedKey};
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use std::sync::Arc;

    fn keyset() -> KeySet {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public = pair.public_key().as_ref().to_vec();
        let mut set = KeySet {
            active: Some(Arc::new(ActiveKey {
                kid: "k1".into(),
                encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            })),
            ..Default::default()
        };
        set.published.insert(
            "k1".into(),
            PublishedKey {
                kid: "k1".into(),
                decoding: DecodingKey::from_ed_der(&public),
                public_key: public,
                publish_until: None,
            },
        );
        set
    }

    fn rules() -> TokenRules {
        TokenRules {
            issuer: "latchkey".into(),
            audience: "latchkey".into(),
            ttl: 900,
            leeway: 30,
            legacy: None,
            authjs: None,
        }
    }

    #[test]
    fn a_signed_token_verifies_and_each_failure_has_its_reason() {
        let keys = keyset();
        let rules = rules();
        let claims = rules.claims("user-1".into(), String::new(), None, 1_000);
        let token = sign(keys.active.as_ref().unwrap(), &claims);
        let ok = rules.verify(&token, &keys, 1_100).unwrap();
        assert_eq!(ok.subject, Subject::User("user-1".into()));
        assert_eq!(
            rules.verify(&token, &keys, 1_000 + 900 + 31),
            Err(TokenError::Expired(1_900))
        );
        assert_eq!(
            rules.verify(&token, &keys, 1_000 - 31),
            Err(TokenError::NotYetValid(1_000))
        );
        assert_eq!(rules.verify("", &keys, 1_000), Err(TokenError::Missing));
        assert!(matches!(
            rules.verify("a.b", &keys, 1_000),
            Err(TokenError::Malformed(_))
        ));
        // A character well inside the signature: every one of its bits counts (the last
        // character's low bits are padding, and changing them is non-canonical base64).
        let at = token.len() - 10;
        let mut tampered = token.clone();
        let swapped = if &token[at..at + 1] == "A" { "B" } else { "A" };
        tampered.replace_range(at..at + 1, swapped);
        assert_eq!(
            rules.verify(&tampered, &keys, 1_100),
            Err(TokenError::SignatureInvalid)
        );
        let other_iss = TokenRules {
            issuer: "other".into(),
            ..rules.clone()
        };
        assert!(matches!(
            other_iss.verify(&token, &keys, 1_100),
            Err(TokenError::IssuerUntrusted(_))
        ));
        let other_aud = TokenRules {
            audience: "other".into(),
            ..rules.clone()
        };
        assert!(matches!(
            other_aud.verify(&token, &keys, 1_100),
            Err(TokenError::AudienceMismatch(_))
        ));
    }

    #[test]
    fn none_and_hs256_confusion_are_rejected() {
        let keys = keyset();
        let rules = rules();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"u","exp":99999999999}"#);
        let none = format!("{header}.{payload}.");
        assert!(matches!(
            rules.verify(&none, &keys, 1_000),
            Err(TokenError::AlgorithmRejected(_))
        ));
        // HS256 signed with the public key bytes as the HMAC secret: the classic confusion attack.
        let public = URL_SAFE_NO_PAD.encode(&keys.published["k1"].public_key);
        let forged = sign_hs256(
            &SecretString::from(public),
            &serde_json::json!({"sub": "u", "exp": 99999999999i64}),
        );
        assert!(matches!(
            rules.verify(&forged, &keys, 1_000),
            Err(TokenError::AlgorithmRejected(_))
        ));
    }

    #[test]
    fn times_at_the_ends_of_the_number_line_are_answered_not_overflowed() {
        // Seen while writing the `tokens` fuzz target: `exp` of 1e300 became i64::MAX and `exp + leeway`
        // overflowed (a panic in debug builds, a wrapped "expired" in release ones).
        let keys = keyset();
        let rules = rules();
        let active = keys.active.as_ref().unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(active.kid.clone());
        let far = |exp: f64, nbf: f64| {
            let claims = serde_json::json!({
                "iss": "latchkey", "aud": "latchkey", "sub": "u", "exp": exp, "nbf": nbf,
            });
            jsonwebtoken::encode(&header, &claims, &active.encoding).unwrap()
        };
        let ok = rules.verify(&far(1e300, -1e300), &keys, 1_000).unwrap();
        assert_eq!(ok.expires_at, i64::MAX);
        assert_eq!(
            rules.verify(&far(-1e300, 0.0), &keys, 1_000),
            Err(TokenError::Expired(i64::MIN))
        );
        assert_eq!(
            rules.verify(&far(1e300, 1e300), &keys, 1_000),
            Err(TokenError::NotYetValid(i64::MAX))
        );
    }

    fn legacy(secret: &SecretString) -> TokenRules {
        TokenRules {
            legacy: Some(LegacyRules {
                secret: secret.clone(),
                issuer: Some("nextauth".into()),
                audience: "latchkey".into(),
                secret_variable: "NEXTAUTH_SECRET".into(),
            }),
            ..rules()
        }
    }

    #[test]
    fn legacy_tokens_need_the_shared_secret_and_carry_an_email() {
        let keys = keyset();
        let secret = SecretString::from("legacy-shared-secret-0123456789abcdef".to_owned());
        let rules = legacy(&secret);
        let token = sign_hs256(
            &secret,
            &serde_json::json!({"sub": "Ada@Example.com", "iss": "nextauth", "aud": "latchkey", "exp": 2_000, "iat": 1_000}),
        );
        let ok = rules.verify(&token, &keys, 1_500).unwrap();
        assert_eq!(ok.subject, Subject::LegacyEmail("ada@example.com".into()));
        let wrong = sign_hs256(
            &SecretString::from("another".to_owned()),
            &serde_json::json!({"sub": "a@b.c", "aud": "latchkey", "exp": 2_000}),
        );
        assert_eq!(
            rules.verify(&wrong, &keys, 1_500),
            Err(TokenError::WebAppSecretRejected(
                "HS256 legacy token",
                SecretHint::new(&secret, "NEXTAUTH_SECRET")
            ))
        );
        let bad_iss = sign_hs256(
            &secret,
            &serde_json::json!({"sub": "a@b.c", "iss": "evil", "aud": "latchkey", "exp": 2_000}),
        );
        assert!(matches!(
            rules.verify(&bad_iss, &keys, 1_500),
            Err(TokenError::IssuerUntrusted(_))
        ));
    }

    /// F3: any JWT the web app signs with the same secret and an email in it (an invite link)
    /// was a session. Only tokens carrying the legacy `aud` are.
    #[test]
    fn a_legacy_token_without_the_legacy_audience_is_refused() {
        let keys = keyset();
        let secret = SecretString::from("legacy-shared-secret-0123456789abcdef".to_owned());
        let rules = legacy(&secret);
        let invite = sign_hs256(
            &secret,
            &serde_json::json!({"email": "ada@example.com", "iss": "nextauth", "purpose": "invite", "exp": 2_000}),
        );
        assert_eq!(
            rules.verify(&invite, &keys, 1_500),
            Err(TokenError::LegacyAudienceMismatch("latchkey".into()))
        );
        let elsewhere = sign_hs256(
            &secret,
            &serde_json::json!({"email": "ada@example.com", "iss": "nextauth", "aud": ["newsletter"], "exp": 2_000}),
        );
        assert_eq!(
            rules.verify(&elsewhere, &keys, 1_500),
            Err(TokenError::LegacyAudienceMismatch("latchkey".into()))
        );
        let listed = sign_hs256(
            &secret,
            &serde_json::json!({"email": "ada@example.com", "iss": "nextauth", "aud": ["web", "latchkey"], "exp": 2_000}),
        );
        assert!(rules.verify(&listed, &keys, 1_500).is_ok());
    }

    #[test]
    fn authjs_tokens_map_to_their_email_and_expire() {
        use crate::authjs::{AuthJsRules, AuthJsVersions, V5_COOKIE_NAMES, encrypt_v4, encrypt_v5};
        let keys = keyset();
        let secret = SecretString::from("web-app-secret-0123456789abcdef0123".to_owned());
        let cookies: Vec<String> = V5_COOKIE_NAMES.iter().map(|c| (*c).to_owned()).collect();
        let hint = SecretHint::new(&secret, "AUTH_SECRET");
        let rules = TokenRules {
            authjs: Some(AuthJsRules::new(
                &secret,
                AuthJsVersions::Both,
                &cookies,
                hint,
            )),
            ..rules()
        };
        let body = serde_json::json!({"sub": "db-user-7", "email": "Ada@Example.com", "iat": 1_000, "exp": 2_000, "jti": "j"});
        for token in [
            encrypt_v4(&secret, &body),
            encrypt_v5(&secret, V5_COOKIE_NAMES[0], &body),
        ] {
            let ok = rules.verify(&token, &keys, 1_500).unwrap();
            assert_eq!(ok.subject, Subject::LegacyEmail("ada@example.com".into()));
            assert_eq!((ok.issued_at, ok.expires_at), (1_000, 2_000));
            assert_eq!(
                rules.verify(&token, &keys, 2_000 + 31),
                Err(TokenError::Expired(2_000))
            );
        }
        let no_email = encrypt_v4(
            &secret,
            &serde_json::json!({"sub": "db-user-7", "exp": 2_000}),
        );
        assert!(matches!(
            rules.verify(&no_email, &keys, 1_500),
            Err(TokenError::Malformed(_))
        ));
        let off = super::tests::rules();
        assert!(matches!(
            off.verify(&encrypt_v4(&secret, &body), &keys, 1_500),
            Err(TokenError::AuthJsOff(_))
        ));
        assert!(matches!(
            off.verify("a.b.c.d.e", &keys, 1_500),
            Err(TokenError::Malformed(_))
        ));
    }
}
