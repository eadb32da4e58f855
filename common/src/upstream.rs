//! Calls to another Latchkey service, read one way everywhere:
//!
//! - [`Deadline`]: a request's budget is fixed once, when the request starts, and every upstream
//!   call it makes gets the time left (so two calls cannot take twice the budget);
//! - [`from_upstream`]: the one classifier of an upstream's gRPC status. Our own errors (with
//!   Latchkey's `ErrorInfo`) keep their reason; anything else is the path to the upstream failing:
//!   `DEADLINE_EXCEEDED` only when the deadline has really passed, otherwise
//!   `UPSTREAM_UNAVAILABLE` (connection refused or reset, a stream cut by a restart, a proxy's bare
//!   `UNAUTHENTICATED`) — never a token error;
//! - [`retry_idempotent`]: one more attempt, within the deadline, for calls that may safely be
//!   repeated, when the first failed on the way (the upstream restarting).

use latchkey_proto::{ApiError, Reason};
use std::future::Future;
use std::time::{Duration, Instant};
use tonic::Code;
use tonic_types::StatusExt;

/// A deadline counts as passed this long before it: timers and the upstream's own clock fire a
/// moment apart.
const DEADLINE_SLACK: Duration = Duration::from_millis(10);
/// The shortest timeout given to a call: a spent budget still makes one (failing) call, so the
/// answer is DEADLINE_EXCEEDED from one place.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// How long a retry waits for the upstream to come back (a restart refuses connections briefly).
pub const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// When a request's budget runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    /// The deadline of a request that started at `started` with `budget`.
    pub fn new(started: Instant, budget: Duration) -> Self {
        Deadline {
            at: started + budget,
            budget,
        }
    }

    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Deadline::new(Instant::now(), budget)
    }

    /// The whole budget (for messages).
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether the budget is spent.
    pub fn passed(&self) -> bool {
        self.remaining() <= DEADLINE_SLACK
    }

    /// The gRPC timeout for a call made now: the time left, at least [`MIN_TIMEOUT`].
    pub fn timeout(&self) -> Duration {
        self.remaining().max(MIN_TIMEOUT)
    }
}

/// Whether `status` carries Latchkey's own `ErrorInfo` (an answer, not a transport failure).
pub fn is_ours(status: &tonic::Status) -> bool {
    status
        .get_error_details()
        .error_info()
        .is_some_and(|info| info.domain == latchkey_proto::error::ERROR_DOMAIN)
}

/// The catalogue error for a failed call to `what` ("the auth service") made under `deadline`.
pub fn from_upstream(status: &tonic::Status, deadline: &Deadline, what: &str) -> ApiError {
    if is_ours(status) {
        return ApiError::from_status(status);
    }
    match status.code() {
        Code::DeadlineExceeded | Code::Cancelled if deadline.passed() => ApiError::new(
            Reason::DeadlineExceeded,
            format!(
                "{what} did not answer within this route's {} ms budget; retry, and run `latchkey doctor` if it persists.",
                deadline.budget().as_millis()
            ),
        ),
        Code::InvalidArgument | Code::NotFound => ApiError::from_status(status),
        code => {
            tracing::warn!(
                upstream = what,
                ?code,
                message = status.message(),
                "upstream call failed"
            );
            ApiError::unavailable(what)
        }
    }
}

/// Whether a failed call may be made again: it failed on the way (not our answer), and the
/// deadline leaves time for a pause and another attempt.
fn worth_retrying(status: &tonic::Status, deadline: &Deadline) -> bool {
    !is_ours(status)
        && matches!(
            status.code(),
            Code::Unavailable | Code::Cancelled | Code::Unknown
        )
        && deadline.remaining() > RETRY_PAUSE * 2
}

