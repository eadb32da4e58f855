//! Errors on the way out: every failure — a gRPC status from auth or settings, a transport
//! failure, a bad body, an unknown route — becomes one `application/problem+json` response
//! (RFC 9457) through [`render`], with the catalogue reason as `code`, the canonical status,
//! the request id, and `WWW-Authenticate` (RFC 6750) on 401s.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_common::upstream::Deadline;
use latchkey_proto::{ApiError, Reason, Violation};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// A REST handler's error, answered as `application/problem+json`. Its response is a placeholder
/// carrying the error; the request-context middleware, which knows the request id, renders it
/// with [`render`].
#[derive(Debug)]
pub struct HttpProblem(pub ApiError);

/// The placeholder's extension.
#[derive(Debug, Clone)]
pub struct PendingHttpProblem(pub ApiError);

impl IntoResponse for HttpProblem {
    fn into_response(self) -> Response {
        let mut response = status_of(self.0.reason).into_response();
        response.extensions_mut().insert(PendingHttpProblem(self.0));
        response
    }
}

impl From<ApiError> for HttpProblem {
    fn from(error: ApiError) -> Self {
        HttpProblem(error)
    }
}

fn status_of(reason: Reason) -> StatusCode {
    StatusCode::from_u16(reason.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A gRPC failure from `upstream` ("the auth service", "the settings service") for a call made
/// under the request's `deadline`, as an API error: the one classifier of
/// [`latchkey_common::upstream::from_upstream`] — our errors keep their reason; a call cut before
/// the deadline (refused, reset, a restart) is UPSTREAM_UNAVAILABLE, one out of time is
/// DEADLINE_EXCEEDED; nothing without our `ErrorInfo` becomes a 401.
pub fn from_grpc(status: &tonic::Status, upstream: &str, deadline: Deadline) -> ApiError {
    latchkey_common::upstream::from_upstream(status, &deadline, upstream)
}

/// The one conversion from an API error to an HTTP response.
pub fn render(error: &ApiError, request_id: &str) -> Response {
    let reason = error.reason;
    let status = status_of(reason);
    // Internals never reach the client; an answer without a detail gets the reason's advice.
    let detail = if reason == Reason::Internal || error.detail.trim().is_empty() {
        reason.advice().to_owned()
    } else {
        error.detail.clone()
    };
    let retry_after = retry_after(error);
    let body = ProblemBody {
        code: reason.as_str(),
        // USER_AMBIGUOUS says how many users share the email (never which).
        count: error
            .metadata
            .get("count")
            .and_then(|c| c.parse::<u64>().ok()),
        detail: detail.clone(),
        errors: error.violations.iter().map(ViolationBody::from).collect(),
        request_id: request_id.to_owned(),
        retry_after,
        status: status.as_u16(),
        title: reason.title(),
        kind: format!("urn:latchkey:error:{}", reason.as_str()),
    };
    let body = serde_json::to_string(&body).unwrap_or_default();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if let Some(value) = www_authenticate(reason, &detail) {
        headers.insert(header::WWW_AUTHENTICATE, value);
    }
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// One problem of an invalid request: `{field, description}`, plus `line` when the field names
/// a line of an imported `.env`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Violation)]
pub struct ViolationBody {
    description: String,
    field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    line: Option<u64>,
}

impl From<&Violation> for ViolationBody {
    fn from(violation: &Violation) -> Self {
        let line = violation
            .field
            .strip_prefix("line ")
            .and_then(|n| n.trim().parse::<u64>().ok());
        ViolationBody {
            description: violation.description.clone(),
            field: violation.field.clone(),
            line,
        }
    }
}

/// The problem+json body (RFC 9457) every failure answers, and the `Problem` schema of the
/// OpenAPI document. Absent fields are left out, never null; fields are in alphabetical order,
/// as the body has always been written.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemBody {
    #[schema(schema_with = reason_codes)]
    code: &'static str,
    /// USER_AMBIGUOUS: how many users share the email
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    count: Option<u64>,
    detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    errors: Vec<ViolationBody>,
    request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    retry_after: Option<u64>,
    status: u16,
    title: &'static str,
    #[serde(rename = "type")]
    kind: String,
}

/// The `code` schema: every reason of the catalogue.
fn reason_codes() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(Reason::ALL.iter().map(|r| r.as_str())))
        .build()
}

/// Whole seconds to wait: the error's own delay, or 1 s for throttling and outages without one.
fn retry_after(error: &ApiError) -> Option<u64> {
    let default = match error.reason {
        Reason::RateLimited => Some(Duration::from_secs(1)),
        _ => None,
    };
    error
        .retry_after
        .or(default)
        .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
        .map(|s| s.max(1))
}

