//! Cluster mode: membership, the node-to-node gRPC edges and the protocols over them.
//!
//! # Layout
//! - [`members`]: `cluster.conf` / `nacos.member.list`, this node's address, member states.
//! - [`peer`]: calls to other nodes (one tonic channel per peer, server identity, timeouts).
//! - [`resolve`]: member host names resolved, and resolved again as pods move.
//! - [`report`]: periodic member reports that drive UP / SUSPICIOUS / DOWN.
//! - [`config_sync`]: over a shared database, tells peers which config key changed, and
//!   heals missed messages with a periodic "changed since" scan.
//! - [`naming_sync`]: over a shared database, the same for services and persistent instances.
//! - [`raft`]: in an embedded cluster, the Raft transport over the Raft port and the
//!   cache invalidation that follows what the replicated log applies.
//! - [`distro`]: which node health-checks a persistent service (`HealthCheckMapper`), and
//!   ephemeral instances across nodes (copies applied through the naming
//!   service's `remote` entry points).
//! - [`forward`]: a v1 client's write reaching a node that only holds a copy goes to its owner.
//! - [`listeners`]: the console's listening query, gathered from every node.
//! - [`client_metrics`]: client config metrics (`ClientConfigMetricRequest` answers), gathered
//!   from every node.
//!
//! The ports themselves are served by the peer edge (`peer_edge`), which hands each message to
//! the protocol here that owns it.

pub mod client_metrics;
pub mod config_sync;
pub mod distro;
pub mod forward;
pub mod listeners;
pub mod members;
pub mod naming_sync;
pub mod peer;
pub mod raft;
pub mod report;
pub mod resolve;

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::foundation::settings::ClusterSettings;
use crate::foundation::settings::Settings;
use members::{Member, MemberAddr, MemberSource, Members, NodeState};
use peer::PeerClient;
use resolve::Resolver;

/// This node's view of the cluster.
#[derive(Debug)]
pub struct Cluster {
    pub members: Members,
    pub peers: PeerClient,
    /// Addresses of the members named by host name (shared with `peers`).
    pub resolver: Arc<Resolver>,
    pub settings: ClusterSettings,
    source: MemberSource,
    self_addr: MemberAddr,
    /// `nacos.server.grpc.port.offset`: cluster gRPC port = member port + offset + 1.
    grpc_offset: u16,
}

impl Cluster {
    /// Read the member list and build the cluster view. Errors are start errors (a bad
    /// `cluster.conf` line, an empty list).
    pub fn open(settings: &Settings, identity: Option<(String, String)>) -> Result<Self, String> {
        Self::open_with(settings, identity, Arc::new(Resolver::system()))
    }