/// Runs `call` (which builds its request with `deadline.timeout()`), and once more after
/// [`RETRY_PAUSE`] when it failed on the way and time is left. Only for calls that may safely
/// run twice (reads, `Authenticate`).
pub async fn retry_idempotent<T, F, Fut>(
    deadline: &Deadline,
    mut call: F,
) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, tonic::Status>>,
{
    match call().await {
        Err(status) if worth_retrying(&status, deadline) => {
            tracing::debug!(code = ?status.code(), "upstream call failed on the way; retrying once");
            tokio::time::sleep(RETRY_PAUSE).await;
            call().await
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn spent() -> Deadline {
        Deadline::new(
            Instant::now() - Duration::from_secs(3),
            Duration::from_secs(2),
        )
    }

    #[test]
    fn the_remaining_time_shrinks_from_one_start() {
        let deadline = Deadline::new(
            Instant::now() - Duration::from_secs(1),
            Duration::from_secs(3),
        );
        assert!(deadline.remaining() <= Duration::from_secs(2));
        assert!(!deadline.passed());
        assert!(spent().passed());
        assert_eq!(spent().timeout(), MIN_TIMEOUT);
    }

    #[test]
    fn a_call_cut_before_its_deadline_is_unavailable_not_deadline_exceeded() {
        let fresh = Deadline::after(Duration::from_secs(15));
        for status in [
            tonic::Status::cancelled("h2 protocol error: stream reset"),
            tonic::Status::deadline_exceeded("reset"),
            tonic::Status::unavailable("tcp connect error"),
            tonic::Status::unknown("transport error"),
            tonic::Status::internal("h2 protocol error"),
        ] {
            let error = from_upstream(&status, &fresh, "the settings service");
            assert_eq!(error.reason, Reason::UpstreamUnavailable, "{status:?}");
            assert_eq!(error.metadata["upstream"], "the settings service");
        }
    }

    #[test]
    fn a_call_out_of_time_is_deadline_exceeded_with_the_budget() {
        for status in [
            tonic::Status::cancelled("Timeout expired"),
            tonic::Status::deadline_exceeded("Deadline Exceeded"),
        ] {
            let error = from_upstream(&status, &spent(), "the auth service");
            assert_eq!(error.reason, Reason::DeadlineExceeded);
            assert!(error.detail.contains("2000 ms"), "{}", error.detail);
        }
    }

    #[test]
    fn a_bare_unauthenticated_from_a_proxy_is_an_upstream_problem() {
        let status = tonic::Status::unauthenticated("proxy says no");
        let error = from_upstream(
            &status,
            &Deadline::after(Duration::from_secs(2)),
            "the auth service",
        );
        assert_eq!(error.reason, Reason::UpstreamUnavailable);
    }

    #[test]
    fn our_answers_keep_their_reason() {
        let status = ApiError::new(Reason::TokenExpired, "Get a new token.").to_status();
        let error = from_upstream(&status, &spent(), "the auth service");
        assert_eq!(error.reason, Reason::TokenExpired);
    }

    #[tokio::test]
    async fn an_idempotent_call_failing_on_the_way_is_tried_once_more() {
        let calls = AtomicUsize::new(0);
        let deadline = Deadline::after(Duration::from_secs(3));
        let result: Result<(), _> = retry_idempotent(&deadline, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(tonic::Status::unavailable("tcp connect error"))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert!(result.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn answers_and_spent_budgets_are_not_retried() {
        let calls = AtomicUsize::new(0);
        let answer = ApiError::unavailable("the auth database").to_status();
        let deadline = Deadline::after(Duration::from_secs(3));
        let _ = retry_idempotent(&deadline, || {
            calls.fetch_add(1, Ordering::SeqCst);
            let status = tonic::Status::from(ApiError::from_status(&answer));
            async move { Err::<(), _>(status) }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "our own answer is final");
        let short = Deadline::after(RETRY_PAUSE);
        let _ = retry_idempotent(&short, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(tonic::Status::unavailable("refused")) }
        })
        .await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "no time for a second attempt"
        );
    }
}
