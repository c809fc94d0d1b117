//! Cluster benchmark: HTTP v1 config publishes per second (and p50/p99 latency) at 1, 16 and 64
//! clients in flight on a 3-node embedded Raft cluster (fsync on), written to the leader and to a
//! follower, beside a standalone embedded node (the reference, fsync on every write); and the
//! time from a publish on one node to the notification of a listener on another (a v1 long
//! poll, and the nacos-sdk config listener over gRPC), beside both on one standalone node.
//! The same on a 3-node cluster over one shared MySQL database (a private MariaDB started for
//! the run, tuned for tests: `innodb_flush_log_at_trx_commit=2`), beside a standalone node on
//! MySQL; skipped with a note where MariaDB is not installed.
//! Run: `cargo bench -p nacos-tests --bench cluster`.
//!
//! Environment: `BENCH_SECS` (default 2) per publish row, `BENCH_CLIENTS` (default `1,16,64`),
//! `BENCH_ROUNDS` (default 50) publish → notification rounds per row, `BENCH_MYSQL=0` skips the
//! MySQL rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nacos_sdk::api::config::{ConfigChangeListener, ConfigResponse, ConfigServiceBuilder};
use nacos_sdk::api::props::ClientProps;
use nacos_server::cli::Mode;
use nacos_server::settings::Properties;
use nacos_server::{App, Listeners, Settings};
use tokio::sync::{mpsc, oneshot};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Nodes in this process

/// One running node: HTTP on `port`, client gRPC on `port + 1000`.
struct Node {
    port: u16,
    app: Arc<App>,
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Node {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/nacos{path}", self.port)
    }

    /// Whether this node is the Raft leader (embedded clusters only).
    fn is_leader(&self) -> bool {
        let raft_addr = format!("127.0.0.1:{}", self.port - 1000);
        self.app
            .raft
            .as_ref()
            .and_then(|r| r.status().leader)
            .is_some_and(|leader| leader == raft_addr)
    }
}

/// Gracefully stop every node, together (a Raft node's stop may wait on its peers).
async fn stop(nodes: Vec<Node>) {
    let tasks: Vec<_> = nodes
        .into_iter()
        .map(|n| {
            let _ = n.shutdown.send(());
            n.task
        })
        .collect();
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
}

/// HTTP `p`, client gRPC `p + 1000`, and for a cluster node cluster gRPC `p + 1001` and
/// (embedded) Raft `p - 1000`, all bound on loopback.
async fn bind_node(cluster: bool, raft: bool) -> (u16, Listeners) {
    let bind = |port: u16| async move { tokio::net::TcpListener::bind(("127.0.0.1", port)).await };
    for _ in 0..100 {
        let http = bind(0).await.expect("bind port 0");
        let port = http.local_addr().expect("local addr").port();
        let (Some(grpc), Some(peer), Some(raft_port)) = (
            port.checked_add(1000),
            port.checked_add(1001),
            port.checked_sub(1000),
        ) else {
            continue;
        };
        let Ok(grpc) = bind(grpc).await else { continue };
        let cluster = match cluster {
            true => match bind(peer).await {
                Ok(l) => Some(l),
                Err(_) => continue,
            },
            false => None,
        };
        let raft = match raft {
            true => match bind(raft_port).await {
                Ok(l) => Some(l),
                Err(_) => continue,
            },
            false => None,
        };
        let listeners = Listeners {
            http,
            grpc,
            cluster,
            raft,
        };
        return (port, listeners);
    }
    panic!("no free port set for a node after 100 tries");
}

