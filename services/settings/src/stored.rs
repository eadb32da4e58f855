//! Opening a stored value: with the master key its row names, then checked against the row's
//! masking columns (which sit outside the AEAD). Any failure is DATA_INTEGRITY, logged with names
//! only — never the value.

use crate::config::MasterKeys;
use crate::crypto;
use crate::error::SettingsError;
use crate::store::values;
use zeroize::Zeroizing;

/// Opens a stored row with the key it names; a failure is DATA_INTEGRITY, logged (names only).
pub fn open_row(
    keys: &MasterKeys,
    row: &values::Model,
) -> Result<Zeroizing<String>, SettingsError> {
    let integrity = || SettingsError::DataIntegrity {
        user_id: row.user_id.clone(),
        name: row.name.clone(),
    };
    let Some(key) = keys.get(&row.key_id) else {
        tracing::error!(user_id = %row.user_id, name = %row.name, key_id = %row.key_id, "stored value names a master key that is not configured");
        return Err(integrity());
    };
    let value = crypto::open(key, &row.user_id, &row.name, &row.ciphertext).map_err(|error| {
        tracing::error!(user_id = %row.user_id, name = %row.name, key_id = %row.key_id, %error, "stored value failed its integrity check");
        integrity()
    })?;
    // The masking columns sit outside the AEAD; a mismatch means someone edited the row.
    if crypto::mask_parts(&value) != (row.length, row.last4.clone()) {
        tracing::error!(user_id = %row.user_id, name = %row.name, "stored length or last characters do not match the sealed value; the row was edited");
        return Err(integrity());
    }
    Ok(value)
}
