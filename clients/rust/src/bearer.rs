//! The bearer token of a request, read the same way from gRPC metadata and HTTP headers.

use tonic::metadata::MetadataMap;

/// The bearer token from `authorization` metadata ("" when absent; a value without the
/// `Bearer` scheme is taken whole).
pub fn bearer(metadata: &MetadataMap) -> &str {
    let value = metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    strip_scheme(value)
}

/// The bearer token from an HTTP `Authorization` header, read as [`bearer`] reads metadata.
pub fn bearer_header(headers: &http::HeaderMap) -> &str {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    strip_scheme(value)
}

/// `value` as the value of an `authorization` header or metadata entry: `Bearer <token>`.
pub fn authorization(token: &str) -> String {
    format!("Bearer {token}")
}

fn strip_scheme(value: &str) -> &str {
    let value = value.trim();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_optional_and_case_blind() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(bearer_header(&headers), "");
        for (value, token) in [
            ("Bearer abc", "abc"),
            ("bearer  abc ", "abc"),
            ("abc", "abc"),
        ] {
            headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer_header(&headers), token);
            let metadata = MetadataMap::from_headers(headers.clone());
            assert_eq!(bearer(&metadata), token);
        }
    }
}
