//! High availability over `db.url.N`: which node is the writable primary, which are readable
//! replicas, and the monitor task that keeps that answer fresh. The policy (who is primary,
//! when to re-check) is [`nacos_core::ha`]'s, shared with the PostgreSQL backend; this module
//! only asks the nodes.
//!
//! The primary is found without writing anything: each node is asked
//! `SELECT @@global.read_only`; a node that answers `0`/`OFF` is writable. The current primary
//! stays primary while it stays writable (no flapping when two nodes are writable); otherwise
//! the writable node with the lowest index wins. The monitor re-probes every
//! [`MysqlOptions::check_interval`](crate::MysqlOptions::check_interval), and at once when a
//! query fails in a way that says the node is in trouble ([`Cluster::suspect`]).
//!
//! While no node is writable, [`Cluster::primary`] is `None` and writes fail fast with
//! `Unavailable` without touching the network. Reads then go to a reachable replica
//! ([`Cluster::reader`]): a config stays readable while its primary is lost, as Nacos serves
//! reads from its local dump, at the price of the replica's lag.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
pub use nacos_core::ha::Topology;
use nacos_core::ha::{self, Monitor, NodeProbe};
use sqlx::MySqlPool;

/// Shortest pause between two probes triggered by failing queries, so an outage under load
/// does not turn into a busy loop of probes.
const MIN_PROBE_GAP: Duration = Duration::from_millis(200);

/// One configured database (`db.url.N`: its position in [`Cluster::nodes`] is N).
#[derive(Debug)]
pub(crate) struct Node {
    /// `host:port/db`, for logs and errors (no credentials).
    pub label: String,
    pub pool: MySqlPool,
    /// One connection of its own for the probe, so a busy pool never looks like a dead node.
    pub probe_pool: MySqlPool,
    /// Bounds getting a connection, and a probe.
    pub connect_timeout: Duration,
    /// Bounds one statement or one write transaction (`socketTimeout`).
    pub op_timeout: Duration,
}

#[async_trait]
impl NodeProbe for Node {
    async fn is_writable(&self) -> Result<bool, String> {
        probe(self.probe_pool.clone(), self.connect_timeout).await
    }
}

/// The nodes and the current topology.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub nodes: Vec<Node>,
    topology: RwLock<Topology>,
    /// `topology.primary` for the hot path (`usize::MAX`: none), read without a lock.
    primary: AtomicUsize,
    /// Wakes the monitor for an immediate probe.
    monitor: Arc<Monitor>,
    read_from_replicas: bool,
    /// Round-robin position among replicas.
    next_replica: AtomicUsize,
    /// The node writes last went to (`usize::MAX`: none yet), and how often that changed.
    last_writer: AtomicUsize,
    failovers: AtomicU64,
}

impl Cluster {
    pub fn new(nodes: Vec<Node>, read_from_replicas: bool) -> Self {
        Cluster {
            nodes,
            topology: RwLock::new(Topology::default()),
            primary: AtomicUsize::new(usize::MAX),
            monitor: Arc::new(Monitor::default()),
            read_from_replicas,
            next_replica: AtomicUsize::new(0),
            last_writer: AtomicUsize::new(usize::MAX),
            failovers: AtomicU64::new(0),
        }
    }

