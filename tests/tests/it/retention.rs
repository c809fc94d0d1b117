//! Config history retention (`nacos.config.retention.days`) end to end: old history rows go,
//! newer ones and the formal configs stay, seen through the real history API; on a cluster
//! exactly one node purges (the Raft leader on an embedded cluster, the lease holder on a
//! shared database) and every node's history agrees afterwards.
//!
//! Time is injected through the retention task's own entry point ([`Retention::run_at`], the
//! code the timer runs) with a later "now"; on the database backends rows are also backdated
//! with SQL and left to the real timer.
//!
//! [`Retention::run_at`]: nacos_server::services::config::retention::Retention::run_at

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::cluster::all_up;
use crate::helpers::eventually;
use crate::support::{Storage, TestCluster, TestServer};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Wait until the clock is past the next whole second and return it: every earlier write is
/// stamped before it, even where the database keeps whole seconds.
async fn next_whole_second() -> i64 {
    let second = (now_ms() / 1000 + 1) * 1000;
    while now_ms() < second + 50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second
}

/// `base` is the server's `http://host:port/nacos`.
async fn publish(base: &str, data_id: &str, content: &str) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/cs/configs"))
        .form(&[("dataId", data_id), ("group", "R"), ("content", content)])
        .send()
        .await
        .expect("publish");
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
}

async fn read(base: &str, data_id: &str) -> String {
    let resp = reqwest::Client::new()
        .get(format!("{base}/v1/cs/configs?dataId={data_id}&group=R"))
        .send()
        .await
        .expect("get config");
    assert_eq!(resp.status(), 200, "{data_id} is still served");
    resp.text().await.expect("body")
}

