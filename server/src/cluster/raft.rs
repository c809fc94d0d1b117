//! Embedded cluster (`-p embedded`): the storage's Raft node wired to this server.
//!
//! - The transport: Raft's messages travel as payloads on the Raft port (main - 1000) of each
//!   member, over the same peer client as the other node-to-node calls.
//! - The handlers: every Raft request kind is answered by the local node.
//! - What the log applied: every node applies every committed command to its own store, so
//!   caches in front of the store (configs, persistent naming data) follow the applied
//!   commands, on followers as on the leader.
//! - The history purge runs on the leader only ([`LeaderTurn`]).
//! - Membership: the leader makes the Raft voters follow the member list (`cluster.conf`
//!   reloads, members leaving through the API), one change at a time.

use std::sync::Arc;

use async_trait::async_trait;
use nacos_core::Repos;
use nacos_storage_embedded::Command;
pub use nacos_storage_embedded::raft::RPC_KINDS;
use nacos_storage_embedded::raft::{
    Applied, RaftNode, RaftSettings, RaftTransport, TransportError,
};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Cluster;
use super::peer::PeerError;
use crate::foundation::error::StartError;
use crate::foundation::settings::Settings;
use crate::services::config::ConfigService;
use crate::services::config::retention::PurgeTurn;
use crate::services::naming::NamingService;

/// The server's handle on its Raft node.
pub type RaftHandle = RaftNode;

/// Payload type of a Raft reply.
pub const REPLY: &str = "RaftReply";

/// Raft over the peer client.
#[derive(Debug)]
struct PeerTransport {
    cluster: Arc<Cluster>,
}

#[async_trait]
impl RaftTransport for PeerTransport {
    async fn call(
        &self,
        addr: &str,
        kind: &'static str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        // openraft bounds each RPC itself; this only stops a call hanging forever.
        let limit = std::time::Duration::from_secs(30);
        match self.cluster.peers.call_raw(addr, kind, body, limit).await {
            Ok(reply) if reply.type_name() == REPLY => Ok(reply.body_bytes().to_vec()),
            Ok(reply) => {
                let message = serde_json::from_slice::<serde_json::Value>(reply.body_bytes())
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("unexpected {} reply", reply.type_name()));
                Err(TransportError::Remote(message))
            }
            // Only a request that certainly never left may be retried elsewhere.
            Err(e @ PeerError::NotDelivered { .. }) => {
                Err(TransportError::Unreachable(e.to_string()))
            }
            Err(e) => Err(TransportError::Remote(e.to_string())),
        }
    }
}

/// Start this node's Raft over the embedded store in the data directory, with every member
/// of the cluster as a voter.
pub async fn open(
    settings: &Settings,
    cluster: &Arc<Cluster>,
) -> Result<(Repos, Arc<RaftNode>), StartError> {
    let me = cluster.self_member();
    let self_addr = Cluster::raft_addr(&me).ok_or_else(|| {
        StartError::Unsupported(format!(
            "this node's Raft port (server.port {} - 1000) is not a valid port",
            settings.port
        ))
    })?;
    let members = cluster.raft_addrs();
    let c = &settings.cluster;
    let mut raft = RaftSettings::new(self_addr, members);
    raft.heartbeat_interval = c.raft_heartbeat;
    raft.election_timeout_min = c.raft_election_min;
    raft.election_timeout_max = c.raft_election_max;
    raft.snapshot_logs_since_last = c.raft_snapshot_logs;
    raft.keep_logs = c.raft_keep_logs;
    let transport = Arc::new(PeerTransport {
        cluster: Arc::clone(cluster),
    });
    let dir = settings.data_dir();
    let (node, repos) = RaftNode::start(raft, &dir, transport).await.map_err(|e| {
        StartError::Storage(format!(
            "cannot start the embedded cluster store in {}: {e}",
            dir.display()
        ))
    })?;
    Ok((repos, node))
}

/// The history purge's turn on an embedded cluster: the Raft leader's, confirmed with a
/// quorum, so a leader cut off from the others does not try. (Were two nodes ever to believe
/// they lead, the purge is still one replicated command with its cutoff inside: the log
/// orders it, and the deposed leader's write fails.)
#[derive(Debug)]
pub struct LeaderTurn(pub Arc<RaftHandle>);

#[async_trait]
impl PurgeTurn for LeaderTurn {
    async fn is_mine(&self) -> Result<bool, nacos_core::RepoError> {
        if self.0.status().role != "Leader" {
            return Ok(false);
        }
        Ok(self.0.has_quorum(std::time::Duration::from_secs(2)).await)
    }
}

/// What the log's followers act on: the caches to invalidate after an apply.
#[derive(Debug, Clone)]
pub struct Followers {
    pub config: Arc<ConfigService>,
    pub naming: Arc<NamingService>,
}

