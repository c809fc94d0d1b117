//! Server-side health checks of persistent instances against real listeners the tests own: a
//! TCP listener dropped and bound again, a small axum server whose answer the test switches,
//! a private MariaDB made read-only and killed. Which node checks is read from each node's
//! `/v1/ns/operator/metrics` (`tcpHealthCheckCount`). Checks run every 200 ms here
//! (`nacos.naming.persistent.health.check.intervalMs`); `checkTimes` stays Nacos's 3.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus, Uri};
use nacos_sdk::api::naming::{
    NamingChangeEvent, NamingEventListener, NamingService, NamingServiceBuilder,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::helpers::{self, eventually, until};
use crate::support::{Storage, TestCluster, TestServer, on_every_backend};

on_every_backend!(tcp_health_follows_the_listener_is_pushed_and_survives_restart);

const FAST_CHECKS: &[(&str, &str)] = &[
    ("nacos.naming.persistent.health.check.intervalMs", "200"),
    ("nacos.naming.push.pushTaskDelay", "50"),
];

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Helpers

/// A TCP listener that accepts (and drops) every connection until it is stopped.
struct Listener {
    port: u16,
    task: JoinHandle<()>,
}

impl Listener {
    async fn bind(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the instance's port");
        let port = listener.local_addr().expect("local addr").port();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
        Listener { port, task }
    }

    /// Close the port: the accept loop and the listener go.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A port nothing listens on (bound, then released).
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr").port()
}

async fn call(
    s_url: String,
    client: &reqwest::Client,
    method: Method,
    params: &[(&str, &str)],
) -> (StatusCode, String) {
    let req = client.request(method.clone(), s_url);
    let req = if method == Method::GET {
        req.query(params)
    } else {
        req.form(params)
    };
    let resp = req.send().await.expect("request");
    let status = resp.status();
    (status, resp.text().await.expect("body"))
}

async fn ok(s: &TestServer, method: Method, path: &str, params: &[(&str, &str)]) {
    let (status, body) = call(s.url(path), &s.client, method, params).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
}

async fn register_persistent(s: &TestServer, service: &str, ip: &str, port: u16) {
    let port = port.to_string();
    ok(
        s,
        Method::POST,
        "/v1/ns/instance",
        &[
            ("serviceName", service),
            ("groupName", "G"),
            ("ip", ip),
            ("port", &port),
            ("ephemeral", "false"),
        ],
    )
    .await;
}

/// A second instance, always healthy (its own cluster, TCP-checked against a listener that
/// stays up), so the service's protect threshold (0) is never reached and lists and pushes
/// show the checked instance's real health.
async fn anchor(
    s_url: impl Fn(&str) -> String,
    client: &reqwest::Client,
    service: &str,
) -> Listener {
    let listener = Listener::bind(0).await;
    let port = listener.port.to_string();
    let (status, body) = call(
        s_url("/v1/ns/instance"),
        client,
        Method::POST,
        &[
            ("serviceName", service),
            ("groupName", "G"),
            ("ip", "127.0.0.1"),
            ("port", &port),
            ("clusterName", "ANCHOR"),
            ("ephemeral", "false"),
        ],
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    listener
}

async fn set_checker(s: &TestServer, service: &str, extra: &[(&str, &str)]) {
    let mut params = vec![
        ("serviceName", service),
        ("groupName", "G"),
        ("clusterName", "DEFAULT"),
    ];
    params.extend_from_slice(extra);
    ok(s, Method::PUT, "/v1/ns/cluster", &params).await;
}

/// `ip:port -> healthy` of every instance of `G@@service`, over v1 `instance/list`.
async fn health_on(url: String, client: &reqwest::Client) -> HashMap<String, bool> {
    let (status, body) = call(url, client, Method::GET, &[("groupName", "G")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    v["hosts"]
        .as_array()
        .map(|hosts| {
            hosts
                .iter()
                .map(|h| {
                    (
                        format!("{}:{}", h["ip"].as_str().unwrap_or(""), h["port"]),
                        h["healthy"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn list_url(base: impl Fn(&str) -> String, service: &str) -> String {
    format!("{}?serviceName={service}", base("/v1/ns/instance/list"))
}

async fn healthy(s: &TestServer, service: &str, instance: &str) -> Option<bool> {
    health_on(list_url(|p| s.url(p), service), &s.client)
        .await
        .get(instance)
        .copied()
}

async fn wait_health(s: &TestServer, service: &str, instance: &str, want: bool, what: &str) {
    eventually(WAIT, what, || async {
        healthy(s, service, instance).await == Some(want)
    })
    .await;
}

/// Every push a subscribed `nacos-sdk` client received: `ip:port -> healthy` per event.
struct Pushes(Mutex<Vec<HashMap<String, bool>>>);

impl NamingEventListener for Pushes {
    fn event(&self, event: Arc<NamingChangeEvent>) {
        let seen = event
            .instances
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|i| (format!("{}:{}", i.ip, i.port), i.healthy))
            .collect();
        self.0.lock().expect("lock").push(seen);
    }
}

impl Pushes {
    fn last_health(&self, instance: &str) -> Option<bool> {
        self.0
            .lock()
            .expect("lock")
            .last()
            .and_then(|e| e.get(instance).copied())
    }
}

async fn subscriber(
    s: &TestServer,
    cache: &tempfile::TempDir,
    service: &str,
) -> (NamingService, Arc<Pushes>) {
    let props = helpers::sdk_props(s.server_addr(), cache, "health-it")
        .remote_grpc_port(s.grpc_addr.port())
        .naming_push_empty_protection(false);
    let naming = NamingServiceBuilder::new(props)
        .build()
        .await
        .expect("naming client builds");
    let pushes = Arc::new(Pushes(Mutex::new(Vec::new())));
    naming
        .subscribe(service.into(), Some("G".into()), Vec::new(), pushes.clone())
        .await
        .expect("subscribe");
    (naming, pushes)
}

// ---------------------------------------------------------------------------------------------
// TCP (every backend)

async fn tcp_health_follows_the_listener_is_pushed_and_survives_restart(storage: Storage) {
    let s = TestServer::start_on(storage, FAST_CHECKS).await;
    let listener = Listener::bind(0).await;
    let port = listener.port;
    let instance = format!("127.0.0.1:{port}");
    let cache = tempfile::tempdir().expect("cache");
    let (_client, pushes) = subscriber(&s, &cache, "tcp-svc").await;

    // No cluster settings: Nacos's default TCP checker.
    register_persistent(&s, "tcp-svc", "127.0.0.1", port).await;
    let _anchor = anchor(|p| s.url(p), &s.client, "tcp-svc").await;
    let app = s.app();
    until(WAIT, "TCP checks to run", || {
        app.naming.health_check_counts().tcp >= 3
    })
    .await;
    assert_eq!(healthy(&s, "tcp-svc", &instance).await, Some(true));

    // The process is gone: a refused connection makes it unhealthy at once.
    listener.stop().await;
    wait_health(
        &s,
        "tcp-svc",
        &instance,
        false,
        "unhealthy after the listener closed",
    )
    .await;
    until(WAIT, "the change pushed to the SDK subscriber", || {
        pushes.last_health(&instance) == Some(false)
    })
    .await;

    // Back on the same port: healthy after checkTimes passes, pushed too.
    let listener = Listener::bind(port).await;
    wait_health(
        &s,
        "tcp-svc",
        &instance,
        true,
        "healthy again after re-binding",
    )
    .await;
    until(WAIT, "the recovery pushed to the SDK subscriber", || {
        pushes.last_health(&instance) == Some(true)
    })
    .await;

    // Down again; then the switch stops every check: bound again, it stays unhealthy.
    listener.stop().await;
    wait_health(&s, "tcp-svc", &instance, false, "unhealthy again").await;
    ok(
        &s,
        Method::PUT,
        "/v1/ns/operator/switches",
        &[("entry", "healthCheckEnabled"), ("value", "false")],
    )
    .await;
    let listener = Listener::bind(port).await;
    let before = app.naming.health_check_counts().tcp;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(healthy(&s, "tcp-svc", &instance).await, Some(false));
    assert!(
        app.naming.health_check_counts().tcp <= before + 1,
        "no checks while healthCheckEnabled=false (one may have been in flight)"
    );
    drop(app);

    // The stored health survives a restart (read before any check could pass three times),
    // and checks, on again by default, bring it back.
    let s = s.restart().await;
    assert_eq!(
        healthy(&s, "tcp-svc", &instance).await,
        Some(false),
        "the stored health after restart"
    );
    wait_health(&s, "tcp-svc", &instance, true, "healthy after restart").await;
    listener.stop().await;
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// A request the HTTP server saw: path, `X-Probe`, `X-Other`.
type Seen = (String, Option<String>, Option<String>);

#[derive(Default)]
struct Probed {
    status: AtomicU16,
    seen: Mutex<Vec<Seen>>,
}

async fn probe_handler(
    State(state): State<Arc<Probed>>,
    uri: Uri,
    headers: HeaderMap,
) -> AxumStatus {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    state.seen.lock().expect("lock").push((
        uri.path().to_string(),
        header("x-probe"),
        header("x-other"),
    ));
    AxumStatus::from_u16(state.status.load(Ordering::Relaxed))
        .unwrap_or(AxumStatus::INTERNAL_SERVER_ERROR)
}

#[tokio::test]
async fn http_check_honours_path_headers_port_and_status() {
    let s = TestServer::start_with(FAST_CHECKS).await;
    let state = Arc::new(Probed::default());
    state.status.store(200, Ordering::Relaxed);
    let app = axum::Router::new()
        .fallback(probe_handler)
        .with_state(Arc::clone(&state));
    let web = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let web_addr: SocketAddr = web.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let _ = axum::serve(web, app).await;
    });

    // The instance's own port is closed: only the cluster's checkPort answers.
    let instance_port = closed_port().await;
    let instance = format!("127.0.0.1:{instance_port}");
    register_persistent(&s, "http-svc", "127.0.0.1", instance_port).await;
    let _anchor = anchor(|p| s.url(p), &s.client, "http-svc").await;
    let check_port = web_addr.port().to_string();
    let checker = json!({
        "type": "HTTP",
        "path": "/health/probe",
        "headers": "X-Probe:secret|malformed|X-Other: 1",
        "expectedResponseCode": 200,
    })
    .to_string();
    set_checker(
        &s,
        "http-svc",
        &[
            ("healthChecker", &checker),
            ("checkPort", &check_port),
            ("useInstancePort4Check", "false"),
        ],
    )
    .await;
    // The TCP check before the cluster update may already have failed it: it must be healthy
    // through HTTP.
    wait_health(&s, "http-svc", &instance, true, "healthy through HTTP 200").await;
    until(WAIT, "HTTP checks to reach the server", || {
        state.seen.lock().expect("lock").len() >= 3
    })
    .await;
    for (path, probe, other) in state.seen.lock().expect("lock").iter() {
        assert_eq!(path, "/health/probe");
        assert_eq!(probe.as_deref(), Some("secret"));
        assert_eq!(other.as_deref(), Some("1"));
    }
    let catalog: Value = serde_json::from_str(
        &call(
            s.url("/v1/ns/catalog/service"),
            &s.client,
            Method::GET,
            &[("serviceName", "http-svc"), ("groupName", "G")],
        )
        .await
        .1,
    )
    .expect("catalog json");
    let default = catalog["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "DEFAULT"))
        .cloned()
        .expect("the DEFAULT cluster");
    assert_eq!(default["healthChecker"]["type"], "HTTP");
    assert_eq!(default["healthChecker"]["path"], "/health/probe");

    // 500: unhealthy at once (Nacos fails any status other than 200, 302 and 503 at once).
    state.status.store(500, Ordering::Relaxed);
    wait_health(&s, "http-svc", &instance, false, "unhealthy on 500").await;
    state.status.store(200, Ordering::Relaxed);
    wait_health(&s, "http-svc", &instance, true, "healthy again on 200").await;
    // 503 (busy) counts towards checkTimes before it turns the instance unhealthy.
    state.status.store(503, Ordering::Relaxed);
    wait_health(
        &s,
        "http-svc",
        &instance,
        false,
        "unhealthy after three 503s",
    )
    .await;
    server.abort();
}

// ---------------------------------------------------------------------------------------------
// MYSQL

#[tokio::test]
async fn mysql_check_fails_a_read_only_or_dead_server() {
    if nacos_tests::mariadb::available().is_none() {
        eprintln!(
            "SKIPPED: mariadb not installed (health_checks::mysql_check_fails_a_read_only_or_dead_server)"
        );
        return;
    }
    let db = tokio::task::spawn_blocking(|| {
        nacos_tests::mariadb::MariaDb::start(&nacos_tests::mariadb::ServerOptions::default())
    })
    .await
    .expect("start task")
    .expect("a private MariaDB starts");
    let s = TestServer::start_with(FAST_CHECKS).await;
    let instance = format!("127.0.0.1:{}", db.port());
    register_persistent(&s, "db-svc", "127.0.0.1", db.port()).await;
    let _anchor = anchor(|p| s.url(p), &s.client, "db-svc").await;
    let checker = json!({
        "type": "MYSQL",
        "user": nacos_tests::mariadb::USER,
        "pwd": nacos_tests::mariadb::PASSWORD,
    })
    .to_string();
    set_checker(&s, "db-svc", &[("healthChecker", &checker)]).await;
    let app = s.app();
    until(WAIT, "MySQL checks to run", || {
        app.naming.health_check_counts().mysql >= 3
    })
    .await;
    assert_eq!(healthy(&s, "db-svc", &instance).await, Some(true));

    // A replica (read_only) fails Nacos's default primary check.
    db.sql(None, "SET GLOBAL read_only = ON")
        .expect("read only");
    wait_health(&s, "db-svc", &instance, false, "unhealthy while read-only").await;
    db.sql(None, "SET GLOBAL read_only = OFF")
        .expect("writable");
    wait_health(&s, "db-svc", &instance, true, "healthy when writable").await;

    // A wrong password is a SQL error: unhealthy at once.
    let wrong =
        json!({"type": "MYSQL", "user": nacos_tests::mariadb::USER, "pwd": "nope"}).to_string();
    set_checker(&s, "db-svc", &[("healthChecker", &wrong)]).await;
    wait_health(
        &s,
        "db-svc",
        &instance,
        false,
        "unhealthy with a wrong password",
    )
    .await;
    set_checker(&s, "db-svc", &[("healthChecker", &checker)]).await;
    wait_health(
        &s,
        "db-svc",
        &instance,
        true,
        "healthy with the right password",
    )
    .await;

    // Killed.
    let killer = tokio::task::spawn_blocking(move || {
        db.kill().expect("kill mariadb");
        db
    });
    let db = killer.await.expect("kill task");
    wait_health(
        &s,
        "db-svc",
        &instance,
        false,
        "unhealthy when the server is dead",
    )
    .await;
    drop(db);
}

// ---------------------------------------------------------------------------------------------
// NONE and manual health

async fn set_health(s: &TestServer, service: &str, port: u16, value: &str) -> (StatusCode, String) {
    let port = port.to_string();
    call(
        s.url("/v1/ns/health"),
        &s.client,
        Method::PUT,
        &[
            ("serviceName", service),
            ("groupName", "G"),
            ("ip", "127.0.0.1"),
            ("port", &port),
            ("healthy", value),
        ],
    )
    .await
}

#[tokio::test]
async fn none_never_checks_and_alone_takes_manual_health() {
    let s = TestServer::start_with(FAST_CHECKS).await;
    let port = closed_port().await;
    let instance = format!("127.0.0.1:{port}");
    register_persistent(&s, "none-svc", "127.0.0.1", port).await;
    let _anchor = anchor(|p| s.url(p), &s.client, "none-svc").await;

    // Checked (default TCP): a manual update is refused, as Nacos refuses it.
    let (status, body) = set_health(&s, "none-svc", port, "false").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("health check is still working"), "{body}");
    wait_health(&s, "none-svc", &instance, false, "TCP fails a closed port").await;

    // NONE: manual updates are taken and nothing checks them (the anchor's cluster too, so
    // that no check of this server runs at all).
    set_checker(&s, "none-svc", &[("healthChecker", r#"{"type":"NONE"}"#)]).await;
    ok(
        &s,
        Method::PUT,
        "/v1/ns/cluster",
        &[
            ("serviceName", "none-svc"),
            ("groupName", "G"),
            ("clusterName", "ANCHOR"),
            ("healthChecker", r#"{"type":"NONE"}"#),
        ],
    )
    .await;
    let (status, body) = set_health(&s, "none-svc", port, "true").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    let app = s.app();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = app.naming.health_check_counts();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(healthy(&s, "none-svc", &instance).await, Some(true));
    assert_eq!(
        app.naming.health_check_counts(),
        before,
        "NONE runs no checks"
    );
    let (status, _) = set_health(&s, "none-svc", port, "false").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(healthy(&s, "none-svc", &instance).await, Some(false));

    // Back to TCP: refused again.
    set_checker(&s, "none-svc", &[("healthChecker", r#"{"type":"TCP"}"#)]).await;
    let (status, _) = set_health(&s, "none-svc", port, "true").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn disabled_instances_are_checked_too() {
    let s = TestServer::start_with(FAST_CHECKS).await;
    let listener = Listener::bind(0).await;
    let port = listener.port;
    register_persistent(&s, "off-svc", "127.0.0.1", port).await;
    let port_text = port.to_string();
    let target = [
        ("serviceName", "off-svc"),
        ("groupName", "G"),
        ("ip", "127.0.0.1"),
        ("port", port_text.as_str()),
    ];
    let mut disable = target.to_vec();
    disable.push(("enabled", "false"));
    ok(&s, Method::PATCH, "/v1/ns/instance", &disable).await;
    let instance = format!("127.0.0.1:{port}");
    assert_eq!(
        healthy(&s, "off-svc", &instance).await,
        None,
        "disabled: not listed"
    );
    // As Nacos 2.x: disabled instances are hidden from subscribers but still checked.
    listener.stop().await;
    eventually(WAIT, "the disabled instance turns unhealthy", || async {
        let (status, body) = call(s.url("/v1/ns/instance"), &s.client, Method::GET, &target).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: Value = serde_json::from_str(&body).expect("json");
        v["healthy"] == false
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Checker JSON

#[tokio::test]
async fn checker_defaults_and_bad_checker_json() {
    let s = TestServer::start_with(FAST_CHECKS).await;
    let (status, body) = call(s.url("/v1/ns/health/checkers"), &s.client, Method::GET, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let checkers: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        checkers,
        json!({
            "TCP": {"type": "TCP"},
            "HTTP": {"type": "HTTP", "path": "", "headers": "", "expectedResponseCode": 200},
            "MYSQL": {"type": "MYSQL", "user": null, "pwd": null, "cmd": null},
            "NONE": {"type": "NONE"},
        })
    );

    register_persistent(&s, "json-svc", "127.0.0.1", closed_port().await).await;
    set_checker(
        &s,
        "json-svc",
        &[("healthChecker", r#"{"type":"NONE"}"#), ("metadata", "k=v")],
    )
    .await;
    let catalog = || async {
        let (_, body) = call(
            s.url("/v1/ns/catalog/service"),
            &s.client,
            Method::GET,
            &[("serviceName", "json-svc"), ("groupName", "G")],
        )
        .await;
        serde_json::from_str::<Value>(&body).expect("catalog json")["clusters"].clone()
    };
    let before = catalog().await;
    assert_eq!(before[0]["healthChecker"], json!({"type": "NONE"}));
    for bad in [
        "TCP",
        "{not json",
        "[]",
        r#"{"path":"/x"}"#,
        r#"{"type":"PING"}"#,
        r#"{"type":"tcp"}"#,
        r#"{"type":"HTTP","expectedResponseCode":"ok"}"#,
        r#"{"type":"HTTP","expectedResponseCode":42}"#,
        r#"{"type":"HTTP","headers":"Bad Name:1"}"#,
        r#"{"type":"MYSQL","user":7}"#,
    ] {
        let (status, body) = call(
            s.url("/v1/ns/cluster"),
            &s.client,
            Method::PUT,
            &[
                ("serviceName", "json-svc"),
                ("groupName", "G"),
                ("clusterName", "DEFAULT"),
                ("healthChecker", bad),
                ("metadata", "k=changed"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body.contains("healthChecker"), "{bad}: {body}");
    }
    assert_eq!(catalog().await, before, "a refused update changes nothing");

    // The counts are in v1's metrics only (Nacos's v2 view has no such fields).
    let metrics = |path: &'static str| {
        let s = &s;
        async move {
            let (_, body) = call(
                s.url(path),
                &s.client,
                Method::GET,
                &[("onlyStatus", "false")],
            )
            .await;
            serde_json::from_str::<Value>(&body).expect("metrics json")
        }
    };
    let v1 = metrics("/v1/ns/operator/metrics").await;
    assert!(
        v1["tcpHealthCheckCount"].is_u64() && v1["mysqlHealthCheckCount"].is_u64(),
        "{v1}"
    );
    let v2 = metrics("/v2/ns/operator/metrics").await;
    assert!(v2["data"].get("tcpHealthCheckCount").is_none(), "{v2}");
    assert!(v2["data"]["serviceCount"].is_u64(), "{v2}");
}

// ---------------------------------------------------------------------------------------------
// Cluster

fn node_list_url(c: &TestCluster, i: usize, service: &str) -> String {
    list_url(|p| c.node(i).url(p), service)
}

#[tokio::test]
async fn one_node_checks_a_service_and_another_takes_over() {
    let mut c = TestCluster::start(Storage::Embedded, 3, FAST_CHECKS).await;
    let client = reqwest::Client::new();
    until(
        Duration::from_secs(20),
        "every node sees three UP members",
        || all_up(&c),
    )
    .await;
    let listener = Listener::bind(0).await;
    let listener_port = listener.port;
    let instance = format!("127.0.0.1:{}", listener.port);
    let port = listener.port.to_string();
    let (status, body) = call(
        c.node(0).url("/v1/ns/instance"),
        &client,
        Method::POST,
        &[
            ("serviceName", "ha-svc"),
            ("groupName", "G"),
            ("ip", "127.0.0.1"),
            ("port", &port),
            ("ephemeral", "false"),
        ],
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    let _anchor = anchor(|p| c.node(0).url(p), &client, "ha-svc").await;
    for i in 0..3 {
        eventually(WAIT, "the instance on every node", || async {
            health_on(node_list_url(&c, i, "ha-svc"), &client)
                .await
                .get(&instance)
                == Some(&true)
        })
        .await;
    }

    // Exactly one node runs the checks of the service.
    let start = tcp_checks(&c, &client).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let end = tcp_checks(&c, &client).await;
    let checking: Vec<usize> = (0..3).filter(|&i| end[i] > start[i]).collect();
    assert_eq!(checking.len(), 1, "one node checks: {start:?} -> {end:?}");
    let responsible = checking[0];

    // The responsible node goes; another takes over and the change reaches the survivors.
    c.stop(responsible).await;
    let survivors: Vec<usize> = (0..3).filter(|&i| i != responsible).collect();
    listener.stop().await;
    for &i in &survivors {
        eventually(
            Duration::from_secs(15),
            "unhealthy on every survivor",
            || async {
                health_on(node_list_url(&c, i, "ha-svc"), &client)
                    .await
                    .get(&instance)
                    == Some(&false)
            },
        )
        .await;
    }
    let start = tcp_checks(&c, &client).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let end = tcp_checks(&c, &client).await;
    let checking: Vec<usize> = survivors
        .iter()
        .copied()
        .filter(|&i| end[i] > start[i])
        .collect();
    assert_eq!(
        checking.len(),
        1,
        "one survivor checks: {start:?} -> {end:?}"
    );

    // The node comes back: once every node sees it UP, one node checks again (the hash gives
    // the service back to it), and a change it makes reaches every node.
    c.restart(responsible, false).await;
    until(
        Duration::from_secs(20),
        "every node sees three UP members again",
        || all_up(&c),
    )
    .await;
    let start = tcp_checks(&c, &client).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let end = tcp_checks(&c, &client).await;
    let checking: Vec<usize> = (0..3).filter(|&i| end[i] > start[i]).collect();
    assert_eq!(
        checking,
        [responsible],
        "the returning node checks again: {start:?} -> {end:?}"
    );
    let listener = Listener::bind(listener_port).await;
    for i in 0..3 {
        eventually(WAIT, "healthy again on every node", || async {
            health_on(node_list_url(&c, i, "ha-svc"), &client)
                .await
                .get(&instance)
                == Some(&true)
        })
        .await;
    }
    listener.stop().await;
}

/// The TCP checks each node ran, as its `/v1/ns/operator/metrics` reports them (0 for a node
/// that is down).
async fn tcp_checks(c: &TestCluster, client: &reqwest::Client) -> Vec<u64> {
    let mut out = Vec::new();
    for node in &c.nodes {
        let Some(node) = node else {
            out.push(0);
            continue;
        };
        let (status, body) = call(
            node.url("/v1/ns/operator/metrics"),
            client,
            Method::GET,
            &[("onlyStatus", "false")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let m: Value = serde_json::from_str(&body).expect("metrics json");
        out.push(
            m["tcpHealthCheckCount"]
                .as_u64()
                .expect("tcpHealthCheckCount"),
        );
    }
    out
}

fn all_up(c: &TestCluster) -> bool {
    c.running().len() == 3
        && c.running().iter().all(|&i| {
            c.node(i).app().cluster.as_ref().is_some_and(|cl| {
                cl.members
                    .all()
                    .iter()
                    .all(|m| m.state == nacos_server::cluster::members::NodeState::Up)
            })
        })
}
