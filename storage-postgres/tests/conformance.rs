//! The backend conformance suite against the PostgreSQL backend: every case on a fresh
//! database of the shared private server (see `nacos_tests::postgres`), schema created by
//! the backend itself (`init_schema`). Skipped loudly where PostgreSQL is not installed.
//!
//! Also: the start-up schema check, node selection, TLS, and error kinds only a real database
//! produces. (The user repository is an area of the suite.)

use nacos_core::{ConfigKey, ConfigPublish, Operator, PageRequest, RepoError, Repos};
use nacos_storage_postgres::{PgOptions, PgStore};
use nacos_tests::postgres::{PgServer, TestDatabase};

/// Each case gets a new database; reopening opens a new store on the same database.
struct Postgres;

impl nacos_conformance::Backend for Postgres {
    type Guard = TestDatabase<'static>;

    async fn build(&self) -> (Repos, TestDatabase<'static>) {
        let server = PgServer::shared().expect("checked by unavailable()");
        let db = server.create_database();
        let store = PgStore::open(&db.datasource(), &PgOptions::with_schema_init(true))
            .await
            .expect("open the PostgreSQL store and create its schema");
        (store.repos(), db)
    }

    async fn reopen(&self, guard: &TestDatabase<'static>) -> Option<Repos> {
        let store = PgStore::open(&guard.datasource(), &PgOptions::default())
            .await
            .expect("reopen the PostgreSQL store");
        Some(store.repos())
    }

    fn unavailable(&self) -> Option<String> {
        PgServer::shared()
            .is_none()
            .then(|| "postgresql not installed".to_string())
    }
}

nacos_conformance::conformance_suite!(Postgres);

/// Without `init_schema`, an empty database is refused with the missing tables named; with
/// it, the schema is created, and opening again (twice) is harmless.
#[tokio::test]
async fn schema_check_names_missing_tables_and_init_creates_them() {
    let Some(server) = PgServer::shared_or_skip("schema_check") else {
        return;
    };
    let db = server.create_database();
    let err = PgStore::open(&db.datasource(), &PgOptions::default())
        .await
        .expect_err("an empty database is refused");
    let message = err.to_string();
    assert!(
        message.contains("config_info") && message.contains("nacos.db.schema.init"),
        "{message}"
    );
    assert!(
        !message.contains(nacos_tests::postgres::PASSWORD),
        "{message}"
    );
    PgStore::open(&db.datasource(), &PgOptions::with_schema_init(true))
        .await
        .expect("init creates the schema");
    PgStore::open(&db.datasource(), &PgOptions::with_schema_init(true))
        .await
        .expect("init is idempotent");
    PgStore::open(&db.datasource(), &PgOptions::default())
        .await
        .expect("a complete schema opens without init");
    db.psql("DROP TABLE naming_instance").expect("drop a table");
    let err = PgStore::open(&db.datasource(), &PgOptions::default())
        .await
        .expect_err("a missing table is named");
    assert!(err.to_string().contains("naming_instance"), "{err}");
}

/// Values a column cannot hold are `InvalidArgument`; nothing is written.
#[tokio::test]
async fn oversized_and_nul_values_are_invalid_arguments() {
    let Some(server) = PgServer::shared_or_skip("oversized_values") else {
        return;
    };
    let db = server.create_database();
    let store = PgStore::open(&db.datasource(), &PgOptions::with_schema_init(true))
        .await
        .expect("open");
    let repos = store.repos();
    let key = ConfigKey::new("", "DEFAULT_GROUP", "too-long");
    let publish = ConfigPublish {
        key: key.clone(),
        content: "x".to_string(),
        desc: Some("d".repeat(300)),
        operator: Operator::default(),
        ..ConfigPublish::default()
    };
    assert!(
        matches!(
            repos.configs.publish(publish).await,
            Err(RepoError::InvalidArgument(_))
        ),
        "c_desc is varchar(256)"
    );
    let nul = ConfigPublish {
        key: key.clone(),
        content: "a\0b".to_string(),
        ..ConfigPublish::default()
    };
    assert!(matches!(
        repos.configs.publish(nul).await,
        Err(RepoError::InvalidArgument(_))
    ));
    assert_eq!(repos.configs.get(&key).await.expect("get"), None);
    let history = repos
        .configs
        .history(&key, PageRequest::new(1, 10))
        .await
        .expect("history");
    assert_eq!(history.total_count, 0, "no history either");
}

