//! Which address a request comes from, for the per-IP limits.
//!
//! The TCP peer, unless the peer is one of `LATCHKEY_TRUSTED_PROXIES`: then the header named by
//! `LATCHKEY_CLIENT_IP_HEADER` (e.g. `X-Forwarded-For`) is read from the right — each proxy
//! appends the address it saw — skipping trusted proxies, and the first address that is not one
//! is the client. Entries left of it were written by the client and are never believed, so a
//! client can neither escape its own limits nor spend someone else's by naming them.

use http::{HeaderMap, HeaderName};
use ipnet::IpNet;
use latchkey_common::config::Problems;
use latchkey_common::config::TRUSTED_PROXIES;
use std::net::{IpAddr, SocketAddr};

/// How to find a request's client address.
#[derive(Debug, Clone, Default)]
pub struct ClientIp {
    header: Option<HeaderName>,
    trusted: Vec<IpNet>,
}

impl ClientIp {
    /// Believes `header` only from peers within `trusted`.
    pub fn new(header: Option<HeaderName>, trusted: Vec<IpNet>) -> Self {
        ClientIp { header, trusted }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request from `peer` with `headers`.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        let Some(name) = &self.header else {
            return peer;
        };
        if !self.is_trusted(peer) {
            return peer;
        }
        // Every occurrence of the header, in order, as one comma-separated list.
        let entries: Vec<&str> = headers
            .get_all(name)
            .iter()
            .flat_map(|value| value.to_str().unwrap_or("\u{0}").split(','))
            .map(str::trim)
            .collect();
        let mut nearest = peer;
        for entry in entries.iter().rev() {
            let Some(ip) = parse_entry(entry) else {
                // Garbage where an address should be: the proxy at `nearest` did not write it,
                // so nothing further left can be believed either.
                return nearest;
            };
            if !self.is_trusted(ip) {
                return ip;
            }
            nearest = ip;
        }
        nearest
    }
}

/// One list entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:5678`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    entry
        .parse::<SocketAddr>()
        .ok()
        .map(|addr| addr.ip().to_canonical())
}

/// Parses `LATCHKEY_TRUSTED_PROXIES`: CIDRs or single addresses, comma-separated.
pub fn parse_proxies(text: &str, problems: &mut Problems) -> Vec<IpNet> {
    let mut nets = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let parsed = item
            .parse::<IpNet>()
            .or_else(|_| item.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => nets.push(net.trunc()),
            Err(_) => problems.push(
                TRUSTED_PROXIES.env(),
                format!("`{item}` is not an address or CIDR"),
                "list your proxies' addresses or networks, comma-separated, e.g. 10.0.0.0/8,192.168.1.7",
            ),
        }
    }
    nets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append("x-forwarded-for", value.parse().unwrap());
        }
        map
    }

    fn resolver(trusted: &str) -> ClientIp {
        let mut problems = Problems::default();
        let nets = parse_proxies(trusted, &mut problems);
        assert!(problems.0.is_empty(), "{problems}");
        ClientIp::new(Some(HeaderName::from_static("x-forwarded-for")), nets)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let client = resolver("10.0.0.0/8");
        let spoofed = headers(&["1.1.1.1"]);
        assert_eq!(
            client.resolve(ip("203.0.113.9"), &spoofed),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_entry_is_the_client() {
        let client = resolver("10.0.0.0/8, 192.168.0.7");
        // The client prepended a lie; the proxy appended what it saw.
        let forwarded = headers(&["6.6.6.6, 203.0.113.9"]);
        assert_eq!(
            client.resolve(ip("10.1.2.3"), &forwarded),
            ip("203.0.113.9")
        );
        // Two trusted hops, the header repeated, ports and IPv6 brackets.
        let chained = headers(&["6.6.6.6", "[2001:db8::5]:4431, 192.168.0.7, 10.9.9.9:80"]);
        assert_eq!(client.resolve(ip("10.1.2.3"), &chained), ip("2001:db8::5"));
        // No header: the proxy itself; every entry trusted: the leftmost of them.
        assert_eq!(
            client.resolve(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
        let inside = headers(&["10.7.7.7, 10.8.8.8"]);
        assert_eq!(client.resolve(ip("10.1.2.3"), &inside), ip("10.7.7.7"));
        // Garbage stops the walk at the last trusted hop.
        let garbage = headers(&["1.1.1.1, not-an-ip, 10.8.8.8"]);
        assert_eq!(client.resolve(ip("10.1.2.3"), &garbage), ip("10.8.8.8"));
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        let client = resolver("127.0.0.1");
        let forwarded = headers(&["198.51.100.4"]);
        assert_eq!(
            client.resolve(ip("::ffff:127.0.0.1"), &forwarded),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn without_a_header_setting_the_peer_is_the_client() {
        let client = ClientIp::new(None, vec!["0.0.0.0/0".parse().unwrap()]);
        assert_eq!(
            client.resolve(ip("10.1.2.3"), &headers(&["1.1.1.1"])),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn bad_proxy_entries_are_problems() {
        let mut problems = Problems::default();
        let nets = parse_proxies("10.0.0.0/8, nonsense, 10.0.0.300", &mut problems);
        assert_eq!(nets.len(), 1);
        assert_eq!(problems.0.len(), 2, "{problems}");
    }
}
