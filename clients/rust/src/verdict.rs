//! The one bounded cache of auth's verdicts on tokens: a success of `Authenticate` is reused for
//! at most the configured TTL (the revocation bound: a revocation or a deletion takes effect
//! within it) and never past the token's own expiry. Keys are SHA-256 digests of tokens, never
//! tokens; entries are bounded in number ([`MAX_ENTRIES`]) and evicted by `moka`.
//!
//! Separately, a token auth accepted stays *vouched for* until its own expiry: still checked
//! with auth every time once its verdict lapses, but a caller may let it skip limits meant for
//! unknown tokens (the gateway's failed-authentication budget per address).
//!
//! Time is read from the injected clock, so tests move it instead of sleeping; `moka`'s own
//! expiry only frees memory.

use latchkey_common::clock::SharedClock;
use moka::Expiry;
use moka::future::Cache;
use secrecy::SecretString;
use std::time::{Duration, Instant};

/// Most tokens remembered (verdicts and vouchers each).
pub const MAX_ENTRIES: u64 = 50_000;

/// How long a token is vouched for when auth did not say when it expires.
pub const VOUCH_WITHOUT_EXPIRY_SECS: i64 = 900;

type TokenHash = [u8; 32];

/// What a cache hit answers: auth's verdict still stands, and the token to present upstream in
/// place of a legacy one, if auth exchanged it.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub exchanged: Option<SecretString>,
}

#[derive(Clone)]
struct Entry {
    /// Clock second until which the entry holds.
    until: i64,
    verdict: Verdict,
}

/// Recently verified tokens. Cheap to clone (shared).
#[derive(Clone)]
pub struct VerdictCache {
    ttl: i64,
    clock: SharedClock,
    verdicts: Cache<TokenHash, Entry>,
    vouched: Cache<TokenHash, Entry>,
}

impl VerdictCache {
    /// A cache trusting a verdict for `ttl` (0 disables reuse; vouching still works).
    pub fn new(ttl: Duration, clock: SharedClock) -> Self {
        Self::with_capacity(ttl, clock, MAX_ENTRIES)
    }

    /// Like [`VerdictCache::new`], holding at most `capacity` tokens.
    pub fn with_capacity(ttl: Duration, clock: SharedClock, capacity: u64) -> Self {
        let build = || {
            Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExpiry(clock.clone()))
                .build()
        };
        VerdictCache {
            ttl: ttl.as_secs() as i64,
            verdicts: build(),
            vouched: build(),
            clock,
        }
    }

    /// Auth's verdict on `token` if given less than the TTL ago (and the token has not expired
    /// since).
    pub async fn fresh(&self, token: &str) -> Option<Verdict> {
        if self.ttl == 0 {
            return None;
        }
        let entry = self.verdicts.get(&hash(token)).await?;
        (entry.until > self.clock.now()).then_some(entry.verdict)
    }

    /// Whether auth accepted `token` before and it has not expired or been refused since.
    pub async fn is_vouched(&self, token: &str) -> bool {
        let now = self.clock.now();
        self.vouched
            .get(&hash(token))
            .await
            .is_some_and(|entry| entry.until > now)
    }

    /// Records auth's success; `expires_at` (unix seconds) caps both entries at the token's
    /// own expiry.
    pub async fn remember(&self, token: &str, expires_at: Option<i64>, verdict: Verdict) {
        let now = self.clock.now();
        let key = hash(token);
        let vouch_until = expires_at.unwrap_or(now + VOUCH_WITHOUT_EXPIRY_SECS);
        self.vouched
            .insert(
                key,
                Entry {
                    until: vouch_until,
                    verdict: Verdict::default(),
                },
            )
            .await;
        if self.ttl == 0 {
            return;
        }
        let until = expires_at.map_or(now + self.ttl, |exp| exp.min(now + self.ttl));
        self.verdicts.insert(key, Entry { until, verdict }).await;
    }

    /// Drops a token (after its user was deleted, or when auth refuses it).
    pub async fn forget(&self, token: &str) {
        let key = hash(token);
        self.verdicts.invalidate(&key).await;
        self.vouched.invalidate(&key).await;
    }

    /// How many verdicts are held (approximate until pending evictions run).
    pub async fn len(&self) -> u64 {
        self.verdicts.run_pending_tasks().await;
        self.verdicts.entry_count()
    }

    /// Whether no verdict is held.
    pub async fn is_empty(&self) -> bool {
        self.len().await == 0
    }
}

