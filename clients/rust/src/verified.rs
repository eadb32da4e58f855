//! Tokens whose signature and claims verified lately: a signature that verified once verifies
//! again, so a service answering many requests with the same token checks the signature (the
//! costliest step of a request, ~13 % of settings' CPU under load) once per token, not once per
//! request.
//!
//! Keys are SHA-256 digests of tokens, never tokens; the values are the verified claims (user
//! id, scopes, token id, times), which are no secret. Bounded in number ([`MAX_VERIFIED`]) and
//! idle entries dropped. A hit still holds the token to its expiry (with the rules' leeway, as a
//! fresh check would) and to its key still being published, so a retired signing key stops its
//! tokens here as it does without the cache. Whether the *user* is still allowed is not cached
//! here: that is [`crate::StillAllowed`], consulted on every request, its answer from auth at
//! most the revocation bound old (renewed in the background while the token is in use).

use crate::claims::VerifiedToken;
use crate::verify::KeyLookup;
use moka::sync::Cache;
use std::time::Duration;

/// Most tokens remembered.
pub const MAX_VERIFIED: u64 = 50_000;

/// An entry unused this long is dropped (it verifies again on its next use).
const IDLE: Duration = Duration::from_secs(600);

/// A SHA-256 digest of a token, the only form in which a token is kept.
pub type TokenDigest = [u8; 32];

/// The digest of `token` (as presented, surrounding blanks removed).
pub fn digest(token: &str) -> TokenDigest {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.trim().as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[derive(Clone)]
struct Entry {
    /// The `kid` of the key that signed the token.
    kid: String,
    token: VerifiedToken,
}

/// Verified claims by token digest. Cheap to clone (shared).
#[derive(Clone)]
pub struct VerifiedCache {
    leeway: i64,
    entries: Cache<TokenDigest, Entry>,
}

impl VerifiedCache {
    /// A cache of at most `capacity` tokens, holding them to expiry with `leeway` seconds.
    pub fn new(capacity: u64, leeway: i64) -> Self {
        VerifiedCache {
            leeway,
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(IDLE)
                .build(),
        }
    }

    /// The claims of a token verified before, if it has not expired at `now` and the key that
    /// signed it is still in `keys`.
    pub fn get(
        &self,
        digest: &TokenDigest,
        keys: &impl KeyLookup,
        now: i64,
    ) -> Option<VerifiedToken> {
        let entry = self.entries.get(digest)?;
        let live = now <= entry.token.expires_at.saturating_add(self.leeway)
            && keys.decoding_key(&entry.kid).is_some();
        if !live {
            self.entries.invalidate(digest);
            return None;
        }
        Some(entry.token)
    }

    /// Remembers a token that just verified, signed by the key `kid`.
    pub fn insert(&self, digest: TokenDigest, kid: String, token: VerifiedToken) {
        self.entries.insert(digest, Entry { kid, token });
    }

    /// How many tokens are held (after pending evictions).
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    /// Whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Subject;
    use crate::jwk::{JwkSet, PublicKey};

    fn token(exp: i64) -> VerifiedToken {
        VerifiedToken {
            subject: Subject::User("u1".into()),
            scopes: vec![],
            token_id: "j".into(),
            issued_at: 0,
            expires_at: exp,
            algorithm: "EdDSA",
        }
    }

    fn keys(kids: &[&str]) -> JwkSet {
        kids.iter()
            .map(|kid| PublicKey::ed25519(*kid, vec![7; 32]))
            .collect()
    }

    #[test]
    fn a_hit_holds_until_expiry_plus_leeway() {
        let cache = VerifiedCache::new(10, 30);
        let d = digest("t");
        cache.insert(d, "k1".into(), token(1_000));
        let set = keys(&["k1"]);
        assert_eq!(cache.get(&d, &set, 1_000).unwrap().expires_at, 1_000);
        assert!(cache.get(&d, &set, 1_030).is_some());
        assert!(cache.get(&d, &set, 1_031).is_none(), "expired");
        assert!(cache.get(&d, &set, 0).is_none(), "and dropped once expired");
        assert!(cache.get(&digest("u"), &set, 0).is_none());
    }

    #[test]
    fn a_token_whose_key_is_no_longer_published_misses() {
        let cache = VerifiedCache::new(10, 0);
        let d = digest("t");
        cache.insert(d, "old".into(), token(i64::MAX));
        assert!(cache.get(&d, &keys(&["old", "new"]), 0).is_some());
        assert!(cache.get(&d, &keys(&["new"]), 0).is_none());
    }

    #[test]
    fn the_digest_ignores_surrounding_blanks_only() {
        assert_eq!(digest(" t "), digest("t"));
        assert_ne!(digest("t"), digest("T"));
    }

    #[test]
    fn the_number_of_tokens_held_is_bounded() {
        let cache = VerifiedCache::new(100, 0);
        for i in 0..1_000 {
            cache.insert(digest(&format!("t{i}")), "k".into(), token(i64::MAX));
        }
        assert!(cache.len() <= 100);
    }
}
