//! Bearer verification: the token is checked by auth's `Authenticate` (signature, expiry,
//! user exists, not disabled, not revoked), and a success is reused for at most
//! [`crate::config::MAX_AUTH_CACHE`] — the documented bound within which a revocation or a
//! deletion takes effect. The cache is keyed by a SHA-256 of the token, never the token.
//!
//! Separately, a token auth accepted stays *vouched for* until its own expiry: it is still
//! checked with auth every time, but it never waits behind its address's failed-authentication
//! budget — failures from a shared address (a NAT, an office) must not lock out its valid users.

use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before expired ones are swept.
const MAX_ENTRIES: usize = 50_000;

/// How long a token is vouched for when auth did not say when it expires.
const VOUCH_WITHOUT_EXPIRY: Duration = Duration::from_secs(900);

type TokenHash = [u8; 32];

/// Recently verified tokens.
#[derive(Debug)]
pub struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<TokenHash, Entry>>,
    vouched: Mutex<HashMap<TokenHash, Instant>>,
}

/// What a cache hit answers: auth's verdict still stands, and the token to forward upstream in
/// place of a legacy one, if auth exchanged it.
#[derive(Debug, Clone)]
pub struct Verified {
    pub exchanged: Option<SecretString>,
}

#[derive(Debug)]
struct Entry {
    until: Instant,
    verified: Verified,
}

impl TokenCache {
    /// A cache trusting an answer for `ttl` (0 disables caching).
    pub fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
            vouched: Mutex::new(HashMap::new()),
        }
    }

    /// Auth's answer for `token` if it was verified less than the TTL ago (and has not expired
    /// since).
    pub fn fresh(&self, token: &str) -> Option<Verified> {
        if self.ttl.is_zero() {
            return None;
        }
        let key = hash(token);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&key)
            .filter(|entry| entry.until > Instant::now())
            .map(|entry| entry.verified.clone())
    }

    /// Whether auth accepted `token` before and it has not expired or been refused since.
    pub fn is_vouched(&self, token: &str) -> bool {
        let vouched = self.vouched.lock().unwrap_or_else(|e| e.into_inner());
        vouched
            .get(&hash(token))
            .is_some_and(|until| *until > Instant::now())
    }

    /// Records a success; `expires_in` caps the entry at the token's own expiry.
    pub fn remember(
        &self,
        token: &str,
        expires_in: Option<Duration>,
        exchanged: Option<SecretString>,
    ) {
        self.vouch(token, expires_in.unwrap_or(VOUCH_WITHOUT_EXPIRY));
        if self.ttl.is_zero() {
            return;
        }
        let ttl = expires_in.map_or(self.ttl, |left| left.min(self.ttl));
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, entry| entry.until > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            hash(token),
            Entry {
                until: now + ttl,
                verified: Verified { exchanged },
            },
        );
    }

    fn vouch(&self, token: &str, left: Duration) {
        let now = Instant::now();
        let mut vouched = self.vouched.lock().unwrap_or_else(|e| e.into_inner());
        if vouched.len() >= MAX_ENTRIES {
            vouched.retain(|_, until| *until > now);
            if vouched.len() >= MAX_ENTRIES {
                vouched.clear();
            }
        }
        vouched.insert(hash(token), now + left);
    }

    /// Drops a token (after `DELETE /api/auth/me`, or when auth refuses it).
    pub fn forget(&self, token: &str) {
        let key = hash(token);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&key);
        drop(entries);
        let mut vouched = self.vouched.lock().unwrap_or_else(|e| e.into_inner());
        vouched.remove(&key);
    }
}

fn hash(token: &str) -> TokenHash {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_for_at_most_the_ttl_and_forgets_on_request() {
        let cache = TokenCache::new(Duration::from_millis(50));
        assert!(cache.fresh("t").is_none());
        cache.remember("t", None, None);
        assert!(cache.fresh("t").is_some());
        assert!(cache.fresh("u").is_none());
        cache.forget("t");
        assert!(cache.fresh("t").is_none());
        cache.remember("t", Some(Duration::ZERO), None);
        assert!(
            cache.fresh("t").is_none(),
            "an expiring token is not cached past its expiry"
        );
        cache.remember("t", None, None);
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.fresh("t").is_none());
    }

    #[test]
    fn a_verified_token_stays_vouched_for_until_it_expires_or_is_refused() {
        let cache = TokenCache::new(Duration::ZERO);
        cache.remember("t", Some(Duration::from_secs(60)), None);
        assert!(cache.fresh("t").is_none(), "no answer reuse with ttl 0");
        assert!(cache.is_vouched("t"), "but vouched for");
        assert!(!cache.is_vouched("u"));
        cache.forget("t");
        assert!(!cache.is_vouched("t"));
        cache.remember("e", Some(Duration::ZERO), None);
        assert!(!cache.is_vouched("e"), "expired");
    }

    #[test]
    fn zero_ttl_never_caches() {
        let cache = TokenCache::new(Duration::ZERO);
        cache.remember("t", None, None);
        assert!(cache.fresh("t").is_none());
    }
}
