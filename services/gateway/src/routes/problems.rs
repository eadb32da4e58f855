//! The problem responses each route documents, by status, as `utoipa::IntoResponses` sets that
//! a route's `#[utoipa::path(responses(...))]` names next to its success response. Every set
//! ends with 500 INTERNAL; the body of each is the `Problem` schema of [`crate::problem`].

use std::collections::BTreeMap;
use utoipa::IntoResponses;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

/// What a status means in this API, for the document.
fn describe(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT: the body or a field is invalid; `errors` lists each problem",
        401 => {
            "TOKEN_* / USER_NOT_SYNCED / SYNC_SECRET_* / REFRESH_TOKEN_*: see `code`; `WWW-Authenticate` says why"
        }
        403 => "USER_DISABLED or SCOPE_MISSING",
        404 => "NOT_FOUND",
        409 => {
            "USER_AMBIGUOUS: several users share the email this call names (a token by email, or a web app token carrying only an email); name the user by id"
        }
        413 => "PAYLOAD_TOO_LARGE: bodies are limited to 256 KiB",
        429 => "RATE_LIMITED: wait `Retry-After` seconds",
        500 => "INTERNAL",
        503 => "UPSTREAM_UNAVAILABLE: auth or settings is down",
        504 => "DEADLINE_EXCEEDED: the route's time budget ran out",
        _ => "error",
    }
}

/// One problem+json response, with the header its status carries.
fn problem(status: u16) -> Response {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build();
    let response = ResponseBuilder::new()
        .description(describe(status))
        .content("application/problem+json", content);
    let header = |kind: Type, description: &str| {
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(kind))
            .description(Some(description))
            .build()
    };
    match status {
        429 => response.header("Retry-After", header(Type::Integer, "seconds to wait")),
        401 => response.header(
            "WWW-Authenticate",
            header(Type::String, "RFC 6750 challenge"),
        ),
        _ => response,
    }
    .build()
}

/// The responses for `statuses`, plus 500.
fn problems(statuses: &[u16]) -> BTreeMap<String, RefOr<Response>> {
    statuses
        .iter()
        .chain(&[500])
        .map(|&status| (status.to_string(), RefOr::T(problem(status))))
        .collect()
}

/// A bearer route without a body. A web app's own (legacy) token names its user by email, so a
/// bearer route can also answer 400 (the email is not acceptable) and 409 (several users hold it).
pub struct BearerProblems;
impl IntoResponses for BearerProblems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[400, 401, 403, 409, 429, 503, 504])
    }
}

/// A bearer route with a body.
pub struct BearerBodyProblems;
impl IntoResponses for BearerBodyProblems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[400, 401, 403, 409, 413, 429, 503, 504])
    }
}

/// A bearer route naming one thing that may not exist.
pub struct BearerLookupProblems;
impl IntoResponses for BearerLookupProblems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[400, 401, 403, 404, 409, 429, 503, 504])
    }
}

/// `POST /api/auth/sync-user`: the sync secret, a body, the sync rate limit.
pub struct SyncProblems;
impl IntoResponses for SyncProblems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[400, 401, 403, 413, 429, 503, 504])
    }
}

/// `POST /api/auth/token`: as sync, and the user named may be unknown or ambiguous.
pub struct TokenProblems;
impl IntoResponses for TokenProblems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[400, 401, 403, 404, 409, 413, 429, 503, 504])
    }
}

/// `POST /api/auth/refresh`: a body, the refresh token as credential, the sync rate limit.
pub struct RefreshProblems;
impl IntoResponses for RefreshProblems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[400, 401, 403, 413, 429, 503, 504])
    }
}

/// A public route that asks an upstream.
pub struct UpstreamProblems;
impl IntoResponses for UpstreamProblems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[503, 504])
    }
}

/// `GET /readyz`: an upstream is not serving, or this instance is draining.
pub struct ReadyProblems;
impl IntoResponses for ReadyProblems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[503])
    }
}

/// `POST /api/dev/session`: not same-origin or not loopback (400), not dev (404), auth down.
pub struct DevProblems;
impl IntoResponses for DevProblems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problems(&[400, 404, 503])
    }
}
