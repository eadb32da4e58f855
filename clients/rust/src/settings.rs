//! A typed client for the calls an internal service makes to settings: reveal one of a user's
//! values, and read the reveal audit log. Each call carries a token from the
//! [`ServiceTokenSource`] (which needs `settings:reveal` / `settings:audit`), a fresh request id
//! and the trace context; a refused token is fetched anew once.

use crate::error::AUTH;
use crate::token_source::ServiceTokenSource;
use latchkey_common::upstream::{Deadline, from_upstream};
use latchkey_proto::settings::v1::settings_service_client::SettingsServiceClient;
use latchkey_proto::settings::v1::{
    ListRevealAuditRequest, RevealAuditEntry, RevealSettingRequest,
};
use latchkey_proto::{ApiError, Reason};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// How long one call to settings may take.
pub const CALL_BUDGET: Duration = Duration::from_secs(10);

/// The settings service, as the service behind `tokens` sees it. Cheap to clone.
#[derive(Clone)]
pub struct SettingsClient {
    settings: SettingsServiceClient<Channel>,
    tokens: ServiceTokenSource,
}

/// One page of the reveal audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    pub entries: Vec<RevealAuditEntry>,
    /// Pass to the next call for the next page; empty on the last page.
    pub next_page_token: String,
}

impl SettingsClient {
    /// Settings at `channel`, called with tokens from `tokens`.
    pub fn new(channel: Channel, tokens: ServiceTokenSource) -> Self {
        SettingsClient {
            settings: SettingsServiceClient::new(channel),
            tokens,
        }
    }

    /// The plaintext of `user_id`'s setting `name` (needs `settings:reveal`; every reveal is
    /// audited by settings).
    pub async fn reveal(&self, user_id: &str, name: &str) -> Result<SecretString, ApiError> {
        self.reveal_with(user_id, name, false).await
    }

    /// Like [`Self::reveal`]; with `require_valid`, a value that breaks the declared settings
    /// answers SETTING_INVALID (naming the rule) instead of the value.
    pub async fn reveal_with(
        &self,
        user_id: &str,
        name: &str,
        require_valid: bool,
    ) -> Result<SecretString, ApiError> {
        let message = RevealSettingRequest {
            user_id: user_id.to_owned(),
            name: name.to_owned(),
            require_valid,
        };
        let answer = self
            .call(message, |mut client, request| async move {
                client.reveal_setting(request).await
            })
            .await?;
        Ok(SecretString::from(answer.value))
    }

    /// A page of who revealed what (needs `settings:audit`): `user_id` empty for every user,
    /// `page_size` 0 for settings' default, `page_token` from the previous page.
    pub async fn audit(
        &self,
        user_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<AuditPage, ApiError> {
        let message = ListRevealAuditRequest {
            user_id: user_id.to_owned(),
            page_size,
            page_token: page_token.to_owned(),
        };
        let answer = self
            .call(message, |mut client, request| async move {
                client.list_reveal_audit(request).await
            })
            .await?;
        Ok(AuditPage {
            entries: answer.entries,
            next_page_token: answer.next_page_token,
        })
    }

    /// Makes one call with a service token; when settings refuses the token as expired or
    /// unknown (auth rotated keys, or the clock jumped), fetches a new one and tries once more.
    async fn call<M, R, F, Fut>(&self, message: M, send: F) -> Result<R, ApiError>
    where
        M: Clone,
        F: Fn(SettingsServiceClient<Channel>, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let deadline = Deadline::after(CALL_BUDGET);
        let mut renewed = false;
        loop {
            let token = self.tokens.token().await?;
            let request = self.request(message.clone(), &token, &deadline);
            match send(self.settings.clone(), request).await {
                Ok(answer) => return Ok(answer.into_inner()),
                Err(status) => {
                    let error = from_upstream(&status, &deadline, SETTINGS);
                    if renewed || !stale_token(error.reason) {
                        return Err(error);
                    }
                    tracing::debug!(upstream = AUTH, "service token refused; fetching a new one");
                    self.tokens.invalidate().await;
                    renewed = true;
                }
            }
        }
    }

    fn request<M>(
        &self,
        message: M,
        token: &SecretString,
        deadline: &Deadline,
    ) -> tonic::Request<M> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(deadline.timeout());
        let metadata = request.metadata_mut();
        if let Ok(value) =
            MetadataValue::try_from(crate::bearer::authorization(token.expose_secret()))
        {
            metadata.insert("authorization", value);
        }
        if let Ok(value) = MetadataValue::try_from(uuid::Uuid::new_v4().to_string()) {
            metadata.insert(latchkey_proto::REQUEST_ID_METADATA, value);
        }
        latchkey_common::telemetry::inject_into_metadata(metadata);
        request
    }
}

/// Settings as answers and logs name it.
const SETTINGS: &str = "the settings service";

/// Whether a refusal says the token itself went stale, so a new one may pass.
fn stale_token(reason: Reason) -> bool {
    matches!(reason, Reason::TokenExpired | Reason::TokenKeyUnknown)
}
