//! The REST contract (docs/ARCHITECTURE.md §3), one module per area. Each handler decodes the
//! request, calls one RPC through [`crate::forward`] and answers a typed body; the
//! `#[utoipa::path]` on each handler and the `ToSchema` of each body are the OpenAPI document
//! ([`crate::openapi`]).
//!
//! - [`auth`]: sign-in sync, tokens, the signed-in user, JWKS, the dev session.
//! - [`settings`]: list, merge, replace, import, delete one.
//! - [`declared`]: the declared settings' schema, and generating a declared value.
//! - [`ops`]: health, readiness, this document, the Settings page.
//! - [`refresh`]: exchange a refresh token; start a family for the token and sync routes.
//! - [`problems`]: the problem responses each route documents.

pub mod auth;
pub mod declared;
pub mod ops;
pub mod problems;
pub mod refresh;
pub mod settings;

use axum::body::Bytes;
use axum::http::HeaderMap;
use latchkey_proto::{ApiError, Violation};

/// Parses a JSON body, naming the problem (unknown field, wrong type, syntax) on failure.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &Bytes,
    example: &str,
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            format!("The request body is empty; send JSON like {example}."),
            vec![Violation {
                field: "body".into(),
                description: "empty".into(),
            }],
        ));
    }
    serde_json::from_slice(bytes).map_err(|error| {
        ApiError::invalid(
            format!(
                "The request body is not valid for this route: {error}. Send JSON like {example}."
            ),
            vec![Violation {
                field: "body".into(),
                description: error.to_string(),
            }],
        )
    })
}

/// A route that decodes a request body before its upstream call, for [`decode_body`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRoute {
    /// `POST /api/auth/sync-user`.
    SyncUser,
    /// `POST /api/auth/token`.
    IssueToken,
    /// `PATCH` and `PUT /api/settings`.
    WriteSettings,
    /// `POST /api/settings/import`.
    Import,
}

/// Decodes and checks a body exactly as `route` does before its upstream call, calling nothing:
/// the `gateway_json` fuzz target (fuzz/README.md) drives hostile bodies through here.
pub fn decode_body(
    route: BodyRoute,
    headers: &HeaderMap,
    uri: &http::Uri,
    bytes: &Bytes,
) -> Result<(), ApiError> {
    match route {
        BodyRoute::SyncUser => auth::sync_request(bytes).map(drop),
        BodyRoute::IssueToken => auth::token_user(bytes).map(drop),
        BodyRoute::WriteSettings => settings::setting_changes(bytes).map(drop),
        BodyRoute::Import => settings::import_request(headers, uri, bytes).map(drop),
    }
}
