//! Channels to the gRPC services: connected lazily (the gateway may start before its upstreams),
//! a short connect timeout so an outage answers 503 fast, and client-side balancing per request over
//! several addresses or every address one name resolves to.

use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// How long a connection attempt may take before the call fails as UPSTREAM_UNAVAILABLE.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);

/// A channel over one or several addresses; a name is re-resolved and balanced per request over
/// every address it answers (see [`latchkey_common::balance`]).
pub fn channel(urls: &[String]) -> anyhow::Result<Channel> {
    let configure = std::sync::Arc::new(|endpoint: Endpoint| {
        endpoint
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
    });
    Ok(latchkey_common::balance::channel(urls, configure)?)
}