/// The history of a key through `GET /v1/cs/history?search=accurate`: its nids, newest first.
async fn history(base: &str, data_id: &str) -> Vec<u64> {
    let resp = reqwest::Client::new()
        .get(format!(
            "{base}/v1/cs/history?search=accurate&dataId={data_id}&group=R&pageNo=1&pageSize=100"
        ))
        .send()
        .await
        .expect("history");
    assert_eq!(resp.status(), 200);
    let page: Value = resp.json().await.expect("history JSON");
    let items = page["pageItems"].as_array().expect("pageItems");
    // (`totalCount` is counted in a statement of its own: a purge running meanwhile, as the
    // timer's below, may make it differ from the page for a moment.)
    items
        .iter()
        .map(|item| {
            item["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .or_else(|| item["id"].as_u64())
                .expect("history id")
        })
        .collect()
}

/// The content a history row holds, through `GET /v1/cs/history?nid=`.
async fn history_content(base: &str, nid: u64) -> String {
    let resp = reqwest::Client::new()
        .get(format!(
            "{base}/v1/cs/history?nid={nid}&dataId=old.cfg&group=R"
        ))
        .send()
        .await
        .expect("history entry");
    assert_eq!(resp.status(), 200);
    let entry: Value = resp.json().await.expect("entry JSON");
    entry["content"].as_str().expect("content").to_string()
}

/// Old rows (`old.cfg` I and U, `keep.cfg` I) before the returned cutoff, new ones
/// (`old.cfg`'s second U, `new.cfg` I) after it.
async fn write_old_and_new(base: &str) -> i64 {
    publish(base, "old.cfg", "v1").await;
    publish(base, "old.cfg", "v2").await;
    publish(base, "keep.cfg", "k1").await;
    let cutoff = next_whole_second().await;
    publish(base, "old.cfg", "v3").await;
    publish(base, "new.cfg", "n1").await;
    cutoff
}

async fn purges_old_history_and_keeps_the_rest(storage: Storage, test: &str) {
    if storage.skip(test) {
        return;
    }
    let s = TestServer::start_on(
        storage,
        &[
            ("nacos.config.retention.days", "1"),
            ("nacos.config.retention.intervalMs", "200"),
        ],
    )
    .await;
    let base = s.url("");
    let cutoff = write_old_and_new(&base).await;
    let app = s.app();
    // The timer runs with the real clock: nothing is a day old yet.
    let runs = app.retention.stats().runs;
    eventually(Duration::from_secs(5), "a timer run", || async {
        app.retention.stats().runs > runs
    })
    .await;
    assert_eq!(history(&base, "old.cfg").await.len(), 3);
    assert_eq!(history(&base, "keep.cfg").await.len(), 1);

    let report = app
        .retention
        .run_at(cutoff + DAY_MS)
        .await
        .expect("purge as if a day had passed");
    assert!(report.ran, "a standalone server purges");
    assert_eq!(report.cutoff_ms, cutoff);
    assert_eq!(report.purged, 3, "old.cfg's I and first U, keep.cfg's I");

    let old = history(&base, "old.cfg").await;
    assert_eq!(old.len(), 1, "only the row written after the cutoff stays");
    assert_eq!(
        history_content(&base, old[0]).await,
        "v2",
        "the newest U row"
    );
    assert!(history(&base, "keep.cfg").await.is_empty());
    assert_eq!(history(&base, "new.cfg").await.len(), 1);
    assert_eq!(read(&base, "old.cfg").await, "v3", "formal configs stay");
    assert_eq!(read(&base, "keep.cfg").await, "k1");

    // A row the database says is three days old goes on the timer's next run, real clock.
    let backdate = match storage {
        Storage::Embedded => None,
        Storage::Mysql => Some(
            "UPDATE his_config_info SET gmt_modified = gmt_modified - INTERVAL 3 DAY \
             WHERE data_id = 'backdated.cfg'",
        ),
        Storage::Postgres => Some(
            "UPDATE his_config_info SET gmt_modified = gmt_modified - INTERVAL '3 days' \
             WHERE data_id = 'backdated.cfg'",
        ),
    };
    if let Some(sql) = backdate {
        publish(&base, "backdated.cfg", "b1").await;
        publish(&base, "backdated.cfg", "b2").await;
        s.sql(sql).expect("a database").expect("backdate");
        eventually(
            Duration::from_secs(5),
            "the timer purges the backdated rows",
            || {
                let base = base.clone();
                async move { history(&base, "backdated.cfg").await.is_empty() }
            },
        )
        .await;
        assert_eq!(read(&base, "backdated.cfg").await, "b2");
        assert_eq!(history(&base, "new.cfg").await.len(), 1, "new rows stay");
        assert_eq!(history(&base, "old.cfg").await.len(), 1);
    }
}

#[tokio::test]
async fn embedded_purges_old_history_and_keeps_the_rest() {
    purges_old_history_and_keeps_the_rest(Storage::Embedded, "embedded retention").await;
}

#[tokio::test]
async fn mysql_purges_old_history_and_keeps_the_rest() {
    purges_old_history_and_keeps_the_rest(Storage::Mysql, "mysql retention").await;
}

#[tokio::test]
async fn postgres_purges_old_history_and_keeps_the_rest() {
    purges_old_history_and_keeps_the_rest(Storage::Postgres, "postgres retention").await;
}

/// `nacos.config.retention.days=0` keeps every row, whatever the clock says.
#[tokio::test]
async fn zero_days_keeps_every_row() {
    let s = TestServer::start_with(&[("nacos.config.retention.days", "0")]).await;
    let base = s.url("");
    publish(&base, "old.cfg", "v1").await;
    publish(&base, "old.cfg", "v2").await;
    let report = s
        .app()
        .retention
        .run_at(now_ms() + 3650 * DAY_MS)
        .await
        .expect("run");
    assert!(!report.ran);
    assert_eq!(history(&base, "old.cfg").await.len(), 2);
}

/// Every node of a cluster is asked to purge at once: exactly one does (the Raft leader, or
/// the holder of the database lock), and keeps doing so; every node then shows the same
/// history. When that node stops, exactly one of the others takes over.
async fn one_node_purges_and_all_agree(storage: Storage, nodes: usize, test: &str) {
    if storage.skip(test) {
        return;
    }
    let mut cluster =
        TestCluster::start(storage, nodes, &[("nacos.config.retention.days", "1")]).await;
    all_up(&cluster).await;
    let bases: Vec<String> = (0..nodes).map(|i| cluster.node(i).url("")).collect();
    let cutoff = write_old_and_new(&bases[nodes - 1]).await;
    for base in &bases {
        eventually(Duration::from_secs(10), "history on every node", || async {
            history(base, "old.cfg").await.len() == 3 && history(base, "new.cfg").await.len() == 1
        })
        .await;
    }

    let mut purger = usize::MAX;
    for round in 0..2 {
        // Started together, so no node sees another's finished run first.
        let runs: Vec<_> = (0..nodes)
            .map(|i| {
                let app = cluster.node(i).app();
                tokio::spawn(async move {
                    app.retention
                        .run_at(cutoff + DAY_MS)
                        .await
                        .expect("purge run")
                })
            })
            .collect();
        let mut reports = Vec::new();
        for run in runs {
            reports.push(run.await.expect("run task"));
        }
        let ran: Vec<usize> = (0..nodes).filter(|i| reports[*i].ran).collect();
        assert_eq!(
            ran.len(),
            1,
            "round {round}: exactly one node purges: {reports:?}"
        );
        purger = ran[0];
        if let Some(raft) = &cluster.node(purger).app().raft {
            assert_eq!(
                raft.status().role,
                "Leader",
                "the purger is the Raft leader"
            );
        }
        let expected = if round == 0 { 3 } else { 0 };
        assert_eq!(reports[purger].purged, expected, "round {round}");
        let stats: Vec<u64> = (0..nodes)
            .map(|i| cluster.node(i).app().retention.stats().runs)
            .collect();
        assert_eq!(stats.iter().sum::<u64>(), round + 1, "{stats:?}");
        assert_eq!(
            stats[purger],
            round + 1,
            "the same node purges again: {stats:?}"
        );
    }

    let mut views = Vec::new();
    for base in &bases {
        eventually(
            Duration::from_secs(10),
            "the purge reached every node",
            || async {
                history(base, "old.cfg").await.len() == 1
                    && history(base, "keep.cfg").await.is_empty()
            },
        )
        .await;
        views.push((
            history(base, "old.cfg").await,
            history(base, "new.cfg").await,
        ));
        assert_eq!(read(base, "old.cfg").await, "v3");
        assert_eq!(read(base, "keep.cfg").await, "k1");
    }
    assert!(
        views.windows(2).all(|w| w[0] == w[1]),
        "every node's history agrees: {views:?}"
    );
    assert_eq!(history_content(&bases[0], views[0].0[0]).await, "v2");

    // The purger goes (its Raft leadership, or its database session, with it).
    cluster.stop(purger).await;
    let rest: Vec<usize> = (0..nodes).filter(|i| *i != purger).collect();
    let started = std::time::Instant::now();
    let successor = loop {
        let mut ran = Vec::new();
        for i in &rest {
            let app = cluster.node(*i).app();
            if app
                .retention
                .run_at(cutoff + DAY_MS)
                .await
                .expect("run")
                .ran
            {
                ran.push(*i);
            }
        }
        assert!(ran.len() <= 1, "never two purgers: {ran:?}");
        if let Some(i) = ran.first() {
            break *i;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no node took over the purge"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if let Some(raft) = &cluster.node(successor).app().raft {
        assert_eq!(raft.status().role, "Leader", "the new leader purges");
    }
}

#[tokio::test]
async fn embedded_cluster_leader_alone_purges_and_replicas_agree() {
    one_node_purges_and_all_agree(Storage::Embedded, 3, "embedded cluster retention").await;
}

#[tokio::test]
async fn mysql_cluster_lock_holder_alone_purges() {
    one_node_purges_and_all_agree(Storage::Mysql, 2, "mysql cluster retention").await;
}

#[tokio::test]
async fn postgres_cluster_lock_holder_alone_purges() {
    one_node_purges_and_all_agree(Storage::Postgres, 2, "postgres cluster retention").await;
}

/// A bad `nacos.config.retention.days` stops the start, naming the property.
#[test]
fn bad_retention_days_stop_the_start() {
    use nacos_server::cli::Mode;
    use nacos_server::settings::Properties;
    for bad in ["-1", "thirty", "2.5"] {
        let err = nacos_server::Settings::from_properties(
            Mode::Standalone,
            ".".into(),
            Properties::from_pairs([("nacos.config.retention.days", bad)]),
        )
        .expect_err(bad)
        .to_string();
        assert!(
            err.contains("nacos.config.retention.days") && err.contains(bad),
            "{err}"
        );
    }
}
