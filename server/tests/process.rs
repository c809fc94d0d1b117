//! The `nacos-server` binary as operators run it: start-up errors, graceful stop, and that an
//! acknowledged write survives `kill -9`.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nacos-server");

/// A port `p` with `p` (HTTP) and `p + 1000` (gRPC) both free right now.
fn free_port() -> u16 {
    for _ in 0..50 {
        let port = TcpListener::bind("0.0.0.0:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        if port
            .checked_add(1000)
            .is_some_and(|grpc| TcpListener::bind(("0.0.0.0", grpc)).is_ok())
        {
            return port;
        }
    }
    panic!("no free port pair");
}

fn spawn(home: &Path, port: u16, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args(["-m", "standalone"])
        .arg(format!("-Dnacos.home={}", home.display()))
        .arg(format!("-Dserver.port={port}"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nacos-server")
}

/// Run to completion and return (exit code, stderr).
fn run_to_exit(mut cmd: Command) -> (i32, String) {
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn wait_ready(port: u16) -> Duration {
    let started = Instant::now();
    let url = format!("http://127.0.0.1:{port}/nacos/v1/console/health/readiness");
    while started.elapsed() < Duration::from_secs(20) {
        if reqwest::blocking::get(&url).is_ok_and(|resp| resp.status().is_success()) {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server on {port} did not become ready");
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn starts_fast_serves_and_stops_gracefully_on_sigterm() {
    let home = tempfile::tempdir().expect("home");
    let port = free_port();
    let mut child = spawn(home.path(), port, &[]);
    let ready_after = wait_ready(port);
    assert!(
        ready_after < Duration::from_secs(5),
        "ready after {ready_after:?}"
    );
    let client = reqwest::blocking::Client::new();
    let resp = client
        .post(format!("http://127.0.0.1:{port}/nacos/v1/cs/configs"))
        .form(&[("dataId", "a"), ("group", "G"), ("content", "c")])
        .send()
        .expect("publish");
    assert!(resp.status().is_success());
    signal(&child, "-TERM");
    let status = child.wait().expect("wait");
    assert!(status.success(), "graceful stop exits 0, got {status:?}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read");
    assert!(stderr.contains("nacos-server started"), "{stderr}");
    assert!(
        stderr.contains("mode=standalone") || stderr.contains("mode=\"standalone\""),
        "{stderr}"
    );
    assert!(
        home.path().join("data").exists(),
        "data lives under nacos.home"
    );
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let home = tempfile::tempdir().expect("home");
    let port = free_port();
    let mut child = spawn(home.path(), port, &[]);
    wait_ready(port);
    let client = reqwest::blocking::Client::new();
    for i in 0..50 {
        let resp = client
            .post(format!("http://127.0.0.1:{port}/nacos/v1/cs/configs"))
            .form(&[
                ("dataId", format!("k{i}").as_str()),
                ("group", "G"),
                ("content", format!("v{i}").as_str()),
            ])
            .send()
            .expect("publish");
        assert_eq!(resp.text().expect("body"), "true");
    }
    signal(&child, "-KILL");
    let _ = child.wait();

    let port = free_port();
    let mut child = spawn(home.path(), port, &[]);
    wait_ready(port);
    for i in 0..50 {
        let body = client
            .get(format!(
                "http://127.0.0.1:{port}/nacos/v1/cs/configs?dataId=k{i}&group=G"
            ))
            .send()
            .expect("get")
            .text()
            .expect("body");
        assert_eq!(body, format!("v{i}"), "write {i} lost after kill -9");
    }
    signal(&child, "-TERM");
    let _ = child.wait();
}

#[test]
fn port_in_use_is_a_one_line_error() {
    let home = tempfile::tempdir().expect("home");
    let taken = TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "-m",
        "standalone",
        &format!("-Dnacos.home={}", home.path().display()),
        &format!("-Dserver.port={port}"),
    ]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 1);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("cannot listen on") && last.contains(&port.to_string()),
        "{stderr}"
    );
}

#[test]
fn grpc_port_in_use_is_a_one_line_error() {
    let home = tempfile::tempdir().expect("home");
    let port = free_port();
    let taken = TcpListener::bind(("0.0.0.0", port + 1000)).expect("bind the gRPC port");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "-m",
        "standalone",
        &format!("-Dnacos.home={}", home.path().display()),
        &format!("-Dserver.port={port}"),
    ]);
    let (code, stderr) = run_to_exit(cmd);
    drop(taken);
    assert_eq!(code, 1);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("cannot listen on") && last.contains(&(port + 1000).to_string()),
        "{stderr}"
    );
}

#[test]
fn bad_property_value_is_named() {
    let home = tempfile::tempdir().expect("home");
    std::fs::create_dir_all(home.path().join("conf")).expect("conf");
    std::fs::write(
        home.path().join("conf/application.properties"),
        "server.port=eighty\n",
    )
    .expect("write");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "-m",
        "standalone",
        &format!("-Dnacos.home={}", home.path().display()),
    ]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("server.port") && stderr.contains("eighty"),
        "{stderr}"
    );
}

