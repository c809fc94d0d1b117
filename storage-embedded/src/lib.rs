//! Embedded storage backend: every repository of `nacos-core` on one local [redb] file, for a
//! server with no external database: standalone, or a cluster node whose store is replicated
//! by Raft ([`raft`]).
//!
//! # Layout
//! - [`store`]: [`EmbeddedStore`] — opening the file, [`EmbeddedStore::execute`] and the
//!   [`ConfigRepo`], [`NamespaceRepo`] and [`InstanceRepo`] impls.
//! - `group_commit`: standalone writes — each command in its own transaction, every command
//!   waiting at that moment made durable by one fsync, each caller answered with its own result.
//! - [`command`]: [`Command`], every mutation as a serializable value, and [`apply`], the one
//!   deterministic function that performs a command inside a write transaction (what the Raft
//!   state machine replays).
//! - `transfer`: [`TransferRepo`](nacos_core::TransferRepo) — exports from one read
//!   transaction, imports as [`Command::Import`] (through Raft when replicated).
//! - `tables`: table definitions, key encoding and typed reads shared by both paths.
//! - [`raft`]: replication of the store with openraft — [`raft::RaftNode`] (start a node,
//!   get [`Repos`](nacos_core::Repos) whose writes go through Raft, barrier, status, RPC
//!   dispatch), the Raft log in `raft-log.redb`, the state machine over the store's database,
//!   snapshots, and [`raft::RaftTransport`], the byte pipe the server provides.
//! - `forwarded`: the leader's check of a write a follower forwards (only what the public API
//!   could have produced; the leader's clock).
//! - `error`: the one place where redb, serde_json, task, openraft and transport errors become
//!   [`RepoError`] kinds.
//!
//! # Durability
//! No command is acknowledged before an fsync covers it (standalone: the group commit's durable
//! commit after the batch; see `group_commit`), so an acknowledged write survives `kill -9` and
//! power loss. Under Raft, an acknowledged
//! write is fsynced in the Raft log of a quorum, and applied (fsynced) on the leader.
//!
//! # Use
//! ```no_run
//! # fn main() -> Result<(), nacos_core::RepoError> {
//! let repos = nacos_storage_embedded::open_repos(std::path::Path::new("data"))?;
//! # drop(repos); Ok(()) }
//! ```
//!
//! [`ConfigRepo`]: nacos_core::ConfigRepo
//! [`NamespaceRepo`]: nacos_core::NamespaceRepo
//! [`InstanceRepo`]: nacos_core::InstanceRepo
//! [`RepoError`]: nacos_core::RepoError

pub mod command;
mod error;
mod forwarded;
mod group_commit;
pub mod raft;
pub mod store;
mod tables;
mod transfer;

pub use command::{Command, CommandOutput, apply};
pub use store::{EmbeddedStore, FILE_NAME, open_repos};

/// Name of this backend in the server's storage configuration.
pub const NAME: &str = "embedded";

#[cfg(test)]
mod tests;
