//! Verifying Latchkey tokens away from auth: the JWKS is fetched from `AuthService.GetJwks`,
//! cached, and fetched again when a token names an unknown `kid` (at most once a second), so a
//! signing-key rotation reaches every verifier without a restart.

use crate::claims::VerifiedToken;
use crate::error::{AUTH, AuthnError, TokenError};
use crate::jwk::JwkSet;
use crate::verified::{self, MAX_VERIFIED, VerifiedCache};
use crate::verify::{VerifyRules, read_header};
use latchkey_common::clock::SharedClock;
use latchkey_proto::auth::v1::{GetJwksRequest, auth_service_client::AuthServiceClient};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Unknown-`kid` refetches happen at most this often.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(1);

/// A local verifier over auth's published keys. Cheap to clone.
#[derive(Clone)]
pub struct JwksVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    client: AuthServiceClient<Channel>,
    rules: VerifyRules,
    clock: SharedClock,
    keys: RwLock<Arc<JwkSet>>,
    /// When the JWKS was last fetched for an unknown `kid`; held during that fetch, so callers
    /// arriving meanwhile wait for it and use its keys.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    refreshes: AtomicU64,
    /// Tokens that verified lately, so a signature is checked once per token.
    verified: VerifiedCache,
}

impl JwksVerifier {
    /// A verifier holding tokens to `rules`, asking auth at `channel` for its keys.
    pub fn new(channel: Channel, rules: VerifyRules, clock: SharedClock) -> Self {
        JwksVerifier {
            inner: Arc::new(Inner {
                client: AuthServiceClient::new(channel),
                verified: VerifiedCache::new(MAX_VERIFIED, rules.leeway),
                rules,
                clock,
                keys: RwLock::new(Arc::new(JwkSet::default())),
                last_fetch: tokio::sync::Mutex::new(None),
                refreshes: AtomicU64::new(0),
            }),
        }
    }

    /// Verifies signature and claims locally; fetches the JWKS first when the `kid` is unknown.
    /// Tokens with a new `kid` arriving together wait for the one fetch and are checked against
    /// its keys. Does not ask whether the user still exists or was revoked (that is
    /// [`crate::StillAllowed`]). A token that verified before is answered from the
    /// [`VerifiedCache`] while it has not expired and its key is still published.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, AuthnError> {
        let digest = verified::digest(token);
        let cache = &self.inner.verified;
        let now = self.inner.clock.now();
        if let Some(hit) = cache.get(&digest, self.snapshot().as_ref(), now) {
            return Ok(hit);
        }
        let verified = self.verify_signature(token).await?;
        if let Ok(header) = read_header(token.trim())
            && let Some(kid) = header.kid
        {
            cache.insert(digest, kid, verified.clone());
        }
        Ok(verified)
    }

    /// The full check of [`JwksVerifier::verify`], signature included.
    async fn verify_signature(&self, token: &str) -> Result<VerifiedToken, AuthnError> {
        let verify = || {
            self.inner
                .rules
                .verify(token, self.snapshot().as_ref(), self.inner.clock.now())
        };
        let first = verify();
        if !matches!(first, Err(TokenError::KeyUnknown(_))) {
            return Ok(first?);
        }
        let mut last = self.inner.last_fetch.lock().await;
        match verify() {
            Err(TokenError::KeyUnknown(_))
                if last.is_none_or(|at| at.elapsed() >= REFETCH_INTERVAL) =>
            {
                *last = Some(Instant::now());
                self.refresh().await?;
                Ok(verify()?)
            }
            other => Ok(other?),
        }
    }

    /// Fetches the JWKS now. Auth being unreachable is UPSTREAM_UNAVAILABLE, never a token error.
    pub async fn refresh(&self) -> Result<(), AuthnError> {
        let mut request = tonic::Request::new(GetJwksRequest {});
        latchkey_common::telemetry::inject_into_metadata(request.metadata_mut());
        let response = self
            .inner
            .client
            .clone()
            .get_jwks(request)
            .await
            .map_err(|status| {
                tracing::warn!(code = ?status.code(), upstream = AUTH, "jwks fetch failed");
                AuthnError::Unavailable
            })?;
        let set = JwkSet::from_jwks(&response.into_inner().keys);
        *self.inner.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        self.inner.refreshes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// How many JWKS fetches succeeded (for metrics and tests of the rate limit).
    pub fn refresh_count(&self) -> u64 {
        self.inner.refreshes.load(Ordering::Relaxed)
    }

    /// The `kid`s currently cached, sorted.
    pub fn cached_kids(&self) -> Vec<String> {
        self.snapshot().kids()
    }

    fn snapshot(&self) -> Arc<JwkSet> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
