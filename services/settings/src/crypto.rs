//! Sealing one setting value: AES-256-GCM (via [`latchkey_common::seal`]) with associated data
//! binding the ciphertext to (user id, setting name, key id), and the masked form the browser
//! sees, computed at write time so reads never decrypt.

use crate::config::MasterKey;
use latchkey_common::seal::SealError;
use zeroize::Zeroizing;

/// Values shorter than this show no characters at all when masked (docs/ARCHITECTURE.md §2).
pub const MASK_MIN_LENGTH: usize = 12;
/// How many trailing characters a long value shows.
pub const MASK_TAIL: usize = 4;

/// Associated data: a version tag, then each part length-prefixed (u32 big endian), so no
/// choice of user id or name can collide with another (`a`+`bc` ≠ `ab`+`c`).
pub fn aad(user_id: &str, name: &str, key_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + user_id.len() + name.len() + key_id.len());
    out.extend_from_slice(b"latchkey-settings-v1");
    for part in [user_id, name, key_id] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Seals `value` for `user_id`/`name` under `key`: `nonce || ciphertext || tag`.
pub fn seal(key: &MasterKey, user_id: &str, name: &str, value: &str) -> Vec<u8> {
    key.key.seal(value.as_bytes(), &aad(user_id, name, &key.id))
}

/// Opens a stored value; fails when the row was moved to another user or name, re-labelled with
/// another key id, or altered.
pub fn open(
    key: &MasterKey,
    user_id: &str,
    name: &str,
    sealed: &[u8],
) -> Result<Zeroizing<String>, SealError> {
    let plain = key.key.open(sealed, &aad(user_id, name, &key.id))?;
    match std::str::from_utf8(&plain) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(SealError::Tampered),
    }
}

/// What masking keeps of a value: its length in characters and, for values of at least
/// [`MASK_MIN_LENGTH`] characters, the last [`MASK_TAIL`]; empty otherwise.
pub fn mask_parts(value: &str) -> (i64, String) {
    let length = value.chars().count();
    let last4 = if length >= MASK_MIN_LENGTH {
        value.chars().skip(length - MASK_TAIL).collect()
    } else {
        String::new()
    };
    (length as i64, last4)
}

/// The masked display form: `****` plus the kept tail; empty for an empty value.
pub fn masked(length: i64, last4: &str) -> String {
    if length == 0 {
        String::new()
    } else {
        format!("****{last4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_common::seal::SealKey;

    fn key(id: &str) -> MasterKey {
        MasterKey {
            id: id.into(),
            key: SealKey::generate(),
        }
    }

    #[test]
    fn aad_is_unambiguous() {
        assert_ne!(aad("a", "bc", "k1"), aad("ab", "c", "k1"));
        assert_ne!(aad("u", "N", "k1"), aad("u", "N", "k2"));
    }

    #[test]
    fn sealed_values_open_only_where_they_belong() {
        let k = key("k1");
        let sealed = seal(&k, "user-a", "FLY_API_TOKEN", "fo1_secret_value");
        assert_eq!(
            open(&k, "user-a", "FLY_API_TOKEN", &sealed)
                .unwrap()
                .as_str(),
            "fo1_secret_value"
        );
        assert!(open(&k, "user-b", "FLY_API_TOKEN", &sealed).is_err());
        assert!(open(&k, "user-a", "OTHER", &sealed).is_err());
        let relabelled = MasterKey {
            id: "k2".into(),
            key: k.key.clone(),
        };
        assert!(open(&relabelled, "user-a", "FLY_API_TOKEN", &sealed).is_err());
    }

    #[test]
    fn masking_shows_at_most_four_and_none_below_twelve() {
        assert_eq!(mask_parts("sk-live-abcdef123456"), (20, "3456".into()));
        assert_eq!(mask_parts("12345678901"), (11, String::new()));
        assert_eq!(mask_parts("123456789012"), (12, "9012".into()));
        assert_eq!(mask_parts("ééééééééééééé"), (13, "éééé".into()));
        assert_eq!(masked(20, "3456"), "****3456");
        assert_eq!(masked(5, ""), "****");
        assert_eq!(masked(0, ""), "");
    }
}
