//! PostgreSQL storage backend: every repository of `nacos-core` on Nacos's own table layout
//! (see `conf/postgresql-schema.sql`), through diesel and diesel-async (tokio-postgres, bb8
//! pools).
//!
//! # Layout
//! - [`PgStore`] (here): opening (connect, check or create the schema) and the handle every
//!   repository impl runs on; [`open_repos`] for the server's storage table.
//! - `cluster`: JDBC URL parameters → tokio-postgres settings, one pool per `db.url.N`, the
//!   choice of the writable node and its periodic re-check.
//! - [`PgOptions`]: this backend's own properties (`nacos.db.schema.init`,
//!   `nacos.db.ha.checkIntervalMs`), shared with the MySQL backend.
//! - `setup`: the start-up schema check, or its creation when `nacos.db.schema.init=true`,
//!   from [`SCHEMA_SQL`].
//! - `tls`: `sslmode` over rustls (ring), plugged into tokio-postgres.
//! - `schema`: diesel `table!` definitions matching the SQL file.
//! - `configs`: [`ConfigRepo`]: formal configs with their tags, history, beta and tag variants,
//!   and the change index.
//! - `namespaces`: [`NamespaceRepo`] on `tenant_info`.
//! - `naming`: [`InstanceRepo`] on this server's `naming_service` / `naming_instance` tables.
//! - `users`: [`UserRepo`] on `users`, `roles`, `permissions`.
//! - `transfer`: [`TransferRepo`](nacos_core::TransferRepo) — exports from one
//!   `REPEATABLE READ READ ONLY` transaction, imports as bulk (`unnest`) upserts per batch.
//! - `convert`: timestamps, ids, glob filters, pages, JSON columns.
//! - `lease`: the housekeeping lease, an advisory lock held on a session of its own.
//! - `error`: the one place where diesel, tokio-postgres and pool errors become
//!   [`RepoError`] kinds.
//!
//! # Atomicity
//! Every write that the `nacos-core` contracts call atomic is one database transaction (READ
//! COMMITTED, with the affected rows locked `FOR UPDATE`), so a failed precondition or a lost
//! connection leaves nothing written. Write times come from the database clock, shared by all
//! nodes.
//!
//! # Use
//! ```no_run
//! # async fn demo(config: nacos_core::datasource::DataSourceConfig) -> Result<(), nacos_core::RepoError> {
//! let options = nacos_storage_postgres::PgOptions::with_schema_init(true);
//! let store = nacos_storage_postgres::PgStore::open(&config, &options).await?;
//! let users = store.clone().users();
//! let repos = store.repos();
//! # drop((users, repos)); Ok(()) }
//! ```
//!
//! [`ConfigRepo`]: nacos_core::ConfigRepo
//! [`NamespaceRepo`]: nacos_core::NamespaceRepo
//! [`InstanceRepo`]: nacos_core::InstanceRepo
//! [`UserRepo`]: nacos_core::UserRepo

mod cluster;
mod configs;
mod convert;
mod error;
mod lease;
mod namespaces;
mod naming;
mod options;
mod schema;
mod setup;
mod tls;
mod transfer;
mod users;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use diesel_async::pooled_connection::bb8::PooledConnection;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use nacos_core::datasource::DataSourceConfig;
use nacos_core::{Capabilities, RepoError, Repos, UserRepo};

use crate::cluster::Cluster;
pub use crate::options::{PROP_CHECK_INTERVAL, PROP_SCHEMA_INIT, PgOptions};

/// Name of this backend in `spring.sql.init.platform`.
pub const NAME: &str = "postgresql";

/// The schema, as shipped in `conf/postgresql-schema.sql`: the single source of truth for the
/// tables, run as a whole when [`PROP_SCHEMA_INIT`] is true.
pub const SCHEMA_SQL: &str = include_str!("../../conf/postgresql-schema.sql");

/// The PostgreSQL store: pools to the configured nodes, the writable one in use. Cheap to
/// share behind an `Arc`; implements every repository trait.
pub struct PgStore {
    cluster: Arc<Cluster>,
    /// The housekeeping lease's session, once taken.
    lease: lease::Lease,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("cluster", &self.cluster)
            .finish()
    }
}

impl PgStore {
    /// Connect to the first writable node of `config`, then check that every table exists, or
    /// create the missing ones when [`PgOptions::schema_init`] is set (running [`SCHEMA_SQL`]).
    ///
    /// Errors: `Unavailable` when no node is reachable and writable (each node's problem is
    /// named); `InvalidArgument` for URL settings this build cannot honour; `Internal` naming
    /// the missing tables when the schema is incomplete and `schema_init` is false.
    pub async fn open(
        config: &DataSourceConfig,
        options: &PgOptions,
    ) -> Result<Arc<Self>, RepoError> {
        let cluster = Cluster::connect(config, options.check_interval).await?;
        let store = PgStore {
            cluster,
            lease: lease::Lease::default(),
        };
        {
            let mut conn = store.conn().await?;
            setup::ensure_schema(
                &mut conn,
                &store.cluster.current().label,
                options.schema_init,
            )
            .await?;
        }
        Ok(Arc::new(store))
    }

