//! The auth routes: sign-in sync and token issue (the web app's server, with the sync secret),
//! the signed-in user (read, delete, sign out everywhere), the public JWKS, and the dev session
//! of `latchkey dev`. Request and response bodies are typed; their field names and presence are
//! the REST contract (fields serialise in alphabetical order, as they always have).

use super::parse_json;
use super::problems::{BearerProblems, DevProblems, SyncProblems, TokenProblems, UpstreamProblems};
use crate::caller::{authenticate, on_behalf, sync_gate, sync_verdict};
use crate::forward::{AUTH, budget, grpc_request, with_bearer, with_sync_secret};
use crate::limits::read_body;
use crate::middleware::Ctx;
use crate::problem::{HttpProblem, from_grpc};
use crate::state::GatewayState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use latchkey_common::upstream::retry_idempotent;
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::{ApiError, Reason, Violation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tonic::metadata::{Ascii, MetadataValue};
use utoipa::ToSchema;

/// The fixed identity `POST /api/dev/session` signs in (dev mode only).
pub const DEV_USER: (&str, &str, &str) = ("dev", "dev-user", "dev@latchkey.localhost");

/// `{provider, subject, email, email_verified?, name?, avatar_url?}`, or the bare
/// `{email, name}` a hand-rolled backend's sign-in callback sends (identity provider `email`).
/// Provider and subject come together or not at all (`dependentRequired` in the document).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    description = "provider and subject together, or neither (an email-only sync: `{email, name}`)"
)]
pub struct SyncUserRequest {
    #[serde(default)]
    #[schema(
        pattern = r"^\s*[A-Za-z0-9._-]{1,64}\s*$",
        examples("github"),
        nullable = false
    )]
    provider: Option<String>,
    /// the provider's user id
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255, pattern = r"\S", nullable = false)]
    subject: Option<String>,
    /// normalised (Unicode NFKC, lower case); control, invisible and mixed-script look-alike
    /// characters are refused
    #[schema(format = Email, max_length = 320)]
    email: String,
    /// the provider vouches that the user owns `email`; only then may a new identity join the
    /// existing user with that email
    #[serde(default)]
    #[schema(default = false, nullable = false)]
    email_verified: Option<bool>,
    #[serde(default)]
    #[schema(max_length = 256)]
    name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 2048, pattern = r"^\s*(https?://[\s\S]*)?$")]
    avatar_url: Option<String>,
    /// also answer a refresh token (`refresh_token`, `refresh_expires_in`); see
    /// `POST /api/auth/refresh`
    #[serde(default)]
    #[schema(default = false, nullable = false)]
    refresh: Option<bool>,
}

const SYNC_EXAMPLE: &str = r#"{"provider": "github", "subject": "12345", "email": "ada@example.com", "email_verified": true, "name": "Ada"} or {"email": "ada@example.com", "name": "Ada"}"#;

/// Exactly one of `user_id` or `email` (`oneOf` in the document).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(description = "exactly one of user_id or email")]
pub struct TokenRequest {
    #[serde(default)]
    #[schema(format = Uuid, nullable = false)]
    user_id: Option<String>,
    #[serde(default)]
    #[schema(format = Email, max_length = 320, nullable = false)]
    email: Option<String>,
    /// also answer a refresh token (`refresh_token`, `refresh_expires_in`); see
    /// `POST /api/auth/refresh`
    #[serde(default)]
    #[schema(default = false, nullable = false)]
    refresh: Option<bool>,
}

/// A user as sync answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    avatar_url: String,
    #[schema(format = DateTime)]
    created_at: String,
    email: String,
    #[schema(format = Uuid)]
    id: String,
    name: String,
    provider: String,
    subject: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<auth_pb::User> for User {
    fn from(user: auth_pb::User) -> Self {
        User {
            avatar_url: user.avatar_url,
            created_at: user.created_at,
            email: user.email,
            id: user.id,
            name: user.name,
            provider: user.provider,
            subject: user.subject,
            updated_at: user.updated_at,
        }
    }
}

