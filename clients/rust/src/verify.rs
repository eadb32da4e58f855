//! The verify-only token rules, free of transport and storage: a Latchkey (EdDSA or ES256) token checked
//! against published keys for signature, algorithm, `kid`, expiry, issuer and audience, each
//! failure its own [`TokenError`]. Auth holds its own tokens to the same rules (and adds the web
//! app's HS256 and Auth.js tokens, whose secret only it holds), so the pieces it reuses are
//! public here.

use crate::claims::{Subject, VerifiedToken};
use crate::error::TokenError;
use crate::signature;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;

/// The JWS algorithm of auth's keys unless it is configured otherwise (`LATCHKEY_SIGNING_ALG`).
pub const ALGORITHM: &str = "EdDSA";

/// Every JWS algorithm auth's keys may have; each key says which is its own, and a token is
/// checked under its key's algorithm only.
pub const ALGORITHMS: &[&str] = &["EdDSA", "ES256"];

/// Longest token read at all: anything longer is malformed before any parsing.
pub const MAX_TOKEN_LEN: usize = 32 * 1024;

/// Where a verifier finds the public key a token's `kid` names.
pub trait KeyLookup {
    /// The key published under `kid`, if any.
    fn decoding_key(&self, kid: &str) -> Option<&DecodingKey>;

    /// The algorithm of the key published under `kid` (a token naming that key must use it).
    fn key_algorithm(&self, kid: &str) -> Option<Algorithm>;
}

/// What every Latchkey token is held to: its `iss`, an `aud` including ours, and `exp`/`nbf`
/// within `leeway` seconds of clock skew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRules {
    pub issuer: String,
    pub audience: String,
    pub leeway: i64,
}

/// The audience claim as other issuers send it: one string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Claims as presented; lenient in shape so a foreign token gets a precise reason, not a parse
/// error.
#[derive(Debug, Clone, Deserialize)]
pub struct PresentedClaims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Option<Audience>,
    pub exp: Option<f64>,
    pub nbf: Option<f64>,
    pub iat: Option<f64>,
    pub jti: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub email: Option<String>,
}

/// A token's JOSE header, as far as verification reads it.
#[derive(Debug, Deserialize)]
pub struct RawHeader {
    pub alg: String,
    pub kid: Option<String>,
}

impl VerifyRules {
    /// Verifies a Latchkey token against `keys` at `now` (unix seconds). Tokens the web app made
    /// (HS256, Auth.js) are refused: only auth holds the secret that opens them.
    pub fn verify(
        &self,
        token: &str,
        keys: &impl KeyLookup,
        now: i64,
    ) -> Result<VerifiedToken, TokenError> {
        let token = checked_length(token)?;
        if token.bytes().filter(|b| *b == b'.').count() == 4 {
            return Err(TokenError::AuthJsOff(
                "an encrypted Auth.js session token (JWE)",
            ));
        }
        let header = read_header(token)?;
        match header.alg.as_str() {
            alg if ALGORITHMS.contains(&alg) => self.verify_signed(token, header.kid, keys, now),
            "HS256" => Err(TokenError::AlgorithmRejected(
                "HS256 (legacy mode is off)".into(),
            )),
            other => Err(TokenError::AlgorithmRejected(printable(other))),
        }
    }

