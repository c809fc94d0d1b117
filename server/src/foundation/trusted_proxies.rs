//! `nacos.core.auth.trusted.proxies`: the reverse proxies whose `X-Forwarded-For` /
//! `X-Real-IP` headers the server believes. Empty by default: the client address is then the
//! socket peer, whatever the headers say.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;

pub const TRUSTED_PROXIES: &str = "nacos.core.auth.trusted.proxies";

/// A list of CIDR blocks (a bare address is a single-address block). Cheap to clone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Arc<[IpNet]>,
}

impl TrustedProxies {
    /// Parse a comma-separated list such as `10.0.0.0/8, 127.0.0.1/32, ::1`. Blank entries are
    /// skipped; a malformed one is an error that quotes it.
    pub fn parse(list: &str) -> Result<Self, String> {
        let nets = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| format!("'{entry}' is not an address or CIDR block"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { nets: nets.into() })
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is in one of the blocks (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn parses_blocks_and_bare_addresses() {
        let t = TrustedProxies::parse(" 10.0.0.0/8, 127.0.0.1/32,,::1, 192.168.1.7 ")
            .expect("valid list");
        assert!(t.contains(ip("10.200.3.4")));
        assert!(t.contains(ip("127.0.0.1")));
        assert!(!t.contains(ip("127.0.0.2")));
        assert!(t.contains(ip("::1")));
        assert!(t.contains(ip("192.168.1.7")));
        assert!(t.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped");
        assert!(!t.contains(ip("11.0.0.1")));
        assert!(TrustedProxies::parse("").expect("empty").is_empty());
        assert!(
            TrustedProxies::parse("10.0.0.1/8")
                .expect("host bits")
                .contains(ip("10.9.9.9")),
            "host bits are dropped"
        );
        let err = TrustedProxies::parse("10.0.0.0/8, proxy.local").expect_err("bad");
        assert!(err.contains("proxy.local"), "{err}");
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
    }
}
