//! `ClientConfigMetricRequest` behind Nacos's client-metrics endpoints
//! (`GET /v1/cs/metrics/cluster` and `/current`): the server asks every connection of one
//! client IP, merges what they answer, skips those that stay silent or answer an error, and
//! on a cluster gathers the answers of clients connected to any node.
//!
//! The `nacos-sdk` crate (0.8) does not answer this request, so the clients here are raw gRPC
//! clients that answer it with a real `ClientConfigMetricResponse`, as the Java client does
//! (its uuid → a JSON document; ours echoes the metrics keys it was asked about).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::cluster::all_up;
use crate::grpc::Raw;
use crate::helpers::payload;
use crate::support::{Storage, TestCluster, TestServer};

/// How a test client answers the metrics push.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Metrics,
    Error,
    Silence,
}

/// A raw client registered with `client_ip` as its IP that answers pushes until dropped.
struct Client {
    task: JoinHandle<()>,
    /// Keeps the channel open.
    _raw: Raw,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn client(grpc: SocketAddr, client_ip: &str, uuid: &str, answer: Answer) -> Client {
    let raw = Raw::connect_to(grpc).await;
    let mut stream = raw.open_stream().await;
    let mut setup = payload(
        "ConnectionSetupRequest",
        &json!({
            "clientVersion": "metrics-test",
            "tenant": "",
            "labels": {"source": "sdk", "module": "config"},
            "abilities": {},
            "headers": {},
            "module": "internal",
        }),
        &[],
    );
    if let Some(meta) = setup.metadata.as_mut() {
        meta.client_ip = client_ip.to_string();
    }
    stream.tx.send(setup).await.expect("setup sent");
    let started = Instant::now();
    while raw.call("HealthCheckRequest", json!({})).await.0 != "HealthCheckResponse" {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never registered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let uuid = uuid.to_string();
    let task = tokio::spawn(async move {
        while let Some((type_name, body)) = stream.next(Duration::from_secs(60)).await {
            if type_name != "ClientConfigMetricRequest" {
                continue;
            }
            let request_id = body["requestId"].clone();
            match answer {
                Answer::Silence => {}
                Answer::Error => {
                    stream
                        .send(
                            "ErrorResponse",
                            json!({"requestId": request_id, "resultCode": 500,
                                   "errorCode": 500, "message": "no metrics here"}),
                        )
                        .await
                }
                Answer::Metrics => {
                    let document = json!({
                        "listenConfigSize": "1",
                        "clientVersion": "metrics-test",
                        "metricValues": body["metricsKeys"],
                    });
                    stream
                        .send(
                            "ClientConfigMetricResponse",
                            json!({"requestId": request_id, "resultCode": 200, "errorCode": 0,
                                   "metrics": {uuid.clone(): document.to_string()}}),
                        )
                        .await
                }
            }
        }
    });
    Client { task, _raw: raw }
}

async fn get(url: String) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("GET");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The document a client answered, parsed.
fn document(metrics: &Value, uuid: &str) -> Value {
    let raw = metrics[uuid]
        .as_str()
        .unwrap_or_else(|| panic!("{uuid} in {metrics}"));
    serde_json::from_str(raw).expect("the client's JSON document")
}

fn uuids(metrics: &Value) -> Vec<String> {
    let mut keys: Vec<String> = metrics
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

#[tokio::test]
async fn standalone_gathers_the_answers_of_one_client_ip() {
    let s = TestServer::start().await;
    let _a = client(s.grpc_addr, "10.1.1.1", "uuid-a", Answer::Metrics).await;
    let _b = client(s.grpc_addr, "10.1.1.1", "uuid-b", Answer::Metrics).await;
    let _silent = client(s.grpc_addr, "10.1.1.1", "uuid-silent", Answer::Silence).await;
    let _error = client(s.grpc_addr, "10.1.1.1", "uuid-error", Answer::Error).await;
    let _other = client(s.grpc_addr, "10.9.9.9", "uuid-other", Answer::Metrics).await;

    let started = Instant::now();
    let (status, metrics) =
        get(s.url("/v1/cs/metrics/cluster?ip=10.1.1.1&dataId=m.cfg&group=G&tenant=")).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{metrics}");
    assert_eq!(
        uuids(&metrics),
        ["uuid-a", "uuid-b"],
        "only that IP's clients that answered"
    );
    assert!(
        took < Duration::from_secs(3),
        "a silent client costs its timeout, no more: {took:?}"
    );
    let keys = &document(&metrics, "uuid-a")["metricValues"];
    assert_eq!(
        *keys,
        json!([{"type": "cacheData", "key": "m.cfg+G"}, {"type": "snapshotData", "key": "m.cfg+G"}]),
        "the config asked about reaches the client as Nacos's group key"
    );

    let (status, current) =
        get(s.url("/v1/cs/metrics/current?ip=10.1.1.1&tenant=ns1&dataId=x&group=G")).await;
    assert_eq!(status, 200);
    assert_eq!(uuids(&current), ["uuid-a", "uuid-b"]);
    assert_eq!(
        document(&current, "uuid-b")["metricValues"][0]["key"],
        "x+G+ns1",
        "a namespace is the third part of the group key"
    );
    let (_, plain) = get(s.url("/v1/cs/metrics/current?ip=10.9.9.9")).await;
    assert_eq!(uuids(&plain), ["uuid-other"]);
    assert_eq!(
        document(&plain, "uuid-other")["metricValues"],
        json!([]),
        "no key: no metricsKeys"
    );
    let (status, none) = get(s.url("/v1/cs/metrics/cluster?ip=10.7.7.7")).await;
    assert_eq!((status, none), (200, json!({})), "an IP without clients");
}

#[tokio::test]
async fn bad_metrics_queries_are_400_naming_the_parameter() {
    let s = TestServer::start().await;
    for (query, name) in [
        ("", "ip"),
        ("ip=has%20space", "ip"),
        ("ip=10.1.1.1&dataId=d", "group"),
        ("ip=10.1.1.1&dataId=bad%20id&group=G", "dataId"),
    ] {
        for path in ["cluster", "current"] {
            let (status, body) = get(s.url(&format!("/v1/cs/metrics/{path}?{query}"))).await;
            assert_eq!(status, 400, "{path}?{query}: {body}");
            assert!(body.to_string().contains(name), "{path}?{query}: {body}");
        }
    }
}

/// Clients of one IP on two different nodes: any node gathers both; `/current` answers for
/// its own connections only.
#[tokio::test]
async fn cluster_gathers_clients_from_every_node() {
    let cluster = TestCluster::start(Storage::Embedded, 3, &[]).await;
    all_up(&cluster).await;
    let grpc = |i: usize| -> SocketAddr {
        format!("127.0.0.1:{}", cluster.ports[i] + 1000)
            .parse()
            .expect("addr")
    };
    let _a = client(grpc(0), "10.2.2.2", "uuid-on-0", Answer::Metrics).await;
    let _b = client(grpc(1), "10.2.2.2", "uuid-on-1", Answer::Metrics).await;
    let _silent = client(grpc(1), "10.2.2.2", "uuid-silent", Answer::Silence).await;
    for i in 0..3 {
        let started = Instant::now();
        let (status, metrics) = get(cluster
            .node(i)
            .url("/v1/cs/metrics/cluster?ip=10.2.2.2&dataId=c.cfg&group=G"))
        .await;
        assert_eq!(status, 200, "node {i}: {metrics}");
        assert_eq!(uuids(&metrics), ["uuid-on-0", "uuid-on-1"], "node {i}");
        assert_eq!(
            document(&metrics, "uuid-on-1")["metricValues"][1]["key"],
            "c.cfg+G"
        );
        assert!(started.elapsed() < Duration::from_secs(4), "node {i}");
    }
    let (_, current) = get(cluster.node(0).url("/v1/cs/metrics/current?ip=10.2.2.2")).await;
    assert_eq!(uuids(&current), ["uuid-on-0"]);
    let (_, current) = get(cluster.node(2).url("/v1/cs/metrics/current?ip=10.2.2.2")).await;
    assert_eq!(current, json!({}), "no client on node 2");
}