/// A database that cannot be reached is `Unavailable`, and the error names the node but not
/// the password.
#[tokio::test]
async fn unreachable_database_is_unavailable() {
    let Some(server) = PgServer::shared_or_skip("unreachable_database") else {
        return;
    };
    let db = server.create_database();
    let mut config = db.datasource();
    config.nodes[0].url.database = "no_such_database".to_string();
    let err = PgStore::open(&config, &PgOptions::with_schema_init(true))
        .await
        .expect_err("no such database");
    assert!(matches!(err, RepoError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("no_such_database"), "{err}");
    assert!(
        !err.to_string().contains(nacos_tests::postgres::PASSWORD),
        "{err}"
    );
    let mut wrong = db.datasource();
    wrong.nodes[0].password = "wrong-password".to_string();
    let err = PgStore::open(&wrong, &PgOptions::with_schema_init(true))
        .await
        .expect_err("wrong password");
    assert!(matches!(err, RepoError::Unavailable(_)), "{err}");
    assert!(!err.to_string().contains("wrong-password"), "{err}");
}

/// Several `db.url.N`: an unreachable first node is skipped for the next writable one.
#[tokio::test]
async fn first_reachable_writable_node_is_chosen() {
    let Some(server) = PgServer::shared_or_skip("first_writable_node") else {
        return;
    };
    let db = server.create_database();
    let mut config = db.datasource();
    let mut dead = config.nodes[0].clone();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    dead.url.port = Some(port);
    config.nodes.insert(0, dead);
    let store = PgStore::open(&config, &PgOptions::with_schema_init(true))
        .await
        .expect("opens on the second node");
    assert_eq!(
        store.node(),
        format!("127.0.0.1:{}/{}", server.port(), db.name())
    );
    let repos = store.clone().repos();
    repos
        .configs
        .publish(ConfigPublish {
            key: ConfigKey::new("", "G", "ha"),
            content: "works".to_string(),
            ..ConfigPublish::default()
        })
        .await
        .expect("publish through the writable node");
}

/// Several `db.url.N`: when the node in use turns read-only, the periodic re-check moves to
/// the next writable node, and writes land there.
#[tokio::test]
async fn moves_to_the_next_writable_node_when_the_current_one_turns_read_only() {
    let Some(server) = PgServer::shared_or_skip("failover_to_writable_node") else {
        return;
    };
    let first = server.create_database();
    let second = server.create_database();
    for db in [&first, &second] {
        PgStore::open(&db.datasource(), &PgOptions::with_schema_init(true))
            .await
            .expect("create the schema");
    }
    let mut config = first.datasource();
    config.nodes.push(second.datasource().nodes[0].clone());
    let options = PgOptions {
        check_interval: std::time::Duration::from_millis(100),
        ..PgOptions::default()
    };
    let store = PgStore::open(&config, &options).await.expect("open");
    let label = |db: &TestDatabase<'_>| format!("127.0.0.1:{}/{}", server.port(), db.name());
    assert_eq!(store.node(), label(&first), "the first writable node");

    first
        .psql(&format!(
            "ALTER DATABASE {} SET default_transaction_read_only = on",
            first.name()
        ))
        .expect("make the first node read-only");
    let started = std::time::Instant::now();
    while store.node() != label(&second) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "still on {} after {:?}",
            store.node(),
            started.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    store
        .clone()
        .repos()
        .configs
        .publish(ConfigPublish {
            key: ConfigKey::new("", "G", "after-failover"),
            content: "on the second node".to_string(),
            ..ConfigPublish::default()
        })
        .await
        .expect("publish after the switch");
    let count = |db: &TestDatabase<'_>| {
        db.psql("SELECT count(*) FROM config_info WHERE data_id = 'after-failover'")
            .expect("count")
    };
    assert_eq!(count(&second), "1");
    assert_eq!(count(&first), "0");
}