/// The signed-in user, as `GET /api/auth/me` answers it (no subject).
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    avatar_url: String,
    #[schema(format = DateTime)]
    created_at: String,
    email: String,
    #[schema(format = Uuid)]
    id: String,
    name: String,
    /// the provider of the identity the user signed in with last (the earliest among equals):
    /// e.g. `github`, `email` for an email-only sync, `legacy` for a user created from a web
    /// app token
    provider: String,
    /// the last sign-in that reported a profile
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<auth_pb::User> for Me {
    fn from(user: auth_pb::User) -> Self {
        Me {
            avatar_url: user.avatar_url,
            created_at: user.created_at,
            email: user.email,
            id: user.id,
            name: user.name,
            provider: user.provider,
            updated_at: user.updated_at,
        }
    }
}

/// A fresh access token, and a refresh token when the request asked for one.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    access_token: String,
    expires_in: i64,
    /// seconds until the refresh token expires unused (only with `"refresh": true`)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    refresh_expires_in: Option<i64>,
    /// present it to `POST /api/auth/refresh` (only with `"refresh": true`)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    refresh_token: Option<String>,
    #[schema(examples("Bearer"))]
    token_type: String,
}

impl From<Option<auth_pb::AccessToken>> for TokenResponse {
    fn from(token: Option<auth_pb::AccessToken>) -> Self {
        let token = token.unwrap_or_default();
        let token_type = if token.token_type.is_empty() {
            "Bearer".to_owned()
        } else {
            token.token_type
        };
        TokenResponse {
            access_token: token.access_token,
            expires_in: token.expires_in,
            refresh_expires_in: None,
            refresh_token: None,
            token_type,
        }
    }
}

impl TokenResponse {
    /// The answer of a request that asked for a refresh token.
    fn with_refresh(pair: super::refresh::RefreshResponse) -> Self {
        TokenResponse {
            access_token: pair.access_token,
            expires_in: pair.expires_in,
            refresh_expires_in: Some(pair.refresh_expires_in),
            refresh_token: Some(pair.refresh_token),
            token_type: pair.token_type,
        }
    }
}

/// The user sync created or updated, and a fresh token for them (and a refresh token when the
/// request asked for one).
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncUserResponse {
    access_token: String,
    expires_in: i64,
    /// seconds until the refresh token expires unused (only with `"refresh": true`)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    refresh_expires_in: Option<i64>,
    /// present it to `POST /api/auth/refresh` (only with `"refresh": true`)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    refresh_token: Option<String>,
    #[schema(examples("Bearer"))]
    token_type: String,
    user: User,
}

/// The revocation boundary of `POST /api/auth/me/revoke`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// tokens issued before this instant are refused
    #[schema(format = DateTime)]
    revoked_before: String,
}

/// One public signing key (RFC 7517).
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwk {
    alg: String,
    crv: String,
    kid: String,
    kty: String,
    #[serde(rename = "use")]
    key_use: String,
    x: String,
    /// P-256 keys (`kty` EC) only
    #[serde(skip_serializing_if = "String::is_empty")]
    y: String,
}

/// The public key set.
#[derive(Debug, Serialize, ToSchema)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

