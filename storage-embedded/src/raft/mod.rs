//! Raft replication of the embedded store (openraft 0.9).
//!
//! Every [`Command`] becomes a Raft log entry; each node applies committed entries to its own
//! redb store with the same deterministic [`crate::command::apply`], so all nodes hold the same
//! data. Writes made through the [`Repos`](nacos_core::Repos) returned by [`RaftNode::start`]
//! go to the leader (forwarded when this node follows); reads stay local.
//!
//! # Layout
//! - this file: the type configuration, the wire types shared by both ends, [`node_id`] and
//!   [`RaftSettings`].
//! - `log_store`: the Raft log, vote and purge marker in `raft-log.redb` (durable).
//! - `state_machine`: applies committed entries to the store's database, builds and installs
//!   snapshots.
//! - `snapshot`: the snapshot blob format, the table dump/load and the on-disk snapshot file.
//! - `network`: [`RaftTransport`], the byte pipe the server provides, and openraft's network
//!   over it.
//! - `node`: [`RaftNode`], the handle the server holds (start, write routing, barrier, status,
//!   RPC dispatch).

mod log_store;
mod network;
mod node;
mod snapshot;
mod state_machine;

#[cfg(test)]
mod tests;

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use nacos_core::RepoError;
use serde::{Deserialize, Serialize};

use crate::command::{Command, CommandOutput};

pub use crate::error::{TransportError, WireRepoError};
pub use network::RaftTransport;
pub use node::{RaftNode, RaftStatus};

openraft::declare_raft_types!(
    /// The openraft type configuration of the embedded store.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The result of applying one log entry, as every node computed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub result: Result<CommandOutput, WireRepoError>,
}

impl Response {
    /// The caller's view of the result.
    pub fn into_result(self) -> Result<CommandOutput, RepoError> {
        self.result.map_err(RepoError::from)
    }
}

/// What a node's state machine applied, for cache invalidation by the server.
#[derive(Clone, Debug)]
pub enum Applied {
    /// A command committed and applied successfully (failed commands wrote nothing and are not
    /// reported).
    Command(Arc<Command>),
    /// A snapshot replaced the whole store: drop every cache.
    Snapshot,
}

/// Settings of one Raft node.
#[derive(Clone, Debug)]
pub struct RaftSettings {
    /// This node's Raft address ("ip:port"), as listed in `members`.
    pub self_addr: String,
    /// Raft addresses of every voter, this node included. Every node must list the same set.
    pub members: Vec<String>,
    pub heartbeat_interval: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Build a snapshot once this many entries were applied since the last one.
    pub snapshot_logs_since_last: u64,
    /// Log entries kept behind a snapshot, so slightly lagging followers need no snapshot.
    pub keep_logs: u64,
    /// Bound of one RPC through the transport.
    pub rpc_timeout: Duration,
    /// How long a write waits for a leader to be known before failing `Unavailable`.
    pub leader_wait: Duration,
    /// Bound of one write (commit and apply) and of a linearizable barrier; past it the caller
    /// gets `Unavailable` (for a write: its outcome is unknown).
    pub write_timeout: Duration,
}

impl RaftSettings {
    /// Settings with the defaults below for everything but the addresses.
    pub fn new(self_addr: impl Into<String>, members: Vec<String>) -> Self {
        RaftSettings {
            self_addr: self_addr.into(),
            members,
            heartbeat_interval: Duration::from_millis(250),
            election_timeout_min: Duration::from_millis(1000),
            election_timeout_max: Duration::from_millis(2000),
            snapshot_logs_since_last: 5000,
            keep_logs: 1000,
            rpc_timeout: Duration::from_secs(5),
            leader_wait: Duration::from_secs(3),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// The node id of a Raft address: FNV-1a 64 of its bytes. Stable across processes, builds and
/// machines (unlike `std`'s `RandomState`), so every node derives the same ids from the same
/// address list.
pub fn node_id(raft_addr: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    raft_addr.trim().bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// Every request kind [`RaftNode::handle`] answers; the server routes these to it.
pub const RPC_KINDS: &[&str] = &[
    network::APPEND_ENTRIES,
    network::VOTE,
    network::INSTALL_SNAPSHOT,
    network::FORWARD,
    network::READ_INDEX,
    network::PROBE,
];

/// File name of the Raft log inside a data directory.
pub const LOG_FILE_NAME: &str = "raft-log.redb";
/// File name of the latest snapshot inside a data directory.
pub const SNAPSHOT_FILE_NAME: &str = "raft-snapshot.bin";
