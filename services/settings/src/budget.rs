//! A request's time budget inside settings: the deadline the caller sent (the gRPC deadline, read
//! by [`crate::grpc`]) and CPU-heavy work run on the blocking pool within it. The work is told to
//! stop — through a check it makes every so often — when the deadline passes or the caller goes
//! away (the request's future is dropped), so a hostile input cannot keep a core busy after its
//! answer stopped mattering.

use crate::error::SettingsError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// When a request's work must be done by, if ever.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    deadline: Option<Instant>,
    /// The time allowed in all, for messages.
    allowed: Option<Duration>,
}

/// What blocking work asks: true means stop now.
pub type StopCheck<'a> = &'a (dyn Fn() -> bool + Sync);

impl Budget {
    /// No deadline (operator tools, callers that set none): work is only stopped if dropped.
    pub fn unlimited() -> Self {
        Budget::default()
    }

    /// Work must be done `allowed` after `start`.
    pub fn within(start: Instant, allowed: Duration) -> Self {
        Budget {
            deadline: Some(start + allowed),
            allowed: Some(allowed),
        }
    }

    /// True once the deadline has passed.
    pub fn expired(&self) -> bool {
        self.deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
    }

    /// DEADLINE_EXCEEDED when the deadline has passed, so a step that has not started yet
    /// does not start.
    pub fn check(&self) -> Result<(), SettingsError> {
        if self.expired() {
            return Err(self.exceeded());
        }
        Ok(())
    }

    /// The error for work that ran out of time.
    pub fn exceeded(&self) -> SettingsError {
        SettingsError::DeadlineExceeded {
            allowed_ms: self.allowed.map(|d| d.as_millis() as u64),
        }
    }

    /// Runs `work` on the blocking pool, unless the deadline has passed already. `work` gets a
    /// check to ask every so often; it turns true at the deadline, or when the caller stops
    /// waiting (this future dropped). At the deadline the caller gets DEADLINE_EXCEEDED at once,
    /// whatever `work` is doing.
    pub async fn run_blocking<T, F>(&self, work: F) -> Result<T, SettingsError>
    where
        T: Send + 'static,
        F: FnOnce(StopCheck<'_>) -> Result<T, SettingsError> + Send + 'static,
    {
        self.check()?;
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(cancelled.clone());
        let deadline = self.deadline;
        let task = tokio::task::spawn_blocking(move || {
            let stop = || {
                cancelled.load(Ordering::Relaxed)
                    || deadline.is_some_and(|deadline| Instant::now() >= deadline)
            };
            work(&stop)
        });
        let joined = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline.into(), task)
                .await
                .map_err(|_| self.exceeded())?,
            None => task.await,
        };
        match joined {
            Ok(Err(SettingsError::DeadlineExceeded { .. })) => Err(self.exceeded()),
            Ok(answer) => answer,
            Err(error) => Err(SettingsError::Internal(format!(
                "blocking task failed: {error}"
            ))),
        }
    }
}

/// Tells the blocking work to stop when the request's future goes away (or finishes).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Work that runs until told to stop, reports that it stopped, and answers as the parser
    /// does when interrupted.
    fn until_stopped(
        done: mpsc::Sender<()>,
    ) -> impl FnOnce(StopCheck<'_>) -> Result<(), SettingsError> {
        move |stop| {
            while !stop() {
                std::thread::yield_now();
            }
            done.send(()).unwrap();
            Err(SettingsError::DeadlineExceeded { allowed_ms: None })
        }
    }

    #[tokio::test]
    async fn the_deadline_answers_deadline_exceeded_and_stops_the_work() {
        let (done, stopped) = mpsc::channel();
        let budget = Budget::within(Instant::now(), Duration::from_millis(50));
        let answer = budget.run_blocking(until_stopped(done)).await;
        assert!(
            matches!(
                answer,
                Err(SettingsError::DeadlineExceeded {
                    allowed_ms: Some(50)
                })
            ),
            "{answer:?}"
        );
        // A safety net against a hang, not a speed check.
        stopped.recv_timeout(Duration::from_secs(60)).unwrap();
        assert!(budget.check().is_err());
    }

    #[tokio::test]
    async fn past_the_deadline_work_does_not_start() {
        let budget = Budget::within(Instant::now(), Duration::ZERO);
        let answer = budget
            .run_blocking(|_| -> Result<(), SettingsError> { panic!("must not run") })
            .await;
        assert!(matches!(
            answer,
            Err(SettingsError::DeadlineExceeded {
                allowed_ms: Some(0)
            })
        ));
    }

    #[tokio::test]
    async fn a_dropped_request_stops_the_work() {
        let (done, stopped) = mpsc::channel();
        let budget = Budget::unlimited();
        let run = budget.run_blocking(until_stopped(done));
        // Poll the request once (the work starts), then drop it as tonic does when the caller
        // goes away.
        let mut run = Box::pin(run);
        assert!(futures_poll_once(run.as_mut()).await.is_none());
        drop(run);
        stopped.recv_timeout(Duration::from_secs(60)).unwrap();
        assert!(budget.check().is_ok());
    }

    #[tokio::test]
    async fn work_that_finishes_answers_its_result() {
        let answer = Budget::unlimited().run_blocking(|_| Ok(7)).await.unwrap();
        assert_eq!(answer, 7);
    }

    /// Polls a future once; Some(output) if it was ready.
    async fn futures_poll_once<F: std::future::Future + Unpin>(mut future: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
                std::task::Poll::Ready(output) => Some(output),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
