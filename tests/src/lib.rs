//! Test support shared by the workspace's integration tests: private database servers for
//! the SQL backends' tests, and (in `tests/it/`) the end-to-end tests of the server. The
//! backend conformance suite itself is the `nacos-conformance` crate; each storage crate runs
//! it from its own `tests/conformance.rs`.
//!
//! # Layout
//! - [`mariadb`]: private MariaDB servers (one shared per test binary, plus primary/replica
//!   pairs for failover tests) and a throwaway database per case, for the MySQL backend's
//!   tests (skipped loudly where MariaDB is absent; a failure with `NACOS_TEST_REQUIRE_DB=1`).
//! - [`postgres`]: a private PostgreSQL server per test binary and a throwaway database per
//!   case, for the PostgreSQL backend's tests (likewise).
//! - [`dbproc`]: starting and stopping those server processes.

pub mod dbproc;
pub mod mariadb;
pub mod postgres;
