//! Asks the settings service to delete a user's data, over gRPC with auth's own service token.

use crate::error::AuthError;
use crate::service::SettingsPurger;
use latchkey_proto::settings::v1::{
    PurgeUserRequest, settings_service_client::SettingsServiceClient,
};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Purges through the settings service at a configured address.
pub struct GrpcPurger {
    channel: Channel,
}

impl GrpcPurger {
    /// A lazily connected client (settings may start after auth), balanced per request over
    /// every address the URL's name resolves to.
    pub fn new(url: &str) -> Result<Self, latchkey_common::balance::BalanceError> {
        let configure = std::sync::Arc::new(|endpoint: Endpoint| {
            endpoint
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(10))
        });
        let channel = latchkey_common::balance::channel(&[url.to_owned()], configure)?;
        Ok(GrpcPurger { channel })
    }
}

#[async_trait::async_trait]
impl SettingsPurger for GrpcPurger {
    async fn purge(&self, user_id: &str, bearer: &str) -> Result<i64, AuthError> {
        let mut request = tonic::Request::new(PurgeUserRequest {
            user_id: user_id.to_owned(),
        });
        let value = format!("Bearer {bearer}")
            .parse()
            .map_err(|_| AuthError::Internal("token is not a header value".into()))?;
        request.metadata_mut().insert("authorization", value);
        latchkey_common::telemetry::inject_into_metadata(request.metadata_mut());
        match SettingsServiceClient::new(self.channel.clone())
            .purge_user(request)
            .await
        {
            Ok(response) => Ok(response.into_inner().settings_deleted),
            Err(status) => {
                tracing::warn!(code = ?status.code(), "settings purge failed; the user is kept so nothing is orphaned");
                Err(AuthError::Upstream("the settings service"))
            }
        }
    }
}