    /// [`Cluster::open`] with the given resolver of member host names.
    pub fn open_with(
        settings: &Settings,
        identity: Option<(String, String)>,
        resolver: Arc<Resolver>,
    ) -> Result<Self, String> {
        let source = MemberSource::new(
            &settings.home.join("conf"),
            settings.cluster.member_list.clone(),
        );
        let list = source.read()?;
        if list.is_empty() {
            return Err(format!(
                "cluster mode needs members: list them in {} (one ip:port per line) or pass \
                 -c / nacos.member.list; or start with `-m standalone`",
                source.file.display()
            ));
        }
        if list.len() < 3 {
            tracing::warn!(
                members = list.len(),
                "a cluster needs at least 3 nodes to keep working when one fails"
            );
        }
        let ip = match &settings.cluster.self_ip {
            Some(ip) => ip.clone(),
            None if settings.cluster.prefer_hostname => match system_hostname() {
                Some(host) => self_by_hostname(&list, settings.port, &host),
                None => detect_local_ip(),
            },
            None => detect_local_ip(),
        };
        let listed = list.iter().any(|m| m.ip == ip && m.port == settings.port);
        if !listed && settings.embedded_cluster {
            // Raft memberships are built from the lists: a node missing from the others' lists
            // would start a cluster of its own idea.
            let hint = if list.iter().any(|m| resolve::is_name(&m.ip)) {
                " (the list names hosts: set PREFER_HOST_MODE=hostname / \
                 nacos.inetutils.prefer-hostname-over-ip=true so this node goes by its host name)"
            } else {
                ""
            };
            return Err(format!(
                "this node ({ip}:{}) is not in the member list {}; list it there, or set \
                 nacos.inetutils.ip-address to the address the list uses{hint}",
                settings.port,
                list.iter()
                    .map(MemberAddr::address)
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        let self_addr = MemberAddr {
            ip: ip.clone(),
            port: settings.port,
            raft_port: list
                .iter()
                .find(|m| m.ip == ip && m.port == settings.port)
                .and_then(|m| m.raft_port),
        };
        Ok(Cluster {
            members: Members::new(self_addr.clone(), list),
            peers: PeerClient::new(
                ip,
                identity,
                settings.cluster.request_timeout,
                Arc::clone(&resolver),
            ),
            resolver,
            settings: settings.cluster.clone(),
            source,
            self_addr,
            grpc_offset: settings.grpc.port_offset,
        })
    }

    pub fn self_address(&self) -> &str {
        self.members.self_address()
    }

    /// This node as a member (always UP to itself).
    pub fn self_member(&self) -> Member {
        let raft_port = self
            .members
            .get(self.self_address())
            .and_then(|m| m.raft_port)
            .or(self.self_addr.raft_port)
            .or_else(|| crate::foundation::settings::raft_port_of(self.self_addr.port));
        Member::this_node(self.self_addr.ip.clone(), self.self_addr.port, raft_port)
    }

    /// The cluster gRPC address (`ip:port+offset+1`) of the member named `address`.
    pub fn cluster_grpc_addr(&self, address: &str) -> Option<String> {
        let member = self.members.get(address)?;
        let port = member.port.checked_add(self.grpc_offset)?.checked_add(1)?;
        Some(format!("{}:{port}", member.ip))
    }

    /// The Raft address (`ip:raft_port`) of a member.
    pub fn raft_addr(member: &Member) -> Option<String> {
        member.raft_port.map(|p| format!("{}:{p}", member.ip))
    }

    /// Every member's Raft address, this node's included, ordered by member address.
    pub fn raft_addrs(&self) -> Vec<String> {
        self.members
            .all()
            .iter()
            .filter_map(Self::raft_addr)
            .collect()
    }

    /// Re-read the member list; members that appear start SUSPICIOUS, members that go are
    /// forgotten. A file that no longer parses keeps the current list (and says so).
    pub fn reload(&self) -> bool {
        match self.source.read() {
            Ok(list) if !list.is_empty() => {
                let before: Vec<String> =
                    self.members.peers().iter().map(Member::address).collect();
                let changed = self.members.replace(self.self_addr.clone(), list);
                if changed {
                    let after: Vec<String> =
                        self.members.all().iter().map(Member::address).collect();
                    for gone in before.iter().filter(|a| !after.contains(a)) {
                        if let Some(addr) = self.cluster_grpc_addr(gone) {
                            self.peers.forget(&addr);
                        }
                    }
                    tracing::info!(members = ?after, "cluster member list changed");
                }
                changed
            }
            Ok(_) => {
                tracing::warn!(file = %self.source.file.display(), "member list is empty now; keeping the current members");
                false
            }
            Err(e) => {
                tracing::warn!("cannot reload the member list, keeping the current one: {e}");
                false
            }
        }
    }

    /// Members leave (`POST /v1/core/cluster/server/leave`): they are taken out of this node's
    /// member list (and, on an embedded cluster's leader, out of Raft). They come back if
    /// `cluster.conf` still lists them when it is next edited or at a restart. Errors name the
    /// address that cannot leave.
    pub fn leave(&self, addresses: &[String]) -> Result<Vec<String>, String> {
        let mut leaving = Vec::new();
        for raw in addresses {
            let address = members::parse_members(raw)?
                .first()
                .map(MemberAddr::address)
                .ok_or_else(|| format!("'{raw}' is not a member address"))?;
            if address == self.self_address() {
                return Err(format!(
                    "{address} is this node: stop it instead, or ask another member"
                ));
            }
            if !self.members.contains(&address) {
                return Err(format!("{address} is not a member of this cluster"));
            }
            leaving.push(address);
        }
        let staying: Vec<MemberAddr> = self
            .members
            .all()
            .iter()
            .filter(|m| !leaving.contains(&m.address()))
            .map(Member::member_addr)
            .collect();
        let channels: Vec<String> = leaving
            .iter()
            .filter_map(|a| self.cluster_grpc_addr(a))
            .collect();
        self.members.replace(self.self_addr.clone(), staying);
        channels.iter().for_each(|grpc| self.peers.forget(grpc));
        for address in &leaving {
            tracing::info!(member = %address, "cluster member left");
        }
        Ok(leaving)
    }

    /// Send `request` to every peer that is not DOWN, concurrently, in the background.
    /// Failures are logged at debug level only: the callers' periodic scans repair what a lost
    /// message missed (a DOWN peer's included, once it is back).
    pub fn tell_peers<R: peer::PeerRequest + Clone>(self: &Arc<Self>, request: R) {
        let live = self
            .members
            .peers()
            .into_iter()
            .filter(|m| m.state != NodeState::Down);
        for member in live {
            let cluster = Arc::clone(self);
            let request = request.clone();
            tokio::spawn(async move {
                let address = member.address();
                let Some(grpc) = cluster.cluster_grpc_addr(&address) else {
                    return;
                };
                if let Err(e) = cluster.peers.request(&grpc, &request).await {
                    tracing::debug!(member = %address, error = %e, "{} not delivered; the peer's next scan covers it", R::TYPE);
                }
            });
        }
    }

    /// Whether `ip` is a member's address: a member listed by IP, or one whose host name
    /// resolves to it. An unknown address asks for the names to be looked up again, since it
    /// may be a member whose pod just moved.
    pub fn is_member_ip(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        let literal = self.members.all().iter().any(|m| {
            m.ip.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|member| member.to_canonical() == ip)
        });
        if literal || self.resolver.knows(ip) {
            return true;
        }
        self.resolver.refresh_soon();
        false
    }

    /// Look up the members' host names again (every member, this node included, since the
    /// peer edge admits by address).
    pub async fn resolve_members(&self) {
        let hosts: Vec<String> = self.members.all().into_iter().map(|m| m.ip).collect();
        for (host, now) in self.resolver.refresh(&hosts).await {
            match now {
                Some(ip) => {
                    tracing::info!(host = %host, address = %ip, "member host name resolved")
                }
                None => tracing::info!(host = %host, "member host name does not resolve (yet)"),
            }
        }
    }

    /// Background tasks: member reports, member list reloads and host name lookups.
    pub fn start(self: &Arc<Self>, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
        vec![
            report::start(Arc::clone(self), shutdown.clone()),
            self.start_resolver(shutdown.clone()),
            self.start_reloader(shutdown),
        ]
    }

    fn start_resolver(self: &Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        let cluster = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(cluster.settings.resolve_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut list = cluster.members.watch_list();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                    _ = cluster.resolver.woken() => {}
                    _ = list.changed() => {}
                }
                cluster.resolve_members().await;
            }
        })
    }

    fn start_reloader(self: &Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        let cluster = Arc::clone(self);
        tokio::spawn(async move {
            let mut stamp = cluster.source.stamp();
            let mut tick = tokio::time::interval(cluster.settings.reload_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let now = cluster.source.stamp();
                if now != stamp {
                    stamp = now;
                    cluster.reload();
                }
            }
        })
    }
}

