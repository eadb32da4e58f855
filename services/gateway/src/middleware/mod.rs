//! The layer every request passes through, in one `from_fn` so their order is plain:
//!
//! - [`context`]: the request id, the client IP (behind trusted proxies), the span, the arrival
//!   time every route budget counts from, and the request metric labelled by route template.
//! - [`problem`]: renders a handler's error as problem+json with the request id, logs and counts it.
//! - [`headers`]: `x-request-id` and the security headers on every response.

pub mod context;
pub mod headers;
pub mod problem;

pub use context::{Ctx, request_context};
