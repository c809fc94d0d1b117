//! Cluster mode: membership, the node-to-node gRPC edges and the protocols over them.
//!
//! # Layout
//! - [`members`]: `cluster.conf` / `nacos.member.list`, this node's address, member states.
//! - [`peer`]: calls to other nodes (one tonic channel per peer, server identity, timeouts).
//! - [`report`]: periodic member reports that drive UP / SUSPICIOUS / DOWN.
//! - [`config_sync`]: over a shared database, tells peers which config key changed, and
//!   heals missed messages with a periodic "changed since" scan.
//! - [`naming_sync`]: over a shared database, the same for services and persistent instances.
//! - [`raft`]: in an embedded cluster, the Raft transport over the Raft port and the
//!   cache invalidation that follows what the replicated log applies.
//! - [`distro`]: ephemeral instances across nodes (copies applied through the naming
//!   service's `remote` entry points).
//! - [`forward`]: a v1 client's write reaching a node that only holds a copy goes to its owner.
//!
//! The ports themselves are served by the peer edge (`peer_edge`), which hands each message to
//! the protocol here that owns it.

pub mod config_sync;
pub mod distro;
pub mod forward;
pub mod listeners;
pub mod members;
pub mod naming_sync;
pub mod peer;
pub mod raft;
pub mod report;

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::foundation::settings::ClusterSettings;
use crate::foundation::settings::Settings;
use members::{Member, MemberAddr, MemberSource, Members, NodeState};
use peer::PeerClient;

/// This node's view of the cluster.
#[derive(Debug)]
pub struct Cluster {
    pub members: Members,
    pub peers: PeerClient,
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
        let ip = settings
            .cluster
            .self_ip
            .clone()
            .unwrap_or_else(detect_local_ip);
        let listed = list.iter().any(|m| m.ip == ip && m.port == settings.port);
        if !listed && settings.embedded_cluster {
            // Raft memberships are built from the lists: a node missing from the others' lists
            // would start a cluster of its own idea.
            return Err(format!(
                "this node ({ip}:{}) is not in the member list {}; list it there, or set \
                 nacos.inetutils.ip-address to the address the list uses",
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
            peers: PeerClient::new(ip, identity, settings.cluster.request_timeout),
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

    /// Background tasks: member reports and member list reloads.
    pub fn start(self: &Arc<Self>, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
        vec![
            report::start(Arc::clone(self), shutdown.clone()),
            self.start_reloader(shutdown),
        ]
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
