//! Secrets: fingerprints that let two machines compare secrets without showing them, and the
//! one constant-time comparison every secret check goes through; [`strength`] holds the
//! policy production applies to them.

pub mod strength;

pub use strength::{DEV_SECRET_PREFIX, weakness};

use ring::hmac;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// The fingerprint key: fixed and public, so any Latchkey binary computes the same fingerprint
/// for the same secret, while the digest is never a plain hash of the secret.
const FINGERPRINT_KEY: &[u8] = b"latchkey-fingerprint-v1";

/// A short, keyed, one-way digest of a secret (12 hex characters), safe to log and compare.
pub fn fingerprint(secret: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, FINGERPRINT_KEY);
    let tag = hmac::sign(&key, secret);
    tag.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// [`fingerprint`] of a string secret.
pub fn fingerprint_str(secret: &SecretString) -> String {
    fingerprint(secret.expose_secret().as_bytes())
}

/// Compares a presented secret with the expected one in constant time. Both sides are first
/// reduced to fixed-length HMAC digests, so neither the content nor the length leaks through
/// timing.
pub fn secrets_match(presented: &[u8], expected: &SecretString) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, b"latchkey-compare");
    let a = hmac::sign(&key, presented);
    let b = hmac::sign(&key, expected.expose_secret().as_bytes());
    a.as_ref().ct_eq(b.as_ref()).into()
}

/// Random bytes from the OS, as base64url: for generated dev secrets and ids.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    use ring::rand::SecureRandom;
    let mut buf = vec![0u8; bytes];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("the OS random source failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_short_stable_and_not_the_secret() {
        let fp = fingerprint(b"correct horse battery staple");
        assert_eq!(fp.len(), 12);
        assert_eq!(fp, fingerprint(b"correct horse battery staple"));
        assert_ne!(fp, fingerprint(b"correct horse battery stapla"));
        assert!(!"correct horse battery staple".contains(&fp));
    }

    #[test]
    fn secrets_match_only_on_equal_input_of_any_length() {
        let expected = SecretString::from("s3cret-value".to_owned());
        assert!(secrets_match(b"s3cret-value", &expected));
        assert!(!secrets_match(b"s3cret-valu", &expected));
        assert!(!secrets_match(b"s3cret-value-longer", &expected));
        assert!(!secrets_match(b"", &expected));
    }
}
