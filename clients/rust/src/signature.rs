//! The signature check of an ES256 token, done with `ring` rather than jsonwebtoken's RustCrypto
//! p256 (about seven times faster). EdDSA stays with jsonwebtoken: ed25519-dalek verifies faster
//! than ring does. Only the signature is checked here; the claims are read and held to the rules
//! in [`crate::verify`].

use crate::error::TokenError;
use crate::verify;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, errors::ErrorKind};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey, VerificationAlgorithm};

/// The ring verifier for `algorithm`, when ring is the faster way to check it (ES256 only).
pub fn ring_algorithm(algorithm: Algorithm) -> Option<&'static dyn VerificationAlgorithm> {
    match algorithm {
        Algorithm::ES256 => Some(&ECDSA_P256_SHA256_FIXED),
        _ => None,
    }
}

/// Checks that `token`'s header names `algorithm` and that its signature verifies under `key`
/// (the uncompressed P-256 point `04 ‖ x ‖ y` of its JWK); returns the encoded payload.
/// Failures map as jsonwebtoken's did: another algorithm → TOKEN_ALGORITHM_REJECTED, a part that
/// is not base64url → TOKEN_MALFORMED, a signature that does not verify (tampered, wrong length,
/// unusable key) → TOKEN_SIGNATURE_INVALID.
pub fn check<'t>(
    token: &'t str,
    key: &DecodingKey,
    algorithm: Algorithm,
    verifier: &'static dyn VerificationAlgorithm,
) -> Result<&'t str, TokenError> {
    let cannot_decode = TokenError::Malformed("the token cannot be decoded");
    let (message, signature) = token.rsplit_once('.').ok_or(cannot_decode.clone())?;
    let (_, payload) = message.rsplit_once('.').ok_or(cannot_decode)?;
    let header =
        jsonwebtoken::decode_header(token).map_err(|error| verify::reason(&error, algorithm))?;
    if header.alg != algorithm || key.family() != algorithm.family() {
        return Err(verify::reason(
            &ErrorKind::InvalidAlgorithm.into(),
            algorithm,
        ));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed("a part is not base64url"))?;
    let public_key = key
        .try_get_as_bytes()
        .map_err(|_| TokenError::SignatureInvalid)?;
    UnparsedPublicKey::new(verifier, public_key)
        .verify(message.as_bytes(), &signature)
        .map_err(|_| TokenError::SignatureInvalid)?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use crate::error::TokenError;
    use crate::jwk::{JwkSet, PublicKey};
    use crate::verify::VerifyRules;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    /// An ES256 token under a fresh P-256 key `k1`, and the set publishing that key.
    fn es256_token() -> (String, JwkSet) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let keys = [PublicKey::p256("k1", pair.public_key().as_ref().to_vec())]
            .into_iter()
            .collect();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        let claims = serde_json::json!({"iss": "latchkey", "aud": "latchkey", "sub": "u1",
            "exp": 2_000, "iat": 1_000});
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        (jsonwebtoken::encode(&header, &claims, &key).unwrap(), keys)
    }

    fn rules() -> VerifyRules {
        VerifyRules {
            issuer: "latchkey".into(),
            audience: "latchkey".into(),
            leeway: 30,
        }
    }

    /// The token with its signature replaced by `signature` (raw bytes, re-encoded).
    fn resigned(token: &str, signature: &[u8]) -> String {
        let (message, _) = token.rsplit_once('.').unwrap();
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn signature_of(token: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode(token.rsplit_once('.').unwrap().1)
            .unwrap()
    }

    #[test]
    fn a_tampered_es256_signature_or_payload_is_refused() {
        let (token, keys) = es256_token();
        assert_eq!(
            rules().verify(&token, &keys, 1_500).unwrap().algorithm,
            "ES256"
        );
        let mut signature = signature_of(&token);
        signature[40] ^= 1;
        assert_eq!(
            rules().verify(&resigned(&token, &signature), &keys, 1_500),
            Err(TokenError::SignatureInvalid)
        );
        // The same signature over another payload (sub u2 instead of u1).
        let (header, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let payload = URL_SAFE_NO_PAD
            .encode(br#"{"iss":"latchkey","aud":"latchkey","sub":"u2","exp":2000,"iat":1000}"#);
        assert_eq!(
            rules().verify(&format!("{header}.{payload}.{sig}"), &keys, 1_500),
            Err(TokenError::SignatureInvalid)
        );
    }

    #[test]
    fn an_es256_signature_of_the_wrong_length_or_encoding_is_refused() {
        let (token, keys) = es256_token();
        let signature = signature_of(&token);
        assert_eq!(signature.len(), 64);
        let longer = [signature.as_slice(), &[0]].concat();
        let wrong_lengths: [&[u8]; 3] = [&signature[..63], &longer, &[]];
        for wrong in wrong_lengths {
            assert_eq!(
                rules().verify(&resigned(&token, wrong), &keys, 1_500),
                Err(TokenError::SignatureInvalid)
            );
        }
        let (message, _) = token.rsplit_once('.').unwrap();
        assert_eq!(
            rules().verify(&format!("{message}.not*base64"), &keys, 1_500),
            Err(TokenError::Malformed("a part is not base64url"))
        );
    }
}
