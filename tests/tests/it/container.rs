//! Container-style configuration end to end: the official image's environment variables
//! configuring a real server (through the same `EnvOverlay::settings` the binary uses, fed
//! pairs instead of the process environment), and clusters whose members are host names.

use std::collections::HashMap;
use std::time::Duration;

use nacos_server::cli::Cli;
use nacos_server::foundation::env;
use serde_json::Value;

use crate::helpers::eventually;
use crate::support::{Storage, TestCluster, TestNode, bind_pair};

/// A JWT secret that passes the plugin's checks (32 bytes, not a public sample).
const SECRET: &str = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5YWI=";

#[tokio::test]
async fn the_images_environment_variables_configure_a_server() {
    let home = tempfile::tempdir().expect("home");
    std::fs::create_dir_all(home.path().join("conf")).expect("conf");
    std::fs::write(
        home.path().join("conf/application.properties"),
        "server.servlet.contextPath=/from-file\nnacos.core.auth.enabled=false\nmaxContent=1000\n",
    )
    .expect("application.properties");
    let listeners = bind_pair(1000).await;
    let port = listeners
        .http
        .local_addr()
        .expect("addr")
        .port()
        .to_string();
    let cli = Cli::from_args([
        "nacos-server".to_string(),
        format!("-Dnacos.home={}", home.path().display()),
        "-Dnacos.core.auth.plugin.nacos.token.expire.seconds=900".to_string(),
    ])
    .expect("command line");
    let vars = [
        ("MODE", "standalone"),
        ("NACOS_APPLICATION_PORT", port.as_str()),
        ("SERVER_SERVLET_CONTEXTPATH", "/registry"),
        ("NACOS_AUTH_ENABLE", "true"),
        ("NACOS_AUTH_TOKEN", SECRET),
        ("NACOS_AUTH_TOKEN_EXPIRE_SECONDS", "600"),
        ("NACOS_AUTH_IDENTITY_KEY", "node-key"),
        ("NACOS_AUTH_IDENTITY_VALUE", "node-value"),
        ("JVM_XMS", "1g"),
        ("JVM_XMX", "1g"),
        ("TOMCAT_ACCESSLOG_ENABLED", "false"),
    ];
    let overlay = env::overlay(vars).expect("valid variables");
    assert_eq!(
        overlay.ignored,
        ["JVM_XMS", "JVM_XMX", "TOMCAT_ACCESSLOG_ENABLED"]
    );
    let settings = overlay.settings(&cli).expect("settings");
    assert!(settings.is_standalone(), "MODE=standalone without -m");
    assert_eq!(settings.port.to_string(), port);
    assert_eq!(
        settings.context_path, "/registry",
        "environment over the file"
    );
    assert_eq!(
        settings.max_content, 1000,
        "the file where the environment is silent"
    );
    assert_eq!(
        settings
            .properties
            .get("nacos.core.auth.plugin.nacos.token.expire.seconds"),
        Some("900"),
        "-D over the environment"
    );

    let app = nacos_server::App::open(settings).await.expect("opens");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(nacos_server::run(listeners, app, async move {
        let _ = rx.await;
    }));
    let base = format!("http://127.0.0.1:{port}/registry");
    let client = reqwest::Client::new();
    let status = |path: &'static str| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move { client.get(url).send().await.expect("GET").status().as_u16() }
    };
    assert_eq!(status("/v1/console/health/readiness").await, 200);
    assert_eq!(
        status("/v1/cs/configs?dataId=a&group=G").await,
        403,
        "NACOS_AUTH_ENABLE=true: anonymous reads are refused"
    );
    let with_identity = client
        .get(format!("{base}/v1/cs/configs?dataId=a&group=G"))
        .header("node-key", "node-value")
        .send()
        .await
        .expect("GET");
    assert_eq!(
        with_identity.status().as_u16(),
        404,
        "the identity from the environment is a server's"
    );
    let _ = tx.send(());
    let _ = task.await;
}

#[tokio::test]
async fn a_bad_variable_is_named_at_start_and_secrets_stay_out_of_the_message() {
    let home = tempfile::tempdir().expect("home");
    let cli = Cli::from_args([
        "nacos-server".to_string(),
        "-m".to_string(),
        "standalone".to_string(),
        format!("-Dnacos.home={}", home.path().display()),
    ])
    .expect("command line");

    let err = env::overlay([("NACOS_AUTH_ENABLE", "yes")]).expect_err("not a boolean");
    assert!(err.to_string().contains("NACOS_AUTH_ENABLE"), "{err}");

    // A value only a later check refuses (a too-short JWT secret): the start error names the
    // variable that set the property, and never shows the secret.
    let overlay = env::overlay([
        ("NACOS_AUTH_ENABLE", "true"),
        ("NACOS_AUTH_TOKEN", "c2hvcnQtc2VjcmV0"),
        ("NACOS_AUTH_IDENTITY_KEY", "node-key"),
        ("NACOS_AUTH_IDENTITY_VALUE", "node-value"),
    ])
    .expect("well-formed");
    let settings = overlay.settings(&cli).expect("settings");
    let err = match nacos_server::App::open(settings).await {
        Ok(_) => panic!("a short secret must be refused"),
        Err(e) => overlay.blame(e, &cli).to_string(),
    };
    assert!(
        err.contains("environment variable NACOS_AUTH_TOKEN"),
        "{err}"
    );
    assert!(!err.contains("c2hvcnQtc2VjcmV0"), "{err}");
}

