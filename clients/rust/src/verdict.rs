//! The one bounded cache of auth's verdicts on tokens: a success of `Authenticate` is reused for
//! at most the configured TTL (the revocation bound: a revocation or a deletion takes effect
//! within it) and never past the token's own expiry. Keys are SHA-256 digests of tokens, never
//! tokens; entries are bounded in number ([`MAX_ENTRIES`]) and evicted by `moka`.
//!
//! Separately, a token auth accepted stays *vouched for* until its own expiry: still checked
//! with auth every time once its verdict lapses, but a caller may let it skip limits meant for
//! unknown tokens (the gateway's failed-authentication budget per address).
//!
//! A verdict in use is renewed ahead of its end: a hit in the last quarter of the TTL (TTLs of
//! 4 s and more) tells one caller, and only one, to ask auth again in the background, so a token
//! used in each verdict's last quarter does not wait for auth on the request path. An answer is
//! aged from when its question was asked, and a renewal replaces only the verdict it renews
//! (never one forgotten meanwhile), so every hit is still served from an answer auth gave at most
//! the TTL ago, and a forgotten token stays forgotten.
//!
//! Time is read from the injected clock, so tests move it instead of sleeping; `moka`'s own
//! expiry only frees memory.

use latchkey_common::clock::SharedClock;
use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};
use secrecy::SecretString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tracing::Instrument;

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

/// A hit of [`VerdictCache::fresh`]: the verdict, and the renewal this caller is to make, if any.
#[derive(Debug)]
pub struct Fresh {
    pub verdict: Verdict,
    /// The verdict is in its last quarter and nobody else was told: ask auth again, off the
    /// request path, and hand this to [`VerdictCache::remember`] with a success (or
    /// [`VerdictCache::forget`] the token on a refusal).
    pub renewal: Option<Asking>,
}

/// How auth answered a renewal's question (see [`VerdictCache::renew_in_background`]).
pub enum RenewalAnswer {
    /// Auth accepted the token again: its new verdict, capped at the token's expiry if given.
    Accepted {
        expires_at: Option<i64>,
        verdict: Verdict,
    },
    /// Auth refused the token: it is forgotten at once.
    Refused,
    /// No answer (auth unreachable or out of time): the verdict lapses as it would have.
    Unanswered,
}

/// A question put to auth: when it was asked (its answer is aged from then) and, for a renewal,
/// which verdict it renews (the answer replaces that one only). From [`VerdictCache::asking`] or
/// [`Fresh::renewal`].
#[derive(Debug)]
pub struct Asking {
    at: i64,
    renews: Option<Arc<AtomicBool>>,
}

#[derive(Clone)]
struct Entry {
    /// Clock second until which the entry holds.
    until: i64,
    /// Clock second from which a hit asks for a renewal (`i64::MAX`: never).
    renew_from: i64,
    /// Set by the one hit told to renew this entry; a renewal replaces the entry.
    renewal_claimed: Arc<AtomicBool>,
    verdict: Verdict,
}

impl Entry {
    fn new(until: i64, renew_from: i64, verdict: Verdict) -> Self {
        Entry {
            until,
            renew_from,
            renewal_claimed: Arc::new(AtomicBool::new(false)),
            verdict,
        }
    }

    /// The renewal of this entry, for the one hit at `now` that claims it.
    fn claim_renewal(&self, now: i64) -> Option<Asking> {
        let claimed = now >= self.renew_from && !self.renewal_claimed.swap(true, Ordering::AcqRel);
        claimed.then(|| Asking {
            at: now,
            renews: Some(self.renewal_claimed.clone()),
        })
    }

    /// Whether this is the entry a renewal was claimed from.
    fn renewed_by(&self, asking: &Asking) -> bool {
        asking
            .renews
            .as_ref()
            .is_some_and(|claimed| Arc::ptr_eq(claimed, &self.renewal_claimed))
    }
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
    /// since), telling one caller when it is time to renew it.
    pub async fn fresh(&self, token: &str) -> Option<Fresh> {
        if self.ttl == 0 {
            return None;
        }
        let entry = self.verdicts.get(&hash(token)).await?;
        let now = self.clock.now();
        (entry.until > now).then(|| Fresh {
            renewal: entry.claim_renewal(now),
            verdict: entry.verdict,
        })
    }

    /// A question about to be put to auth, stamped now.
    pub fn asking(&self) -> Asking {
        Asking {
            at: self.clock.now(),
            renews: None,
        }
    }