    /// Every repository (configs, namespaces, naming, users), all backed by this store.
    pub fn repos(self: Arc<Self>) -> Repos {
        Repos::of(self, Capabilities::ALL)
    }

    /// The user repository (users, roles, permissions) backed by this store.
    pub fn users(self: Arc<Self>) -> Arc<dyn UserRepo> {
        self
    }

    /// `host:port/database` of the node in use.
    pub fn node(&self) -> String {
        self.cluster.current().label.clone()
    }

    /// [`nacos_core::ConfigRepo::housekeeping_lease`] on the node in use.
    async fn hold_lease(&self) -> Result<bool, RepoError> {
        if let Some(problem) = self.cluster.write_problem() {
            return Err(problem);
        }
        self.lease.hold(self.cluster.current()).await
    }

    /// A pooled connection to the node in use.
    async fn conn(&self) -> Result<PooledConnection<'_, AsyncPgConnection>, RepoError> {
        // Known to fail: say so at once instead of waiting on a node that is gone.
        if let Some(problem) = self.cluster.write_problem() {
            self.cluster.suspect();
            return Err(problem);
        }
        let result = self.cluster.current().get().await;
        if result.is_err() {
            self.cluster.suspect();
        }
        result
    }

    /// Run one repository call: map its error, and bound it by `socketTimeout` when set. A
    /// call cut short drops its connection mid-transaction; the pool discards such a
    /// connection and the server rolls the transaction back.
    async fn call<T>(&self, op: impl Future<Output = error::Result<T>>) -> Result<T, RepoError> {
        let result = match self.cluster.socket_timeout {
            None => op.await.map_err(RepoError::from),
            Some(limit) => match tokio::time::timeout(limit, op).await {
                Ok(result) => result.map_err(RepoError::from),
                Err(_) => Err(error::timed_out(&self.cluster.current().label, limit)),
            },
        };
        if matches!(result, Err(RepoError::Unavailable(_))) {
            self.cluster.suspect();
        }
        result
    }
}

/// A repository call's body: an async closure over one connection whose future is `Send` (as
/// `#[async_trait]` methods need). Every `async |conn| { … }` closure with a `Send` future is
/// one; callers never implement this.
pub(crate) trait Body<'c, T>: FnOnce(&'c mut AsyncPgConnection) -> Self::Fut {
    type Fut: Future<Output = error::Result<T>> + Send;
}

impl<'c, T, F, Fut> Body<'c, T> for F
where
    F: FnOnce(&'c mut AsyncPgConnection) -> Fut,
    Fut: Future<Output = error::Result<T>> + Send,
{
    type Fut = Fut;
}

impl PgStore {
    /// Run `body` on one connection of the node in use (no explicit transaction), as one
    /// repository call ([`PgStore::call`]: errors mapped, bounded by `socketTimeout`).
    async fn run<T, F>(&self, body: F) -> Result<T, RepoError>
    where
        F: for<'c> Body<'c, T>
            + for<'c> AsyncFnOnce(&'c mut AsyncPgConnection) -> error::Result<T>
            + Send,
    {
        self.call(async {
            let mut conn = self.conn().await?;
            body(&mut conn).await
        })
        .await
    }

    /// Run a read-only `body` like [`PgStore::run`], on the node in use; while no node takes
    /// writes, on a reachable standby instead (reads survive the primary, stale by the
    /// standby's replay lag).
    async fn read<T, F>(&self, body: F) -> Result<T, RepoError>
    where
        F: for<'c> Body<'c, T>
            + for<'c> AsyncFnOnce(&'c mut AsyncPgConnection) -> error::Result<T>
            + Send,
    {
        self.call(async {
            let node = self.cluster.reader();
            let result = node.get().await;
            if result.is_err() {
                self.cluster.suspect();
            }
            let mut conn = result?;
            body(&mut conn).await
        })
        .await
    }

    /// Run `body` as one transaction on the node in use: committed when it returns `Ok`,
    /// rolled back when it returns `Err` (or the call is cut short).
    async fn in_tx<T, F>(&self, body: F) -> Result<T, RepoError>
    where
        T: Send,
        F: for<'c> Body<'c, T>
            + for<'c> AsyncFnOnce(&'c mut AsyncPgConnection) -> error::Result<T>
            + Send,
    {
        self.run(async |conn: &mut AsyncPgConnection| conn.transaction(body).await)
            .await
    }
}

/// Open the store described by `config` and hand out its repositories. See
/// [`PgStore::open`].
pub async fn open_repos(
    config: &DataSourceConfig,
    options: &PgOptions,
) -> Result<Repos, RepoError> {
    Ok(PgStore::open(config, options).await?.repos())
}
