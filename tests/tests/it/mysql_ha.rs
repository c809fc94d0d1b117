//! MySQL high availability, end to end: a server on two private MariaDB servers — a primary and
//! a read-only replica fed by real GTID replication, semi-synchronous so that a commit the
//! primary acknowledges is already on the replica — under a steady publish load. The primary is
//! killed with SIGKILL; reads keep working (configs no client read before, from the cache the
//! server keeps loaded or from the replica), writes answer 503 at once, readiness says the
//! storage is down; the replica is promoted (`SET GLOBAL read_only=OFF` once it has applied what
//! it received) and the server switches to it without a restart. Afterwards every publish that
//! was acknowledged with 200 is in the new primary. Skipped loudly where MariaDB is absent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nacos_tests::mariadb::{self, MariaDb, ServerOptions};
use reqwest::StatusCode;
use tokio::sync::Mutex;

use crate::support::TestServer;

/// What the writer saw.
#[derive(Debug, Default)]
struct Outcomes {
    /// dataIds whose publish answered 200 "true", with the content sent.
    acknowledged: Vec<(String, String)>,
    /// When each 503 came, and how long it took to answer.
    unavailable: Vec<(Instant, Duration)>,
    /// Any other answer (status, body).
    other: Vec<(StatusCode, String)>,
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn status_of(s: &TestServer, path: &str, query: &[(&str, &str)]) -> (StatusCode, String) {
    let resp = s
        .client
        .get(s.url(path))
        .query(query)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("request");
    (resp.status(), resp.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_a_promoted_replica_loses_no_acknowledged_write() {
    if mariadb::available().is_none() {
        return;
    }
    let setup = tokio::task::spawn_blocking(|| {
        let primary = MariaDb::start(&ServerOptions {
            server_id: 1,
            semi_sync_primary: true,
            ..ServerOptions::default()
        })
        .expect("start the primary");
        let replica = MariaDb::start(&ServerOptions {
            server_id: 2,
            semi_sync_replica: true,
            read_only: true,
            ..ServerOptions::default()
        })
        .expect("start the replica");
        replica.replicate_from(&primary).expect("replicate");
        wait_for(
            "semi-sync replica connected",
            Duration::from_secs(20),
            || {
                primary
                    .sql(None, "SHOW STATUS LIKE 'Rpl_semi_sync_master_clients'")
                    .is_ok_and(|out| out.ends_with("\t1"))
            },
        );
        primary
            .sql(
                None,
                "CREATE DATABASE nt_ha CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            )
            .expect("create the database");
        wait_for("database replicated", Duration::from_secs(20), || {
            replica
                .sql(None, "SHOW DATABASES LIKE 'nt_ha'")
                .is_ok_and(|out| out.trim() == "nt_ha")
        });
        (primary, replica)
    });
    let (primary, replica) = setup.await.expect("setup task");
    let (primary, replica) = (Arc::new(primary), Arc::new(replica));

    let props = vec![
        ("spring.sql.init.platform".to_string(), "mysql".to_string()),
        ("db.num".to_string(), "2".to_string()),
        (
            "db.url.0".to_string(),
            primary.jdbc_url("nt_ha", 500, 3_000),
        ),
        (
            "db.url.1".to_string(),
            replica.jdbc_url("nt_ha", 500, 3_000),
        ),
        ("db.user".to_string(), mariadb::USER.to_string()),
        ("db.password".to_string(), mariadb::PASSWORD.to_string()),
        (
            "db.pool.config.connectionTimeout".to_string(),
            "1000".to_string(),
        ),
        ("nacos.db.schema.init".to_string(), "true".to_string()),
        ("nacos.db.ha.checkIntervalMs".to_string(), "200".to_string()),
    ];
    let pairs: Vec<(&str, &str)> = props
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let s = Arc::new(TestServer::start_with(&pairs).await);

    // Metrics name the primary: db.url.0 at start.
    let m = crate::metrics::scrape(&s).await;
    assert_eq!(m.get("nacos_db_nodes", &[("backend", "mysql")]), Some(2.0));
    assert_eq!(m.get("nacos_db_primary", &[("node", "0")]), Some(1.0));
    assert_eq!(m.get("nacos_db_primary", &[("node", "1")]), Some(0.0));
    assert_eq!(m.get("nacos_db_failovers_total", &[]), Some(0.0));

    // A config every client reads: cached before the outage.
    let resp = s
        .client
        .post(s.url("/v1/cs/configs"))
        .form(&[("dataId", "hot"), ("group", "HA"), ("content", "hot-v1")])
        .send()
        .await
        .expect("publish hot");
    assert_eq!(resp.text().await.expect("body"), "true");
    assert_eq!(
        status_of(&s, "/v1/cs/configs", &[("dataId", "hot"), ("group", "HA")]).await,
        (StatusCode::OK, "hot-v1".to_string())
    );

    // The load: one publish after another, each a new key, recording every answer.
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (s, outcomes, stop) = (Arc::clone(&s), Arc::clone(&outcomes), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) && i < 5_000 {
                let data_id = format!("load-{i}");
                let content = format!("value-{i}");
                let sent = Instant::now();
                let resp = s
                    .client
                    .post(s.url("/v1/cs/configs"))
                    .form(&[
                        ("dataId", data_id.as_str()),
                        ("group", "HA"),
                        ("content", content.as_str()),
                    ])
                    .timeout(Duration::from_secs(15))
                    .send()
                    .await;
                let mut o = outcomes.lock().await;
                match resp {
                    Ok(r) => {
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        if status == StatusCode::OK && body == "true" {
                            o.acknowledged.push((data_id, content));
                        } else if status == StatusCode::SERVICE_UNAVAILABLE {
                            o.unavailable.push((Instant::now(), sent.elapsed()));
                        } else {
                            o.other.push((status, body));
                        }
                    }
                    Err(e) => o.other.push((StatusCode::IM_A_TEAPOT, e.to_string())),
                }
                drop(o);
                i += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    // Let some writes land, then crash the primary.
    let started = Instant::now();
    while outcomes.lock().await.acknowledged.len() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the load never got going: {:?}",
            outcomes.lock().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let victim = Arc::clone(&primary);
    tokio::task::spawn_blocking(move || victim.kill())
        .await
        .expect("kill task")
        .expect("kill the primary");
    let killed_at = Instant::now();

    // Writes fail clearly (503), and fast once the server knows there is no primary.
    let started = Instant::now();
    loop {
        let o = outcomes.lock().await;
        if o.unavailable
            .iter()
            .filter(|(at, _)| *at > killed_at)
            .count()
            >= 3
        {
            break;
        }
        drop(o);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no 503 after the primary died"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    {
        let o = outcomes.lock().await;
        let fast = o
            .unavailable
            .iter()
            .filter(|(_, took)| *took < Duration::from_millis(200))
            .count();
        assert!(fast >= 1, "writes do not fail fast: {:?}", o.unavailable);
    }
    // Metrics show no node taking writes (the storage stats count the failed publishes).
    let m = crate::metrics::scrape(&s).await;
    assert_eq!(m.get("nacos_db_writable", &[]), Some(0.0));
    assert_eq!(m.get("nacos_db_primary", &[("node", "0")]), Some(0.0));
    let failed = m.get(
        "nacos_storage_errors_total",
        &[("backend", "mysql"), ("op", "config_publish")],
    );
    assert!(
        failed.is_some_and(|n| n >= 1.0),
        "failed publishes: {failed:?}"
    );
    // Reads keep working: the cached key, keys published before the crash that no client
    // ever read (loaded into the cache after each write, else answered by the replica), an
    // absent key (404, from the replica), and a long poll. Readiness reports the outage.
    assert_eq!(
        status_of(&s, "/v1/cs/configs", &[("dataId", "hot"), ("group", "HA")]).await,
        (StatusCode::OK, "hot-v1".to_string()),
        "a cached config is served while the database is down"
    );
    let never_read: Vec<(String, String)> = outcomes
        .lock()
        .await
        .acknowledged
        .iter()
        .take(20)
        .cloned()
        .collect();
    for (data_id, content) in &never_read {
        assert_eq!(
            status_of(
                &s,
                "/v1/cs/configs",
                &[("dataId", data_id), ("group", "HA")]
            )
            .await,
            (StatusCode::OK, content.clone()),
            "a config nobody read before the primary died"
        );
    }
    let (status, body) = status_of(
        &s,
        "/v1/cs/configs",
        &[("dataId", "never-written"), ("group", "HA")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (first_id, _) = &never_read[0];
    let listening = format!("{first_id}\u{2}HA\u{2}stale-md5\u{1}");
    let resp = s
        .client
        .post(s.url("/v1/cs/configs/listener"))
        .header("Long-Pulling-Timeout", "3000")
        .form(&[("Listening-Configs", listening.as_str())])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("long poll during the outage");
    assert_eq!(resp.status(), StatusCode::OK);
    let changed = resp.text().await.expect("body");
    assert!(
        changed.contains(first_id.as_str()),
        "a long poll with a stale md5 names the key at once: {changed:?}"
    );
    let (status, body) = status_of(&s, "/v1/console/health/readiness", &[]).await;
    assert_ne!(status, StatusCode::OK, "readiness while down: {body}");
    // A write to the hot key fails; the cached copy stays.
    let resp = s
        .client
        .post(s.url("/v1/cs/configs"))
        .form(&[("dataId", "hot"), ("group", "HA"), ("content", "hot-v2")])
        .send()
        .await
        .expect("publish during outage");
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        status_of(&s, "/v1/cs/configs", &[("dataId", "hot"), ("group", "HA")]).await,
        (StatusCode::OK, "hot-v1".to_string()),
        "a failed write does not evict the cached copy"
    );

    // Promote the replica; the server follows by itself.
    let promoted = Arc::clone(&replica);
    tokio::task::spawn_blocking(move || promoted.promote(Duration::from_secs(20)))
        .await
        .expect("promote task")
        .expect("promote the replica");
    let promoted_at = Instant::now();
    let started = Instant::now();
    loop {
        let before = outcomes.lock().await.acknowledged.len();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let o = outcomes.lock().await;
        if o.acknowledged.len() >= before + 3 {
            break;
        }
        drop(o);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "writes did not resume after the promotion"
        );
    }
    let resumed_after = promoted_at.elapsed();
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer");
    let (status, body) = status_of(&s, "/v1/console/health/readiness", &[]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "readiness after the promotion: {body}"
    );
    // Metrics follow: db.url.1 takes writes now, after one failover.
    let m = crate::metrics::scrape(&s).await;
    assert_eq!(m.get("nacos_db_primary", &[("node", "0")]), Some(0.0));
    assert_eq!(m.get("nacos_db_primary", &[("node", "1")]), Some(1.0));
    assert_eq!(m.get("nacos_db_writable", &[]), Some(1.0));
    assert_eq!(m.get("nacos_db_failovers_total", &[]), Some(1.0));
    let resp = s
        .client
        .post(s.url("/v1/cs/configs"))
        .form(&[("dataId", "hot"), ("group", "HA"), ("content", "hot-v3")])
        .send()
        .await
        .expect("publish after");
    assert_eq!(resp.text().await.expect("body"), "true");
    assert_eq!(
        status_of(&s, "/v1/cs/configs", &[("dataId", "hot"), ("group", "HA")]).await,
        (StatusCode::OK, "hot-v3".to_string())
    );

    // Every acknowledged publish is in the new primary, and served.
    let o = outcomes.lock().await;
    assert!(o.other.is_empty(), "unexpected answers: {:?}", o.other);
    let stored = replica
        .sql(
            Some("nt_ha"),
            "SELECT CONCAT(data_id, '=', content) FROM config_info WHERE group_id = 'HA'",
        )
        .expect("read the new primary");
    let stored: std::collections::HashSet<&str> = stored.lines().collect();
    let missing: Vec<&(String, String)> = o
        .acknowledged
        .iter()
        .filter(|(id, content)| !stored.contains(format!("{id}={content}").as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but lost: {missing:?} (of {})",
        o.acknowledged.len()
    );
    for (data_id, content) in o.acknowledged.iter().step_by(7) {
        assert_eq!(
            status_of(
                &s,
                "/v1/cs/configs",
                &[("dataId", data_id), ("group", "HA")]
            )
            .await,
            (StatusCode::OK, content.clone())
        );
    }
    eprintln!(
        "mysql_ha: {} acknowledged, {} answered 503 during the outage, writes resumed {:?} \
         after the promotion",
        o.acknowledged.len(),
        o.unavailable.len(),
        resumed_after
    );
    drop(o);
    drop(s);
}

/// A store on `db.url.0` = `primary`, `db.url.1` = `replica` (database `nt_ro`).
async fn open_pair(
    primary: &MariaDb,
    replica: &MariaDb,
    read_from_replicas: bool,
) -> Arc<nacos_storage_mysql::MysqlStore> {
    let props = [
        ("db.num", "2".to_string()),
        ("db.url.0", primary.jdbc_url("nt_ro", 1_000, 5_000)),
        ("db.url.1", replica.jdbc_url("nt_ro", 1_000, 5_000)),
        ("db.user", mariadb::USER.to_string()),
        ("db.password", mariadb::PASSWORD.to_string()),
    ];
    let get = |key: &str| {
        props
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    };
    let config =
        nacos_core::datasource::DataSourceConfig::from_properties(&get).expect("valid data source");
    let options = nacos_storage_mysql::MysqlOptions {
        schema_init: true,
        read_from_replicas,
        ..nacos_storage_mysql::MysqlOptions::default()
    };
    nacos_storage_mysql::MysqlStore::open(config, options)
        .await
        .expect("open the store")
}

/// `nacos.db.readFromReplicas=true` sends console reads (search, history) to a read-only
/// replica, which may lag; reads that fill the server's cache (`get`) and every write use the
/// primary. Without the property every read uses the primary.
#[tokio::test]
async fn console_reads_use_a_replica_only_when_asked() {
    if mariadb::available().is_none() {
        return;
    }
    let (primary, replica) = tokio::task::spawn_blocking(|| {
        let primary = MariaDb::start(&ServerOptions {
            server_id: 11,
            ..ServerOptions::default()
        })
        .expect("start the primary");
        let replica = MariaDb::start(&ServerOptions {
            server_id: 12,
            read_only: true,
            ..ServerOptions::default()
        })
        .expect("start the replica");
        replica.replicate_from(&primary).expect("replicate");
        primary
            .sql(
                None,
                "CREATE DATABASE nt_ro CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            )
            .expect("create the database");
        wait_for("database replicated", Duration::from_secs(20), || {
            replica
                .sql(None, "SHOW DATABASES LIKE 'nt_ro'")
                .is_ok_and(|out| out.trim() == "nt_ro")
        });
        (primary, replica)
    })
    .await
    .expect("setup task");

    let spread = open_pair(&primary, &replica, true).await;
    let single = open_pair(&primary, &replica, false).await;
    let topology = spread.topology();
    assert_eq!(topology.primary, Some(0), "{topology:?}");
    assert_eq!(topology.replicas, vec![1], "{topology:?}");
    let (spread_repos, single_repos) = (Arc::clone(&spread).repos(), Arc::clone(&single).repos());

    let first = nacos_core::ConfigKey::new("", "RO", "first");
    spread_repos
        .configs
        .publish(nacos_conformance::fixtures::publish(&first, "1"))
        .await
        .expect("publish first");
    wait_for("first replicated", Duration::from_secs(20), || {
        replica
            .sql(
                Some("nt_ro"),
                "SELECT COUNT(*) FROM config_info WHERE data_id = 'first'",
            )
            .is_ok_and(|n| n == "1")
    });
    // From now on the replica lags.
    replica
        .sql(None, "STOP SLAVE SQL_THREAD")
        .expect("pause the replica");
    let second = nacos_core::ConfigKey::new("", "RO", "second");
    spread_repos
        .configs
        .publish(nacos_conformance::fixtures::publish(&second, "2"))
        .await
        .expect("writes go to the primary");

    let ids = |page: nacos_core::Page<nacos_core::ConfigItem>| -> Vec<String> {
        page.items.into_iter().map(|c| c.key.data_id).collect()
    };
    let query = nacos_core::ConfigQuery::namespace("", nacos_core::PageRequest::new(1, 10));
    assert_eq!(
        ids(spread_repos.configs.search(&query).await.expect("search")),
        ["first"],
        "the search was answered by the (lagging) replica"
    );
    assert_eq!(
        ids(single_repos.configs.search(&query).await.expect("search")),
        ["first", "second"],
        "without the property the primary answers"
    );
    assert!(
        spread_repos
            .configs
            .get(&second)
            .await
            .expect("get")
            .is_some(),
        "a get (which fills the cache) reads the primary"
    );

    // The primary lost: writes fail, every read (the primary-only ones too) goes to the
    // replica, which still lacks what it had not applied.
    tokio::task::spawn_blocking({
        let primary = Arc::new(primary);
        move || primary.kill()
    })
    .await
    .expect("kill task")
    .expect("kill the primary");
    let topology = single.refresh().await;
    assert_eq!(topology.primary, None, "{topology:?}");
    assert_eq!(topology.replicas, vec![1], "{topology:?}");
    assert!(
        single_repos
            .configs
            .get(&first)
            .await
            .expect("get")
            .is_some(),
        "the replica answers a read the primary would have"
    );
    assert!(
        single_repos
            .configs
            .get(&second)
            .await
            .expect("get")
            .is_none(),
        "the lagging replica has not applied the second publish"
    );
    let third = nacos_core::ConfigKey::new("", "RO", "third");
    let refused = single_repos
        .configs
        .publish(nacos_conformance::fixtures::publish(&third, "3"))
        .await;
    assert!(
        matches!(refused, Err(nacos_core::RepoError::Unavailable(_))),
        "{refused:?}"
    );
    drop((spread_repos, single_repos, spread, single));
    drop(replica);
}

/// With one database and no replica, a config stays servable after the database dies: the
/// server loads every config into its cache at start (those written before it started) and
/// again after each change (those written since), though no client read them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_nobody_read_survive_the_only_database() {
    if mariadb::available().is_none() {
        return;
    }
    let db = tokio::task::spawn_blocking(|| {
        let db = MariaDb::start(&ServerOptions::default()).expect("start MariaDB");
        db.sql(
            None,
            "CREATE DATABASE nt_solo CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        )
        .expect("create the database");
        db
    })
    .await
    .expect("setup task");
    let props = [
        ("spring.sql.init.platform", "mysql".to_string()),
        ("db.num", "1".to_string()),
        ("db.url.0", db.jdbc_url("nt_solo", 500, 3_000)),
        ("db.user", mariadb::USER.to_string()),
        ("db.password", mariadb::PASSWORD.to_string()),
        ("db.pool.config.connectionTimeout", "1000".to_string()),
        ("nacos.db.schema.init", "true".to_string()),
    ];
    let pairs: Vec<(&str, &str)> = props.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let publish = |s: &TestServer, data_id: String, content: String| {
        let request = s
            .client
            .post(s.url("/v1/cs/configs"))
            .form(&[
                ("dataId", data_id.as_str()),
                ("group", "SOLO"),
                ("content", content.as_str()),
            ])
            .send();
        async move {
            let resp = request.await.expect("publish");
            assert_eq!(
                resp.text().await.expect("body"),
                "true",
                "publish {data_id}"
            );
        }
    };

    // Written before this server starts: loaded at start.
    let mut before = TestServer::start_with(&pairs).await;
    for i in 0..30 {
        publish(&before, format!("old-{i}"), format!("old value {i}")).await;
    }
    before.stop().await;
    let s = TestServer::start_with(&pairs).await;
    // Written while it runs: loaded after each write.
    for i in 0..30 {
        publish(&s, format!("new-{i}"), format!("new value {i}")).await;
    }
    let app = s.app();
    let keys: Vec<nacos_core::ConfigKey> = ["old", "new"]
        .iter()
        .flat_map(|p| {
            (0..30).map(move |i| nacos_core::ConfigKey::new("", "SOLO", format!("{p}-{i}")))
        })
        .collect();
    let uncached = || -> Vec<String> {
        keys.iter()
            .filter(|k| !app.config.is_cached(k))
            .map(|k| k.data_id.clone())
            .collect()
    };
    let started = std::time::Instant::now();
    while !uncached().is_empty() && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(uncached().is_empty(), "not cached: {:?}", uncached());

    let victim = Arc::new(db);
    tokio::task::spawn_blocking({
        let victim = Arc::clone(&victim);
        move || victim.kill()
    })
    .await
    .expect("kill task")
    .expect("kill the database");
    for (prefix, word) in [("old", "old value"), ("new", "new value")] {
        for i in 0..30 {
            assert_eq!(
                status_of(
                    &s,
                    "/v1/cs/configs",
                    &[("dataId", &format!("{prefix}-{i}")), ("group", "SOLO")]
                )
                .await,
                (StatusCode::OK, format!("{word} {i}")),
                "{prefix}-{i} while the database is down"
            );
        }
    }
    let resp = s
        .client
        .post(s.url("/v1/cs/configs"))
        .form(&[("dataId", "old-1"), ("group", "SOLO"), ("content", "x")])
        .send()
        .await
        .expect("publish during the outage");
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    drop(s);
    drop(before);
}
