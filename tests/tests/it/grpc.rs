//! End-to-end: the Nacos 2.x gRPC edge (HTTP port + 1000), driven by the real Rust client
//! crate (`nacos-sdk`) and by a raw tonic client built from the server's own wire messages.
//! The config and naming scenarios listed in `on_every_backend!` run once per storage backend
//! (`grpc::{embedded,mysql,postgres}::<scenario>`); the protocol-edge ones (setup, limits,
//! floods, ejection, reconnects) do not depend on storage and run on embedded storage only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nacos_sdk::api::config::{
    ConfigChangeListener, ConfigResponse, ConfigService, ConfigServiceBuilder,
};
use nacos_sdk::api::props::ClientProps;
use nacos_server::protocol::transport::Payload;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

use crate::helpers::{self, payload, until};
use crate::support::{Storage, TestServer, on_every_backend};

on_every_backend!(
    sdk_config_get_publish_remove,
    sdk_listener_sees_changes_from_grpc_and_http,
    grpc_publish_wakes_a_v1_long_poll,
    config_responses_have_the_shapes_clients_need,
    batch_listen_reports_stale_md5s_and_pushes_changes,
    sdk_register_query_deregister_and_list,
    sdk_subscriber_sees_changes_from_every_edge,
    naming_errors_have_nacos_shapes,
);

// ---------------------------------------------------------------------------------------------
// Helpers

fn sdk_props(s: &TestServer, cache: &tempfile::TempDir) -> ClientProps {
    helpers::sdk_props(s.server_addr(), cache, "grpc-it").remote_grpc_port(s.grpc_addr.port())
}

async fn sdk_config(s: &TestServer, cache: &tempfile::TempDir) -> ConfigService {
    ConfigServiceBuilder::new(sdk_props(s, cache))
        .build()
        .await
        .expect("config client builds")
}

/// A raw client: one HTTP/2 connection to the gRPC port.
#[derive(Clone)]
pub(crate) struct Raw {
    channel: Channel,
}

