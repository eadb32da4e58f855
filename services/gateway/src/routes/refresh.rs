//! The refresh-token routes of the auth area: `POST /api/auth/refresh` (a refresh token is the
//! credential; rate-limited like the token route), starting a family for the token and
//! sync-user routes when their caller asks (`"refresh": true`), and `POST /api/auth/me/refresh`
//! (the caller's own bearer token, a web app's included, is the credential). Refresh tokens pass through; the
//! gateway never stores or logs them.

use super::parse_json;
use super::problems::{BearerProblems, RefreshProblems};
use crate::caller::on_behalf;
use crate::forward::{AUTH, budget, grpc_request, with_sync_secret};
use crate::limits::{rate_limited, read_body};
use crate::middleware::Ctx;
use crate::problem::{HttpProblem, from_grpc};
use crate::state::GatewayState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use latchkey_proto::ApiError;
use latchkey_proto::auth::v1 as auth_pb;
use serde::{Deserialize, Serialize};
use tonic::metadata::{Ascii, MetadataValue};
use utoipa::ToSchema;

/// The refresh token to exchange.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// the `refresh_token` of the last answer (token, sync-user or refresh); each works once
    #[schema(min_length = 1, examples("lkr_…"))]
    refresh_token: String,
}

/// A new access token and the refresh token to present next time.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshResponse {
    pub(super) access_token: String,
    pub(super) expires_in: i64,
    /// seconds until `refresh_token` expires unused
    pub(super) refresh_expires_in: i64,
    /// replaces the one sent, which is now retired: presenting a retired one again (after a
    /// grace window of a few seconds) revokes every refresh token of the sign-in
    pub(super) refresh_token: String,
    #[schema(examples("Bearer"))]
    pub(super) token_type: String,
}

impl RefreshResponse {
    fn from_parts(
        token: Option<auth_pb::AccessToken>,
        refresh: Option<auth_pb::RefreshToken>,
    ) -> Self {
        let token = token.unwrap_or_default();
        let refresh = refresh.unwrap_or_default();
        RefreshResponse {
            access_token: token.access_token,
            expires_in: token.expires_in,
            refresh_expires_in: refresh.refresh_expires_in,
            refresh_token: refresh.refresh_token,
            token_type: "Bearer".to_owned(),
        }
    }
}

