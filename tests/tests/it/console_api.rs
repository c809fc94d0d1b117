//! End-to-end over HTTP: the console's assets (CSP, ETag) and the endpoints the console added —
//! service detail with clusters, cluster settings, the listening query (long polls and gRPC
//! listens, from every node of a cluster), clone — including a user with rights on one
//! namespace trying them on another.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nacos_sdk::api::config::{ConfigChangeListener, ConfigResponse, ConfigServiceBuilder};
use nacos_sdk::api::props::ClientProps;
use serde_json::{Value, json};

use crate::auth::{auth_props, create_namespaces, grant_user, init_admin};
use crate::support::{Storage, TestCluster, TestServer};

async fn get_json(s: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = s.client.get(s.url(path));
    if let Some(t) = token {
        req = req.header("accessToken", t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn send(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    form: &[(&str, &str)],
    token: Option<&str>,
) -> (u16, String) {
    let mut req = s.client.request(method, s.url(path)).form(form);
    if let Some(t) = token {
        req = req.header("accessToken", t);
    }
    let resp = req.send().await.expect("request");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

async fn publish(s: &TestServer, tenant: &str, data_id: &str, content: &str, token: Option<&str>) {
    let (status, body) = send(
        s,
        reqwest::Method::POST,
        "/v1/cs/configs",
        &[
            ("dataId", data_id),
            ("group", "G"),
            ("tenant", tenant),
            ("content", content),
            ("type", "yaml"),
        ],
        token,
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "true"), "publish {data_id}");
}

#[tokio::test]
async fn console_is_served_with_csp_and_etags() {
    let s = TestServer::start().await;
    for path in ["/", "/index.html"] {
        let resp = s.client.get(s.url(path)).send().await.expect("index");
        assert_eq!(resp.status(), 200, "{path}");
        let csp = resp.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .to_string();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let etag = resp.headers()["etag"].to_str().expect("etag").to_string();
        let html = resp.text().await.expect("html");
        assert!(html.contains("ui/app.js"), "{html}");
        let again = s
            .client
            .get(s.url(path))
            .header("If-None-Match", &etag)
            .send()
            .await
            .expect("revalidate");
        assert_eq!(again.status(), 304, "{path} revalidated with its ETag");
    }
    let js = s.client.get(s.url("/ui/app.js")).send().await.expect("js");
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/javascript")
    );
    for bad in ["/ui/../Cargo.toml", "/ui/nope.js", "/ui/"] {
        let resp = s.client.get(s.url(bad)).send().await.expect("bad");
        assert_eq!(resp.status(), 404, "{bad}");
    }
    // `/nacos` without the slash leads to the console.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = no_redirect
        .get(format!("http://{}/nacos", s.addr))
        .send()
        .await
        .expect("bare context");
    assert_eq!(resp.headers()["location"], "/nacos/");
    let (_, state) = get_json(&s, "/v1/console/server/state", None).await;
    assert_eq!(state["console_ui_enabled"], "true");
    assert_eq!(state["auth_admin_request"], "false");
}

#[tokio::test]
async fn service_detail_shows_clusters_and_cluster_settings_are_saved() {
    let s = TestServer::start().await;
    let (status, body) = send(
        &s,
        reqwest::Method::POST,
        "/v1/ns/instance",
        &[
            ("serviceName", "orders"),
            ("groupName", "G"),
            ("ip", "10.1.0.1"),
            ("port", "8080"),
            ("clusterName", "east"),
            ("ephemeral", "false"),
        ],
        None,
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, detail) = get_json(
        &s,
        "/v1/ns/catalog/service?serviceName=orders&groupName=G",
        None,
    )
    .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["service"]["name"], "orders");
    assert_eq!(detail["service"]["groupName"], "G");
    assert_eq!(detail["clusters"][0]["name"], "east");
    assert_eq!(detail["clusters"][0]["healthChecker"]["type"], "TCP");

    let (status, body) = send(
        &s,
        reqwest::Method::PUT,
        "/v1/ns/cluster",
        &[
            ("serviceName", "orders"),
            ("groupName", "G"),
            ("clusterName", "east"),
            ("checkPort", "9090"),
            ("useInstancePort4Check", "false"),
            ("healthChecker", r#"{"type":"HTTP","path":"/health"}"#),
            ("metadata", "zone=a"),
        ],
        None,
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (_, detail) = get_json(
        &s,
        "/v1/ns/catalog/service?serviceName=orders&groupName=G",
        None,
    )
    .await;
    let cluster = &detail["clusters"][0];
    assert_eq!(cluster["healthChecker"]["type"], "HTTP");
    assert_eq!(cluster["healthChecker"]["path"], "/health");
    assert_eq!(cluster["defaultCheckPort"], 9090);
    assert_eq!(cluster["useIPPort4Check"], false);
    assert_eq!(cluster["metadata"]["zone"], "a");
    // The v1 service view reads the same settings.
    let (_, service) = get_json(&s, "/v1/ns/service?serviceName=orders&groupName=G", None).await;
    assert_eq!(service["clusters"][0]["healthChecker"]["type"], "HTTP");

    // Bad input is a 400 naming the parameter; an unknown service a 4xx.
    for (param, value) in [
        ("healthChecker", r#"{"type":"SMTP"}"#),
        ("healthChecker", "not json"),
        ("checkPort", "70000"),
        ("clusterName", "bad name"),
    ] {
        let mut form = vec![
            ("serviceName", "orders"),
            ("groupName", "G"),
            ("clusterName", "east"),
        ];
        form.retain(|(k, _)| *k != param);
        form.push((param, value));
        let (status, body) = send(&s, reqwest::Method::PUT, "/v1/ns/cluster", &form, None).await;
        assert_eq!(status, 400, "{param}={value}: {body}");
        assert!(body.contains(param), "{param}={value}: {body}");
    }
    let (status, _) = get_json(&s, "/v1/ns/catalog/service?serviceName=nope", None).await;
    assert_eq!(status, 404);

    // Hide empty services.
    let (status, _) = send(
        &s,
        reqwest::Method::POST,
        "/v1/ns/service",
        &[("serviceName", "empty"), ("groupName", "G")],
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, all) = get_json(&s, "/v1/ns/catalog/services?pageNo=1&pageSize=10", None).await;
    assert_eq!(all["count"], 2);
    let (_, shown) = get_json(
        &s,
        "/v1/ns/catalog/services?pageNo=1&pageSize=10&hasIpCount=true",
        None,
    )
    .await;
    assert_eq!(shown["count"], 1);
    assert_eq!(shown["serviceList"][0]["name"], "orders");
}

/// A v1 long poll on the missing config `dataId`/`G` (md5 "", so up to date and held) on
/// `base` (`http://ip:port/nacos`).
fn hold_long_poll(base: String, data_id: &str) -> tokio::task::JoinHandle<()> {
    let listening = format!("{data_id}\u{2}G\u{2}\u{1}");
    tokio::spawn(async move {
        let _ = reqwest::Client::new()
            .post(format!("{base}/v1/cs/configs/listener"))
            .header("Long-Pulling-Timeout", "30000")
            .form(&[("Listening-Configs", listening.as_str())])
            .send()
            .await;
    })
}

struct Ignore;
impl ConfigChangeListener for Ignore {
    fn notify(&self, _: ConfigResponse) {}
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn listening_query_lists_long_polls_and_grpc_listeners() {
    let s = TestServer::start().await;
    // A missing config: the poll's stale md5 differs from "" only when the config exists, so
    // publish first and poll with the right md5 to be held.
    publish(&s, "", "watched.yaml", "a: 1", None).await;
    let (_, all) = get_json(
        &s,
        "/v1/cs/configs?show=all&dataId=watched.yaml&group=G",
        None,
    )
    .await;
    let md5 = all["md5"].as_str().expect("md5").to_string();
    let listening = format!("watched.yaml\u{2}G\u{2}{md5}\u{1}");
    let base = format!("http://{}/nacos", s.addr);
    let poll = tokio::spawn(async move {
        let _ = reqwest::Client::new()
            .post(format!("{base}/v1/cs/configs/listener"))
            .header("Long-Pulling-Timeout", "30000")
            .form(&[("Listening-Configs", listening.as_str())])
            .send()
            .await;
    });
    // And an SDK (gRPC) listener.
    let cache = tempfile::tempdir().expect("cache");
    let sdk = ConfigServiceBuilder::new(
        ClientProps::new()
            .server_addr(s.server_addr())
            .remote_grpc_port(s.grpc_addr.port())
            .env_first(false)
            .cache_dir(cache.path())
            .app_name("console-it"),
    )
    .build()
    .await
    .expect("sdk");
    sdk.add_listener("watched.yaml".into(), "G".into(), Arc::new(Ignore))
        .await
        .expect("listen");

    let path = "/v1/cs/configs/listener?dataId=watched.yaml&group=G";
    let mut found = Value::Null;
    wait_for("both listeners listed", async || {
        found = get_json(&s, path, None).await.1;
        found["listeners"].as_array().is_some_and(|l| l.len() == 2)
    })
    .await;
    assert_eq!(found["collectStatus"], 200);
    assert_eq!(found["lisentersGroupkeyStatus"]["127.0.0.1"], md5);
    let transports: Vec<&str> = found["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .map(|l| l["transport"].as_str().expect("transport"))
        .collect();
    assert!(
        transports.contains(&"http") && transports.contains(&"grpc"),
        "{found}"
    );

    let (status, by_ip) = get_json(&s, "/v1/cs/listener?ip=127.0.0.1", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        by_ip["lisentersGroupkeyStatus"]["watched.yaml+G"], md5,
        "{by_ip}"
    );
    let (_, other_ip) = get_json(&s, "/v1/cs/listener?ip=10.9.9.9", None).await;
    assert_eq!(other_ip["listeners"], json!([]));
    let (status, body) = get_json(&s, "/v1/cs/listener", None).await;
    assert_eq!(status, 400, "{body}");

    // When the poll ends it is no longer listed.
    poll.abort();
    wait_for("the long poll to leave", async || {
        let l = get_json(&s, path, None).await.1;
        l["listeners"].as_array().is_some_and(|l| l.len() == 1)
    })
    .await;
}

#[tokio::test]
async fn listening_query_asks_every_node_of_a_cluster() {
    let cluster = TestCluster::start(Storage::Embedded, 3, &[]).await;
    crate::cluster::all_up(&cluster).await;
    let polled = cluster.node(1);
    let poll = hold_long_poll(format!("http://127.0.0.1:{}/nacos", polled.port), "spread");
    let url = cluster
        .node(0)
        .url("/v1/cs/configs/listener?dataId=spread&group=G");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let found = loop {
        let found: Value = client
            .get(&url)
            .send()
            .await
            .expect("query")
            .json()
            .await
            .expect("json");
        if found["listeners"].as_array().is_some_and(|l| !l.is_empty()) {
            break found;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{found}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        found["listeners"][0]["node"],
        polled.server_addr(),
        "{found}"
    );
    assert_eq!(found["unreachableNodes"], json!([]));
    poll.abort();
}

#[tokio::test]
async fn clone_copies_configs_into_another_namespace() {
    let s = TestServer::start().await;
    let admin = None;
    let (status, _) = send(
        &s,
        reqwest::Method::POST,
        "/v1/console/namespaces",
        &[("customNamespaceId", "dev"), ("namespaceName", "dev")],
        admin,
    )
    .await;
    assert_eq!(status, 200);
    publish(&s, "", "a.yaml", "a: 1", None).await;
    let (_, all) = get_json(&s, "/v1/cs/configs?show=all&dataId=a.yaml&group=G", None).await;
    let id = all["id"].as_str().expect("id").to_string();
    let clone = |policy: &'static str, body: Value| {
        let s = &s;
        async move {
            let resp = s
                .client
                .post(s.url(&format!(
                    "/v1/cs/configs?clone=true&tenant=dev&policy={policy}"
                )))
                .json(&body)
                .send()
                .await
                .expect("clone");
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        }
    };
    let entry = json!([{ "cfgId": id, "dataId": "a-copy.yaml", "group": "G2" }]);
    let (status, report) = clone("ABORT", entry.clone()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["code"], 200, "{report}");
    assert_eq!(report["data"]["succCount"], 1);
    let (_, copied) = get_json(
        &s,
        "/v1/cs/configs?show=all&dataId=a-copy.yaml&group=G2&tenant=dev",
        None,
    )
    .await;
    assert_eq!(copied["content"], "a: 1");
    assert_eq!(copied["type"], "yaml");
    // Again: the target exists now.
    let (_, report) = clone("ABORT", entry.clone()).await;
    assert_eq!(report["data"]["succCount"], 0, "{report}");
    assert_eq!(report["data"]["failData"][0]["dataId"], "a-copy.yaml");
    let (_, report) = clone("SKIP", entry).await;
    assert_eq!(report["data"]["skipCount"], 1, "{report}");
    // Nothing selected, an unknown id, a bad body.
    let (_, report) = clone("ABORT", json!([])).await;
    assert_eq!(report["code"], 100006, "{report}");
    let (status, _) = clone(
        "ABORT",
        json!([{ "cfgId": "999999", "dataId": "x", "group": "G" }]),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = clone(
        "BOGUS",
        json!([{ "cfgId": id, "dataId": "x", "group": "G" }]),
    )
    .await;
    assert_eq!(status, 400);
}

/// A user with read-write on namespace `mine` only tries the console's endpoints on `theirs`.
#[tokio::test]
async fn console_endpoints_keep_a_user_to_the_namespaces_granted() {
    let s = TestServer::start_with(&auth_props()).await;
    let admin = init_admin(&s).await;
    create_namespaces(&s, &admin, &["mine", "theirs"]).await;
    let user = grant_user(
        &s,
        &admin,
        ("mallory", "pw-mallory"),
        "mine-rw",
        ("mine:*:*", "rw"),
    )
    .await;
    let token = Some(user.as_str());
    publish(&s, "theirs", "secret.yaml", "password: x", Some(&admin)).await;
    publish(&s, "mine", "own.yaml", "a: 1", Some(&admin)).await;
    for ns in ["mine", "theirs"] {
        let (status, body) = send(
            &s,
            reqwest::Method::POST,
            "/v1/ns/instance",
            &[
                ("serviceName", "svc"),
                ("namespaceId", ns),
                ("ip", "10.2.0.1"),
                ("port", "80"),
                ("ephemeral", "false"),
            ],
            Some(&admin),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, all) = get_json(
        &s,
        "/v1/cs/configs?show=all&dataId=secret.yaml&group=G&tenant=theirs",
        Some(&admin),
    )
    .await;
    let secret_id = all["id"].as_str().expect("id").to_string();
    let (_, all) = get_json(
        &s,
        "/v1/cs/configs?show=all&dataId=own.yaml&group=G&tenant=mine",
        Some(&admin),
    )
    .await;
    let own_id = all["id"].as_str().expect("id").to_string();

    // Allowed on the granted namespace.
    for path in [
        "/v1/cs/configs/listener?dataId=own.yaml&group=G&tenant=mine",
        "/v1/cs/listener?ip=127.0.0.1&tenant=mine",
        "/v1/cs/metrics/current?ip=127.0.0.1&dataId=own.yaml&group=G&tenant=mine",
        "/v1/cs/metrics/cluster?ip=127.0.0.1&dataId=own.yaml&group=G&tenant=mine",
        "/v1/ns/catalog/service?serviceName=svc&namespaceId=mine",
    ] {
        let (status, body) = get_json(&s, path, token).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, body) = send(
        &s,
        reqwest::Method::PUT,
        "/v1/ns/cluster",
        &[
            ("serviceName", "svc"),
            ("namespaceId", "mine"),
            ("clusterName", "DEFAULT"),
        ],
        token,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Refused on the other namespace, and for every namespace at once.
    for path in [
        "/v1/cs/configs/listener?dataId=secret.yaml&group=G&tenant=theirs",
        "/v1/cs/listener?ip=127.0.0.1&tenant=theirs",
        "/v1/cs/listener?ip=127.0.0.1&all=true",
        "/v1/cs/metrics/current?ip=127.0.0.1&dataId=secret.yaml&group=G&tenant=theirs",
        // Without a config, a client answers with its whole cache, of every namespace.
        "/v1/cs/metrics/current?ip=127.0.0.1&tenant=mine",
        "/v1/cs/metrics/cluster?ip=127.0.0.1",
        "/v1/ns/catalog/service?serviceName=svc&namespaceId=theirs",
        "/v1/console/overview",
    ] {
        let (status, body) = get_json(&s, path, token).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    let (status, body) = send(
        &s,
        reqwest::Method::PUT,
        "/v1/ns/cluster",
        &[
            ("serviceName", "svc"),
            ("namespaceId", "theirs"),
            ("clusterName", "DEFAULT"),
        ],
        token,
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // Clone: reading their config into mine, or writing mine into theirs, is refused.
    let clone = |tenant: &'static str, body: Value| {
        let s = &s;
        let user = user.clone();
        async move {
            let resp = s
                .client
                .post(s.url(&format!(
                    "/v1/cs/configs?clone=true&tenant={tenant}&policy=OVERWRITE"
                )))
                .header("accessToken", user)
                .json(&body)
                .send()
                .await
                .expect("clone");
            (
                resp.status().as_u16(),
                resp.text().await.unwrap_or_default(),
            )
        }
    };
    let (status, body) = clone(
        "mine",
        json!([{ "cfgId": secret_id, "dataId": "stolen", "group": "G" }]),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = clone(
        "theirs",
        json!([{ "cfgId": own_id, "dataId": "planted", "group": "G" }]),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (_, stolen) = get_json(
        &s,
        "/v1/cs/configs?show=all&dataId=stolen&group=G&tenant=mine",
        Some(&admin),
    )
    .await;
    assert_eq!(stolen, Value::String(String::new()), "nothing was copied");
    // Their own clone within their namespace works.
    let (status, body) = clone(
        "mine",
        json!([{ "cfgId": own_id, "dataId": "own-copy", "group": "G" }]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