    /// The checks of [`VerifyRules::verify`] once the header is read: key by `kid`, the key's
    /// algorithm (a header naming another is refused), signature, times, issuer, audience,
    /// subject.
    pub fn verify_signed(
        &self,
        token: &str,
        kid: Option<String>,
        keys: &impl KeyLookup,
        now: i64,
    ) -> Result<VerifiedToken, TokenError> {
        let kid =
            kid.ok_or_else(|| TokenError::KeyUnknown("(none: the token has no kid)".into()))?;
        let (key, algorithm) = keys
            .decoding_key(&kid)
            .zip(keys.key_algorithm(&kid))
            .ok_or_else(|| TokenError::KeyUnknown(printable(&kid)))?;
        let claims = decode(token, key, algorithm)?;
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
            algorithm: algorithm_name(algorithm),
        })
    }

    /// Returns (exp, iat); `exp` is required, `nbf` optional, both with leeway. Times are
    /// floats clamped to i64 (NaN is 0) and compared with saturating sums, so a claim of 1e300
    /// is "never expires", not an overflow.
    pub fn check_times(
        &self,
        claims: &PresentedClaims,
        now: i64,
    ) -> Result<(i64, i64), TokenError> {
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

/// The token without surrounding blanks; refused when empty or longer than [`MAX_TOKEN_LEN`].
pub fn checked_length(token: &str) -> Result<&str, TokenError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("the token is longer than 32 KiB"));
    }
    Ok(token)
}

/// Reads the header ourselves: jsonwebtoken refuses unknown algorithms (such as `none`) with a
/// parse error, and we want those reported as TOKEN_ALGORITHM_REJECTED.
pub fn read_header(token: &str) -> Result<RawHeader, TokenError> {
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

/// Checks the signature with `key` under `algorithm` and reads the claims; every other check is
/// ours, so each failure keeps its own reason. ES256 signatures are checked with ring
/// ([`crate::signature`], faster); EdDSA and auth's legacy HS256 go through jsonwebtoken.
pub fn decode(
    token: &str,
    key: &DecodingKey,
    algorithm: Algorithm,
) -> Result<PresentedClaims, TokenError> {
    if let Some(verifier) = signature::ring_algorithm(algorithm) {
        let payload = signature::check(token, key, algorithm, verifier)?;
        let claims = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed("a part is not base64url"))?;
        return serde_json::from_slice(&claims)
            .map_err(|_| TokenError::Malformed("the payload is not a JSON object of claims"));
    }
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<PresentedClaims>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|error| reason(&error, algorithm))
}

/// The catalogue reason of a jsonwebtoken failure while checking a token under `algorithm`.
pub(crate) fn reason(error: &jsonwebtoken::errors::Error, algorithm: Algorithm) -> TokenError {
    match error.kind() {
        ErrorKind::InvalidSignature | ErrorKind::InvalidEddsaKey | ErrorKind::InvalidEcdsaKey => {
            TokenError::SignatureInvalid
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            TokenError::AlgorithmRejected(format!(
                "a header algorithm other than its key's ({})",
                algorithm_name(algorithm)
            ))
        }
        ErrorKind::Base64(_) => TokenError::Malformed("a part is not base64url"),
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            TokenError::Malformed("the payload is not a JSON object of claims")
        }
        _ => TokenError::Malformed("the token cannot be decoded"),
    }
}

/// The JWS name of one of [`ALGORITHMS`].
fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::ES256 => "ES256",
        _ => ALGORITHM,
    }
}

/// Whether `aud` (one string or a list) includes `expected`.
pub fn audience_contains(aud: Option<&Audience>, expected: &str) -> bool {
    match aud {
        Some(Audience::One(one)) => one == expected,
        Some(Audience::Many(many)) => many.iter().any(|a| a == expected),
        None => false,
    }
}

