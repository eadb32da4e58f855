//! Who is calling: the bearer token verified locally against auth's cached JWKS (signature,
//! issuer, audience, expiry), then, for user tokens, "is this user still allowed" asked of auth
//! (`Authenticate`: exists, not disabled, not revoked), remembered for at most
//! [`ALLOWED_CACHE_SECS`] so a revocation or a deletion takes effect here within that bound and a
//! deleted user's still-unexpired token cannot write settings that would be orphaned. Asking auth
//! is retried once when the call fails on the way (auth restarting), and its failures are read by
//! the one classifier, [`latchkey_common::upstream::from_upstream`].

use crate::caller::Caller;
use crate::error::SettingsError;
use latchkey_auth::error::AuthError;
use latchkey_auth::remote::JwksVerifier;
use latchkey_auth::tokens::Subject;
use latchkey_common::clock::SharedClock;
use latchkey_common::upstream::{Deadline, from_upstream, retry_idempotent};
use latchkey_proto::Reason;
use latchkey_proto::auth::v1::AuthenticateRequest;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tonic::transport::Channel;

/// How long auth's "still allowed" answer for a user token is reused (the revocation bound).
pub const ALLOWED_CACHE_SECS: i64 = 4;
/// How long settings waits for auth's "still allowed" answer, retry included.
const AUTH_CALL_BUDGET: Duration = Duration::from_secs(5);
const AUTH: &str = "the auth service";
/// Entries kept before expired ones are swept.
const CACHE_SWEEP_AT: usize = 10_000;

/// Turns a bearer token into a [`Caller`].
pub struct Authenticator {
    verifier: JwksVerifier,
    auth: AuthServiceClient<Channel>,
    clock: SharedClock,
    /// SHA-256 of the token → unix second until which auth's "allowed" answer is reused.
    allowed: Mutex<HashMap<[u8; 32], i64>>,
}

impl Authenticator {
    /// An authenticator over auth at `channel`, with tokens held to `verifier`'s rules.
    pub fn new(channel: Channel, verifier: JwksVerifier, clock: SharedClock) -> Self {
        Authenticator {
            verifier,
            auth: AuthServiceClient::new(channel),
            clock,
            allowed: Mutex::new(HashMap::new()),
        }
    }

    /// The verifier, to warm its JWKS cache.
    pub fn verifier(&self) -> &JwksVerifier {
        &self.verifier
    }

    /// Verifies `token` and answers who it speaks for. Auth unreachable is
    /// UPSTREAM_UNAVAILABLE, never a token error.
    pub async fn caller(&self, token: &str) -> Result<Caller, SettingsError> {
        let verified = self.verifier.verify(token).await?;
        match verified.subject {
            Subject::Service(client_id) => Ok(Caller::Service {
                client_id,
                scopes: verified.scopes,
            }),
            Subject::User(id) => {
                self.still_allowed(token).await?;
                Ok(Caller::User(id))
            }
            // Only auth holds the legacy secret, so a remote verifier never yields this; refuse
            // rather than guess a user id from an email.
            Subject::LegacyEmail(_) => Err(SettingsError::Auth(AuthError::Token(
                latchkey_auth::tokens::TokenError::AlgorithmRejected("HS256".into()),
            ))),
        }
    }

    async fn still_allowed(&self, token: &str) -> Result<(), SettingsError> {
        let digest: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .expect("sha-256 is 32 bytes");
        let now = self.clock.now();
        if self
            .allowed
            .lock()
            .expect("allowed cache")
            .get(&digest)
            .is_some_and(|until| now < *until)
        {
            return Ok(());
        }
        // Asking is idempotent: a call refused or cut on the way (auth restarting) is tried again.
        let deadline = Deadline::after(AUTH_CALL_BUDGET);
        let answer = retry_idempotent(&deadline, || {
            let mut client = self.auth.clone();
            let mut request = tonic::Request::new(AuthenticateRequest {
                token: token.to_owned(),
            });
            request.set_timeout(deadline.timeout());
            latchkey_common::telemetry::inject_into_metadata(request.metadata_mut());
            async move { client.authenticate(request).await }
        })
        .await;
        if let Err(status) = answer {
            let mut refusal = from_upstream(&status, &deadline, AUTH);
            return Err(match refusal.reason {
                Reason::UpstreamUnavailable
                | Reason::Internal
                | Reason::DeadlineExceeded
                | Reason::RateLimited => {
                    tracing::warn!(code = ?status.code(), "auth could not confirm the user");
                    SettingsError::Auth(AuthError::Upstream(AUTH))
                }
                _ => {
                    refusal.metadata.remove("request_id");
                    SettingsError::Refused(refusal)
                }
            });
        }
        let mut allowed = self.allowed.lock().expect("allowed cache");
        if allowed.len() >= CACHE_SWEEP_AT {
            allowed.retain(|_, until| now < *until);
        }
        allowed.insert(digest, now + ALLOWED_CACHE_SECS);
        Ok(())
    }
}
