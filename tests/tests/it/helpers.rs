//! Client-side helpers every area shares: waiting for a condition, building raw gRPC payloads,
//! configuring the `nacos-sdk` client, and the plain HTTP calls many tests start from. Server
//! set-up lives in `support.rs`.

use std::future::Future;
use std::time::{Duration, Instant};

use nacos_sdk::api::props::ClientProps;
use nacos_server::protocol::transport::{Metadata, Payload};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::TestServer;

/// Poll `check` every 20 ms until it holds; fail the test when `timeout` passes first.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`eventually`] for a check that needs no waiting of its own (a look at shared state).
pub async fn until(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    eventually(timeout, what, || std::future::ready(check())).await;
}

/// A raw gRPC payload of `type_name` with a JSON body, as a Nacos client sends it.
pub fn payload(type_name: &str, body: &Value, headers: &[(&str, &str)]) -> Payload {
    Payload {
        metadata: Some(Metadata {
            r#type: type_name.to_string(),
            client_ip: "127.0.0.1".to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }),
        body: Some(prost_types::Any {
            type_url: String::new(),
            value: serde_json::to_vec(body).expect("json"),
        }),
    }
}

/// `nacos-sdk` properties for a server at `server_addr` (`ip:port`), with its own cache folder
/// so that tests never read each other's snapshots.
pub fn sdk_props(server_addr: String, cache: &tempfile::TempDir, app_name: &str) -> ClientProps {
    ClientProps::new()
        .server_addr(server_addr)
        .env_first(false)
        .cache_dir(cache.path())
        .app_name(app_name)
}

/// `GET /v1/cs/configs` with `query`.
pub async fn get_config(s: &TestServer, query: &[(&str, &str)]) -> reqwest::Response {
    s.client
        .get(s.url("/v1/cs/configs"))
        .query(query)
        .send()
        .await
        .expect("get request")
}

/// The status and JSON body of a response.
pub async fn status_and_json(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    (status, resp.json().await.expect("json body"))
}

/// Shortened naming timings: unhealthy after 600 ms without beats, removed after 1200 ms,
/// swept every 100 ms.
pub const FAST_NAMING: &[(&str, &str)] = &[
    ("nacos.naming.heart.beat.timeout", "600"),
    ("nacos.naming.ip.delete.timeout", "1200"),
    ("nacos.naming.health.check.interval", "100"),
];

/// One request to `s`: GET sends `params` in the query, every other method as a form body.
pub async fn send(
    s: &TestServer,
    method: Method,
    path: &str,
    params: &[(&str, &str)],
) -> reqwest::Response {
    let request = s.client.request(method.clone(), s.url(path));
    let request = if method == Method::GET {
        request.query(params)
    } else {
        request.form(params)
    };
    request.send().await.expect("request sent")
}
