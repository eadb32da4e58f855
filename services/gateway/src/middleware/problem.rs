//! Turns a handler's pending problem (see [`crate::problem::HttpProblem`]) into the problem+json
//! response, once the request id is known; logs it (a warning for ours and upstream outages, a
//! debug line for refusals) and counts it by catalogue reason.

use crate::problem::{PendingHttpProblem, render};
use axum::response::Response;
use latchkey_proto::Reason;

/// `response` itself, or — when a handler answered with a problem — its rendered form.
pub fn render_pending(mut response: Response, span: &tracing::Span, request_id: &str) -> Response {
    let Some(PendingHttpProblem(error)) = response.extensions_mut().remove::<PendingHttpProblem>()
    else {
        return response;
    };
    let _entered = span.enter();
    if error.reason == Reason::Internal || error.reason == Reason::UpstreamUnavailable {
        tracing::warn!(code = %error.reason, "request failed");
    } else {
        tracing::debug!(code = %error.reason, "request refused");
    }
    latchkey_common::metrics::global().failure("gateway", error.reason);
    render(&error, request_id)
}
