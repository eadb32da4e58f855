//! Token parsing and verification in auth: Latchkey's EdDSA tokens, legacy HS256 tokens and
//! Auth.js session tokens (JWE), under three rule sets (everything on; Auth.js v4 only; neither
//! legacy nor Auth.js). The first byte picks the rules and how the rest becomes a token: as it
//! is (most cases), as the claims of a token we sign or encrypt properly (so claim parsing and the time,
//! issuer and audience checks see hostile claims), or as the header of an otherwise valid token.
//! Nothing may panic, an error never shows the web app's secret, and every input stays within
//! the time budget (`latchkey_fuzz::budget`).
#![no_main]

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey_auth::authjs::{self, AuthJsRules, AuthJsVersions, V5_COOKIE_NAMES};
use latchkey_auth::keys::{ActiveKey, KeySet, PublishedKey, SigningAlg};
use latchkey_auth::tokens::{self, LegacyRules, SecretHint, TokenRules};
use latchkey_fuzz::budget;
use libfuzzer_sys::fuzz_target;
use ring::signature::{Ed25519KeyPair, KeyPair};
use secrecy::SecretString;
use serde_json::Value;
use std::sync::{Arc, LazyLock};

const WEB_APP_SECRET: &str = "fuzz-web-app-secret-9f8e7d6c5b4a39281706";
/// A fixed clock: 2026-01-01T00:00:00Z.
const NOW: i64 = 1_767_225_600;

struct Fixture {
    keys: KeySet,
    encoding: EncodingKey,
    /// Payload and signature of a valid token, for the hostile-header case.
    signed_tail: String,
    secret: SecretString,
    /// Everything on; Auth.js v4 only; neither legacy nor Auth.js.
    rules: [TokenRules; 3],
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(fixture);

fuzz_target!(|data: &[u8]| {
    budget::timed("tokens", data, check);
});

fn check(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let fixture = &*FIXTURE;
    let rules = &fixture.rules[usize::from(selector % 3)];
    let token = token_from(fixture, selector / 3, rest);
    if let Err(error) = rules.verify(&token, &fixture.keys, NOW) {
        let message = error.to_string();
        assert!(
            !message.contains(WEB_APP_SECRET),
            "an error shows the secret"
        );
    }
    let _ = authjs::check_shape(&token);
    let _ = AuthJsVersions::parse(&String::from_utf8_lossy(rest));
}

/// The token a case presents. Ed25519 signing is the one costly step (about a millisecond
/// instrumented), so it gets one case in 16; the header case reuses one signed payload.
fn token_from(fixture: &Fixture, how: u8, rest: &[u8]) -> String {
    match how % 16 {
        0..=5 => String::from_utf8_lossy(rest).into_owned(),
        6..=8 => tokens::sign_hs256(&fixture.secret, &claims(rest)),
        9 => {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some("k1".into());
            jsonwebtoken::encode(&header, &claims(rest), &fixture.encoding).unwrap_or_default()
        }
        10 | 11 => authjs::encrypt_v4(&fixture.secret, &claims(rest)),
        12 | 13 => authjs::encrypt_v5(&fixture.secret, V5_COOKIE_NAMES[0], &claims(rest)),
        _ => with_header(fixture, rest),
    }
}

/// The input as JSON claims when it parses, else as a JSON string.
fn claims(rest: &[u8]) -> Value {
    serde_json::from_slice(rest)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(rest).into_owned()))
}

/// The input (base64url) as the header of a validly signed token.
fn with_header(fixture: &Fixture, rest: &[u8]) -> String {
    use base64::Engine;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rest);
    format!("{header}.{}", fixture.signed_tail)
}

/// The payload and signature of a valid EdDSA token, signed once.
fn signed_tail(encoding: &EncodingKey) -> String {
    let claims = serde_json::json!({
        "iss": "latchkey", "aud": "latchkey", "sub": "u1", "exp": NOW + 60, "iat": NOW,
    });
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".into());
    let valid = jsonwebtoken::encode(&header, &claims, encoding).expect("ed25519 signing");
    valid
        .split_once('.')
        .map(|(_, tail)| tail.to_owned())
        .unwrap_or_default()
}

fn fixture() -> Fixture {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).expect("keygen");
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pkcs8");
    let public = pair.public_key().as_ref().to_vec();
    let encoding = EncodingKey::from_ed_der(pkcs8.as_ref());
    let active = ActiveKey::from_pkcs8("k1".into(), SigningAlg::EdDSA, pkcs8.as_ref())
        .expect("pkcs8");
    let mut keys = KeySet {
        active: Some(Arc::new(active)),
        ..Default::default()
    };
    keys.published.insert(
        "k1".into(),
        PublishedKey::new("k1".into(), SigningAlg::EdDSA, public, None),
    );
    let secret = SecretString::from(WEB_APP_SECRET);
    let rules = [
        rules(&secret, Some(AuthJsVersions::Both), true),
        rules(&secret, Some(AuthJsVersions::V4), false),
        rules(&secret, None, false),
    ];
    Fixture {
        keys,
        signed_tail: signed_tail(&encoding),
        encoding,
        secret,
        rules,
    }
}

fn rules(secret: &SecretString, authjs: Option<AuthJsVersions>, legacy: bool) -> TokenRules {
    let hint = SecretHint::new(secret, "AUTH_SECRET");
    let cookies: Vec<String> = V5_COOKIE_NAMES.iter().map(|c| (*c).to_owned()).collect();
    TokenRules {
        issuer: "latchkey".into(),
        audience: "latchkey".into(),
        ttl: 900,
        leeway: 60,
        legacy: legacy.then(|| LegacyRules {
            secret: secret.clone(),
            issuer: None,
            audience: "latchkey-legacy".into(),
            secret_variable: "NEXTAUTH_SECRET".into(),
        }),
        authjs: authjs.map(|versions| AuthJsRules::new(secret, versions, &cookies, hint.clone())),
    }
}