/// Lets `moka` drop an entry once the clock passes its `until` (plus a second, as the clock
/// counts whole seconds); reads check `until` themselves.
struct UntilExpiry(SharedClock);

impl UntilExpiry {
    fn left(&self, entry: &Entry) -> Option<Duration> {
        let secs = (entry.until - self.0.now()).max(0) as u64 + 1;
        Some(Duration::from_secs(secs))
    }
}

impl Expiry<TokenHash, Entry> for UntilExpiry {
    fn expire_after_create(&self, _: &TokenHash, entry: &Entry, _: Instant) -> Option<Duration> {
        self.left(entry)
    }

    fn expire_after_update(
        &self,
        _: &TokenHash,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.left(entry)
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
    use latchkey_common::clock::{Clock, ManualClock};
    use std::sync::Arc;

    fn cache(ttl: u64) -> (VerdictCache, Arc<ManualClock>) {
        let clock = ManualClock::starting_now();
        (
            VerdictCache::new(Duration::from_secs(ttl), clock.clone()),
            clock,
        )
    }

    #[tokio::test]
    async fn remembers_for_at_most_the_ttl_and_forgets_on_request() {
        let (cache, clock) = cache(5);
        assert!(cache.fresh("t").await.is_none());
        cache.remember("t", None, Verdict::default()).await;
        assert!(cache.fresh("t").await.is_some());
        assert!(cache.fresh("u").await.is_none());
        cache.forget("t").await;
        assert!(cache.fresh("t").await.is_none());
        cache
            .remember("t", Some(clock.now()), Verdict::default())
            .await;
        assert!(
            cache.fresh("t").await.is_none(),
            "an expiring token is not cached past its expiry"
        );
        cache.remember("t", None, Verdict::default()).await;
        clock.advance(4);
        assert!(cache.fresh("t").await.is_some());
        clock.advance(1);
        assert!(cache.fresh("t").await.is_none());
    }

    #[tokio::test]
    async fn a_verified_token_stays_vouched_for_until_it_expires_or_is_refused() {
        let (cache, clock) = cache(0);
        cache
            .remember("t", Some(clock.now() + 60), Verdict::default())
            .await;
        assert!(
            cache.fresh("t").await.is_none(),
            "no verdict reuse with ttl 0"
        );
        assert!(cache.is_vouched("t").await, "but vouched for");
        assert!(!cache.is_vouched("u").await);
        cache.forget("t").await;
        assert!(!cache.is_vouched("t").await);
        cache
            .remember("e", Some(clock.now()), Verdict::default())
            .await;
        assert!(!cache.is_vouched("e").await, "expired");
        cache.remember("n", None, Verdict::default()).await;
        clock.advance(VOUCH_WITHOUT_EXPIRY_SECS);
        assert!(
            !cache.is_vouched("n").await,
            "vouched for at most 15 minutes"
        );
    }

    #[tokio::test]
    async fn zero_ttl_never_caches() {
        let (cache, _) = cache(0);
        cache.remember("t", None, Verdict::default()).await;
        assert!(cache.fresh("t").await.is_none());
    }

    #[tokio::test]
    async fn the_number_of_tokens_held_is_bounded() {
        let clock = ManualClock::starting_now();
        let cache = VerdictCache::with_capacity(Duration::from_secs(5), clock, 100);
        for i in 0..1_000 {
            cache
                .remember(&format!("t{i}"), None, Verdict::default())
                .await;
        }
        assert!(cache.len().await <= 100);
    }
}
