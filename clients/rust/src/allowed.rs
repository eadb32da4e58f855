//! "Is this user still allowed": a token that verifies locally may belong to a user since
//! revoked, deleted or disabled, which only auth knows. [`StillAllowed`] asks auth
//! (`Authenticate`), retried once when the call fails on the way (auth restarting), and
//! remembers a success in the [`VerdictCache`] for at most its TTL — the revocation bound. A
//! verdict due for renewal (its TTL's last quarter) is asked again in the background while the
//! request goes on, so a token in steady use seldom waits for auth on the request path.

use crate::error::{AUTH, AuthnError};
use crate::verdict::{Asking, RenewalAnswer, Verdict, VerdictCache};
use latchkey_common::clock::SharedClock;
use latchkey_common::upstream::{Deadline, from_upstream, retry_idempotent};
use latchkey_proto::Reason;
use latchkey_proto::auth::v1::AuthenticateRequest;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tonic::transport::Channel;

/// How long one question to auth may take, retry included.
pub const AUTH_CALL_BUDGET: Duration = Duration::from_secs(5);

/// Asks auth whether a token's user may still act, remembering the answer.
#[derive(Clone)]
pub struct StillAllowed {
    auth: AuthServiceClient<Channel>,
    cache: VerdictCache,
}

impl StillAllowed {
    /// Asks auth at `channel`; a success is reused for `ttl` (the revocation bound).
    pub fn new(channel: Channel, ttl: Duration, clock: SharedClock) -> Self {
        StillAllowed {
            auth: AuthServiceClient::new(channel),
            cache: VerdictCache::new(ttl, clock),
        }
    }

    /// Ok when auth accepted `token` within the TTL, or accepts it now. Auth unreachable (or out
    /// of time) is [`AuthnError::Unavailable`]; auth's refusal is passed on unchanged.
    pub async fn check(&self, token: &str) -> Result<(), AuthnError> {
        let Some(hit) = self.cache.fresh(token).await else {
            let asking = self.cache.asking();
            let expires_at = self.ask(token).await?;
            self.cache
                .remember(token, asking, expires_at, Verdict::default())
                .await;
            return Ok(());
        };
        if let Some(renewal) = hit.renewal {
            self.renew(token, renewal);
        }
        Ok(())
    }

    /// Asks auth again about a token whose verdict is due, off the request path.
    fn renew(&self, token: &str, renewal: Asking) {
        let allowed = self.clone();
        let ask = |token: SecretString| async move {
            match allowed.ask(token.expose_secret()).await {
                Ok(expires_at) => RenewalAnswer::Accepted {
                    expires_at,
                    verdict: Verdict::default(),
                },
                Err(AuthnError::Refused(_)) => RenewalAnswer::Refused,
                Err(_) => RenewalAnswer::Unanswered,
            }
        };
        self.cache.renew_in_background(token, renewal, ask);
    }

    /// Asks auth about `token` now: the token's expiry (when auth gives one) if accepted.
    async fn ask(&self, token: &str) -> Result<Option<i64>, AuthnError> {
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
        answer
            .map(|response| Some(response.get_ref().expires_at).filter(|at| *at > 0))
            .map_err(|status| refusal(&status, &deadline))
    }

    /// The verdict cache, shared with whoever else remembers auth's answers.
    pub fn cache(&self) -> &VerdictCache {
        &self.cache
    }
}

/// Auth's failure as the caller should see it: an outage is ours to name, a refusal is auth's.
fn refusal(status: &tonic::Status, deadline: &Deadline) -> AuthnError {
    let mut refusal = from_upstream(status, deadline, AUTH);
    match refusal.reason {
        Reason::UpstreamUnavailable
        | Reason::Internal
        | Reason::DeadlineExceeded
        | Reason::RateLimited => {
            tracing::warn!(code = ?status.code(), "auth could not confirm the user");
            AuthnError::Unavailable
        }
        _ => {
            refusal.metadata.remove("request_id");
            AuthnError::Refused(refusal)
        }
    }
}
