//! AES-256-GCM sealing (ring) with a fresh random 96-bit nonce per seal and associated data that
//! binds a ciphertext to where it belongs. Used for auth's private signing keys and for settings
//! values.

use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

/// A 256-bit key. Zeroed on drop; Debug prints only its fingerprint.
#[derive(Clone)]
pub struct SealKey {
    bytes: Zeroizing<[u8; 32]>,
}

/// Why a key or a sealed blob was rejected. Never carries key or plaintext material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the key must be 32 bytes, given as 64 hex characters or base64 (got {0} bytes)")]
    KeyLength(usize),
    #[error("the key is neither hex nor base64")]
    KeyEncoding,
    #[error("the sealed value is too short to hold a nonce and tag")]
    Truncated,
    #[error("the sealed value failed authentication (wrong key, or moved to another owner)")]
    Tampered,
}

impl SealKey {
    /// Parses a key from 64 hex characters or (url-safe or standard) base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let mut decoded = Zeroizing::new(decode_key_text(text)?);
        if decoded.len() != 32 {
            let len = decoded.len();
            decoded.zeroize();
            return Err(SealError::KeyLength(len));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(&decoded);
        Ok(SealKey { bytes })
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .expect("the OS random source failed");
        SealKey { bytes }
    }

    /// The key as base64 (for writing generated dev keys to a 0600 file).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.bytes.as_ref()))
    }

    /// The key's fingerprint, safe to log.
    pub fn fingerprint(&self) -> String {
        crate::secret::fingerprint(self.bytes.as_ref())
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, self.bytes.as_ref()).expect("32-byte key"))
    }

    /// Seals `plaintext` bound to `aad`; the result is `nonce || ciphertext || tag`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the OS random source failed");
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .aead()
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[NONCE_LEN..],
            )
            .expect("aes-gcm seal cannot fail for in-range lengths");
        out.extend_from_slice(tag.as_ref());
        out
    }

    /// Opens a blob sealed with the same key and `aad`; the plaintext is zeroed when dropped.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(SealError::Truncated);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Truncated)?;
        let mut buf = Zeroizing::new(body.to_vec());
        let len = self
            .aead()
            .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
            .map_err(|_| SealError::Tampered)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

fn decode_key_text(text: &str) -> Result<Vec<u8>, SealError> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        return (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| SealError::KeyEncoding))
            .collect();
    }
    // Keys `latchkey dev` generates carry a prefix so production mode can recognise them.
    let text = text
        .strip_prefix(crate::secret::DEV_SECRET_PREFIX)
        .unwrap_or(text);
    let text = text.strip_prefix("base64:").unwrap_or(text);
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .map_err(|_| SealError::KeyEncoding)
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealKey(fingerprint={})", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let key = SealKey::generate();
        let sealed = key.seal(b"sk-live-123", b"user-a/NAME/k1");
        assert_eq!(
            key.open(&sealed, b"user-a/NAME/k1").unwrap().as_slice(),
            b"sk-live-123"
        );
        assert_eq!(
            key.open(&sealed, b"user-b/NAME/k1"),
            Err(SealError::Tampered)
        );
        assert_eq!(
            SealKey::generate().open(&sealed, b"user-a/NAME/k1"),
            Err(SealError::Tampered)
        );
        assert_eq!(key.open(&sealed[..10], b""), Err(SealError::Truncated));
    }

    #[test]
    fn nonces_are_fresh_per_seal() {
        let key = SealKey::generate();
        assert_ne!(key.seal(b"x", b""), key.seal(b"x", b""));
    }

    #[test]
    fn keys_parse_from_hex_and_base64_and_reject_wrong_lengths() {
        let key = SealKey::generate();
        let b64 = key.to_base64();
        assert_eq!(
            SealKey::parse(&b64).unwrap().fingerprint(),
            key.fingerprint()
        );
        assert!(SealKey::parse(&"ab".repeat(32)).is_ok());
        assert_eq!(
            SealKey::parse("c2hvcnQ=").unwrap_err(),
            SealError::KeyLength(5)
        );
        assert_eq!(
            SealKey::parse("not base64 !!").unwrap_err(),
            SealError::KeyEncoding
        );
    }

    #[test]
    fn dev_generated_keys_parse_with_their_prefix() {
        let key = SealKey::generate();
        let text = format!(
            "{}{}",
            crate::secret::DEV_SECRET_PREFIX,
            key.to_base64().as_str()
        );
        assert_eq!(
            SealKey::parse(&text).unwrap().fingerprint(),
            key.fingerprint()
        );
        assert_eq!(
            crate::secret::weakness(&text),
            Some("generated by `latchkey dev`")
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = SealKey::parse(&"ab".repeat(32)).unwrap();
        let debug = format!("{key:?}");
        assert!(
            !debug.contains("abab") && !debug.contains("q6ur"),
            "{debug}"
        );
    }
}
