//! The scope names a service token can carry, defined once: auth grants them (from
//! `LATCHKEY_SERVICE_CLIENTS`), settings checks them and clients ask for them.

/// Reading a user's setting in plaintext (`RevealSetting`).
pub const SETTINGS_REVEAL: &str = "settings:reveal";
/// Reading the reveal audit log (`ListRevealAudit`).
pub const SETTINGS_AUDIT: &str = "settings:audit";
/// Deleting every setting of a user (`PurgeUser`); auth holds it for user deletion.
pub const SETTINGS_PURGE: &str = "settings:purge";
