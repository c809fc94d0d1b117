//! HTTP throughput benchmark: v1 config GET and instance list at 64 keep-alive connections,
//! beside a minimal hyper server answering a 1 KiB body from this same process (the machine's
//! ceiling for this load generator). Run: `cargo bench -p nacos-tests --bench http`.
//!
//! Environment: `BENCH_SECS` (default 5) per measurement, `BENCH_CONNS` (default 64).

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

async fn start_nacos(home: &std::path::Path) -> SocketAddr {
    let settings =
        Settings::from_properties(Mode::Standalone, home.to_path_buf(), Properties::default())
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
        Listeners { http, grpc },
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

fn main() {
    let secs = env_or("BENCH_SECS", 5);
    let conns = env_or("BENCH_CONNS", 64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let home = tempfile::tempdir().expect("home");
        let ceiling = start_ceiling_server().await;
        let nacos = start_nacos(home.path()).await;
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

        println!("load: {conns} keep-alive connections, {secs} s per measurement, one process");
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
    });
}
