//! Channels to the gRPC services: connected lazily (the gateway may start before its upstreams),
//! a short connect timeout so an outage answers 503 fast, and client-side balancing when several
//! addresses are configured.

use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// How long a connection attempt may take before the call fails as UPSTREAM_UNAVAILABLE.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);

/// A channel over one or several addresses.
pub fn channel(urls: &[String]) -> anyhow::Result<Channel> {
    use anyhow::Context;
    let endpoints = urls
        .iter()
        .map(|url| {
            Ok(Endpoint::from_shared(url.clone())
                .with_context(|| format!("`{url}` is not a valid address"))?
                .connect_timeout(CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_timeout(Duration::from_secs(10)))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    match endpoints.as_slice() {
        [] => anyhow::bail!("no upstream address configured"),
        [one] => Ok(one.connect_lazy()),
        _ => Ok(Channel::balance_list(endpoints.into_iter())),
    }
}