/// Member address → state, as `node` lists them.
async fn member_states(node: &TestNode) -> HashMap<String, String> {
    let body: Value = reqwest::get(node.url("/v1/core/cluster/nodes"))
        .await
        .expect("GET")
        .json()
        .await
        .unwrap_or(Value::Null);
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

async fn publish(node: &TestNode, data_id: &str, content: &str) {
    let resp = reqwest::Client::new()
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
    let resp = reqwest::get(node.url(&format!("/v1/cs/configs?dataId={data_id}&group=G")))
        .await
        .expect("get");
    if resp.status() == 200 {
        resp.text().await.ok()
    } else {
        None
    }
}

/// Wait until every running node sees `expected` (address → state) exactly.
async fn wait_states(cluster: &TestCluster, expected: &HashMap<String, String>) {
    for i in cluster.running() {
        let node = cluster.node(i);
        let what = format!("node {i} listing {expected:?}");
        eventually(Duration::from_secs(15), &what, || async {
            member_states(node).await == *expected
        })
        .await;
    }
}

#[tokio::test]
async fn an_embedded_cluster_named_by_host_names_replicates() {
    // Every member is `localhost:<port>`: reports, Raft and distro connect through the
    // resolver, and the peer ports admit callers by what the names resolve to (no identity).
    let cluster = TestCluster::start_named(Storage::Embedded, 3, "localhost", &[], &[]).await;
    let expected: HashMap<String, String> = cluster
        .ports
        .iter()
        .map(|p| (format!("localhost:{p}"), "UP".to_string()))
        .collect();
    wait_states(&cluster, &expected).await;
    eventually(
        Duration::from_secs(10),
        "a Raft leader named by host",
        || async {
            let leader = cluster
                .node(0)
                .app()
                .raft
                .as_ref()
                .and_then(|r| r.status().leader);
            leader.is_some_and(|l| l.starts_with("localhost:"))
        },
    )
    .await;

    publish(cluster.node(0), "named.cfg", "v1").await;
    for i in 0..3 {
        eventually(
            Duration::from_secs(5),
            "replicated to every node",
            || async { read(cluster.node(i), "named.cfg").await.as_deref() == Some("v1") },
        )
        .await;
    }
    // An ephemeral instance (distro) registered on node 1 is listed on node 2.
    let resp = reqwest::Client::new()
        .post(cluster.node(1).url("/v1/ns/instance"))
        .form(&[
            ("serviceName", "named-svc"),
            ("groupName", "G"),
            ("ip", "10.1.1.1"),
            ("port", "80"),
        ])
        .send()
        .await
        .expect("register");
    assert_eq!(resp.status(), 200);
    eventually(Duration::from_secs(5), "the instance on node 2", || async {
        let list: Value = reqwest::get(
            cluster
                .node(2)
                .url("/v1/ns/instance/list?serviceName=named-svc&groupName=G"),
        )
        .await
        .expect("list")
        .json()
        .await
        .unwrap_or(Value::Null);
        list["hosts"].as_array().is_some_and(|h| h.len() == 1)
    })
    .await;
}

#[tokio::test]
async fn a_member_whose_name_does_not_resolve_is_down_not_a_start_failure() {
    // Two nodes and a third member whose pod is not scheduled yet (its name does not
    // resolve; `.invalid` never does): the two start, form a Raft quorum of the three, serve,
    // and list the third DOWN.
    let ghost = "nacos-2.nacos-headless.invalid:8848";
    let cluster = TestCluster::start_named(Storage::Embedded, 2, "127.0.0.1", &[ghost], &[]).await;
    let mut expected: HashMap<String, String> = cluster
        .ports
        .iter()
        .map(|p| (format!("127.0.0.1:{p}"), "UP".to_string()))
        .collect();
    expected.insert(ghost.to_string(), "DOWN".to_string());
    wait_states(&cluster, &expected).await;
    publish(cluster.node(1), "ghost.cfg", "v1").await;
    eventually(Duration::from_secs(5), "replicated to node 0", || async {
        read(cluster.node(0), "ghost.cfg").await.as_deref() == Some("v1")
    })
    .await;
}
