//! Side by side with r-nacos: every row of the performance issue (issue 13), run against this
//! server's release binary and, when an `rnacos` binary is on `PATH`, against r-nacos in the
//! same run, printing per row our number, r-nacos's number and the ratio, as a markdown table.
//! Run: `cargo build --release -p nacos-server && cargo bench -p nacos-tests --bench compare`.
//!
//! Each server is a separate process with its data in a fresh temporary directory, on free
//! loopback ports, started anew for every row and stopped before the other one starts (never two
//! servers loaded at once). This process is the load generator: a tokio runtime with two worker
//! threads driving 64 keep-alive HTTP/1.1 connections (like `wrk -t2 -c64`), or 64 gRPC calls in
//! flight (8 connections × 8). Only successful answers count: HTTP 200 with the expected body,
//! gRPC answers of the expected type with `resultCode` 200. Failures are counted and printed.
//!
//! Rows (`BENCH_ONLY` takes these names, comma- or space-separated):
//! - `get`: v1 config GET of 1 KiB content; also a bare axum server (this binary re-executed)
//!   returning the same 1 KiB body, and our ratio to it.
//! - `list`: v1 instance list of a service with 10 instances.
//! - `register`: v1 instance register, a distinct instance per request over 100 services.
//! - `publish`: v1 config publish, 1000 keys cycling, 200-byte values (both servers durable by
//!   default; ours fsyncs before every answer).
//! - `memory`: idle RSS right after start, RSS after exactly 100,000 ephemeral instances in 100
//!   services (2 s after the last one), and bytes per instance.
//! - `grpc-query`: gRPC `ConfigQueryRequest` of the 1 KiB config.
//! - `grpc-register`: gRPC `InstanceRequest` (`registerInstance`), distinct instances.
//! - `config-push`: 1,000 gRPC connections each listening (`ConfigBatchListenRequest`) to one
//!   key; the time from sending one HTTP publish to the last `ConfigChangeNotifyRequest`.
//! - `naming-push`: 1,000 gRPC connections each subscribed (`SubscribeServiceRequest`) to one
//!   service; the time from sending one gRPC register to the last `NotifySubscriberRequest`
//!   that lists the new instance.
//! - Both push rows also report the CPU time a round costs the server and this load generator
//!   (every thread's `schedstat`), since both share the cores the latency is measured on.
//!
//! Environment: `BENCH_SECS` (default 5) per throughput window (after 0.5 s of warm-up),
//! `BENCH_REPEAT` (default 1; the issue asks for 3) windows per throughput row, the worst kept,
//! `BENCH_ROUNDS` (default 5) rounds per push row, the median reported, `BENCH_ONLY`,
//! `BENCH_SERVER` (default `target/release/nacos-server`, which must exist: this harness does
//! not build it), `RNACOS` (default: `rnacos` on `PATH`).

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use nacos_server::protocol::transport::{BI_STREAM_PATH, Payload, REQUEST_PATH};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

/// Set in the environment of a re-executed copy of this binary: serve the bare 1 KiB on it.
const BARE_ENV: &str = "COMPARE_BENCH_BARE_PORT";
const CONNS: u64 = 64;
const WARMUP: Duration = Duration::from_millis(500);
const MEMORY_INSTANCES: u64 = 100_000;
const PUSH_CONNECTIONS: usize = 1000;
const ROWS: &[&str] = &[
    "get",
    "list",
    "register",
    "publish",
    "memory",
    "grpc-query",
    "grpc-register",
    "config-push",
    "naming-push",
];

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// 1 KiB of content that needs no escaping in JSON or a form.
fn one_kib() -> String {
    "abcdefghijklmnopqrstuvwxyz012345".repeat(32)
}

/// A distinct IPv4 address for each `n` below 2^24.
fn ip_of(prefix: u8, n: u64) -> String {
    format!(
        "{prefix}.{}.{}.{}",
        (n >> 16) & 255,
        (n >> 8) & 255,
        n & 255
    )
}

// ---------------------------------------------------------------------------------------------
// Server processes

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ours,
    RNacos,
    Bare,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Ours => "this server",
            Kind::RNacos => "r-nacos",
            Kind::Bare => "bare axum",
        }
    }
}

#[derive(Clone)]
struct Binaries {
    ours: PathBuf,
    rnacos: Option<PathBuf>,
}