#[test]
fn unreadable_data_dir_is_a_clear_error() {
    let home = tempfile::tempdir().expect("home");
    // A regular file where the data directory should be.
    std::fs::write(home.path().join("data"), "not a directory").expect("write");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "-m",
        "standalone",
        &format!("-Dnacos.home={}", home.path().display()),
        &format!("-Dserver.port={}", free_port()),
    ]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 1);
    assert!(stderr.contains("embedded storage"), "{stderr}");
}

/// Run the binary with `args` (and `nacos.home`), expect exit code 1; its stderr.
fn start_error(home: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg(format!("-Dnacos.home={}", home.display()));
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 1, "{args:?}: {stderr}");
    stderr
}

#[test]
fn cluster_mode_start_errors_name_the_fix() {
    let home = tempfile::tempdir().expect("home");
    let stderr = start_error(home.path(), &["-p", "embedded"]);
    assert!(
        stderr.contains("cluster.conf") && stderr.contains("-m standalone"),
        "{stderr}"
    );
    // Members but no shared storage: every node would keep its own data.
    let stderr = start_error(
        home.path(),
        &[
            "-c",
            "127.0.0.1:18848,127.0.0.1:18850",
            "-Dserver.port=18848",
        ],
    );
    assert!(
        stderr.contains("shared storage") && stderr.contains("-p embedded"),
        "{stderr}"
    );
    // An embedded node missing from its own member list would form a Raft cluster of its own.
    let elsewhere = [
        "-p",
        "embedded",
        "-c",
        "127.0.0.1:18858,127.0.0.1:18868",
        "-Dserver.port=18848",
        "-Dnacos.inetutils.ip-address=127.0.0.1",
    ];
    let stderr = start_error(home.path(), &elsewhere);
    assert!(
        stderr.contains("(127.0.0.1:18848) is not in the member list"),
        "{stderr}"
    );
    // A data directory written by a standalone server is refused, not half-joined.
    let standalone_home = tempfile::tempdir().expect("home");
    {
        let repos = nacos_storage_embedded::open_repos(&standalone_home.path().join("data"))
            .expect("open a standalone store");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime
            .block_on(repos.configs.publish(nacos_core::ConfigPublish {
                key: nacos_core::ConfigKey::new("", "G", "standalone.cfg"),
                content: "kept".to_string(),
                ..nacos_core::ConfigPublish::default()
            }))
            .expect("publish");
    }
    let listed = [
        "-p",
        "embedded",
        "-c",
        "127.0.0.1:18848,127.0.0.1:18858",
        "-Dserver.port=18848",
        "-Dnacos.inetutils.ip-address=127.0.0.1",
    ];
    let stderr = start_error(standalone_home.path(), &listed);
    assert!(
        stderr.contains("did not come through Raft") && stderr.contains("-m standalone"),
        "{stderr}"
    );
    // A bad cluster.conf line is named.
    std::fs::create_dir_all(home.path().join("conf")).expect("conf dir");
    std::fs::write(home.path().join("conf/cluster.conf"), "127.0.0.1:http\n").expect("write");
    let stderr = start_error(home.path(), &["-p", "embedded"]);
    assert!(stderr.contains("127.0.0.1:http"), "{stderr}");
    std::fs::remove_file(home.path().join("conf/cluster.conf")).expect("rm");
    let stderr = start_error(
        home.path(),
        &["-m", "standalone", "-Dspring.sql.init.platform=oracle"],
    );
    assert!(
        stderr.contains("unknown storage platform 'oracle'") && stderr.contains("embedded"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Embedded cluster (`-p embedded`): three real processes on this machine.

/// Ports handed out to cluster nodes by this test binary, so that parallel tests never pick
/// overlapping port sets.
static RESERVED_PORTS: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// The four ports a node with main port `p` listens on: HTTP, client gRPC, cluster gRPC, Raft.
fn node_ports(p: u16) -> [u16; 4] {
    [p, p + 1000, p + 1001, p - 1000]
}

/// A main port `p` whose four ports (`p`, `p + 1000`, `p + 1001`, `p - 1000`) are all free
/// right now and not handed out before. Taken below the ephemeral range (32768+) so that
/// outgoing connections and `free_port` never land on them.
fn free_cluster_port() -> u16 {
    let mut reserved = RESERVED_PORTS.lock().expect("reserved ports");
    let seed = std::process::id() as usize
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as usize);
    for attempt in 0..2000 {
        let p = 3000 + ((seed + attempt * 7919) % 27_000) as u16;
        let ports = node_ports(p);
        if ports.iter().any(|q| reserved.contains(q)) {
            continue;
        }
        if ports
            .iter()
            .all(|&q| TcpListener::bind(("0.0.0.0", q)).is_ok())
        {
            reserved.extend(ports);
            return p;
        }
    }
    panic!("no free cluster port set");
}

/// Three (or more) `nacos-server -p embedded` processes forming one cluster. Every child is
/// killed when this is dropped, also when the test panics; on a panic the tail of every
/// node's log (stdout and stderr, across restarts) is printed.
struct TestCluster {
    homes: Vec<tempfile::TempDir>,
    logs: tempfile::TempDir,
    ports: Vec<u16>,
    extra: Vec<String>,
    children: Vec<Option<Child>>,
}

impl TestCluster {
    fn start(n: usize, extra: &[&str]) -> Self {
        let ports: Vec<u16> = (0..n).map(|_| free_cluster_port()).collect();
        let mut cluster = TestCluster {
            homes: (0..n).map(|_| tempfile::tempdir().expect("home")).collect(),
            logs: tempfile::tempdir().expect("logs"),
            ports,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            children: (0..n).map(|_| None).collect(),
        };
        for node in 0..n {
            cluster.start_node(node);
        }
        cluster
    }

    fn log_path(&self, node: usize) -> std::path::PathBuf {
        self.logs.path().join(format!("node{node}.log"))
    }

    fn start_node(&mut self, node: usize) {
        assert!(self.children[node].is_none(), "node {node} already runs");
        let members = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(node))
            .expect("log file");
        let child = Command::new(BIN)
            .args(["-p", "embedded"])
            .arg(format!(
                "-Dnacos.home={}",
                self.homes[node].path().display()
            ))
            .arg(format!("-Dserver.port={}", self.ports[node]))
            .arg("-Dnacos.inetutils.ip-address=127.0.0.1")
            .arg("-Dnacos.member.report.intervalMs=200")
            .args(&self.extra)
            .args(["-c", &members])
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn nacos-server");
        self.children[node] = Some(child);
    }

    /// `kill -9` one node and reap it.
    fn kill_node(&mut self, node: usize) {
        let mut child = self.children[node].take().expect("node runs");
        signal(&child, "-KILL");
        let _ = child.wait();
    }

    fn wait_all_ready(&self) {
        for node in 0..self.ports.len() {
            if self.children[node].is_some() {
                wait_ready(self.ports[node]);
            }
        }
    }

    fn data_dir(&self, node: usize) -> std::path::PathBuf {
        self.homes[node].path().join("data")
    }

    /// The node whose Raft address every running node names as leader, once they agree.
    fn leader(&self, client: &reqwest::blocking::Client) -> usize {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let views: Vec<Option<String>> = (0..self.ports.len())
                .filter(|&node| self.children[node].is_some())
                .map(|node| {
                    let url = format!(
                        "http://127.0.0.1:{}/nacos/v1/core/cluster/self",
                        self.ports[node]
                    );
                    let json: serde_json::Value =
                        serde_json::from_str(&client.get(url).send().ok()?.text().ok()?).ok()?;
                    json["data"]["extendInfo"]["raftMetaData"]["leader"]
                        .as_str()
                        .map(str::to_string)
                })
                .collect();
            if let Some(Some(first)) = views.first()
                && views.iter().all(|v| v.as_ref() == Some(first))
                && let Some(node) = self
                    .ports
                    .iter()
                    .position(|p| format!("127.0.0.1:{}", p - 1000) == *first)
            {
                return node;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the nodes did not agree on a Raft leader");
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().filter_map(Option::take) {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            for node in 0..self.ports.len() {
                let log = std::fs::read_to_string(self.log_path(node)).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(60)..].join("\n");
                eprintln!(
                    "---- node {node} (port {}) log tail ----\n{tail}",
                    self.ports[node]
                );
            }
        }
    }
}

fn cluster_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// What one publish came to.
#[derive(Debug, PartialEq)]
enum Publish {
    /// 200 with body `true`.
    Acked,
    /// The connection was refused (or never completed): the request certainly never arrived.
    NotDelivered,
    /// Anything else: an error status, another body, a reset or a timeout.
    Failed(String),
}

fn publish(client: &reqwest::blocking::Client, port: u16, data_id: &str, content: &str) -> Publish {
    let sent = client
        .post(format!("http://127.0.0.1:{port}/nacos/v1/cs/configs"))
        .form(&[("dataId", data_id), ("group", "G"), ("content", content)])
        .send();
    match sent {
        Err(e) if e.is_connect() => Publish::NotDelivered,
        Err(e) => Publish::Failed(e.to_string()),
        Ok(resp) => {
            let status = resp.status();
            let body = resp.text().unwrap_or_default();
            if status.is_success() && body == "true" {
                Publish::Acked
            } else {
                Publish::Failed(format!("{status}: {body}"))
            }
        }
    }
}

/// The content of `data_id` as `port` serves it (`None` unless 200).
fn get_config(
    client: &reqwest::blocking::Client,
    port: u16,
    data_id: &str,
    linearizable: bool,
) -> Option<String> {
    let consistency = if linearizable {
        "&consistency=linearizable"
    } else {
        ""
    };
    let resp = client
        .get(format!(
            "http://127.0.0.1:{port}/nacos/v1/cs/configs?dataId={data_id}&group=G{consistency}"
        ))
        .send()
        .ok()?;
    if resp.status().is_success() {
        resp.text().ok()
    } else {
        None
    }
}

/// How many history entries `port` holds for `data_id`.
fn history_count(client: &reqwest::blocking::Client, port: u16, data_id: &str) -> u64 {
    let text = client
        .get(format!(
            "http://127.0.0.1:{port}/nacos/v1/cs/history?search=accurate&dataId={data_id}\
             &group=G&pageNo=1&pageSize=100"
        ))
        .send()
        .expect("history")
        .text()
        .expect("history body");
    let json: serde_json::Value = serde_json::from_str(&text).expect("history json");
    json["totalCount"]
        .as_u64()
        .unwrap_or_else(|| panic!("no totalCount in {text}"))
}

/// Poll until `port` serves `expected` for `data_id`, or panic at `deadline`.
fn await_config(
    client: &reqwest::blocking::Client,
    port: u16,
    data_id: &str,
    expected: &str,
    deadline: Instant,
) {
    loop {
        let got = get_config(client, port, data_id, false);
        if got.as_deref() == Some(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node on {port} serves {got:?} for {data_id}, expected {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A linearizable read on `port` succeeds: the node has caught up with the leader.
fn await_caught_up(client: &reqwest::blocking::Client, port: u16, deadline: Instant) {
    // A key nobody writes: 404 after the barrier, 5xx while the node cannot reach a leader.
    let url = format!(
        "http://127.0.0.1:{port}/nacos/v1/cs/configs?dataId=barrier-probe&group=G\
         &consistency=linearizable"
    );
    while !client
        .get(&url)
        .send()
        .is_ok_and(|r| r.status() == reqwest::StatusCode::NOT_FOUND)
    {
        assert!(
            Instant::now() < deadline,
            "node on {port} never answered a linearizable read"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn readiness_status(client: &reqwest::blocking::Client, port: u16) -> Option<u16> {
    client
        .get(format!(
            "http://127.0.0.1:{port}/nacos/v1/console/health/readiness"
        ))
        .send()
        .ok()
        .map(|r| r.status().as_u16())
}

#[test]
fn embedded_cluster_loses_no_acknowledged_publish_when_the_leader_is_killed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let mut cluster = TestCluster::start(3, &[]);
    cluster.wait_all_ready();
    let client = cluster_client();
    let ports = cluster.ports.clone();

    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let acked_before = Arc::new(AtomicUsize::new(0));
    let acked_after = Arc::new(AtomicUsize::new(0));
    // Three publishers so that several writes are in flight when the leader dies. Each i is
    // sent once; only a refused connection (nothing arrived) moves it on to the next node.
    let publishers: Vec<_> = (0..3)
        .map(|_| {
            let (next, stop, killed) = (next.clone(), stop.clone(), killed.clone());
            let (acked_before, acked_after) = (acked_before.clone(), acked_after.clone());
            let ports = ports.clone();
            std::thread::spawn(move || {
                let client = cluster_client();
                let mut outcomes = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let after_kill = killed.load(Ordering::SeqCst);
                    let mut outcome = Publish::NotDelivered;
                    for attempt in 0..ports.len() {
                        let port = ports[(i + attempt) % ports.len()];
                        outcome = publish(&client, port, &format!("k{i}"), &format!("v{i}"));
                        if outcome != Publish::NotDelivered {
                            break;
                        }
                    }
                    if outcome == Publish::Acked {
                        if after_kill {
                            &acked_after
                        } else {
                            &acked_before
                        }
                        .fetch_add(1, Ordering::SeqCst);
                    }
                    outcomes.push((i, outcome));
                }
                outcomes
            })
        })
        .collect();

    let wait_until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let started = Instant::now();
    wait_until("publishes before the kill", &|| {
        started.elapsed() >= Duration::from_secs(1) && acked_before.load(Ordering::SeqCst) >= 20
    });
    let leader = cluster.leader(&client);
    killed.store(true, Ordering::SeqCst);
    let killed_at = Instant::now();
    cluster.kill_node(leader);
    // Keep publishing for 2 s, and until the two survivors have acknowledged a good number
    // of writes begun after the kill.
    wait_until("publishes acknowledged after the kill", &|| {
        killed_at.elapsed() >= Duration::from_secs(2) && acked_after.load(Ordering::SeqCst) >= 20
    });
    let kept_working_after = killed_at.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut outcomes: Vec<(usize, Publish)> = publishers
        .into_iter()
        .flat_map(|p| p.join().expect("publisher"))
        .collect();
    outcomes.sort_by_key(|(i, _)| *i);
    let acked: Vec<usize> = outcomes
        .iter()
        .filter(|(_, o)| *o == Publish::Acked)
        .map(|(i, _)| *i)
        .collect();
    let unacked: Vec<&(usize, Publish)> = outcomes
        .iter()
        .filter(|(_, o)| *o != Publish::Acked)
        .collect();
    let (before, after) = (
        acked_before.load(Ordering::SeqCst),
        acked_after.load(Ordering::SeqCst),
    );
    eprintln!(
        "{} publishes; acknowledged {before} before and {after} after killing the leader \
         (node {leader}), publishing stopped {kept_working_after:?} after the kill; \
         not acknowledged: {unacked:?}",
        outcomes.len(),
    );
    assert!(
        after >= 20,
        "only {after} publishes acknowledged after the kill"
    );

    cluster.start_node(leader);
    cluster.wait_all_ready();

    let deadline = Instant::now() + Duration::from_secs(60);
    let client = &client;
    let (acked, unacked) = (&acked, &unacked);
    std::thread::scope(|s| {
        for &port in &ports {
            s.spawn(move || {
                await_caught_up(client, port, deadline);
                for &i in acked {
                    let key = format!("k{i}");
                    await_config(client, port, &key, &format!("v{i}"), deadline);
                    let n = history_count(client, port, &key);
                    assert_eq!(n, 1, "acknowledged {key} has {n} history entries on {port}");
                }
                for (i, _) in unacked {
                    let key = format!("k{i}");
                    let n = history_count(client, port, &key);
                    assert!(n <= 1, "unacknowledged {key} applied {n} times on {port}");
                }
            });
        }
    });
}

#[test]
fn embedded_cluster_node_that_lost_its_data_rejoins_from_a_snapshot() {
    let mut cluster = TestCluster::start(
        3,
        &[
            "-Dnacos.core.protocol.raft.data.snapshot_logs=20",
            "-Dnacos.core.protocol.raft.data.keep_logs=5",
        ],
    );
    cluster.wait_all_ready();
    let client = cluster_client();
    let ports = cluster.ports.clone();
    for i in 0..60 {
        let port = ports[i % ports.len()];
        let outcome = publish(&client, port, &format!("k{i}"), &format!("v{i}"));
        assert_eq!(outcome, Publish::Acked, "publish k{i} to {port}");
    }
    let leader = cluster.leader(&client);
    let lost = (leader + 1) % ports.len();
    cluster.kill_node(lost);
    std::fs::remove_dir_all(cluster.data_dir(lost)).expect("delete the data directory");
    let survivors: Vec<u16> = (0..ports.len())
        .filter(|&n| n != lost)
        .map(|n| ports[n])
        .collect();
    for i in 60..80 {
        let port = survivors[i % survivors.len()];
        let outcome = publish(&client, port, &format!("k{i}"), &format!("v{i}"));
        assert_eq!(outcome, Publish::Acked, "publish k{i} to {port}");
    }
    // The leader has compacted its log far past the start: only a snapshot can bring the
    // empty node back.
    cluster.start_node(lost);
    wait_ready(ports[lost]);
    let deadline = Instant::now() + Duration::from_secs(30);
    await_caught_up(&client, ports[lost], deadline);
    for i in 0..80 {
        let key = format!("k{i}");
        await_config(&client, ports[lost], &key, &format!("v{i}"), deadline);
        let n = history_count(&client, ports[lost], &key);
        assert_eq!(n, 1, "{key} has {n} history entries on the rejoined node");
    }
    let log = std::fs::read_to_string(cluster.log_path(lost)).expect("log");
    assert!(
        log.contains("installing Raft snapshot"),
        "the rejoined node caught up without a snapshot"
    );
}

/// Kill two of three nodes; the survivor (the Raft leader or a follower) must say it is not
/// ready and refuse writes, and recover once a second node is back.
fn survivor_without_quorum_is_not_ready_and_refuses_writes(survivor_was_leader: bool) {
    let mut cluster = TestCluster::start(3, &[]);
    cluster.wait_all_ready();
    let client = cluster_client();
    let leader = cluster.leader(&client);
    let survivor = if survivor_was_leader {
        leader
    } else {
        (leader + 1) % 3
    };
    let killed: Vec<usize> = (0..3).filter(|&n| n != survivor).collect();
    let port = cluster.ports[survivor];
    assert_eq!(publish(&client, port, "before", "x"), Publish::Acked);
    for &node in &killed {
        cluster.kill_node(node);
    }
    let killed_at = Instant::now();
    // A follower gives up on its leader after the leader lease (election_timeout_max, 2 s)
    // plus an election timeout (1 to 2 s): 3 to 4 s with the defaults.
    while readiness_status(&client, port) != Some(500) {
        if killed_at.elapsed() > Duration::from_secs(6) {
            let view = client
                .get(format!(
                    "http://127.0.0.1:{port}/nacos/v1/core/cluster/self"
                ))
                .send()
                .and_then(|r| r.text())
                .unwrap_or_default();
            panic!(
                "the survivor (leader before: {survivor_was_leader}) still reports ready {:?} \
                 after losing quorum; its view: {view}",
                killed_at.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let not_ready_after = killed_at.elapsed();
    assert_eq!(
        get_config(&client, port, "before", true),
        None,
        "a node without quorum served a linearizable read"
    );
    let started = Instant::now();
    let outcome = publish(&client, port, "during", "x");
    let refused_after = started.elapsed();
    assert!(
        matches!(&outcome, Publish::Failed(why) if !why.contains("timed out")),
        "a publish without quorum must be refused, got {outcome:?}"
    );
    assert!(
        refused_after < Duration::from_secs(15),
        "refusing the publish took {refused_after:?}"
    );
    eprintln!(
        "not ready {not_ready_after:?} after losing quorum; publish refused in \
         {refused_after:?}: {outcome:?}"
    );
    let back = killed[0];
    cluster.start_node(back);
    wait_ready(cluster.ports[back]);
    wait_ready(port);
    assert_eq!(publish(&client, port, "after", "y"), Publish::Acked);
    assert_eq!(
        publish(&client, cluster.ports[back], "after2", "z"),
        Publish::Acked
    );
    assert_eq!(
        get_config(&client, port, "after2", true).as_deref(),
        Some("z")
    );
}

#[test]
fn embedded_cluster_without_quorum_is_not_ready_and_refuses_writes() {
    survivor_without_quorum_is_not_ready_and_refuses_writes(true);
}

#[test]
fn embedded_cluster_follower_without_quorum_is_not_ready_and_refuses_writes() {
    survivor_without_quorum_is_not_ready_and_refuses_writes(false);
}

/// `backup` and `restore` as an operator runs them: plain progress lines on a stderr that is
/// not a terminal, the verification table on stdout, exit 0 when verified and 1 with a
/// one-line reason when the run cannot go on (a running server's locked store, a non-empty
/// target, a file that is not a dump).
#[test]
fn backup_and_restore_subcommands() {
    let home = tempfile::tempdir().expect("home");
    let work = tempfile::tempdir().expect("work");
    let port = free_port();
    let mut child = spawn(home.path(), port, &[]);
    wait_ready(port);
    let client = reqwest::blocking::Client::new();
    for i in 0..30 {
        let resp = client
            .post(format!("http://127.0.0.1:{port}/nacos/v1/cs/configs"))
            .form(&[
                ("dataId", format!("k{i}").as_str()),
                ("group", "G"),
                ("content", format!("v{i}").as_str()),
            ])
            .send()
            .expect("publish");
        assert_eq!(resp.text().expect("body"), "true");
    }
    let dump = work.path().join("b.jsonl.gz");
    let tool = |args: &[&str], home: &Path| {
        let out = Command::new(BIN)
            .args(args)
            .arg(format!("-Dnacos.home={}", home.display()))
            .output()
            .expect("run the tool");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let to = dump.to_str().expect("utf-8 path");
    let (code, _, err) = tool(&["backup", "--to", to], home.path());
    assert_eq!(code, 1, "a running server locks its store: {err}");
    assert!(
        err.contains("--server"),
        "the error says how to back up online: {err}"
    );
    signal(&child, "-TERM");
    let _ = child.wait();

    let (code, out, err) = tool(&["backup", "--to", to], home.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verified"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("configs") && l.contains(" 30 ")),
        "{out}"
    );
    assert!(
        err.contains("backup: 60 records"),
        "plain progress lines: {err}"
    );

    let target = work.path().join("restored");
    let (code, out, err) = tool(&["restore", "--from", to], &target);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("60 records") && out.contains("verified"),
        "{out}"
    );
    let (code, _, err) = tool(&["restore", "--from", to], &target);
    assert_eq!(code, 1);
    assert!(err.contains("not empty"), "{err}");
    let junk = work.path().join("junk.gz");
    std::fs::write(&junk, b"not a dump").expect("write");
    let (code, _, err) = tool(
        &["restore", "--from", junk.to_str().expect("utf-8")],
        &work.path().join("other"),
    );
    assert_eq!(code, 1);
    assert!(err.contains("not a usable dump"), "{err}");
    assert!(
        !work.path().join("other").exists(),
        "a bad file is refused before any storage is opened"
    );
}
