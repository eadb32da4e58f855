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
use tokio::sync::mpsc::{Receiver, Sender};
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
    let targets = targets(urls)?;
    let endpoint = move |target: &Target| {
        Endpoint::from_shared(target.uri.to_string())
            .map(|endpoint| match target.origin == target.uri {
                true => configure(endpoint),
                false => configure(endpoint.origin(target.origin.clone())),
            })
            .map_err(|_| BalanceError::InvalidUrl(target.uri.to_string()))
    };
    let Some(mut followed) = follow_names(&targets, resolver, refresh) else {
        let mut endpoints = targets
            .iter()
            .map(|(_, target)| endpoint(target))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(match endpoints.len() {
            1 => endpoints.remove(0).connect_lazy(),
            _ => Channel::balance_list(endpoints.into_iter()),
        });
    };
    let (channel, changes) = Channel::balance_channel::<String>(64);
    for (key, target) in &targets {
        // Until a name has been resolved its URL serves as is, so a call never waits on an
        // empty pool: it connects or fails as UNAVAILABLE.
        let _ = changes.try_send(tonic::transport::channel::Change::Insert(
            key.clone(),
            endpoint(target)?,
        ));
    }
    tokio::spawn(async move {
        while let Some(change) = followed.recv().await {
            let change = match change {
                Change::Insert(key, target) => match endpoint(&target) {
                    Ok(endpoint) => tonic::transport::channel::Change::Insert(key, endpoint),
                    Err(_) => continue,
                },
                Change::Remove(key) => tonic::transport::channel::Change::Remove(key),
            };
            if changes.send(change).await.is_err() {
                return;
            }
        }
    });
    Ok(channel)
}

/// One upstream address a channel balances over: what to connect to, and the origin
/// (`scheme://authority`) its requests carry — a configured name, also when `uri` holds one of
/// the addresses it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where to connect: the configured URL, or `http://<resolved address>`.
    pub uri: Uri,
    /// The configured URL, for `:authority`.
    pub origin: Uri,
}

impl Target {
    fn as_given(uri: Uri) -> Target {
        Target {
            origin: uri.clone(),
            uri,
        }
    }

    /// `host:port` to open a TCP connection to (port 80 when the URL has none).
    pub fn connect_to(&self) -> String {
        let host = self.uri.host().unwrap_or_default();
        format!("{host}:{}", self.uri.port_u16().unwrap_or(80))
    }

    /// The full request URI for `path` on this target's origin.
    pub fn uri_for(&self, path: Option<&http::uri::PathAndQuery>) -> Result<Uri, http::Error> {
        let mut parts = http::uri::Builder::new()
            .scheme(self.origin.scheme_str().unwrap_or("http"))
            .authority(
                self.origin
                    .authority()
                    .map(|a| a.as_str())
                    .unwrap_or_default(),
            );
        if let Some(path) = path {
            parts = parts.path_and_query(path.clone());
        }
        parts.build()
    }
}

/// A change to the addresses a channel balances over, keyed by `url` or `url@address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An address to use (replacing one with the same key).
    Insert(String, Target),
    /// An address to stop using.
    Remove(String),
}

/// Every URL as a target used as given, keyed by the URL; an empty list is refused.
pub fn targets(urls: &[String]) -> Result<Vec<(String, Target)>, BalanceError> {
    if urls.is_empty() {
        return Err(BalanceError::Empty);
    }
    urls.iter()
        .map(|url| {
            let uri: Uri = url
                .parse()
                .map_err(|_| BalanceError::InvalidUrl(url.clone()))?;
            if uri.scheme().is_none() || uri.host().is_none() {
                return Err(BalanceError::InvalidUrl(url.clone()));
            }
            Ok((uri.to_string(), Target::as_given(uri)))
        })
        .collect()
}

/// The changes to `targets` as their names resolve, every `refresh`; `None` when no target is a
/// name (nothing to follow, no task). The task ends when the receiver is dropped.
pub fn follow_names(
    targets: &[(String, Target)],
    resolver: Resolver,
    refresh: Duration,
) -> Option<Receiver<Change>> {
    let names: Vec<Named> = targets
        .iter()
        .filter_map(|(_, target)| Named::of(&target.uri))
        .collect();
    if names.is_empty() {
        return None;
    }
    let (changes, followed) = tokio::sync::mpsc::channel(64);
    tokio::spawn(follow_dns(names, changes, resolver, refresh));
    Some(followed)
}

/// A configured URL whose host is a name to resolve.
struct Named {
    uri: Uri,
    host: String,
    port: u16,
}

impl Named {
    fn of(uri: &Uri) -> Option<Named> {
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
            uri: uri.clone(),
        })
    }

    /// The target for one resolved address, keeping the name as the origin.
    fn target(&self, addr: SocketAddr) -> Option<Target> {
        Some(Target {
            uri: format!("http://{addr}").parse().ok()?,
            origin: self.uri.clone(),
        })
    }
}

/// Keeps the channel's endpoints equal to what each name resolves to. A failed or empty answer
/// keeps the current set: a DNS blip must not empty the pool.
async fn follow_dns(
    names: Vec<Named>,
    changes: Sender<Change>,
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
                if let Some(target) = named.target(*addr) {
                    let _ = changes
                        .send(Change::Insert(format!("{url}@{addr}"), target))
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
