//! Building and running the gateway: bind its own listener (port 0 in tests), serve the router
//! with each connection's peer address (for per-IP limits), stop gracefully.

use crate::config::GatewayConfig;
use crate::routes::{GatewayState, router};
use latchkey_common::shutdown::Shutdown;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// A built, bound, not yet serving gateway.
pub struct GatewayApp {
    listener: TcpListener,
    state: GatewayState,
}

/// Prepares upstream channels (lazily connected: auth and settings may start later) and binds.
pub async fn build(config: &GatewayConfig) -> anyhow::Result<GatewayApp> {
    use anyhow::Context;
    let state = GatewayState::new(config)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    Ok(GatewayApp { listener, state })
}

impl GatewayApp {
    /// Where the gateway listens (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Serves until `shutdown` fires, then lets in-flight requests finish.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr(), "gateway serving");
        use axum::serve::ListenerExt;
        let app = router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        // Small JSON answers must not wait for Nagle's algorithm.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.wait().await })
            .await?;
        tracing::info!("gateway stopped");
        Ok(())
    }
}
