//! Abuse limits: per-client-IP token buckets (sync/token calls, and failed authentications —
//! see [`latchkey_common::ratelimit`]), the sync secrets auth has recently accepted (so a right
//! secret is never refused because others failed from the same address), and reading a request
//! body under the 256 KiB cap and its time limit.

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use latchkey_proto::{ApiError, Reason};
use ring::hmac;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

pub use latchkey_common::ratelimit::RateLimiter;

/// Largest request body accepted (docs/ARCHITECTURE.md §3).
pub const BODY_LIMIT: usize = 256 * 1024;

/// How long a body may take to arrive once its head has (a slow sender holds a connection).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long auth's acceptance of a sync secret is remembered.
const VOUCH_FOR: Duration = Duration::from_secs(600);

/// Distinct accepted secrets remembered (a rotation has two).
const MAX_VOUCHED: usize = 4;

/// Sync secrets auth accepted lately, as keyed digests (the key is random per process, so the
/// digests are worth nothing outside it), compared in constant time. A remembered secret skips
/// the failed-authentication budget of its address, never the sync rate limit.
pub struct VouchedSecrets {
    key: hmac::Key,
    entries: Mutex<Vec<(hmac::Tag, Instant)>>,
}

impl std::fmt::Debug for VouchedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VouchedSecrets").finish_non_exhaustive()
    }
}

impl Default for VouchedSecrets {
    fn default() -> Self {
        let seed = latchkey_common::secret::random_token(32);
        VouchedSecrets {
            key: hmac::Key::new(hmac::HMAC_SHA256, seed.as_bytes()),
            entries: Mutex::new(Vec::new()),
        }
    }
}

impl VouchedSecrets {
    /// Remembers that auth accepted `secret`.
    pub fn vouch(&self, secret: &[u8]) {
        let tag = hmac::sign(&self.key, secret);
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(known, until)| {
            *until > now && !bool::from(known.as_ref().ct_eq(tag.as_ref()))
        });
        if entries.len() >= MAX_VOUCHED {
            entries.remove(0);
        }
        entries.push((tag, now + VOUCH_FOR));
    }

    /// Forgets `secret` (auth refused it: it was rotated away).
    pub fn forget(&self, secret: &[u8]) {
        let tag = hmac::sign(&self.key, secret);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(known, _)| !bool::from(known.as_ref().ct_eq(tag.as_ref())));
    }

    /// Whether auth accepted `secret` within the last ten minutes.
    pub fn is_vouched(&self, secret: &[u8]) -> bool {
        let tag = hmac::sign(&self.key, secret);
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut found = subtle::Choice::from(0);
        for (known, until) in entries.iter() {
            let fresh = subtle::Choice::from(u8::from(*until > now));
            found |= known.as_ref().ct_eq(tag.as_ref()) & fresh;
        }
        found.into()
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
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, BODY_LIMIT)).await {
        Ok(read) => read.map_err(|_| too_large()),
        Err(_) => Err(ApiError::new(
            Reason::DeadlineExceeded,
            format!(
                "The request body did not arrive within {} s; send it in one go.",
                BODY_TIMEOUT.as_secs()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_secrets_are_remembered_and_forgotten() {
        let vouched = VouchedSecrets::default();
        assert!(!vouched.is_vouched(b"right"));
        vouched.vouch(b"right");
        assert!(vouched.is_vouched(b"right"));
        assert!(!vouched.is_vouched(b"wrong"));
        for other in [b"a", b"b", b"c", b"d"] {
            vouched.vouch(other);
        }
        assert!(!vouched.is_vouched(b"right"), "at most four are kept");
        vouched.forget(b"d");
        assert!(!vouched.is_vouched(b"d"));
        assert!(vouched.is_vouched(b"c"));
        assert!(!format!("{vouched:?}").contains('['));
    }
}
