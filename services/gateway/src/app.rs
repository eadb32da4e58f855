//! Building and running the gateway: bind its own listener (port 0 in tests), serve the router
//! through [`crate::server`] (timeouts, connection cap, each connection's peer address for the
//! per-IP limits), and stop in the phases of [`Shutdown`]: not ready at the signal, stop
//! accepting after the delay, drop what is left at the drain deadline.

use crate::config::{GatewayConfig, HttpLimits};
use crate::router::router;
use crate::state::GatewayState;
use latchkey_common::clock::SharedClock;
use latchkey_common::shutdown::Shutdown;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// A built, bound, not yet serving gateway.
pub struct GatewayApp {
    listener: TcpListener,
    state: GatewayState,
    limits: HttpLimits,
}

/// Prepares upstream channels (lazily connected: auth and settings may start later) and binds;
/// `clock` times the token cache (tests move it).
pub async fn build(config: &GatewayConfig, clock: SharedClock) -> anyhow::Result<GatewayApp> {
    use anyhow::Context;
    let state = GatewayState::new(config, clock)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    Ok(GatewayApp {
        listener,
        state,
        limits: config.http,
    })
}

impl GatewayApp {
    /// Where the gateway listens (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Serves until `shutdown` stops it, then lets in-flight requests finish (until the drain
    /// deadline).
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> anyhow::Result<()> {
        tracing::info!(
            addr = %self.local_addr(),
            max_connections = self.limits.max_connections,
            header_timeout_secs = self.limits.header_timeout.as_secs_f64(),
            idle_timeout_secs = self.limits.idle_timeout.as_secs_f64(),
            "gateway serving"
        );
        tokio::spawn({
            let (state, shutdown) = (self.state.clone(), shutdown.clone());
            async move {
                shutdown.draining().await;
                state.set_draining();
            }
        });
        crate::server::serve(self.listener, router(self.state), self.limits, shutdown).await?;
        tracing::info!("gateway stopped");
        Ok(())
    }
}
