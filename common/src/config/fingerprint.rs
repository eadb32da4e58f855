//! The fingerprint a secret setting shows (`latchkey fingerprint`, each service's startup line).
//!
//! Keys are digested the way the services record them: a seal key or a master key that parses
//! as 32 bytes is fingerprinted from its decoded bytes ([`SealKey::fingerprint`], the scheme of
//! the stored `seal_fingerprint` column, `latchkey keys status` and auth's "cannot be opened"
//! refusal), so hex and base64 spellings of one key print the same. Every other secret, and a
//! key that does not parse, is fingerprinted from its text.

use super::{ENCRYPTION_KEYS, SEAL_KEY, SettingSpec};
use crate::seal::SealKey;
use crate::secret::fingerprint;

/// The fingerprint `spec`'s `value` shows; never the value itself.
pub fn of(spec: &SettingSpec, value: &str) -> String {
    if spec.key == SEAL_KEY.key() {
        return key_fingerprint(value);
    }
    if spec.key == ENCRYPTION_KEYS.key() {
        return master_keys(value);
    }
    fingerprint(value.as_bytes())
}

/// One key's fingerprint: of its decoded bytes when it parses, else of its text.
fn key_fingerprint(text: &str) -> String {
    SealKey::parse(text)
        .map(|key| key.fingerprint())
        .unwrap_or_else(|_| fingerprint(text.as_bytes()))
}

/// `id:fingerprint` per master key (`id:key,id2:key2`), as the settings service logs its active
/// key; a lone key without an id prints its fingerprint alone.
fn master_keys(value: &str) -> String {
    let entries: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    entries
        .iter()
        .map(|entry| match entry.split_once(':') {
            Some((id, key)) if id != "base64" => format!("{}:{}", id.trim(), key_fingerprint(key)),
            _ => key_fingerprint(entry),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE64: &str = "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    const HEX: &str = "deadbeef00000000000000000000000000000000000000000000000000000000";

    #[test]
    fn a_seal_key_shows_the_fingerprint_its_sealed_keys_record() {
        let recorded = SealKey::parse(BASE64).unwrap().fingerprint();
        assert_eq!(of(SEAL_KEY.spec(), BASE64), recorded);
        assert_eq!(
            of(SEAL_KEY.spec(), HEX),
            recorded,
            "hex spelling of the same key"
        );
        assert_ne!(recorded, fingerprint(BASE64.as_bytes()));
    }

    #[test]
    fn master_keys_show_each_id_with_its_key_fingerprint() {
        let recorded = SealKey::parse(BASE64).unwrap().fingerprint();
        let value = format!("old:{HEX}, new:{BASE64}");
        assert_eq!(
            of(ENCRYPTION_KEYS.spec(), &value),
            format!("old:{recorded},new:{recorded}")
        );
        assert_eq!(of(ENCRYPTION_KEYS.spec(), BASE64), recorded);
    }

    #[test]
    fn other_secrets_and_unparsable_keys_digest_their_text() {
        for spec in [super::super::SYNC_SECRET.spec(), SEAL_KEY.spec()] {
            assert_eq!(of(spec, "not a key"), fingerprint(b"not a key"));
        }
    }
}
