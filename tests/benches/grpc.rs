//! gRPC benchmark: unary `ConfigQueryRequest` and `InstanceRequest` calls per second over 64
//! concurrent streams, beside a minimal tonic server answering the same wire messages with a
//! constant payload from this same process (the ceiling); and push fan-out: the time from one
//! publish to the last of 1,000 listening connections receiving `ConfigChangeNotifyRequest`.
//! Run: `cargo bench -p nacos-tests --bench grpc`.
//!
//! Environment: `BENCH_SECS` (default 5), `BENCH_LISTENERS` (default 1000).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use nacos_server::cli::Mode;
use nacos_server::protocol::transport::{BI_STREAM_PATH, Payload, REQUEST_PATH};
use nacos_server::settings::Properties;
use nacos_server::{App, Listeners, Settings};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::codegen::{BoxFuture, Service, StdError, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn payload(type_name: &str, body: &Value) -> Payload {
    Payload::new(type_name, serde_json::to_vec(body).expect("json"))
}

fn decode(p: &Payload) -> (String, Value) {
    let value = serde_json::from_slice(p.body_bytes()).unwrap_or(Value::Null);
    (p.type_name().to_string(), value)
}

// ---------------------------------------------------------------------------------------------
// The ceiling: a tonic `Request` service that answers every call with one constant payload.

#[derive(Clone)]
struct Constant(Arc<Payload>);

impl NamedService for Constant {
    const NAME: &'static str = "Request";
}

impl UnaryService<Payload> for Constant {
    type Response = Payload;
    type Future = BoxFuture<tonic::Response<Payload>, tonic::Status>;

    fn call(&mut self, _request: tonic::Request<Payload>) -> Self::Future {
        let answer = (*self.0).clone();
        Box::pin(async move { Ok(tonic::Response::new(answer)) })
    }
}

impl<B> Service<http::Request<B>> for Constant
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let me = self.clone();
        Box::pin(async move {
            let mut grpc = Grpc::new(ProstCodec::<Payload, Payload>::default());
            Ok(grpc.unary(me, req).await)
        })
    }
}

async fn start_ceiling(answer: Payload) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = Constant(Arc::new(answer));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            // As the server under test does: no Nagle delay on small frames.
            .serve_with_incoming(
                TcpListenerStream::new(listener)
                    .map(|stream| stream.and_then(|s| s.set_nodelay(true).map(|()| s))),
            ),
    );
    addr
}

// ---------------------------------------------------------------------------------------------
// Clients

async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect")
}

