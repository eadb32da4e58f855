//! The gateway's request bodies: every route that takes one decodes it here exactly as before
//! its upstream call (`latchkey_gateway::routes::decode_body`). The first byte picks the route
//! (and, for the import, the content type); for the import the first line is the query string.
//! Nothing may panic, a refusal is rendered as a 4xx problem (never a 5xx), and every input stays
//! within the time budget (`latchkey_fuzz::budget`).
#![no_main]

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use latchkey_fuzz::budget;
use latchkey_gateway::problem::render;
use latchkey_gateway::routes::{BodyRoute, decode_body};
use libfuzzer_sys::fuzz_target;

const ROUTES: [BodyRoute; 4] = [
    BodyRoute::SyncUser,
    BodyRoute::IssueToken,
    BodyRoute::WriteSettings,
    BodyRoute::Import,
];

const CONTENT_TYPES: [&str; 5] = [
    "application/json",
    "text/plain; charset=utf-8",
    "application/problem+json",
    "application/octet-stream",
    "multipart/form-data",
];

fuzz_target!(|data: &[u8]| {
    budget::timed("gateway_json", data, check);
});

fn check(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let route = ROUTES[usize::from(selector % 4)];
    let mut headers = HeaderMap::new();
    let content_type = CONTENT_TYPES[usize::from(selector / 4 % 5)];
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let (uri, body) = match route {
        BodyRoute::Import => import_parts(rest),
        _ => (Uri::from_static("/"), rest),
    };
    if let Err(error) = decode_body(route, &headers, &uri, &Bytes::copy_from_slice(body)) {
        let status = render(&error, "fuzz").status();
        assert!(
            status.is_client_error(),
            "{route:?} answered {status} to a body"
        );
    }
}

/// The first line as the query string (when it makes a valid URI), the rest as the body.
fn import_parts(rest: &[u8]) -> (Uri, &[u8]) {
    let (query, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (&[][..], rest),
    };
    let path = format!("/api/settings/import?{}", String::from_utf8_lossy(query));
    let uri = path
        .parse()
        .unwrap_or_else(|_| Uri::from_static("/api/settings/import"));
    (uri, body)
}
