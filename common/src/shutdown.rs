//! One shutdown signal for every server in the process: SIGTERM or Ctrl-C, or a test's trigger.

use tokio::sync::watch;

/// A cloneable handle: `trigger()` once, every `wait()` returns.
#[derive(Clone, Debug)]
pub struct Shutdown {
    sender: std::sync::Arc<watch::Sender<bool>>,
    receiver: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A handle that has not fired.
    pub fn new() -> Self {
        let (sender, receiver) = watch::channel(false);
        Shutdown {
            sender: std::sync::Arc::new(sender),
            receiver,
        }
    }

    /// Fires the signal for every holder.
    pub fn trigger(&self) {
        let _ = self.sender.send(true);
    }

    /// Whether the signal has fired.
    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Resolves once the signal fires.
    pub async fn wait(&self) {
        let mut receiver = self.receiver.clone();
        let _ = receiver.wait_for(|fired| *fired).await;
    }

    /// Fires the signal on SIGTERM or Ctrl-C (spawns a task).
    pub fn on_os_signals(&self) {
        let handle = self.clone();
        tokio::spawn(async move {
            os_signal().await;
            tracing::info!("shutdown signal received, finishing in-flight requests");
            handle.trigger();
        });
    }
}

async fn os_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
