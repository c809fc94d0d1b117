//! Raft tests over an in-memory transport: cluster formation, forwarded writes, failed CAS on
//! every path, leader failover, restart catch-up, catch-up of a node that lost its data (via a
//! snapshot), applied events, the linearizable barrier, and snapshot coverage of every table.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nacos_core::{ConfigKey, ConfigPublish, Operator, PageRequest, RepoError, Repos};
use redb::{ReadableDatabase, TableHandle};
use tempfile::TempDir;

use super::snapshot::{self, Dumper, LOCAL_TABLES, Loader, visit_data_tables};
use super::{Applied, RaftNode, RaftSettings, RaftTransport, TransportError, node_id};
use crate::command::Command;
use crate::store::{EmbeddedStore, FILE_NAME};

/// Routes calls to the target node's `handle`; a cut node neither sends nor receives.
#[derive(Debug, Default)]
struct Net {
    nodes: Mutex<HashMap<String, Arc<RaftNode>>>,
    cut: Mutex<HashSet<String>>,
    /// Nodes that receive no log entries (appends, snapshots) but can still call out: a
    /// follower that lags.
    deaf: Mutex<HashSet<String>>,
}

#[derive(Debug)]
struct MemTransport {
    net: Arc<Net>,
    from: String,
}

#[async_trait::async_trait]
impl RaftTransport for MemTransport {
    async fn call(
        &self,
        addr: &str,
        kind: &'static str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let node = {
            let cut = self.net.cut.lock().expect("net lock");
            if cut.contains(addr) || cut.contains(&self.from) {
                return Err(TransportError::Unreachable(format!("{addr} is cut")));
            }
            let replication = [
                super::network::APPEND_ENTRIES,
                super::network::INSTALL_SNAPSHOT,
            ];
            if replication.contains(&kind) && self.net.deaf.lock().expect("net lock").contains(addr)
            {
                return Err(TransportError::Unreachable(format!("{addr} gets no log")));
            }
            self.net.nodes.lock().expect("net lock").get(addr).cloned()
        };
        let node = node.ok_or_else(|| TransportError::Unreachable(format!("{addr} is down")))?;
        node.handle(kind, &body)
            .await
            .map_err(|e| TransportError::Remote(e.to_string()))
    }
}

struct Cluster {
    net: Arc<Net>,
    addrs: Vec<String>,
    dirs: Vec<TempDir>,
    nodes: Vec<Option<(Arc<RaftNode>, Repos)>>,
    snapshot: (u64, u64),
}

impl Cluster {
    async fn start(n: usize, snapshot: (u64, u64)) -> Cluster {
        let addrs: Vec<String> = (0..n).map(|i| format!("10.0.0.{}:7848", i + 1)).collect();
        let mut cluster = Cluster {
            net: Arc::new(Net::default()),
            dirs: (0..n).map(|_| TempDir::new().expect("tempdir")).collect(),
            nodes: (0..n).map(|_| None).collect(),
            addrs,
            snapshot,
        };
        for i in 0..n {
            cluster.start_node(i).await;
        }
        cluster
    }

    fn settings(&self, i: usize) -> RaftSettings {
        let mut s = RaftSettings::new(self.addrs[i].clone(), self.addrs.clone());
        s.heartbeat_interval = Duration::from_millis(50);
        s.election_timeout_min = Duration::from_millis(300);
        s.election_timeout_max = Duration::from_millis(600);
        s.snapshot_logs_since_last = self.snapshot.0;
        s.keep_logs = self.snapshot.1;
        s.rpc_timeout = Duration::from_secs(1);
        s.write_timeout = Duration::from_secs(5);
        s
    }

    async fn start_node(&mut self, i: usize) {
        let transport = Arc::new(MemTransport {
            net: self.net.clone(),
            from: self.addrs[i].clone(),
        });
        let (node, repos) = RaftNode::start(self.settings(i), self.dirs[i].path(), transport)
            .await
            .expect("start node");
        self.net
            .cut
            .lock()
            .expect("net lock")
            .remove(&self.addrs[i]);
        self.net
            .nodes
            .lock()
            .expect("net lock")
            .insert(self.addrs[i].clone(), node.clone());
        self.nodes[i] = Some((node, repos));
    }

