//! Who is calling: a user with a bearer token (verified through `Auth.Authenticate`, cached),
//! or the web app's server with the sync secret. Both spend the address's failed-authentication
//! budget when refused, and a credential auth accepted lately skips that budget, so failures from
//! the same address never lock out a valid caller.

use crate::forward::{AUTH, Bearer, budget, grpc_request, with_bearer};
use crate::limits::rate_limited;
use crate::middleware::Ctx;
use crate::problem::{HttpProblem, from_grpc};
use crate::state::GatewayState;
use axum::http::{HeaderMap, header};
use latchkey_client::{Asking, RenewalAnswer, Verdict};
use latchkey_common::config::SYNC_SECRET;
use latchkey_common::upstream::retry_idempotent;
use latchkey_proto::auth::v1 as auth_pb;
use latchkey_proto::{ApiError, Reason};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};

/// The bearer token of `Authorization`, or TOKEN_MISSING / TOKEN_MALFORMED.
fn bearer_token(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            Reason::TokenMissing,
            "Send `Authorization: Bearer <access token>`; your web app's server gets one from POST /api/auth/sync-user or POST /api/auth/token.",
        ));
    };
    let text = value.to_str().unwrap_or_default().trim();
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::new(
            Reason::TokenMalformed,
            "The Authorization header must be `Bearer <access token>`.",
        ));
    }
    Ok(token.to_owned())
}

/// Verifies the caller's bearer token (cached for at most 5 s) and answers it. Failures spend
/// the address's failed-authentication budget; once it is spent, tokens auth has not accepted
/// before are refused without asking auth, while tokens it has accepted still pass.
pub async fn authenticate(
    state: &GatewayState,
    headers: &HeaderMap,
    ctx: &Ctx,
) -> Result<Bearer, HttpProblem> {
    let failures = &state.inner.failure_limiter;
    let token = match bearer_token(headers) {
        Ok(token) => token,
        Err(error) => {
            return Err(match failures.take(ctx.client_ip) {
                Ok(()) => error.into(),
                Err(wait) => rate_limited(wait, "failed authentications").into(),
            });
        }
    };
    if let Some(hit) = state.inner.cache.fresh(&token).await {
        if let Some(renewal) = hit.renewal {
            renew(state, &token, renewal, ctx);
        }
        return Ok(Bearer {
            presented: token,
            exchanged: hit.verdict.exchanged,
        });
    }
    if !state.inner.cache.is_vouched(&token).await
        && let Err(wait) = failures.check(ctx.client_ip)
    {
        return Err(rate_limited(wait, "failed authentications").into());
    }
    let asking = state.inner.cache.asking();
    match ask_auth(state, &token, ctx).await {
        Ok(answer) => {
            let (expires_at, verdict) = verdict_of(answer);
            let exchanged = verdict.exchanged.clone();
            let cache = &state.inner.cache;
            cache.remember(&token, asking, expires_at, verdict).await;
            Ok(Bearer {
                presented: token,
                exchanged,
            })
        }
        Err(status) => {
            let error = from_grpc(&status, AUTH, ctx.deadline(budget::AUTHENTICATE));
            if is_refusal(&error) {
                state.inner.cache.forget(&token).await;
                let _ = failures.take(ctx.client_ip);
            }
            Err(error.into())
        }
    }
}

/// Asks auth to verify `token` within the request's authentication budget.
async fn ask_auth(
    state: &GatewayState,
    token: &str,
    ctx: &Ctx,
) -> Result<auth_pb::AuthenticateResponse, tonic::Status> {
    let message = auth_pb::AuthenticateRequest {
        token: token.to_owned(),
    };
    // Verifying is idempotent: a call refused or cut on the way (auth restarting) is tried once more.
    retry_idempotent(&ctx.deadline(budget::AUTHENTICATE), || {
        let mut client = state.auth();
        let request = grpc_request(message.clone(), ctx, budget::AUTHENTICATE);
        async move { client.authenticate(request).await }
    })
    .await
    .map(tonic::Response::into_inner)
}

/// Asks auth again about a token whose verdict is due, off the request path (under the request's
/// id, with a budget of its own).
fn renew(state: &GatewayState, token: &str, renewal: Asking, ctx: &Ctx) {
    let (background, ctx) = (state.clone(), ctx.restarted());
    let ask = |token: SecretString| async move {
        match ask_auth(&background, token.expose_secret(), &ctx).await {
            Ok(answer) => {
                let (expires_at, verdict) = verdict_of(answer);
                RenewalAnswer::Accepted {
                    expires_at,
                    verdict,
                }
            }
            Err(status)
                if is_refusal(&from_grpc(
                    &status,
                    AUTH,
                    ctx.deadline(budget::AUTHENTICATE),
                )) =>
            {
                RenewalAnswer::Refused
            }
            Err(_) => RenewalAnswer::Unanswered,
        }
    };
    state.inner.cache.renew_in_background(token, renewal, ask);
}

