//! Reading auth's published keys (RFC 7517 JWKs: Ed25519 for EdDSA, P-256 for ES256) into a
//! set a verifier looks `kid`s up in.

use crate::verify::{ALGORITHM, KeyLookup};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use latchkey_proto::auth::v1::Jwk;
use std::collections::HashMap;

/// One published public key.
#[derive(Clone)]
pub struct PublicKey {
    pub kid: String,
    /// Raw 32-byte Ed25519 public key, or the 65-byte uncompressed P-256 point.
    pub public_key: Vec<u8>,
    pub decoding: DecodingKey,
    /// The algorithm tokens under this key must use.
    pub algorithm: Algorithm,
}

impl PublicKey {
    /// A key from its raw 32 bytes.
    pub fn ed25519(kid: impl Into<String>, public_key: Vec<u8>) -> Self {
        PublicKey {
            kid: kid.into(),
            decoding: DecodingKey::from_ed_der(&public_key),
            public_key,
            algorithm: Algorithm::EdDSA,
        }
    }

    /// A P-256 key from its uncompressed point (`04 ‖ x ‖ y`, 65 bytes).
    pub fn p256(kid: impl Into<String>, point: Vec<u8>) -> Self {
        PublicKey {
            kid: kid.into(),
            decoding: DecodingKey::from_ec_der(&point),
            public_key: point,
            algorithm: Algorithm::ES256,
        }
    }

    /// The key a JWK describes, when it is an Ed25519 key for EdDSA or a P-256 key for ES256
    /// (others are skipped, as RFC 7517 asks of keys a reader does not understand).
    pub fn from_jwk(jwk: &Jwk) -> Option<Self> {
        let coordinate = |text: &str| {
            URL_SAFE_NO_PAD
                .decode(text)
                .ok()
                .filter(|bytes| bytes.len() == 32)
        };
        match (jwk.kty.as_str(), jwk.crv.as_str(), jwk.alg.as_str()) {
            ("OKP", "Ed25519", ALGORITHM) => {
                Some(PublicKey::ed25519(jwk.kid.clone(), coordinate(&jwk.x)?))
            }
            ("EC", "P-256", "ES256") => {
                let mut point = vec![0x04];
                point.extend(coordinate(&jwk.x)?);
                point.extend(coordinate(&jwk.y)?);
                Some(PublicKey::p256(jwk.kid.clone(), point))
            }
            _ => None,
        }
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

    fn key_algorithm(&self, kid: &str) -> Option<Algorithm> {
        self.keys.get(kid).map(|k| k.algorithm)
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

    #[test]
    fn p256_keys_need_both_coordinates_and_their_alg() {
        let x = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let ec = |kid: &str, alg: &str, y: &str| Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            alg: alg.into(),
            kid: kid.into(),
            x: x.clone(),
            y: y.into(),
            ..Default::default()
        };
        let set = JwkSet::from_jwks(&[
            ec("es", "ES256", &x),
            ec("no-y", "ES256", ""),
            ec("wrong-alg", "EdDSA", &x),
        ]);
        assert_eq!(set.kids(), ["es"]);
        assert_eq!(set.key_algorithm("es"), Some(Algorithm::ES256));
    }
}
