//! Member host names (`nacos-0.nacos-headless.default.svc.cluster.local:8848`, as a
//! Kubernetes StatefulSet names its pods): resolved to an address to connect to, and resolved
//! again every `nacos.member.resolve.intervalMs` and soon after a failed connection, because a
//! restarted pod keeps its name but gets a new address.
//!
//! The name stays the member's identity everywhere (member table, reports, Raft voters);
//! only the peer client's connections and the peer edge's "is the caller a member" check use
//! the addresses. A name that does not resolve yet is a member that cannot be reached (its
//! reports fail, so it turns DOWN), never a start-up failure.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A lookup of one host name: its addresses, or why there are none.
pub type LookupFuture = Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, String>> + Send>>;
/// The lookup function: the system resolver in production, a table in tests.
pub type Lookup = Arc<dyn Fn(String) -> LookupFuture + Send + Sync>;

/// A lookup that hangs (an unreachable DNS server) must not hold a report round hostage.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Refreshes asked for by failed connections are at least this far apart, so a DOWN member
/// does not cost a DNS query per report.
const MIN_REFRESH_GAP: Duration = Duration::from_secs(1);

/// What is known of one name.
#[derive(Debug, Clone, Default)]
struct Entry {
    /// IPv4 first (most clusters are IPv4, and `localhost` often resolves to `::1` too while
    /// servers listen on IPv4 only), in the resolver's order otherwise. Empty: unresolved.
    addrs: Vec<IpAddr>,
    /// Which of `addrs` connections go to; moved on when a connection to it fails.
    current: usize,
}

impl Entry {
    fn address(&self) -> Option<IpAddr> {
        self.addrs.get(self.current).copied()
    }
}

/// The cache of member names and their addresses.
pub struct Resolver {
    lookup: Lookup,
    names: Mutex<HashMap<String, Entry>>,
    /// Wakes the refresh loop early (a failed connection, a caller at an unknown address).
    wake: Notify,
    last_refresh: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("names", &*self.lock())
            .finish_non_exhaustive()
    }
}

/// Whether `host` is a name to resolve rather than an IP literal.
pub fn is_name(host: &str) -> bool {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_err()
}

/// Split `host:port` (or `[v6]:port`) into its parts.
pub fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host, port.parse().ok()?))
}

impl Resolver {
    /// Names resolved by the system resolver (`/etc/hosts`, then DNS), through tokio.
    pub fn system() -> Self {
        Self::with_lookup(Arc::new(|host: String| {
            Box::pin(async move {
                tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .map(|addrs| addrs.map(|a| a.ip()).collect())
                    .map_err(|e| e.to_string())
            }) as LookupFuture
        }))
    }

