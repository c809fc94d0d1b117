//! [`RaftNode`]: the handle the server holds — starting a node, routing writes to the leader,
//! linearizable barriers, status, membership changes, and the dispatch of incoming Raft RPCs
//! ([`RaftNode::handle`]).
//!
//! # Cluster formation (who calls `initialize`)
//! A node calls [`openraft::Raft::initialize`] with the full member list only when it is
//! pristine (no vote, no log entry, nothing purged, no snapshot, nothing applied) AND no
//! reachable peer reports that it is already initialized. Reasons:
//! - openraft documents that several nodes initializing with the *same* membership is safe:
//!   each writes the identical entry at log id (term 0, node 0, index 0) and then campaigns;
//!   ordinary elections pick one leader. That covers the first start of a whole cluster.
//! - A node that lost its data directory while the others run must not campaign: its
//!   re-initialization would succeed locally (same first entry, so no rival history), but its
//!   ever-growing candidate term would reject the leader's AppendEntries and depose it,
//!   disrupting writes. Asking the peers first (`RaftProbe`) avoids that: an initialized peer
//!   means the cluster exists and its leader, which still lists this node as a voter, will
//!   replicate to it (with a snapshot when the needed entries were purged).
//! - When every peer is unreachable the node initializes anyway; the worst case is the
//!   disruption above (a term bump), never divergence, because its log is older than any
//!   quorum's and it cannot win an election.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nacos_core::{RepoError, Repos};
use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::metrics::WaitError;
use openraft::{BasicNode, Config, Raft, RaftMetrics, ServerState, SnapshotPolicy};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::log_store::LogStore;
use super::network::{
    APPEND_ENTRIES, FORWARD, INSTALL_SNAPSHOT, NetworkFactory, PROBE, READ_INDEX, RaftTransport,
    VOTE,
};
use super::snapshot::SnapshotFile;
use super::state_machine::{self, StateMachine};
use super::{
    Applied, LOG_FILE_NAME, RaftSettings, Response, SNAPSHOT_FILE_NAME, TypeConfig, WireRepoError,
    node_id,
};
use crate::command::{Command, CommandOutput};
use crate::error::TransportError;
use crate::error::{raft_fatal, raft_read, raft_write, transport, wire};
use crate::store::{EmbeddedStore, FILE_NAME, Replicator};

/// Snapshot chunks: 1 MiB of data is at most ~4 MiB as a JSON byte array, well under the
/// server's 8 MiB message cap.
const SNAPSHOT_CHUNK: u64 = 1024 * 1024;
/// Capacity of the applied-command channel; a slower subscriber sees `Lagged` and should
/// drop all caches.
const APPLIED_CAPACITY: usize = 4096;
/// Bound of one `RaftProbe` at start.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The leader's reply to a forwarded write.
#[allow(
    clippy::large_enum_variant,
    reason = "one short-lived value per forwarded write"
)]
#[derive(Debug, Serialize, Deserialize)]
enum ForwardReply {
    /// Committed and applied; the entry's own response.
    Applied(Response),
    /// The receiver is not the leader: the write was not accepted, retrying is safe.
    NotLeader,
    /// Failed (outcome may be unknown, e.g. a timeout after the entry was proposed).
    Failed(WireRepoError),
}

/// The leader's reply to a read-index request.
#[derive(Debug, Serialize, Deserialize)]
enum ReadIndexReply {
    /// Leadership confirmed by a quorum; reads are linearizable once this index is applied.
    Index(Option<u64>),
    NotLeader,
    Failed(WireRepoError),
}

/// Outcome of one attempt to get a write committed.
#[allow(clippy::large_enum_variant, reason = "one short-lived value per write")]
enum Attempt {
    Done(Result<CommandOutput, RepoError>),
    /// Provably not accepted by any leader: safe to retry.
    NotAccepted(String),
}

/// Cluster state for readiness and cluster endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RaftStatus {
    pub node_id: u64,
    pub self_addr: String,
    /// Raft address of the current leader, if one is known.
    pub leader: Option<String>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    /// "Leader", "Follower", "Candidate", "Learner" or "Shutdown".
    pub role: String,
    /// Raft addresses of every node in the membership (voters and learners), sorted.
    pub members: Vec<String>,
    /// Raft addresses of the voters, sorted.
    pub voters: Vec<String>,
}

/// One Raft node over the embedded store. Share it behind the returned `Arc`.
pub struct RaftNode {
    id: u64,
    settings: RaftSettings,
    raft: Raft<TypeConfig>,
    transport: Arc<dyn RaftTransport>,
    applied: broadcast::Sender<Applied>,
}

