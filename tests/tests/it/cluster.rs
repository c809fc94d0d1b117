//! Cluster mode end to end: three nodes in this process on loopback ports, each with its own
//! listeners and home, over embedded storage replicated by Raft or one shared database.
//! Clients are the real `nacos-sdk` (gRPC) and plain HTTP. Killing processes with SIGKILL is
//! covered by the server crate's process tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nacos_sdk::api::config::{ConfigChangeListener, ConfigResponse, ConfigServiceBuilder};
use nacos_sdk::api::naming::{
    NamingChangeEvent, NamingEventListener, NamingServiceBuilder, ServiceInstance,
};
use nacos_sdk::api::props::ClientProps;
use nacos_server::protocol::transport::Payload;
use serde_json::{Value, json};
use tonic::codegen::http::uri::PathAndQuery;
use tonic_prost::ProstCodec;

use crate::helpers::{self, eventually, payload};
use crate::support::{Storage, TestCluster, TestNode, on_every_backend};

on_every_backend!(
    registration_on_one_node_is_listed_and_pushed_on_the_others,
    publish_on_one_node_wakes_listeners_on_the_others,
    a_stopped_nodes_clients_expire_and_it_converges_when_back,
    persistent_instances_and_services_reach_every_node,
);

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// The server identity of the auth-enabled test cluster; ignored by the others.
const IDENTITY: (&str, &str) = ("peer-key", "peer-secret-value");

async fn get_json(url: String) -> Value {
    client()
        .get(url)
        .header(IDENTITY.0, IDENTITY.1)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .unwrap_or(Value::Null)
}

