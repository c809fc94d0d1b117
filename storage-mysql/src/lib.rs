//! MySQL / MariaDB storage backend: every repository of `nacos-core` on Nacos 2.x's own
//! schema, so this server can take over a database Java Nacos wrote (and Java Nacos can read
//! what it writes), with a writable primary found and followed among several `db.url.N`.
//!
//! # Layout
//! - [`store`]: [`MysqlStore`] — opening the data source (a pool per `db.url.N`, the first
//!   probe, the schema check) and the two paths to the database: one retried transaction on
//!   the primary per write, one connection per read.
//! - [`cluster`]: high availability — probing `@@global.read_only` to find the primary, the
//!   monitor task that re-probes and switches without a restart, fail-fast while no node is
//!   writable ([`Topology`]).
//! - [`options`]: [`MysqlOptions`] (`nacos.db.schema.init`, `nacos.db.readFromReplicas`,
//!   `nacos.db.ha.checkIntervalMs`) and the translation of JDBC URLs (`connectTimeout`,
//!   `socketTimeout`, `useSSL` / `sslMode`, `serverTimezone`) and `db.pool.config.*` into sqlx
//!   options.
//! - [`schema`]: the embedded `conf/mysql-schema.sql` ([`SCHEMA`]), the start-up check naming
//!   missing tables, and creating them on request.
//! - `configs`, `namespaces`, `instances`, `users`: the [`ConfigRepo`], [`NamespaceRepo`],
//!   [`InstanceRepo`] and [`UserRepo`] impls, one per table family.
//! - `lease`: the housekeeping lease, a named lock (`GET_LOCK`) held on a session of its own.
//! - `transfer`: [`TransferRepo`](nacos_core::TransferRepo) — exports from one consistent
//!   snapshot transaction, imports as multi-row upserts, one transaction per batch.
//! - `sql`: typed column reads, glob filters, datetime ⇄ epoch-ms conversions.
//! - `error`: the one place where sqlx errors become [`RepoError`] kinds.
//!
//! # Guarantees
//! - Each write is one transaction (READ COMMITTED, row locks on the key it changes), so a
//!   config and its history row, or a user and its role bindings, land together or not at all.
//!   A write returns `Ok` only after `COMMIT` succeeded on the primary.
//! - While no primary is known, writes fail at once with [`RepoError::Unavailable`]; reads do
//!   too unless replicas serve reads. Nothing needs a restart when a primary comes back.
//! - Times in Nacos's `datetime` columns keep whole seconds: items read back (and returned by
//!   writes) carry whole-second times. The change index behind
//!   [`ConfigRepo::changed_since`] keeps milliseconds of the database clock.
//!
//! # Use
//! ```no_run
//! # async fn open() -> Result<(), nacos_core::RepoError> {
//! use nacos_core::datasource::DataSourceConfig;
//! let get = |key: &str| match key {
//!     "db.num" => Some("1".to_string()),
//!     "db.url.0" => Some("jdbc:mysql://127.0.0.1:3306/nacos?useSSL=false".to_string()),
//!     "db.user" => Some("nacos".to_string()),
//!     "db.password" => Some("secret".to_string()),
//!     _ => None,
//! };
//! let config = DataSourceConfig::from_properties(&get).expect("valid db.* properties");
//! let options = nacos_storage_mysql::MysqlOptions::from_properties(&get).expect("valid");
//! let repos = nacos_storage_mysql::open_repos(config, options).await?;
//! # drop(repos); Ok(()) }
//! ```
//!
//! [`ConfigRepo`]: nacos_core::ConfigRepo
//! [`ConfigRepo::changed_since`]: nacos_core::ConfigRepo::changed_since
//! [`NamespaceRepo`]: nacos_core::NamespaceRepo
//! [`InstanceRepo`]: nacos_core::InstanceRepo
//! [`UserRepo`]: nacos_core::UserRepo
//! [`RepoError`]: nacos_core::RepoError
//! [`RepoError::Unavailable`]: nacos_core::RepoError::Unavailable

pub mod cluster;
mod configs;
mod error;
mod instances;
mod lease;
mod namespaces;
pub mod options;
pub mod schema;
mod sql;
pub mod store;
mod transfer;
mod users;

pub use cluster::Topology;
pub use options::MysqlOptions;
pub use schema::SCHEMA;
pub use store::{MysqlStore, open_repos};

/// Name of this backend in `spring.sql.init.platform`.
pub const NAME: &str = "mysql";
