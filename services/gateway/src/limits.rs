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

/// How much of an oversized body is still read (and dropped) before answering 413, and for how
/// long: a client still sending when the answer comes and the connection closes can get a TCP
/// reset that destroys the answer unread; reading a bounded remainder first (a lingering close,
/// as nginx does) lets an ordinary client see PAYLOAD_TOO_LARGE, at a cost capped per request.
const DRAIN_LIMIT: usize = 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// Reads the body, refusing more than [`BODY_LIMIT`] bytes with PAYLOAD_TOO_LARGE.
pub async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > DRAIN_LIMIT) {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, collect_limited(body)).await {
        Ok(Some(read)) => read,
        Ok(None) => Err(too_large()),
        Err(_) => Err(ApiError::new(
            Reason::DeadlineExceeded,
            format!(
                "The request body did not arrive within {} s; send it in one go.",
                BODY_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// PAYLOAD_TOO_LARGE with the limit in words.
fn too_large() -> ApiError {
    ApiError::new(
        Reason::PayloadTooLarge,
        format!(
            "Request bodies are limited to {} KiB; send fewer or shorter settings per request.",
            BODY_LIMIT / 1024
        ),
    )
}

/// The body if it fits in [`BODY_LIMIT`]; `None` once it is larger, after draining what arrives
/// of the rest within [`DRAIN_LIMIT`] and [`DRAIN_TIME`]. A body that breaks off is too large
/// or malformed alike: PAYLOAD_TOO_LARGE was the answer before and stays it.
async fn collect_limited(mut body: Body) -> Option<Result<Bytes, ApiError>> {
    use http_body_util::BodyExt;
    let mut buffer = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Some(Err(too_large()));
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buffer.len() + data.len() > BODY_LIMIT {
            drain(body, buffer.len() + data.len()).await;
            return None;
        }
        buffer.extend_from_slice(&data);
    }
    Some(Ok(buffer.freeze()))
}

/// Reads and drops the rest of an oversized body, up to [`DRAIN_LIMIT`] bytes in all and
/// [`DRAIN_TIME`].
async fn drain(mut body: Body, mut seen: usize) {
    use http_body_util::BodyExt;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while seen <= DRAIN_LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
                _ => break,
            }
        }
    })
    .await;
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

    #[tokio::test]
    async fn an_oversized_body_is_refused_after_its_rest_is_drained() {
        let fits = Body::from(vec![b'a'; BODY_LIMIT]);
        let read = read_body(&HeaderMap::new(), fits).await.unwrap();
        assert_eq!(read.len(), BODY_LIMIT);

        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = sent.clone();
        let chunks = (0..20).map(move |_| {
            counter.fetch_add(16 * 1024, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from(vec![
                b'x';
                16 * 1024
            ])))
        });
        let stream = Body::new(http_body_util::StreamBody::new(tokio_stream::iter(chunks)));
        let refused = read_body(&HeaderMap::new(), stream).await.unwrap_err();
        assert_eq!(refused.reason, Reason::PayloadTooLarge);
        assert_eq!(
            sent.load(std::sync::atomic::Ordering::SeqCst),
            20 * 16 * 1024,
            "the whole 320 KiB was read, not cut off at the limit"
        );
    }
}
