//! Client-side balancing that follows DNS. One `http://` URL whose host is a name (a Kubernetes
//! headless Service, a Fly `<app>.internal` name) is re-resolved every few seconds and each address
//! it answers becomes its own lazily connected endpoint, so calls spread per request over every
//! instance and follow scale-ups, restarts and scale-downs without a restart of the caller.
//! IP addresses, `localhost` and `https://` URLs are used exactly as given.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::Sender;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint, Uri};

/// How often names are resolved again.
pub const REFRESH: Duration = Duration::from_secs(5);
/// How long one lookup may take before this round keeps the known addresses.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Resolves a host name and port to addresses; injectable so tests can answer for a name.
pub type Resolver = Arc<
    dyn Fn(String, u16) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>
        + Send
        + Sync,
>;

/// Applies timeouts and keep-alives to every endpoint the channel creates.
pub type Configure = Arc<dyn Fn(Endpoint) -> Endpoint + Send + Sync>;

/// Why a list of upstream URLs cannot make a channel.
#[derive(Debug, thiserror::Error)]
pub enum BalanceError {
    #[error("no upstream address configured")]
    Empty,
    #[error("`{0}` is not a valid address")]
    InvalidUrl(String),
}

/// The system resolver (`getaddrinfo` through tokio).
pub fn system_resolver() -> Resolver {
    Arc::new(|host, port| {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    })
}

/// A channel over `urls`, balanced per request; names re-resolved every [`REFRESH`]. Must be
/// called inside a tokio runtime when any URL is a name (the resolver runs as a task, which ends
/// when the channel is dropped).
pub fn channel(urls: &[String], configure: Configure) -> Result<Channel, BalanceError> {
    channel_with(urls, configure, system_resolver(), REFRESH)
}

/// [`channel`] with the resolver and refresh interval given.
pub fn channel_with(
    urls: &[String],
    configure: Configure,
    resolver: Resolver,
    refresh: Duration,
) -> Result<Channel, BalanceError> {
    let endpoints = urls
        .iter()
        .map(|url| {
            Endpoint::from_shared(url.clone())
                .map(|endpoint| configure(endpoint))
                .map_err(|_| BalanceError::InvalidUrl(url.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<Named> = endpoints.iter().filter_map(Named::of).collect();
    if names.is_empty() {
        return Ok(match endpoints.as_slice() {
            [] => return Err(BalanceError::Empty),
            [one] => one.connect_lazy(),
            _ => Channel::balance_list(endpoints.into_iter()),
        });
    }
    let (channel, changes) = Channel::balance_channel::<String>(64);
    for endpoint in endpoints {
        // Until a name has been resolved its URL serves as is, so a call never waits on an
        // empty pool: it connects or fails as UNAVAILABLE.
        let key = endpoint.uri().to_string();
        let _ = changes.try_send(Change::Insert(key, endpoint));
    }
    tokio::spawn(follow_dns(names, changes, configure, resolver, refresh));
    Ok(channel)
}

/// A configured URL whose host is a name to resolve.
struct Named {
    uri: Uri,
    host: String,
    port: u16,
}

impl Named {
    fn of(endpoint: &Endpoint) -> Option<Named> {
        let uri = endpoint.uri().clone();
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
        if uri.scheme_str() != Some("http")
            || host.parse::<IpAddr>().is_ok()
            || host.eq_ignore_ascii_case("localhost")
        {
            return None;
        }
        let port = uri.port_u16().unwrap_or(80);
        Some(Named {
            host: host.to_owned(),
            port,
            uri,
        })
    }

    /// The endpoint for one resolved address, keeping the name as the `:authority`.
    fn endpoint(&self, addr: SocketAddr, configure: &Configure) -> Option<Endpoint> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).ok()?;
        Some(configure(endpoint.origin(self.uri.clone())))
    }
}

/// Keeps the channel's endpoints equal to what each name resolves to. A failed or empty answer
/// keeps the current set: a DNS blip must not empty the pool.
async fn follow_dns(
    names: Vec<Named>,
    changes: Sender<Change<String, Endpoint>>,
    configure: Configure,
    resolver: Resolver,
    refresh: Duration,
) {
    let mut current: BTreeMap<String, BTreeSet<SocketAddr>> = BTreeMap::new();
    loop {
        for named in &names {
            let url = named.uri.to_string();
            let lookup = resolver(named.host.clone(), named.port);
            let answer = tokio::time::timeout(LOOKUP_TIMEOUT, lookup)
                .await
                .unwrap_or_else(|_| Err(std::io::Error::other("lookup timed out")));
            let addrs = match answer {
                Ok(addrs) if !addrs.is_empty() => addrs.into_iter().collect::<BTreeSet<_>>(),
                Ok(_) => {
                    tracing::warn!(%url, "upstream name resolved to no address; keeping the current ones");
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%url, %error, "upstream name did not resolve; keeping the current addresses");
                    continue;
                }
            };
            let known = current.entry(url.clone()).or_default();
            if *known == addrs {
                continue;
            }
            for addr in addrs.difference(known) {
                if let Some(endpoint) = named.endpoint(*addr, &configure) {
                    let _ = changes
                        .send(Change::Insert(format!("{url}@{addr}"), endpoint))
                        .await;
                }
            }
            for gone in known.difference(&addrs) {
                let _ = changes.send(Change::Remove(format!("{url}@{gone}"))).await;
            }
            if known.is_empty() {
                let _ = changes.send(Change::Remove(url.clone())).await;
            }
            tracing::info!(%url, addresses = addrs.len(), "upstream addresses changed");
            *known = addrs;
        }
        if changes.is_closed() {
            return;
        }
        tokio::time::sleep(refresh).await;
    }
}