/// Follow what the log applies (forget cached copies of what changed), and on the leader
/// keep Raft's voters in step with the member list.
pub fn start(
    raft: Arc<RaftHandle>,
    cluster: Arc<Cluster>,
    app: Followers,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut applied = raft.subscribe_applied();
    let reconciler = tokio::spawn(reconcile_loop(Arc::clone(&raft), cluster, shutdown.clone()));
    let follower = tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break,
                next = applied.recv() => next,
            };
            match next {
                Ok(Applied::Command(command)) => follow(&app, &command).await,
                Ok(Applied::Snapshot) | Err(RecvError::Lagged(_)) => forget_everything(&app).await,
                Err(RecvError::Closed) => break,
            }
        }
        if let Err(e) = raft.shutdown().await {
            tracing::warn!("Raft shutdown: {e}");
        }
    });
    vec![follower, reconciler]
}

/// On the leader: add members that appeared in the member list to Raft (caught up as a
/// learner first, then a voter) and remove voters that left it. One change per round, and
/// only members that answer their reports are added, so a typo in `cluster.conf` cannot make
/// the cluster wait for a node that does not exist.
async fn reconcile_loop(raft: Arc<RaftHandle>, cluster: Arc<Cluster>, shutdown: CancellationToken) {
    let mut list = cluster.members.watch_list();
    let mut tick = tokio::time::interval(
        cluster
            .settings
            .report_interval
            .max(std::time::Duration::from_millis(500)),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = list.changed() => {}
            _ = tick.tick() => {}
        }
        reconcile_once(&raft, &cluster).await;
    }
}

async fn reconcile_once(raft: &RaftNode, cluster: &Cluster) {
    let status = raft.status();
    if status.role != "Leader" {
        return;
    }
    let members = cluster.members.all();
    let wanted: Vec<(String, bool)> = members
        .iter()
        .filter_map(|m| {
            let up = m.state == super::members::NodeState::Up;
            Cluster::raft_addr(m).map(|a| (a, up))
        })
        .collect();
    if let Some((addr, _)) = wanted
        .iter()
        .find(|(a, up)| *up && !status.voters.contains(a))
    {
        tracing::info!(member = %addr, "adding a cluster member to Raft");
        match raft.add_member(addr).await {
            Ok(()) => tracing::info!(member = %addr, "the member is a Raft voter"),
            Err(e) => tracing::warn!(member = %addr, "cannot add the member to Raft yet: {e}"),
        }
        return;
    }
    let gone = status
        .voters
        .iter()
        .find(|v| **v != status.self_addr && !wanted.iter().any(|(a, _)| a == *v));
    if let Some(addr) = gone {
        tracing::info!(member = %addr, "removing a member that left the cluster from Raft");
        if let Err(e) = raft.remove_member(addr).await {
            tracing::warn!(member = %addr, "cannot remove the member from Raft yet: {e}");
        }
    }
}

async fn follow(app: &Followers, command: &Command) {
    match command {
        Command::PublishConfig { publish, .. } => app.config.changed(&publish.key),
        Command::RemoveConfig { key, .. } | Command::RemoveGray { key, .. } => {
            app.config.changed(key)
        }
        Command::PublishGray { publish, .. } => app.config.changed(&publish.key),
        // The ids do not say which keys went; the change index does.
        Command::RemoveConfigsByIds { now_ms, .. } => changed_since(app, *now_ms).await,
        Command::CreateService { meta } | Command::UpdateService { meta } => {
            app.naming.reload_persistent(&meta.key).await
        }
        Command::DeleteService { key } => app.naming.reload_persistent(key).await,
        Command::RegisterInstance { service, .. } | Command::DeregisterInstance { service, .. } => {
            app.naming.reload_persistent(service).await
        }
        Command::Import { records, now_ms } => {
            changed_since(app, *now_ms).await;
            let mut services: Vec<&nacos_core::ServiceKey> = records
                .iter()
                .filter_map(|r| match r {
                    nacos_core::transfer::Record::Service(meta) => Some(&meta.key),
                    nacos_core::transfer::Record::Instance(i) => Some(&i.service),
                    _ => None,
                })
                .collect();
            services.sort();
            services.dedup();
            for service in services {
                app.naming.reload_persistent(service).await;
            }
        }
        // Namespaces are read from the store on every request; users, roles and permissions
        // sit in caches that expire within seconds.
        _ => {}
    }
}

/// Forget every cached config and wake the listeners of every key changed at or after
/// `since_ms`.
async fn changed_since(app: &Followers, since_ms: i64) {
    app.config.forget_all();
    match app.config.repo().changed_since(since_ms).await {
        Ok(changes) => changes.iter().for_each(|c| app.config.changed(&c.key)),
        Err(e) => tracing::warn!("cannot list changed configs after a replicated change: {e}"),
    }
}

/// The whole store was replaced (a snapshot installed) or we lost track (lagged).
async fn forget_everything(app: &Followers) {
    changed_since(app, 0).await;
    if let Err(e) = app.naming.reload_all_persistent().await {
        tracing::warn!("reloading persistent naming data: {e}");
    }
}
