//! Channels to Latchkey's gRPC services, connected lazily so a service starts while auth or
//! settings is still coming up.

use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// How long connecting to a Latchkey service may take before the call fails as unavailable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A lazily connected channel to `url` (`http://127.0.0.1:50051`); fails only on a malformed URL.
pub fn lazy(url: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(CONNECT_TIMEOUT)
        .connect_lazy())
}
