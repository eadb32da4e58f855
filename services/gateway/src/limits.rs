//! Abuse limits: a per-key token bucket (sync/token calls and failed authentications, keyed by
//! client IP) and reading a request body under the 256 KiB cap.

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use latchkey_proto::{ApiError, Reason};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Largest request body accepted (DESIGN.md §4a).
pub const BODY_LIMIT: usize = 256 * 1024;

/// Buckets kept before idle ones are dropped.
const MAX_KEYS: usize = 10_000;

/// A token bucket per client IP: `per_minute` requests, refilled continuously.
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

impl RateLimiter {
    /// A limiter allowing `per_minute` per key; 0 allows everything.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token, or answers how long until one is available.
    pub fn take(&self, key: IpAddr) -> Result<(), Duration> {
        self.with_bucket(key, |bucket| {
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                true
            } else {
                false
            }
        })
    }

    /// Whether a token is available, without taking it.
    pub fn check(&self, key: IpAddr) -> Result<(), Duration> {
        self.with_bucket(key, |bucket| bucket.tokens >= 1.0)
    }

    fn with_bucket(
        &self,
        key: IpAddr,
        decide: impl FnOnce(&mut Bucket) -> bool,
    ) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_KEYS {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < capacity
            });
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second)
            .min(capacity);
        bucket.at = now;
        if decide(bucket) {
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

/// RATE_LIMITED with its Retry-After.
pub fn rate_limited(wait: Duration, what: &str) -> ApiError {
    ApiError::new(
        Reason::RateLimited,
        format!(
            "Too many {what} from this address; wait {} s (Retry-After) and try again.",
            wait.as_secs().max(1)
        ),
    )
    .with_retry_after(wait)
}

/// Reads the body, refusing more than [`BODY_LIMIT`] bytes with PAYLOAD_TOO_LARGE.
pub async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            Reason::PayloadTooLarge,
            format!(
                "Request bodies are limited to {} KiB; send fewer or shorter settings per request.",
                BODY_LIMIT / 1024
            ),
        )
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > BODY_LIMIT) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| too_large())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_and_says_how_long_to_wait() {
        let limiter = RateLimiter::new(2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        assert!(limiter.take(ip).is_ok());
        assert!(limiter.check(ip).is_ok());
        assert!(limiter.take(ip).is_ok());
        let wait = limiter.take(ip).expect_err("third is refused");
        assert!(
            wait > Duration::from_secs(20) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        let other: IpAddr = [10, 0, 0, 1].into();
        assert!(limiter.take(other).is_ok(), "keys are independent");
    }

    #[test]
    fn zero_disables_the_limit() {
        let limiter = RateLimiter::new(0);
        for _ in 0..1000 {
            assert!(limiter.take([127, 0, 0, 1].into()).is_ok());
        }
    }
}
