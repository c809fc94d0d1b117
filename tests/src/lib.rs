//! The public backend conformance suite, and (in `tests/it/`) the end-to-end tests of the
//! server.
//!
//! # Layout
//! - [`Backend`]: the small trait a backend author implements so the suite gets fresh,
//!   isolated repositories for every case (and, optionally, can reopen them).
//! - [`conformance`]: one plain public async function per behaviour, by area —
//!   [`conformance::configs`], [`conformance::history`], [`conformance::gray`],
//!   [`conformance::namespaces`], [`conformance::services`], [`conformance::persistence`],
//!   [`conformance::users`] (called per backend, not by the macro) —
//!   each asserting the contract written on the `nacos-core` trait methods. Helpers shared by
//!   the cases live in [`conformance::fixtures`].
//! - [`conformance_suite!`]: expands into one named `#[tokio::test]` per case, so a failure
//!   names its case, and skips loudly (`SKIPPED <case>: backend does not support <capability>`)
//!   where the backend's [`nacos_core::Capabilities`] say so.
//! - [`mariadb`]: private MariaDB servers (one shared per test binary, plus primary/replica
//!   pairs for failover tests) and a throwaway database per case, for the MySQL backend's
//!   tests (skipped loudly where MariaDB is absent).
//! - [`postgres`]: a private PostgreSQL server per test binary and a throwaway database per
//!   case, for the PostgreSQL backend's tests (skipped loudly where PostgreSQL is absent).
//!
//! This library depends on `nacos-core` only; each backend runs the same suite.
//!
//! # Running the suite against a backend
//! Implement [`Backend`] and invoke the macro once in a test module. The calling crate needs
//! `tokio` (features `macros` and `rt`) as a (dev-)dependency, for `#[tokio::test]`.
//!
//! ```ignore
//! use nacos_core::Repos;
//!
//! struct MyBackend;
//!
//! impl nacos_tests::Backend for MyBackend {
//!     /// Keeps the storage alive for one case and cleans it up on drop.
//!     type Guard = tempfile::TempDir;
//!
//!     async fn build(&self) -> (Repos, Self::Guard) {
//!         let dir = tempfile::tempdir().expect("temp dir");
//!         let repos = my_backend::open_repos(dir.path()).expect("open");
//!         (repos, dir)
//!     }
//!
//!     // Optional: without it the persistence cases are skipped (loudly).
//!     async fn reopen(&self, guard: &Self::Guard) -> Option<Repos> {
//!         Some(my_backend::open_repos(guard.path()).expect("reopen"))
//!     }
//! }
//!
//! nacos_tests::conformance_suite!(MyBackend);
//! // or, to put the tests in their own module: conformance_suite!(my_backend_suite, MyBackend);
//! ```
//!
//! Then `cargo test <module name>` runs every case, named `<module>::<area>::<case>`.
//! The functions can also be called directly, e.g.
//! `nacos_tests::conformance::configs::cas_mismatch_fails_and_changes_nothing(&repos).await`.

pub mod conformance;
pub mod dbproc;
pub mod mariadb;
pub mod postgres;

pub use conformance::harness::{Backend, Requirement};