    /// Names resolved by `lookup` (tests inject a table here).
    pub fn with_lookup(lookup: Lookup) -> Self {
        Resolver {
            lookup,
            names: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            last_refresh: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let found = tokio::time::timeout(LOOKUP_TIMEOUT, (self.lookup)(name.to_string()))
            .await
            .map_err(|_| format!("no answer within {LOOKUP_TIMEOUT:?}"))??;
        let mut addrs: Vec<IpAddr> = Vec::new();
        for ip in found.into_iter().map(|ip| ip.to_canonical()) {
            if !addrs.contains(&ip) {
                addrs.push(ip);
            }
        }
        // Stable: keeps the resolver's order within each family.
        addrs.sort_by_key(IpAddr::is_ipv6);
        if addrs.is_empty() {
            return Err("no addresses".to_string());
        }
        Ok(addrs)
    }

    /// The address to connect to for `host`: the host itself when it is an IP, else the cached
    /// address of the name, else a lookup now.
    pub async fn address(&self, host: &str) -> Result<IpAddr, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(ip);
        }
        if let Some(ip) = self.lock().get(host).and_then(Entry::address) {
            return Ok(ip);
        }
        let addrs = self
            .lookup(host)
            .await
            .map_err(|e| format!("host name {host} does not resolve: {e}"))?;
        let mut names = self.lock();
        let entry = names.entry(host.to_string()).or_default();
        if entry.addrs != addrs {
            tracing::info!(host = %host, addresses = ?addrs, "member host name resolved");
            *entry = Entry { addrs, current: 0 };
        }
        entry
            .address()
            .ok_or_else(|| format!("host name {host} does not resolve"))
    }

    /// A connection to `host`'s current address failed: try its next address (if it has
    /// several), and look the name up again soon.
    pub fn failed(&self, host: &str) {
        if !is_name(host) {
            return;
        }
        if let Some(entry) = self.lock().get_mut(host)
            && !entry.addrs.is_empty()
        {
            entry.current = (entry.current + 1) % entry.addrs.len();
        }
        self.wake.notify_one();
    }

    /// Ask the refresh loop to run now (a caller came from an address no member has yet).
    pub fn refresh_soon(&self) {
        self.wake.notify_one();
    }

    /// Whether `ip` is an address of one of the names resolved so far.
    pub fn knows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.lock().values().any(|e| e.addrs.contains(&ip))
    }

    /// Look every name in `hosts` up again and forget names no longer asked for. Returns the
    /// names whose addresses changed, with their new address (`None`: does not resolve now).
    /// A failed lookup keeps nothing: an address that no longer resolves must not keep
    /// admitting callers or receiving connections.
    pub async fn refresh(&self, hosts: &[String]) -> Vec<(String, Option<IpAddr>)> {
        *self.last_refresh.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let mut wanted: Vec<&String> = hosts.iter().filter(|h| is_name(h)).collect();
        wanted.sort();
        wanted.dedup();
        self.lock().retain(|name, _| wanted.contains(&name));
        let mut changed = Vec::new();
        for name in wanted {
            let found = self.lookup(name).await;
            let mut names = self.lock();
            let entry = names.entry(name.clone()).or_default();
            let before = entry.address();
            match found {
                Ok(addrs) if addrs == entry.addrs => {}
                Ok(addrs) => *entry = Entry { addrs, current: 0 },
                Err(e) => {
                    if before.is_some() {
                        tracing::warn!(host = %name, "a member's host name stopped resolving: {e}");
                    }
                    *entry = Entry::default();
                }
            }
            let after = entry.address();
            if after != before {
                changed.push((name.clone(), after));
            }
        }
        changed
    }

    /// Wait until asked to refresh early, but no sooner than [`MIN_REFRESH_GAP`] after the
    /// last refresh.
    pub async fn woken(&self) {
        self.wake.notified().await;
        let last = *self.last_refresh.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wait) = last.and_then(|t| MIN_REFRESH_GAP.checked_sub(t.elapsed())) {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The names a test resolver knows, editable while it runs.
    pub(crate) type HostTable = Arc<Mutex<HashMap<String, Vec<IpAddr>>>>;

    /// A resolver over a table the test edits (no /etc/hosts, no DNS).
    pub(crate) fn table_resolver() -> (Resolver, HostTable) {
        let table: HostTable = Arc::default();
        let lookup_table = Arc::clone(&table);
        let resolver = Resolver::with_lookup(Arc::new(move |host: String| {
            let found = lookup_table
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&host)
                .cloned();
            Box::pin(async move { found.ok_or_else(|| "unknown host".to_string()) }) as LookupFuture
        }));
        (resolver, table)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip literal")
    }

    #[tokio::test]
    async fn names_resolve_ips_pass_through_and_unknown_names_fail() {
        let (resolver, table) = table_resolver();
        table.lock().expect("lock").insert(
            "nacos-0.nacos-headless".into(),
            vec![ip("fd00::1"), ip("10.0.0.1")],
        );
        assert_eq!(resolver.address("10.9.9.9").await, Ok(ip("10.9.9.9")));
        assert_eq!(
            resolver.address("nacos-0.nacos-headless").await,
            Ok(ip("10.0.0.1")),
            "IPv4 first"
        );
        assert!(resolver.knows(ip("10.0.0.1")) && resolver.knows(ip("fd00::1")));
        let err = resolver
            .address("nacos-1.nacos-headless")
            .await
            .expect_err("not in the table");
        assert!(err.contains("nacos-1.nacos-headless"), "{err}");
        // A failed connection moves to the next address, then back.
        resolver.failed("nacos-0.nacos-headless");
        assert_eq!(
            resolver.address("nacos-0.nacos-headless").await,
            Ok(ip("fd00::1"))
        );
        resolver.failed("nacos-0.nacos-headless");
        assert_eq!(
            resolver.address("nacos-0.nacos-headless").await,
            Ok(ip("10.0.0.1"))
        );
    }

    #[tokio::test]
    async fn refresh_follows_a_new_address_and_forgets_one_that_went() {
        let (resolver, table) = table_resolver();
        let names = vec![
            "nacos-0.svc".to_string(),
            "nacos-1.svc".to_string(),
            "10.0.0.3".to_string(),
        ];
        table
            .lock()
            .expect("lock")
            .insert("nacos-0.svc".into(), vec![ip("10.0.0.1")]);
        // nacos-1 does not resolve yet (its pod is not scheduled).
        let changed = resolver.refresh(&names).await;
        assert_eq!(
            changed,
            vec![("nacos-0.svc".to_string(), Some(ip("10.0.0.1")))]
        );
        assert!(resolver.address("nacos-1.svc").await.is_err());

        // nacos-0's pod restarts with a new address; nacos-1 appears.
        {
            let mut t = table.lock().expect("lock");
            t.insert("nacos-0.svc".into(), vec![ip("10.0.0.11")]);
            t.insert("nacos-1.svc".into(), vec![ip("10.0.0.2")]);
        }
        let mut changed = resolver.refresh(&names).await;
        changed.sort();
        assert_eq!(
            changed,
            vec![
                ("nacos-0.svc".to_string(), Some(ip("10.0.0.11"))),
                ("nacos-1.svc".to_string(), Some(ip("10.0.0.2"))),
            ]
        );
        assert_eq!(resolver.address("nacos-0.svc").await, Ok(ip("10.0.0.11")));
        assert!(
            !resolver.knows(ip("10.0.0.1")),
            "the old address admits no one"
        );
        assert!(resolver.refresh(&names).await.is_empty(), "nothing changed");

        // nacos-1 stops resolving; then it leaves the member list.
        table.lock().expect("lock").remove("nacos-1.svc");
        assert_eq!(
            resolver.refresh(&names).await,
            vec![("nacos-1.svc".to_string(), None)]
        );
        assert!(!resolver.knows(ip("10.0.0.2")));
        resolver.refresh(&names[..1]).await;
        assert!(!resolver.lock().contains_key("nacos-1.svc"));
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("a.b:8848"), Some(("a.b", 8848)));
        assert_eq!(split_host_port("[::1]:7848"), Some(("::1", 7848)));
        assert_eq!(split_host_port("nope"), None);
        assert!(is_name("localhost") && !is_name("127.0.0.1") && !is_name("[::1]"));
    }
}
