//! One shutdown signal for every server in the process (SIGTERM or Ctrl-C, or a test's trigger),
//! in two phases so a restart behind a load balancer refuses nobody:
//!
//! 1. **draining** — at once: health and readiness answer not-serving, so load balancers and
//!    Kubernetes endpoints move traffic away, but the servers keep accepting and serving;
//! 2. **stopping** — after the configured delay (`LATCHKEY_SHUTDOWN_DELAY`): servers stop
//!    accepting, let in-flight requests finish, and give up on whatever is left once the drain
//!    deadline (`LATCHKEY_SHUTDOWN_TIMEOUT`) has passed.
//!
//! A second signal during the delay skips straight to stopping.

use crate::config::{Config, Problems, SHUTDOWN_DELAY, SHUTDOWN_TIMEOUT, Setting};
use std::time::Duration;
use tokio::sync::watch;

/// Where a process is in its shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Running,
    Draining,
    Stopping,
}

/// How long each phase lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Draining → stopping: how long servers keep accepting after the signal.
    pub delay: Duration,
    /// Stopping → gone: how long in-flight requests get before connections are dropped.
    pub deadline: Duration,
}

impl Default for Timing {
    /// The table's defaults (`LATCHKEY_SHUTDOWN_DELAY`, `LATCHKEY_SHUTDOWN_TIMEOUT`).
    fn default() -> Self {
        let seconds = |setting: Setting<u64>| {
            Duration::from_secs(setting.default_value().expect("the table's default parses"))
        };
        Timing {
            delay: seconds(SHUTDOWN_DELAY),
            deadline: seconds(SHUTDOWN_TIMEOUT),
        }
    }
}

impl Timing {
    /// Reads `LATCHKEY_SHUTDOWN_DELAY` and `LATCHKEY_SHUTDOWN_TIMEOUT` (whole seconds).
    pub fn from_config(config: &Config, problems: &mut Problems) -> Timing {
        let defaults = Timing::default();
        let mut seconds = |setting: Setting<u64>, default: Duration| {
            config
                .parsed(setting, "a whole number of seconds", problems)
                .map_or(default, Duration::from_secs)
        };
        Timing {
            delay: seconds(SHUTDOWN_DELAY, defaults.delay),
            deadline: seconds(SHUTDOWN_TIMEOUT, defaults.deadline),
        }
    }
}

/// A cloneable handle: every holder sees the same phases.
#[derive(Clone, Debug)]
pub struct Shutdown {
    sender: std::sync::Arc<watch::Sender<Phase>>,
    receiver: watch::Receiver<Phase>,
    timing: Timing,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A handle that has not fired, with no drain delay and the default deadline.
    pub fn new() -> Self {
        Self::with_timing(Timing::default())
    }

    /// A handle with the given delay and drain deadline.
    pub fn with_timing(timing: Timing) -> Self {
        let (sender, receiver) = watch::channel(Phase::Running);
        Shutdown {
            sender: std::sync::Arc::new(sender),
            receiver,
            timing,
        }
    }

    /// The configured delay and deadline.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Stops at once (no delay): every `draining()` and `wait()` returns.
    pub fn trigger(&self) {
        self.advance(Phase::Stopping);
    }

    /// Starts the sequence: draining now, stopping after the delay (spawns the timer).
    pub fn begin(&self) {
        if self.timing.delay.is_zero() {
            self.trigger();
            return;
        }
        self.advance(Phase::Draining);
        let handle = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(handle.timing.delay).await;
            handle.trigger();
        });
    }

    fn advance(&self, to: Phase) {
        self.sender.send_if_modified(|phase| {
            let later = to > *phase;
            if later {
                *phase = to;
            }
            later
        });
    }

    /// Whether the stop phase has begun.
    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow() == Phase::Stopping
    }

    /// Whether the process is shutting down (draining or stopping): readiness answers no.
    pub fn is_draining(&self) -> bool {
        *self.receiver.borrow() >= Phase::Draining
    }

    /// Resolves once draining begins (at the signal): flip health to not-serving here.
    pub async fn draining(&self) {
        self.reach(Phase::Draining).await;
    }

    /// Resolves once servers must stop accepting (after the delay).
    pub async fn wait(&self) {
        self.reach(Phase::Stopping).await;
    }

    /// Resolves once the drain deadline has passed after the stop: drop what is left.
    pub async fn deadline(&self) {
        self.wait().await;
        tokio::time::sleep(self.timing.deadline).await;
    }

    async fn reach(&self, phase: Phase) {
        let mut receiver = self.receiver.clone();
        let _ = receiver.wait_for(|now| *now >= phase).await;
    }

    /// Begins the sequence on SIGTERM or Ctrl-C; a second signal stops at once (spawns a task).
    /// The handlers are installed before this returns, so a signal that arrives right after —
    /// an orchestrator stopping a process that has only just printed its address — drains
    /// instead of killing the process.
    pub fn on_os_signals(&self) {
        let handle = self.clone();
        let mut signals = OsSignals::install();
        tokio::spawn(async move {
            signals.next().await;
            tracing::info!(
                delay_secs = handle.timing.delay.as_secs_f64(),
                deadline_secs = handle.timing.deadline.as_secs_f64(),
                "shutdown signal received: not ready any more, finishing in-flight requests"
            );
            handle.begin();
            signals.next().await;
            tracing::info!("second shutdown signal: stopping now");
            handle.trigger();
        });
    }
}

/// SIGTERM and Ctrl-C, listened for from the moment [`OsSignals::install`] returns.
struct OsSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl OsSignals {
    fn install() -> Self {
        OsSignals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("install SIGTERM handler"),
            #[cfg(unix)]
            interrupt: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .expect("install SIGINT handler"),
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SIGTERM sent the moment the handlers are said to be installed drains the process
    /// (found by a test that stopped `latchkey dev` right after it printed its address: the
    /// handler used to be installed later, by the spawned task, and the signal killed it).
    #[cfg(unix)]
    #[tokio::test]
    async fn a_signal_right_after_installing_drains_instead_of_killing() {
        let shutdown = Shutdown::with_timing(Timing {
            delay: Duration::from_secs(0),
            deadline: Duration::from_secs(5),
        });
        shutdown.on_os_signals();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(5), shutdown.draining())
            .await
            .expect("the signal begins the drain");
    }

    #[tokio::test(start_paused = true)]
    async fn draining_comes_first_and_stopping_after_the_delay() {
        let shutdown = Shutdown::with_timing(Timing {
            delay: Duration::from_secs(5),
            deadline: Duration::from_secs(20),
        });
        assert!(!shutdown.is_draining());
        shutdown.begin();
        assert!(shutdown.is_draining() && !shutdown.is_triggered());
        shutdown.draining().await;
        let started = tokio::time::Instant::now();
        shutdown.wait().await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        shutdown.deadline().await;
        assert_eq!(started.elapsed(), Duration::from_secs(25));
    }

    #[tokio::test(start_paused = true)]
    async fn trigger_skips_the_delay_and_never_goes_back() {
        let shutdown = Shutdown::with_timing(Timing {
            delay: Duration::from_secs(60),
            deadline: Duration::ZERO,
        });
        shutdown.trigger();
        shutdown.begin();
        assert!(
            shutdown.is_triggered(),
            "begin after trigger does not go back"
        );
        shutdown.wait().await;
        let zero = Shutdown::new();
        zero.begin();
        assert!(zero.is_triggered(), "no delay: stopping at once");
    }
}