    pub fn topology(&self) -> Topology {
        match self.topology.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Which node takes writes and how often that changed, for metrics.
    pub fn ha_status(&self) -> ha::HaStatus {
        ha::HaStatus {
            nodes: self.nodes.len(),
            primary: Some(self.primary.load(Ordering::Acquire)).filter(|i| *i < self.nodes.len()),
            failovers: self.failovers.load(Ordering::Relaxed),
        }
    }

    /// The writable primary, if one is known.
    pub fn primary(&self) -> Option<&Node> {
        self.nodes.get(self.primary.load(Ordering::Acquire))
    }

    /// Where a read goes: a replica (round robin) when `prefer_replica` and replicas serve
    /// reads; else the primary; while there is no primary, a replica anyway (stale by its lag,
    /// but an answer instead of an outage). `None` when no node answers.
    pub fn reader(&self, prefer_replica: bool) -> Option<&Node> {
        if prefer_replica
            && self.read_from_replicas
            && let Some(node) = self.replica()
        {
            return Some(node);
        }
        self.primary().or_else(|| self.replica())
    }

    /// A reachable replica, round robin.
    fn replica(&self) -> Option<&Node> {
        let topology = self.topology();
        if topology.replicas.is_empty() {
            return None;
        }
        let n = self.next_replica.fetch_add(1, Ordering::Relaxed) % topology.replicas.len();
        self.nodes.get(topology.replicas[n])
    }

    /// A query failed in a way that says its node may be gone or demoted: probe now.
    pub fn suspect(&self) {
        self.monitor.suspect();
    }

    /// Probe every node (concurrently) and install the new topology. Returns it.
    pub fn refresh(&self) -> Pin<Box<dyn Future<Output = Topology> + Send + '_>> {
        Box::pin(self.refresh_inner())
    }

    async fn refresh_inner(&self) -> Topology {
        let answers = ha::probe_all(&self.nodes).await;
        let previous = self.topology();
        let topology = Topology::next(previous.primary, answers);
        self.log_change(&previous, &topology);
        match self.topology.write() {
            Ok(mut t) => *t = topology.clone(),
            Err(poisoned) => *poisoned.into_inner() = topology.clone(),
        }
        self.primary
            .store(topology.primary.unwrap_or(usize::MAX), Ordering::Release);
        if let Some(primary) = topology.primary {
            let last = self.last_writer.swap(primary, Ordering::Relaxed);
            if last != usize::MAX && last != primary {
                self.failovers.fetch_add(1, Ordering::Relaxed);
            }
        }
        topology
    }

    fn label(&self, index: usize) -> &str {
        self.nodes.get(index).map_or("?", |n| n.label.as_str())
    }

    fn log_change(&self, before: &Topology, after: &Topology) {
        if before.primary != after.primary {
            match after.primary {
                Some(i) => tracing::warn!(
                    primary = self.label(i),
                    index = i,
                    "database primary selected"
                ),
                None => {
                    let why: Vec<String> = after
                        .down
                        .iter()
                        .map(|(i, e)| format!("{}: {e}", self.label(*i)))
                        .collect();
                    tracing::error!(
                        down = ?why,
                        "no writable database: writes fail with 503 until a primary is back"
                    );
                }
            }
        }
        let was_down: Vec<usize> = before.down.iter().map(|(i, _)| *i).collect();
        for (i, why) in &after.down {
            if !was_down.contains(i) {
                tracing::warn!(node = self.label(*i), error = %why, "database node is down");
            }
        }
    }

    /// Start the monitor: it probes every `interval`, and soon after [`Cluster::suspect`],
    /// until the cluster is dropped.
    pub fn spawn_monitor(self: &Arc<Self>, interval: Duration) {
        ha::spawn_monitor(
            Arc::downgrade(self),
            Arc::clone(&self.monitor),
            interval,
            MIN_PROBE_GAP,
            |cluster: Arc<Cluster>| {
                Box::pin(async move {
                    cluster.refresh().await;
                })
            },
        );
    }

    /// Stop the monitor promptly (it exits once the cluster is gone).
    pub fn wake_monitor(&self) {
        self.monitor.suspect();
    }
}

/// `Ok(true)` when the node answers and is writable, `Ok(false)` when it is read-only.
fn probe(
    pool: MySqlPool,
    timeout: Duration,
) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send>> {
    Box::pin(async move {
        let ask = async {
            let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
            let row = sqlx::query("SELECT CAST(@@global.read_only AS CHAR) AS read_only")
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| e.to_string())?;
            crate::sql::text(&row, "read_only").map_err(|e| e.to_string())
        };
        // The pool's own acquire timeout bounds connecting; this bounds a server that accepts the
        // connection but never answers.
        let value = tokio::time::timeout(timeout + Duration::from_millis(500), ask)
            .await
            .map_err(|_| format!("no answer within {timeout:?}"))??;
        let value = value.trim();
        Ok(value == "0" || value.eq_ignore_ascii_case("OFF"))
    })
}