    /// Whether auth accepted `token` before and it has not expired or been refused since.
    pub async fn is_vouched(&self, token: &str) -> bool {
        let now = self.clock.now();
        self.vouched
            .get(&hash(token))
            .await
            .is_some_and(|entry| entry.until > now)
    }

    /// Records auth's success on the question `asking` (aged from when it was asked);
    /// `expires_at` (unix seconds) caps both entries at the token's own expiry. A renewal whose
    /// verdict is gone or replaced meanwhile (forgotten, refused, answered afresh) records nothing.
    pub async fn remember(
        &self,
        token: &str,
        asking: Asking,
        expires_at: Option<i64>,
        verdict: Verdict,
    ) {
        self.remember_key(hash(token), asking, expires_at, verdict)
            .await;
    }

    /// Renews the verdict on `token` that a hit was told to renew, off the request path (in the
    /// caller's span): `ask` puts the question to auth; an acceptance replaces the verdict, a
    /// refusal forgets the token at once, no answer leaves the verdict to lapse.
    pub fn renew_in_background<F, Fut>(&self, token: &str, renewal: Asking, ask: F)
    where
        F: FnOnce(SecretString) -> Fut + Send + 'static,
        Fut: Future<Output = RenewalAnswer> + Send + 'static,
    {
        let (cache, key, token) = (self.clone(), hash(token), SecretString::from(token));
        let renew = async move {
            match ask(token).await {
                RenewalAnswer::Accepted {
                    expires_at,
                    verdict,
                } => cache.remember_key(key, renewal, expires_at, verdict).await,
                RenewalAnswer::Refused => cache.forget_key(key).await,
                RenewalAnswer::Unanswered => {}
            }
        };
        tokio::spawn(renew.instrument(tracing::Span::current()));
    }

    async fn remember_key(
        &self,
        key: TokenHash,
        asking: Asking,
        expires_at: Option<i64>,
        verdict: Verdict,
    ) {
        if self.ttl > 0 {
            let entry = self.verdict_entry(asking.at, expires_at, verdict);
            if asking.renews.is_none() {
                self.verdicts.insert(key, entry).await;
            } else if !self.replace_renewed(key, &asking, entry).await {
                return;
            }
        }
        let vouch_until = expires_at.unwrap_or(asking.at + VOUCH_WITHOUT_EXPIRY_SECS);
        let vouch = Entry::new(vouch_until, i64::MAX, Verdict::default());
        self.vouched.insert(key, vouch).await;
    }

    /// The entry for an answer to a question asked at `asked_at`.
    fn verdict_entry(&self, asked_at: i64, expires_at: Option<i64>, verdict: Verdict) -> Entry {
        let bound = asked_at + self.ttl;
        match expires_at {
            // Renewing cannot outlive the token.
            Some(exp) if exp <= bound => Entry::new(exp, i64::MAX, verdict),
            _ => Entry::new(bound, self.renew_from(bound), verdict),
        }
    }

