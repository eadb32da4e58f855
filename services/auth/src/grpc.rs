//! The gRPC adapter: decode the request, call [`AuthCore`], map errors through the catalogue.
//! Nothing else lives here.

use crate::accounts::Outcome;
use crate::error::AuthError;
use crate::service::{AuthCore, Principal, SyncInput, UserRef};
use crate::store::{identities, users};
use latchkey_common::clock::rfc3339;
use latchkey_common::grpc::{Refusal, refuse};
use latchkey_proto::auth::v1 as pb;
use latchkey_proto::auth::v1::auth_service_server::AuthService;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use tonic::{Request, Response, Status, metadata::MetadataMap};

/// `AuthService` over [`AuthCore`].
#[derive(Clone)]
pub struct AuthGrpc {
    core: Arc<AuthCore>,
}

impl AuthGrpc {
    /// Wraps the core.
    pub fn new(core: Arc<AuthCore>) -> Self {
        AuthGrpc { core }
    }
}

/// The one answer of a refused call: logged, counted and converted by the common kit.
fn status(metadata: &MetadataMap, error: AuthError) -> Status {
    refuse("auth", metadata, error)
}

impl Refusal for AuthError {
    fn is_fault(&self) -> bool {
        matches!(
            self,
            AuthError::Internal(_) | AuthError::DatabaseUnavailable(_)
        )
    }
}

/// The bearer token from `authorization` metadata, read as every Latchkey verifier reads it.
pub use latchkey_client::bearer;

fn sync_secret(metadata: &MetadataMap) -> Option<&str> {
    [latchkey_proto::SYNC_SECRET_METADATA, "x-auth-secret"]
        .iter()
        .find_map(|key| metadata.get(*key).and_then(|v| v.to_str().ok()))
}

/// The wire form of a user; `provider`/`subject` are those of `identity` (the one signed in with
/// just now, or last).
pub fn user_message(user: &users::Model, identity: Option<&identities::Model>) -> pb::User {
    pb::User {
        id: user.id.clone(),
        provider: identity.map(|i| i.provider.clone()).unwrap_or_default(),
        subject: identity.map(|i| i.subject.clone()).unwrap_or_default(),
        email: user.email.clone(),
        name: user.name.clone(),
        avatar_url: user.avatar_url.clone(),
        disabled: user.disabled,
        created_at: rfc3339(user.created_at),
        updated_at: rfc3339(user.updated_at),
    }
}

fn access_token(issued: crate::service::Issued) -> pb::AccessToken {
    pb::AccessToken {
        access_token: issued.token,
        token_type: "Bearer".into(),
        expires_in: issued.expires_in,
    }
}

fn refresh_message(refresh: crate::refresh::IssuedRefresh) -> pb::RefreshToken {
    pb::RefreshToken {
        refresh_token: refresh.token,
        refresh_expires_in: refresh.expires_in,
    }
}

