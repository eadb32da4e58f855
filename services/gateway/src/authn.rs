//! Bearer verification: the token is checked by auth's `Authenticate` (signature, expiry, user
//! exists, not disabled, not revoked), and a success is reused from latchkey-client's
//! [`VerdictCache`] for at most [`crate::config::MAX_AUTH_CACHE`] — the documented bound within
//! which a revocation or a deletion takes effect — keyed by a SHA-256 of the token, never the
//! token.
//!
//! Separately, a token auth accepted stays *vouched for* until its own expiry: it is still
//! checked with auth every time, but it never waits behind its address's failed-authentication
//! budget — failures from a shared address (a NAT, an office) must not lock out its valid users.

use latchkey_client::VerdictCache;
use latchkey_common::clock::SharedClock;
use std::time::Duration;

/// The gateway's verdict cache, trusting an answer for `ttl` (0 disables reuse) on `clock`.
pub fn verdict_cache(ttl: Duration, clock: SharedClock) -> VerdictCache {
    VerdictCache::new(ttl.min(crate::config::MAX_AUTH_CACHE), clock)
}