async fn unary(channel: &Channel, p: Payload) -> Result<Payload, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    grpc.unary(
        tonic::Request::new(p),
        http::uri::PathAndQuery::from_static(REQUEST_PATH),
        ProstCodec::<Payload, Payload>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// A registered Nacos connection: its bi-stream sender and receiver.
struct Connection {
    channel: Channel,
    tx: mpsc::Sender<Payload>,
    rx: tonic::Streaming<Payload>,
}

async fn register(addr: SocketAddr) -> Connection {
    let channel = channel(addr).await;
    let (tx, rx) = mpsc::channel(16);
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    let stream = grpc
        .streaming(
            tonic::Request::new(ReceiverStream::new(rx)),
            http::uri::PathAndQuery::from_static(BI_STREAM_PATH),
            ProstCodec::<Payload, Payload>::default(),
        )
        .await
        .expect("bi-stream")
        .into_inner();
    let setup = json!({"clientVersion": "bench", "tenant": "", "labels": {"source": "sdk", "module": "config"}, "abilities": {}, "headers": {}, "module": "internal"});
    tx.send(payload("ConnectionSetupRequest", &setup))
        .await
        .expect("setup");
    loop {
        let answer = unary(&channel, payload("HealthCheckRequest", &json!({})))
            .await
            .expect("health");
        if answer.type_name() == "HealthCheckResponse" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Connection {
        channel,
        tx,
        rx: stream,
    }
}

/// 8 connections × 8 tasks = 64 concurrent streams sending `make()` for `secs`.
async fn unary_load(
    channels: Vec<Channel>,
    secs: u64,
    make: fn(u64) -> (String, Value),
    expect: &'static str,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (c, channel) in channels.into_iter().enumerate() {
        for t in 0..8u64 {
            let (done, stop, channel) = (done.clone(), stop.clone(), channel.clone());
            let seed = c as u64 * 8 + t;
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (type_name, body) = make(seed * 1_000_000 + i);
                    let answer = unary(&channel, payload(&type_name, &body))
                        .await
                        .expect("call");
                    let (got, value) = decode(&answer);
                    assert_eq!(got, expect, "{value}");
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = done.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let count = done.load(Ordering::Relaxed) - start;
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("load task");
    }
    count as f64 / elapsed
}

fn config_query(_: u64) -> (String, Value) {
    (
        "ConfigQueryRequest".to_string(),
        json!({"dataId": "bench.properties", "group": "BENCH", "tenant": "", "tag": "", "headers": {}, "module": "config"}),
    )
}

fn instance_register(i: u64) -> (String, Value) {
    let port = 1024 + (i % 60_000);
    (
        "InstanceRequest".to_string(),
        json!({"namespace": "public", "serviceName": "bench.svc", "groupName": "DEFAULT_GROUP", "type": "registerInstance",
               "instance": {"ip": "10.0.0.1", "port": port, "weight": 1.0, "healthy": true, "enabled": true, "ephemeral": true, "clusterName": "DEFAULT", "metadata": {}},
               "headers": {}, "module": "naming"}),
    )
}

fn main() {
    let secs = env_or("BENCH_SECS", 5);
    let listeners = env_or("BENCH_LISTENERS", 1000) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let home = tempfile::tempdir().expect("home");
        let settings = Settings::from_properties(Mode::Standalone, home.path().to_path_buf(), Properties::default())
            .expect("settings");
        let listeners_pair = Listeners {
            http: tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind http"),
            grpc: tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind grpc"),
            cluster: None,
            raft: None,
        };
        let http_addr = listeners_pair.http.local_addr().expect("addr");
        let grpc_addr = listeners_pair.grpc.local_addr().expect("addr");
        let app = App::open(settings).await.expect("open");
        tokio::spawn(nacos_server::run(listeners_pair, app, std::future::pending()));

        let http = reqwest::Client::new();
        let content = "k=v\n".repeat(256);
        let publish = |content: String| {
            let http = http.clone();
            async move {
                let resp = http
                    .post(format!("http://{http_addr}/nacos/v1/cs/configs"))
                    .form(&[("dataId", "bench.properties"), ("group", "BENCH"), ("content", content.as_str())])
                    .send()
                    .await
                    .expect("publish");
                assert!(resp.status().is_success());
            }
        };
        publish(content.clone()).await;

        // The ceiling answers with what the server answers to a config query.
        let probe = register(grpc_addr).await;
        let (_, query_body) = config_query(0);
        let real_answer = unary(&probe.channel, payload("ConfigQueryRequest", &query_body)).await.expect("query");
        let ceiling = start_ceiling(real_answer).await;

        println!("load: 64 concurrent unary streams (8 connections x 8), {secs} s per measurement, one process");
        let mut ceiling_channels = Vec::new();
        for _ in 0..8 {
            ceiling_channels.push(channel(ceiling).await);
        }
        let ceiling_rps = unary_load(ceiling_channels, secs, config_query, "ConfigQueryResponse").await;
        println!("tonic constant-answer ceiling   {ceiling_rps:>10.0} calls/s");

        let mut connections = Vec::new();
        for _ in 0..8 {
            connections.push(register(grpc_addr).await);
        }
        let channels: Vec<Channel> = connections.iter().map(|c| c.channel.clone()).collect();
        let query_rps = unary_load(channels.clone(), secs, config_query, "ConfigQueryResponse").await;
        println!("ConfigQueryRequest (1 KiB)      {query_rps:>10.0} calls/s  ({:.2} of ceiling)", query_rps / ceiling_rps);
        let register_rps = unary_load(channels, secs, instance_register, "InstanceResponse").await;
        println!("InstanceRequest (register)      {register_rps:>10.0} calls/s  ({:.2} of ceiling)", register_rps / ceiling_rps);
        drop(connections);

        // Push fan-out.
        let md5 = nacos_core::md5_hex(&content);
        let mut receivers = Vec::with_capacity(listeners);
        for _ in 0..listeners {
            let mut conn = register(grpc_addr).await;
            let listen = json!({"listen": true, "configListenContexts": [{"dataId": "bench.properties", "group": "BENCH", "tenant": "", "md5": md5}], "headers": {}, "module": "config"});
            let answer = unary(&conn.channel, payload("ConfigBatchListenRequest", &listen)).await.expect("listen");
            assert_eq!(answer.type_name(), "ConfigChangeBatchListenResponse");
            receivers.push(tokio::spawn(async move {
                loop {
                    let Ok(Some(p)) = conn.rx.message().await else { return None };
                    let (type_name, body) = decode(&p);
                    if type_name == "ConfigChangeNotifyRequest" {
                        let at = Instant::now();
                        let ack = json!({"resultCode": 200, "errorCode": 0, "requestId": body["requestId"]});
                        let _ = conn.tx.send(payload("ConfigChangeNotifyResponse", &ack)).await;
                        return Some(at);
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let published = Instant::now();
        publish(format!("{content}changed\n")).await;
        let mut latencies = Vec::with_capacity(listeners);
        for r in receivers {
            if let Ok(Some(at)) = tokio::time::timeout(Duration::from_secs(30), r).await.expect("fan-out within 30 s") {
                latencies.push(at.duration_since(published));
            }
        }
        latencies.sort();
        assert_eq!(latencies.len(), listeners, "every listener is notified");
        let p50 = latencies[latencies.len() / 2];
        let last = latencies[latencies.len() - 1];
        println!("push fan-out to {listeners} connections: median {:.1} ms, last {:.1} ms after the publish was sent (fsync included)", p50.as_secs_f64() * 1e3, last.as_secs_f64() * 1e3);
    });
}