/// `sslmode`: `require` encrypts without checking the certificate, `verify-ca` checks its
/// chain, `verify-full` its chain and name, `disable` stays plain. (The test server's
/// certificate names `localhost` only.)
#[tokio::test]
async fn tls_modes_encrypt_and_check_as_asked() {
    let Some(server) = PgServer::shared_or_skip("tls_modes") else {
        return;
    };
    let Some(ca) = server.tls_ca() else {
        assert!(
            std::env::var(nacos_tests::postgres::REQUIRE_ENV).is_err(),
            "the test PostgreSQL runs without TLS (is openssl installed?)"
        );
        eprintln!("SKIPPED tls_modes: the test PostgreSQL runs without TLS (no openssl)");
        return;
    };
    let ca = ca.display().to_string();
    let db = server.create_database();
    PgStore::open(&db.datasource(), &PgOptions::with_schema_init(true))
        .await
        .expect("create the schema");
    let config = |host: &str, params: &str| {
        let mut config = db.datasource();
        config.nodes[0].url = nacos_core::datasource::JdbcUrl::parse(&format!(
            "jdbc:postgresql://{host}:{}/{}?{params}",
            server.port(),
            db.name()
        ))
        .expect("valid url");
        config
    };
    // Whether the sessions of an application name are encrypted, seen from the server.
    let encrypted = |app: &str| {
        db.psql(&format!(
            "SELECT coalesce(bool_and(s.ssl), false) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) \
             WHERE a.datname = current_database() AND a.application_name = '{app}'"
        ))
        .expect("pg_stat_ssl")
            == "t"
    };
    let key = ConfigKey::new("", "G", "tls");
    let works = async |host: &str, params: &str| {
        let store = PgStore::open(&config(host, params), &PgOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{host} {params}: {e}"));
        let repos = store.clone().repos();
        repos.configs.get(&key).await.expect("a query");
        store
    };

    let _require = works("127.0.0.1", "sslmode=require&ApplicationName=tls-require").await;
    assert!(encrypted("tls-require"), "require encrypts");
    let _full = works(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}&ApplicationName=tls-full"),
    )
    .await;
    assert!(encrypted("tls-full"), "verify-full encrypts");
    let _chain = works(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}&ApplicationName=tls-ca"),
    )
    .await;
    assert!(encrypted("tls-ca"), "verify-ca encrypts");
    let _plain = works("127.0.0.1", "sslmode=disable&ApplicationName=tls-off").await;
    assert!(!encrypted("tls-off"), "disable stays plain");

    let name_mismatch = PgStore::open(
        &config(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        &PgOptions::default(),
    )
    .await
    .expect_err("the certificate does not name 127.0.0.1");
    assert!(
        matches!(name_mismatch, RepoError::Unavailable(_)),
        "{name_mismatch}"
    );
    let unknown_ca = PgStore::open(&config("localhost", "ssl=true"), &PgOptions::default())
        .await
        .expect_err("the test CA is not a public root");
    assert!(
        matches!(unknown_ca, RepoError::Unavailable(_)),
        "{unknown_ca}"
    );
    assert!(
        unknown_ca
            .to_string()
            .to_lowercase()
            .contains("certificate"),
        "{unknown_ca}"
    );
}

/// The housekeeping lease is held by one store of a database at a time, kept by its holder,
/// and taken over by another store once the holder's session is gone; another database on
/// the same server has its own.
#[tokio::test]
async fn housekeeping_lease_is_exclusive_and_taken_over() {
    use nacos_core::ConfigRepo;
    let Some(server) = PgServer::shared_or_skip("housekeeping_lease") else {
        return;
    };
    let db = server.create_database();
    let first = PgStore::open(&db.datasource(), &PgOptions::with_schema_init(true))
        .await
        .expect("open");
    let second = PgStore::open(&db.datasource(), &PgOptions::default())
        .await
        .expect("open again");
    assert!(
        first.housekeeping_lease().await.expect("ask"),
        "free: taken"
    );
    assert!(!second.housekeeping_lease().await.expect("ask"), "held");
    assert!(first.housekeeping_lease().await.expect("ask"), "kept");
    let other_db = server.create_database();
    let other = PgStore::open(&other_db.datasource(), &PgOptions::with_schema_init(true))
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