fn authenticated(
    principal: Principal,
    exchanged: Option<SecretString>,
) -> pb::AuthenticateResponse {
    use crate::tokens::Subject;
    let (kind, client_id) = match &principal.token.subject {
        Subject::Service(client) => (pb::PrincipalKind::Service, client.clone()),
        _ => (pb::PrincipalKind::User, String::new()),
    };
    pb::AuthenticateResponse {
        kind: kind as i32,
        user: principal
            .user
            .as_ref()
            .map(|user| user_message(user, principal.identity.as_ref())),
        client_id,
        scopes: principal.token.scopes,
        token_id: principal.token.token_id,
        expires_at: principal.token.expires_at,
        algorithm: principal.token.algorithm.to_owned(),
        exchanged_token: exchanged
            .map(|token| token.expose_secret().to_owned())
            .unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    async fn sync_user(
        &self,
        request: Request<pb::SyncUserRequest>,
    ) -> Result<Response<pb::SyncUserResponse>, Status> {
        let metadata = request.metadata().clone();
        let body = request.into_inner();
        let input = SyncInput {
            provider: body.provider,
            subject: body.subject,
            email: body.email,
            email_verified: body.email_verified.unwrap_or(false),
            name: body.name,
            avatar_url: body.avatar_url,
        };
        let (synced, issued) = self
            .core
            .sync_user(sync_secret(&metadata), input)
            .await
            .map_err(|e| status(&metadata, e))?;
        Ok(Response::new(pb::SyncUserResponse {
            user: Some(user_message(&synced.user, Some(&synced.identity))),
            token: Some(access_token(issued)),
            created: synced.outcome == Outcome::Created,
        }))
    }

    async fn issue_token(
        &self,
        request: Request<pb::IssueTokenRequest>,
    ) -> Result<Response<pb::IssueTokenResponse>, Status> {
        let metadata = request.metadata().clone();
        let who = match request.into_inner().user {
            Some(pb::issue_token_request::User::UserId(id)) => UserRef::Id(id),
            Some(pb::issue_token_request::User::Email(email)) => UserRef::Email(email),
            None => UserRef::Id(String::new()),
        };
        let issued = self
            .core
            .issue_token(sync_secret(&metadata), who)
            .await
            .map_err(|e| status(&metadata, e))?;
        Ok(Response::new(pb::IssueTokenResponse {
            token: Some(access_token(issued)),
        }))
    }

    async fn issue_service_token(
        &self,
        request: Request<pb::IssueServiceTokenRequest>,
    ) -> Result<Response<pb::IssueServiceTokenResponse>, Status> {
        let metadata = request.metadata().clone();
        let body = request.into_inner();
        let issued = self
            .core
            .issue_service_token(&body.client_id, &body.client_secret, &body.scopes)
            .map_err(|e| status(&metadata, e))?;
        let scopes = issued.scopes.clone();
        Ok(Response::new(pb::IssueServiceTokenResponse {
            token: Some(access_token(issued)),
            scopes,
        }))
    }

    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateResponse>, Status> {
        let metadata = request.metadata().clone();
        let body = request.into_inner();
        let token = if body.token.is_empty() {
            bearer(&metadata).to_owned()
        } else {
            body.token
        };
        let principal = self
            .core
            .authenticate(&token)
            .await
            .map_err(|e| status(&metadata, e))?;
        let exchanged = self.core.exchange_legacy(&principal);
        Ok(Response::new(authenticated(principal, exchanged)))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        Ok(Response::new(pb::GetJwksResponse {
            keys: self.core.jwks(),
            cache_max_age_seconds: self.core.jwks_max_age(),
        }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let metadata = request.metadata();
        let (user, identity) = self
            .core
            .current_account(bearer(metadata))
            .await
            .map_err(|e| status(metadata, e))?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(user_message(&user, identity.as_ref())),
        }))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let metadata = request.metadata();
        let settings_deleted = self
            .core
            .delete_user(bearer(metadata))
            .await
            .map_err(|e| status(metadata, e))?;
        Ok(Response::new(pb::DeleteUserResponse { settings_deleted }))
    }

    async fn revoke_user_tokens(
        &self,
        request: Request<pb::RevokeUserTokensRequest>,
    ) -> Result<Response<pb::RevokeUserTokensResponse>, Status> {
        let metadata = request.metadata();
        let revoked_before = self
            .core
            .revoke_tokens(bearer(metadata))
            .await
            .map_err(|e| status(metadata, e))?;
        Ok(Response::new(pb::RevokeUserTokensResponse {
            revoked_before,
        }))
    }

    async fn issue_refresh_token(
        &self,
        request: Request<pb::IssueRefreshTokenRequest>,
    ) -> Result<Response<pb::IssueRefreshTokenResponse>, Status> {
        let metadata = request.metadata().clone();
        let user = request.into_inner().user;
        // Without a sync secret and a user named, the bearer token is the credential and names
        // the user (a browser holding only its web app's token).
        let by_bearer = user.is_none() && sync_secret(&metadata).is_none();
        let issued = if by_bearer && !bearer(&metadata).is_empty() {
            self.core
                .issue_token_with_refresh_for_bearer(bearer(&metadata))
                .await
        } else {
            let who = match user {
                Some(pb::issue_refresh_token_request::User::UserId(id)) => UserRef::Id(id),
                Some(pb::issue_refresh_token_request::User::Email(email)) => UserRef::Email(email),
                None => UserRef::Id(String::new()),
            };
            self.core
                .issue_token_with_refresh(sync_secret(&metadata), who)
                .await
        }
        .map_err(|e| status(&metadata, e))?;
        Ok(Response::new(pb::IssueRefreshTokenResponse {
            token: Some(access_token(issued.access)),
            refresh: Some(refresh_message(issued.refresh)),
        }))
    }

    async fn refresh_access_token(
        &self,
        request: Request<pb::RefreshAccessTokenRequest>,
    ) -> Result<Response<pb::RefreshAccessTokenResponse>, Status> {
        let metadata = request.metadata().clone();
        let refreshed = self
            .core
            .refresh(&request.into_inner().refresh_token)
            .await
            .map_err(|e| status(&metadata, e))?;
        Ok(Response::new(pb::RefreshAccessTokenResponse {
            token: Some(access_token(refreshed.access)),
            refresh: Some(refresh_message(refreshed.refresh)),
        }))
    }
}
