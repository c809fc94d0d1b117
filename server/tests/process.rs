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

#[test]
fn cluster_mode_start_errors_name_the_fix() {
    let home = tempfile::tempdir().expect("home");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "-p",
        "embedded",
        &format!("-Dnacos.home={}", home.path().display()),
    ]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cluster.conf") && stderr.contains("-m standalone"),
        "{stderr}"
    );
    // Members but no shared storage: every node would keep its own data.
    let mut cmd = Command::new(BIN);
    cmd.args([
        "-c",
        "127.0.0.1:18848,127.0.0.1:18850",
        &format!("-Dnacos.home={}", home.path().display()),
        "-Dserver.port=18848",
    ]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("shared storage") && stderr.contains("-p embedded"),
        "{stderr}"
    );
    // A bad cluster.conf line is named.
    std::fs::create_dir_all(home.path().join("conf")).expect("conf dir");
    std::fs::write(home.path().join("conf/cluster.conf"), "127.0.0.1:http\n").expect("write");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "-p",
        "embedded",
        &format!("-Dnacos.home={}", home.path().display()),
    ]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 1);
    assert!(stderr.contains("127.0.0.1:http"), "{stderr}");
    std::fs::remove_file(home.path().join("conf/cluster.conf")).expect("rm");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "-m",
        "standalone",
        "-Dspring.sql.init.platform=oracle",
        &format!("-Dnacos.home={}", home.path().display()),
    ]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("unknown storage platform 'oracle'") && stderr.contains("embedded"),
        "{stderr}"
    );
}
