//! The backend conformance suite against the embedded (redb) backend.

use nacos_core::Repos;
use nacos_storage_embedded::open_repos;
use tempfile::TempDir;

/// Each case gets a new temporary directory holding a new database file.
struct Embedded;

impl nacos_tests::Backend for Embedded {
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

nacos_tests::conformance_suite!(Embedded);
