//! A token bucket per client address, for the gateway's per-IP limits and the gRPC servers'
//! per-peer failure limit.
//!
//! Why not the `governor` crate: the failure limits must *look* without taking ("is this
//! address's failure budget already spent?" before calling auth, and only a failure takes a
//! token), which governor has no call for, and its keyed store grows until swept. This one is
//! small, answers the wait for `Retry-After`, and holds at most [`MAX_KEYS`] addresses.
//!
//! IPv6 addresses are keyed by their /64: one host usually holds a whole /64, so per-address
//! buckets would give it 2^64 of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at most; beyond it full buckets are dropped, and if none is full a new
/// address is let through untracked rather than growing memory.
pub const MAX_KEYS: usize = 100_000;

/// A token bucket per address: `per_minute` requests, refilled continuously.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The key an address is counted under: itself for IPv4, its /64 for IPv6 (an IPv4-mapped IPv6
/// address counts as the IPv4 address).
pub fn key_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

impl RateLimiter {
    /// A limiter allowing `per_minute` per address; 0 allows everything.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token, or answers how long until one is available.
    pub fn take(&self, ip: IpAddr) -> Result<(), Duration> {
        self.take_at(ip, Instant::now())
    }

    /// Whether a token is available, without taking it.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(ip, Instant::now())
    }

    /// [`RateLimiter::take`] at a given moment (time is an input).
    pub fn take_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        self.with_bucket(ip, now, |bucket| {
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                true
            } else {
                false
            }
        })
    }

    /// [`RateLimiter::check`] at a given moment.
    pub fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        self.with_bucket(ip, now, |bucket| bucket.tokens >= 1.0)
    }

    fn with_bucket(
        &self,
        ip: IpAddr,
        now: Instant,
        decide: impl FnOnce(&mut Bucket) -> bool,
    ) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let refilled = |b: &Bucket| {
            (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second)
                .min(capacity)
        };
        let key = key_of(ip);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(&key) && buckets.len() >= MAX_KEYS {
            buckets.retain(|_, b| refilled(b) < capacity);
            if buckets.len() >= MAX_KEYS {
                return Ok(());
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        bucket.tokens = refilled(bucket);
        bucket.at = bucket.at.max(now);
        if decide(bucket) {
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_refills_and_says_how_long_to_wait() {
        let limiter = RateLimiter::new(2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let t0 = Instant::now();
        assert!(limiter.take_at(ip, t0).is_ok());
        assert!(limiter.check_at(ip, t0).is_ok());
        assert!(limiter.take_at(ip, t0).is_ok());
        let wait = limiter.take_at(ip, t0).expect_err("third is refused");
        assert_eq!(wait, Duration::from_secs(30));
        assert!(limiter.check_at(ip, t0).is_err(), "check does not take");
        let later = t0 + Duration::from_secs(30);
        assert!(
            limiter.take_at(ip, later).is_ok(),
            "one token back after 30 s"
        );
        let other: IpAddr = [10, 0, 0, 1].into();
        assert!(limiter.take_at(other, t0).is_ok(), "keys are independent");
    }

    #[test]
    fn zero_disables_the_limit() {
        let limiter = RateLimiter::new(0);
        for _ in 0..1000 {
            assert!(limiter.take([127, 0, 0, 1].into()).is_ok());
        }
    }

    #[test]
    fn an_ipv6_host_cannot_spread_over_its_slash_64() {
        let limiter = RateLimiter::new(1);
        let t0 = Instant::now();
        let first: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let next_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(limiter.take_at(first, t0).is_ok());
        assert!(limiter.take_at(same_64, t0).is_err());
        assert!(limiter.take_at(next_64, t0).is_ok());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(key_of(mapped), IpAddr::from([192, 0, 2, 7]));
    }
}