/// RFC 6750 challenge: bare realm when nothing was sent, `invalid_token` when what was sent is
/// refused, `insufficient_scope` for a missing scope.
fn www_authenticate(reason: Reason, detail: &str) -> Option<HeaderValue> {
    let description: String = detail
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '"' && *c != '\\')
        .collect();
    let value = match reason {
        Reason::TokenMissing | Reason::SyncSecretMissing => r#"Bearer realm="latchkey""#.to_owned(),
        Reason::ScopeMissing => format!(
            r#"Bearer realm="latchkey", error="insufficient_scope", error_description="{description}""#
        ),
        _ if reason.http_status() == 401 => format!(
            r#"Bearer realm="latchkey", error="invalid_token", error_description="{description}""#
        ),
        _ => return None,
    };
    HeaderValue::from_str(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_renders_with_its_status_and_code() {
        for &reason in Reason::ALL {
            let response = render(&ApiError::new(reason, "Do the thing."), "req-1");
            assert_eq!(response.status().as_u16(), reason.http_status(), "{reason}");
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "application/problem+json"
            );
            let challenge = response.headers().get(header::WWW_AUTHENTICATE);
            assert_eq!(
                challenge.is_some(),
                reason.http_status() == 401 || reason == Reason::ScopeMissing,
                "{reason}"
            );
            assert_eq!(
                response.headers().contains_key(header::RETRY_AFTER),
                reason == Reason::RateLimited,
                "{reason}"
            );
        }
    }

    /// The typed body is byte for byte the `json!` value it replaced.
    #[test]
    fn the_body_keeps_its_wire_format() {
        let error = ApiError::invalid(
            "Fix line 3.",
            vec![
                Violation {
                    field: "line 3".into(),
                    description: "no `=`".into(),
                },
                Violation {
                    field: "name".into(),
                    description: "empty".into(),
                },
            ],
        )
        .with_metadata("count", "2")
        .with_retry_after(Duration::from_millis(1500));
        let response = render(&error, "req-1");
        let body = body_text(response);
        let before = serde_json::json!({
            "type": "urn:latchkey:error:INVALID_ARGUMENT",
            "title": Reason::InvalidArgument.title(),
            "status": 400,
            "detail": "Fix line 3.",
            "code": "INVALID_ARGUMENT",
            "request_id": "req-1",
            "errors": [
                { "field": "line 3", "description": "no `=`", "line": 3 },
                { "field": "name", "description": "empty" },
            ],
            "count": 2,
            "retry_after": 2,
        });
        assert_eq!(body, before.to_string());
        let bare = body_text(render(&ApiError::new(Reason::NotFound, "No."), "r"));
        let before = serde_json::json!({
            "type": "urn:latchkey:error:NOT_FOUND", "title": Reason::NotFound.title(),
            "status": 404, "detail": "No.", "code": "NOT_FOUND", "request_id": "r",
        });
        assert_eq!(bare, before.to_string());
    }

    fn body_text(response: Response) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = runtime
            .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn an_answer_without_a_detail_carries_its_reasons_advice() {
        let response = render(&ApiError::new(Reason::NotFound, ""), "req-1");
        let body = body_json(response);
        assert_eq!(body["detail"], Reason::NotFound.advice());
    }

    fn body_json(response: Response) -> serde_json::Value {
        let bytes = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn transport_failures_are_unavailable_never_unauthenticated() {
        let fresh = Deadline::after(Duration::from_secs(15));
        for status in [
            tonic::Status::unavailable("tcp connect error"),
            tonic::Status::unknown("h2 protocol error"),
            tonic::Status::unauthenticated("proxy says no"),
            tonic::Status::internal("boom"),
            tonic::Status::cancelled("h2 protocol error: stream reset by a restart"),
        ] {
            let error = from_grpc(&status, "the settings service", fresh);
            assert_eq!(error.reason, Reason::UpstreamUnavailable, "{status:?}");
        }
        let spent = Deadline::new(
            std::time::Instant::now() - Duration::from_secs(2),
            Duration::from_secs(1),
        );
        let late = from_grpc(&tonic::Status::cancelled("Timeout expired"), "auth", spent);
        assert_eq!(late.reason, Reason::DeadlineExceeded);
    }

    #[test]
    fn our_errors_keep_their_reason() {
        let status = ApiError::new(Reason::TokenExpired, "Get a new token.").to_status();
        let error = from_grpc(
            &status,
            "the auth service",
            Deadline::after(Duration::from_secs(1)),
        );
        assert_eq!(error.reason, Reason::TokenExpired);
    }
}
