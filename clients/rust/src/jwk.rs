//! Reading auth's published keys (RFC 7517 JWKs, Ed25519 only) into a set a verifier looks
//! `kid`s up in.

use crate::verify::{ALGORITHM, KeyLookup};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use latchkey_proto::auth::v1::Jwk;
use std::collections::HashMap;

/// One published Ed25519 public key.
#[derive(Clone)]
pub struct PublicKey {
    pub kid: String,
    /// Raw 32-byte Ed25519 public key.
    pub public_key: Vec<u8>,
    pub decoding: DecodingKey,
}

impl PublicKey {
    /// A key from its raw 32 bytes.
    pub fn ed25519(kid: impl Into<String>, public_key: Vec<u8>) -> Self {
        PublicKey {
            kid: kid.into(),
            decoding: DecodingKey::from_ed_der(&public_key),
            public_key,
        }
    }

    /// The key a JWK describes, when it is an Ed25519 signing key for EdDSA (others are skipped,
    /// as RFC 7517 asks of keys a reader does not understand).
    pub fn from_jwk(jwk: &Jwk) -> Option<Self> {
        if jwk.kty != "OKP" || jwk.crv != "Ed25519" || jwk.alg != ALGORITHM {
            return None;
        }
        let public_key = URL_SAFE_NO_PAD
            .decode(&jwk.x)
            .ok()
            .filter(|k| k.len() == 32)?;
        Some(PublicKey::ed25519(jwk.kid.clone(), public_key))
    }
}

/// Keys by `kid`.
#[derive(Clone, Default)]
pub struct JwkSet {
    keys: HashMap<String, PublicKey>,
}

impl JwkSet {
    /// The usable keys of a JWKS.
    pub fn from_jwks(jwks: &[Jwk]) -> Self {
        jwks.iter().filter_map(PublicKey::from_jwk).collect()
    }

    /// The `kid`s held, sorted.
    pub fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.keys.keys().cloned().collect();
        kids.sort();
        kids
    }
}

impl FromIterator<PublicKey> for JwkSet {
    fn from_iter<I: IntoIterator<Item = PublicKey>>(keys: I) -> Self {
        JwkSet {
            keys: keys.into_iter().map(|k| (k.kid.clone(), k)).collect(),
        }
    }
}

impl KeyLookup for JwkSet {
    fn decoding_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys.get(kid).map(|k| &k.decoding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(kty: &str, x: &str) -> Jwk {
        Jwk {
            kty: kty.into(),
            crv: "Ed25519".into(),
            alg: ALGORITHM.into(),
            kid: "k1".into(),
            x: x.into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_ed25519_keys_of_32_bytes_are_read() {
        let x = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let set = JwkSet::from_jwks(&[
            jwk("OKP", &x),
            jwk("RSA", &x),
            jwk("OKP", &URL_SAFE_NO_PAD.encode([7u8; 31])),
        ]);
        assert_eq!(set.kids(), ["k1"]);
    }
}
