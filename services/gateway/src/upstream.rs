//! Channels to the gRPC services, with the common kit's [`ChannelProfile::GATEWAY`]: connected
//! lazily (the gateway may start before its upstreams), a short connect timeout so an outage
//! answers 503 fast, and client-side balancing per request over several addresses or every
//! address one name resolves to.

use latchkey_common::grpc::ChannelProfile;
use latchkey_common::grpc::direct::DirectChannel;

/// A channel over one or several addresses; a name is re-resolved and balanced per request over
/// every address it answers (see [`latchkey_common::balance`]).
pub fn channel(urls: &[String]) -> anyhow::Result<DirectChannel> {
    Ok(DirectChannel::new(ChannelProfile::GATEWAY, urls)?)
}