/// Exchange a refresh token for a new access token and the next refresh token.
#[utoipa::path(
    post,
    path = "/api/auth/refresh",
    tag = "auth",
    operation_id = "refreshToken",
    description = "Retires the refresh token sent and answers a new access token with the next refresh token of the same family. A retired token presented again within LATCHKEY_REFRESH_TOKEN_GRACE_SECS (10 s) of its exchange gets a sibling (two tabs refreshing at once); later it revokes the whole family (REFRESH_TOKEN_REUSED). Get the first one from POST /api/auth/token or /api/auth/sync-user with `\"refresh\": true`.",
    security(),
    request_body(content = RefreshRequest, example = json!({"refresh_token": "lkr_3q2-7wVf0m1P6nH4cX9kR2tY8uZ5aB1dE7gJ0iL3oQs"})),
    responses((status = 200, description = "a new access token and the next refresh token", body = RefreshResponse), RefreshProblems)
)]
pub async fn refresh(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<RefreshResponse>, HttpProblem> {
    if let Err(wait) = state.inner.sync_limiter.take(ctx.client_ip) {
        return Err(rate_limited(wait, "sync, token and refresh requests").into());
    }
    let failures = &state.inner.failure_limiter;
    if let Err(wait) = failures.check(ctx.client_ip) {
        return Err(rate_limited(wait, "failed authentications").into());
    }
    let bytes = read_body(&headers, body).await?;
    let message = refresh_request(&bytes)?;
    let request = grpc_request(message, &ctx, budget::SYNC);
    // Not retried: an exchange is not idempotent (a retry would present a retired token).
    let answer = state
        .auth()
        .refresh_access_token(request)
        .await
        .map_err(|s| from_grpc(&s, AUTH, ctx.deadline(budget::SYNC)));
    match answer {
        Ok(response) => {
            let response = response.into_inner();
            Ok(Json(RefreshResponse::from_parts(
                response.token,
                response.refresh,
            )))
        }
        Err(error) => {
            if error.reason.http_status() == 401 {
                let _ = failures.take(ctx.client_ip);
            }
            Err(error.into())
        }
    }
}

/// The refresh body as the RPC's request.
fn refresh_request(bytes: &Bytes) -> Result<auth_pb::RefreshAccessTokenRequest, ApiError> {
    let body: RefreshRequest = parse_json(bytes, r#"{"refresh_token": "lkr_…"}"#)?;
    Ok(auth_pb::RefreshAccessTokenRequest {
        refresh_token: body.refresh_token,
    })
}

/// The token route's user, as `Auth.IssueRefreshToken` names it.
pub(super) fn same_user(
    user: auth_pb::issue_token_request::User,
) -> auth_pb::issue_refresh_token_request::User {
    use auth_pb::issue_refresh_token_request::User as Refresh;
    use auth_pb::issue_token_request::User;
    match user {
        User::UserId(id) => Refresh::UserId(id),
        User::Email(email) => Refresh::Email(email),
    }
}

/// `Auth.IssueRefreshToken` with the sync secret (already accepted by the caller's route, or
/// checked here): an access token and the first refresh token of a new family.
pub(super) async fn start_family(
    state: &GatewayState,
    ctx: &Ctx,
    user: auth_pb::issue_refresh_token_request::User,
    secret: &MetadataValue<Ascii>,
) -> Result<RefreshResponse, ApiError> {
    let message = auth_pb::IssueRefreshTokenRequest { user: Some(user) };
    let request = with_sync_secret(grpc_request(message, ctx, budget::SYNC), secret);
    let result = state
        .auth()
        .issue_refresh_token(request)
        .await
        .map_err(|s| from_grpc(&s, AUTH, ctx.deadline(budget::SYNC)));
    crate::caller::sync_verdict(state, ctx, secret, &result);
    let response = result?.into_inner();
    Ok(RefreshResponse::from_parts(
        response.token,
        response.refresh,
    ))
}

/// Start a refresh family with the caller's own token: a browser holding its web app's token
/// (Auth.js, legacy HS256) or a Latchkey access token, and no sync secret.
#[utoipa::path(
    post,
    path = "/api/auth/me/refresh",
    tag = "auth",
    operation_id = "startRefresh",
    description = "Answers a new access token and the first refresh token of a new family for the bearer token's user. The bearer token may be the web app's own (Auth.js v4/v5, or legacy HS256 when enabled) or a Latchkey access token; it must verify, its user must be enabled and not signed out everywhere since it was issued. A service token is refused (400: it has no user). No body. Counts against the sync/token rate limit. Then renew through POST /api/auth/refresh.",
    security(("bearer" = [])),
    responses((status = 200, description = "an access token and the first refresh token of a new family", body = RefreshResponse), BearerProblems)
)]
pub async fn start_refresh(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
) -> Result<Json<RefreshResponse>, HttpProblem> {
    if let Err(wait) = state.inner.sync_limiter.take(ctx.client_ip) {
        return Err(rate_limited(wait, "sync, token and refresh requests").into());
    }
    let message = auth_pb::IssueRefreshTokenRequest { user: None };
    let (_, request) = on_behalf(&state, &headers, &ctx, message, budget::SYNC).await?;
    // Not retried: each call starts a family.
    let answer = state
        .auth()
        .issue_refresh_token(request)
        .await
        .map_err(|s| from_grpc(&s, AUTH, ctx.deadline(budget::SYNC)));
    match answer {
        Ok(response) => {
            let response = response.into_inner();
            Ok(Json(RefreshResponse::from_parts(
                response.token,
                response.refresh,
            )))
        }
        Err(error) => {
            if error.reason.http_status() == 401 {
                let _ = state.inner.failure_limiter.take(ctx.client_ip);
            }
            Err(error.into())
        }
    }
}
