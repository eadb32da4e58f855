//! Turning a bearer token into a [`Caller`] away from auth: verified locally against auth's
//! cached JWKS (signature, issuer, audience, expiry), then, for user tokens, confirmed with auth
//! ([`StillAllowed`]: exists, not disabled, not revoked, within the revocation bound).

use crate::allowed::StillAllowed;
use crate::caller::Caller;
use crate::claims::Subject;
use crate::error::{AuthnError, TokenError};
use crate::jwks::JwksVerifier;
use crate::verify::VerifyRules;
use latchkey_common::clock::SharedClock;
use std::time::Duration;
use tonic::transport::Channel;

/// Authenticates callers of a service. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    verifier: JwksVerifier,
    allowed: StillAllowed,
}

impl Authenticator {
    /// An authenticator over auth at `channel`: tokens held to `rules`, a user's "still allowed"
    /// reused for `revocation_bound`.
    pub fn new(
        channel: Channel,
        rules: VerifyRules,
        revocation_bound: Duration,
        clock: SharedClock,
    ) -> Self {
        Authenticator {
            verifier: JwksVerifier::new(channel.clone(), rules, clock.clone()),
            allowed: StillAllowed::new(channel, revocation_bound, clock),
        }
    }

    /// The verifier, to warm its JWKS cache.
    pub fn verifier(&self) -> &JwksVerifier {
        &self.verifier
    }

    /// Verifies `token` and answers who it speaks for. Auth unreachable is
    /// [`AuthnError::Unavailable`], never a token error.
    pub async fn caller(&self, token: &str) -> Result<Caller, AuthnError> {
        let verified = self.verifier.verify(token).await?;
        match verified.subject {
            Subject::Service(client_id) => Ok(Caller::Service {
                client_id,
                scopes: verified.scopes,
            }),
            Subject::User(id) => {
                self.allowed.check(token).await?;
                Ok(Caller::User(id))
            }
            // Only auth holds the web app's secret, so a remote verifier never yields this;
            // refuse rather than guess a user id from an email.
            Subject::LegacyEmail(_) => Err(TokenError::AlgorithmRejected("HS256".into()).into()),
        }
    }
}
