//! The backend conformance suite against the MySQL backend on a private MariaDB server (one
//! per test binary, a fresh database per case), plus the `UserRepo` cases. Skipped loudly
//! where MariaDB is not installed (failed instead with `NACOS_TEST_REQUIRE_DB=1`).

use std::sync::Arc;

use nacos_core::Repos;
use nacos_storage_mysql::{MysqlOptions, MysqlStore};
use nacos_tests::mariadb::{self, MariaDb, TestDatabase};

/// Options of a store under test: schema created on build, found on reopen.
fn options(init: bool) -> MysqlOptions {
    MysqlOptions {
        schema_init: init,
        ..MysqlOptions::default()
    }
}

/// A fresh database with the schema, and a store on it.
async fn fresh_store() -> Option<(Arc<MysqlStore>, TestDatabase<'static>)> {
    let server = MariaDb::shared()?;
    let db = server.create_database();
    let store = MysqlStore::open(db.datasource(), options(true))
        .await
        .expect("open the MySQL store on a fresh database");
    Some((store, db))
}

/// Each case gets a new database on the shared server.
struct Mysql;

impl nacos_conformance::Backend for Mysql {
    type Guard = TestDatabase<'static>;

    async fn build(&self) -> (Repos, TestDatabase<'static>) {
        let (store, db) = fresh_store()
            .await
            .expect("MariaDB is available (checked by unavailable())");
        (store.repos(), db)
    }

    async fn reopen(&self, guard: &TestDatabase<'static>) -> Option<Repos> {
        let store = MysqlStore::open(guard.datasource(), options(false))
            .await
            .expect("reopen the MySQL store");
        Some(store.repos())
    }

    fn unavailable(&self) -> Option<String> {
        mariadb::available()
            .is_none()
            .then(|| "mariadb not installed".to_string())
    }
}

nacos_conformance::conformance_suite!(Mysql);

/// The housekeeping lease is held by one store of a database at a time, kept by its holder,
/// and taken over by another store once the holder's session is gone; another database on
/// the same server has its own.
#[tokio::test]
async fn housekeeping_lease_is_exclusive_and_taken_over() {
    use nacos_core::ConfigRepo;
    let Some(server) = MariaDb::shared() else {
        return;
    };
    let db = server.create_database();
    let first = MysqlStore::open(db.datasource(), options(true))
        .await
        .expect("open");
    let second = MysqlStore::open(db.datasource(), options(false))
        .await
        .expect("open again");
    assert!(
        first.housekeeping_lease().await.expect("ask"),
        "free: taken"
    );
    assert!(!second.housekeeping_lease().await.expect("ask"), "held");
    assert!(first.housekeeping_lease().await.expect("ask"), "kept");
    let other_db = server.create_database();
    let other = MysqlStore::open(other_db.datasource(), options(true))
        .await
        .expect("open another database");
    assert!(
        other.housekeeping_lease().await.expect("ask"),
        "another database has its own lease"
    );
    drop(first);
    let mut taken = false;
    for _ in 0..50 {
        if second.housekeeping_lease().await.expect("ask") {
            taken = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(taken, "the lease passes on once its holder is gone");
}