async fn list_ips(node: &TestNode, service: &str) -> Vec<String> {
    let list = get_json(node.url(&format!(
        "/v1/ns/instance/list?serviceName={service}&groupName=G"
    )))
    .await;
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

/// Wait until each of `nodes` lists exactly `expected` (`ip:port`) for `service` in group G.
async fn wait_listed(cluster: &TestCluster, nodes: &[usize], service: &str, expected: &[&str]) {
    for &i in nodes {
        let what = format!("node {i} listing {expected:?} for {service}");
        eventually(Duration::from_secs(5), &what, || async {
            list_ips(cluster.node(i), service).await == expected
        })
        .await;
    }
}

/// POST a form to `path` on `node`; must answer 200.
async fn post_ok(node: &TestNode, path: &str, form: &[(&str, &str)]) {
    let resp = client()
        .post(node.url(path))
        .form(form)
        .send()
        .await
        .expect("POST");
    let status = resp.status();
    assert_eq!(
        status,
        200,
        "{path}: {}",
        resp.text().await.unwrap_or_default()
    );
}

fn instance(ip: &str, port: i32) -> ServiceInstance {
    ServiceInstance {
        ip: ip.to_string(),
        port,
        ..Default::default()
    }
}

/// Member address → state, as `node` lists them.
async fn member_states(node: &TestNode) -> HashMap<String, String> {
    let body = get_json(node.url("/v1/core/cluster/nodes")).await;
    body["data"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|m| {
                    (
                        m["address"].as_str().unwrap_or("").to_string(),
                        m["state"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn all_up(cluster: &TestCluster) {
    for i in cluster.running() {
        let node = cluster.node(i);
        eventually(Duration::from_secs(10), "every member UP", || async {
            let states = member_states(node).await;
            states.len() == cluster.ports.len() && states.values().all(|s| s == "UP")
        })
        .await;
    }
}

fn sdk_props(node: &TestNode, cache: &tempfile::TempDir) -> ClientProps {
    helpers::sdk_props(node.server_addr(), cache, "cluster-it").naming_push_empty_protection(false)
}

struct Events(Mutex<Vec<Vec<String>>>);

impl NamingEventListener for Events {
    fn event(&self, event: Arc<NamingChangeEvent>) {
        let mut ips: Vec<String> = event
            .instances
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|i| format!("{}:{}", i.ip, i.port))
            .collect();
        ips.sort();
        self.0.lock().expect("lock").push(ips);
    }
}

impl Events {
    fn saw(&self, ips: &[&str]) -> bool {
        self.0.lock().expect("lock").iter().any(|e| e == ips)
    }
}

async fn registration_on_one_node_is_listed_and_pushed_on_the_others(storage: Storage) {
    let cluster = TestCluster::start(storage, 3, &[]).await;
    all_up(&cluster).await;
    let caches: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir().expect("cache"))
        .collect();
    // Subscribers on nodes 1 and 2, the publisher on node 0.
    let mut watchers = Vec::new();
    for i in [1, 2] {
        let naming = NamingServiceBuilder::new(sdk_props(cluster.node(i), &caches[i]))
            .build()
            .await
            .expect("naming client");
        let events = Arc::new(Events(Mutex::new(Vec::new())));
        naming
            .subscribe(
                "spread".into(),
                Some("G".into()),
                Vec::new(),
                events.clone(),
            )
            .await
            .expect("subscribe");
        watchers.push((naming, events));
    }
    let publisher = NamingServiceBuilder::new(sdk_props(cluster.node(0), &caches[0]))
        .build()
        .await
        .expect("naming client");
    let started = Instant::now();
    publisher
        .register_instance(
            "spread".into(),
            Some("G".into()),
            instance("10.9.0.1", 8080),
        )
        .await
        .expect("register on node 0");
    wait_listed(&cluster, &[1, 2], "spread", &["10.9.0.1:8080"]).await;
    for (_, events) in &watchers {
        eventually(Duration::from_secs(3), "a push on a peer", || async {
            events.saw(&["10.9.0.1:8080"])
        })
        .await;
    }
    let elapsed = started.elapsed();
    eprintln!("registration on node 0 → listed and pushed on nodes 1 and 2: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    // Node 0 owns the client; nodes 1 and 2 hold copies and are not responsible for them.
    for (i, responsible) in [(0, 1), (1, 0), (2, 0)] {
        let m = get_json(
            cluster
                .node(i)
                .url("/v1/ns/operator/metrics?onlyStatus=false"),
        )
        .await;
        assert_eq!(m["instanceCount"], 1, "node {i}: {m}");
        assert_eq!(m["responsibleInstanceCount"], responsible, "node {i}: {m}");
        assert_eq!(m["responsibleClientCount"], responsible, "node {i}: {m}");
    }

    // Deregistered on node 0: gone everywhere.
    publisher
        .deregister_instance(
            "spread".into(),
            Some("G".into()),
            instance("10.9.0.1", 8080),
        )
        .await
        .expect("deregister on node 0");
    for i in [1, 2] {
        eventually(
            Duration::from_secs(5),
            "the instance gone on a peer",
            || async { list_ips(cluster.node(i), "spread").await.is_empty() },
        )
        .await;
    }
    for (_, events) in &watchers {
        eventually(
            Duration::from_secs(3),
            "an empty push on a peer",
            || async { events.saw(&[]) },
        )
        .await;
    }
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

fn listening(data_id: &str, md5: &str) -> String {
    format!("{data_id}\u{2}G\u{2}{md5}\u{1}")
}

async fn publish(node: &TestNode, data_id: &str, content: &str) {
    let resp = client()
        .post(node.url("/v1/cs/configs"))
        .form(&[("dataId", data_id), ("group", "G"), ("content", content)])
        .send()
        .await
        .expect("publish");
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
}

async fn read(node: &TestNode, data_id: &str) -> Option<String> {
    let resp = client()
        .get(node.url(&format!("/v1/cs/configs?dataId={data_id}&group=G")))
        .send()
        .await
        .expect("get");
    if resp.status() == 200 {
        resp.text().await.ok()
    } else {
        None
    }
}

async fn publish_on_one_node_wakes_listeners_on_the_others(storage: Storage) {
    let cluster = TestCluster::start(storage, 3, &[]).await;
    all_up(&cluster).await;
    publish(cluster.node(0), "shared.cfg", "v1").await;
    for i in 0..3 {
        eventually(
            Duration::from_secs(5),
            "v1 readable on every node",
            || async { read(cluster.node(i), "shared.cfg").await.as_deref() == Some("v1") },
        )
        .await;
    }
    // A v1 long poll on node 1 and an SDK listener on node 2.
    let poll = {
        let url = cluster.node(1).url("/v1/cs/configs/listener");
        let md5 = nacos_core::md5_hex("v1");
        tokio::spawn(async move {
            client()
                .post(url)
                .header("Long-Pulling-Timeout", "10000")
                .form(&[("Listening-Configs", listening("shared.cfg", &md5))])
                .send()
                .await
                .expect("long poll")
                .text()
                .await
                .unwrap_or_default()
        })
    };
    let cache = tempfile::tempdir().expect("cache");
    let sdk = ConfigServiceBuilder::new(sdk_props(cluster.node(2), &cache))
        .build()
        .await
        .expect("config client");
    let seen = Arc::new(Collect(Mutex::new(Vec::new())));
    sdk.add_listener("shared.cfg".into(), "G".into(), seen.clone())
        .await
        .expect("listen");
    // Let the long poll and the listener settle before the change.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    publish(cluster.node(0), "shared.cfg", "v2").await;
    eventually(
        Duration::from_secs(5),
        "the SDK listener on node 2",
        || async { seen.0.lock().expect("lock").iter().any(|c| c == "v2") },
    )
    .await;
    let notified = started.elapsed();
    let answer = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("the long poll on node 1 answers")
        .expect("poll task");
    assert!(
        answer.contains("shared.cfg"),
        "long poll answer: {answer:?}"
    );
    eprintln!("publish on node 0 → SDK listener on node 2 notified: {notified:?}");
    for i in 0..3 {
        assert_eq!(
            read(cluster.node(i), "shared.cfg").await.as_deref(),
            Some("v2")
        );
    }
    // A delete travels the same way.
    let resp = client()
        .delete(
            cluster
                .node(1)
                .url("/v1/cs/configs?dataId=shared.cfg&group=G"),
        )
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status(), 200);
    for i in 0..3 {
        eventually(
            Duration::from_secs(5),
            "the delete on every node",
            || async { read(cluster.node(i), "shared.cfg").await.is_none() },
        )
        .await;
    }
}

async fn a_stopped_nodes_clients_expire_and_it_converges_when_back(storage: Storage) {
    let mut cluster = TestCluster::start(storage, 3, &[]).await;
    all_up(&cluster).await;
    // A v1 (HTTP, beat-kept) instance registered on node 0.
    post_ok(
        cluster.node(0),
        "/v1/ns/instance",
        &[
            ("serviceName", "fading"),
            ("groupName", "G"),
            ("ip", "10.9.1.1"),
            ("port", "80"),
        ],
    )
    .await;
    wait_listed(&cluster, &[1, 2], "fading", &["10.9.1.1:80"]).await;
    cluster.stop(0).await;
    let dead = format!("127.0.0.1:{}", cluster.ports[0]);
    for i in [1, 2] {
        let node = cluster.node(i);
        eventually(Duration::from_secs(5), "the stopped node DOWN", || async {
            member_states(node).await.get(&dead).map(String::as_str) == Some("DOWN")
        })
        .await;
        // nacos.naming.client.expired.time is 2 s in these tests.
        eventually(
            Duration::from_secs(8),
            "the stopped node's client dropped",
            || async { list_ips(node, "fading").await.is_empty() },
        )
        .await;
    }
    // Writes keep working on the remaining two.
    publish(cluster.node(1), "while.down", "x").await;
    // Back: it is UP again everywhere and has what was written while it was away.
    cluster.restart(0, false).await;
    all_up(&cluster).await;
    eventually(
        Duration::from_secs(10),
        "the restarted node converged",
        || async { read(cluster.node(0), "while.down").await.as_deref() == Some("x") },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Membership and the cluster port

#[tokio::test]
async fn members_are_listed_and_the_member_list_reloads() {
    let storage = Storage::Mysql;
    if storage.skip("cluster::members_are_listed_and_the_member_list_reloads") {
        return;
    }
    let cluster = TestCluster::start(storage, 3, &[]).await;
    all_up(&cluster).await;
    let node = cluster.node(1);
    let me = get_json(node.url("/v1/core/cluster/self")).await;
    assert_eq!(
        me["data"]["address"],
        format!("127.0.0.1:{}", cluster.ports[1])
    );
    assert_eq!(me["data"]["state"], "UP");
    assert_eq!(
        me["data"]["extendInfo"]["raftPort"],
        (cluster.ports[1] - 1000).to_string()
    );
    let simple = get_json(node.url("/v1/core/cluster/simple/nodes")).await;
    assert_eq!(simple["data"].as_array().map(Vec::len), Some(3));
    let v2 = get_json(node.url("/v2/core/cluster/node/list?state=UP")).await;
    assert_eq!(v2["code"], 0);
    assert_eq!(v2["data"].as_array().map(Vec::len), Some(3));
    let keyword = get_json(node.url(&format!(
        "/v1/core/cluster/nodes?keyword={}",
        cluster.ports[2]
    )))
    .await;
    assert_eq!(keyword["data"].as_array().map(Vec::len), Some(1));

    // cluster.conf appears (it wins over nacos.member.list) with a fourth member nobody runs.
    let app = node.app();
    let conf = app.settings.home.join("conf");
    std::fs::create_dir_all(&conf).expect("conf dir");
    let mut text = String::from("# edited by hand\n");
    for p in &cluster.ports {
        text.push_str(&format!("127.0.0.1:{p}\n"));
    }
    text.push_str("127.0.0.9:8848 # not running\n");
    std::fs::write(conf.join("cluster.conf"), text).expect("write cluster.conf");
    eventually(Duration::from_secs(5), "the new member listed", || async {
        member_states(node).await.contains_key("127.0.0.9:8848")
    })
    .await;
    eventually(Duration::from_secs(5), "the absent member DOWN", || async {
        member_states(node)
            .await
            .get("127.0.0.9:8848")
            .map(String::as_str)
            == Some("DOWN")
    })
    .await;
}

async fn unary(port: u16, p: Payload) -> Value {
    unary_from("127.0.0.1", port, p).await
}

/// A unary call to `127.0.0.1:port` from the local address `from` (any 127.x address works on
/// Linux loopback, so a test can call from an address that is not a member's).
async fn unary_from(from: &str, port: u16, p: Payload) -> Value {
    let local: std::net::IpAddr = from.parse().expect("local address");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("endpoint")
        .local_address(Some(local))
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let resp: Payload = grpc
        .unary(
            tonic::Request::new(p),
            PathAndQuery::from_static("/Request/request"),
            ProstCodec::<Payload, Payload>::default(),
        )
        .await
        .expect("unary call")
        .into_inner();
    let mut v: Value = serde_json::from_slice(resp.body_bytes()).expect("response JSON");
    v["$type"] = json!(resp.type_name());
    v
}

#[tokio::test]
async fn without_an_identity_the_peer_ports_admit_member_addresses_only() {
    let cluster = TestCluster::start(Storage::Embedded, 3, &[]).await;
    all_up(&cluster).await;
    let cluster_port = cluster.ports[0] + 1001;
    let raft_port = cluster.ports[0] - 1000;
    let report = json!({"node": {"address": format!("127.0.0.1:{}", cluster.ports[1])}});
    // Every member lives at 127.0.0.1 here: from there, reports are served.
    let ok = unary(cluster_port, payload("MemberReportRequest", &report, &[])).await;
    assert_eq!(ok["$type"], "MemberReportResponse", "{ok}");
    // Another process on the same host, at an address no member has, is refused on both
    // node-to-node ports, and so is a forged write forwarded to Raft.
    let stranger = unary_from(
        "127.0.0.9",
        cluster_port,
        payload("MemberReportRequest", &report, &[]),
    )
    .await;
    assert_eq!(stranger["errorCode"], 403, "{stranger}");
    assert!(
        stranger["message"]
            .as_str()
            .unwrap_or("")
            .contains("cluster members"),
        "{stranger}"
    );
    let probe = unary_from(
        "127.0.0.9",
        raft_port,
        payload("RaftProbe", &json!({}), &[]),
    )
    .await;
    assert_eq!(probe["errorCode"], 403, "{probe}");
    let forward = unary_from(
        "127.0.0.9",
        raft_port,
        payload("RaftForward", &json!({"CreateUser": {"user": {}}}), &[]),
    )
    .await;
    assert_eq!(forward["errorCode"], 403, "{forward}");
}

#[tokio::test]
async fn with_an_identity_the_peer_ports_want_it_even_with_auth_off() {
    let props = [
        ("nacos.core.auth.server.identity.key", "peer-key"),
        ("nacos.core.auth.server.identity.value", "peer-secret-value"),
    ];
    let cluster = TestCluster::start(Storage::Embedded, 3, &props).await;
    // Auth is off, yet the nodes send the identity, so they see each other.
    all_up(&cluster).await;
    let cluster_port = cluster.ports[0] + 1001;
    let report = json!({"node": {"address": format!("127.0.0.1:{}", cluster.ports[1])}});
    // A member's address alone is not enough: the identity decides.
    let refused = unary(cluster_port, payload("MemberReportRequest", &report, &[])).await;
    assert_eq!(refused["errorCode"], 403, "{refused}");
    let wrong = unary(
        cluster_port,
        payload("MemberReportRequest", &report, &[("peer-key", "guess")]),
    )
    .await;
    assert_eq!(wrong["errorCode"], 403, "{wrong}");
    let accepted = unary(
        cluster_port,
        payload(
            "MemberReportRequest",
            &report,
            &[("peer-key", "peer-secret-value")],
        ),
    )
    .await;
    assert_eq!(accepted["$type"], "MemberReportResponse", "{accepted}");
    let raft = unary(
        cluster.ports[0] - 1000,
        payload("RaftProbe", &json!({}), &[]),
    )
    .await;
    assert_eq!(raft["errorCode"], 403, "{raft}");
    // Writes still replicate between the members.
    publish(cluster.node(0), "identity-on", "v1").await;
    eventually(Duration::from_secs(10), "replicated", || async {
        read(cluster.node(2), "identity-on").await.as_deref() == Some("v1")
    })
    .await;
}

/// Auth on, with the same secret and server identity on every node.
const AUTH_PROPS: &[(&str, &str)] = &[
    ("nacos.core.auth.enabled", "true"),
    ("nacos.core.auth.server.identity.key", "peer-key"),
    ("nacos.core.auth.server.identity.value", "peer-secret-value"),
    (
        "nacos.core.auth.plugin.nacos.token.secret.key",
        "Y2x1c3Rlci10ZXN0LXNlY3JldC1rZXktMDEyMzQ1Njc4OTAxMjM0NTY3ODk=",
    ),
];

#[tokio::test]
async fn users_made_on_one_node_log_in_on_the_others() {
    let cluster = TestCluster::start(Storage::Embedded, 3, AUTH_PROPS).await;
    all_up(&cluster).await;
    post_ok(
        cluster.node(0),
        "/v1/auth/users/admin",
        &[("password", "cluster-admin-pw")],
    )
    .await;
    // The user travels through Raft; a token from any node works on every node. (Waiting by
    // failed logins would lock the user: failures are throttled.)
    eventually(Duration::from_secs(5), "the admin on node 2", || {
        let url = cluster
            .node(2)
            .url("/v1/auth/users?pageNo=1&pageSize=10&username=nacos");
        async move { get_json(url).await["totalCount"] == 1 }
    })
    .await;
    let login: Value = client()
        .post(cluster.node(2).url("/v1/auth/login"))
        .form(&[("username", "nacos"), ("password", "cluster-admin-pw")])
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login JSON");
    let token = login["accessToken"].as_str().expect("token").to_string();
    let resp = client()
        .post(cluster.node(1).url("/v1/cs/configs"))
        .form(&[
            ("dataId", "secured"),
            ("group", "G"),
            ("content", "s"),
            ("accessToken", &token),
        ])
        .send()
        .await
        .expect("publish with the token");
    assert_eq!(resp.status(), 200);
    let anonymous = client()
        .post(cluster.node(1).url("/v1/cs/configs"))
        .form(&[("dataId", "secured"), ("group", "G"), ("content", "x")])
        .send()
        .await
        .expect("publish without a token");
    assert_eq!(anonymous.status(), 403);
}

#[tokio::test]
async fn the_cluster_port_serves_peers_only_and_wants_the_identity_with_auth() {
    let storage = Storage::Mysql;
    if storage.skip("cluster::the_cluster_port_serves_peers_only_and_wants_the_identity_with_auth")
    {
        return;
    }
    let cluster = TestCluster::start(storage, 2, AUTH_PROPS).await;
    // The nodes carry the identity, so they see each other.
    all_up(&cluster).await;
    let cluster_port = cluster.ports[0] + 1001;
    let report = json!({"node": {"address": format!("127.0.0.1:{}", cluster.ports[1])}});
    let refused = unary(cluster_port, payload("MemberReportRequest", &report, &[])).await;
    assert_eq!(refused["$type"], "ErrorResponse");
    assert_eq!(refused["errorCode"], 403, "{refused}");
    let accepted = unary(
        cluster_port,
        payload(
            "MemberReportRequest",
            &report,
            &[("peer-key", "peer-secret-value")],
        ),
    )
    .await;
    assert_eq!(accepted["$type"], "MemberReportResponse", "{accepted}");
    assert_eq!(
        accepted["node"]["address"],
        format!("127.0.0.1:{}", cluster.ports[0])
    );
    // A client request is not served on the cluster port, identity or not.
    let query = json!({"dataId": "x", "group": "G", "tenant": ""});
    let client_type = unary(
        cluster_port,
        payload(
            "ConfigQueryRequest",
            &query,
            &[("peer-key", "peer-secret-value")],
        ),
    )
    .await;
    assert_eq!(client_type["errorCode"], 302, "{client_type}");
    // And a cluster type is not served on the client port.
    let on_client_port = unary(
        cluster.ports[0] + 1000,
        payload("MemberReportRequest", &report, &[]),
    )
    .await;
    assert_eq!(on_client_port["$type"], "ErrorResponse");
    // A report from a stranger is refused with 400.
    let stranger = json!({"node": {"address": "10.1.1.1:8848"}});
    let bad = unary(
        cluster_port,
        payload(
            "MemberReportRequest",
            &stranger,
            &[("peer-key", "peer-secret-value")],
        ),
    )
    .await;
    assert_eq!(bad["errorCode"], 400, "{bad}");
}

#[tokio::test]
async fn missed_config_messages_are_healed_by_the_scan() {
    let storage = Storage::Mysql;
    if storage.skip("cluster::missed_config_messages_are_healed_by_the_scan") {
        return;
    }
    let cluster = TestCluster::start(
        storage,
        2,
        &[("nacos.config.cluster.scanIntervalMs", "500")],
    )
    .await;
    all_up(&cluster).await;
    publish(cluster.node(0), "healed.cfg", "v1").await;
    eventually(Duration::from_secs(5), "v1 on node 1", || async {
        read(cluster.node(1), "healed.cfg").await.as_deref() == Some("v1")
    })
    .await;
    // A write that sends no message: straight into the shared database behind node 0.
    let app = cluster.node(0).app();
    app.repos
        .configs
        .publish(nacos_core::ConfigPublish {
            key: nacos_core::ConfigKey::new("", "G", "healed.cfg"),
            content: "v2".to_string(),
            ..nacos_core::ConfigPublish::default()
        })
        .await
        .expect("direct write");
    eventually(
        Duration::from_secs(5),
        "node 1 heals from its scan",
        || async { read(cluster.node(1), "healed.cfg").await.as_deref() == Some("v2") },
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Embedded cluster (Raft)

/// Index of the node that is the Raft leader, once all running nodes agree on one.
async fn leader(cluster: &TestCluster) -> usize {
    let mut found = None;
    eventually(Duration::from_secs(10), "an agreed Raft leader", || {
        let leaders: Vec<Option<String>> = cluster
            .running()
            .into_iter()
            .map(|i| {
                cluster
                    .node(i)
                    .app()
                    .raft
                    .as_ref()
                    .and_then(|r| r.status().leader)
            })
            .collect();
        let agreed = leaders
            .first()
            .cloned()
            .flatten()
            .filter(|l| leaders.iter().all(|x| x.as_deref() == Some(l.as_str())));
        // A stopped leader is remembered until the election timeout: only a running one counts.
        found = agreed
            .and_then(|addr| {
                cluster
                    .ports
                    .iter()
                    .position(|p| addr == format!("127.0.0.1:{}", p - 1000))
            })
            .filter(|i| cluster.nodes[*i].is_some());
        let done = found.is_some();
        async move { done }
    })
    .await;
    found.expect("leader index")
}

#[tokio::test]
async fn embedded_cluster_replicates_every_kind_of_write_and_survives_its_leader() {
    let mut cluster = TestCluster::start(Storage::Embedded, 3, &[]).await;
    all_up(&cluster).await;
    let first = leader(&cluster).await;
    let follower = (first + 1) % 3;
    let other = (first + 2) % 3;

    // A write through a follower, then a linearizable read on the other follower sees it at
    // once (no polling): the read waits for that node to catch up with the leader.
    publish(cluster.node(follower), "raft.cfg", "r1").await;
    let fresh = client()
        .get(
            cluster
                .node(other)
                .url("/v1/cs/configs?dataId=raft.cfg&group=G&consistency=linearizable"),
        )
        .send()
        .await
        .expect("linearizable read");
    assert_eq!(fresh.status(), 200);
    assert_eq!(fresh.text().await.expect("body"), "r1");
    let bad = client()
        .get(
            cluster
                .node(other)
                .url("/v1/cs/configs?dataId=raft.cfg&group=G&consistency=strong"),
        )
        .send()
        .await
        .expect("bad consistency");
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap_or_default().contains("consistency"));

    // A namespace created on one node exists on the others.
    post_ok(
        cluster.node(other),
        "/v1/console/namespaces",
        &[
            ("customNamespaceId", "raft-ns"),
            ("namespaceName", "Raft NS"),
        ],
    )
    .await;
    for i in 0..3 {
        eventually(
            Duration::from_secs(5),
            "the namespace on every node",
            || async {
                get_json(cluster.node(i).url("/v1/console/namespaces")).await["data"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|n| n["namespace"] == "raft-ns"))
            },
        )
        .await;
    }

    // A persistent instance registered on one node is listed, and pushed, everywhere.
    post_ok(
        cluster.node(follower),
        "/v1/ns/instance",
        &[
            ("serviceName", "durable"),
            ("groupName", "G"),
            ("ip", "10.9.2.1"),
            ("port", "9000"),
            ("ephemeral", "false"),
        ],
    )
    .await;
    wait_listed(&cluster, &[0, 1, 2], "durable", &["10.9.2.1:9000"]).await;

    // The leader goes: the other two elect a new one and keep taking writes.
    cluster.stop(first).await;
    let second = leader(&cluster).await;
    assert_ne!(second, first);
    publish(cluster.node(follower), "raft.cfg", "r2").await;
    publish(cluster.node(other), "after.leader", "x").await;
    let ready = client()
        .get(cluster.node(follower).url("/v1/console/health/readiness"))
        .send()
        .await
        .expect("readiness");
    assert_eq!(ready.status(), 200);

    // The old leader comes back as a follower and catches up.
    cluster.restart(first, false).await;
    eventually(
        Duration::from_secs(10),
        "the old leader caught up",
        || async {
            read(cluster.node(first), "raft.cfg").await.as_deref() == Some("r2")
                && read(cluster.node(first), "after.leader").await.as_deref() == Some("x")
        },
    )
    .await;
    // Every node has exactly two history rows for raft.cfg: nothing was applied twice.
    for i in 0..3 {
        let history =
            get_json(cluster.node(i).url(
                "/v1/cs/history?search=accurate&dataId=raft.cfg&group=G&pageNo=1&pageSize=50",
            ))
            .await;
        assert_eq!(history["totalCount"], 2, "node {i}: {history}");
    }
}

#[tokio::test]
async fn embedded_cluster_without_quorum_is_not_ready() {
    let mut cluster = TestCluster::start(Storage::Embedded, 3, &[]).await;
    all_up(&cluster).await;
    leader(&cluster).await;
    cluster.stop(1).await;
    cluster.stop(2).await;
    let survivor = cluster.node(0);
    eventually(
        Duration::from_secs(10),
        "readiness DOWN without quorum",
        || async {
            let resp = client()
                .get(survivor.url("/v1/console/health/readiness"))
                .send()
                .await
                .expect("readiness");
            resp.status() == 500
                && resp
                    .text()
                    .await
                    .unwrap_or_default()
                    .contains("no Raft leader")
        },
    )
    .await;
    let v2 = client()
        .get(survivor.url("/v2/console/health/readiness"))
        .send()
        .await
        .expect("v2 readiness");
    assert_eq!(v2.status(), 500);
    // Operator and cluster health views say the same.
    let m = get_json(survivor.url("/v1/ns/operator/metrics")).await;
    assert_eq!(m["status"], "DOWN", "{m}");
    let health = get_json(survivor.url("/v1/core/cluster/health")).await;
    assert_eq!(health["data"], "DOWN", "{health}");
    let cs = client()
        .get(survivor.url("/v1/cs/health"))
        .send()
        .await
        .expect("cs health");
    assert!(cs.text().await.unwrap_or_default().starts_with("DOWN:"));
    // A write fails clearly, in bounded time, and is not acknowledged.
    let started = Instant::now();
    let resp = client()
        .post(survivor.url("/v1/cs/configs"))
        .form(&[("dataId", "lost"), ("group", "G"), ("content", "x")])
        .send()
        .await
        .expect("publish");
    assert!(resp.status().is_server_error(), "{}", resp.status());
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn a_restarted_nodes_old_clients_leave_its_peers_at_its_first_verification() {
    // Expiry is far away here: only the restarted owner's verification can remove the copy.
    let mut cluster = TestCluster::start(
        Storage::Embedded,
        3,
        &[("nacos.naming.client.expired.time", "120000")],
    )
    .await;
    all_up(&cluster).await;
    post_ok(
        cluster.node(0),
        "/v1/ns/instance",
        &[
            ("serviceName", "ghost"),
            ("groupName", "G"),
            ("ip", "10.9.3.1"),
            ("port", "80"),
        ],
    )
    .await;
    eventually(Duration::from_secs(3), "the copy on node 1", || async {
        list_ips(cluster.node(1), "ghost").await == ["10.9.3.1:80"]
    })
    .await;
    cluster.restart(0, false).await;
    // Node 0 forgot the v1 client (it lives in memory); its first VERIFY no longer lists it.
    eventually(
        Duration::from_secs(5),
        "the stale copy dropped on the peers",
        || async {
            list_ips(cluster.node(1), "ghost").await.is_empty()
                && list_ips(cluster.node(2), "ghost").await.is_empty()
        },
    )
    .await;
}

#[tokio::test]
async fn an_embedded_cluster_grows_and_shrinks_with_its_member_list() {
    let mut cluster = TestCluster::start(Storage::Embedded, 3, &[]).await;
    all_up(&cluster).await;
    publish(cluster.node(0), "before.growth", "old").await;
    let voters = |cluster: &TestCluster, i: usize| {
        cluster
            .node(i)
            .app()
            .raft
            .as_ref()
            .map(|r| r.status().voters.len())
            .unwrap_or_default()
    };
    // A fourth node: started with the longer list, the others reload theirs from cluster.conf;
    // the leader adds it to Raft once it answers.
    let new = cluster.add_node().await;
    let first = leader(&cluster).await;
    eventually(Duration::from_secs(15), "four Raft voters", || {
        let n = voters(&cluster, first);
        async move { n == 4 }
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "the new node caught up",
        || async { read(cluster.node(new), "before.growth").await.as_deref() == Some("old") },
    )
    .await;
    publish(cluster.node(new), "after.growth", "new").await;
    eventually(
        Duration::from_secs(5),
        "a write through the new node everywhere",
        || async { read(cluster.node(1), "after.growth").await.as_deref() == Some("new") },
    )
    .await;

    // The new node leaves through the API on the leader: Raft is back to three voters.
    let leader_index = leader(&cluster).await;
    let departing = format!("127.0.0.1:{}", cluster.ports[new]);
    let resp = client()
        .post(
            cluster
                .node(leader_index)
                .url("/v1/core/cluster/server/leave"),
        )
        .json(&json!([departing]))
        .send()
        .await
        .expect("leave");
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    eventually(Duration::from_secs(10), "three Raft voters again", || {
        let n = voters(&cluster, leader_index);
        async move { n == 3 }
    })
    .await;
    // Leaving oneself, or a stranger, is refused and names the address.
    let me = format!("127.0.0.1:{}", cluster.ports[leader_index]);
    for bad in [me.as_str(), "10.1.2.3:8848"] {
        let resp = client()
            .post(
                cluster
                    .node(leader_index)
                    .url("/v1/core/cluster/server/leave"),
            )
            .json(&json!([bad]))
            .send()
            .await
            .expect("leave");
        assert_eq!(resp.status(), 400);
        assert!(resp.text().await.unwrap_or_default().contains(bad));
    }
    publish(cluster.node(leader_index), "after.shrink", "x").await;
}

async fn persistent_instances_and_services_reach_every_node(storage: Storage) {
    let cluster = TestCluster::start(storage, 3, &[]).await;
    all_up(&cluster).await;
    post_ok(
        cluster.node(0),
        "/v1/ns/instance",
        &[
            ("serviceName", "kept"),
            ("groupName", "G"),
            ("ip", "10.9.4.1"),
            ("port", "7000"),
            ("ephemeral", "false"),
        ],
    )
    .await;
    wait_listed(&cluster, &[1, 2], "kept", &["10.9.4.1:7000"]).await;
    let resp = client()
        .delete(cluster.node(1).url(
            "/v1/ns/instance?serviceName=kept&groupName=G&ip=10.9.4.1&port=7000&ephemeral=false",
        ))
        .send()
        .await
        .expect("deregister persistent");
    assert_eq!(resp.status(), 200);
    for i in [0, 2] {
        eventually(
            Duration::from_secs(5),
            "the deregistration on a peer",
            || async { list_ips(cluster.node(i), "kept").await.is_empty() },
        )
        .await;
    }
    post_ok(
        cluster.node(2),
        "/v1/ns/service",
        &[
            ("serviceName", "settled"),
            ("groupName", "G"),
            ("protectThreshold", "0.5"),
        ],
    )
    .await;
    eventually(
        Duration::from_secs(5),
        "the service settings on node 0",
        || async {
            let detail = get_json(
                cluster
                    .node(0)
                    .url("/v1/ns/service?serviceName=settled&groupName=G"),
            )
            .await;
            detail["protectThreshold"] == 0.5
        },
    )
    .await;
}

async fn beat(node: &TestNode, service: &str, ip: &str, port: &str) -> Value {
    let resp = client()
        .put(node.url("/v1/ns/instance/beat"))
        .form(&[
            ("serviceName", service),
            ("groupName", "G"),
            ("ip", ip),
            ("port", port),
        ])
        .send()
        .await
        .expect("beat");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("beat JSON")
}

/// Beat `ip:port` through the given nodes in turn for `period`, every 200 ms; every beat must
/// be answered 10200.
async fn keep_beating(
    cluster: &TestCluster,
    nodes: &[usize],
    service: &str,
    ip: &str,
    period: Duration,
) {
    let started = Instant::now();
    let mut turn = 0;
    while started.elapsed() < period {
        let node = cluster.node(nodes[turn % nodes.len()]);
        let answer = beat(node, service, ip, "80").await;
        assert_eq!(
            answer["code"], 10200,
            "beat through {}: {answer}",
            node.port
        );
        turn += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn v1_clients_may_talk_to_any_node() {
    let mut cluster = TestCluster::start(Storage::Embedded, 3, &[]).await;
    all_up(&cluster).await;
    // Short beat timings for this instance, as a v1 client may ask for.
    let metadata = r#"{"preserved.heart.beat.timeout":"1000","preserved.ip.delete.timeout":"1500","preserved.heart.beat.interval":"200"}"#;
    let register = [
        ("serviceName", "roaming"),
        ("groupName", "G"),
        ("ip", "10.9.5.1"),
        ("port", "80"),
        ("metadata", metadata),
    ];
    post_ok(cluster.node(0), "/v1/ns/instance", &register).await;
    wait_listed(&cluster, &[0, 1, 2], "roaming", &["10.9.5.1:80"]).await;
    // Beats reach the other nodes only (as a 1.x client picking servers at random does): they
    // are forwarded to node 0, which owns the client, so it outlives its delete timeout.
    keep_beating(
        &cluster,
        &[1, 2],
        "roaming",
        "10.9.5.1",
        Duration::from_secs(3),
    )
    .await;
    for i in 0..3 {
        let list = get_json(
            cluster
                .node(i)
                .url("/v1/ns/instance/list?serviceName=roaming&groupName=G"),
        )
        .await;
        assert_eq!(list["hosts"][0]["healthy"], true, "node {i}: {list}");
    }
    // Deregistered through node 2: gone everywhere.
    let resp = client()
        .delete(
            cluster
                .node(2)
                .url("/v1/ns/instance?serviceName=roaming&groupName=G&ip=10.9.5.1&port=80"),
        )
        .send()
        .await
        .expect("deregister");
    assert_eq!(resp.status(), 200);
    wait_listed(&cluster, &[0, 1, 2], "roaming", &[]).await;

    // The owner goes away: the node the beats reach takes the client over and keeps it alive
    // past the copies' expiry (2 s here).
    post_ok(cluster.node(0), "/v1/ns/instance", &register).await;
    wait_listed(&cluster, &[1, 2], "roaming", &["10.9.5.1:80"]).await;
    cluster.stop(0).await;
    keep_beating(
        &cluster,
        &[1],
        "roaming",
        "10.9.5.1",
        Duration::from_secs(4),
    )
    .await;
    wait_listed(&cluster, &[1, 2], "roaming", &["10.9.5.1:80"]).await;
}
