//! Asks the settings service to delete a user's data, over gRPC with auth's own service token.

use crate::error::AuthError;
use crate::service::SettingsPurger;
use latchkey_common::grpc::ChannelProfile;
use latchkey_common::upstream::{Deadline, from_upstream};
use latchkey_proto::Reason;
use latchkey_proto::settings::v1::{
    PurgeUserRequest, settings_service_client::SettingsServiceClient,
};
use std::time::Duration;

/// How long a purge may take (the gateway's budget for deleting a user is 15 s).
const PURGE_BUDGET: Duration = Duration::from_secs(10);
const SETTINGS: &str = "the settings service";
use tonic::transport::Channel;

/// Purges through the settings service at a configured address.
pub struct GrpcPurger {
    channel: Channel,
}

impl GrpcPurger {
    /// A lazily connected client (settings may start after auth), balanced per request over
    /// every address the URL's name resolves to.
    pub fn new(url: &str) -> Result<Self, latchkey_common::balance::BalanceError> {
        let channel = ChannelProfile::PURGE.channel(&[url.to_owned()])?;
        Ok(GrpcPurger { channel })
    }
}

#[async_trait::async_trait]
impl SettingsPurger for GrpcPurger {
    async fn purge(&self, user_id: &str, bearer: &str) -> Result<i64, AuthError> {
        let deadline = Deadline::after(PURGE_BUDGET);
        let mut request = tonic::Request::new(PurgeUserRequest {
            user_id: user_id.to_owned(),
        });
        request.set_timeout(deadline.timeout());
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
                let error = from_upstream(&status, &deadline, SETTINGS);
                tracing::warn!(reason = %error.reason, "settings purge failed; the user is kept so nothing is orphaned");
                Err(match error.reason {
                    Reason::UpstreamUnavailable | Reason::DeadlineExceeded => {
                        AuthError::Remote(error)
                    }
                    _ => AuthError::Internal(format!("settings refused the purge: {error}")),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_proto::ApiError;

    /// A stand-in for a proxy in front of settings that refuses every call with a bare
    /// UNAUTHENTICATED: no Latchkey `ErrorInfo`, so not a verdict on any token.
    async fn refusing_proxy() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let refuse = || async {
            tonic::Status::unauthenticated("the mesh wants its own credentials")
                .into_http::<tonic::body::Body>()
        };
        let router = tonic::service::Routes::default()
            .into_axum_router()
            .fallback(refuse);
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_routes(tonic::service::Routes::from(router))
                .serve_with_incoming(incoming),
        );
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_bare_unauthenticated_from_a_proxy_is_an_upstream_problem_not_a_token_error() {
        let purger = GrpcPurger::new(&refusing_proxy().await).unwrap();
        let error: ApiError = purger.purge("u1", "token").await.unwrap_err().into();
        assert_eq!(error.reason, Reason::UpstreamUnavailable);
        assert_eq!(error.metadata["upstream"], SETTINGS);
    }
}
