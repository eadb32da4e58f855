//! Verifying Latchkey tokens away from auth (in settings and the gateway): the JWKS is fetched
//! from `AuthService.GetJwks`, cached, and refetched when a token names an unknown `kid` (at most
//! once a second), so a signing-key rotation reaches every verifier without a restart.

use crate::error::AuthError;
use crate::keys::{KeySet, PublishedKey};
use crate::tokens::{TokenError, TokenRules, VerifiedToken};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use latchkey_common::clock::SharedClock;
use latchkey_proto::auth::v1::{GetJwksRequest, Jwk, auth_service_client::AuthServiceClient};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Unknown-`kid` refetches happen at most this often.
const REFETCH_INTERVAL: Duration = Duration::from_secs(1);

/// A local verifier over auth's published keys. Cheap to clone.
#[derive(Clone)]
pub struct JwksVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    client: AuthServiceClient<Channel>,
    rules: TokenRules,
    clock: SharedClock,
    keys: RwLock<Arc<KeySet>>,
    /// When the JWKS was last fetched for an unknown `kid`; held during that fetch, so callers
    /// arriving meanwhile wait for it and use its keys.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    refreshes: std::sync::atomic::AtomicU64,
}

impl JwksVerifier {
    /// A verifier holding tokens to `issuer`/`audience` with `leeway` seconds of clock skew.
    /// Legacy HS256 tokens are not accepted here: only auth holds that secret.
    pub fn new(
        channel: Channel,
        issuer: &str,
        audience: &str,
        leeway: i64,
        clock: SharedClock,
    ) -> Self {
        let rules = TokenRules {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl: 0,
            leeway,
            legacy: None,
            authjs: None,
        };
        JwksVerifier {
            inner: Arc::new(Inner {
                client: AuthServiceClient::new(channel),
                rules,
                clock,
                keys: RwLock::new(Arc::new(KeySet::default())),
                last_fetch: tokio::sync::Mutex::new(None),
                refreshes: Default::default(),
            }),
        }
    }

    /// Verifies signature and claims locally; fetches the JWKS first when the `kid` is unknown.
    /// Tokens with a new `kid` arriving together wait for the one fetch and are checked against
    /// its keys. Does not ask whether the user still exists or was revoked (that is
    /// `Authenticate`).
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        let verify = || {
            self.inner
                .rules
                .verify(token, &self.snapshot(), self.inner.clock.now())
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
    pub async fn refresh(&self) -> Result<(), AuthError> {
        let mut request = tonic::Request::new(GetJwksRequest {});
        latchkey_common::telemetry::inject_into_metadata(request.metadata_mut());
        let response = self
            .inner
            .client
            .clone()
            .get_jwks(request)
            .await
            .map_err(|status| {
                tracing::warn!(code = ?status.code(), "jwks fetch failed");
                AuthError::Upstream("the auth service")
            })?;
        let mut set = KeySet::default();
        for jwk in response.into_inner().keys {
            if let Some(key) = published_key(&jwk) {
                set.published.insert(key.kid.clone(), key);
            }
        }
        *self.inner.keys.write().expect("jwks lock") = Arc::new(set);
        self.inner
            .refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// How many JWKS fetches succeeded (for metrics and tests of the rate limit).
    pub fn refresh_count(&self) -> u64 {
        self.inner
            .refreshes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The `kid`s currently cached.
    pub fn cached_kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.snapshot().published.keys().cloned().collect();
        kids.sort();
        kids
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.inner.keys.read().expect("jwks lock").clone()
    }
}

fn published_key(jwk: &Jwk) -> Option<PublishedKey> {
    if jwk.kty != "OKP" || jwk.crv != "Ed25519" || jwk.alg != crate::keys::ALGORITHM {
        return None;
    }
    let public_key = URL_SAFE_NO_PAD
        .decode(&jwk.x)
        .ok()
        .filter(|k| k.len() == 32)?;
    Some(PublishedKey {
        kid: jwk.kid.clone(),
        decoding: DecodingKey::from_ed_der(&public_key),
        public_key,
        publish_until: None,
    })
}
