//! Token rules, free of transport and storage: what auth signs, and the checks a presented token
//! must pass, each failure its own [`TokenError`] (never a generic "invalid token").
//!
//! Three shapes are read: Latchkey's own tokens (EdDSA or ES256, by the key's algorithm), the web app's HS256 tokens (legacy mode,
//! bound to Latchkey by a required `aud`) and the web app's Auth.js session tokens (encrypted,
//! see [`crate::authjs`]). The web app's two kinds name the user by email.

use crate::authjs::AuthJsRules;
use crate::keys::{ActiveKey, KeySet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use latchkey_client::verify::{
    VerifyRules, audience_contains, checked_length, decode, printable, read_header, split_scopes,
};
use secrecy::{ExposeSecret, SecretString};

/// The claims, the verified token and every refusal are the verify-only side's, shared with
/// every verifier through latchkey-client.
pub use latchkey_client::{IssuedClaims, SecretHint, Subject, TokenError, VerifiedToken};

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
    sign_json(key, claims)
}

/// A compact JWS of any claims with `key` (its `alg` and `kid` in the header); [`sign`]'s body,
/// open to tests and fuzzing that need claims Latchkey would never issue.
pub fn sign_json(key: &ActiveKey, claims: &impl serde::Serialize) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = serde_json::json!({"typ": "JWT", "alg": key.algorithm.as_str(), "kid": key.kid});
    let payload = serde_json::to_vec(claims).expect("claims serialise to JSON");
    let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    token
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
        let token = checked_length(token)?;
        if token.bytes().filter(|b| *b == b'.').count() == 4 {
            return self.verify_authjs(token, now);
        }
        let header = read_header(token)?;
        match header.alg.as_str() {
            alg if latchkey_client::verify::ALGORITHMS.contains(&alg) => self
                .verify_rules()
                .verify_signed(token, header.kid, keys, now),
            "HS256" => match &self.legacy {
                Some(legacy) => self.verify_legacy(token, legacy, now),
                None => Err(TokenError::AlgorithmRejected(
                    "HS256 (legacy mode is off)".into(),
                )),
            },
            other => Err(TokenError::AlgorithmRejected(printable(other))),
        }
    }

    /// The verify-only part of these rules, as every other verifier holds them.
    pub fn verify_rules(&self) -> VerifyRules {
        VerifyRules {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            leeway: self.leeway,
        }
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
        let claims: latchkey_client::verify::PresentedClaims =
            serde_json::from_slice(&opened.payload).map_err(|_| {
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

    /// Returns (exp, iat); `exp` is required, `nbf` optional, both with leeway.
    fn check_times(
        &self,
        claims: &latchkey_client::verify::PresentedClaims,
        now: i64,
    ) -> Result<(i64, i64), TokenError> {
        self.verify_rules().check_times(claims, now)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{ActiveKey, KeySet, SigningAlg};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use std::sync::Arc;

    fn keyset_of(algorithm: SigningAlg) -> KeySet {
        let (active, public) = ActiveKey::generate("k1", algorithm);
        let mut set = KeySet {
            active: Some(Arc::new(active)),
            ..Default::default()
        };
        set.published.insert("k1".into(), public);
        set
    }

    fn keyset() -> KeySet {
        keyset_of(SigningAlg::EdDSA)
    }

    /// During a switch of algorithm both kinds verify against one set, and a token cannot pass
    /// for the other kind: its key's algorithm decides.
    #[test]
    fn es256_and_eddsa_tokens_verify_side_by_side() {
        let rules = rules();
        let (ed, ed_public) = ActiveKey::generate("ed", SigningAlg::EdDSA);
        let (es, es_public) = ActiveKey::generate("es", SigningAlg::Es256);
        let mut set = KeySet::default();
        set.published.insert("ed".into(), ed_public);
        set.published.insert("es".into(), es_public);
        let claims = rules.claims("user-1".into(), String::new(), None, 1_000);
        for (key, alg) in [(&ed, "EdDSA"), (&es, "ES256")] {
            let token = sign(key, &claims);
            let verified = rules.verify(&token, &set, 1_100).unwrap();
            assert_eq!(verified.algorithm, alg);
            assert_eq!(verified.subject, Subject::User("user-1".into()));
        }
        // An ES256 signature presented under the Ed25519 key's kid: refused by algorithm.
        let es_token = sign(&es, &claims);
        let (_, rest) = es_token.split_once('.').unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"ed"}"#);
        assert!(matches!(
            rules.verify(&format!("{header}.{rest}"), &set, 1_100),
            Err(TokenError::AlgorithmRejected(_))
        ));
        // A tampered ES256 signature is a signature failure, not a malformed token.
        let mut tampered = es_token.clone();
        let at = tampered.len() - 10;
        let swapped = if &tampered[at..at + 1] == "A" {
            "B"
        } else {
            "A"
        };
        tampered.replace_range(at..at + 1, swapped);
        assert_eq!(
            rules.verify(&tampered, &set, 1_100),
            Err(TokenError::SignatureInvalid)
        );
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
        let far = |exp: f64, nbf: f64| {
            let claims = serde_json::json!({
                "iss": "latchkey", "aud": "latchkey", "sub": "u", "exp": exp, "nbf": nbf,
            });
            sign_json(active, &claims)
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