    /// Crash-like stop: cut off, Raft shut down, every handle dropped (files closed).
    async fn stop_node(&mut self, i: usize) {
        self.net
            .cut
            .lock()
            .expect("net lock")
            .insert(self.addrs[i].clone());
        let removed = self
            .net
            .nodes
            .lock()
            .expect("net lock")
            .remove(&self.addrs[i]);
        drop(removed);
        if let Some((node, repos)) = self.nodes[i].take() {
            node.shutdown().await.expect("shutdown");
            drop(repos);
            drop(node);
        }
        // Let blocking storage tasks finish and release the files.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    fn node(&self, i: usize) -> &Arc<RaftNode> {
        &self.nodes[i].as_ref().expect("node is running").0
    }

    fn repos(&self, i: usize) -> &Repos {
        &self.nodes[i].as_ref().expect("node is running").1
    }

    fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some())
            .collect()
    }

    /// Index of the leader once every live node agrees on it.
    async fn leader(&self) -> usize {
        for _ in 0..200 {
            let leaders: BTreeSet<Option<String>> = self
                .live()
                .into_iter()
                .map(|i| self.node(i).status().leader)
                .collect();
            if leaders.len() == 1
                && let Some(Some(addr)) = leaders.into_iter().next()
                && let Some(i) = self.addrs.iter().position(|a| *a == addr)
                && self.nodes[i].is_some()
                && self.node(i).status().role == "Leader"
            {
                return i;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no agreed leader");
    }

    fn follower(&self, leader: usize) -> usize {
        self.live()
            .into_iter()
            .find(|i| *i != leader)
            .expect("a follower exists")
    }
}

fn key(data_id: &str) -> ConfigKey {
    ConfigKey::new("", "DEFAULT_GROUP", data_id)
}

fn publish(data_id: &str, content: &str) -> ConfigPublish {
    ConfigPublish {
        key: key(data_id),
        content: content.to_string(),
        operator: Operator {
            user: "nacos".to_string(),
            ip: "10.0.0.1".to_string(),
        },
        ..ConfigPublish::default()
    }
}

/// Poll until `repos` shows `content` for `data_id`.
async fn until_content(repos: &Repos, data_id: &str, content: &str) {
    for _ in 0..200 {
        if let Some(item) = repos.configs.get(&key(data_id)).await.expect("get")
            && item.content == content
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{data_id} never became {content}");
}

async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("test timed out");
}

#[test]
fn node_id_is_fnv1a_and_stable() {
    // FNV-1a 64 test vectors.
    assert_eq!(node_id(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(node_id("a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(node_id("10.0.0.1:7848"), node_id(" 10.0.0.1:7848 "));
    assert_ne!(node_id("10.0.0.1:7848"), node_id("10.0.0.2:7848"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_publish_replicates_and_failed_cas_leaves_nothing() {
    bounded(async {
        let cluster = Cluster::start(3, (5000, 1000)).await;
        let leader = cluster.leader().await;
        let follower = cluster.follower(leader);
        let mut events = cluster.node(follower).subscribe_applied();

        // A write on a follower is forwarded; the caller gets its own entry's result.
        let item = cluster
            .repos(follower)
            .configs
            .publish(publish("a", "v1"))
            .await
            .expect("publish");
        assert_eq!(item.content, "v1");
        for i in 0..3 {
            until_content(cluster.repos(i), "a", "v1").await;
        }

        // The follower's state machine reported the command.
        let event = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Applied::Command(command) = events.recv().await.expect("applied event")
                    && matches!(*command, Command::PublishConfig { .. })
                {
                    return command;
                }
            }
        })
        .await
        .expect("applied event in time");
        assert!(
            matches!(&*event, Command::PublishConfig { publish, .. } if publish.content == "v1")
        );

        // A failed CAS fails the same way through the leader and through a follower.
        for i in [leader, follower] {
            let mut cas = publish("a", "nope");
            cas.cas_md5 = Some("not-the-md5".to_string());
            let err = cluster
                .repos(i)
                .configs
                .publish(cas)
                .await
                .expect_err("must fail");
            assert!(matches!(err, RepoError::PreconditionFailed(_)), "{err:?}");
        }
        // A later write still lands, and the failed ones left nothing anywhere.
        cluster
            .repos(leader)
            .configs
            .publish(publish("b", "after"))
            .await
            .expect("publish");
        for i in 0..3 {
            until_content(cluster.repos(i), "b", "after").await;
            let repos = cluster.repos(i);
            assert_eq!(
                repos
                    .configs
                    .get(&key("a"))
                    .await
                    .expect("get")
                    .expect("get")
                    .content,
                "v1"
            );
            let history = repos
                .configs
                .history(&key("a"), PageRequest::new(1, 100))
                .await
                .expect("history");
            assert_eq!(history.total_count, 1);
        }
        // Status reflects the cluster.
        let status = cluster.node(follower).status();
        assert_eq!(status.members.len(), 3);
        assert_eq!(
            status.leader.as_deref(),
            Some(cluster.addrs[leader].as_str())
        );
        assert_eq!(status.role, "Follower");
        assert!(cluster.node(follower).has_leader());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover_and_restart_catch_up() {
    bounded(async {
        let mut cluster = Cluster::start(3, (5000, 1000)).await;
        let old = cluster.leader().await;
        cluster
            .repos(old)
            .configs
            .publish(publish("k", "1"))
            .await
            .expect("publish");
        cluster.stop_node(old).await;

        let leader = cluster.leader().await;
        assert_ne!(leader, old);
        let follower = cluster.follower(leader);
        for n in 2..=5 {
            cluster
                .repos(follower)
                .configs
                .publish(publish("k", &n.to_string()))
                .await
                .expect("publish");
        }
        until_content(cluster.repos(leader), "k", "5").await;

        // The stopped node restarts from its data directory and catches up.
        cluster.start_node(old).await;
        until_content(cluster.repos(old), "k", "5").await;
        let history = cluster
            .repos(old)
            .configs
            .history(&key("k"), PageRequest::new(1, 100))
            .await
            .expect("history");
        assert_eq!(history.total_count, 5);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_that_lost_its_data_catches_up_through_a_snapshot() {
    bounded(async {
        let mut cluster = Cluster::start(3, (20, 5)).await;
        let leader = cluster.leader().await;
        let lost = cluster.follower(leader);
        cluster.stop_node(lost).await;
        for n in 0..80 {
            cluster
                .repos(leader)
                .configs
                .publish(publish(&format!("c{n}"), &format!("v{n}")))
                .await
                .expect("publish");
        }
        // The leader compacted: the entries the lost node needs are gone.
        let purged = cluster.node(leader).metrics().purged;
        assert!(purged.is_some_and(|p| p.index > 10), "{purged:?}");

        cluster.dirs[lost] = TempDir::new().expect("tempdir");
        cluster.start_node(lost).await;
        for n in 0..80 {
            until_content(cluster.repos(lost), &format!("c{n}"), &format!("v{n}")).await;
        }
        assert!(
            cluster.dirs[lost]
                .path()
                .join(super::SNAPSHOT_FILE_NAME)
                .exists()
        );
        // It keeps following: a new write arrives too.
        cluster
            .repos(lost)
            .configs
            .publish(publish("after", "x"))
            .await
            .expect("publish");
        until_content(cluster.repos(leader), "after", "x").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linearizable_barrier_on_a_lagging_follower_waits_for_the_latest_write() {
    bounded(async {
        let cluster = Cluster::start(3, (5000, 1000)).await;
        let leader = cluster.leader().await;
        let follower = cluster.follower(leader);
        let content = |i: usize| {
            let repos = cluster.repos(i).clone();
            async move {
                repos
                    .configs
                    .get(&key("lin"))
                    .await
                    .expect("get")
                    .map(|c| c.content)
            }
        };
        cluster
            .repos(leader)
            .configs
            .publish(publish("lin", "v0"))
            .await
            .expect("publish v0");
        cluster
            .node(follower)
            .linearizable_barrier()
            .await
            .expect("barrier");
        assert_eq!(content(follower).await.as_deref(), Some("v0"));

        // The follower stops receiving the log; the leader commits with the other follower.
        let follower_addr = cluster.addrs[follower].clone();
        cluster
            .net
            .deaf
            .lock()
            .expect("net lock")
            .insert(follower_addr.clone());
        cluster
            .repos(leader)
            .configs
            .publish(publish("lin", "v1"))
            .await
            .expect("publish v1");
        assert_eq!(
            content(follower).await.as_deref(),
            Some("v0"),
            "a plain read on the lagging follower is stale"
        );
        let node = Arc::clone(cluster.node(follower));
        let barrier = tokio::spawn(async move { node.linearizable_barrier().await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !barrier.is_finished(),
            "the barrier waits while the follower lags"
        );

        cluster
            .net
            .deaf
            .lock()
            .expect("net lock")
            .remove(&follower_addr);
        barrier.await.expect("barrier task").expect("barrier");
        assert_eq!(content(follower).await.as_deref(), Some("v1"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_validated() {
    let dir = TempDir::new().expect("tempdir");
    let transport = Arc::new(MemTransport {
        net: Arc::new(Net::default()),
        from: "a:1".to_string(),
    });
    let settings = RaftSettings::new("a:1", vec!["b:1".to_string()]);
    let err = RaftNode::start(settings, dir.path(), transport)
        .await
        .expect_err("must fail");
    assert!(matches!(err, RepoError::InvalidArgument(_)), "{err:?}");
}

fn fill(path: &Path) -> Arc<EmbeddedStore> {
    let store = Arc::new(EmbeddedStore::open(&path.join(FILE_NAME)).expect("open store"));
    for command in crate::tests::script() {
        let db = store.db.clone();
        let txn = db.begin_write().expect("begin write");
        match crate::command::apply(&txn, &command) {
            Ok(_) => txn.commit().expect("commit"),
            Err(_) => txn.abort().expect("abort"),
        }
    }
    store
}

#[test]
fn snapshot_covers_every_table_and_round_trips() {
    let dir = TempDir::new().expect("tempdir");
    let store = fill(dir.path());
    super::state_machine::init(&store.db).expect("init raft meta");

    let txn = store.db.begin_read().expect("begin read");
    let mut dumper = Dumper::new(&txn);
    visit_data_tables(&mut dumper).expect("visit tables");
    let dumped: BTreeSet<String> = dumper.tables.iter().map(|(n, _)| n.clone()).collect();
    let present: BTreeSet<String> = txn
        .list_tables()
        .expect("list tables")
        .map(|t| t.name().to_string())
        .filter(|n| !LOCAL_TABLES.contains(&n.as_str()))
        .collect();
    assert_eq!(dumped, present, "a table is missing from visit_data_tables");
    assert!(dumper.tables.iter().any(|(_, rows)| !rows.is_empty()));

    let meta = snapshot::Meta::default();
    let blob = snapshot::encode(&meta, &dumper.tables).expect("encode snapshot");
    let (decoded_meta, tables) = snapshot::decode(&blob).expect("decode snapshot");
    assert_eq!(decoded_meta, meta);
    assert_eq!(tables, dumper.tables);

    // Load into a store holding other data: afterwards it is an exact copy.
    let other_dir = TempDir::new().expect("tempdir");
    let other = EmbeddedStore::open(&other_dir.path().join(FILE_NAME)).expect("open store");
    {
        let txn = other.db.begin_write().expect("begin write");
        crate::command::apply(
            &txn,
            &Command::PublishConfig {
                publish: publish("stale", "x"),
                now_ms: 1,
            },
        )
        .expect("publish");
        txn.commit().expect("commit");
    }
    {
        let txn = other.db.begin_write().expect("begin write");
        let mut loader = Loader::new(&txn, tables);
        visit_data_tables(&mut loader).expect("visit tables");
        loader.finish().expect("loader finish");
        txn.commit().expect("commit");
    }
    let txn2 = other.db.begin_read().expect("begin read");
    let mut copy = Dumper::new(&txn2);
    visit_data_tables(&mut copy).expect("visit tables");
    assert_eq!(copy.tables, dumper.tables);

    assert!(snapshot::decode(&blob[..blob.len() - 1]).is_err());
}
