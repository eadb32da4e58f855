//! Auth's own tokens that verified lately, so `Authenticate` and `GetUser` (`GET /api/auth/me`)
//! check a token's signature once per token rather than once per request: the same bounded
//! cache of verified claims every other verifier holds ([`latchkey_client::verified`]), keyed by
//! the token's SHA-256 digest (never the token), held until `exp` (+ leeway) and only while the
//! signing key is still published. Whether the user is still allowed (disabled, revoked,
//! deleted) is not cached: [`crate::service::AuthCore::authenticate`] reads the user every time.
//!
//! Only tokens signed by one of auth's keys (a `kid` in the key set) are remembered; the web
//! app's legacy HS256 and Auth.js tokens are checked in full every time.

use crate::keys::KeySet;
use crate::tokens::{Subject, VerifiedToken};
use latchkey_client::KeyLookup;
use latchkey_client::verified::{MAX_VERIFIED, TokenDigest, VerifiedCache, digest};
use latchkey_client::verify::read_header;

/// Verified claims of auth's own tokens, by token digest.
#[derive(Clone)]
pub struct VerifiedTokens {
    cache: VerifiedCache,
}

impl VerifiedTokens {
    /// An empty cache holding tokens to their expiry with `leeway` seconds.
    pub fn new(leeway: i64) -> Self {
        VerifiedTokens {
            cache: VerifiedCache::new(MAX_VERIFIED, leeway),
        }
    }

    /// The token's digest and, when it verified before, is unexpired at `now` and its key is
    /// still in `keys`, its claims.
    pub fn lookup(
        &self,
        token: &str,
        keys: &KeySet,
        now: i64,
    ) -> (TokenDigest, Option<VerifiedToken>) {
        let digest = digest(token);
        let hit = self.cache.get(&digest, keys, now);
        (digest, hit)
    }

    /// Remembers a token that just verified in full, when one of auth's keys in `keys` signed it.
    pub fn remember(
        &self,
        digest: TokenDigest,
        token: &str,
        keys: &KeySet,
        verified: &VerifiedToken,
    ) {
        if matches!(verified.subject, Subject::LegacyEmail(_)) {
            return;
        }
        if let Ok(header) = read_header(token.trim())
            && let Some(kid) = header.kid
            && keys.decoding_key(&kid).is_some()
        {
            self.cache.insert(digest, kid, verified.clone());
        }
    }
}
