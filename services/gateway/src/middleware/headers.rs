//! The headers every response carries: the request id (so a user can quote it), and the
//! security headers (no sniffing, no referrer, a deny-all CSP unless the page set its own).

use axum::http::{HeaderMap, HeaderValue, header};

/// Adds `x-request-id` and the security headers to a response's `headers`.
pub fn secure(headers: &mut HeaderMap, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
}