    /// Puts `entry` in place of the verdict `asking` renews, if that one is still held.
    async fn replace_renewed(&self, key: TokenHash, asking: &Asking, entry: Entry) -> bool {
        let result = self
            .verdicts
            .entry(key)
            .and_compute_with(|held| {
                let op = match held {
                    Some(held) if held.value().renewed_by(asking) => Op::Put(entry),
                    _ => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        matches!(result, CompResult::ReplacedWith(_))
    }

    /// When a verdict holding until `until` is due for renewal: in the TTL's last quarter, in
    /// whole seconds, so never with a TTL under 4 s (a renewal would follow every answer).
    fn renew_from(&self, until: i64) -> i64 {
        match self.ttl / 4 {
            0 => i64::MAX,
            ahead => until - ahead,
        }
    }

    /// Drops a token (after its user was deleted, or when auth refuses it).
    pub async fn forget(&self, token: &str) {
        self.forget_key(hash(token)).await;
    }

    async fn forget_key(&self, key: TokenHash) {
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
        cache
            .remember("t", cache.asking(), None, Verdict::default())
            .await;
        assert!(cache.fresh("t").await.is_some());
        assert!(cache.fresh("u").await.is_none());
        cache.forget("t").await;
        assert!(cache.fresh("t").await.is_none());
        cache
            .remember("t", cache.asking(), Some(clock.now()), Verdict::default())
            .await;
        assert!(
            cache.fresh("t").await.is_none(),
            "an expiring token is not cached past its expiry"
        );
        cache
            .remember("t", cache.asking(), None, Verdict::default())
            .await;
        clock.advance(4);
        assert!(cache.fresh("t").await.is_some());
        clock.advance(1);
        assert!(cache.fresh("t").await.is_none());
    }

    #[tokio::test]
    async fn a_verified_token_stays_vouched_for_until_it_expires_or_is_refused() {
        let (cache, clock) = cache(0);
        cache
            .remember(
                "t",
                cache.asking(),
                Some(clock.now() + 60),
                Verdict::default(),
            )
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
            .remember("e", cache.asking(), Some(clock.now()), Verdict::default())
            .await;
        assert!(!cache.is_vouched("e").await, "expired");
        cache
            .remember("n", cache.asking(), None, Verdict::default())
            .await;
        clock.advance(VOUCH_WITHOUT_EXPIRY_SECS);
        assert!(
            !cache.is_vouched("n").await,
            "vouched for at most 15 minutes"
        );
    }

    #[tokio::test]
    async fn one_hit_in_the_last_quarter_is_told_to_renew() {
        let (cache, clock) = cache(4);
        let renew = |hit: Option<Fresh>| hit.expect("fresh").renewal.is_some();
        cache
            .remember("t", cache.asking(), None, Verdict::default())
            .await;
        assert!(!renew(cache.fresh("t").await));
        clock.advance(2);
        assert!(!renew(cache.fresh("t").await));
        clock.advance(1);
        assert!(renew(cache.fresh("t").await), "the last second asks");
        assert!(!renew(cache.fresh("t").await), "once");
        cache
            .remember("t", cache.asking(), None, Verdict::default())
            .await;
        assert!(
            !renew(cache.fresh("t").await),
            "the renewed verdict starts over"
        );
        clock.advance(3);
        assert!(renew(cache.fresh("t").await));
    }

    #[tokio::test]
    async fn a_renewal_replaces_only_the_verdict_it_renews() {
        let (cache, clock) = cache(4);
        let renewal = |hit: Option<Fresh>| hit.expect("fresh").renewal.expect("due");
        cache
            .remember("t", cache.asking(), None, Verdict::default())
            .await;
        clock.advance(3);
        let asked = renewal(cache.fresh("t").await);
        cache.forget("t").await;
        cache.remember("t", asked, None, Verdict::default()).await;
        assert!(
            cache.fresh("t").await.is_none(),
            "a forgotten token stays forgotten"
        );
        assert!(!cache.is_vouched("t").await);

        cache
            .remember("t", cache.asking(), None, Verdict::default())
            .await;
        clock.advance(3);
        let asked = renewal(cache.fresh("t").await);
        cache
            .remember("t", cache.asking(), None, Verdict::default())
            .await;
        clock.advance(1);
        cache.remember("t", asked, None, Verdict::default()).await;
        clock.advance(2);
        let hit = cache.fresh("t").await;
        assert!(hit.is_some(), "the answer given meanwhile stands");

        let asked = renewal(hit);
        clock.advance(2);
        cache.remember("t", asked, None, Verdict::default()).await;
        clock.advance(2);
        assert!(
            cache.fresh("t").await.is_none(),
            "a renewal is aged from when it was asked, not when it landed"
        );
    }

    #[tokio::test]
    async fn no_renewal_past_the_token_or_under_four_seconds() {
        let (capped, clock) = cache(4);
        capped
            .remember(
                "t",
                capped.asking(),
                Some(clock.now() + 4),
                Verdict::default(),
            )
            .await;
        clock.advance(3);
        assert!(
            capped.fresh("t").await.unwrap().renewal.is_none(),
            "the token ends with it"
        );
        let (short, clock) = cache(3);
        short
            .remember("t", short.asking(), None, Verdict::default())
            .await;
        for _ in 0..3 {
            assert!(short.fresh("t").await.unwrap().renewal.is_none());
            clock.advance(1);
        }
        assert!(short.fresh("t").await.is_none());
    }

    #[tokio::test]
    async fn zero_ttl_never_caches() {
        let (cache, _) = cache(0);
        cache
            .remember("t", cache.asking(), None, Verdict::default())
            .await;
        assert!(cache.fresh("t").await.is_none());
    }

    #[tokio::test]
    async fn the_number_of_tokens_held_is_bounded() {
        let clock = ManualClock::starting_now();
        let cache = VerdictCache::with_capacity(Duration::from_secs(5), clock, 100);
        for i in 0..1_000 {
            cache
                .remember(&format!("t{i}"), cache.asking(), None, Verdict::default())
                .await;
        }
        assert!(cache.len().await <= 100);
    }
}