/// A running server process; killed (and its temporary directory removed) when dropped, also
/// when the benchmark panics.
struct Server {
    kind: Kind,
    child: Child,
    dir: tempfile::TempDir,
    http: SocketAddr,
    grpc: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        let start = log.len().saturating_sub(4000);
        let start = (start..log.len())
            .find(|&i| log.is_char_boundary(i))
            .unwrap_or(log.len());
        log[start..].to_string()
    }

    /// CPU time the server's threads have used, in nanoseconds.
    fn cpu_ns(&self) -> u64 {
        cpu_ns_of(&self.child.id().to_string())
    }

    /// VmRSS in bytes.
    fn rss(&self) -> u64 {
        self.status_bytes("VmRSS:")
    }

    /// The anonymous part of the RSS: the process's own memory, without the pages of its
    /// binary and libraries, which the kernel maps in 64 KiB windows around each page touched
    /// (so their count follows the code layout and the page cache).
    fn rss_anon(&self) -> u64 {
        self.status_bytes("RssAnon:")
    }

    fn status_bytes(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_else(|e| panic!("{}: cannot read its /proc status: {e}", self.kind.label()));
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.child.id()));
        kb * 1024
    }

    /// Start `kind` on free ports in a fresh directory and wait until it answers; panics with the
    /// server's log if it does not within 20 s.
    async fn start(kind: Kind, bins: &Binaries) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("nacos-compare-")
            .tempdir()
            .expect("temporary directory");
        let port = free_port_block();
        let log = std::fs::File::create(dir.path().join("log")).expect("log file");
        let mut cmd = match kind {
            Kind::Ours => {
                let mut c = Command::new(&bins.ours);
                c.args(["-m", "standalone", "-D"])
                    .arg(format!("server.port={port}"))
                    .arg("-D")
                    .arg(format!("nacos.home={}", dir.path().display()));
                c
            }
            Kind::RNacos => {
                let mut c = Command::new(bins.rnacos.as_ref().expect("rnacos binary"));
                c.env("RNACOS_HTTP_PORT", port.to_string())
                    .env("RNACOS_GRPC_PORT", (port + 1000).to_string())
                    .env("RNACOS_HTTP_CONSOLE_PORT", (port + 1).to_string())
                    .env("RNACOS_DATA_DIR", dir.path().join("data"));
                c
            }
            Kind::Bare => {
                let mut c = Command::new(std::env::current_exe().expect("own path"));
                c.env(BARE_ENV, port.to_string());
                c
            }
        };
        let child = cmd
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", kind.label()));
        let mut server = Server {
            kind,
            child,
            dir,
            http: SocketAddr::from(([127, 0, 0, 1], port)),
            grpc: SocketAddr::from(([127, 0, 0, 1], port + 1000)),
        };
        let probe = match kind {
            Kind::Bare => "/nacos/v1/cs/configs",
            _ => "/nacos/v1/ns/operator/metrics",
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "{} exited during start-up ({status}); its log:\n{}",
                    kind.label(),
                    server.log_tail()
                );
            }
            let http_up = matches!(
                client.get(server.url(probe)).send().await,
                Ok(r) if r.status() == StatusCode::OK
            );
            let grpc_up =
                kind == Kind::Bare || tokio::net::TcpStream::connect(server.grpc).await.is_ok();
            if http_up && grpc_up {
                return server;
            }
            if started.elapsed() > Duration::from_secs(20) {
                panic!(
                    "{} did not answer on {} within 20 s; its log:\n{}",
                    kind.label(),
                    server.url(probe),
                    server.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A port `p` with `p`, `p + 1`, `p + 1000` and `p + 1001` free on loopback (HTTP, r-nacos's
/// console, gRPC, and whatever a server puts next to its gRPC port).
fn free_port_block() -> u16 {
    for _ in 0..200 {
        let probe = StdListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let p = probe.local_addr().expect("local address").port() % 20_000 + 20_000;
        drop(probe);
        let all_free = [p, p + 1, p + 1000, p + 1001]
            .iter()
            .all(|&q| StdListener::bind(("127.0.0.1", q)).is_ok());
        if all_free {
            return p;
        }
    }
    panic!("no block of free ports found");
}

/// The bare server: axum (as this server uses), every path answered with the same 1 KiB.
fn bare_server(port: &str) {
    let port: u16 = port.parse().expect("port");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let body = Bytes::from(one_kib());
        let app = axum::Router::new().fallback(move || {
            let body = body.clone();
            async move { body }
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        axum::serve(listener, app).await.expect("serve");
    });
}

// ---------------------------------------------------------------------------------------------
// HTTP load

/// One request to send: method, path and query, and an optional form body.
struct Req {
    method: Method,
    path: String,
    form: Option<String>,
}

/// What a successful answer is (besides status 200).
enum Expect {
    /// Exactly these bytes.
    Body(Bytes),
    /// A v1 instance list with this many hosts. An answer of the length of the last verified
    /// one is taken as the same answer; any other length is parsed and checked again.
    Hosts(usize),
}

type MakeReq = Arc<dyn Fn(u64) -> Req + Send + Sync>;

struct HttpShared {
    addr: SocketAddr,
    make: MakeReq,
    expect: Expect,
    next: Arc<AtomicU64>,
    limit: Option<u64>,
    stop: AtomicBool,
    ok: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl HttpShared {
    fn error(&self, e: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().expect("lock");
        if first.is_none() {
            *first = Some(e);
        }
    }
}

struct Outcome {
    rate: f64,
    errors: u64,
    first_error: Option<String>,
}

async fn http_connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn http_once(
    shared: &HttpShared,
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    known_len: &mut Option<usize>,
    n: u64,
) -> Result<(), String> {
    if sender.is_none() {
        *sender = Some(http_connect(shared.addr).await?);
    }
    let s = sender.as_mut().expect("connected");
    let req = (shared.make)(n);
    let mut builder = Request::builder()
        .method(req.method)
        .uri(req.path)
        .header("host", shared.addr.to_string());
    if req.form.is_some() {
        builder = builder.header("content-type", "application/x-www-form-urlencoded");
    }
    let request = builder
        .body(Full::new(Bytes::from(req.form.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
    let answer = async {
        s.ready().await?;
        let resp = s.send_request(request).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((status, body))
    }
    .await;
    let (status, body) = match answer {
        Ok(a) => a,
        Err(e) => {
            *sender = None;
            return Err(format!("transport: {e}"));
        }
    };
    let show = || String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    if status != StatusCode::OK {
        return Err(format!("HTTP {status}: {}", show()));
    }
    match &shared.expect {
        Expect::Body(expected) if body == *expected => Ok(()),
        Expect::Body(_) => Err(format!("unexpected body: {}", show())),
        Expect::Hosts(_) if *known_len == Some(body.len()) => Ok(()),
        Expect::Hosts(want) => {
            let value: Value =
                serde_json::from_slice(&body).map_err(|e| format!("{e}: {}", show()))?;
            let got = value["hosts"].as_array().map_or(0, Vec::len);
            if got == *want {
                *known_len = Some(body.len());
                Ok(())
            } else {
                Err(format!("{got} hosts instead of {want}: {}", show()))
            }
        }
    }
}

async fn http_worker(shared: Arc<HttpShared>) {
    let mut sender = None;
    let mut known_len = None;
    while !shared.stop.load(Ordering::Relaxed) {
        let n = shared.next.fetch_add(1, Ordering::Relaxed);
        if shared.limit.is_some_and(|l| n >= l) {
            break;
        }
        // With a fixed count (the memory row) every `n` must land: retry a few times.
        let attempts = if shared.limit.is_some() { 5 } else { 1 };
        for _ in 0..attempts {
            match http_once(&shared, &mut sender, &mut known_len, n).await {
                Ok(()) => {
                    shared.ok.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(e) => {
                    shared.error(e);
                    if sender.is_none() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
    }
}

/// 64 keep-alive connections sending `make(n)` (`n` from the shared counter `next`): for
/// `secs` after a warm-up, or, with `limit`, until `n` reaches it.
async fn http_load(
    addr: SocketAddr,
    make: MakeReq,
    expect: Expect,
    next: Arc<AtomicU64>,
    secs: u64,
    limit: Option<u64>,
) -> Outcome {
    let shared = Arc::new(HttpShared {
        addr,
        make,
        expect,
        next,
        limit,
        stop: AtomicBool::new(false),
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        first_error: Mutex::new(None),
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONNS)
        .map(|_| tokio::spawn(http_worker(Arc::clone(&shared))))
        .collect();
    let rate = if limit.is_some() {
        for t in tasks {
            t.await.expect("load task");
        }
        shared.ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
    } else {
        tokio::time::sleep(WARMUP).await;
        let (before, window) = (shared.ok.load(Ordering::Relaxed), Instant::now());
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let done = shared.ok.load(Ordering::Relaxed) - before;
        let elapsed = window.elapsed().as_secs_f64();
        shared.stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.expect("load task");
        }
        done as f64 / elapsed
    };
    let first_error = shared.first_error.lock().expect("lock").take();
    Outcome {
        rate,
        errors: shared.errors.load(Ordering::Relaxed),
        first_error,
    }
}

// ---------------------------------------------------------------------------------------------
// Simple HTTP calls (fixtures)

async fn http_form(client: &reqwest::Client, url: String, form: &[(&str, &str)]) -> String {
    let resp = client
        .post(&url)
        .form(form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::OK, "POST {url}: {body}");
    body
}

async fn publish(server: &Server, client: &reqwest::Client, data_id: &str, content: &str) {
    let body = http_form(
        client,
        server.url("/nacos/v1/cs/configs"),
        &[
            ("dataId", data_id),
            ("group", "BENCH"),
            ("content", content),
        ],
    )
    .await;
    assert_eq!(
        body,
        "true",
        "{}: publish of {data_id}",
        server.kind.label()
    );
}

async fn register_v1(server: &Server, client: &reqwest::Client, service: &str, ip: &str) {
    let url = server.url(&format!(
        "/nacos/v1/ns/instance?serviceName={service}&ip={ip}&port=8080&ephemeral=true"
    ));
    let body = http_form(client, url, &[]).await;
    assert_eq!(body, "ok", "{}: register", server.kind.label());
}

async fn hosts_of(server: &Server, client: &reqwest::Client, service: &str) -> usize {
    let url = server.url(&format!("/nacos/v1/ns/instance/list?serviceName={service}"));
    let value: Value = client
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    value["hosts"].as_array().map_or(0, Vec::len)
}

// ---------------------------------------------------------------------------------------------
// gRPC

fn payload(type_name: &str, body: &Value) -> Payload {
    let mut p = Payload::new(type_name, serde_json::to_vec(body).expect("json"));
    if let Some(m) = p.metadata.as_mut() {
        m.client_ip = "127.0.0.1".to_string();
    }
    p
}

fn decode(p: &Payload) -> (String, Value) {
    let body = serde_json::from_slice(p.body_bytes()).unwrap_or(Value::Null);
    (p.type_name().to_string(), body)
}

async fn unary(channel: &Channel, p: Payload) -> Result<Payload, String> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.map_err(|e| format!("not ready: {e}"))?;
    grpc.unary(
        tonic::Request::new(p),
        PathAndQuery::from_static(REQUEST_PATH),
        ProstCodec::<Payload, Payload>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
    .map_err(|s| format!("status: {s}"))
}

/// Call and check the answer's type and `resultCode` 200; returns its body.
async fn call(
    channel: &Channel,
    type_name: &str,
    body: &Value,
    want: &str,
) -> Result<Value, String> {
    let answer = unary(channel, payload(type_name, body)).await?;
    let (got, value) = decode(&answer);
    if got == want && value["resultCode"] == 200 {
        Ok(value)
    } else {
        let text = value.to_string();
        Err(format!("{got}: {}", &text[..text.len().min(300)]))
    }
}

/// A server push seen on a bi-stream.
struct Event {
    conn: usize,
    at: Instant,
    type_name: String,
    body: Value,
}

/// A registered Nacos gRPC connection. Its bi-stream is read by a task that acknowledges every
/// server push and forwards config and naming pushes to `events`.
struct GrpcConn {
    channel: Channel,
    _tx: mpsc::Sender<Payload>,
    pump: tokio::task::JoinHandle<()>,
}

impl Drop for GrpcConn {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

/// Connect as a client does: `ServerCheckRequest` (which answers the connection id), the
/// bi-stream with `ConnectionSetupRequest`, then health checks until the server knows us.
async fn grpc_connect(
    addr: SocketAddr,
    id: usize,
    events: Option<mpsc::UnboundedSender<Event>>,
) -> Result<GrpcConn, String> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let check = call(
        &channel,
        "ServerCheckRequest",
        &json!({"headers": {}}),
        "ServerCheckResponse",
    )
    .await?;
    if check["connectionId"].as_str().is_none_or(str::is_empty) {
        return Err(format!(
            "ServerCheckResponse without a connectionId: {check}"
        ));
    }
    let (tx, rx) = mpsc::channel(64);
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.map_err(|e| e.to_string())?;
    let mut stream = grpc
        .streaming(
            tonic::Request::new(ReceiverStream::new(rx)),
            PathAndQuery::from_static(BI_STREAM_PATH),
            ProstCodec::<Payload, Payload>::default(),
        )
        .await
        .map_err(|s| format!("bi-stream: {s}"))?
        .into_inner();
    let setup = json!({"clientVersion": "Nacos-Rust-Client:compare-bench", "tenant": "",
        "labels": {"source": "sdk", "module": "config"}, "abilities": {}, "headers": {},
        "module": "internal"});
    tx.send(payload("ConnectionSetupRequest", &setup))
        .await
        .map_err(|e| e.to_string())?;
    let ack_tx = tx.clone();
    let pump = tokio::spawn(async move {
        while let Ok(Some(p)) = stream.message().await {
            let at = Instant::now();
            let (type_name, body) = decode(&p);
            if let Some(stem) = type_name.strip_suffix("Request") {
                let ack = json!({"resultCode": 200, "errorCode": 0, "success": true,
                    "requestId": body["requestId"]});
                let _ = ack_tx.send(payload(&format!("{stem}Response"), &ack)).await;
            }
            if let Some(events) = &events {
                let _ = events.send(Event {
                    conn: id,
                    at,
                    type_name,
                    body,
                });
            }
        }
    });
    let started = Instant::now();
    while call(
        &channel,
        "HealthCheckRequest",
        &json!({"headers": {}}),
        "HealthCheckResponse",
    )
    .await
    .is_err()
    {
        if started.elapsed() > Duration::from_secs(10) {
            pump.abort();
            return Err("the server never registered the connection".to_string());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(GrpcConn {
        channel,
        _tx: tx,
        pump,
    })
}

/// `count` connections, at most 32 being set up at once.
async fn grpc_connect_many(
    addr: SocketAddr,
    count: usize,
    events: Option<mpsc::UnboundedSender<Event>>,
) -> Vec<GrpcConn> {
    let gate = Arc::new(Semaphore::new(32));
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let (gate, events) = (Arc::clone(&gate), events.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("semaphore");
                grpc_connect(addr, i, events).await
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(count);
    for t in tasks {
        conns.push(
            t.await
                .expect("connect task")
                .unwrap_or_else(|e| panic!("gRPC connection to {addr}: {e}")),
        );
    }
    conns
}

type MakeCall = fn(u64) -> (&'static str, Value);

/// 64 calls in flight (8 connections × 8 tasks) for `secs` after a warm-up; `check` validates
/// an answer of type `want`.
async fn grpc_load(
    conns: &[GrpcConn],
    secs: u64,
    make: MakeCall,
    want: &'static str,
    check: fn(&Value) -> bool,
    next: Arc<AtomicU64>,
) -> Outcome {
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for conn in conns {
        for _ in 0..(CONNS as usize / conns.len()) {
            let channel = conn.channel.clone();
            let (ok, errors, first_error, stop, next) = (
                Arc::clone(&ok),
                Arc::clone(&errors),
                Arc::clone(&first_error),
                Arc::clone(&stop),
                Arc::clone(&next),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let (type_name, body) = make(next.fetch_add(1, Ordering::Relaxed));
                    let result = match call(&channel, type_name, &body, want).await {
                        Ok(v) if check(&v) => Ok(()),
                        Ok(v) => Err(format!("unexpected answer: {v}")),
                        Err(e) => Err(e),
                    };
                    match result {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error.lock().expect("lock").get_or_insert(e);
                        }
                    }
                }
            }));
        }
    }
    tokio::time::sleep(WARMUP).await;
    let (before, window) = (ok.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let done = ok.load(Ordering::Relaxed) - before;
    let elapsed = window.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("load task");
    }
    let first = first_error.lock().expect("lock").take();
    Outcome {
        rate: done as f64 / elapsed,
        errors: errors.load(Ordering::Relaxed),
        first_error: first,
    }
}

fn instance_request(service: &str, ip: &str, port: u64) -> Value {
    json!({"namespace": "public", "serviceName": service, "groupName": "DEFAULT_GROUP",
        "type": "registerInstance", "headers": {}, "module": "naming",
        "instance": {"ip": ip, "port": port, "weight": 1.0, "healthy": true, "enabled": true,
            "ephemeral": true, "clusterName": "DEFAULT", "metadata": {}}})
}

fn grpc_query(_: u64) -> (&'static str, Value) {
    (
        "ConfigQueryRequest",
        json!({"dataId": "grpc-1k", "group": "BENCH", "tenant": "", "tag": "", "headers": {},
            "module": "config"}),
    )
}

fn grpc_query_ok(v: &Value) -> bool {
    v["content"].as_str().is_some_and(|c| c.len() == 1024)
}

fn grpc_register(n: u64) -> (&'static str, Value) {
    let service = format!("gsvc-{}", n % 100);
    (
        "InstanceRequest",
        instance_request(&service, &ip_of(11, n), 9000),
    )
}

fn any_answer(_: &Value) -> bool {
    true
}

// ---------------------------------------------------------------------------------------------
// Rows

/// One measured row for one server.
#[derive(Default, Clone, Copy)]
struct Measure {
    value: f64,
    errors: u64,
}

struct Ctx {
    bins: Binaries,
    secs: u64,
    repeat: u64,
    rounds: u64,
    client: reqwest::Client,
}

fn report(kind: Kind, row: &str, what: &str, o: &Outcome) {
    eprintln!(
        "  {:<12} {row:<14} {what:>12}  errors {}{}",
        kind.label(),
        o.errors,
        o.first_error
            .as_ref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
}

/// Run `load` `repeat` times on the server and keep the worst rate; errors are summed.
async fn worst_of<F, Fut>(ctx: &Ctx, kind: Kind, row: &str, mut load: F) -> Measure
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let mut m = Measure {
        value: f64::INFINITY,
        errors: 0,
    };
    for _ in 0..ctx.repeat {
        let o = load().await;
        report(kind, row, &format!("{:.0}/s", o.rate), &o);
        m.value = m.value.min(o.rate);
        m.errors += o.errors;
    }
    m
}

async fn row_get(ctx: &Ctx, kind: Kind) -> Measure {
    let server = Server::start(kind, &ctx.bins).await;
    let content = one_kib();
    if kind != Kind::Bare {
        publish(&server, &ctx.client, "bench-1k", &content).await;
    }
    let path = "/nacos/v1/cs/configs?dataId=bench-1k&group=BENCH".to_string();
    worst_of(ctx, kind, "get", || {
        let path = path.clone();
        let make: MakeReq = Arc::new(move |_| Req {
            method: Method::GET,
            path: path.clone(),
            form: None,
        });
        let expect = Expect::Body(Bytes::from(content.clone()));
        http_load(server.http, make, expect, Arc::default(), ctx.secs, None)
    })
    .await
}

async fn row_list(ctx: &Ctx, kind: Kind) -> Measure {
    let server = Server::start(kind, &ctx.bins).await;
    let register_all = || async {
        for i in 0..10 {
            register_v1(&server, &ctx.client, "bench.list", &format!("10.9.0.{i}")).await;
        }
    };
    register_all().await;
    assert_eq!(hosts_of(&server, &ctx.client, "bench.list").await, 10);
    // v1 instances expire without heartbeats; re-register them every 5 s as a client would.
    let keep_alive = async {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            register_all().await;
        }
    };
    let load = worst_of(ctx, kind, "list", || {
        let make: MakeReq = Arc::new(|_| Req {
            method: Method::GET,
            path: "/nacos/v1/ns/instance/list?serviceName=bench.list".to_string(),
            form: None,
        });
        http_load(
            server.http,
            make,
            Expect::Hosts(10),
            Arc::default(),
            ctx.secs,
            None,
        )
    });
    tokio::select! {
        m = load => m,
        _ = keep_alive => unreachable!("the keep-alive loop never ends"),
    }
}

fn v1_register(n: u64) -> Req {
    Req {
        method: Method::POST,
        path: format!(
            "/nacos/v1/ns/instance?serviceName=svc-{}&ip={}&port=8080&ephemeral=true",
            n % 100,
            ip_of(10, n)
        ),
        form: None,
    }
}

async fn row_register(ctx: &Ctx, kind: Kind) -> Measure {
    let server = Server::start(kind, &ctx.bins).await;
    // One counter for every window: each request registers an instance never seen before.
    let next = Arc::new(AtomicU64::new(0));
    worst_of(ctx, kind, "register", || {
        let expect = Expect::Body(Bytes::from_static(b"ok"));
        http_load(
            server.http,
            Arc::new(v1_register),
            expect,
            Arc::clone(&next),
            ctx.secs,
            None,
        )
    })
    .await
}

async fn row_publish(ctx: &Ctx, kind: Kind) -> Measure {
    let server = Server::start(kind, &ctx.bins).await;
    worst_of(ctx, kind, "publish", || {
        let make: MakeReq = Arc::new(|n| Req {
            method: Method::POST,
            path: "/nacos/v1/cs/configs".to_string(),
            // 200 bytes, different on every publish.
            form: Some(format!(
                "dataId=bench-{}&group=BENCH&content={n:0>200}",
                n % 1000
            )),
        });
        let expect = Expect::Body(Bytes::from_static(b"true"));
        http_load(server.http, make, expect, Arc::default(), ctx.secs, None)
    })
    .await
}

/// Idle RSS, RSS with 100,000 instances, the anonymous part of the idle RSS.
async fn row_memory(ctx: &Ctx, kind: Kind) -> (Measure, Measure, Measure) {
    let server = Server::start(kind, &ctx.bins).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = server.rss();
    let idle_anon = server.rss_anon();
    let expect = Expect::Body(Bytes::from_static(b"ok"));
    let next = Arc::new(AtomicU64::new(0));
    let o = http_load(
        server.http,
        Arc::new(v1_register),
        expect,
        next,
        0,
        Some(MEMORY_INSTANCES),
    )
    .await;
    report(kind, "memory", &format!("{:.0}/s", o.rate), &o);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let full = server.rss();
    let listed = hosts_of(&server, &ctx.client, "svc-7").await;
    assert_eq!(
        listed,
        (MEMORY_INSTANCES / 100) as usize,
        "{}: svc-7 lists {listed} instances",
        kind.label()
    );
    (
        Measure {
            value: idle as f64,
            errors: 0,
        },
        Measure {
            value: full as f64,
            errors: o.errors,
        },
        Measure {
            value: idle_anon as f64,
            errors: 0,
        },
    )
}

async fn row_grpc(ctx: &Ctx, kind: Kind, query: bool) -> Measure {
    let server = Server::start(kind, &ctx.bins).await;
    if query {
        publish(&server, &ctx.client, "grpc-1k", &one_kib()).await;
    }
    let conns = grpc_connect_many(server.grpc, 8, None).await;
    let next = Arc::new(AtomicU64::new(0));
    let row = if query { "grpc-query" } else { "grpc-register" };
    worst_of(ctx, kind, row, || {
        if query {
            grpc_load(
                &conns,
                ctx.secs,
                grpc_query,
                "ConfigQueryResponse",
                grpc_query_ok,
                Arc::clone(&next),
            )
        } else {
            grpc_load(
                &conns,
                ctx.secs,
                grpc_register,
                "InstanceResponse",
                any_answer,
                Arc::clone(&next),
            )
        }
    })
    .await
}

/// CPU time used so far by the live threads of process `pid` (`self` for this one), in
/// nanoseconds: the first field of each thread's `schedstat`, which counts to the nanosecond
/// where `stat`'s utime and stime count in 10 ms ticks. Threads that already exited are not
/// counted; both servers and this load generator keep their worker threads for the whole row.
fn cpu_ns_of(pid: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// CPU used in one push round, by the server and by this load generator, in milliseconds.
struct RoundCpu {
    server: u64,
    client: u64,
}

impl RoundCpu {
    fn start(server: &Server) -> Self {
        RoundCpu {
            server: server.cpu_ns(),
            client: cpu_ns_of("self"),
        }
    }

    /// Add the CPU used since `self` was taken to `totals`.
    fn add_to(self, server: &Server, totals: &mut (f64, f64)) {
        totals.0 += server.cpu_ns().saturating_sub(self.server) as f64 / 1e6;
        totals.1 += cpu_ns_of("self").saturating_sub(self.client) as f64 / 1e6;
    }
}

/// What a push row measured: the median time to the last connection, and the mean CPU per
/// round of the server and of the load generator.
#[derive(Clone, Copy)]
struct PushMeasure {
    last: Measure,
    server_cpu: Measure,
    client_cpu: Measure,
}

impl PushMeasure {
    fn new(lasts: Vec<f64>, missed: u64, cpu: (f64, f64), rounds: u64) -> Self {
        let per_round = |total: f64| Measure {
            value: total / rounds.max(1) as f64,
            errors: 0,
        };
        PushMeasure {
            last: Measure {
                value: median(lasts),
                errors: missed,
            },
            server_cpu: per_round(cpu.0),
            client_cpu: per_round(cpu.1),
        }
    }
}

/// Wait until every one of `PUSH_CONNECTIONS` connections reported a push that `matches`, at or
/// after `since`; returns the median and the latest arrival, or the number missing after 30 s.
async fn arrivals(
    events: &mut mpsc::UnboundedReceiver<Event>,
    since: Instant,
    matches: impl Fn(&Event) -> bool,
) -> Result<(f64, f64), usize> {
    let mut seen = HashSet::with_capacity(PUSH_CONNECTIONS);
    let mut times = Vec::with_capacity(PUSH_CONNECTIONS);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < PUSH_CONNECTIONS {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) => {
                if e.at >= since && matches(&e) && seen.insert(e.conn) {
                    times.push((e.at - since).as_secs_f64() * 1e3);
                }
            }
            _ => return Err(PUSH_CONNECTIONS - seen.len()),
        }
    }
    let last = times.iter().copied().fold(0.0, f64::max);
    Ok((median(times), last))
}

/// Record one push round: the latest arrival counts, missing pushes are errors.
fn round_done(
    kind: Kind,
    row: &str,
    round: u64,
    result: Result<(f64, f64), usize>,
    lasts: &mut Vec<f64>,
    missed: &mut u64,
) {
    match result {
        Ok((mid, last)) => {
            lasts.push(last);
            eprintln!(
                "  {:<12} {row:<14} round {round}: last {last:.1} ms (median connection {mid:.1} ms)",
                kind.label()
            );
        }
        Err(n) => {
            *missed += n as u64;
            eprintln!(
                "  {:<12} {row:<14} round {round}: {n} connections not pushed within 30 s",
                kind.label()
            );
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn drain(events: &mut mpsc::UnboundedReceiver<Event>) {
    while events.try_recv().is_ok() {}
}

async fn row_config_push(ctx: &Ctx, kind: Kind) -> PushMeasure {
    let server = Server::start(kind, &ctx.bins).await;
    let content = one_kib();
    publish(&server, &ctx.client, "push-cfg", &content).await;
    let md5 = nacos_core::md5_hex(&content);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let conns = grpc_connect_many(server.grpc, PUSH_CONNECTIONS, Some(events_tx)).await;
    let listen_with = |md5: &str| {
        json!({"listen": true, "headers": {}, "module": "config",
            "configListenContexts": [{"dataId": "push-cfg", "group": "BENCH", "tenant": "",
                "md5": md5}]})
    };
    let query = json!({"dataId": "push-cfg", "group": "BENCH", "tenant": "", "tag": "",
        "headers": {}, "module": "config"});
    // A listen that reports the key as changed (r-nacos may, right after the publish) is
    // followed by what a client does then: query the config and listen again with the md5 the
    // server answered. Every connection then holds the server's current md5.
    let gate = Arc::new(Semaphore::new(64));
    let tasks: Vec<_> = conns
        .iter()
        .map(|c| {
            let (channel, gate, query) = (c.channel.clone(), Arc::clone(&gate), query.clone());
            let mut listen = listen_with(&md5);
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("semaphore");
                let mut again = 0u32;
                loop {
                    let answer = call(
                        &channel,
                        "ConfigBatchListenRequest",
                        &listen,
                        "ConfigChangeBatchListenResponse",
                    )
                    .await?;
                    if answer["changedConfigs"]
                        .as_array()
                        .is_none_or(Vec::is_empty)
                    {
                        return Ok(again);
                    }
                    // r-nacos has kept reporting one key as changed for more than 5 s after
                    // a publish; give it 30 s before calling the run failed.
                    if again == 300 {
                        return Err(format!("every listen reports a change: {answer}"));
                    }
                    again += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    // r-nacos has answered this query with "config data not exist" right
                    // after a publish it had acknowledged; listen again then, and ask later.
                    match call(
                        &channel,
                        "ConfigQueryRequest",
                        &query,
                        "ConfigQueryResponse",
                    )
                    .await
                    {
                        Ok(current) => {
                            if let Some(md5) = current["md5"].as_str() {
                                listen["configListenContexts"][0]["md5"] = Value::from(md5);
                            }
                        }
                        Err(e) if e.contains("config data not exist") => {}
                        Err(e) => return Err(e),
                    }
                }
            })
        })
        .collect();
    let mut repeated = 0;
    for t in tasks {
        let again = t.await.expect("listen task");
        let again = again.unwrap_or_else(|e| panic!("{}: listen: {e}", kind.label()));
        repeated += u64::from(again.min(1));
    }
    if repeated > 0 {
        eprintln!(
            "  {:<12} config-push    {repeated} listens reported the key as changed at first and \
             were repeated",
            kind.label()
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut lasts = Vec::new();
    let mut missed = 0;
    let mut cpu = (0.0, 0.0);
    for round in 0..ctx.rounds {
        drain(&mut events);
        let round_cpu = RoundCpu::start(&server);
        let since = Instant::now();
        publish(
            &server,
            &ctx.client,
            "push-cfg",
            &format!("{content}{round}"),
        )
        .await;
        let is_change = |e: &Event| {
            e.type_name == "ConfigChangeNotifyRequest" && e.body["dataId"] == "push-cfg"
        };
        let result = arrivals(&mut events, since, is_change).await;
        round_cpu.add_to(&server, &mut cpu);
        round_done(kind, "config-push", round, result, &mut lasts, &mut missed);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(conns);
    PushMeasure::new(lasts, missed, cpu, ctx.rounds)
}

async fn row_naming_push(ctx: &Ctx, kind: Kind) -> PushMeasure {
    let server = Server::start(kind, &ctx.bins).await;
    let service = "push.svc";
    let registrar = grpc_connect(server.grpc, usize::MAX, None)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", kind.label()));
    call(
        &registrar.channel,
        "InstanceRequest",
        &instance_request(service, "10.99.1.1", 8080),
        "InstanceResponse",
    )
    .await
    .unwrap_or_else(|e| panic!("{}: register: {e}", kind.label()));
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let conns = grpc_connect_many(server.grpc, PUSH_CONNECTIONS, Some(events_tx)).await;
    let subscribe = json!({"namespace": "public", "serviceName": service,
        "groupName": "DEFAULT_GROUP", "clusters": "", "subscribe": true, "headers": {},
        "module": "naming"});
    let gate = Arc::new(Semaphore::new(64));
    let tasks: Vec<_> = conns
        .iter()
        .map(|c| {
            let (channel, subscribe, gate) =
                (c.channel.clone(), subscribe.clone(), Arc::clone(&gate));
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("semaphore");
                call(
                    &channel,
                    "SubscribeServiceRequest",
                    &subscribe,
                    "SubscribeServiceResponse",
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await
            .expect("subscribe task")
            .unwrap_or_else(|e| panic!("{}: subscribe: {e}", kind.label()));
    }
    // Past any push that answers the subscriptions, and past a debounce window.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut lasts = Vec::new();
    let mut missed = 0;
    let mut cpu = (0.0, 0.0);
    for round in 0..ctx.rounds {
        drain(&mut events);
        let ip = format!("10.99.0.{}", round % 250);
        let round_cpu = RoundCpu::start(&server);
        let since = Instant::now();
        call(
            &registrar.channel,
            "InstanceRequest",
            &instance_request(service, &ip, 8080),
            "InstanceResponse",
        )
        .await
        .unwrap_or_else(|e| panic!("{}: register: {e}", kind.label()));
        let lists_it = |e: &Event| {
            e.type_name == "NotifySubscriberRequest"
                && e.body["serviceInfo"]["hosts"]
                    .as_array()
                    .is_some_and(|hosts| hosts.iter().any(|h| h["ip"] == ip.as_str()))
        };
        let result = arrivals(&mut events, since, lists_it).await;
        round_cpu.add_to(&server, &mut cpu);
        round_done(kind, "naming-push", round, result, &mut lasts, &mut missed);
        // A quiet service again before the next round.
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    drop(conns);
    PushMeasure::new(lasts, missed, cpu, ctx.rounds)
}

// ---------------------------------------------------------------------------------------------
// The table

#[derive(Clone, Copy)]
enum Goal {
    /// ours / theirs at least this (throughput).
    AtLeast(f64),
    /// ours / theirs at most this (memory, latency).
    AtMost(f64),
    /// Our own value at most this, whatever r-nacos's (idle RSS).
    OursAtMost(f64),
    None,
}

#[derive(Clone, Copy)]
enum Unit {
    PerSec,
    Bytes,
    Millis,
    Plain,
}

fn fmt_value(v: f64, unit: Unit) -> String {
    if !v.is_finite() {
        return "-".to_string();
    }
    match unit {
        Unit::PerSec => format!("{}/s", thousands(v.round() as u64)),
        Unit::Bytes => format!("{:.1} MB", v / 1e6),
        Unit::Millis => format!("{v:.1} ms"),
        Unit::Plain => thousands(v.round().max(0.0) as u64),
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

struct Line {
    label: String,
    ours: Measure,
    theirs: Option<Measure>,
    /// Overrides the "r-nacos" cell (the bare server line).
    theirs_label: Option<String>,
    unit: Unit,
    goal: Goal,
}

fn print_table(lines: &[Line], have_r: bool) {
    println!("| row | this server | r-nacos 0.8.8 | ratio | goal | met | errors (ours / theirs) |");
    println!("|---|---|---|---|---|---|---|");
    for l in lines {
        let theirs_cell = match (&l.theirs_label, l.theirs) {
            (Some(label), Some(m)) => format!("{label} {}", fmt_value(m.value, l.unit)),
            (None, Some(m)) => fmt_value(m.value, l.unit),
            (_, None) if have_r => "-".to_string(),
            (_, None) => "(no rnacos)".to_string(),
        };
        let ratio = l
            .theirs
            .map(|t| l.ours.value / t.value)
            .filter(|r| r.is_finite());
        let (goal, met) = match (l.goal, ratio) {
            (Goal::AtLeast(g), Some(r)) => (format!("≥ {g}"), if r >= g { "yes" } else { "no" }),
            (Goal::AtMost(g), Some(r)) => (format!("≤ {g}"), if r <= g { "yes" } else { "no" }),
            (Goal::AtLeast(g), None) => (format!("≥ {g}"), "-"),
            (Goal::AtMost(g), None) => (format!("≤ {g}"), "-"),
            (Goal::OursAtMost(g), _) => (
                format!("≤ {} (ours)", fmt_value(g, l.unit)),
                if l.ours.value <= g { "yes" } else { "no" },
            ),
            (Goal::None, _) => (String::new(), ""),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} / {} |",
            l.label,
            fmt_value(l.ours.value, l.unit),
            theirs_cell,
            ratio.map_or("-".to_string(), |r| format!("{r:.2}")),
            goal,
            met,
            l.ours.errors,
            l.theirs.map_or("-".to_string(), |t| t.errors.to_string()),
        );
    }
}

// ---------------------------------------------------------------------------------------------

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn newest_source(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_source(&path)
        } else {
            entry.metadata().ok().and_then(|m| m.modified().ok())
        };
        newest = newest.max(t);
    }
    newest
}

fn command_line(cmd: &str, args: &[&str], dir: &Path) -> String {
    Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn main() {
    if let Ok(port) = std::env::var(BARE_ENV) {
        bare_server(&port);
        return;
    }
    let root = workspace_root();
    let ours = std::env::var_os("BENCH_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target"));
            target.join("release").join("nacos-server")
        });
    assert!(
        ours.is_file(),
        "no server binary at {}: run `cargo build --release -p nacos-server` first (or set \
         BENCH_SERVER)",
        ours.display()
    );
    let built = std::fs::metadata(&ours).and_then(|m| m.modified()).ok();
    let sources = ["server", "core", "storage-embedded", "plugins"]
        .iter()
        .filter_map(|d| newest_source(&root.join(d).join("src")))
        .max();
    if let (Some(built), Some(sources)) = (built, sources)
        && sources > built
    {
        eprintln!(
            "warning: {} is older than the server's sources; rebuild it with \
             `cargo build --release -p nacos-server`",
            ours.display()
        );
    }
    let rnacos = std::env::var_os("RNACOS")
        .map(PathBuf::from)
        .or_else(|| on_path("rnacos"));
    let only: Option<Vec<String>> = std::env::var("BENCH_ONLY").ok().map(|v| {
        v.split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    });
    if let Some(only) = &only {
        for name in only {
            assert!(
                ROWS.contains(&name.as_str()),
                "BENCH_ONLY: unknown row {name}; rows: {ROWS:?}"
            );
        }
    }
    let wanted = |row: &str| only.as_ref().is_none_or(|o| o.iter().any(|r| r == row));
    let ctx = Ctx {
        bins: Binaries {
            ours,
            rnacos: rnacos.clone(),
        },
        secs: env_u64("BENCH_SECS", 5),
        repeat: env_u64("BENCH_REPEAT", 1).max(1),
        rounds: env_u64("BENCH_ROUNDS", 5).max(1),
        client: reqwest::Client::new(),
    };

    let commit = command_line("git", &["rev-parse", "--short", "HEAD"], &root);
    let dirty = !command_line(
        "git",
        &["status", "--porcelain", "--untracked-files=no"],
        &root,
    )
    .is_empty();
    let r_version = rnacos
        .as_ref()
        .map(|r| command_line(&r.to_string_lossy(), &["--version"], &root));
    let date = command_line("date", &["-u", "+%F %H:%M UTC"], &root);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());

    // The load generator: two worker threads, like `wrk -t2`.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let have_r = rnacos.is_some();
    let lines = runtime.block_on(async {
        let mut lines = Vec::new();
        let both = |ours: Measure, theirs: Option<Measure>, label: &str, unit, goal| Line {
            label: label.to_string(),
            ours,
            theirs,
            theirs_label: None,
            unit,
            goal,
        };
        let servers: Vec<Kind> = if have_r {
            vec![Kind::Ours, Kind::RNacos]
        } else {
            eprintln!("rnacos is not on PATH (nor RNACOS set): measuring this server alone");
            vec![Kind::Ours]
        };
        macro_rules! per_server {
            ($f:expr) => {{
                let mut ms = Vec::new();
                for &k in &servers {
                    ms.push($f(k).await);
                }
                (ms[0], ms.get(1).copied())
            }};
        }
        if wanted("get") {
            let bare = row_get(&ctx, Kind::Bare).await;
            let (o, t) = per_server!(|k| row_get(&ctx, k));
            lines.push(both(
                o,
                t,
                "v1 config GET, 1 KiB",
                Unit::PerSec,
                Goal::AtLeast(1.5),
            ));
            lines.push(Line {
                label: "v1 config GET ÷ bare axum server, same 1 KiB".to_string(),
                ours: o,
                theirs: Some(bare),
                theirs_label: Some("bare:".to_string()),
                unit: Unit::PerSec,
                goal: Goal::AtLeast(0.85),
            });
        }
        if wanted("list") {
            let (o, t) = per_server!(|k| row_list(&ctx, k));
            lines.push(both(
                o,
                t,
                "v1 instance list, 10 instances",
                Unit::PerSec,
                Goal::AtLeast(1.5),
            ));
        }
        if wanted("register") {
            let (o, t) = per_server!(|k| row_register(&ctx, k));
            let label = "v1 register, a distinct instance per request, 100 services";
            lines.push(both(o, t, label, Unit::PerSec, Goal::AtLeast(1.5)));
        }
        if wanted("publish") {
            let (o, t) = per_server!(|k| row_publish(&ctx, k));
            let label = "v1 config publish, 1000 keys, 200-byte values, durable";
            lines.push(both(o, t, label, Unit::PerSec, Goal::AtLeast(1.5)));
        }
        if wanted("memory") {
            let ((oi, of, oa), theirs) = per_server!(|k| row_memory(&ctx, k));
            let (ti, tf, ta) = (
                theirs.map(|t| t.0),
                theirs.map(|t| t.1),
                theirs.map(|t| t.2),
            );
            let label = "RSS with exactly 100,000 ephemeral instances in 100 services";
            lines.push(both(of, tf, label, Unit::Bytes, Goal::AtMost(0.5)));
            lines.push(both(
                oi,
                ti,
                "idle RSS right after start",
                Unit::Bytes,
                Goal::OursAtMost(15e6),
            ));
            lines.push(both(
                oa,
                ta,
                "  of which anonymous (RssAnon; the rest is pages of the binary and libraries)",
                Unit::Bytes,
                Goal::None,
            ));
            let per = |i: Measure, f: Measure| Measure {
                value: (f.value - i.value) / MEMORY_INSTANCES as f64,
                errors: f.errors,
            };
            let po = per(oi, of);
            let pt = theirs.map(|(i, f, _)| per(i, f));
            let label = "bytes per instance: (RSS with them - idle RSS) / 100,000";
            lines.push(both(po, pt, label, Unit::Plain, Goal::None));
        }
        if wanted("grpc-query") {
            let (o, t) = per_server!(|k| row_grpc(&ctx, k, true));
            lines.push(both(
                o,
                t,
                "gRPC ConfigQueryRequest, 1 KiB",
                Unit::PerSec,
                Goal::AtLeast(1.5),
            ));
        }
        if wanted("grpc-register") {
            let (o, t) = per_server!(|k| row_grpc(&ctx, k, false));
            let label = "gRPC InstanceRequest register, distinct instances";
            lines.push(both(o, t, label, Unit::PerSec, Goal::AtLeast(1.5)));
        }
        // Each push row also reports the CPU a round costs: the server's (the publish or
        // register, then 1,000 pushes) and this load generator's (receiving, decoding and
        // acknowledging them), since both share the two cores the latency is measured on.
        let push_cpu = |lines: &mut Vec<Line>, o: PushMeasure, t: Option<PushMeasure>| {
            let label = "  server CPU per round";
            let (os, ts) = (o.server_cpu, t.map(|t| t.server_cpu));
            lines.push(both(os, ts, label, Unit::Millis, Goal::None));
            let label = "  load-generator CPU per round";
            let (oc, tc) = (o.client_cpu, t.map(|t| t.client_cpu));
            lines.push(both(oc, tc, label, Unit::Millis, Goal::None));
        };
        if wanted("config-push") {
            let (o, t) = per_server!(|k| row_config_push(&ctx, k));
            let label = "HTTP publish → last of 1,000 gRPC config listeners notified (median)";
            lines.push(both(
                o.last,
                t.map(|t| t.last),
                label,
                Unit::Millis,
                Goal::AtMost(0.5),
            ));
            push_cpu(&mut lines, o, t);
        }
        if wanted("naming-push") {
            let (o, t) = per_server!(|k| row_naming_push(&ctx, k));
            let label = "gRPC register → last of 1,000 gRPC subscribers pushed (median)";
            lines.push(both(
                o.last,
                t.map(|t| t.last),
                label,
                Unit::Millis,
                Goal::AtMost(0.5),
            ));
            push_cpu(&mut lines, o, t);
        }
        lines
    });

    println!();
    println!(
        "{date}, {cpus} CPUs, commit {commit}{}, r-nacos: {}; HTTP 64 keep-alive connections \
         over 2 client threads, gRPC 64 calls in flight; {} s windows, worst of {}; {} push rounds",
        if dirty {
            " (with uncommitted changes)"
        } else {
            ""
        },
        r_version.as_deref().unwrap_or("not run"),
        ctx.secs,
        ctx.repeat,
        ctx.rounds
    );
    println!();
    print_table(&lines, have_r);
    let total_errors: u64 = lines
        .iter()
        .map(|l| l.ours.errors + l.theirs.map_or(0, |t| t.errors))
        .sum();
    if total_errors > 0 {
        println!();
        println!("{total_errors} failed requests or missed pushes in all (see the log above)");
    }
}