/// Upsert a user after sign-in and get an access token (web app server only).
#[utoipa::path(
    post,
    path = "/api/auth/sync-user",
    tag = "auth",
    operation_id = "syncUser",
    description = "Finds the user by identity (provider + subject). A new identity joins the one existing user with the same email when `email_verified` is true and LATCHKEY_LINK_VERIFIED_EMAILS is on (the default); otherwise it gets its own user. `{email, name}` alone is an email-only sync: identity provider `email`, subject the normalised email, not verified.",
    security(("syncSecret" = []), ("authSecret" = [])),
    request_body(content = SyncUserRequest, example = json!({"provider": "github", "subject": "12345", "email": "ada@example.com", "name": "Ada Lovelace", "avatar_url": "https://avatars.example.com/ada.png"})),
    responses((status = 200, description = "the user and a fresh token", body = SyncUserResponse), SyncProblems)
)]
pub async fn sync_user(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<SyncUserResponse>, HttpProblem> {
    let secret = sync_gate(&state, &ctx, &headers)?;
    let bytes = read_body(&headers, body).await?;
    let (message, refresh) = sync_body(&bytes)?;
    let mut answer = call_sync_user(&state, &ctx, message, secret.clone()).await?;
    if refresh {
        let user = auth_pb::issue_refresh_token_request::User::UserId(answer.user.id.clone());
        let pair = super::refresh::start_family(&state, &ctx, user, &secret).await?;
        answer.access_token = pair.access_token;
        answer.expires_in = pair.expires_in;
        answer.refresh_token = Some(pair.refresh_token);
        answer.refresh_expires_in = Some(pair.refresh_expires_in);
    }
    Ok(Json(answer))
}

/// The sync-user body as the RPC's request (shared with [`super::decode_body`]).
pub(crate) fn sync_request(bytes: &Bytes) -> Result<auth_pb::SyncUserRequest, ApiError> {
    Ok(sync_body(bytes)?.0)
}

/// The sync-user body as the RPC's request, and whether it asks for a refresh token.
fn sync_body(bytes: &Bytes) -> Result<(auth_pb::SyncUserRequest, bool), ApiError> {
    let body: SyncUserRequest = parse_json(bytes, SYNC_EXAMPLE)?;
    let refresh = body.refresh.unwrap_or(false);
    let message = auth_pb::SyncUserRequest {
        provider: body.provider.unwrap_or_default(),
        subject: body.subject.unwrap_or_default(),
        email: body.email,
        name: body.name.unwrap_or_default(),
        avatar_url: body.avatar_url.unwrap_or_default(),
        email_verified: body.email_verified,
    };
    Ok((message, refresh))
}

/// `Auth.SyncUser` with the sync secret; auth's verdict on the secret is remembered.
async fn call_sync_user(
    state: &GatewayState,
    ctx: &Ctx,
    message: auth_pb::SyncUserRequest,
    secret: MetadataValue<Ascii>,
) -> Result<SyncUserResponse, ApiError> {
    let request = with_sync_secret(grpc_request(message, ctx, budget::SYNC), &secret);
    let result = state
        .auth()
        .sync_user(request)
        .await
        .map_err(|s| from_grpc(&s, AUTH, ctx.deadline(budget::SYNC)));
    sync_verdict(state, ctx, &secret, &result);
    let response = result?.into_inner();
    let token = TokenResponse::from(response.token);
    Ok(SyncUserResponse {
        access_token: token.access_token,
        expires_in: token.expires_in,
        refresh_expires_in: None,
        refresh_token: None,
        token_type: token.token_type,
        user: response.user.unwrap_or_default().into(),
    })
}

/// Mint a fresh access token for a synced user (web app server only).
#[utoipa::path(
    post,
    path = "/api/auth/token",
    tag = "auth",
    operation_id = "issueToken",
    security(("syncSecret" = []), ("authSecret" = [])),
    request_body(content = TokenRequest, example = json!({"email": "ada@example.com"})),
    responses((status = 200, description = "a fresh token", body = TokenResponse), TokenProblems)
)]
pub async fn issue_token(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<TokenResponse>, HttpProblem> {
    let secret = sync_gate(&state, &ctx, &headers)?;
    let bytes = read_body(&headers, body).await?;
    let (user, refresh) = token_body(&bytes)?;
    if refresh {
        let user = super::refresh::same_user(user);
        let pair = super::refresh::start_family(&state, &ctx, user, &secret).await?;
        return Ok(Json(TokenResponse::with_refresh(pair)));
    }
    let message = auth_pb::IssueTokenRequest { user: Some(user) };
    let request = with_sync_secret(grpc_request(message, &ctx, budget::SYNC), &secret);
    let result = state
        .auth()
        .issue_token(request)
        .await
        .map_err(|s| from_grpc(&s, AUTH, ctx.deadline(budget::SYNC)));
    sync_verdict(&state, &ctx, &secret, &result);
    Ok(Json(result?.into_inner().token.into()))
}

/// The token body's user: exactly one of `user_id` or `email` (shared with
/// [`super::decode_body`]).
pub(crate) fn token_user(bytes: &Bytes) -> Result<auth_pb::issue_token_request::User, ApiError> {
    Ok(token_body(bytes)?.0)
}

/// The token body's user, and whether it asks for a refresh token.
fn token_body(bytes: &Bytes) -> Result<(auth_pb::issue_token_request::User, bool), ApiError> {
    let body: TokenRequest = parse_json(
        bytes,
        r#"{"user_id": "…"} or {"email": "ada@example.com", "refresh": true}"#,
    )?;
    let refresh = body.refresh.unwrap_or(false);
    match (body.user_id, body.email) {
        (Some(id), None) => Ok((auth_pb::issue_token_request::User::UserId(id), refresh)),
        (None, Some(email)) => Ok((auth_pb::issue_token_request::User::Email(email), refresh)),
        _ => Err(ApiError::invalid(
            "Name the user with exactly one of `user_id` or `email`.",
            vec![Violation::new(
                "user_id",
                "exactly one of user_id or email is required",
            )],
        )),
    }
}

/// The signed-in user.
#[utoipa::path(
    get,
    path = "/api/auth/me",
    tag = "auth",
    operation_id = "getMe",
    security(("bearer" = [])),
    responses((status = 200, description = "the user", body = Me), BearerProblems)
)]
pub async fn get_me(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
) -> Result<Json<Me>, HttpProblem> {
    let token = authenticate(&state, &headers, &ctx).await?;
    let user = retry_idempotent(&ctx.deadline(budget::READ), || {
        let mut client = state.auth();
        let request = with_bearer(
            grpc_request(auth_pb::GetUserRequest {}, &ctx, budget::READ),
            &token,
        );
        async move { client.get_user(request).await }
    })
    .await
    .map_err(|s| from_grpc(&s, AUTH, ctx.deadline(budget::READ)))?
    .into_inner()
    .user
    .unwrap_or_default();
    Ok(Json(user.into()))
}