async fn launch(
    mode: Mode,
    home: &std::path::Path,
    props: Vec<(String, String)>,
    port: u16,
    listeners: Listeners,
) -> Node {
    let settings =
        Settings::from_properties(mode, home.to_path_buf(), Properties::from_pairs(props))
            .expect("settings");
    let app = App::open(settings).await.expect("open");
    let (shutdown, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(nacos_server::run(listeners, Arc::clone(&app), async move {
        let _ = rx.await;
    }));
    Node {
        port,
        app,
        shutdown,
        task,
    }
}

async fn start_standalone(home: &std::path::Path, props: Vec<(String, String)>) -> Node {
    let (port, listeners) = bind_node(false, false).await;
    launch(Mode::Standalone, home, props, port, listeners).await
}

/// Three nodes on loopback sharing one member list; `db` are a shared database's properties,
/// or empty for embedded storage replicated by Raft.
async fn start_cluster(homes: &[tempfile::TempDir], db: Vec<(String, String)>) -> Vec<Node> {
    let raft = db.is_empty();
    let mut bound = Vec::new();
    for _ in homes {
        bound.push(bind_node(true, raft).await);
    }
    let list = bound
        .iter()
        .map(|(p, _)| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut props = db;
    if raft {
        props.push(("embeddedStorage".to_string(), "true".to_string()));
    }
    props.push(("nacos.member.list".to_string(), list));
    props.push(("nacos.inetutils.ip-address".to_string(), "127.0.0.1".into()));
    // Started together: an embedded node waits for its peers to form a quorum.
    let starts: Vec<_> = bound
        .into_iter()
        .zip(homes)
        .map(|((port, listeners), home)| {
            let mut props = props.clone();
            props.push(("server.port".to_string(), port.to_string()));
            let home = home.path().to_path_buf();
            tokio::spawn(async move { launch(Mode::Cluster, &home, props, port, listeners).await })
        })
        .collect();
    let mut nodes = Vec::new();
    for start in starts {
        nodes.push(start.await.expect("node start task"));
    }
    nodes
}

/// Wait until every node answers readiness 200 and lists every member UP.
async fn wait_ready(client: &reqwest::Client, nodes: &[Node]) {
    let started = Instant::now();
    for node in nodes {
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "node {} not ready after 60 s",
                node.port
            );
            let ready = client
                .get(node.url("/v1/console/health/readiness"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            let members: serde_json::Value =
                match client.get(node.url("/v1/core/cluster/nodes")).send().await {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => serde_json::Value::Null,
                };
            let up = members["data"].as_array().is_none_or(|list| {
                list.len() == nodes.len() && list.iter().all(|m| m["state"] == "UP")
            });
            if ready && (nodes.len() == 1 || up) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Measurements

async fn publish(client: &reqwest::Client, node: &Node, data_id: &str, content: &str) -> bool {
    client
        .post(node.url("/v1/cs/configs"))
        .form(&[
            ("dataId", data_id),
            ("group", "BENCH"),
            ("content", content),
        ])
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

fn percentile(sorted: &[Duration], p: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = (sorted.len() * p).div_ceil(100).saturating_sub(1);
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

struct Rate {
    per_sec: f64,
    p50: f64,
    p99: f64,
    errors: usize,
}

/// `clients` tasks, each publishing new content to its own key over one keep-alive client, for
/// a 0.5 s warm-up and then `secs`; publishes/s and latency over the measured window.
async fn publish_rate(
    client: &reqwest::Client,
    node: &Node,
    tag: &str,
    clients: u64,
    secs: u64,
) -> Rate {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, stop) = (client.clone(), stop.clone());
        let url = node.url("/v1/cs/configs");
        let data_id = format!("bench-{tag}-{clients}-{c}");
        tasks.push(tokio::spawn(async move {
            // (completed at, latency, success)
            let mut done: Vec<(Instant, Duration, bool)> = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let content = format!("value-{n}");
                let sent = Instant::now();
                let ok = client
                    .post(&url)
                    .form(&[
                        ("dataId", data_id.as_str()),
                        ("group", "BENCH"),
                        ("content", content.as_str()),
                    ])
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                let now = Instant::now();
                done.push((now, now - sent, ok));
            }
            done
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let from = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let to = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        for (at, latency, ok) in t.await.expect("client task") {
            if at < from || at > to {
                continue;
            }
            if ok {
                latencies.push(latency);
            } else {
                errors += 1;
            }
        }
    }
    latencies.sort();
    Rate {
        per_sec: latencies.len() as f64 / (to - from).as_secs_f64(),
        p50: percentile(&latencies, 50),
        p99: percentile(&latencies, 99),
        errors,
    }
}

struct Spread {
    p50: f64,
    p99: f64,
    max: f64,
    misses: usize,
}

fn spread(mut samples: Vec<Duration>, misses: usize) -> Spread {
    samples.sort();
    Spread {
        p50: percentile(&samples, 50),
        p99: percentile(&samples, 99),
        max: samples
            .last()
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        misses,
    }
}

/// Wait until `node` serves `content` for `data_id` (the listener's starting point).
async fn wait_content(client: &reqwest::Client, node: &Node, data_id: &str, content: &str) {
    let url = node.url(&format!("/v1/cs/configs?dataId={data_id}&group=BENCH"));
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(&url).send().await
            && r.status().is_success()
            && r.text().await.is_ok_and(|t| t == content)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{data_id} did not reach node {}",
            node.port
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `rounds` times: a v1 long poll on `on` for the current content, a publish on `from`; the
/// time from the publish's start to the long poll's answer.
async fn long_poll_latency(
    client: &reqwest::Client,
    from: &Node,
    on: &Node,
    tag: &str,
    rounds: u64,
) -> Spread {
    let data_id = format!("bench-notify-lp-{tag}");
    let mut content = "round-0".to_string();
    assert!(publish(client, from, &data_id, &content).await, "publish");
    wait_content(client, on, &data_id, &content).await;
    let mut samples = Vec::new();
    let mut misses = 0;
    for round in 1..=rounds {
        let listening = format!(
            "{data_id}\u{2}BENCH\u{2}{}\u{1}",
            nacos_core::md5_hex(&content)
        );
        let poll = client
            .post(on.url("/v1/cs/configs/listener"))
            .header("Long-Pulling-Timeout", "30000")
            .form(&[("Listening-Configs", listening)])
            .send();
        let poll = tokio::spawn(async move {
            let answer = match poll.await {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            (Instant::now(), answer)
        });
        // Let the long poll reach the server and hold (were it late, it would answer at once
        // on arrival: the md5 differs).
        tokio::time::sleep(Duration::from_millis(50)).await;
        content = format!("round-{round}");
        let started = Instant::now();
        assert!(publish(client, from, &data_id, &content).await, "publish");
        match tokio::time::timeout(Duration::from_secs(10), poll).await {
            Ok(Ok((at, answer))) if answer.contains(&data_id) => samples.push(at - started),
            _ => misses += 1,
        }
        // The next round listens from this content: make sure `on` serves it.
        wait_content(client, on, &data_id, &content).await;
    }
    spread(samples, misses)
}

struct Forward(mpsc::UnboundedSender<(Instant, String)>);

impl ConfigChangeListener for Forward {
    fn notify(&self, config_resp: ConfigResponse) {
        let _ = self
            .0
            .send((Instant::now(), config_resp.content().to_string()));
    }
}

/// `rounds` times: a publish on `from`; the time until the nacos-sdk config listener connected
/// to `on` (gRPC push, then the SDK's query) sees the new content.
async fn sdk_latency(
    client: &reqwest::Client,
    from: &Node,
    on: &Node,
    tag: &str,
    rounds: u64,
) -> Spread {
    let data_id = format!("bench-notify-sdk-{tag}");
    assert!(publish(client, from, &data_id, "round-0").await, "publish");
    wait_content(client, on, &data_id, "round-0").await;
    let cache = tempfile::tempdir().expect("cache");
    let props = ClientProps::new()
        .server_addr(format!("127.0.0.1:{}", on.port))
        .env_first(false)
        .cache_dir(cache.path())
        .app_name("bench-cluster");
    let sdk = ConfigServiceBuilder::new(props)
        .build()
        .await
        .expect("config client");
    let (tx, mut rx) = mpsc::unbounded_channel();
    sdk.add_listener(data_id.clone(), "BENCH".into(), Arc::new(Forward(tx)))
        .await
        .expect("listen");
    tokio::time::sleep(Duration::from_millis(500)).await;
    while rx.try_recv().is_ok() {}
    let mut samples = Vec::new();
    let mut misses = 0;
    for round in 1..=rounds {
        let content = format!("round-{round}");
        let started = Instant::now();
        assert!(publish(client, from, &data_id, &content).await, "publish");
        let seen = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some((at, seen)) = rx.recv().await {
                if seen == content {
                    return Some(at);
                }
            }
            None
        })
        .await;
        match seen {
            Ok(Some(at)) => samples.push(at - started),
            _ => misses += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(sdk);
    spread(samples, misses)
}

// ---------------------------------------------------------------------------------------------
// Tables

fn print_rate_header(secs: u64) {
    println!();
    println!("config publish, HTTP v1 POST, keep-alive, one key per client; {secs} s per row");
    println!(
        "{:<44} {:>7} {:>10} {:>8} {:>8} {:>6}",
        "target", "clients", "publish/s", "p50 ms", "p99 ms", "errors"
    );
}

fn print_rate(target: &str, clients: u64, r: &Rate) {
    println!(
        "{target:<44} {clients:>7} {:>10.0} {:>8.2} {:>8.2} {:>6}",
        r.per_sec, r.p50, r.p99, r.errors
    );
}

fn print_notify_header(rounds: u64) {
    println!();
    println!("publish -> listener notified, {rounds} rounds per row");
    println!(
        "{:<44} {:<14} {:>8} {:>8} {:>8} {:>6}",
        "publish on -> listener on", "listener", "p50 ms", "p99 ms", "max ms", "missed"
    );
}

fn print_notify(target: &str, listener: &str, s: &Spread) {
    println!(
        "{target:<44} {listener:<14} {:>8.2} {:>8.2} {:>8.2} {:>6}",
        s.p50, s.p99, s.max, s.misses
    );
}

/// Publish rows and notification rows for one standalone node and one 3-node cluster.
struct Run<'a> {
    client: &'a reqwest::Client,
    secs: u64,
    rounds: u64,
    clients: &'a [u64],
}

impl Run<'_> {
    async fn rates(&self, target: &str, node: &Node, tag: &str) {
        for &c in self.clients {
            let r = publish_rate(self.client, node, tag, c, self.secs).await;
            print_rate(target, c, &r);
        }
    }

    async fn notify(&self, target: &str, from: &Node, on: &Node, tag: &str) {
        let lp = long_poll_latency(self.client, from, on, tag, self.rounds).await;
        print_notify(target, "v1 long poll", &lp);
        let sdk = sdk_latency(self.client, from, on, tag, self.rounds).await;
        print_notify(target, "sdk gRPC push", &sdk);
    }
}

fn main() {
    let secs = env_or("BENCH_SECS", 2);
    let rounds = env_or("BENCH_ROUNDS", 50);
    let clients: Vec<u64> = std::env::var("BENCH_CLIENTS")
        .unwrap_or_else(|_| "1,16,64".to_string())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let mysql = env_or("BENCH_MYSQL", 1) != 0;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let run = Run {
            client: &client,
            secs,
            rounds,
            clients: &clients,
        };
        println!(
            "3-node clusters and standalone references in one process on loopback; \
             {} cores",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );

        // Embedded storage: fsync on every write; in the cluster, on a quorum's Raft logs.
        let home = tempfile::tempdir().expect("home");
        let standalone = start_standalone(home.path(), Vec::new()).await;
        wait_ready(&client, std::slice::from_ref(&standalone)).await;
        let homes: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("home")).collect();
        let cluster = start_cluster(&homes, Vec::new()).await;
        wait_ready(&client, &cluster).await;
        let leader = cluster
            .iter()
            .position(Node::is_leader)
            .expect("a Raft leader");
        let follower = (leader + 1) % cluster.len();
        let other = (leader + 2) % cluster.len();

        print_rate_header(secs);
        run.rates("standalone embedded (reference)", &standalone, "s")
            .await;
        run.rates("3-node embedded, to the leader", &cluster[leader], "l")
            .await;
        run.rates("3-node embedded, to a follower", &cluster[follower], "f")
            .await;
        if !cluster[leader].is_leader() {
            println!("note: the Raft leader changed during the publish rows");
        }

        print_notify_header(rounds);
        run.notify(
            "standalone embedded, same node (ref)",
            &standalone,
            &standalone,
            "s",
        )
        .await;
        run.notify(
            "3-node embedded, leader -> follower",
            &cluster[leader],
            &cluster[follower],
            "l",
        )
        .await;
        run.notify(
            "3-node embedded, follower -> follower",
            &cluster[follower],
            &cluster[other],
            "f",
        )
        .await;
        stop(vec![standalone]).await;
        stop(cluster).await;

        // One shared MySQL database.
        if !mysql {
            return;
        }
        let Some(mariadb) = nacos_tests::mariadb::MariaDb::shared() else {
            println!();
            println!("MySQL rows skipped: mariadb is not installed");
            return;
        };
        let db = mariadb.create_database();
        let standalone_db = mariadb.create_database();
        let pool = (
            "db.pool.config.maximumPoolSize".to_string(),
            "32".to_string(),
        );
        let mut props = standalone_db.properties(true);
        props.push(pool.clone());
        let home = tempfile::tempdir().expect("home");
        let standalone = start_standalone(home.path(), props).await;
        wait_ready(&client, std::slice::from_ref(&standalone)).await;
        let mut props = db.properties(true);
        props.push(pool);
        let homes: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("home")).collect();
        let cluster = start_cluster(&homes, props).await;
        wait_ready(&client, &cluster).await;

        println!();
        println!(
            "MySQL (private MariaDB, innodb_flush_log_at_trx_commit=2, so not like for like \
             with the embedded rows)"
        );
        print_rate_header(secs);
        run.rates("standalone mysql (reference)", &standalone, "ms")
            .await;
        run.rates("3-node mysql, to node 0", &cluster[0], "mc")
            .await;
        print_notify_header(rounds);
        run.notify(
            "standalone mysql, same node (ref)",
            &standalone,
            &standalone,
            "ms",
        )
        .await;
        run.notify(
            "3-node mysql, node 0 -> node 1",
            &cluster[0],
            &cluster[1],
            "mc",
        )
        .await;
        stop(vec![standalone]).await;
        stop(cluster).await;
        drop(standalone_db);
        drop(db);
    });
}
