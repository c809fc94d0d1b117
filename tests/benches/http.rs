//! HTTP throughput benchmark: v1 config GET and instance list at 64 keep-alive connections,
//! beside a minimal hyper server answering a 1 KiB body from this same process (the machine's
//! ceiling for this load generator). Run: `cargo bench -p nacos-tests --bench http`.
//!
//! Environment: `BENCH_SECS` (default 5) per measurement, `BENCH_CONNS` (default 64),
//! `BENCH_BACKEND` (`embedded`, the default, `postgresql`, or `mysql`: a private server started for
//! the run, as the MySQL tests do; it is tuned for tests, `innodb_flush_log_at_trx_commit=2`,
//! while the embedded store fsyncs every write, so publish rates are not like for like).
//! Besides the reads, publishes are measured: each connection updates its own key.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use nacos_server::cli::Mode;
use nacos_server::settings::Properties;
use nacos_server::{App, Listeners, Settings};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A hyper server that answers every request with the same 1 KiB body.
async fn start_ceiling_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let body = Bytes::from(vec![b'x'; 1024]);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
                    let body = body.clone();
                    async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn start_nacos(home: &std::path::Path, props: Vec<(String, String)>) -> SocketAddr {
    let settings = Settings::from_properties(
        Mode::Standalone,
        home.to_path_buf(),
        Properties::from_pairs(props),
    )
    .expect("settings");
    // HTTP on an ephemeral port; gRPC on an ephemeral port too (clients are not benchmarked).
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind grpc");
    let addr = http.local_addr().expect("addr");
    let app = App::open(settings).await.expect("open");
    tokio::spawn(nacos_server::run(
        Listeners {
            http,
            grpc,
            cluster: None,
            raft: None,
        },
        app,
        std::future::pending(),
    ));
    addr
}

/// Drive `conns` keep-alive connections sending GET `path` for `secs`; returns requests/s.
async fn load(addr: SocketAddr, path: &str, conns: u64, secs: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (done, errors, stop) = (done.clone(), errors.clone(), stop.clone());
        let uri = format!("http://{addr}{path}");
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            while !stop.load(Ordering::Relaxed) {
                let req = Request::get(&uri)
                    .header("host", addr.to_string())
                    .body(Empty::<Bytes>::new())
                    .expect("request");
                match sender.send_request(req).await {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = resp.into_body().collect().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(resp) => {
                        let _ = resp.into_body().collect().await;
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }));
    }
    // Warm up, then measure a window.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start_count = done.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let count = done.load(Ordering::Relaxed) - start_count;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let errs = errors.load(Ordering::Relaxed);
    assert_eq!(errs, 0, "{errs} failed requests against {path}");
    count as f64 / elapsed
}

