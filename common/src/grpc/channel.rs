//! Named profiles for channels to another Latchkey service, instead of timeouts set by hand at
//! each call site. Every channel is connected lazily (a service may start before what it calls)
//! and balanced per request over every address (see [`crate::balance`]).

use crate::balance::{BalanceError, Configure};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// HTTP/2 keep-alive pings on an idle connection, so a dead peer is noticed before a call uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// Time between pings.
    pub interval: Duration,
    /// How long a ping may go unanswered before the connection is dropped.
    pub timeout: Duration,
}

/// How a channel to one kind of upstream connects and how long its calls may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelProfile {
    /// The profile's name (for logs and docs).
    pub name: &'static str,
    /// How long a connection attempt may take before the call fails as UPSTREAM_UNAVAILABLE.
    pub connect_timeout: Duration,
    /// The longest any call may take; `None` when every call sets its own deadline.
    pub request_timeout: Option<Duration>,
    /// Pings on idle connections, if any.
    pub keep_alive: Option<KeepAlive>,
}

impl ChannelProfile {
    /// Settings asking auth for its JWKS and whether a token's user may still act: short, since
    /// every settings call waits on it.
    pub const TOKEN_CHECK: ChannelProfile = ChannelProfile {
        name: "token-check",
        connect_timeout: Duration::from_secs(2),
        request_timeout: Some(Duration::from_secs(5)),
        keep_alive: None,
    };

    /// Auth asking settings to purge a deleted user's data (the gateway gives the deletion 15 s).
    pub const PURGE: ChannelProfile = ChannelProfile {
        name: "purge",
        connect_timeout: Duration::from_secs(2),
        request_timeout: Some(Duration::from_secs(10)),
        keep_alive: None,
    };

    /// The gateway's calls to auth and settings: a short connect timeout so an outage answers 503
    /// fast, no channel-wide timeout (each REST route passes its own budget as the deadline), and
    /// keep-alive pings so a restarted upstream's dead connection is not used.
    pub const GATEWAY: ChannelProfile = ChannelProfile {
        name: "gateway",
        connect_timeout: Duration::from_millis(1500),
        request_timeout: None,
        keep_alive: Some(KeepAlive {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }),
    };

    /// Applies the profile to one endpoint.
    pub fn configure(&self, endpoint: Endpoint) -> Endpoint {
        let mut endpoint = endpoint
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true);
        if let Some(timeout) = self.request_timeout {
            endpoint = endpoint.timeout(timeout);
        }
        if let Some(keep_alive) = self.keep_alive {
            endpoint = endpoint
                .http2_keep_alive_interval(keep_alive.interval)
                .keep_alive_timeout(keep_alive.timeout);
        }
        endpoint
    }

    /// A lazily connected channel with this profile over one or several URLs, balanced per
    /// request over every address a name resolves to.
    pub fn channel(&self, urls: &[String]) -> Result<Channel, BalanceError> {
        let profile = *self;
        let configure: Configure = Arc::new(move |endpoint| profile.configure(endpoint));
        crate::balance::channel(urls, configure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_profile_makes_a_lazy_channel_and_refuses_a_bad_url() {
        for profile in [
            ChannelProfile::TOKEN_CHECK,
            ChannelProfile::PURGE,
            ChannelProfile::GATEWAY,
        ] {
            assert!(profile.channel(&["http://127.0.0.1:1".into()]).is_ok());
            assert!(
                profile.channel(&["not a url".into()]).is_err(),
                "{}",
                profile.name
            );
        }
    }
}
