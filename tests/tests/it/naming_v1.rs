//! End-to-end: the v1 naming OpenAPI (`/v1/ns`) over real HTTP against an in-process server,
//! plus UDP push to a v1 subscriber. The scenarios listed in `on_every_backend!` run once per
//! storage backend (`naming_v1::{embedded,mysql,postgres}::<scenario>`); beats, expiry and UDP
//! push live in memory and run on embedded storage only.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::net::UdpSocket;

use crate::support::{Storage, TestServer, on_every_backend};

on_every_backend!(
    seed_commands_register_and_list,
    register_update_patch_detail_deregister,
    healthy_only_and_cluster_filters,
    protect_threshold_applies_with_stored_settings,
    service_crud_list_and_persistent_quirk,
    persistent_data_survives_restart,
    namespaces_are_isolated,
    bad_input_is_400_naming_the_parameter_and_changes_nothing,
    operator_and_health_endpoints,
    metadata_batch_on_ephemeral_and_persistent_instances,
    statuses_names_and_catalog,
);

/// One request; GET sends the parameters in the query, everything else as a form body.
async fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    params: &[(&str, &str)],
) -> (StatusCode, String) {
    let resp = crate::helpers::send(s, method, path, params).await;
    let status = resp.status();
    (status, resp.text().await.expect("response body"))
}

async fn ok(s: &TestServer, method: Method, path: &str, params: &[(&str, &str)]) {
    let (status, body) = call(s, method.clone(), path, params).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "ok"),
        "{method} {path} {params:?}"
    );
}

async fn json(s: &TestServer, method: Method, path: &str, params: &[(&str, &str)]) -> Value {
    let (status, body) = call(s, method.clone(), path, params).await;
    assert_eq!(status, StatusCode::OK, "{method} {path} {params:?}: {body}");
    serde_json::from_str(&body).expect("JSON body")
}

async fn register(s: &TestServer, params: &[(&str, &str)]) {
    ok(s, Method::POST, "/v1/ns/instance", params).await;
}

async fn list(s: &TestServer, params: &[(&str, &str)]) -> Value {
    json(s, Method::GET, "/v1/ns/instance/list", params).await
}

fn hosts(list: &Value) -> Vec<Value> {
    list["hosts"].as_array().expect("hosts array").clone()
}

fn ips(list: &Value) -> Vec<String> {
    let mut ips: Vec<String> = hosts(list)
        .iter()
        .map(|h| h["ip"].as_str().expect("ip").to_string())
        .collect();
    ips.sort();
    ips
}

/// Assert a 400 whose message names `param`.
async fn bad_request(
    s: &TestServer,
    method: Method,
    path: &str,
    params: &[(&str, &str)],
    param: &str,
) {
    let (status, body) = call(s, method.clone(), path, params).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{method} {path} {params:?}: {body}"
    );
    assert!(
        body.contains(param),
        "400 for {params:?} should name '{param}': {body}"
    );
}

async fn beat(s: &TestServer, params: &[(&str, &str)]) -> Value {
    json(s, Method::PUT, "/v1/ns/instance/beat", params).await
}

/// Poll `check` until it holds or `within` passes.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn seed_commands_register_and_list(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    // curl -X POST '.../nacos/v1/ns/instance?serviceName=nacos.naming.serviceName&ip=20.18.7.10&port=8080'
    let resp = s
        .client
        .post(s.url("/v1/ns/instance?serviceName=nacos.naming.serviceName&ip=20.18.7.10&port=8080"))
        .send()
        .await
        .expect("register");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.expect("body"), "ok");

    // curl -X GET '.../nacos/v1/ns/instance/list?serviceName=nacos.naming.serviceName'
    let resp = s
        .client
        .get(s.url("/v1/ns/instance/list?serviceName=nacos.naming.serviceName"))
        .send()
        .await
        .expect("list");
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.expect("json");
    let last_ref = v["lastRefTime"].as_i64().expect("lastRefTime");
    assert!(
        last_ref > 1_600_000_000_000,
        "lastRefTime is epoch millis: {last_ref}"
    );
    let expected = serde_json::json!({
        "name": "DEFAULT_GROUP@@nacos.naming.serviceName",
        "groupName": "DEFAULT_GROUP",
        "clusters": "",
        "cacheMillis": 10000,
        "hosts": [{
            "instanceId": "20.18.7.10#8080#DEFAULT#DEFAULT_GROUP@@nacos.naming.serviceName",
            "ip": "20.18.7.10",
            "port": 8080,
            "weight": 1.0,
            "healthy": true,
            "enabled": true,
            "ephemeral": true,
            "clusterName": "DEFAULT",
            "serviceName": "DEFAULT_GROUP@@nacos.naming.serviceName",
            "metadata": {},
            "instanceHeartBeatInterval": 5000,
            "instanceHeartBeatTimeOut": 15000,
            "ipDeleteTimeout": 30000,
            "instanceIdGenerator": "simple"
        }],
        "lastRefTime": last_ref,
        "checksum": "",
        "allIPs": false,
        "reachProtectionThreshold": false,
        "valid": true
    });
    assert_eq!(v, expected);
    // Weights are doubles on the wire.
    assert!(
        serde_json::to_string(&v["hosts"][0]["weight"])
            .expect("ser")
            .contains('.')
    );

    // An unknown service lists no hosts rather than failing.
    let v = list(&s, &[("serviceName", "nobody.here")]).await;
    assert_eq!(v["name"], "DEFAULT_GROUP@@nobody.here");
    assert!(hosts(&v).is_empty());
}