/// Whether auth's answer refuses the token (as opposed to failing to give one).
fn is_refusal(error: &ApiError) -> bool {
    matches!(error.reason.http_status(), 401 | 403)
}

/// Auth's acceptance as a verdict to cache: the token's expiry, if given, and the token
/// auth exchanged a legacy one for, if any.
fn verdict_of(answer: auth_pb::AuthenticateResponse) -> (Option<i64>, Verdict) {
    let expires_at = (answer.expires_at > 0).then_some(answer.expires_at);
    let exchanged =
        (!answer.exchanged_token.is_empty()).then(|| SecretString::from(answer.exchanged_token));
    (expires_at, Verdict { exchanged })
}

/// Authenticates the caller, then wraps `message` for the upstream call made on their behalf:
/// their token (or its exchanged stand-in), request id, trace context and the route's deadline.
pub async fn on_behalf<T>(
    state: &GatewayState,
    headers: &HeaderMap,
    ctx: &Ctx,
    message: T,
    budget: Duration,
) -> Result<(Bearer, tonic::Request<T>), HttpProblem> {
    let token = authenticate(state, headers, ctx).await?;
    let request = with_bearer(grpc_request(message, ctx, budget), &token);
    Ok((token, request))
}

/// The sync secret of `X-Latchkey-Sync-Secret` (or Auth.js's `X-Auth-Secret`) as metadata.
fn sync_secret(headers: &HeaderMap) -> Result<MetadataValue<Ascii>, ApiError> {
    let value = headers
        .get("x-latchkey-sync-secret")
        .or_else(|| headers.get("x-auth-secret"));
    let Some(value) = value else {
        return Err(ApiError::new(
            Reason::SyncSecretMissing,
            format!(
                "Send the sync secret ({}) in the X-Latchkey-Sync-Secret header; this route is for your web app's server, never the browser.",
                SYNC_SECRET.env()
            ),
        ));
    };
    value
        .to_str()
        .ok()
        .and_then(|v| MetadataValue::try_from(v).ok())
        .ok_or_else(|| {
            ApiError::new(
                Reason::SyncSecretInvalid,
                "The sync secret does not match; compare fingerprints with `latchkey fingerprint` on both machines.",
            )
        })
}

/// Counts a refused sync secret against the caller's failed-authentication budget, and
/// remembers auth's verdict on the secret either way.
pub fn sync_verdict<T>(
    state: &GatewayState,
    ctx: &Ctx,
    secret: &MetadataValue<Ascii>,
    result: &Result<T, ApiError>,
) {
    let vouched = &state.inner.vouched_secrets;
    match result {
        Ok(_) => vouched.vouch(secret.as_bytes()),
        Err(error) => {
            if matches!(
                error.reason,
                Reason::SyncSecretInvalid | Reason::SyncSecretMissing
            ) {
                vouched.forget(secret.as_bytes());
                let _ = state.inner.failure_limiter.take(ctx.client_ip);
            }
        }
    }
}

/// The sync routes' shared gate: request budget, secret present, and the failed-auth budget —
/// which a secret auth accepted lately skips (failures from the same address must not lock out
/// the web app's server).
pub fn sync_gate(
    state: &GatewayState,
    ctx: &Ctx,
    headers: &HeaderMap,
) -> Result<MetadataValue<Ascii>, ApiError> {
    if let Err(wait) = state.inner.sync_limiter.take(ctx.client_ip) {
        return Err(rate_limited(wait, "sync and token requests"));
    }
    let failures = &state.inner.failure_limiter;
    let secret = match sync_secret(headers) {
        Ok(secret) => secret,
        Err(error) => {
            return Err(match failures.take(ctx.client_ip) {
                Ok(()) => error,
                Err(wait) => rate_limited(wait, "failed authentications"),
            });
        }
    };
    if !state.inner.vouched_secrets.is_vouched(secret.as_bytes())
        && let Err(wait) = failures.check(ctx.client_ip)
    {
        return Err(rate_limited(wait, "failed authentications"));
    }
    Ok(secret)
}