/// Call `each` with every value `values` yields until `shutdown`. Values a slow relay missed
/// are skipped with a warning: every relay here has a periodic scan behind it that repairs
/// what a lost message missed.
pub(crate) fn relay<T: Clone + Send + 'static>(
    mut values: tokio::sync::broadcast::Receiver<T>,
    shutdown: CancellationToken,
    what: &'static str,
    mut each: impl FnMut(T) + Send + 'static,
) -> JoinHandle<()> {
    use tokio::sync::broadcast::error::RecvError;
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                next = values.recv() => next,
            };
            match next {
                Ok(value) => each(value),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        dropped = n,
                        "{what} fell behind; the periodic scan covers what it missed"
                    );
                }
                Err(RecvError::Closed) => return,
            }
        }
    })
}

/// This machine's host name (a pod's is its StatefulSet name, `nacos-0`).
fn system_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// In host-name mode, this node is the member-list entry on its port that is its host name
/// or starts with it as the first label (`nacos-0` is `nacos-0.nacos-headless.ns.svc...`);
/// without one, the bare host name.
fn self_by_hostname(list: &[MemberAddr], port: u16, hostname: &str) -> String {
    let matches = |name: &str| {
        name.eq_ignore_ascii_case(hostname)
            || name
                .split_once('.')
                .is_some_and(|(first, _)| first.eq_ignore_ascii_case(hostname))
    };
    list.iter()
        .find(|m| m.port == port && matches(&m.ip))
        .map_or_else(|| hostname.to_string(), |m| m.ip.clone())
}

/// The address other machines reach this one at, when `nacos.inetutils.ip-address` is not
/// set: the source address of the default route.
pub fn detect_local_ip() -> String {
    // Connecting a UDP socket sends nothing; it only asks the kernel which source address
    // it would use.
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("10.255.255.255:1").map(|()| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "127.0.0.1".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_name_mode_finds_this_pod_in_the_list() {
        let list = members::parse_members(
            "nacos-0.nacos-headless.default.svc.cluster.local:8848 \
             nacos-1.nacos-headless.default.svc.cluster.local:8848,nacos-10.nacos-headless:8848",
        )
        .expect("valid");
        assert_eq!(
            self_by_hostname(&list, 8848, "nacos-1"),
            "nacos-1.nacos-headless.default.svc.cluster.local"
        );
        assert_eq!(
            self_by_hostname(&list, 8848, "nacos-10"),
            "nacos-10.nacos-headless"
        );
        assert_eq!(
            self_by_hostname(&list, 9000, "nacos-1"),
            "nacos-1",
            "port must match"
        );
        assert_eq!(self_by_hostname(&list, 8848, "other"), "other");
    }
}
