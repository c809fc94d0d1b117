//! [`MysqlStore`]: opening the data source (pools, first probe, schema check), and the two
//! ways every repository method reaches the database: [`MysqlStore::write`] (one transaction
//! on the primary, retried on deadlocks) and [`MysqlStore::read`] (one connection from the
//! reader: the primary, or a replica when replicas serve reads).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use nacos_core::datasource::DataSourceConfig;
use nacos_core::{Capabilities, RepoError, RepoResult, Repos};
use sqlx::MySqlConnection;

use crate::cluster::{Cluster, Node, Topology};
use crate::error;
use crate::options::{self, MysqlOptions};
use crate::schema;

/// What a transaction body returns on failure.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A driver error: mapped by [`error::map`], or retried when transient.
    Db(sqlx::Error),
    /// A contract error decided by the body (precondition failed, not found...).
    Repo(RepoError),
    /// A race the body detected (an insert hit a row a concurrent writer just created): run
    /// the whole transaction again.
    Retry,
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<RepoError> for Failure {
    fn from(e: RepoError) -> Self {
        Failure::Repo(e)
    }
}

pub(crate) type Body<'c, T> = Pin<Box<dyn Future<Output = Result<T, Failure>> + Send + 'c>>;

/// How often a write transaction is tried when it meets deadlocks or insert races.
const WRITE_ATTEMPTS: u32 = 6;

/// Where a read goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// The reader: a replica when replicas serve reads, else the primary.
    Reader,
    /// The primary: reads that must see the latest write. While no node is writable these
    /// too go to a replica, since a possibly stale answer beats none for a reader.
    Primary,
}

/// The MySQL / MariaDB store: every repository of `nacos-core` over Nacos's schema, on the
/// writable primary among `db.url.N`. Cheap to share behind an `Arc`.
pub struct MysqlStore {
    pub(crate) cluster: Arc<Cluster>,
    /// The housekeeping lease's session, once taken.
    lease: crate::lease::Lease,
}

impl fmt::Debug for MysqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<&str> = self
            .cluster
            .nodes
            .iter()
            .map(|n| n.label.as_str())
            .collect();
        f.debug_struct("MysqlStore")
            .field("nodes", &labels)
            .field("topology", &self.cluster.topology())
            .finish()
    }
}

impl Drop for MysqlStore {
    fn drop(&mut self) {
        // The monitor holds only a weak reference; wake it so it notices and exits.
        self.cluster.wake_monitor();
    }
}

impl MysqlStore {
    /// Open the data source: build a pool per `db.url.N` (connections open on demand), probe
    /// every node to find the writable primary, check the schema (creating what is missing
    /// when [`MysqlOptions::schema_init`]), and start the monitor task. Must run inside a
    /// tokio runtime.
    ///
    /// Errors: `InvalidArgument` for a URL this backend cannot use; `Unavailable` when no
    /// node answers (the message names each node and why); `Internal` naming missing tables.
    pub fn open(
        config: DataSourceConfig,
        options: MysqlOptions,
    ) -> impl Future<Output = Result<Arc<MysqlStore>, RepoError>> + Send {
        // Boxed as `dyn Send` here, where the compiler can prove it: callers that need a
        // `Send` future (spawned tasks, trait methods) otherwise hit rustc's "Executor is not
        // general enough" limitation with sqlx's executor lifetimes.
        let opening: Pin<Box<dyn Future<Output = Result<Arc<MysqlStore>, RepoError>> + Send>> =
            Box::pin(Self::open_inner(config, options));
        opening
    }

    async fn open_inner(
        config: DataSourceConfig,
        options: MysqlOptions,
    ) -> Result<Arc<MysqlStore>, RepoError> {
        let mut nodes = Vec::with_capacity(config.nodes.len());
        for (index, db) in config.nodes.iter().enumerate() {
            let connect = options::connect_options(db)
                .map_err(|e| RepoError::InvalidArgument(format!("db.url.{index}: {e}")))?;
            let (connect_timeout, op_timeout) = options::timeouts(db, &config.pool);
            let pool = options::pool_options(&config.pool, connect_timeout)
                .connect_lazy_with(connect.clone());
            let probe_pool =
                options::probe_pool_options(connect_timeout).connect_lazy_with(connect);
            nodes.push(Node {
                label: options::label(db),
                pool,
                probe_pool,
                connect_timeout,
                op_timeout,
            });
        }
        let cluster = Arc::new(Cluster::new(nodes, options.read_from_replicas));
        let topology = cluster.refresh().await;
        let checked = topology
            .primary
            .or_else(|| topology.replicas.first().copied())
            .and_then(|i| cluster.nodes.get(i));
        let Some(node) = checked else {
            let why: Vec<String> = topology
                .down
                .iter()
                .map(|(i, e)| format!("db.url.{i} ({}): {e}", cluster.nodes[*i].label))
                .collect();
            return Err(RepoError::Unavailable(
                format!("no database answers: {}", why.join("; ")).into(),
            ));
        };
        if options.schema_init && topology.primary.is_none() {
            return Err(RepoError::Unavailable(
                format!(
                    "{} is read-only and no other database is writable: cannot create the schema \
                 (nacos.db.schema.init=true)",
                    node.label
                )
                .into(),
            ));
        }
        let mut conn = node
            .pool
            .acquire()
            .await
            .map_err(|e| error::map(e, "connecting", &node.label))?;
        schema::ensure(&mut conn, options.schema_init, &node.label).await?;
        drop(conn);
        tracing::info!(
            primary = topology.primary.map(|i| cluster.nodes[i].label.as_str()),
            replicas = topology.replicas.len(),
            read_from_replicas = options.read_from_replicas,
            "opened MySQL storage"
        );
        cluster.spawn_monitor(options.check_interval);
        Ok(Arc::new(MysqlStore {
            cluster,
            lease: crate::lease::Lease::default(),
        }))
    }