/// Drive `conns` keep-alive connections, each publishing new content to its own key, for
/// `secs`; returns publishes/s.
async fn load_publish(addr: SocketAddr, conns: u64, secs: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for conn in 0..conns {
        let (done, errors, stop) = (done.clone(), errors.clone(), stop.clone());
        let uri = format!("http://{addr}/nacos/v1/cs/configs");
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("handshake");
            tokio::spawn(connection);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = format!("dataId=bench-pub-{conn}&group=BENCH&content=value-{n}");
                let req = Request::post(&uri)
                    .header("host", addr.to_string())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Full::new(Bytes::from(body)))
                    .expect("request");
                match sender.send_request(req).await {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = resp.into_body().collect().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(resp) => {
                        let _ = resp.into_body().collect().await;
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start_count = done.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let count = done.load(Ordering::Relaxed) - start_count;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let errs = errors.load(Ordering::Relaxed);
    assert_eq!(errs, 0, "{errs} failed publishes");
    count as f64 / elapsed
}

/// Auth on with a proper key and server identity (the bench's own values).
fn props_for_auth_bench() -> Vec<(String, String)> {
    [
        ("nacos.core.auth.enabled", "true"),
        (
            "nacos.core.auth.plugin.nacos.token.secret.key",
            "YmVuY2gtb25seS1rZXktYmVuY2gtb25seS1rZXktMDEyMzQ1Njc4OQ==",
        ),
        ("nacos.core.auth.server.identity.key", "bench-peer"),
        ("nacos.core.auth.server.identity.value", "bench-peer-value"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Create the admin, publish the benchmarked config as the admin, and return a token.
async fn auth_bench_token(client: &reqwest::Client, addr: SocketAddr, content: &str) -> String {
    let resp = client
        .post(format!("http://{addr}/nacos/v1/auth/users/admin"))
        .form(&[("password", "bench-admin")])
        .send()
        .await
        .expect("init admin");
    assert!(resp.status().is_success());
    let login: serde_json::Value = client
        .post(format!(
            "http://{addr}/nacos/v1/auth/login?username=nacos&password=bench-admin"
        ))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login json");
    let token = login["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_string();
    let resp = client
        .post(format!("http://{addr}/nacos/v1/cs/configs"))
        .header("accessToken", token.as_str())
        .form(&[
            ("dataId", "bench.properties"),
            ("group", "BENCH"),
            ("content", content),
        ])
        .send()
        .await
        .expect("publish");
    assert!(resp.status().is_success());
    token
}

fn main() {
    let secs = env_or("BENCH_SECS", 5);
    let conns = env_or("BENCH_CONNS", 64);
    let backend = std::env::var("BENCH_BACKEND").unwrap_or_else(|_| "embedded".to_string());
    // Kept alive for the whole run: the database server and its database.
    let mariadb = match backend.as_str() {
        "mysql" => Some(
            nacos_tests::mariadb::MariaDb::start(&nacos_tests::mariadb::ServerOptions::default())
                .expect("start a private MariaDB server (is mariadb-server installed?)"),
        ),
        "embedded" | "postgresql" => None,
        other => panic!("BENCH_BACKEND must be embedded, mysql or postgresql, not {other}"),
    };
    let postgres = (backend == "postgresql").then(|| {
        nacos_tests::postgres::PgServer::shared()
            .expect("start a private PostgreSQL server (are the PostgreSQL binaries installed?)")
    });
    let mysql_db = mariadb.as_ref().map(|m| m.create_database());
    let pg_db = postgres.map(|pg| pg.create_database());
    let mut props = mysql_db
        .as_ref()
        .map(|db| db.properties(true))
        .or_else(|| pg_db.as_ref().map(|db| db.properties(true)))
        .unwrap_or_default();
    if backend != "embedded" {
        props.push((
            "db.pool.config.maximumPoolSize".to_string(),
            "32".to_string(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let home = tempfile::tempdir().expect("home");
        let ceiling = start_ceiling_server().await;
        let nacos = start_nacos(home.path(), props.clone()).await;
        let client = reqwest::Client::new();
        let content = "k=v\n".repeat(256);
        let resp = client
            .post(format!("http://{nacos}/nacos/v1/cs/configs"))
            .form(&[
                ("dataId", "bench.properties"),
                ("group", "BENCH"),
                ("content", content.as_str()),
            ])
            .send()
            .await
            .expect("publish");
        assert!(resp.status().is_success());
        for i in 0..10 {
            let resp = client
                .post(format!("http://{nacos}/nacos/v1/ns/instance"))
                .query(&[
                    ("serviceName", "bench.svc"),
                    ("ip", &format!("10.0.0.{i}")),
                    ("port", "8080"),
                ])
                .send()
                .await
                .expect("register");
            assert!(resp.status().is_success());
        }

        println!(
            "load: {conns} keep-alive connections, {secs} s per measurement, one process, \
             storage {backend}"
        );
        let ceiling_rps = load(ceiling, "/", conns, secs).await;
        println!("hyper 1 KiB ceiling          {ceiling_rps:>10.0} req/s");
        let get_rps = load(
            nacos,
            "/nacos/v1/cs/configs?dataId=bench.properties&group=BENCH",
            conns,
            secs,
        )
        .await;
        println!(
            "v1 config GET (1 KiB)        {get_rps:>10.0} req/s  ({:.2} of ceiling)",
            get_rps / ceiling_rps
        );
        let list_rps = load(
            nacos,
            "/nacos/v1/ns/instance/list?serviceName=bench.svc",
            conns,
            secs,
        )
        .await;
        println!(
            "v1 instance list (10 hosts)  {list_rps:>10.0} req/s  ({:.2} of ceiling)",
            list_rps / ceiling_rps
        );
        let publish_rps = load_publish(nacos, conns, secs).await;
        println!("v1 config publish            {publish_rps:>10.0} req/s  ({backend})");

        // The same config GET with auth on: a second server, a token from login in the query.
        let auth_home = tempfile::tempdir().expect("home");
        let mut auth_props = props_for_auth_bench();
        auth_props.extend(props.iter().cloned());
        let secured = start_nacos(auth_home.path(), auth_props).await;
        let token = auth_bench_token(&client, secured, &content).await;
        let auth_rps = load(
            secured,
            &format!(
                "/nacos/v1/cs/configs?dataId=bench.properties&group=BENCH&accessToken={token}"
            ),
            conns,
            secs,
        )
        .await;
        println!(
            "v1 config GET, auth on       {auth_rps:>10.0} req/s  ({:.2} of auth off)",
            auth_rps / get_rps
        );
    });
    drop(pg_db);
    drop(mysql_db);
    drop(mariadb);
}