/// Delete the signed-in user and all their settings.
#[utoipa::path(
    delete,
    path = "/api/auth/me",
    tag = "auth",
    operation_id = "deleteMe",
    security(("bearer" = [])),
    responses((status = 204, description = "deleted"), BearerProblems)
)]
pub async fn delete_me(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
) -> Result<StatusCode, HttpProblem> {
    let message = auth_pb::DeleteUserRequest {};
    let (token, request) = on_behalf(&state, &headers, &ctx, message, budget::DELETE_USER).await?;
    state
        .auth()
        .delete_user(request)
        .await
        .map_err(|s| from_grpc(&s, AUTH, ctx.deadline(budget::DELETE_USER)))?;
    state.inner.cache.forget(&token.presented).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign out everywhere: every token issued to the caller so far is refused (TOKEN_REVOKED).
#[utoipa::path(
    post,
    path = "/api/auth/me/revoke",
    tag = "auth",
    operation_id = "revokeMe",
    security(("bearer" = [])),
    responses((status = 200, description = "the revocation boundary", body = Revoked), BearerProblems)
)]
pub async fn revoke_me(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
) -> Result<Json<Revoked>, HttpProblem> {
    let message = auth_pb::RevokeUserTokensRequest {};
    let (token, request) = on_behalf(&state, &headers, &ctx, message, budget::WRITE).await?;
    let revoked_before = state
        .auth()
        .revoke_user_tokens(request)
        .await
        .map_err(|s| from_grpc(&s, AUTH, ctx.deadline(budget::WRITE)))?
        .into_inner()
        .revoked_before;
    state.inner.cache.forget(&token.presented).await;
    Ok(Json(Revoked {
        revoked_before: latchkey_common::clock::rfc3339(revoked_before),
    }))
}

/// The JWKS cache lifetime when auth does not say (an auth from before it did).
const JWKS_FALLBACK_MAX_AGE: i64 = 60;

/// Public signing keys (RFC 7517), cacheable for auth's standby lead (`Cache-Control: max-age`).
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "auth",
    operation_id = "getJwks",
    security(),
    responses((status = 200, description = "the key set", body = Jwks, content_type = "application/jwk-set+json"), UpstreamProblems)
)]
pub async fn jwks(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Response, HttpProblem> {
    let set = retry_idempotent(&ctx.deadline(budget::READ), || {
        let mut client = state.auth();
        let request = grpc_request(auth_pb::GetJwksRequest {}, &ctx, budget::READ);
        async move { client.get_jwks(request).await }
    })
    .await
    .map_err(|s| from_grpc(&s, AUTH, ctx.deadline(budget::READ)))?
    .into_inner();
    // Auth's standby lead: a new key is in the set at least this long before it signs.
    let max_age = match set.cache_max_age_seconds {
        seconds if seconds > 0 => seconds,
        _ => JWKS_FALLBACK_MAX_AGE,
    };
    let keys = set
        .keys
        .into_iter()
        .map(|k| Jwk {
            alg: k.alg,
            crv: k.crv,
            kid: k.kid,
            kty: k.kty,
            key_use: k.key_use,
            x: k.x,
            y: k.y,
        })
        .collect();
    let body = serde_json::to_string(&Jwks { keys }).map_err(|_| ApiError::internal())?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/jwk-set+json".to_owned()),
            (header::CACHE_CONTROL, format!("public, max-age={max_age}")),
        ],
        body,
    )
        .into_response())
}