    /// The repositories, all backed by this store.
    pub fn repos(self: Arc<Self>) -> Repos {
        Repos::of(self, Capabilities::ALL)
    }

    /// Whether a writable primary is known right now (cheap: no I/O). A readiness probe.
    pub fn is_writable(&self) -> bool {
        self.cluster.primary().is_some()
    }

    /// What the last probe found.
    pub fn topology(&self) -> Topology {
        self.cluster.topology()
    }

    /// Probe every node now instead of waiting for the monitor, and return what it found.
    pub fn refresh(&self) -> impl Future<Output = Topology> + Send + '_ {
        let probing: Pin<Box<dyn Future<Output = Topology> + Send + '_>> =
            Box::pin(self.cluster.refresh());
        probing
    }

    /// [`nacos_core::ConfigRepo::housekeeping_lease`] on the primary.
    pub(crate) async fn hold_lease(&self) -> RepoResult<bool> {
        let node = self
            .cluster
            .primary()
            .ok_or_else(|| self.no_primary("housekeeping lease"))?;
        self.lease.hold(node).await
    }

    pub(crate) fn no_primary(&self, what: &str) -> RepoError {
        let topology = self.cluster.topology();
        let down: Vec<String> = topology
            .down
            .iter()
            .map(|(i, e)| format!("{}: {e}", self.cluster.nodes[*i].label))
            .collect();
        RepoError::Unavailable(
            format!(
                "{what}: no writable database (read-only: {}, down: {})",
                topology.replicas.len(),
                if down.is_empty() {
                    "none".to_string()
                } else {
                    down.join("; ")
                }
            )
            .into(),
        )
    }

    /// Run `body` in one transaction on the primary and commit it. Deadlocks, lock-wait
    /// timeouts and [`Failure::Retry`] run it again (a few times). Without a primary this
    /// fails at once with `Unavailable`. A transaction that outlives the node's
    /// `socketTimeout` is abandoned (rolled back unless its commit was already sent) and
    /// reported `Unavailable`.
    pub(crate) async fn write<T, F>(&self, what: &str, body: F) -> RepoResult<T>
    where
        T: Send,
        F: for<'c> Fn(&'c mut MySqlConnection) -> Body<'c, T> + Send + Sync,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let node = self
                .cluster
                .primary()
                .ok_or_else(|| self.no_primary(what))?;
            let run = async {
                let mut conn = node.pool.acquire().await?;
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                match body(&mut tx).await {
                    Ok(value) => {
                        tx.commit().await?;
                        Ok(value)
                    }
                    Err(failure) => {
                        if let Err(e) = tx.rollback().await {
                            tracing::debug!(error = %e, "rollback failed");
                        }
                        Err(failure)
                    }
                }
            };
            let failure =
                match tokio::time::timeout(node.op_timeout, run).await {
                    Ok(Ok(value)) => return Ok(value),
                    Ok(Err(failure)) => failure,
                    Err(_) => {
                        self.cluster.suspect();
                        return Err(RepoError::Unavailable(format!(
                        "{what} on {}: no answer within {:?}; the write may or may not have \
                         been applied",
                        node.label, node.op_timeout
                    ).into()));
                    }
                };
            let retry = match &failure {
                Failure::Retry => true,
                Failure::Db(e) => error::is_retryable(e),
                Failure::Repo(_) => false,
            };
            if retry && attempt < WRITE_ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(2 * u64::from(attempt))).await;
                continue;
            }
            return Err(match failure {
                Failure::Repo(e) => e,
                Failure::Retry => RepoError::Unavailable(
                    format!(
                        "{what}: still conflicting with concurrent writes after {attempt} attempts"
                    )
                    .into(),
                ),
                Failure::Db(e) => {
                    let mapped = error::map(e, what, &node.label);
                    if error::is_node_trouble(&mapped) {
                        self.cluster.suspect();
                    }
                    mapped
                }
            });
        }
    }

    /// Run `body` on one connection of the node `route` picks (no explicit transaction).
    pub(crate) async fn read<T, F>(&self, what: &str, route: Route, body: F) -> RepoResult<T>
    where
        T: Send,
        F: for<'c> FnOnce(&'c mut MySqlConnection) -> Body<'c, T> + Send,
    {
        let node = self
            .cluster
            .reader(route == Route::Reader)
            .ok_or_else(|| self.no_primary(what))?;
        let run = async {
            let mut conn = node.pool.acquire().await?;
            body(&mut conn).await
        };
        match tokio::time::timeout(node.op_timeout, run).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Failure::Repo(e))) => Err(e),
            Ok(Err(Failure::Retry)) => Err(RepoError::Internal(
                format!("{what}: a read asked to be retried").into(),
            )),
            Ok(Err(Failure::Db(e))) => {
                let mapped = error::map(e, what, &node.label);
                if error::is_node_trouble(&mapped) {
                    self.cluster.suspect();
                }
                Err(mapped)
            }
            Err(_) => {
                self.cluster.suspect();
                Err(RepoError::Unavailable(
                    format!(
                        "{what} on {}: no answer within {:?}",
                        node.label, node.op_timeout
                    )
                    .into(),
                ))
            }
        }
    }
}

/// Open the store and hand out its repositories.
pub fn open_repos(
    config: DataSourceConfig,
    options: MysqlOptions,
) -> impl Future<Output = RepoResult<Repos>> + Send {
    let opening = MysqlStore::open(config, options);
    async move { Ok(opening.await?.repos()) }
}
