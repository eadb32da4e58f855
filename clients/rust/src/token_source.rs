//! A service's own access token (client credentials, `IssueServiceToken`), fetched on first use
//! and renewed before it expires, so calls never carry a token about to lapse.

use crate::error::AUTH;
use latchkey_common::clock::SharedClock;
use latchkey_common::upstream::{Deadline, from_upstream, retry_idempotent};
use latchkey_proto::ApiError;
use latchkey_proto::auth::v1::IssueServiceTokenRequest;
use latchkey_proto::auth::v1::auth_service_client::AuthServiceClient;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tonic::transport::Channel;

/// How long fetching a token may take, retry included.
pub const ISSUE_BUDGET: Duration = Duration::from_secs(5);

/// A token is renewed once less than this share of its lifetime is left (and at least
/// [`RENEW_MIN_SECS`] before it expires).
const RENEW_AT_FRACTION: i64 = 5;
/// A token is renewed at the latest this many seconds before it expires.
pub const RENEW_MIN_SECS: i64 = 30;

/// A service's client id and secret, as configured in auth's `LATCHKEY_SERVICE_CLIENTS`.
#[derive(Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
    /// Scopes to ask for; empty asks for every scope the client is allowed.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// The current token and when to renew it.
struct Held {
    token: SecretString,
    renew_at: i64,
}

/// Hands out a valid service token. Cheap to clone (shared).
#[derive(Clone)]
pub struct ServiceTokenSource {
    auth: AuthServiceClient<Channel>,
    credentials: Arc<ClientCredentials>,
    clock: SharedClock,
    held: Arc<Mutex<Option<Held>>>,
}

impl ServiceTokenSource {
    /// Tokens for `credentials`, from auth at `channel`.
    pub fn new(channel: Channel, credentials: ClientCredentials, clock: SharedClock) -> Self {
        ServiceTokenSource {
            auth: AuthServiceClient::new(channel),
            credentials: Arc::new(credentials),
            clock,
            held: Arc::new(Mutex::new(None)),
        }
    }

    /// A token valid for a while yet: the one held, or a new one when it is due for renewal.
    /// Callers arriving during a renewal wait for it rather than each asking auth.
    pub async fn token(&self) -> Result<SecretString, ApiError> {
        let mut held = self.held.lock().await;
        let now = self.clock.now();
        if let Some(current) = held.as_ref().filter(|h| now < h.renew_at) {
            return Ok(current.token.clone());
        }
        let fresh = self.issue(now).await?;
        let token = fresh.token.clone();
        *held = Some(fresh);
        Ok(token)
    }

    /// Drops the held token, so the next call fetches a new one (after auth refused it).
    pub async fn invalidate(&self) {
        *self.held.lock().await = None;
    }

    async fn issue(&self, now: i64) -> Result<Held, ApiError> {
        let deadline = Deadline::after(ISSUE_BUDGET);
        let message = IssueServiceTokenRequest {
            client_id: self.credentials.client_id.clone(),
            client_secret: self.credentials.client_secret.expose_secret().to_owned(),
            scopes: self.credentials.scopes.clone(),
        };
        let answer = retry_idempotent(&deadline, || {
            let mut client = self.auth.clone();
            let mut request = tonic::Request::new(message.clone());
            request.set_timeout(deadline.timeout());
            latchkey_common::telemetry::inject_into_metadata(request.metadata_mut());
            async move { client.issue_service_token(request).await }
        })
        .await
        .map_err(|status| from_upstream(&status, &deadline, AUTH))?;
        let issued = answer.into_inner().token.unwrap_or_default();
        let lifetime = issued.expires_in.max(0);
        let renew_before = (lifetime / RENEW_AT_FRACTION).max(RENEW_MIN_SECS.min(lifetime));
        Ok(Held {
            token: SecretString::from(issued.access_token),
            renew_at: now + lifetime - renew_before,
        })
    }
}
