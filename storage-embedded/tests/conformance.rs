//! The backend conformance suite against the embedded store: `redb::*` on the plain redb
//! store (a new temporary directory per case), `raft::*` on the same store written through
//! Raft — a one-node cluster, so every write goes through `client_write`, the replicated log
//! and the state machine, and comes back as the entry's response. (Replication between nodes
//! is covered by the cluster tests; this checks that the Raft path keeps every repository
//! contract: results, error kinds, atomicity, persistence.)

use std::sync::{Arc, Mutex};

use nacos_core::Repos;
use nacos_storage_embedded::open_repos;
use nacos_storage_embedded::raft::{RaftNode, RaftSettings, RaftTransport, TransportError};
use tempfile::TempDir;

/// A one-node cluster never calls a peer.
#[derive(Debug)]
struct NoPeers;

#[async_trait::async_trait]
impl RaftTransport for NoPeers {
    async fn call(
        &self,
        addr: &str,
        _kind: &'static str,
        _body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        Err(TransportError::Unreachable(format!(
            "no peer {addr} in a one-node cluster"
        )))
    }
}

struct Raft;

struct Guard {
    dir: TempDir,
    node: Mutex<Option<Arc<RaftNode>>>,
}

const ADDR: &str = "127.0.0.1:17848";

async fn start(dir: &std::path::Path) -> (Arc<RaftNode>, Repos) {
    let (node, repos) = RaftNode::start(
        RaftSettings::new(ADDR, vec![ADDR.to_string()]),
        dir,
        Arc::new(NoPeers),
    )
    .await
    .expect("start a one-node Raft store");
    // A write waits for the leader anyway; waiting here keeps case timings honest.
    let started = std::time::Instant::now();
    while !node.has_leader() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no leader"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    (node, repos)
}

impl nacos_conformance::Backend for Raft {
    type Guard = Guard;

    async fn build(&self) -> (Repos, Guard) {
        let dir = tempfile::tempdir().expect("temporary data directory");
        let (node, repos) = start(dir.path()).await;
        (
            repos,
            Guard {
                dir,
                node: Mutex::new(Some(node)),
            },
        )
    }

    async fn reopen(&self, guard: &Guard) -> Option<Repos> {
        let old = guard.node.lock().expect("lock").take();
        if let Some(old) = old {
            old.shutdown().await.expect("shut the first node down");
        }
        let (node, repos) = start(guard.dir.path()).await;
        *guard.node.lock().expect("lock") = Some(node);
        Some(repos)
    }
}

nacos_conformance::conformance_suite!(raft, Raft);

/// Each case gets a new temporary directory holding a new database file.
struct Embedded;

impl nacos_conformance::Backend for Embedded {
    type Guard = TempDir;

    async fn build(&self) -> (Repos, TempDir) {
        let dir = tempfile::tempdir().expect("temporary data directory");
        let repos = open_repos(dir.path()).expect("open the embedded store");
        (repos, dir)
    }

    async fn reopen(&self, guard: &TempDir) -> Option<Repos> {
        Some(open_repos(guard.path()).expect("reopen the embedded store"))
    }
}

nacos_conformance::conformance_suite!(redb, Embedded);