async fn register_update_patch_detail_deregister(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let svc = [("serviceName", "orders"), ("groupName", "shop")];
    register(
        &s,
        &[
            ("serviceName", "orders"),
            ("groupName", "shop"),
            ("ip", "10.0.0.1"),
            ("port", "80"),
            ("clusterName", "east"),
            ("weight", "2.5"),
            ("metadata", r#"{"version":"1","zone":"a"}"#),
        ],
    )
    .await;

    // The grouped form of serviceName reaches the same service.
    let detail = json(
        &s,
        Method::GET,
        "/v1/ns/instance",
        &[
            ("serviceName", "shop@@orders"),
            ("ip", "10.0.0.1"),
            ("port", "80"),
            ("clusterName", "east"),
        ],
    )
    .await;
    assert_eq!(
        detail,
        serde_json::json!({
            "service": "shop@@orders", "ip": "10.0.0.1", "port": 80, "clusterName": "east",
            "weight": 2.5, "healthy": true, "instanceId": "10.0.0.1#80#east#shop@@orders",
            "metadata": {"version": "1", "zone": "a"}
        })
    );

    // PUT replaces weight, enabled and metadata (k=v form).
    ok(
        &s,
        Method::PUT,
        "/v1/ns/instance",
        &[
            ("serviceName", "shop@@orders"),
            ("ip", "10.0.0.1"),
            ("port", "80"),
            ("cluster", "east"),
            ("weight", "3"),
            ("metadata", "version=2,owner=ops"),
        ],
    )
    .await;
    let detail_params = [
        ("serviceName", "shop@@orders"),
        ("ip", "10.0.0.1"),
        ("port", "80"),
        ("clusterName", "east"),
    ];
    let detail = json(&s, Method::GET, "/v1/ns/instance", &detail_params).await;
    assert_eq!(detail["weight"], 3.0);
    assert_eq!(
        detail["metadata"],
        serde_json::json!({"version": "2", "owner": "ops"})
    );

    // PATCH merges metadata and changes only what is given.
    ok(
        &s,
        Method::PATCH,
        "/v1/ns/instance",
        &[
            ("serviceName", "orders"),
            ("groupName", "shop"),
            ("ip", "10.0.0.1"),
            ("port", "80"),
            ("clusterName", "east"),
            ("metadata", r#"{"zone":"b"}"#),
            ("enabled", "false"),
        ],
    )
    .await;
    let detail = json(&s, Method::GET, "/v1/ns/instance", &detail_params).await;
    assert_eq!(detail["weight"], 3.0);
    assert_eq!(
        detail["metadata"],
        serde_json::json!({"version": "2", "owner": "ops", "zone": "b"})
    );
    // Disabled instances are not listed.
    assert!(hosts(&list(&s, &svc).await).is_empty());
    ok(
        &s,
        Method::PATCH,
        "/v1/ns/instance",
        &[
            ("serviceName", "shop@@orders"),
            ("ip", "10.0.0.1"),
            ("port", "80"),
            ("clusterName", "east"),
            ("enabled", "true"),
        ],
    )
    .await;
    assert_eq!(ips(&list(&s, &svc).await), ["10.0.0.1"]);

    // Updating or patching something unknown fails; nothing changes.
    let (status, _) = call(
        &s,
        Method::PUT,
        "/v1/ns/instance",
        &[
            ("serviceName", "shop@@orders"),
            ("ip", "10.9.9.9"),
            ("port", "80"),
            ("clusterName", "east"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &s,
        Method::PUT,
        "/v1/ns/instance",
        &[("serviceName", "ghost"), ("ip", "10.0.0.1"), ("port", "80")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &s,
        Method::PATCH,
        "/v1/ns/instance",
        &[
            ("serviceName", "shop@@orders"),
            ("ip", "10.9.9.9"),
            ("port", "80"),
            ("weight", "1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Deregister; the detail is then 404; deleting again (or anything unknown) is still ok.
    let dereg = [
        ("serviceName", "shop@@orders"),
        ("ip", "10.0.0.1"),
        ("port", "80"),
        ("clusterName", "east"),
    ];
    ok(&s, Method::DELETE, "/v1/ns/instance", &dereg).await;
    let (status, body) = call(&s, Method::GET, "/v1/ns/instance", &detail_params).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(!body.is_empty());
    ok(&s, Method::DELETE, "/v1/ns/instance", &dereg).await;
    ok(
        &s,
        Method::DELETE,
        "/v1/ns/instance",
        &[
            ("serviceName", "never.seen"),
            ("ip", "1.1.1.1"),
            ("port", "1"),
        ],
    )
    .await;
    assert!(hosts(&list(&s, &svc).await).is_empty());
}

async fn healthy_only_and_cluster_filters(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let base = |ip: &'static str, cluster: &'static str, healthy: &'static str| {
        [
            ("serviceName", "filtered"),
            ("ip", ip),
            ("port", "8080"),
            ("clusterName", cluster),
            ("healthy", healthy),
        ]
    };
    register(&s, &base("10.0.0.1", "A", "true")).await;
    register(&s, &base("10.0.0.2", "B", "false")).await;
    register(&s, &base("10.0.0.3", "C", "true")).await;

    let all = list(&s, &[("serviceName", "filtered")]).await;
    assert_eq!(ips(&all), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    assert_eq!(all["reachProtectionThreshold"], false);

    let healthy = list(&s, &[("serviceName", "filtered"), ("healthyOnly", "true")]).await;
    assert_eq!(ips(&healthy), ["10.0.0.1", "10.0.0.3"]);

    let ab = list(&s, &[("serviceName", "filtered"), ("clusters", "A,B")]).await;
    assert_eq!(ips(&ab), ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(ab["clusters"], "A,B");

    let b_healthy = list(
        &s,
        &[
            ("serviceName", "filtered"),
            ("clusters", "B"),
            ("healthyOnly", "true"),
        ],
    )
    .await;
    assert!(hosts(&b_healthy).is_empty());
    assert_eq!(
        list(&s, &[("serviceName", "filtered"), ("clusters", "Z")]).await["hosts"],
        serde_json::json!([])
    );

    let (status, body) = call(
        &s,
        Method::GET,
        "/v1/ns/instance/list",
        &[("serviceName", "filtered"), ("healthyOnly", "maybe")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("healthyOnly"), "{body}");
}

async fn protect_threshold_applies_with_stored_settings(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    // An ephemeral service without stored settings: no protection, unhealthy stays unhealthy.
    register(
        &s,
        &[
            ("serviceName", "eph"),
            ("ip", "10.0.1.1"),
            ("port", "1"),
            ("healthy", "false"),
        ],
    )
    .await;
    let v = list(&s, &[("serviceName", "eph")]).await;
    assert_eq!(v["reachProtectionThreshold"], false);
    assert_eq!(v["hosts"][0]["healthy"], false);
    // Storing settings (threshold 0) turns protection on: all unhealthy is served as healthy.
    ok(
        &s,
        Method::PUT,
        "/v1/ns/service",
        &[("serviceName", "eph"), ("protectThreshold", "0")],
    )
    .await;
    let v = list(&s, &[("serviceName", "eph"), ("healthyOnly", "true")]).await;
    assert_eq!(v["reachProtectionThreshold"], true);
    assert_eq!(hosts(&v).len(), 1);
    assert_eq!(v["hosts"][0]["healthy"], true);

    // A persistent service with threshold 0.6: one healthy of two (0.5) is protected.
    ok(
        &s,
        Method::POST,
        "/v1/ns/service",
        &[("serviceName", "guarded"), ("protectThreshold", "0.6")],
    )
    .await;
    for (ip, healthy) in [("10.0.2.1", "true"), ("10.0.2.2", "false")] {
        register(
            &s,
            &[
                ("serviceName", "guarded"),
                ("ip", ip),
                ("port", "80"),
                ("ephemeral", "false"),
                ("healthy", healthy),
            ],
        )
        .await;
    }
    let v = list(&s, &[("serviceName", "guarded"), ("healthyOnly", "true")]).await;
    assert_eq!(v["reachProtectionThreshold"], true);
    assert_eq!(ips(&v), ["10.0.2.1", "10.0.2.2"]);
    assert!(hosts(&v).iter().all(|h| h["healthy"] == true));
    // Detail shows the stored health, not the protected view.
    let detail = json(
        &s,
        Method::GET,
        "/v1/ns/instance",
        &[
            ("serviceName", "guarded"),
            ("ip", "10.0.2.2"),
            ("port", "80"),
        ],
    )
    .await;
    assert_eq!(detail["healthy"], false);

    // Lower the threshold below 0.5: no protection, healthyOnly drops the unhealthy host.
    ok(
        &s,
        Method::PUT,
        "/v1/ns/service",
        &[("serviceName", "guarded"), ("protectThreshold", "0.4")],
    )
    .await;
    let v = list(&s, &[("serviceName", "guarded"), ("healthyOnly", "true")]).await;
    assert_eq!(v["reachProtectionThreshold"], false);
    assert_eq!(ips(&v), ["10.0.2.1"]);
    let v = list(&s, &[("serviceName", "guarded")]).await;
    assert_eq!(ips(&v), ["10.0.2.1", "10.0.2.2"]);

    // PUT /v1/ns/health sets a persistent instance's health where no checker runs (NONE).
    ok(
        &s,
        Method::PUT,
        "/v1/ns/cluster",
        &[
            ("serviceName", "guarded"),
            ("clusterName", "DEFAULT"),
            ("healthChecker", r#"{"type":"NONE"}"#),
        ],
    )
    .await;
    ok(
        &s,
        Method::PUT,
        "/v1/ns/health",
        &[
            ("serviceName", "guarded"),
            ("ip", "10.0.2.2"),
            ("port", "80"),
            ("healthy", "true"),
        ],
    )
    .await;
    let v = list(&s, &[("serviceName", "guarded"), ("healthyOnly", "true")]).await;
    assert_eq!(ips(&v), ["10.0.2.1", "10.0.2.2"]);
    bad_request(
        &s,
        Method::PUT,
        "/v1/ns/health",
        &[
            ("serviceName", "guarded"),
            ("ip", "10.0.2.2"),
            ("port", "80"),
        ],
        "healthy",
    )
    .await;
}

#[tokio::test]
async fn beats_keep_instances_alive_and_silence_expires_them() {
    let s = TestServer::start_with(crate::helpers::FAST_NAMING).await;
    let inst = [
        ("serviceName", "beating"),
        ("ip", "10.1.0.1"),
        ("port", "7001"),
    ];
    register(&s, &inst).await;
    register(
        &s,
        &[
            ("serviceName", "beating"),
            ("ip", "10.1.0.2"),
            ("port", "7002"),
        ],
    )
    .await;

    // Beat one of them for well past the delete timeout.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1800) {
        let v = beat(&s, &inst).await;
        assert_eq!(v["code"], 10200);
        assert_eq!(v["lightBeatEnabled"], true);
        assert_eq!(v["clientBeatInterval"], 5000);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let v = list(&s, &[("serviceName", "beating")]).await;
    assert_eq!(
        ips(&v),
        ["10.1.0.1"],
        "the silent instance is gone, the beating one stays"
    );
    assert_eq!(v["hosts"][0]["healthy"], true);

    // Now stop beating: unhealthy first, then removed.
    let sr = &s;
    eventually(
        Duration::from_secs(3),
        "instance turns unhealthy",
        move || async move {
            let v = list(sr, &[("serviceName", "beating")]).await;
            hosts(&v).first().is_some_and(|h| h["healthy"] == false)
        },
    )
    .await;
    // A beat brings it back to healthy.
    assert_eq!(beat(&s, &inst).await["code"], 10200);
    assert_eq!(
        list(&s, &[("serviceName", "beating")]).await["hosts"][0]["healthy"],
        true
    );
    eventually(
        Duration::from_secs(4),
        "instance is removed",
        move || async move { hosts(&list(sr, &[("serviceName", "beating")]).await).is_empty() },
    )
    .await;

    // Once removed, a beat without `beat` JSON is told to re-register.
    assert_eq!(beat(&s, &inst).await["code"], 20404);
}

#[tokio::test]
async fn beat_unknown_instance_and_auto_register() {
    let s = TestServer::start().await;
    let v = beat(
        &s,
        &[
            ("serviceName", "auto"),
            ("ip", "10.2.0.1"),
            ("port", "9000"),
        ],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({"clientBeatInterval": 5000, "code": 20404, "lightBeatEnabled": true})
    );
    assert!(hosts(&list(&s, &[("serviceName", "auto")]).await).is_empty());

    // With `beat` JSON (in the form body, as Java 1.x sends it), the instance is created from
    // the JSON, whose ip/port/cluster win over the query's.
    let beat_json = r#"{"cluster":"west","ip":"10.2.0.2","metadata":{"preserved.heart.beat.interval":"2000","k":"v"},"period":5000,"port":9001,"scheduled":false,"serviceName":"DEFAULT_GROUP@@auto","stopped":false,"weight":2.0}"#;
    let resp = s
        .client
        .put(s.url("/v1/ns/instance/beat?serviceName=DEFAULT_GROUP%40%40auto&ip=10.2.0.1&port=9000&clusterName=DEFAULT"))
        .form(&[("beat", beat_json)])
        .send()
        .await
        .expect("beat");
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["code"], 10200);
    assert_eq!(
        v["clientBeatInterval"], 2000,
        "preserved.heart.beat.interval is handed back"
    );

    let listed = list(&s, &[("serviceName", "auto")]).await;
    let h = hosts(&listed);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["ip"], "10.2.0.2");
    assert_eq!(h[0]["port"], 9001);
    assert_eq!(h[0]["clusterName"], "west");
    assert_eq!(h[0]["weight"], 2.0);
    assert_eq!(h[0]["ephemeral"], true);
    assert_eq!(h[0]["metadata"]["k"], "v");
    assert_eq!(h[0]["instanceHeartBeatInterval"], 2000);

    // A light beat (no JSON) for it now succeeds.
    let v = beat(
        &s,
        &[
            ("serviceName", "auto"),
            ("ip", "10.2.0.2"),
            ("port", "9001"),
            ("clusterName", "west"),
        ],
    )
    .await;
    assert_eq!(v["code"], 10200);

    // Malformed beat JSON is a 400 naming `beat`.
    bad_request(
        &s,
        Method::PUT,
        "/v1/ns/instance/beat",
        &[("serviceName", "auto"), ("beat", "{nope")],
        "beat",
    )
    .await;
    bad_request(
        &s,
        Method::PUT,
        "/v1/ns/instance/beat",
        &[("serviceName", "auto"), ("port", "1")],
        "ip",
    )
    .await;
}

#[tokio::test]
async fn preserved_metadata_overrides_timings() {
    let s = TestServer::start_with(crate::helpers::FAST_NAMING).await;
    let patient = r#"{"preserved.heart.beat.interval":"500","preserved.heart.beat.timeout":"4000","preserved.ip.delete.timeout":"8000","preserved.instance.id.generator":"snowflake"}"#;
    register(
        &s,
        &[
            ("serviceName", "timed"),
            ("ip", "10.3.0.1"),
            ("port", "1"),
            ("metadata", patient),
        ],
    )
    .await;
    register(
        &s,
        &[("serviceName", "timed"), ("ip", "10.3.0.2"), ("port", "1")],
    )
    .await;

    let v = list(&s, &[("serviceName", "timed")]).await;
    let patient_host = hosts(&v)
        .into_iter()
        .find(|h| h["ip"] == "10.3.0.1")
        .expect("patient host");
    assert_eq!(patient_host["instanceHeartBeatInterval"], 500);
    assert_eq!(patient_host["instanceHeartBeatTimeOut"], 4000);
    assert_eq!(patient_host["ipDeleteTimeout"], 8000);
    assert_eq!(patient_host["instanceIdGenerator"], "snowflake");
    let plain = hosts(&v)
        .into_iter()
        .find(|h| h["ip"] == "10.3.0.2")
        .expect("plain host");
    assert_eq!(
        plain["instanceHeartBeatTimeOut"], 600,
        "server default applies"
    );

    // After the server's delete timeout, the plain instance is gone, the patient one is healthy.
    let sr = &s;
    eventually(
        Duration::from_secs(4),
        "default-timed instance removed",
        move || async move { ips(&list(sr, &[("serviceName", "timed")]).await) == ["10.3.0.1"] },
    )
    .await;
    assert_eq!(
        list(&s, &[("serviceName", "timed")]).await["hosts"][0]["healthy"],
        true
    );
    assert_eq!(
        beat(
            &s,
            &[("serviceName", "timed"), ("ip", "10.3.0.1"), ("port", "1")]
        )
        .await["clientBeatInterval"],
        500
    );

    // The beat interval may not exceed the timeouts; non-numbers are refused.
    for bad in [
        r#"{"preserved.heart.beat.interval":"20000"}"#,
        r#"{"preserved.heart.beat.timeout":"soon"}"#,
    ] {
        bad_request(
            &s,
            Method::POST,
            "/v1/ns/instance",
            &[
                ("serviceName", "timed"),
                ("ip", "10.3.0.9"),
                ("port", "1"),
                ("metadata", bad),
            ],
            "metadata",
        )
        .await;
    }
    assert_eq!(
        ips(&list(&s, &[("serviceName", "timed")]).await),
        ["10.3.0.1"]
    );
}

async fn service_crud_list_and_persistent_quirk(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    ok(
        &s,
        Method::POST,
        "/v1/ns/service",
        &[
            ("serviceName", "catalog"),
            ("groupName", "shop"),
            ("protectThreshold", "0.5"),
            ("metadata", "team=a"),
            ("selector", r#"{"type":"none"}"#),
        ],
    )
    .await;
    let detail = json(
        &s,
        Method::GET,
        "/v1/ns/service",
        &[("serviceName", "shop@@catalog")],
    )
    .await;
    assert_eq!(detail["namespaceId"], "public");
    assert_eq!(detail["groupName"], "shop");
    assert_eq!(detail["name"], "catalog");
    assert_eq!(detail["protectThreshold"], 0.5);
    assert_eq!(detail["metadata"], serde_json::json!({"team": "a"}));
    assert_eq!(detail["selector"]["type"], "none");
    assert_eq!(detail["clusters"], serde_json::json!([]));

    // Creating it again fails.
    let (status, body) = call(
        &s,
        Method::POST,
        "/v1/ns/service",
        &[("serviceName", "shop@@catalog")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("already exists"), "{body}");

    // Quirk: a created service is persistent, so ephemeral registrations are refused.
    let (status, body) = call(
        &s,
        Method::POST,
        "/v1/ns/instance",
        &[
            ("serviceName", "catalog"),
            ("groupName", "shop"),
            ("ip", "10.4.0.1"),
            ("port", "80"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        "Current service shop@@catalog is persistent service, can't register ephemeral instance."
    );
    // ... and persistent ones are accepted.
    register(
        &s,
        &[
            ("serviceName", "catalog"),
            ("groupName", "shop"),
            ("ip", "10.4.0.1"),
            ("port", "80"),
            ("ephemeral", "false"),
            ("clusterName", "c1"),
        ],
    )
    .await;
    let detail = json(
        &s,
        Method::GET,
        "/v1/ns/service",
        &[("serviceName", "catalog"), ("groupName", "shop")],
    )
    .await;
    assert_eq!(
        detail["clusters"],
        serde_json::json!([{"name": "c1", "healthChecker": {"type": "TCP"}, "metadata": {}}])
    );
    // Vice versa: a persistent instance into an ephemeral service is refused.
    register(
        &s,
        &[
            ("serviceName", "ephemeral.svc"),
            ("groupName", "shop"),
            ("ip", "10.4.0.2"),
            ("port", "80"),
        ],
    )
    .await;
    let (status, body) = call(
        &s,
        Method::POST,
        "/v1/ns/instance",
        &[
            ("serviceName", "shop@@ephemeral.svc"),
            ("ip", "10.4.0.3"),
            ("port", "80"),
            ("ephemeral", "false"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("is ephemeral service"), "{body}");

    // Update replaces threshold and metadata; protectThreshold is required.
    ok(
        &s,
        Method::PUT,
        "/v1/ns/service",
        &[
            ("serviceName", "shop@@catalog"),
            ("protectThreshold", "0.2"),
            ("metadata", r#"{"team":"b"}"#),
        ],
    )
    .await;
    let detail = json(
        &s,
        Method::GET,
        "/v1/ns/service",
        &[("serviceName", "shop@@catalog")],
    )
    .await;
    assert!((detail["protectThreshold"].as_f64().expect("f64") - 0.2).abs() < 1e-6);
    assert_eq!(detail["metadata"], serde_json::json!({"team": "b"}));
    bad_request(
        &s,
        Method::PUT,
        "/v1/ns/service",
        &[("serviceName", "shop@@catalog")],
        "protectThreshold",
    )
    .await;
    let (status, _) = call(
        &s,
        Method::PUT,
        "/v1/ns/service",
        &[("serviceName", "shop@@none"), ("protectThreshold", "0")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // List: per group, names without the group, paged, count before paging.
    for name in ["alpha", "beta", "gamma"] {
        ok(&s, Method::POST, "/v1/ns/service", &[("serviceName", name)]).await;
    }
    let v = json(
        &s,
        Method::GET,
        "/v1/ns/service/list",
        &[("pageNo", "1"), ("pageSize", "2")],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({"count": 3, "doms": ["alpha", "beta"]})
    );
    let v = json(
        &s,
        Method::GET,
        "/v1/ns/service/list",
        &[("pageNo", "2"), ("pageSize", "2")],
    )
    .await;
    assert_eq!(v, serde_json::json!({"count": 3, "doms": ["gamma"]}));
    let v = json(
        &s,
        Method::GET,
        "/v1/ns/service/list",
        &[("pageNo", "1"), ("pageSize", "10"), ("groupName", "shop")],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({"count": 2, "doms": ["catalog", "ephemeral.svc"]})
    );
    bad_request(
        &s,
        Method::GET,
        "/v1/ns/service/list",
        &[("pageSize", "10")],
        "pageNo",
    )
    .await;
    bad_request(
        &s,
        Method::GET,
        "/v1/ns/service/list",
        &[("pageNo", "1")],
        "pageSize",
    )
    .await;

    // Delete is refused while instances remain, then works; unknown services are 400.
    let (status, body) = call(
        &s,
        Method::DELETE,
        "/v1/ns/service",
        &[("serviceName", "shop@@catalog")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("not empty"), "{body}");
    ok(
        &s,
        Method::DELETE,
        "/v1/ns/instance",
        &[
            ("serviceName", "shop@@catalog"),
            ("ip", "10.4.0.1"),
            ("port", "80"),
            ("ephemeral", "false"),
            ("clusterName", "c1"),
        ],
    )
    .await;
    ok(
        &s,
        Method::DELETE,
        "/v1/ns/service",
        &[("serviceName", "shop@@catalog")],
    )
    .await;
    let (status, _) = call(
        &s,
        Method::GET,
        "/v1/ns/service",
        &[("serviceName", "shop@@catalog")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &s,
        Method::DELETE,
        "/v1/ns/service",
        &[("serviceName", "shop@@catalog")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Once deleted, the name is free for ephemeral use.
    register(
        &s,
        &[
            ("serviceName", "shop@@catalog"),
            ("ip", "10.4.0.1"),
            ("port", "80"),
        ],
    )
    .await;
}

async fn persistent_data_survives_restart(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    ok(
        &s,
        Method::POST,
        "/v1/ns/service",
        &[
            ("serviceName", "durable"),
            ("protectThreshold", "0.3"),
            ("metadata", "k=v"),
        ],
    )
    .await;
    register(
        &s,
        &[
            ("serviceName", "durable"),
            ("ip", "10.5.0.1"),
            ("port", "81"),
            ("ephemeral", "false"),
            ("weight", "4"),
            ("metadata", "role=db"),
        ],
    )
    .await;
    register(
        &s,
        &[
            ("serviceName", "durable.too"),
            ("ip", "10.5.0.2"),
            ("port", "82"),
            ("ephemeral", "false"),
            ("namespaceId", "ns-a"),
        ],
    )
    .await;
    register(
        &s,
        &[
            ("serviceName", "fleeting"),
            ("ip", "10.5.0.3"),
            ("port", "83"),
        ],
    )
    .await;

    let s = s.restart().await;
    let v = list(&s, &[("serviceName", "durable")]).await;
    let h = hosts(&v);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["ip"], "10.5.0.1");
    assert_eq!(h[0]["ephemeral"], false);
    assert_eq!(h[0]["weight"], 4.0);
    assert_eq!(h[0]["metadata"], serde_json::json!({"role": "db"}));
    let detail = json(
        &s,
        Method::GET,
        "/v1/ns/service",
        &[("serviceName", "durable")],
    )
    .await;
    assert!((detail["protectThreshold"].as_f64().expect("f64") - 0.3).abs() < 1e-6);
    assert_eq!(detail["metadata"], serde_json::json!({"k": "v"}));
    assert_eq!(
        ips(&list(
            &s,
            &[("serviceName", "durable.too"), ("namespaceId", "ns-a")]
        )
        .await),
        ["10.5.0.2"]
    );
    assert!(
        hosts(&list(&s, &[("serviceName", "fleeting")]).await).is_empty(),
        "ephemeral data is not kept"
    );
    // Still persistent after the restart.
    let (status, _) = call(
        &s,
        Method::POST,
        "/v1/ns/instance",
        &[
            ("serviceName", "durable"),
            ("ip", "10.5.0.9"),
            ("port", "1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn namespaces_are_isolated(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    register(
        &s,
        &[
            ("serviceName", "shared"),
            ("ip", "10.6.0.1"),
            ("port", "1"),
            ("namespaceId", "dev"),
        ],
    )
    .await;
    register(
        &s,
        &[
            ("serviceName", "shared"),
            ("ip", "10.6.0.2"),
            ("port", "1"),
            ("namespaceId", "prod"),
        ],
    )
    .await;
    register(
        &s,
        &[("serviceName", "shared"), ("ip", "10.6.0.3"), ("port", "1")],
    )
    .await;

    assert_eq!(
        ips(&list(&s, &[("serviceName", "shared"), ("namespaceId", "dev")]).await),
        ["10.6.0.1"]
    );
    assert_eq!(
        ips(&list(&s, &[("serviceName", "shared"), ("namespaceId", "prod")]).await),
        ["10.6.0.2"]
    );
    // Blank and `public` are the same namespace.
    assert_eq!(
        ips(&list(&s, &[("serviceName", "shared"), ("namespaceId", "")]).await),
        ["10.6.0.3"]
    );
    assert_eq!(
        ips(&list(&s, &[("serviceName", "shared"), ("namespaceId", "public")]).await),
        ["10.6.0.3"]
    );

    ok(
        &s,
        Method::DELETE,
        "/v1/ns/instance",
        &[
            ("serviceName", "shared"),
            ("ip", "10.6.0.1"),
            ("port", "1"),
            ("namespaceId", "prod"),
        ],
    )
    .await;
    assert_eq!(
        ips(&list(&s, &[("serviceName", "shared"), ("namespaceId", "dev")]).await),
        ["10.6.0.1"]
    );
    let v = json(
        &s,
        Method::GET,
        "/v1/ns/service/list",
        &[("pageNo", "1"), ("pageSize", "10"), ("namespaceId", "dev")],
    )
    .await;
    assert_eq!(v, serde_json::json!({"count": 1, "doms": ["shared"]}));
    bad_request(
        &s,
        Method::GET,
        "/v1/ns/instance/list",
        &[("serviceName", "shared"), ("namespaceId", "bad ns!")],
        "namespaceId",
    )
    .await;
}

/// Receive one push packet: returns (raw bytes, decoded JSON, sender).
async fn receive_push(socket: &UdpSocket) -> (Vec<u8>, Value, std::net::SocketAddr) {
    let mut buf = vec![0u8; 65536];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .expect("a push packet within 5 s")
        .expect("udp receive");
    let raw = buf[..n].to_vec();
    let decoded = nacos_server::naming::push::decode_packet(&raw).expect("gunzip");
    let packet: Value = serde_json::from_slice(&decoded).expect("packet JSON");
    (raw, packet, from)
}

/// The `ServiceInfo` inside a push packet.
fn push_data(packet: &Value) -> Value {
    serde_json::from_str(packet["data"].as_str().expect("data is a JSON string"))
        .expect("service info")
}

fn push_ack(packet: &Value) -> String {
    let reference = packet["lastRefTime"].as_u64().expect("numeric lastRefTime");
    format!(r#"{{"type":"push-ack","lastRefTime":"{reference}","data":""}}"#)
}

/// Receive pushes until one carries `hosts` hosts (changes may be split over several pushes
/// when the machine is slow); earlier ones are acked when `ack` is set.
async fn receive_push_with(
    socket: &UdpSocket,
    hosts: usize,
    ack: bool,
) -> (Vec<u8>, Value, std::net::SocketAddr) {
    loop {
        let (raw, packet, from) = receive_push(socket).await;
        assert_eq!(packet["type"], "dom");
        let count = push_data(&packet)["hosts"].as_array().expect("hosts").len();
        if count == hosts {
            return (raw, packet, from);
        }
        if ack {
            socket
                .send_to(push_ack(&packet).as_bytes(), from)
                .await
                .expect("send ack");
        }
    }
}

#[tokio::test]
async fn udp_push_to_v1_subscriber() {
    let s = TestServer::start_with(&[("nacos.naming.push.udp.ackTimeout", "400")]).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    let udp_port = socket.local_addr().expect("udp addr").port().to_string();
    register(
        &s,
        &[
            ("serviceName", "pushed"),
            ("ip", "10.7.0.1"),
            ("port", "80"),
        ],
    )
    .await;

    // A Java 1.x client lists with its UDP port: that subscribes it.
    let resp = s
        .client
        .get(s.url("/v1/ns/instance/list"))
        .header("User-Agent", "Nacos-Java-Client:v1.4.6")
        .query(&[
            ("serviceName", "pushed"),
            ("udpPort", udp_port.as_str()),
            ("clientIP", "127.0.0.1"),
        ])
        .send()
        .await
        .expect("list");
    assert_eq!(resp.status(), StatusCode::OK);

    register(
        &s,
        &[
            ("serviceName", "pushed"),
            ("ip", "10.7.0.2"),
            ("port", "80"),
        ],
    )
    .await;
    let (raw, packet, from) = receive_push_with(&socket, 2, true).await;
    let data = push_data(&packet);
    assert_eq!(data["name"], "DEFAULT_GROUP@@pushed");
    assert!(
        data.get("groupName").is_none(),
        "push data has no groupName: {data}"
    );
    assert_eq!(data["clusters"], "");
    assert_eq!(data["cacheMillis"], 10000);
    assert_eq!(data["checksum"], "");
    assert_eq!(data["allIPs"], false);
    assert_eq!(data["valid"], true);
    assert_eq!(data["reachProtectionThreshold"], false);
    assert!(data["lastRefTime"].as_i64().is_some());
    let mut pushed_ips: Vec<&str> = data["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .filter_map(|h| h["ip"].as_str())
        .collect();
    pushed_ips.sort();
    assert_eq!(pushed_ips, ["10.7.0.1", "10.7.0.2"]);
    assert_eq!(data["hosts"][0]["instanceHeartBeatTimeOut"], 15000);
    if raw.len() < 1024 {
        assert_eq!(raw[0], b'{', "small packets are plain JSON");
    }

    // Ack it; then no resend arrives and nothing counts as failed.
    socket
        .send_to(push_ack(&packet).as_bytes(), from)
        .await
        .expect("send ack");
    let mut buf = vec![0u8; 65536];
    let resend =
        tokio::time::timeout(Duration::from_millis(1200), socket.recv_from(&mut buf)).await;
    assert!(resend.is_err(), "an acked push is not resent");
    let state = json(&s, Method::GET, "/v1/ns/operator/push/state", &[]).await;
    assert!(state["total"].as_u64().expect("total") >= 1);
    assert_eq!(state["total"], state["succeed"], "no push failed: {state}");

    // A large service is pushed gzip-compressed; an unacked push is resent once, then failed.
    for i in 3..12 {
        let ip = format!("10.7.0.{i}");
        let metadata = format!(
            r#"{{"description":"instance number {i} with some padding to grow the packet"}}"#
        );
        register(
            &s,
            &[
                ("serviceName", "pushed"),
                ("ip", ip.as_str()),
                ("port", "80"),
                ("metadata", metadata.as_str()),
            ],
        )
        .await;
    }
    let (raw, packet, _) = receive_push_with(&socket, 11, false).await;
    assert_eq!(
        &raw[..2],
        &[0x1f, 0x8b],
        "large packets are gzip-compressed"
    );
    assert!(
        nacos_server::naming::push::decode_packet(&raw)
            .expect("gunzip")
            .len()
            >= 1024
    );
    loop {
        let (_, again, _) = receive_push(&socket).await;
        if again["lastRefTime"] == packet["lastRefTime"] {
            assert_eq!(
                again["data"], packet["data"],
                "the resend is the same packet"
            );
            break;
        }
    }
    let sr = &s;
    eventually(
        Duration::from_secs(3),
        "the unacked push counts as failed",
        move || async move {
            let state = json(sr, Method::GET, "/v1/ns/operator/push/state", &[]).await;
            state["total"].as_u64().unwrap_or(0) > state["succeed"].as_u64().unwrap_or(0)
        },
    )
    .await;

    // Agents that cannot take pushes (python) are not subscribed.
    let other = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    let other_port = other.local_addr().expect("addr").port().to_string();
    s.client
        .get(s.url("/v1/ns/instance/list"))
        .header("User-Agent", "Nacos-Python-Client:v0.1.0")
        .query(&[
            ("serviceName", "pushed"),
            ("udpPort", other_port.as_str()),
            ("clientIP", "127.0.0.1"),
        ])
        .send()
        .await
        .expect("list");
    ok(
        &s,
        Method::DELETE,
        "/v1/ns/instance",
        &[
            ("serviceName", "pushed"),
            ("ip", "10.7.0.1"),
            ("port", "80"),
        ],
    )
    .await;
    let mut buf = vec![0u8; 65536];
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), other.recv_from(&mut buf))
            .await
            .is_err()
    );
}

async fn bad_input_is_400_naming_the_parameter_and_changes_nothing(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    register(
        &s,
        &[
            ("serviceName", "strict"),
            ("ip", "10.8.0.1"),
            ("port", "80"),
        ],
    )
    .await;
    let good = |extra: &[(&'static str, &'static str)]| {
        let mut p = vec![
            ("serviceName", "strict"),
            ("ip", "10.8.0.2"),
            ("port", "80"),
        ];
        for (k, v) in extra {
            p.retain(|(pk, _)| pk != k);
            p.push((k, v));
        }
        p
    };
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("ip", "10.8.0.2"), ("port", "80")], "serviceName"),
        (vec![("serviceName", "strict"), ("port", "80")], "ip"),
        (vec![("serviceName", "strict"), ("ip", "10.8.0.2")], "port"),
        (good(&[("port", "70000")]), "port"),
        (good(&[("port", "eighty")]), "port"),
        (good(&[("weight", "20000")]), "weight"),
        (good(&[("weight", "heavy")]), "weight"),
        (good(&[("clusterName", "a,b")]), "clusterName"),
        (good(&[("metadata", r#"{"broken":"#)]), "metadata"),
        (good(&[("metadata", "novalue")]), "metadata"),
        (good(&[("healthy", "yes")]), "healthy"),
        (good(&[("ephemeral", "perhaps")]), "ephemeral"),
        (good(&[("serviceName", "服务")]), "serviceName"),
        (good(&[("serviceName", "has space")]), "serviceName"),
        (good(&[("serviceName", "@@strict")]), "serviceName"),
        (good(&[("namespaceId", "ns/1")]), "namespaceId"),
    ];
    for (params, param) in &cases {
        bad_request(&s, Method::POST, "/v1/ns/instance", params, param).await;
        bad_request(&s, Method::PUT, "/v1/ns/instance", params, param).await;
    }
    bad_request(
        &s,
        Method::GET,
        "/v1/ns/instance/list",
        &[("groupName", "x")],
        "serviceName",
    )
    .await;
    bad_request(
        &s,
        Method::GET,
        "/v1/ns/instance/list",
        &[("serviceName", "strict"), ("udpPort", "-1")],
        "udpPort",
    )
    .await;
    bad_request(
        &s,
        Method::DELETE,
        "/v1/ns/instance",
        &[("serviceName", "strict"), ("ip", "10.8.0.1")],
        "port",
    )
    .await;
    bad_request(
        &s,
        Method::GET,
        "/v1/ns/instance",
        &[("serviceName", "strict"), ("ip", "10.8.0.1")],
        "port",
    )
    .await;
    bad_request(
        &s,
        Method::PATCH,
        "/v1/ns/instance",
        &[
            ("serviceName", "strict"),
            ("ip", "10.8.0.1"),
            ("port", "80"),
            ("weight", "-1"),
        ],
        "weight",
    )
    .await;
    bad_request(
        &s,
        Method::POST,
        "/v1/ns/service",
        &[("serviceName", "svc"), ("protectThreshold", "high")],
        "protectThreshold",
    )
    .await;
    bad_request(
        &s,
        Method::POST,
        "/v1/ns/service",
        &[("serviceName", "svc"), ("metadata", "{x")],
        "metadata",
    )
    .await;
    bad_request(
        &s,
        Method::POST,
        "/v1/ns/service",
        &[("serviceName", "svc"), ("selector", r#"{"type":"weird"}"#)],
        "selector",
    )
    .await;

    // Nothing changed: the one good instance is all there is, unchanged.
    let v = list(&s, &[("serviceName", "strict")]).await;
    assert_eq!(ips(&v), ["10.8.0.1"]);
    assert_eq!(v["hosts"][0]["weight"], 1.0);
    assert_eq!(v["hosts"][0]["metadata"], serde_json::json!({}));
    let services = json(
        &s,
        Method::GET,
        "/v1/ns/service/list",
        &[("pageNo", "1"), ("pageSize", "100")],
    )
    .await;
    assert_eq!(
        services,
        serde_json::json!({"count": 1, "doms": ["strict"]})
    );
}

async fn operator_and_health_endpoints(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    assert_eq!(
        json(&s, Method::GET, "/v1/ns/operator/metrics", &[]).await,
        serde_json::json!({"status": "UP"})
    );
    register(
        &s,
        &[("serviceName", "m1"), ("ip", "10.9.0.1"), ("port", "1")],
    )
    .await;
    register(
        &s,
        &[("serviceName", "m1"), ("ip", "10.9.0.2"), ("port", "1")],
    )
    .await;
    register(
        &s,
        &[
            ("serviceName", "m2"),
            ("ip", "10.9.0.3"),
            ("port", "1"),
            ("ephemeral", "false"),
        ],
    )
    .await;
    let m = json(
        &s,
        Method::GET,
        "/v1/ns/operator/metrics",
        &[("onlyStatus", "false")],
    )
    .await;
    assert_eq!(m["status"], "UP");
    assert_eq!(m["serviceCount"], 2);
    assert_eq!(m["instanceCount"], 3);
    assert_eq!(m["ephemeralIpPortClientCount"], 2);
    assert_eq!(m["persistentIpPortClientCount"], 1);
    assert_eq!(m["clientCount"], 3);
    // Standalone: every client is this node's own.
    assert_eq!(m["responsibleInstanceCount"], 3);
    assert_eq!(m["responsibleClientCount"], 3);
    for field in [
        "subscribeCount",
        "responsibleInstanceCount",
        "connectionBasedClientCount",
        "responsibleClientCount",
        "cpu",
        "load",
        "mem",
    ] {
        assert!(m.get(field).is_some(), "metrics has {field}: {m}");
    }

    let sw = json(&s, Method::GET, "/v1/ns/operator/switches", &[]).await;
    assert_eq!(sw["defaultPushCacheMillis"], 10000);
    assert_eq!(sw["clientBeatInterval"], 5000);
    assert_eq!(sw["pushJavaVersion"], "0.1.0");
    assert_eq!(sw["pushCVersion"], "1.0.12");
    assert_eq!(sw["lightBeatEnabled"], true);
    assert_eq!(sw["distroThreshold"], 0.7);
    assert_eq!(sw["limitedUrlMap"], serde_json::json!({}));
    assert_eq!(sw["enableAuthentication"], false, "auth is off here");

    let state = json(&s, Method::GET, "/v1/ns/operator/push/state", &[]).await;
    assert_eq!(
        state,
        serde_json::json!({"succeed": 0, "total": 0, "ratio": 0, "reset": false})
    );

    let health = json(&s, Method::GET, "/v1/ns/health/server", &[]).await;
    assert!(
        health["msg"]
            .as_str()
            .expect("msg")
            .starts_with("Hello! I am Nacos-Naming and healthy!")
    );
}

/// The metadata of the host `ip` in a v1 list answer.
fn host_metadata(list: &Value, ip: &str) -> Value {
    hosts(list)
        .into_iter()
        .find(|h| h["ip"] == ip)
        .map(|h| h["metadata"].clone())
        .expect("host listed")
}

const BATCH: &str = "/v1/ns/instance/metadata/batch";

async fn metadata_batch_on_ephemeral_and_persistent_instances(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    for (ip, cluster) in [("10.8.0.1", "DEFAULT"), ("10.8.0.2", "c1")] {
        register(
            &s,
            &[
                ("serviceName", "eph"),
                ("ip", ip),
                ("port", "80"),
                ("clusterName", cluster),
                ("metadata", "a=1"),
            ],
        )
        .await;
    }
    register(
        &s,
        &[
            ("serviceName", "per"),
            ("ip", "10.8.1.1"),
            ("port", "81"),
            ("ephemeral", "false"),
            ("metadata", r#"{"a":"1"}"#),
        ],
    )
    .await;

    // PUT merges into the listed instances only.
    let v = json(
        &s,
        Method::PUT,
        BATCH,
        &[
            ("serviceName", "eph"),
            (
                "instances",
                r#"[{"ip":"10.8.0.1","port":80,"clusterName":"DEFAULT"}]"#,
            ),
            ("metadata", r#"{"b":"2"}"#),
        ],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({ "updated": ["10.8.0.1:80:unknown:DEFAULT:ephemeral"] })
    );
    let l = list(&s, &[("serviceName", "eph")]).await;
    assert_eq!(
        host_metadata(&l, "10.8.0.1"),
        serde_json::json!({"a": "1", "b": "2"})
    );
    assert_eq!(host_metadata(&l, "10.8.0.2"), serde_json::json!({"a": "1"}));

    // No instances: every ephemeral instance; k=v form.
    let v = json(
        &s,
        Method::PUT,
        BATCH,
        &[
            ("serviceName", "DEFAULT_GROUP@@eph"),
            ("namespaceId", "public"),
            ("consistencyType", "ephemeral"),
            ("instances", ""),
            ("metadata", "c=3"),
        ],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({ "updated": [
            "10.8.0.1:80:unknown:DEFAULT:ephemeral",
            "10.8.0.2:80:unknown:c1:ephemeral"
        ] })
    );

    // DELETE removes the named keys.
    let v = json(
        &s,
        Method::DELETE,
        BATCH,
        &[("serviceName", "eph"), ("metadata", "a=x,c=x")],
    )
    .await;
    assert_eq!(v["updated"].as_array().map(Vec::len), Some(2));
    let l = list(&s, &[("serviceName", "eph")]).await;
    assert_eq!(host_metadata(&l, "10.8.0.1"), serde_json::json!({"b": "2"}));
    assert_eq!(host_metadata(&l, "10.8.0.2"), serde_json::json!({}));

    // A persistent service is not touched without consistencyType=persist.
    let v = json(
        &s,
        Method::PUT,
        BATCH,
        &[("serviceName", "per"), ("metadata", "p=1")],
    )
    .await;
    assert_eq!(v, serde_json::json!({ "updated": [] }));
    let v = json(
        &s,
        Method::PUT,
        BATCH,
        &[
            ("serviceName", "per"),
            ("consistencyType", "persist"),
            (
                "instances",
                r#"[{"ip":"10.8.1.1","port":81,"clusterName":"DEFAULT"}]"#,
            ),
            ("metadata", "p=1,q=2"),
        ],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({ "updated": ["10.8.1.1:81:unknown:DEFAULT:persist"] })
    );
    let v = json(
        &s,
        Method::DELETE,
        BATCH,
        &[
            ("serviceName", "per"),
            ("consistencyType", "persist"),
            ("metadata", r#"{"a":""}"#),
        ],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({ "updated": ["10.8.1.1:81:unknown:DEFAULT:persist"] })
    );
    let l = list(&s, &[("serviceName", "per")]).await;
    assert_eq!(
        host_metadata(&l, "10.8.1.1"),
        serde_json::json!({"p": "1", "q": "2"})
    );
    // Unknown instances are simply not updated.
    let v = json(
        &s,
        Method::PUT,
        BATCH,
        &[
            ("serviceName", "per"),
            ("consistencyType", "persist"),
            (
                "instances",
                r#"[{"ip":"10.8.9.9","port":81,"clusterName":"DEFAULT"}]"#,
            ),
            ("metadata", "z=1"),
        ],
    )
    .await;
    assert_eq!(v, serde_json::json!({ "updated": [] }));

    // Bad input: 400 naming the parameter, nothing changed.
    bad_request(
        &s,
        Method::PUT,
        BATCH,
        &[("metadata", "x=1")],
        "serviceName",
    )
    .await;
    bad_request(
        &s,
        Method::PUT,
        BATCH,
        &[("serviceName", "eph")],
        "metadata",
    )
    .await;
    bad_request(
        &s,
        Method::PUT,
        BATCH,
        &[
            ("serviceName", "eph"),
            ("instances", "not json"),
            ("metadata", "x=1"),
        ],
        "instances",
    )
    .await;
    bad_request(
        &s,
        Method::DELETE,
        BATCH,
        &[("serviceName", "eph"), ("metadata", "{not json")],
        "metadata",
    )
    .await;
    let l = list(&s, &[("serviceName", "eph")]).await;
    assert_eq!(host_metadata(&l, "10.8.0.1"), serde_json::json!({"b": "2"}));

    // The persistent change went through the repository.
    let s = s.restart().await;
    let l = list(&s, &[("serviceName", "per")]).await;
    assert_eq!(
        host_metadata(&l, "10.8.1.1"),
        serde_json::json!({"p": "1", "q": "2"})
    );
}

async fn statuses_names_and_catalog(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    register(
        &s,
        &[
            ("serviceName", "cat"),
            ("groupName", "g1"),
            ("ip", "10.9.0.2"),
            ("port", "80"),
        ],
    )
    .await;
    register(
        &s,
        &[
            ("serviceName", "cat"),
            ("groupName", "g1"),
            ("ip", "10.9.0.1"),
            ("port", "80"),
            ("clusterName", "c1"),
            ("healthy", "false"),
        ],
    )
    .await;
    register(
        &s,
        &[
            ("serviceName", "dog"),
            ("ip", "10.9.1.1"),
            ("port", "90"),
            ("ephemeral", "false"),
        ],
    )
    .await;
    ok(
        &s,
        Method::PUT,
        "/v1/ns/cluster",
        &[
            ("serviceName", "dog"),
            ("clusterName", "DEFAULT"),
            ("healthChecker", r#"{"type":"NONE"}"#),
        ],
    )
    .await;
    ok(
        &s,
        Method::PUT,
        "/v1/ns/health",
        &[
            ("serviceName", "dog"),
            ("ip", "10.9.1.1"),
            ("port", "90"),
            ("healthy", "false"),
        ],
    )
    .await;
    register(
        &s,
        &[
            ("serviceName", "cat"),
            ("namespaceId", "other"),
            ("ip", "10.9.2.1"),
            ("port", "80"),
        ],
    )
    .await;

    ok(
        &s,
        Method::POST,
        "/v1/ns/service",
        &[("serviceName", "empty"), ("groupName", "g2")],
    )
    .await;

    // statuses
    let statuses = "/v1/ns/instance/statuses";
    let v = json(&s, Method::GET, statuses, &[("key", "g1@@cat")]).await;
    assert_eq!(
        v,
        serde_json::json!({ "ips": ["10.9.0.1:80_false", "10.9.0.2:80_true"] })
    );
    let v = json(
        &s,
        Method::GET,
        statuses,
        &[("key", "public##DEFAULT_GROUP@@dog")],
    )
    .await;
    assert_eq!(v, serde_json::json!({ "ips": ["10.9.1.1:90_false"] }));
    let v = json(
        &s,
        Method::GET,
        statuses,
        &[("key", "other##DEFAULT_GROUP@@cat")],
    )
    .await;
    assert_eq!(v, serde_json::json!({ "ips": ["10.9.2.1:80_true"] }));
    let v = json(&s, Method::GET, statuses, &[("key", "g1@@nobody")]).await;
    assert_eq!(v, serde_json::json!({ "ips": [] }));
    bad_request(&s, Method::GET, statuses, &[], "key").await;
    bad_request(&s, Method::GET, statuses, &[("key", "g1@@")], "key").await;

    // service/names
    let names = "/v1/ns/service/names";
    let v = json(&s, Method::GET, names, &[]).await;
    assert_eq!(
        v,
        serde_json::json!({
            "META-INF/services": {
                "other": ["DEFAULT_GROUP@@cat"],
                "public": ["DEFAULT_GROUP@@dog", "g1@@cat", "g2@@empty"]
            },
            "count": 4
        })
    );
    let v = json(
        &s,
        Method::GET,
        names,
        &[("namespaceId", "public"), ("expr", "ca")],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({ "META-INF/services": { "public": ["g1@@cat"] }, "count": 1 })
    );
    bad_request(
        &s,
        Method::GET,
        names,
        &[("namespaceId", "bad ns!")],
        "namespaceId",
    )
    .await;

    // catalog/services
    let services = "/v1/ns/catalog/services";
    let v = json(
        &s,
        Method::GET,
        services,
        &[("pageNo", "1"), ("pageSize", "10")],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({
            "count": 3,
            "serviceList": [
                { "name": "dog", "groupName": "DEFAULT_GROUP", "clusterCount": 1, "ipCount": 1,
                  "healthyInstanceCount": 0, "triggerFlag": "true" },
                { "name": "cat", "groupName": "g1", "clusterCount": 2, "ipCount": 2,
                  "healthyInstanceCount": 1, "triggerFlag": "false" },
                { "name": "empty", "groupName": "g2", "clusterCount": 0, "ipCount": 0,
                  "healthyInstanceCount": 0, "triggerFlag": "false" }
            ]
        })
    );
    let v = json(
        &s,
        Method::GET,
        services,
        &[
            ("pageNo", "1"),
            ("pageSize", "10"),
            ("serviceNameParam", "ca"),
            ("groupNameParam", "g"),
            ("withInstances", "false"),
        ],
    )
    .await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["serviceList"][0]["name"], "cat");
    let v = json(
        &s,
        Method::GET,
        services,
        &[("pageNo", "2"), ("pageSize", "1")],
    )
    .await;
    assert_eq!(v["count"], 3);
    assert_eq!(v["serviceList"][0]["name"], "cat");
    bad_request(&s, Method::GET, services, &[("pageSize", "10")], "pageNo").await;
    bad_request(&s, Method::GET, services, &[("pageNo", "1")], "pageSize").await;
    bad_request(
        &s,
        Method::GET,
        services,
        &[("pageNo", "x"), ("pageSize", "10")],
        "pageNo",
    )
    .await;

    // catalog/instances
    let instances = "/v1/ns/catalog/instances";
    let v = json(
        &s,
        Method::GET,
        instances,
        &[
            ("serviceName", "g1@@cat"),
            ("clusterName", "c1"),
            ("pageNo", "1"),
            ("pageSize", "10"),
        ],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({
            "list": [{
                "instanceId": "10.9.0.1#80#c1#g1@@cat",
                "ip": "10.9.0.1",
                "port": 80,
                "weight": 1.0,
                "healthy": false,
                "enabled": true,
                "ephemeral": true,
                "clusterName": "c1",
                "serviceName": "g1@@cat",
                "metadata": {},
                "instanceHeartBeatInterval": 5000,
                "instanceHeartBeatTimeOut": 15000,
                "ipDeleteTimeout": 30000,
                "instanceIdGenerator": "simple"
            }],
            "count": 1
        })
    );
    let v = json(
        &s,
        Method::GET,
        instances,
        &[
            ("serviceName", "cat"),
            ("groupName", "g1"),
            ("clusterName", "DEFAULT"),
            ("pageNo", "2"),
            ("pageSize", "10"),
        ],
    )
    .await;
    assert_eq!(v, serde_json::json!({ "list": [], "count": 1 }));
    for (service, cluster) in [("g1@@nobody", "c1"), ("g1@@cat", "c9")] {
        let (status, body) = call(
            &s,
            Method::GET,
            instances,
            &[
                ("serviceName", service),
                ("clusterName", cluster),
                ("pageNo", "1"),
                ("pageSize", "10"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{service} {cluster}: {body}");
        assert!(body.contains("is not found"), "{body}");
    }
    bad_request(
        &s,
        Method::GET,
        instances,
        &[("serviceName", "cat"), ("pageNo", "1"), ("pageSize", "10")],
        "clusterName",
    )
    .await;
    bad_request(
        &s,
        Method::GET,
        instances,
        &[("clusterName", "c1"), ("pageNo", "1"), ("pageSize", "10")],
        "serviceName",
    )
    .await;
}

/// Subscribe a v1 Java client's UDP socket to `service` by listing it.
async fn subscribe_udp(s: &TestServer, service: &str, socket: &UdpSocket) {
    let udp_port = socket.local_addr().expect("udp addr").port().to_string();
    let resp = s
        .client
        .get(s.url("/v1/ns/instance/list"))
        .header("User-Agent", "Nacos-Java-Client:v1.4.6")
        .query(&[
            ("serviceName", service),
            ("udpPort", udp_port.as_str()),
            ("clientIP", "127.0.0.1"),
        ])
        .send()
        .await
        .expect("list");
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn metadata_batch_pushes_to_v1_subscribers() {
    let s = TestServer::start().await;
    register(
        &s,
        &[
            ("serviceName", "meta-pushed"),
            ("ip", "10.10.0.1"),
            ("port", "80"),
        ],
    )
    .await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    subscribe_udp(&s, "meta-pushed", &socket).await;
    let v = json(
        &s,
        Method::PUT,
        BATCH,
        &[("serviceName", "meta-pushed"), ("metadata", "color=red")],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({ "updated": ["10.10.0.1:80:unknown:DEFAULT:ephemeral"] })
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, packet, from) = receive_push(&socket).await;
        socket
            .send_to(push_ack(&packet).as_bytes(), from)
            .await
            .expect("send ack");
        if push_data(&packet)["hosts"][0]["metadata"] == serde_json::json!({"color": "red"}) {
            break;
        }
        assert!(Instant::now() < deadline, "no push with the new metadata");
    }
}

#[tokio::test]
async fn service_subscribers_lists_udp_subscribers() {
    let s = TestServer::start().await;
    let subscribers = "/v1/ns/service/subscribers";
    let v = json(&s, Method::GET, subscribers, &[("serviceName", "watched")]).await;
    assert_eq!(v, serde_json::json!({ "subscribers": [], "count": 0 }));

    let first = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    let second = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    subscribe_udp(&s, "watched", &first).await;
    subscribe_udp(&s, "watched", &second).await;
    subscribe_udp(&s, "elsewhere", &second).await;
    let mut ports = [
        first.local_addr().expect("addr").port(),
        second.local_addr().expect("addr").port(),
    ];
    ports.sort_by_key(|p| format!("127.0.0.1:{p}"));
    let expected: Vec<Value> = ports
        .iter()
        .map(|port| {
            serde_json::json!({
                "addrStr": format!("127.0.0.1:{port}"),
                "agent": "",
                "app": "unknown",
                "ip": "127.0.0.1",
                "port": port,
                "namespaceId": "public",
                "serviceName": "DEFAULT_GROUP@@watched",
                "cluster": ""
            })
        })
        .collect();
    let v = json(
        &s,
        Method::GET,
        subscribers,
        &[
            ("serviceName", "watched"),
            ("namespaceId", "public"),
            ("aggregation", "true"),
        ],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({ "subscribers": expected.clone(), "count": 2 })
    );
    let v = json(
        &s,
        Method::GET,
        subscribers,
        &[
            ("serviceName", "DEFAULT_GROUP@@watched"),
            ("pageNo", "2"),
            ("pageSize", "1"),
        ],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({ "subscribers": [expected[1].clone()], "count": 2 })
    );
    bad_request(&s, Method::GET, subscribers, &[], "serviceName").await;
    bad_request(
        &s,
        Method::GET,
        subscribers,
        &[("serviceName", "watched"), ("pageNo", "x")],
        "pageNo",
    )
    .await;
    bad_request(
        &s,
        Method::GET,
        subscribers,
        &[("serviceName", "watched"), ("aggregation", "maybe")],
        "aggregation",
    )
    .await;
}

/// Label selectors as Nacos evaluates them without a CMDB: the expression is checked at write
/// time (a bad one is a 400 naming `selector`, and the service stays as it was), and a stored
/// one selects every instance, since no instance has CMDB labels.
#[tokio::test]
async fn label_selectors_are_checked_and_select_every_instance_without_a_cmdb() {
    let s = TestServer::start().await;
    let service = [("serviceName", "sel.svc")];
    ok(&s, Method::POST, "/v1/ns/service", &service).await;
    for ip in ["10.70.0.1", "10.70.0.2"] {
        // A service created by POST /v1/ns/service is persistent, as in Nacos.
        let instance = [
            ("serviceName", "sel.svc"),
            ("ip", ip),
            ("port", "80"),
            ("ephemeral", "false"),
        ];
        register(&s, &instance).await;
    }
    for bad in [
        r#"{"type":"label","expression":"CONSUMER.label.zone = PROVIDER.label.region"}"#,
        r#"{"type":"label","expression":"CONSUMER.label.zone = PROVIDER.label.zone &"}"#,
        r#"{"type":"label","expression":"zone"}"#,
    ] {
        bad_request(
            &s,
            Method::PUT,
            "/v1/ns/service",
            &[
                ("serviceName", "sel.svc"),
                ("protectThreshold", "0"),
                ("selector", bad),
            ],
            "selector",
        )
        .await;
    }
    let stored = json(&s, Method::GET, "/v1/ns/service", &service).await;
    assert_eq!(stored["selector"]["type"], "none", "{stored}");

    let good = r#"{"type":"label","expression":"CONSUMER.label.zone = PROVIDER.label.zone"}"#;
    ok(
        &s,
        Method::PUT,
        "/v1/ns/service",
        &[
            ("serviceName", "sel.svc"),
            ("protectThreshold", "0"),
            ("selector", good),
        ],
    )
    .await;
    let stored = json(&s, Method::GET, "/v1/ns/service", &service).await;
    assert_eq!(stored["selector"]["type"], "label", "{stored}");
    assert_eq!(
        stored["selector"]["expression"],
        "CONSUMER.label.zone = PROVIDER.label.zone"
    );
    assert_eq!(
        ips(&list(&s, &[("serviceName", "sel.svc"), ("clientIP", "10.9.9.9")]).await),
        ["10.70.0.1", "10.70.0.2"]
    );
}