/// Signs in the fixed [`DEV_USER`] under `latchkey dev`.
#[utoipa::path(
    post,
    path = "/api/dev/session",
    tag = "dev",
    operation_id = "devSession",
    summary = "Dev mode only (`latchkey dev`): sign in a fixed dev user; 404 otherwise. Needs a loopback Host and a same-origin signal: an Origin equal to this page's origin, or (without Origin) `X-Latchkey-Dev: 1`; 400 otherwise",
    security(),
    params(("X-Latchkey-Dev" = Option<DevHeader>, Header, nullable = false)),
    responses((status = 200, description = "the dev user and a token", body = SyncUserResponse), DevProblems)
)]
pub async fn dev_session(
    State(state): State<GatewayState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
) -> Result<Json<SyncUserResponse>, HttpProblem> {
    crate::dev::same_origin(&headers)?;
    let Some(secret) = state.inner.dev_session.as_ref() else {
        return Err(ApiError::new(
            Reason::NotFound,
            "Dev sign-in exists only under `latchkey dev`.",
        )
        .into());
    };
    let secret =
        MetadataValue::try_from(secret.expose_secret()).map_err(|_| ApiError::internal())?;
    let (provider, subject, email) = DEV_USER;
    let message = auth_pb::SyncUserRequest {
        provider: provider.into(),
        subject: subject.into(),
        email: email.into(),
        name: "Dev User".into(),
        avatar_url: String::new(),
        email_verified: None,
    };
    Ok(Json(call_sync_user(&state, &ctx, message, secret).await?))
}

/// The value of `X-Latchkey-Dev` a script sends instead of `Origin`.
#[derive(Debug, ToSchema)]
pub enum DevHeader {
    #[schema(rename = "1")]
    One,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> auth_pb::User {
        auth_pb::User {
            id: "0b6e…".into(),
            provider: "github".into(),
            subject: "12345".into(),
            email: "ada@example.com".into(),
            name: "Ada".into(),
            avatar_url: String::new(),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-02T00:00:00Z".into(),
            ..Default::default()
        }
    }

    /// The typed bodies serialise exactly as the `json!` values they replaced.
    #[test]
    fn bodies_keep_their_wire_format() {
        let answer = SyncUserResponse {
            access_token: "t".into(),
            expires_in: 900,
            refresh_expires_in: None,
            refresh_token: None,
            token_type: "Bearer".into(),
            user: user().into(),
        };
        let user = user();
        let mut before = serde_json::json!({ "user": {
            "id": user.id, "provider": user.provider, "subject": user.subject,
            "email": user.email, "name": user.name, "avatar_url": user.avatar_url,
            "created_at": user.created_at, "updated_at": user.updated_at,
        }});
        before["access_token"] = "t".into();
        before["token_type"] = "Bearer".into();
        before["expires_in"] = 900.into();
        assert_eq!(serde_json::to_string(&answer).unwrap(), before.to_string());

        let me = Me::from(user.clone());
        let before = serde_json::json!({
            "id": user.id, "email": user.email, "name": user.name, "provider": user.provider,
            "avatar_url": user.avatar_url, "created_at": user.created_at,
            "updated_at": user.updated_at,
        });
        assert_eq!(serde_json::to_string(&me).unwrap(), before.to_string());

        let token = TokenResponse::from(None);
        let before =
            serde_json::json!({ "access_token": "", "token_type": "Bearer", "expires_in": 0 });
        assert_eq!(serde_json::to_string(&token).unwrap(), before.to_string());

        let keys = Jwks {
            keys: vec![Jwk {
                alg: "EdDSA".into(),
                crv: "Ed25519".into(),
                kid: "k1".into(),
                kty: "OKP".into(),
                key_use: "sig".into(),
                x: "abc".into(),
                y: String::new(),
            }],
        };
        let before = serde_json::json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": "abc", "kid": "k1", "alg": "EdDSA", "use": "sig",
        }]});
        assert_eq!(serde_json::to_string(&keys).unwrap(), before.to_string());
    }
}