impl fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftNode")
            .field("id", &self.id)
            .field("self_addr", &self.settings.self_addr)
            .finish_non_exhaustive()
    }
}

fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, RepoError> {
    serde_json::to_vec(value).map_err(|e| wire(what, &e))
}

fn decode<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, RepoError> {
    serde_json::from_slice(body).map_err(|e| wire(what, &e))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The membership from the configured addresses; refuses id collisions and a self address
/// missing from the list.
fn members(settings: &RaftSettings) -> Result<BTreeMap<u64, BasicNode>, RepoError> {
    let mut out = BTreeMap::new();
    for addr in &settings.members {
        let addr = addr.trim();
        if let Some(other) = out.insert(node_id(addr), BasicNode::new(addr))
            && other.addr != addr
        {
            return Err(RepoError::InvalidArgument(format!(
                "Raft members {addr} and {} hash to the same node id",
                other.addr
            )));
        }
    }
    if !out.contains_key(&node_id(&settings.self_addr)) {
        return Err(RepoError::InvalidArgument(format!(
            "Raft address {} is not among the members {:?}",
            settings.self_addr, settings.members
        )));
    }
    Ok(out)
}

fn raft_config(settings: &RaftSettings) -> Result<Config, RepoError> {
    Config {
        cluster_name: "nacos".to_string(),
        heartbeat_interval: millis(settings.heartbeat_interval),
        election_timeout_min: millis(settings.election_timeout_min),
        election_timeout_max: millis(settings.election_timeout_max),
        install_snapshot_timeout: millis(settings.rpc_timeout),
        snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_logs_since_last),
        max_in_snapshot_log_to_keep: settings.keep_logs,
        // Purge in batches rather than after every applied entry (small thresholds, as in
        // tests, get small batches so purging still happens).
        purge_batch_size: (settings.snapshot_logs_since_last / 10).clamp(1, 64),
        snapshot_max_chunk_size: SNAPSHOT_CHUNK,
        ..Config::default()
    }
    .validate()
    .map_err(|e| RepoError::InvalidArgument(format!("Raft settings: {e}")))
}

fn role(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "Leader",
        ServerState::Follower => "Follower",
        ServerState::Candidate => "Candidate",
        ServerState::Learner => "Learner",
        ServerState::Shutdown => "Shutdown",
    }
}

fn wait_error(what: &str, error: WaitError) -> RepoError {
    match error {
        WaitError::Timeout(after, _) => {
            RepoError::Unavailable(format!("{what}: nothing after {after:?}").into())
        }
        WaitError::ShuttingDown => RepoError::Unavailable("Raft node is shutting down".into()),
    }
}

impl RaftNode {
    /// Open the store (`data_dir/nacos.redb`) and the Raft log (`data_dir/raft-log.redb`),
    /// start Raft, form the cluster if this node is pristine (see the module docs), and hand
    /// out repositories whose writes are replicated.
    ///
    /// Errors: `InvalidArgument` for bad settings (self not among members, id collision,
    /// election timeouts), otherwise the store's open errors.
    pub async fn start(
        settings: RaftSettings,
        data_dir: &Path,
        transport: Arc<dyn RaftTransport>,
    ) -> Result<(Arc<RaftNode>, Repos), RepoError> {
        let members = members(&settings)?;
        let config = raft_config(&settings)?;
        let id = node_id(&settings.self_addr);

        let store = EmbeddedStore::open(&data_dir.join(FILE_NAME))?;
        state_machine::init(&store.db)?;
        let log = LogStore::open(&data_dir.join(LOG_FILE_NAME))?;
        let file = SnapshotFile::new(data_dir.join(SNAPSHOT_FILE_NAME));
        let pristine = log.is_pristine().await?
            && file.read()?.is_none()
            && state_machine::is_pristine(&store.db)?;

        if pristine && state_machine::has_local_data(&store.db)? {
            // Rows that are not in the Raft log would exist on this node only, silently
            // different from its peers (until a snapshot install wipes them): refuse.
            return Err(RepoError::InvalidArgument(format!(
                "{} holds data that did not come through Raft (written by a standalone server, \
                 or the Raft log beside it was lost); a cluster node starts from an empty store \
                 and gets its data from the cluster. Move the data directory away (export the \
                 configs from a standalone server first, import them into the cluster after), \
                 or start with -m standalone",
                store.path().display()
            )));
        }
        let (applied, _) = broadcast::channel(APPLIED_CAPACITY);
        let machine = StateMachine::new(store.db.clone(), file, applied.clone());
        let network = NetworkFactory {
            self_id: id,
            transport: transport.clone(),
            timeout: settings.rpc_timeout,
        };
        let raft = Raft::new(id, Arc::new(config), network, log, machine)
            .await
            .map_err(|e| raft_fatal(&e))?;
        let node = Arc::new(RaftNode {
            id,
            settings,
            raft,
            transport,
            applied,
        });
        tracing::info!(id, addr = %node.settings.self_addr, pristine, "started Raft node");
        if pristine {
            node.bootstrap(members).await?;
        }
        let repos = Arc::new(store.replicated(node.clone())).repos();
        Ok((node, repos))
    }