/// The `scope` claim as a list.
pub fn split_scopes(scope: Option<&str>) -> Vec<String> {
    scope
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Caller-supplied text in messages: short and printable only.
pub fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::{JwkSet, PublicKey};
    use jsonwebtoken::{EncodingKey, Header};
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn signer() -> (EncodingKey, JwkSet) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public = PublicKey::ed25519("k1", pair.public_key().as_ref().to_vec());
        (
            EncodingKey::from_ed_der(pkcs8.as_ref()),
            [public].into_iter().collect(),
        )
    }

    fn sign(key: &EncodingKey, kid: &str, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    fn rules() -> VerifyRules {
        VerifyRules {
            issuer: "latchkey".into(),
            audience: "latchkey".into(),
            leeway: 30,
        }
    }

    #[test]
    fn a_user_and_a_service_token_verify_and_each_failure_has_its_reason() {
        let (key, keys) = signer();
        let claims = serde_json::json!({"iss": "latchkey", "aud": "latchkey", "sub": "u1",
            "exp": 2_000, "iat": 1_000, "nbf": 1_000, "jti": "j", "scope": ""});
        let token = sign(&key, "k1", claims.clone());
        let ok = rules().verify(&token, &keys, 1_500).unwrap();
        assert_eq!(ok.subject, Subject::User("u1".into()));
        let mut service = claims.clone();
        service["client_id"] = "deployer".into();
        service["scope"] = "settings:reveal settings:audit".into();
        let ok = rules()
            .verify(&sign(&key, "k1", service), &keys, 1_500)
            .unwrap();
        assert_eq!(ok.subject, Subject::Service("deployer".into()));
        assert_eq!(ok.scopes, ["settings:reveal", "settings:audit"]);

        assert_eq!(
            rules().verify(&token, &keys, 2_031),
            Err(TokenError::Expired(2_000))
        );
        assert_eq!(
            rules().verify(&sign(&key, "k2", claims.clone()), &keys, 1_500),
            Err(TokenError::KeyUnknown("k2".into()))
        );
        let other = VerifyRules {
            audience: "other".into(),
            ..rules()
        };
        assert_eq!(
            other.verify(&token, &keys, 1_500),
            Err(TokenError::AudienceMismatch("other".into()))
        );
        assert_eq!(rules().verify(" ", &keys, 1_500), Err(TokenError::Missing));
    }

    /// A P-256 key beside the Ed25519 one: its ES256 tokens verify, and neither key accepts a
    /// token whose header names the other's algorithm.
    #[test]
    fn es256_tokens_verify_under_their_key_only() {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let ed_pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let ed_pair = Ed25519KeyPair::from_pkcs8(ed_pkcs8.as_ref()).unwrap();
        let ed_key = EncodingKey::from_ed_der(ed_pkcs8.as_ref());
        let keys: JwkSet = [
            PublicKey::ed25519("k1", ed_pair.public_key().as_ref().to_vec()),
            PublicKey::p256("k2", pair.public_key().as_ref().to_vec()),
        ]
        .into_iter()
        .collect();
        let claims = serde_json::json!({"iss": "latchkey", "aud": "latchkey", "sub": "u1",
            "exp": 2_000, "iat": 1_000});
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k2".into());
        let es_key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let token = jsonwebtoken::encode(&header, &claims, &es_key).unwrap();
        let ok = rules().verify(&token, &keys, 1_500).unwrap();
        assert_eq!(ok.algorithm, "ES256");
        assert_eq!(
            rules()
                .verify(&sign(&ed_key, "k1", claims.clone()), &keys, 1_500)
                .unwrap()
                .algorithm,
            "EdDSA"
        );
        // The ES256 token relabelled with the Ed25519 key's kid, and the reverse.
        header.kid = Some("k1".into());
        let confused = jsonwebtoken::encode(&header, &claims, &es_key).unwrap();
        assert!(matches!(
            rules().verify(&confused, &keys, 1_500),
            Err(TokenError::AlgorithmRejected(_))
        ));
        assert!(matches!(
            rules().verify(&sign(&ed_key, "k2", claims), &keys, 1_500),
            Err(TokenError::AlgorithmRejected(_))
        ));
    }

    #[test]
    fn tokens_only_auth_can_open_are_refused_by_name() {
        let (_, keys) = signer();
        let hs256 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "a@b.c", "exp": 2_000}),
            &EncodingKey::from_secret(b"web-app-secret"),
        )
        .unwrap();
        assert!(matches!(
            rules().verify(&hs256, &keys, 1_500),
            Err(TokenError::AlgorithmRejected(_))
        ));
        assert!(matches!(
            rules().verify("a.b.c.d.e", &keys, 1_500),
            Err(TokenError::AuthJsOff(_))
        ));
    }
}