fn decode(p: &Payload) -> (String, Value) {
    let type_name = p
        .metadata
        .as_ref()
        .map(|m| m.r#type.clone())
        .unwrap_or_default();
    let body = p.body.as_ref().map(|b| b.value.clone()).unwrap_or_default();
    (
        type_name,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

/// The client side of a bi-stream.
pub(crate) struct BiStream {
    pub(crate) tx: mpsc::Sender<Payload>,
    rx: tonic::Streaming<Payload>,
}

impl BiStream {
    pub(crate) async fn next(&mut self, within: Duration) -> Option<(String, Value)> {
        match tokio::time::timeout(within, self.rx.message()).await {
            Ok(Ok(Some(p))) => Some(decode(&p)),
            _ => None,
        }
    }

    pub(crate) async fn send(&self, type_name: &str, body: Value) {
        self.tx
            .send(payload(type_name, &body, &[]))
            .await
            .expect("bi-stream open");
    }
}

impl Raw {
    async fn connect(s: &TestServer) -> Raw {
        Raw::connect_to(s.grpc_addr).await
    }

    /// A raw client of the gRPC port at `grpc_addr`.
    pub(crate) async fn connect_to(grpc_addr: std::net::SocketAddr) -> Raw {
        let channel = Endpoint::from_shared(format!("http://{grpc_addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to the gRPC port");
        Raw { channel }
    }

    async fn call_payload(&self, p: Payload) -> Result<Payload, tonic::Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let codec = ProstCodec::<Payload, Payload>::default();
        grpc.unary(
            tonic::Request::new(p),
            PathAndQuery::from_static("/Request/request"),
            codec,
        )
        .await
        .map(tonic::Response::into_inner)
    }

    pub(crate) async fn call(&self, type_name: &str, body: Value) -> (String, Value) {
        let p = self
            .call_payload(payload(type_name, &body, &[]))
            .await
            .expect("unary call");
        decode(&p)
    }

    pub(crate) async fn open_stream(&self) -> BiStream {
        let (tx, rx) = mpsc::channel(16);
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready().await.expect("ready");
        let codec = ProstCodec::<Payload, Payload>::default();
        let response = grpc
            .streaming(
                tonic::Request::new(ReceiverStream::new(rx)),
                PathAndQuery::from_static("/BiRequestStream/requestBiStream"),
                codec,
            )
            .await
            .expect("bi-stream opens");
        BiStream {
            tx,
            rx: response.into_inner(),
        }
    }

    /// Open the bi-stream, send the setup (Rust-SDK style, no abilityTable) and wait until the
    /// server answers a health check.
    async fn setup(&self) -> BiStream {
        self.setup_with(json!({
            "clientVersion": "raw-test",
            "tenant": "",
            "labels": {"source": "sdk", "module": "config"},
            "abilities": {},
            "headers": {},
            "module": "internal",
        }))
        .await
    }

    async fn setup_with(&self, setup: Value) -> BiStream {
        let stream = self.open_stream().await;
        stream.send("ConnectionSetupRequest", setup).await;
        let started = Instant::now();
        loop {
            let (t, _) = self.call("HealthCheckRequest", json!({})).await;
            if t == "HealthCheckResponse" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "setup never registered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stream
    }
}

async fn http_publish(s: &TestServer, data_id: &str, group: &str, content: &str) {
    let resp = s
        .client
        .post(s.url("/v1/cs/configs"))
        .form(&[("dataId", data_id), ("group", group), ("content", content)])
        .send()
        .await
        .expect("publish over HTTP");
    assert_eq!(resp.text().await.expect("body"), "true");
}

async fn http_get(s: &TestServer, data_id: &str, group: &str) -> Option<String> {
    let resp = s
        .client
        .get(s.url("/v1/cs/configs"))
        .query(&[("dataId", data_id), ("group", group)])
        .send()
        .await
        .expect("get over HTTP");
    if resp.status().is_success() {
        Some(resp.text().await.expect("body"))
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// The real client

async fn sdk_config_get_publish_remove(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let cache = tempfile::tempdir().expect("cache dir");
    let client = sdk_config(&s, &cache).await;

    let missing = client.get_config("sdk.missing".into(), "G".into()).await;
    assert!(
        matches!(
            missing,
            Err(nacos_sdk::api::error::Error::ConfigNotFound(_))
        ),
        "{missing:?}"
    );

    let ok = client
        .publish_config(
            "sdk.cfg".into(),
            "G".into(),
            "a=1".into(),
            Some("properties".into()),
        )
        .await
        .expect("publish over gRPC");
    assert!(ok);
    // The same service behind both edges.
    assert_eq!(http_get(&s, "sdk.cfg", "G").await.as_deref(), Some("a=1"));

    let got = client
        .get_config("sdk.cfg".into(), "G".into())
        .await
        .expect("get over gRPC");
    assert_eq!(got.content(), "a=1");
    assert_eq!(got.content_type(), "properties");
    assert_eq!(got.md5(), &nacos_core::md5_hex("a=1"));

    // CAS with a stale md5 fails and changes nothing; with the right md5 it succeeds.
    let stale = client
        .publish_config_cas(
            "sdk.cfg".into(),
            "G".into(),
            "a=2".into(),
            None,
            "0000".into(),
        )
        .await;
    assert!(stale.is_err(), "{stale:?}");
    assert_eq!(http_get(&s, "sdk.cfg", "G").await.as_deref(), Some("a=1"));
    let fresh = client
        .publish_config_cas(
            "sdk.cfg".into(),
            "G".into(),
            "a=2".into(),
            None,
            nacos_core::md5_hex("a=1"),
        )
        .await
        .expect("CAS publish with the current md5");
    assert!(fresh);
    assert_eq!(http_get(&s, "sdk.cfg", "G").await.as_deref(), Some("a=2"));

    assert!(
        client
            .remove_config("sdk.cfg".into(), "G".into())
            .await
            .expect("remove")
    );
    assert_eq!(http_get(&s, "sdk.cfg", "G").await, None);
    // Removing what is gone still succeeds.
    assert!(
        client
            .remove_config("sdk.cfg".into(), "G".into())
            .await
            .expect("remove again")
    );
}

struct Collect(Mutex<Vec<String>>);

impl ConfigChangeListener for Collect {
    fn notify(&self, config_resp: ConfigResponse) {
        self.0
            .lock()
            .expect("lock")
            .push(config_resp.content().clone());
    }
}

async fn sdk_listener_sees_changes_from_grpc_and_http(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let cache = tempfile::tempdir().expect("cache dir");
    let client = sdk_config(&s, &cache).await;
    client
        .publish_config("listened".into(), "G".into(), "v0".into(), None)
        .await
        .expect("publish v0");
    let seen = Arc::new(Collect(Mutex::new(Vec::new())));
    client
        .add_listener("listened".into(), "G".into(), seen.clone())
        .await
        .expect("add listener");
    // The client registers its listen asynchronously.
    let listeners = s.app().config_listeners.clone();
    until(
        Duration::from_secs(5),
        "the listen to reach the server",
        || listeners.listener_count() > 0,
    )
    .await;

    client
        .publish_config("listened".into(), "G".into(), "v1 from grpc".into(), None)
        .await
        .expect("publish v1");
    until(
        Duration::from_secs(5),
        "the gRPC change to reach the listener",
        || {
            seen.0
                .lock()
                .expect("lock")
                .iter()
                .any(|c| c == "v1 from grpc")
        },
    )
    .await;

    http_publish(&s, "listened", "G", "v2 from http").await;
    until(
        Duration::from_secs(5),
        "the HTTP change to reach the listener",
        || {
            seen.0
                .lock()
                .expect("lock")
                .iter()
                .any(|c| c == "v2 from http")
        },
    )
    .await;
}

async fn grpc_publish_wakes_a_v1_long_poll(storage: Storage) {
    let s = TestServer::start_on(storage, &[("nacos.config.longPolling.minHoldMs", "100")]).await;
    http_publish(&s, "polled", "G", "old").await;
    let probe = format!("polled\u{2}G\u{2}{}\u{1}", nacos_core::md5_hex("old"));
    let poll = {
        let client = s.client.clone();
        let url = s.url("/v1/cs/configs/listener");
        tokio::spawn(async move {
            let started = Instant::now();
            let body = client
                .post(url)
                .header("Long-Pulling-Timeout", "10000")
                .form(&[("Listening-Configs", probe.as_str())])
                .send()
                .await
                .expect("long poll")
                .text()
                .await
                .expect("body");
            (body, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let raw = Raw::connect(&s).await;
    let _stream = raw.setup().await;
    let (t, body) = raw
        .call(
            "ConfigPublishRequest",
            json!({"dataId": "polled", "group": "G", "tenant": "", "content": "new", "additionMap": {}}),
        )
        .await;
    assert_eq!(t, "ConfigPublishResponse", "{body}");
    assert_eq!(body["resultCode"], 200);
    let (answer, waited) = poll.await.expect("poll task");
    assert!(answer.contains("polled"), "{answer:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

// ---------------------------------------------------------------------------------------------
// The protocol, raw

#[tokio::test]
async fn server_check_gives_the_transport_connection_id() {
    let s = TestServer::start().await;
    let raw = Raw::connect(&s).await;
    let (t, body) = raw
        .call("ServerCheckRequest", json!({"requestId": "r1"}))
        .await;
    assert_eq!(t, "ServerCheckResponse");
    assert_eq!(body["resultCode"], 200);
    assert_eq!(body["errorCode"], 0);
    assert_eq!(body["success"], true);
    assert_eq!(body["requestId"], "r1");
    let id = body["connectionId"].as_str().expect("connectionId");
    let parts: Vec<&str> = id.split('_').collect();
    assert_eq!(parts.len(), 3, "{id}");
    assert!(parts[0].parse::<i64>().is_ok(), "{id}");
    assert_eq!(parts[1], "127.0.0.1");
    // Same transport, same id; the bi-stream setup registers exactly that id.
    let (_, again) = raw.call("ServerCheckRequest", json!({})).await;
    assert_eq!(again["connectionId"], id);
    let _stream = raw.setup().await;
    assert!(
        s.app().connections.get(id).is_some(),
        "registered under the ServerCheck id"
    );
}

#[tokio::test]
async fn request_before_setup_is_unregistered_301() {
    let s = TestServer::start().await;
    let raw = Raw::connect(&s).await;
    let (t, body) = raw.call("HealthCheckRequest", json!({})).await;
    assert_eq!(t, "ErrorResponse");
    assert_eq!(body["errorCode"], 301);
    assert_eq!(body["resultCode"], 500);
    assert_eq!(body["success"], false);
    let (t, body) = raw
        .call("ConfigQueryRequest", json!({"dataId": "a", "group": "G"}))
        .await;
    assert_eq!(t, "ErrorResponse");
    assert_eq!(body["errorCode"], 301);
}

#[tokio::test]
async fn unknown_type_is_302_and_malformed_json_is_502() {
    let s = TestServer::start().await;
    let raw = Raw::connect(&s).await;
    // Unknown types are refused before the registration check.
    let (t, body) = raw.call("NoSuchRequest", json!({})).await;
    assert_eq!(t, "ErrorResponse");
    assert_eq!(body["errorCode"], 302);
    assert_eq!(body["message"], "RequestHandler Not Found");

    let _stream = raw.setup().await;
    let mut bad = payload("ConfigQueryRequest", &json!({}), &[]);
    if let Some(b) = bad.body.as_mut() {
        b.value = b"{not json".to_vec();
    }
    let resp = raw
        .call_payload(bad)
        .await
        .expect("an answer, not a transport error");
    let (t, body) = decode(&resp);
    assert_eq!(t, "ErrorResponse");
    assert_eq!(body["errorCode"], 502);
    // Wrong JSON types are parse failures too.
    let (t, body) = raw
        .call("ConfigBatchListenRequest", json!({"listen": "yes"}))
        .await;
    assert_eq!(
        (t.as_str(), body["errorCode"].as_i64()),
        ("ErrorResponse", Some(502))
    );
    // A cluster-only type on the client port.
    let (t, body) = raw.call("DistroDataRequest", json!({})).await;
    assert_eq!(
        (t.as_str(), body["errorCode"].as_i64()),
        ("ErrorResponse", Some(502))
    );
    // Still serving.
    let (t, _) = raw.call("HealthCheckRequest", json!({})).await;
    assert_eq!(t, "HealthCheckResponse");
}

async fn config_responses_have_the_shapes_clients_need(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let raw = Raw::connect(&s).await;
    let _stream = raw.setup().await;

    // Not found: typed response, 500/300, lastModified and beta present.
    let (t, body) = raw
        .call(
            "ConfigQueryRequest",
            json!({"dataId": "nope", "group": "G", "tenant": "public"}),
        )
        .await;
    assert_eq!(t, "ConfigQueryResponse");
    assert_eq!(body["resultCode"], 500);
    assert_eq!(body["errorCode"], 300);
    assert_eq!(body["message"], "config data not exist");
    assert!(
        body["lastModified"].is_i64() && body["beta"].is_boolean(),
        "{body}"
    );

    // Parameter check: typed response, errorCode 400.
    let (t, body) = raw
        .call("ConfigQueryRequest", json!({"dataId": "", "group": "G"}))
        .await;
    assert_eq!(t, "ConfigQueryResponse");
    assert_eq!(
        (body["resultCode"].as_i64(), body["errorCode"].as_i64()),
        (Some(500), Some(400))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Param check invalid:"),
        "{body}"
    );

    // Publish with additionMap (type, appName, desc, config_tags) into the default namespace
    // spelled "public"; read it back spelled "".
    let (t, body) = raw
        .call(
            "ConfigPublishRequest",
            json!({
                "dataId": "shape", "group": "G", "tenant": "public", "content": "k: v",
                "casMd5": "",
                "additionMap": {"type": "yaml", "appName": "app1", "desc": "d", "config_tags": "t1,t2",
                                "betaIps": "", "encryptedDataKey": "", "src_user": "alice"}
            }),
        )
        .await;
    assert_eq!(
        (t.as_str(), body["resultCode"].as_i64()),
        ("ConfigPublishResponse", Some(200)),
        "{body}"
    );
    let (t, body) = raw
        .call(
            "ConfigQueryRequest",
            json!({"dataId": "shape", "group": "G", "tenant": ""}),
        )
        .await;
    assert_eq!(t, "ConfigQueryResponse");
    assert_eq!(body["resultCode"], 200);
    assert_eq!(body["errorCode"], 0);
    assert_eq!(body["content"], "k: v");
    assert_eq!(body["contentType"], "yaml");
    assert_eq!(body["md5"], nacos_core::md5_hex("k: v"));
    assert_eq!(body["beta"], false);
    assert!(
        body.get("tag").is_none(),
        "no tag unless a tag matched: {body}"
    );
    assert!(body["lastModified"].as_i64().unwrap_or(0) > 0);
    let item = s
        .app()
        .repos
        .configs
        .get(&nacos_core::ConfigKey::new("", "G", "shape"))
        .await
        .expect("repo")
        .expect("stored");
    assert_eq!(item.app_name, "app1");
    assert_eq!(item.desc, "d");
    assert_eq!(item.tags, vec!["t1".to_string(), "t2".to_string()]);
    assert_eq!(item.src_user, "alice");

    // Beta for our client IP, tag variant by request.
    let (_, body) = raw
        .call(
            "ConfigPublishRequest",
            json!({"dataId": "shape", "group": "G", "content": "beta!", "additionMap": {"betaIps": "127.0.0.1"}}),
        )
        .await;
    assert_eq!(body["resultCode"], 200, "{body}");
    let (_, body) = raw
        .call(
            "ConfigQueryRequest",
            json!({"dataId": "shape", "group": "G"}),
        )
        .await;
    assert_eq!(
        (body["content"].as_str(), body["beta"].as_bool()),
        (Some("beta!"), Some(true))
    );
    let (_, body) = raw
        .call("ConfigPublishRequest", json!({"dataId": "shape", "group": "G", "content": "tagged", "additionMap": {"tag": "blue"}}))
        .await;
    assert_eq!(body["resultCode"], 200, "{body}");
    let (_, body) = raw
        .call(
            "ConfigQueryRequest",
            json!({"dataId": "shape", "group": "G", "tag": "blue"}),
        )
        .await;
    // The beta wins for a listed IP, as in Nacos; a tag read from an unlisted IP gets the tag.
    assert_eq!(body["content"], "beta!");
    let (_, body) = raw
        .call(
            "ConfigRemoveRequest",
            json!({"dataId": "shape", "group": "G", "tag": "blue"}),
        )
        .await;
    assert_eq!(body["resultCode"], 200);
    assert!(
        s.app()
            .config
            .state(&nacos_core::ConfigKey::new("", "G", "shape"))
            .await
            .expect("state")
            .tag("blue")
            .is_none()
    );

    // CAS mismatch: typed failure with a message.
    let (t, body) = raw
        .call(
            "ConfigPublishRequest",
            json!({"dataId": "shape", "group": "G", "content": "x", "casMd5": "bad"}),
        )
        .await;
    assert_eq!(t, "ConfigPublishResponse");
    assert_eq!(
        (body["resultCode"].as_i64(), body["errorCode"].as_i64()),
        (Some(500), Some(500))
    );
    assert!(body["message"].is_string());
}

async fn batch_listen_reports_stale_md5s_and_pushes_changes(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    http_publish(&s, "l1", "G", "one").await;
    let raw = Raw::connect(&s).await;
    let mut stream = raw.setup().await;
    let (t, body) = raw
        .call(
            "ConfigBatchListenRequest",
            json!({"listen": true, "configListenContexts": [
                {"dataId": "l1", "group": "G", "tenant": "", "md5": nacos_core::md5_hex("one")},
                {"dataId": "l2", "group": "G", "tenant": "public", "md5": "stale"},
                {"dataId": "l3", "group": "G", "tenant": "", "md5": ""}
            ]}),
        )
        .await;
    assert_eq!(t, "ConfigChangeBatchListenResponse");
    assert_eq!(body["resultCode"], 200);
    let changed = body["changedConfigs"].as_array().expect("changedConfigs");
    assert_eq!(changed.len(), 1, "{body}");
    assert_eq!(
        changed[0],
        json!({"group": "G", "dataId": "l2", "tenant": "public"})
    );

    // A change through HTTP is pushed on the bi-stream; the tenant is echoed as listened.
    http_publish(&s, "l2", "G", "two").await;
    let (t, push) = stream.next(Duration::from_secs(5)).await.expect("a push");
    assert_eq!(t, "ConfigChangeNotifyRequest");
    assert_eq!(push["dataId"], "l2");
    assert_eq!(push["group"], "G");
    assert_eq!(push["tenant"], "public");
    assert_eq!(push["headers"], json!({}));
    let request_id = push["requestId"]
        .as_str()
        .expect("string requestId")
        .to_string();
    stream
        .send(
            "ConfigChangeNotifyResponse",
            json!({"requestId": request_id, "resultCode": 200, "errorCode": 0}),
        )
        .await;

    // Unlisten: no more pushes for that key.
    let (_, body) = raw
        .call(
            "ConfigBatchListenRequest",
            json!({"listen": false, "configListenContexts": [{"dataId": "l2", "group": "G", "tenant": "public", "md5": ""}]}),
        )
        .await;
    assert_eq!(body["resultCode"], 200);
    http_publish(&s, "l2", "G", "three").await;
    assert!(stream.next(Duration::from_millis(500)).await.is_none());
    assert_eq!(s.app().config_listeners.listener_count(), 2);

    // Listens go with the connection.
    drop(stream);
    drop(raw);
    let listeners = s.app().config_listeners.clone();
    until(Duration::from_secs(5), "listens to be dropped", || {
        listeners.listener_count() == 0
    })
    .await;
}

#[tokio::test]
async fn setup_ack_only_when_ability_table_was_sent() {
    let s = TestServer::start().await;
    let raw = Raw::connect(&s).await;
    let mut stream = raw
        .setup_with(json!({"clientVersion": "Nacos-Java-Client:v2.5.1", "labels": {"source": "sdk"}, "abilityTable": {}}))
        .await;
    let (t, body) = stream
        .next(Duration::from_secs(2))
        .await
        .expect("SetupAckRequest");
    assert_eq!(t, "SetupAckRequest");
    assert_eq!(
        body["abilityTable"]["supportPersistentInstanceByGrpc"],
        true
    );
    assert!(body["requestId"].is_string());

    let other = Raw::connect(&s).await;
    let mut quiet = other.setup().await;
    assert!(quiet.next(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn oversized_message_is_refused_and_the_server_stays_up() {
    let s = TestServer::start().await;
    let raw = Raw::connect(&s).await;
    let _stream = raw.setup().await;
    let big = "x".repeat(11 * 1024 * 1024);
    let result = raw
        .call_payload(payload(
            "ConfigPublishRequest",
            &json!({"dataId": "big", "group": "G", "content": big}),
            &[],
        ))
        .await;
    let status = result.expect_err("over 10 MiB is a gRPC error");
    assert!(
        matches!(
            status.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ),
        "{status:?}"
    );
    let fresh = Raw::connect(&s).await;
    let (t, _) = fresh.call("ServerCheckRequest", json!({})).await;
    assert_eq!(t, "ServerCheckResponse");
    assert_eq!(http_get(&s, "big", "G").await, None);
}

#[tokio::test]
async fn a_client_that_never_acks_does_not_stall_others_and_is_dropped() {
    let s = TestServer::start_with(&[
        ("nacos.remote.server.grpc.push.timeoutMs", "200"),
        ("nacos.config.push.maxRetryTime", "3"),
        ("nacos.config.push.retryDelayMs", "50"),
    ])
    .await;
    http_publish(&s, "k", "G", "v0").await;
    let mute = Raw::connect(&s).await;
    let mut mute_stream = mute.setup().await;
    let (_, body) = mute
        .call(
            "ConfigBatchListenRequest",
            json!({"configListenContexts": [{"dataId": "k", "group": "G", "tenant": "", "md5": nacos_core::md5_hex("v0")}]}),
        )
        .await;
    assert_eq!(body["resultCode"], 200);

    let good = Raw::connect(&s).await;
    let mut good_stream = good.setup().await;
    let (_, body) = good
        .call(
            "ConfigBatchListenRequest",
            json!({"configListenContexts": [{"dataId": "k", "group": "G", "tenant": "", "md5": nacos_core::md5_hex("v0")}]}),
        )
        .await;
    assert_eq!(body["resultCode"], 200);

    http_publish(&s, "k", "G", "v1").await;
    // Both get the push; only the good one answers.
    let (t, _) = mute_stream
        .next(Duration::from_secs(5))
        .await
        .expect("mute gets the push");
    assert_eq!(t, "ConfigChangeNotifyRequest");
    let (t, push) = good_stream
        .next(Duration::from_secs(5))
        .await
        .expect("good gets the push");
    assert_eq!(t, "ConfigChangeNotifyRequest");
    good_stream
        .send(
            "ConfigChangeNotifyResponse",
            json!({"requestId": push["requestId"], "resultCode": 200}),
        )
        .await;
    // The server keeps answering the good client promptly meanwhile.
    let started = Instant::now();
    let (t, body) = good
        .call("ConfigQueryRequest", json!({"dataId": "k", "group": "G"}))
        .await;
    assert_eq!(
        (t.as_str(), body["content"].as_str()),
        ("ConfigQueryResponse", Some("v1"))
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    // After maxRetryTime failed tries the mute connection is dropped; the good one stays.
    let good_id = good.call("ServerCheckRequest", json!({})).await.1["connectionId"]
        .as_str()
        .expect("id")
        .to_string();
    let manager = s.app().connections.clone();
    until(
        Duration::from_secs(5),
        "the mute connection to be ejected",
        || manager.count() == 1,
    )
    .await;
    assert!(manager.get(&good_id).is_some());
    let (t, _) = good.call("HealthCheckRequest", json!({})).await;
    assert_eq!(t, "HealthCheckResponse");
}

#[tokio::test]
async fn silent_connections_are_probed_and_ejected() {
    let s = TestServer::start_with(&[
        ("nacos.remote.server.grpc.ejector.idleMs", "300"),
        ("nacos.remote.server.grpc.ejector.intervalMs", "100"),
        ("nacos.remote.server.grpc.ejector.timeoutMs", "300"),
    ])
    .await;
    let silent = Raw::connect(&s).await;
    let _silent_stream = silent.setup().await;
    let answering = Raw::connect(&s).await;
    let mut answering_stream = answering.setup().await;
    assert_eq!(s.app().connections.count(), 2);

    // The answering client replies to each ClientDetectionRequest.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut probes = 0;
    while Instant::now() < deadline {
        if let Some((t, body)) = answering_stream.next(Duration::from_millis(200)).await {
            assert_eq!(t, "ClientDetectionRequest");
            assert_eq!(body["headers"], json!({}));
            probes += 1;
            answering_stream
                .send(
                    "ClientDetectionResponse",
                    json!({"requestId": body["requestId"], "resultCode": 200}),
                )
                .await;
        }
    }
    assert!(probes > 0);
    assert_eq!(
        s.app().connections.count(),
        1,
        "the silent connection is gone, the answering one stays"
    );
    // The ejected client's transport was cut: its calls fail or come back unregistered.
    match silent
        .call_payload(payload("HealthCheckRequest", &json!({}), &[]))
        .await
    {
        Err(_) => {}
        Ok(p) => assert_eq!(decode(&p).1["errorCode"], 301),
    }
}

#[tokio::test]
async fn connection_limit_refuses_extra_setups() {
    let s = TestServer::start_with(&[("nacos.remote.server.grpc.maxConnections", "1")]).await;
    let first = Raw::connect(&s).await;
    let _first_stream = first.setup().await;
    let second = Raw::connect(&s).await;
    let mut stream = second.open_stream().await;
    stream
        .send(
            "ConnectionSetupRequest",
            json!({"labels": {"source": "sdk"}}),
        )
        .await;
    // The refused stream ends; the connection stays unregistered.
    let ended = tokio::time::timeout(Duration::from_secs(2), stream.rx.message()).await;
    assert!(matches!(ended, Ok(Ok(None)) | Ok(Err(_))), "{ended:?}");
    let (_, body) = second.call("HealthCheckRequest", json!({})).await;
    assert_eq!(body["errorCode"], 301);
    assert_eq!(s.app().connections.count(), 1);
}

#[tokio::test]
async fn open_tcp_connections_are_bounded() {
    use tokio::io::AsyncReadExt;
    // maxConnections 1: at most 1 + 0 + 64 TCP connections are held, registered or not.
    let s = TestServer::start_with(&[("nacos.remote.server.grpc.maxConnections", "1")]).await;
    let cap = s.app().settings.grpc.max_transports;
    assert_eq!(cap, 65);
    let mut held = Vec::new();
    for _ in 0..cap {
        held.push(
            tokio::net::TcpStream::connect(s.grpc_addr)
                .await
                .expect("connect"),
        );
    }
    // Let the server accept them all, then one more is closed at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = tokio::net::TcpStream::connect(s.grpc_addr)
        .await
        .expect("connect");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the connection over the cap is closed: {read:?}"
    );
    // Freeing the held ones makes room again: a real client gets served.
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let raw = Raw::connect(&s).await;
    let (t, _) = raw.call("ServerCheckRequest", json!({})).await;
    assert_eq!(t, "ServerCheckResponse");
}

#[tokio::test]
async fn a_flood_of_connections_leaves_the_server_answering() {
    let s = TestServer::start().await;
    let addr = s.grpc_addr;
    let mut tasks = Vec::new();
    for i in 0..200 {
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                // Bare TCP: connect and drop.
                let _ = tokio::net::TcpStream::connect(addr).await;
            } else {
                // HTTP/2 with one call, then drop.
                if let Ok(channel) = Endpoint::from_shared(format!("http://{addr}"))
                    .expect("endpoint")
                    .connect()
                    .await
                {
                    let raw = Raw { channel };
                    let _ = raw
                        .call_payload(payload("ServerCheckRequest", &json!({}), &[]))
                        .await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("flood task");
    }
    let raw = Raw::connect(&s).await;
    let (t, _) = raw.call("ServerCheckRequest", json!({})).await;
    assert_eq!(t, "ServerCheckResponse");
    let _stream = raw.setup().await;
    let manager = s.app().connections.clone();
    until(Duration::from_secs(5), "flood transports to close", || {
        manager.transport_count() == 1
    })
    .await;
    assert_eq!(manager.count(), 1);
}

#[tokio::test]
async fn shutdown_sends_connect_reset_and_ends_streams() {
    let mut s = TestServer::start().await;
    let raw = Raw::connect(&s).await;
    let mut stream = raw.setup().await;
    let stopping = tokio::spawn(async move {
        s.stop().await;
    });
    let (t, body) = stream
        .next(Duration::from_secs(5))
        .await
        .expect("ConnectResetRequest");
    assert_eq!(t, "ConnectResetRequest");
    assert!(body["requestId"].is_string());
    let end = tokio::time::timeout(Duration::from_secs(5), stream.rx.message()).await;
    assert!(matches!(end, Ok(Ok(None)) | Ok(Err(_))), "{end:?}");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("server stops in time")
        .expect("stop task");
}

// ---------------------------------------------------------------------------------------------
// Naming over gRPC

use nacos_sdk::api::naming::{
    NamingChangeEvent, NamingEventListener, NamingService, NamingServiceBuilder, ServiceInstance,
};

async fn sdk_naming(s: &TestServer, cache: &tempfile::TempDir) -> NamingService {
    NamingServiceBuilder::new(sdk_props(s, cache).naming_push_empty_protection(false))
        .build()
        .await
        .expect("naming client builds")
}

fn sdk_instance(ip: &str, port: i32) -> ServiceInstance {
    ServiceInstance {
        ip: ip.to_string(),
        port,
        metadata: HashMap::from([("zone".to_string(), "a".to_string())]),
        ..Default::default()
    }
}

async fn http_list(s: &TestServer, service: &str, group: &str) -> Value {
    s.client
        .get(s.url("/v1/ns/instance/list"))
        .query(&[("serviceName", service), ("groupName", group)])
        .send()
        .await
        .expect("list over HTTP")
        .json()
        .await
        .expect("list JSON")
}

fn http_ips(list: &Value) -> Vec<String> {
    let mut ips: Vec<String> = list["hosts"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|i| format!("{}:{}", i["ip"].as_str().unwrap_or(""), i["port"]))
                .collect()
        })
        .unwrap_or_default();
    ips.sort();
    ips
}

fn sdk_ips(instances: &[ServiceInstance]) -> Vec<String> {
    let mut ips: Vec<String> = instances
        .iter()
        .map(|i| format!("{}:{}", i.ip, i.port))
        .collect();
    ips.sort();
    ips
}

async fn sdk_register_query_deregister_and_list(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let cache = tempfile::tempdir().expect("cache dir");
    let client = sdk_naming(&s, &cache).await;

    client
        .register_instance(
            "orders".into(),
            Some("G".into()),
            sdk_instance("10.0.0.1", 8080),
        )
        .await
        .expect("register over gRPC");
    let all = client
        .get_all_instances("orders".into(), Some("G".into()), Vec::new(), false)
        .await
        .expect("query over gRPC");
    assert_eq!(sdk_ips(&all), vec!["10.0.0.1:8080"]);
    assert_eq!(all[0].metadata.get("zone").map(String::as_str), Some("a"));
    assert!(all[0].ephemeral && all[0].healthy && all[0].enabled);
    // The same registry behind HTTP.
    assert_eq!(
        http_ips(&http_list(&s, "orders", "G").await),
        vec!["10.0.0.1:8080"]
    );

    // A second registration from the same connection replaces the first (Nacos 2.x).
    client
        .register_instance(
            "orders".into(),
            Some("G".into()),
            sdk_instance("10.0.0.2", 8080),
        )
        .await
        .expect("register again");
    let all = client
        .get_all_instances("orders".into(), Some("G".into()), Vec::new(), false)
        .await
        .expect("query");
    assert_eq!(sdk_ips(&all), vec!["10.0.0.2:8080"]);

    // Batch: the connection's whole set for the service.
    client
        .batch_register_instance(
            "payments".into(),
            Some("G".into()),
            vec![
                sdk_instance("10.0.1.1", 9000),
                sdk_instance("10.0.1.2", 9000),
            ],
        )
        .await
        .expect("batch register");
    let all = client
        .get_all_instances("payments".into(), Some("G".into()), Vec::new(), false)
        .await
        .expect("query batch");
    assert_eq!(sdk_ips(&all), vec!["10.0.1.1:9000", "10.0.1.2:9000"]);

    // Service list of the group, plain names.
    let (mut names, count) = client
        .get_service_list(1, 10, Some("G".into()))
        .await
        .expect("service list");
    names.sort();
    assert_eq!(count, 2);
    assert_eq!(names, vec!["orders".to_string(), "payments".to_string()]);
    let (page, count) = client
        .get_service_list(2, 1, Some("G".into()))
        .await
        .expect("page 2");
    assert_eq!((page.len(), count), (1, 2));

    client
        .deregister_instance(
            "orders".into(),
            Some("G".into()),
            sdk_instance("10.0.0.2", 8080),
        )
        .await
        .expect("deregister");
    let all = client
        .get_all_instances("orders".into(), Some("G".into()), Vec::new(), false)
        .await
        .expect("query after deregister");
    assert!(all.is_empty(), "{all:?}");

    // Persistent instances go through the repository and outlive the connection.
    let mut persistent = sdk_instance("10.0.2.1", 7000);
    persistent.ephemeral = false;
    client
        .register_instance("ledger".into(), Some("G".into()), persistent)
        .await
        .expect("persistent register over gRPC");
    let list = http_list(&s, "ledger", "G").await;
    assert_eq!(http_ips(&list), vec!["10.0.2.1:7000"]);
    assert_eq!(list["hosts"][0]["ephemeral"], false);
}

struct Events(Mutex<Vec<Vec<String>>>);

impl NamingEventListener for Events {
    fn event(&self, event: Arc<NamingChangeEvent>) {
        let ips = event.instances.as_deref().map(sdk_ips).unwrap_or_default();
        self.0.lock().expect("lock").push(ips);
    }
}

impl Events {
    fn saw(&self, ips: &[&str]) -> bool {
        self.0.lock().expect("lock").iter().any(|e| e == ips)
    }
}

async fn sdk_subscriber_sees_changes_from_every_edge(storage: Storage) {
    let s = TestServer::start_on(storage, &[("nacos.naming.push.pushTaskDelay", "50")]).await;
    let cache_a = tempfile::tempdir().expect("cache dir");
    let cache_b = tempfile::tempdir().expect("cache dir");
    let watcher = sdk_naming(&s, &cache_a).await;
    let publisher = sdk_naming(&s, &cache_b).await;
    let events = Arc::new(Events(Mutex::new(Vec::new())));
    watcher
        .subscribe(
            "watched".into(),
            Some("G".into()),
            Vec::new(),
            events.clone(),
        )
        .await
        .expect("subscribe");
    let subs = s.app().naming_subscribers.clone();
    until(Duration::from_secs(5), "the subscription", || {
        subs.subscriber_count() == 1
    })
    .await;

    // A gRPC registration from another client.
    publisher
        .register_instance(
            "watched".into(),
            Some("G".into()),
            sdk_instance("10.1.0.1", 80),
        )
        .await
        .expect("register");
    until(
        Duration::from_secs(5),
        "the gRPC registration to be pushed",
        || events.saw(&["10.1.0.1:80"]),
    )
    .await;

    // A v1 HTTP registration.
    let resp = s
        .client
        .post(s.url("/v1/ns/instance"))
        .query(&[
            ("serviceName", "watched"),
            ("groupName", "G"),
            ("ip", "10.1.0.2"),
            ("port", "80"),
        ])
        .send()
        .await
        .expect("register over HTTP");
    assert_eq!(resp.text().await.expect("body"), "ok");
    until(
        Duration::from_secs(5),
        "the HTTP registration to be pushed",
        || events.saw(&["10.1.0.1:80", "10.1.0.2:80"]),
    )
    .await;

    // A gRPC deregistration.
    publisher
        .deregister_instance(
            "watched".into(),
            Some("G".into()),
            sdk_instance("10.1.0.1", 80),
        )
        .await
        .expect("deregister");
    until(
        Duration::from_secs(5),
        "the deregistration to be pushed",
        || events.saw(&["10.1.0.2:80"]),
    )
    .await;

    // Subscribed queries are answered from the pushed cache; it matches the server.
    let all = watcher
        .get_all_instances("watched".into(), Some("G".into()), Vec::new(), true)
        .await
        .expect("subscribed query");
    assert_eq!(sdk_ips(&all), vec!["10.1.0.2:80"]);
}

#[tokio::test]
async fn a_closed_connection_takes_its_instances_and_subscribers_are_told() {
    let s = TestServer::start_with(&[("nacos.naming.push.pushTaskDelay", "50")]).await;
    // The subscriber: a raw client that answers pushes.
    let watcher = Raw::connect(&s).await;
    let mut watch_stream = watcher.setup().await;
    let (t, body) = watcher
        .call(
            "SubscribeServiceRequest",
            json!({"namespace": "public", "serviceName": "fleeting", "groupName": "G", "subscribe": true, "clusters": ""}),
        )
        .await;
    assert_eq!(t, "SubscribeServiceResponse", "{body}");
    assert_eq!(body["serviceInfo"]["name"], "fleeting");
    assert_eq!(body["serviceInfo"]["groupName"], "G");
    assert_eq!(body["serviceInfo"]["hosts"], json!([]));
    // The first subscription is pushed to the subscriber alone.
    let (t, push) = watch_stream
        .next(Duration::from_secs(5))
        .await
        .expect("first push");
    assert_eq!(t, "NotifySubscriberRequest");
    watch_stream
        .send(
            "NotifySubscriberResponse",
            json!({"requestId": push["requestId"], "resultCode": 200}),
        )
        .await;

    // The publisher registers over gRPC (namespace "" is "public"), then goes away.
    let publisher = Raw::connect(&s).await;
    let publish_stream = publisher.setup().await;
    let (t, body) = publisher
        .call(
            "InstanceRequest",
            json!({"namespace": "", "serviceName": "fleeting", "groupName": "G", "type": "registerInstance",
                   "instance": {"ip": "10.2.0.1", "port": 81, "weight": 1.0, "healthy": true, "enabled": true,
                                "ephemeral": true, "clusterName": "DEFAULT", "metadata": {}}}),
        )
        .await;
    assert_eq!(
        (t.as_str(), body["type"].as_str()),
        ("InstanceResponse", Some("registerInstance")),
        "{body}"
    );
    let (t, push) = watch_stream
        .next(Duration::from_secs(5))
        .await
        .expect("registration push");
    assert_eq!(t, "NotifySubscriberRequest");
    assert_eq!(push["headers"], json!({}));
    assert_eq!(push["serviceInfo"]["hosts"][0]["ip"], "10.2.0.1");
    assert_eq!(
        push["serviceInfo"]["hosts"][0]["instanceId"],
        "10.2.0.1#81#DEFAULT#G@@fleeting"
    );
    watch_stream
        .send(
            "NotifySubscriberResponse",
            json!({"requestId": push["requestId"], "resultCode": 200}),
        )
        .await;
    assert_eq!(
        http_ips(&http_list(&s, "fleeting", "G").await),
        vec!["10.2.0.1:81"]
    );

    drop(publish_stream);
    drop(publisher);
    let (t, push) = watch_stream
        .next(Duration::from_secs(5))
        .await
        .expect("removal push");
    assert_eq!(t, "NotifySubscriberRequest");
    assert_eq!(push["serviceInfo"]["hosts"], json!([]), "{push}");
    assert!(http_ips(&http_list(&s, "fleeting", "G").await).is_empty());
}

async fn naming_errors_have_nacos_shapes(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let raw = Raw::connect(&s).await;
    let _stream = raw.setup().await;
    // Unknown type: the handler throws 400.
    let (t, body) = raw
        .call(
            "InstanceRequest",
            json!({"serviceName": "svc", "groupName": "G", "type": "bogus", "instance": {"ip": "1.1.1.1", "port": 1}}),
        )
        .await;
    assert_eq!(
        (t.as_str(), body["errorCode"].as_i64()),
        ("ErrorResponse", Some(400)),
        "{body}"
    );
    // Bad service name: parameter check, typed.
    let (t, body) = raw
        .call(
            "ServiceQueryRequest",
            json!({"serviceName": "a@@b", "groupName": "G"}),
        )
        .await;
    assert_eq!(t, "QueryServiceResponse");
    assert_eq!(
        (body["resultCode"].as_i64(), body["errorCode"].as_i64()),
        (Some(500), Some(400))
    );
    // Ephemeral registration into a persistent service is refused.
    let resp = s
        .client
        .post(s.url("/v1/ns/instance"))
        .query(&[
            ("serviceName", "durable"),
            ("groupName", "G"),
            ("ip", "10.3.0.1"),
            ("port", "1"),
            ("ephemeral", "false"),
        ])
        .send()
        .await
        .expect("persistent register over HTTP");
    assert!(resp.status().is_success());
    let (t, body) = raw
        .call(
            "InstanceRequest",
            json!({"serviceName": "durable", "groupName": "G", "type": "registerInstance", "instance": {"ip": "10.3.0.2", "port": 1}}),
        )
        .await;
    assert_eq!(
        (t.as_str(), body["errorCode"].as_i64()),
        ("ErrorResponse", Some(400)),
        "{body}"
    );
}

#[tokio::test]
async fn expiry_of_a_v1_instance_is_pushed_to_grpc_subscribers() {
    let s = TestServer::start_with(&[
        ("nacos.naming.health.check.interval", "100"),
        ("nacos.naming.heart.beat.timeout", "300"),
        ("nacos.naming.ip.delete.timeout", "600"),
        ("nacos.naming.push.pushTaskDelay", "20"),
    ])
    .await;
    let resp = s
        .client
        .post(s.url("/v1/ns/instance"))
        .query(&[
            ("serviceName", "expiring"),
            ("groupName", "G"),
            ("ip", "10.4.0.1"),
            ("port", "1"),
        ])
        .send()
        .await
        .expect("register over HTTP");
    assert_eq!(resp.text().await.expect("body"), "ok");
    let raw = Raw::connect(&s).await;
    let mut stream = raw.setup().await;
    let (_, body) = raw
        .call(
            "SubscribeServiceRequest",
            json!({"serviceName": "expiring", "groupName": "G", "subscribe": true}),
        )
        .await;
    assert_eq!(body["resultCode"], 200, "{body}");
    // Answer every push until one shows the instance gone; one on the way shows it unhealthy.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut saw_unhealthy = false;
    loop {
        assert!(Instant::now() < deadline, "expiry never pushed");
        let Some((t, push)) = stream.next(Duration::from_millis(500)).await else {
            continue;
        };
        assert_eq!(t, "NotifySubscriberRequest");
        stream
            .send(
                "NotifySubscriberResponse",
                json!({"requestId": push["requestId"], "resultCode": 200}),
            )
            .await;
        let hosts = push["serviceInfo"]["hosts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if hosts.first().is_some_and(|h| h["healthy"] == false) {
            saw_unhealthy = true;
        }
        if hosts.is_empty() {
            break;
        }
    }
    assert!(
        saw_unhealthy,
        "the unhealthy state is pushed before the removal"
    );
}

#[tokio::test]
async fn sdk_client_reconnects_and_re_registers_after_its_connection_is_dropped() {
    let s = TestServer::start().await;
    let cache = tempfile::tempdir().expect("cache dir");
    let client = sdk_naming(&s, &cache).await;
    client
        .register_instance(
            "phoenix".into(),
            Some("G".into()),
            sdk_instance("10.5.0.1", 90),
        )
        .await
        .expect("register");
    assert_eq!(
        http_ips(&http_list(&s, "phoenix", "G").await),
        vec!["10.5.0.1:90"]
    );

    // The server drops the connection: its ephemeral instance goes with it at once.
    let app = s.app();
    for conn in app.connections.all() {
        app.connections.eject(&conn, "test");
    }
    assert!(http_ips(&http_list(&s, "phoenix", "G").await).is_empty());

    // The client notices, reconnects, and its redo task registers the instance again (the
    // crate probes every 5 s, backs off 2 s, redoes every 3 s: about 15 s in all).
    let started = Instant::now();
    loop {
        if http_ips(&http_list(&s, "phoenix", "G").await) == vec!["10.5.0.1:90"] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the client never re-registered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