    async fn bootstrap(&self, members: BTreeMap<u64, BasicNode>) -> Result<(), RepoError> {
        for (peer, node) in &members {
            if *peer == self.id {
                continue;
            }
            let call = self.transport.call(&node.addr, PROBE, Vec::new());
            if let Ok(Ok(reply)) = tokio::time::timeout(PROBE_TIMEOUT, call).await
                && let Ok(true) = serde_json::from_slice::<bool>(&reply)
            {
                tracing::info!(peer = %node.addr, "peer is initialized; joining the existing Raft cluster");
                return Ok(());
            }
        }
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            // Already initialized (raced with a replication from a leader): the goal is met.
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(RaftError::APIError(e)) => Err(RepoError::InvalidArgument(format!(
                "cannot initialize the Raft cluster: {e}"
            ))),
            Err(RaftError::Fatal(e)) => Err(raft_fatal(&e)),
        }
    }

    /// Every command this node's state machine applies (successful ones only, after their
    /// commit), on every node, plus [`Applied::Snapshot`] after a snapshot replaced the store.
    pub fn subscribe_applied(&self) -> broadcast::Receiver<Applied> {
        self.applied.subscribe()
    }

    pub(crate) fn metrics(&self) -> RaftMetrics<u64, BasicNode> {
        self.raft.metrics().borrow().clone()
    }

    /// Whether a leader is currently known. A leader cut off from its followers still names
    /// itself (openraft does not step down on a lost quorum): see [`RaftNode::has_quorum`].
    pub fn has_leader(&self) -> bool {
        self.metrics().current_leader.is_some()
    }

    /// Whether this node belongs to a working cluster right now: a follower knows a leader
    /// (it forgets one that stays silent past the election timeout); a leader confirms with a
    /// quorum that it still leads, waiting at most `timeout`.
    pub async fn has_quorum(&self, timeout: Duration) -> bool {
        match self.metrics().current_leader {
            None => false,
            Some(leader) if leader == self.id => matches!(
                tokio::time::timeout(timeout, self.raft.ensure_linearizable()).await,
                Ok(Ok(_))
            ),
            Some(_) => true,
        }
    }

    /// On the leader, each follower's address with the last log index it is known to hold
    /// (`None`: nothing matched yet); empty on a follower. Metrics derive the lag from it.
    pub fn replication(&self) -> Vec<(String, Option<u64>)> {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let Some(replication) = &m.replication else {
            return Vec::new();
        };
        replication
            .iter()
            .filter(|(id, _)| **id != self.id)
            .map(|(id, matched)| {
                let addr = membership
                    .get_node(id)
                    .map_or_else(|| id.to_string(), |n| n.addr.clone());
                (addr, matched.map(|l| l.index))
            })
            .collect()
    }

    /// Cluster state for readiness and cluster endpoints.
    pub fn status(&self) -> RaftStatus {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let mut members: Vec<String> = membership.nodes().map(|(_, n)| n.addr.clone()).collect();
        members.sort();
        let mut voters: Vec<String> = m
            .membership_config
            .voter_ids()
            .filter_map(|id| membership.get_node(&id).map(|n| n.addr.clone()))
            .collect();
        voters.sort();
        RaftStatus {
            node_id: self.id,
            self_addr: self.settings.self_addr.clone(),
            leader: m
                .current_leader
                .and_then(|id| membership.get_node(&id))
                .map(|n| n.addr.clone()),
            term: m.current_term,
            last_log_index: m.last_log_index,
            last_applied_index: m.last_applied.map(|l| l.index),
            role: role(m.state).to_string(),
            members,
            voters,
        }
    }

    /// Wait (up to `leader_wait`) until a leader is known; its id and address.
    async fn leader(&self, not: Option<u64>) -> Result<(u64, String), RepoError> {
        let m = self
            .raft
            .wait(Some(self.settings.leader_wait))
            .metrics(
                |m| m.current_leader.is_some() && m.current_leader != not,
                "a Raft leader is known",
            )
            .await
            .map_err(|e| match e {
                WaitError::Timeout(after, _) => RepoError::Unavailable(
                    format!("no Raft leader after {after:?} (cluster forming or quorum lost)")
                        .into(),
                ),
                other => wait_error("waiting for a Raft leader", other),
            })?;
        let id = m
            .current_leader
            .ok_or_else(|| RepoError::Unavailable("no Raft leader".to_string().into()))?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
            .ok_or_else(|| {
                RepoError::Unavailable(format!("Raft leader {id} is not in the membership").into())
            })?;
        Ok((id, addr))
    }

    /// Replicate one command and return its own entry's response. Retries once, and only
    /// when the first attempt provably was not accepted (not leader any more, leader
    /// unreachable before sending), so a command is never applied twice.
    pub(crate) async fn write(&self, command: Command) -> Result<CommandOutput, RepoError> {
        let mut failed_leader = None;
        for _ in 0..2 {
            let (leader, addr) = self.leader(failed_leader).await?;
            let attempt = if leader == self.id {
                self.write_local(command.clone()).await
            } else {
                self.forward(&addr, &command).await
            };
            match attempt {
                Attempt::Done(result) => return result,
                Attempt::NotAccepted(reason) => {
                    tracing::debug!(%reason, leader = %addr, "Raft write not accepted; retrying");
                    failed_leader = Some(leader);
                }
            }
        }
        Err(RepoError::Unavailable(
            "Raft leadership kept changing; the write was not accepted"
                .to_string()
                .into(),
        ))
    }

    async fn write_local(&self, command: Command) -> Attempt {
        match tokio::time::timeout(self.settings.write_timeout, self.raft.client_write(command))
            .await
        {
            Ok(Ok(reply)) => Attempt::Done(reply.data.into_result()),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                Attempt::NotAccepted("this node is not the leader".to_string())
            }
            Ok(Err(e)) => Attempt::Done(Err(raft_write(&e))),
            Err(_) => Attempt::Done(Err(RepoError::Unavailable(
                format!(
                    "Raft write not applied within {:?}; its outcome is unknown",
                    self.settings.write_timeout
                )
                .into(),
            ))),
        }
    }

    async fn forward(&self, addr: &str, command: &Command) -> Attempt {
        let body = match encode("RaftForward", command) {
            Ok(body) => body,
            Err(e) => return Attempt::Done(Err(e)),
        };
        let call = self.transport.call(addr, FORWARD, body);
        match tokio::time::timeout(self.settings.write_timeout, call).await {
            Err(_) => Attempt::Done(Err(RepoError::Unavailable(
                format!(
                    "write forwarded to Raft leader {addr} got no reply within {:?}; its outcome \
                 is unknown",
                    self.settings.write_timeout
                )
                .into(),
            ))),
            Ok(Err(e @ TransportError::Unreachable(_))) => Attempt::NotAccepted(e.to_string()),
            Ok(Err(e)) => Attempt::Done(Err(transport(addr, &e))),
            Ok(Ok(reply)) => match decode::<ForwardReply>("RaftForward reply", &reply) {
                Ok(ForwardReply::Applied(response)) => Attempt::Done(response.into_result()),
                Ok(ForwardReply::NotLeader) => {
                    Attempt::NotAccepted(format!("{addr} is not the leader any more"))
                }
                Ok(ForwardReply::Failed(e)) => Attempt::Done(Err(e.into())),
                Err(e) => Attempt::Done(Err(e)),
            },
        }
    }

    /// Returns once every write committed before the call is applied locally, so reads that
    /// follow are linearizable. On the leader: `ensure_linearizable`; on a follower: ask the
    /// leader for its read index (after it confirmed leadership with a quorum), then wait
    /// until this node applied it. `Unavailable` on no leader or timeout.
    pub async fn linearizable_barrier(&self) -> Result<(), RepoError> {
        let timeout = self.settings.write_timeout;
        let (leader, addr) = self.leader(None).await?;
        let index = if leader == self.id {
            match tokio::time::timeout(timeout, self.raft.get_read_log_id()).await {
                Ok(Ok((read, _))) => read.map(|l| l.index),
                Ok(Err(e)) => return Err(raft_read(&e)),
                Err(_) => {
                    return Err(RepoError::Unavailable(
                        format!("Raft leadership not confirmed within {timeout:?}").into(),
                    ));
                }
            }
        } else {
            let call = self.transport.call(&addr, READ_INDEX, Vec::new());
            let reply = match tokio::time::timeout(timeout, call).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(e)) => return Err(transport(&addr, &e)),
                Err(_) => {
                    return Err(RepoError::Unavailable(
                        format!("Raft leader {addr} gave no read index within {timeout:?}").into(),
                    ));
                }
            };
            match decode::<ReadIndexReply>("RaftReadIndex reply", &reply)? {
                ReadIndexReply::Index(index) => index,
                ReadIndexReply::NotLeader => {
                    return Err(RepoError::Unavailable(
                        format!("{addr} is not the Raft leader any more; retry").into(),
                    ));
                }
                ReadIndexReply::Failed(e) => return Err(e.into()),
            }
        };
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(index, "linearizable barrier")
            .await
            .map(|_| ())
            .map_err(|e| wait_error("waiting to apply up to the leader's read index", e))
    }

    /// Add a voter (on the leader): first as a learner, waiting until it caught up, then into
    /// the voter set. `Unavailable` when this node is not the leader.
    pub async fn add_member(&self, addr: &str) -> Result<(), RepoError> {
        let id = node_id(addr);
        self.raft
            .add_learner(id, BasicNode::new(addr.trim()), true)
            .await
            .map_err(|e| raft_write(&e))?;
        let mut voters: BTreeSet<u64> = self.metrics().membership_config.voter_ids().collect();
        voters.insert(id);
        self.raft
            .change_membership(voters, false)
            .await
            .map(|_| ())
            .map_err(|e| raft_write(&e))
    }

    /// Remove a node from the membership (on the leader).
    pub async fn remove_member(&self, addr: &str) -> Result<(), RepoError> {
        let id = node_id(addr);
        let mut voters: BTreeSet<u64> = self.metrics().membership_config.voter_ids().collect();
        voters.remove(&id);
        self.raft
            .change_membership(voters, false)
            .await
            .map(|_| ())
            .map_err(|e| raft_write(&e))
    }

    /// Stop Raft (for tests and a graceful stop). Writes fail `Unavailable` afterwards.
    pub async fn shutdown(&self) -> Result<(), RepoError> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| RepoError::Internal(format!("Raft shutdown failed: {e}").into()))
    }

    /// Serve one request from a peer (the server calls this from its Raft port): `kind` and
    /// `body` as given to [`RaftTransport::call`]; the reply body goes back to the caller.
    /// `InvalidArgument` for an unknown kind or an undecodable body.
    pub async fn handle(&self, kind: &str, body: &[u8]) -> Result<Vec<u8>, RepoError> {
        match kind {
            APPEND_ENTRIES => {
                let reply = self.raft.append_entries(decode(kind, body)?).await;
                encode(kind, &reply)
            }
            VOTE => {
                let reply = self.raft.vote(decode(kind, body)?).await;
                encode(kind, &reply)
            }
            INSTALL_SNAPSHOT => {
                let reply = self.raft.install_snapshot(decode(kind, body)?).await;
                encode(kind, &reply)
            }
            FORWARD => {
                let command: Command = decode(kind, body)?;
                let command = match command.vetted_for_forwarding() {
                    Ok(command) => command,
                    Err(e) => return encode(kind, &ForwardReply::Failed(e.into())),
                };
                let reply = match self.write_local(command).await {
                    Attempt::Done(Ok(output)) => {
                        ForwardReply::Applied(Response { result: Ok(output) })
                    }
                    Attempt::Done(Err(e)) => ForwardReply::Failed(e.into()),
                    Attempt::NotAccepted(_) => ForwardReply::NotLeader,
                };
                encode(kind, &reply)
            }
            READ_INDEX => {
                let reply = match tokio::time::timeout(
                    self.settings.write_timeout,
                    self.raft.get_read_log_id(),
                )
                .await
                {
                    Ok(Ok((read, _))) => ReadIndexReply::Index(read.map(|l| l.index)),
                    Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_)))) => {
                        ReadIndexReply::NotLeader
                    }
                    Ok(Err(e)) => ReadIndexReply::Failed(raft_read(&e).into()),
                    Err(_) => ReadIndexReply::Failed(WireRepoError::Unavailable(
                        "Raft leadership not confirmed in time".to_string(),
                    )),
                };
                encode(kind, &reply)
            }
            PROBE => {
                // From the metrics, not `is_initialized`: that asks the Raft core, and a prober
                // that gave up waiting makes openraft log an error for the dropped answer.
                let m = self.metrics();
                let initialized =
                    m.last_log_index.is_some() || m.membership_config.voter_ids().next().is_some();
                encode(kind, &initialized)
            }
            other => Err(RepoError::InvalidArgument(format!(
                "unknown Raft request kind {other}"
            ))),
        }
    }
}

#[async_trait::async_trait]
impl Replicator for RaftNode {
    async fn write(&self, command: Command) -> Result<CommandOutput, RepoError> {
        RaftNode::write(self, command).await
    }
}
