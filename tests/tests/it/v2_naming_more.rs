//! End-to-end: the v2 naming endpoints beyond instances and services — beats, batch metadata,
//! statuses, persistent health, the catalog's instance pages, operator switches and metrics —
//! over real HTTP against a server on port 0: each success path with its effect, bad input
//! answered 400 in the v2 envelope naming the parameter, and a user with rights on one
//! namespace refused on another for every write.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::auth::{admin_post, auth_props, create_namespaces, grant_user, init_admin};
use crate::helpers::status_and_json;
use crate::support::{Storage, TestServer};

/// One request; GET sends the parameters in the query, everything else as a form body.
async fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    params: &[(&str, &str)],
) -> (StatusCode, Value) {
    status_and_json(crate::helpers::send(s, method, path, params).await).await
}

/// A v2 success: 200, code 0, and its `data`.
async fn data(s: &TestServer, method: Method, path: &str, params: &[(&str, &str)]) -> Value {
    let (status, body) = call(s, method.clone(), path, params).await;
    assert_eq!(status, StatusCode::OK, "{method} {path} {params:?}: {body}");
    assert_eq!(body["code"], 0, "{method} {path}: {body}");
    assert_eq!(body["message"], "success");
    body["data"].clone()
}

/// A 400 in the v2 envelope with `code`, whose detail names `param`.
async fn bad(
    s: &TestServer,
    method: Method,
    path: &str,
    params: &[(&str, &str)],
    code: i64,
    param: &str,
) {
    let (status, body) = call(s, method.clone(), path, params).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{method} {path} {params:?}: {body}"
    );
    assert_eq!(body["code"], code, "{method} {path} {params:?}: {body}");
    let detail = body["data"].as_str().unwrap_or_default();
    assert!(
        detail.contains(param),
        "{method} {path}: {detail} names {param}"
    );
}

async fn register(s: &TestServer, params: &[(&str, &str)]) {
    assert_eq!(data(s, Method::POST, "/v2/ns/instance", params).await, "ok");
}

/// The hosts `/v2/ns/instance/list` serves for a service of `DEFAULT_GROUP` in `public`.
async fn hosts(s: &TestServer, service: &str) -> Vec<Value> {
    let list = data(
        s,
        Method::GET,
        "/v2/ns/instance/list",
        &[("serviceName", service)],
    )
    .await;
    list["hosts"].as_array().cloned().unwrap_or_default()
}

fn host<'a>(hosts: &'a [Value], ip: &str) -> &'a Value {
    hosts
        .iter()
        .find(|h| h["ip"] == ip)
        .unwrap_or_else(|| panic!("{ip} in {hosts:?}"))
}

#[tokio::test]
async fn beats_keep_instances_healthy_and_unknown_ones_are_told_to_register() {
    let s = TestServer::start_with(crate::helpers::FAST_NAMING).await;
    let inst = [
        ("serviceName", "beating"),
        ("ip", "10.3.0.1"),
        ("port", "80"),
    ];
    register(&s, &inst).await;
    let beat_params = [
        ("serviceName", "DEFAULT_GROUP@@beating"),
        ("ip", "10.3.0.1"),
        ("port", "80"),
    ];
    // Beat past the 600 ms timeout: the instance stays healthy. The answer is Nacos's raw JSON.
    for _ in 0..8 {
        let (status, body) = call(&s, Method::PUT, "/v2/ns/instance/beat", &beat_params).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"clientBeatInterval": 5000, "code": 10200, "lightBeatEnabled": true})
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(
        host(&hosts(&s, "beating").await, "10.3.0.1")["healthy"],
        true
    );

    // An unknown instance without `beat` JSON: 20404, nothing registered.
    let (_, body) = call(
        &s,
        Method::PUT,
        "/v2/ns/instance/beat",
        &[
            ("serviceName", "beating"),
            ("ip", "10.3.0.9"),
            ("port", "80"),
        ],
    )
    .await;
    assert_eq!(body["code"], 20404, "{body}");
    assert_eq!(hosts(&s, "beating").await.len(), 1);

    // With `beat` JSON it is registered (its ip and port win over the parameters).
    let beat = r#"{"ip":"10.3.0.2","port":81,"cluster":"c1","weight":2,"metadata":{"k":"v"}}"#;
    let (_, body) = call(
        &s,
        Method::PUT,
        "/v2/ns/instance/beat",
        &[
            ("serviceName", "beating"),
            ("ip", "10.3.0.9"),
            ("port", "1"),
            ("beat", beat),
        ],
    )
    .await;
    assert_eq!(body["code"], 10200, "{body}");
    let hs = hosts(&s, "beating").await;
    let registered = host(&hs, "10.3.0.2");
    assert_eq!(registered["port"], 81);
    assert_eq!(registered["clusterName"], "c1");
    assert_eq!(registered["metadata"]["k"], "v");

    // Bad input: 400 in the envelope, naming the parameter.
    let path = "/v2/ns/instance/beat";
    bad(
        &s,
        Method::PUT,
        path,
        &[("ip", "10.3.0.1"), ("port", "80")],
        10000,
        "serviceName",
    )
    .await;
    bad(
        &s,
        Method::PUT,
        path,
        &[("serviceName", "beating"), ("ip", "10.3.0.1")],
        10000,
        "port",
    )
    .await;
    bad(
        &s,
        Method::PUT,
        path,
        &[
            ("serviceName", "beating"),
            ("ip", "10.3.0.1"),
            ("port", "x"),
        ],
        20002,
        "port",
    )
    .await;
    bad(
        &s,
        Method::PUT,
        path,
        &[("serviceName", "beating"), ("beat", "{nope")],
        20002,
        "beat",
    )
    .await;
    bad(
        &s,
        Method::PUT,
        path,
        &[
            ("serviceName", "beating"),
            ("beat", r#"{"ip":"10.3.0.1","port":70000}"#),
        ],
        20002,
        "port",
    )
    .await;
}

#[tokio::test]
async fn metadata_batch_updates_and_deletes_on_the_listed_instances() {
    let s = TestServer::start().await;
    for ip in ["10.4.0.1", "10.4.0.2"] {
        register(
            &s,
            &[
                ("serviceName", "meta"),
                ("ip", ip),
                ("port", "80"),
                ("metadata", "keep=1"),
            ],
        )
        .await;
    }
    let path = "/v2/ns/instance/metadata/batch";
    let one = r#"[{"ip":"10.4.0.1","port":80}]"#;
    let updated = data(
        &s,
        Method::PUT,
        path,
        &[
            ("serviceName", "meta"),
            ("instances", one),
            ("metadata", r#"{"zone":"a"}"#),
        ],
    )
    .await;
    let updated = updated["updated"].as_array().cloned().unwrap_or_default();
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert!(updated[0].as_str().unwrap_or_default().contains("10.4.0.1"));
    let hs = hosts(&s, "meta").await;
    assert_eq!(
        host(&hs, "10.4.0.1")["metadata"],
        json!({"keep": "1", "zone": "a"})
    );
    assert_eq!(host(&hs, "10.4.0.2")["metadata"], json!({"keep": "1"}));

    // No list: every ephemeral instance of the service.
    let updated = data(
        &s,
        Method::PUT,
        path,
        &[("serviceName", "meta"), ("metadata", "zone=b")],
    )
    .await;
    assert_eq!(updated["updated"].as_array().map(Vec::len), Some(2));
    let hs = hosts(&s, "meta").await;
    assert_eq!(host(&hs, "10.4.0.2")["metadata"]["zone"], "b");

    // DELETE removes the named keys.
    data(
        &s,
        Method::DELETE,
        path,
        &[
            ("serviceName", "meta"),
            ("instances", one),
            ("metadata", "zone="),
        ],
    )
    .await;
    let hs = hosts(&s, "meta").await;
    assert_eq!(host(&hs, "10.4.0.1")["metadata"], json!({"keep": "1"}));
    assert_eq!(host(&hs, "10.4.0.2")["metadata"]["zone"], "b");

    bad(
        &s,
        Method::PUT,
        path,
        &[("serviceName", "meta")],
        10000,
        "metadata",
    )
    .await;
    bad(
        &s,
        Method::PUT,
        path,
        &[("metadata", "a=1")],
        10000,
        "serviceName",
    )
    .await;
    bad(
        &s,
        Method::DELETE,
        path,
        &[
            ("serviceName", "meta"),
            ("metadata", "a=1"),
            ("instances", "[{"),
        ],
        20002,
        "instances",
    )
    .await;
    bad(
        &s,
        Method::PUT,
        path,
        &[("serviceName", "meta"), ("metadata", "{\"a\":{}}")],
        20002,
        "metadata",
    )
    .await;
    let hs = hosts(&s, "meta").await;
    assert_eq!(
        host(&hs, "10.4.0.1")["metadata"],
        json!({"keep": "1"}),
        "bad input changed nothing"
    );
}

#[tokio::test]
async fn statuses_and_persistent_health() {
    let s = TestServer::start().await;
    for ip in ["10.5.0.2", "10.5.0.1"] {
        register(
            &s,
            &[
                ("serviceName", "doc"),
                ("groupName", "G"),
                ("ip", ip),
                ("port", "80"),
                ("ephemeral", "false"),
            ],
        )
        .await;
    }
    let statuses = |key: &'static str| {
        let s = &s;
        async move {
            let resp = s
                .client
                .get(s.url(&format!("/v2/ns/instance/statuses/{key}")))
                .send()
                .await
                .expect("statuses");
            status_and_json(resp).await
        }
    };
    let (status, body) = statuses("G%40%40doc").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"ips": ["10.5.0.1:80_true", "10.5.0.2:80_true"]})
    );
    let (_, body) = statuses("public%23%23G%40%40doc").await;
    assert_eq!(body["ips"].as_array().map(Vec::len), Some(2));
    let (_, body) = statuses("G%40%40nothing").await;
    assert_eq!(body, json!({"ips": []}));
    let (status, body) = statuses("G%40%40").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], 20002);
    assert!(
        body["data"].as_str().unwrap_or_default().contains("key"),
        "{body}"
    );

    // Health through both paths, visible in statuses and the instance detail; manual health
    // is taken only by a cluster without checks (NONE), as in Nacos.
    let none = s
        .client
        .put(s.url("/v1/ns/cluster"))
        .form(&[
            ("serviceName", "doc"),
            ("groupName", "G"),
            ("clusterName", "DEFAULT"),
            ("healthChecker", r#"{"type":"NONE"}"#),
        ])
        .send()
        .await
        .expect("cluster update");
    assert_eq!(none.status(), StatusCode::OK);
    let target = [
        ("serviceName", "doc"),
        ("groupName", "G"),
        ("ip", "10.5.0.2"),
        ("port", "80"),
    ];
    let with = |healthy: &'static str| {
        let mut p = target.to_vec();
        p.push(("healthy", healthy));
        p
    };
    assert_eq!(
        data(&s, Method::PUT, "/v2/ns/health/instance", &with("false")).await,
        "ok"
    );
    let (_, body) = statuses("G%40%40doc").await;
    assert_eq!(
        body,
        json!({"ips": ["10.5.0.1:80_true", "10.5.0.2:80_false"]})
    );
    let detail = data(&s, Method::GET, "/v2/ns/instance", &target).await;
    assert_eq!(detail["healthy"], false);
    assert_eq!(
        data(&s, Method::PUT, "/v2/ns/health", &with("true")).await,
        "ok"
    );
    let detail = data(&s, Method::GET, "/v2/ns/instance", &target).await;
    assert_eq!(detail["healthy"], true);

    bad(&s, Method::PUT, "/v2/ns/health", &target, 10000, "healthy").await;
    bad(
        &s,
        Method::PUT,
        "/v2/ns/health",
        &[
            ("serviceName", "doc"),
            ("groupName", "G"),
            ("ip", "10.5.0.2"),
            ("healthy", "false"),
        ],
        10000,
        "port",
    )
    .await;
    bad(
        &s,
        Method::PUT,
        "/v2/ns/health/instance",
        &[
            ("serviceName", "doc"),
            ("ip", "10.5.0.2"),
            ("port", "80"),
            ("healthy", "sure"),
        ],
        20002,
        "healthy",
    )
    .await;
    let detail = data(&s, Method::GET, "/v2/ns/instance", &target).await;
    assert_eq!(detail["healthy"], true, "bad input changed nothing");
}

#[tokio::test]
async fn catalog_instances_pages_and_filters() {
    let s = TestServer::start().await;
    for (ip, healthy, enabled) in [
        ("10.6.0.1", "true", "true"),
        ("10.6.0.2", "false", "true"),
        ("10.6.0.3", "true", "false"),
    ] {
        register(
            &s,
            &[
                ("serviceName", "cat"),
                ("ip", ip),
                ("port", "80"),
                ("healthy", healthy),
                ("enabled", enabled),
                ("ephemeral", "false"),
            ],
        )
        .await;
    }
    let path = "/v2/ns/catalog/instances";
    let page = |extra: &'static [(&'static str, &'static str)]| {
        let s = &s;
        async move {
            let mut p = vec![("serviceName", "DEFAULT_GROUP@@cat")];
            p.extend_from_slice(extra);
            data(s, Method::GET, path, &p).await
        }
    };
    let ips = |v: &Value| -> Vec<String> {
        v["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| i["ip"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let v = page(&[("pageNo", "1"), ("pageSize", "2")]).await;
    assert_eq!(v["count"], 3);
    assert_eq!(ips(&v), ["10.6.0.1", "10.6.0.2"]);
    assert_eq!(v["instances"][0]["serviceName"], "DEFAULT_GROUP@@cat");
    assert_eq!(v["instances"][0]["clusterName"], "DEFAULT");
    let v = page(&[("pageNo", "2"), ("pageSize", "2")]).await;
    assert_eq!(ips(&v), ["10.6.0.3"]);
    let v = page(&[
        ("pageNo", "1"),
        ("pageSize", "10"),
        ("healthyOnly", "false"),
    ])
    .await;
    assert_eq!(
        (v["count"].clone(), ips(&v)),
        (json!(1), vec!["10.6.0.2".to_string()])
    );
    let v = page(&[
        ("pageNo", "1"),
        ("pageSize", "10"),
        ("enabledOnly", "false"),
    ])
    .await;
    assert_eq!(ips(&v), ["10.6.0.3"]);
    // A page past the end has no `instances`, only the count.
    let v = page(&[("pageNo", "5"), ("pageSize", "10")]).await;
    assert_eq!(v, json!({"count": 3}));

    bad(
        &s,
        Method::GET,
        path,
        &[("serviceName", "cat"), ("pageSize", "10")],
        10000,
        "pageNo",
    )
    .await;
    bad(
        &s,
        Method::GET,
        path,
        &[("serviceName", "cat"), ("pageNo", "1"), ("pageSize", "ten")],
        20002,
        "pageSize",
    )
    .await;
    bad(
        &s,
        Method::GET,
        path,
        &[("pageNo", "1"), ("pageSize", "10")],
        10000,
        "serviceName",
    )
    .await;
    let (status, body) = call(
        &s,
        Method::GET,
        path,
        &[
            ("serviceName", "ghost"),
            ("pageNo", "1"),
            ("pageSize", "10"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], 21008);
}

#[tokio::test]
async fn switches_change_what_beats_answer_and_metrics_report() {
    let s = TestServer::start().await;
    for path in ["/v2/ns/operator/switches", "/v2/ns/ops/switches"] {
        let sw = data(&s, Method::GET, path, &[]).await;
        assert_eq!(sw["name"], "00-00---000-NACOS_SWITCH_DOMAIN-000---00-00");
        assert_eq!(sw["clientBeatInterval"], 5000);
        assert_eq!(sw["lightBeatEnabled"], true);
    }
    let put = |entry: &'static str, value: &'static str| {
        let s = &s;
        async move {
            data(
                s,
                Method::PUT,
                "/v2/ns/operator/switches",
                &[("entry", entry), ("value", value)],
            )
            .await
        }
    };
    assert_eq!(put("clientBeatInterval", "7000").await, "ok");
    assert_eq!(put("lightBeatEnabled", "false").await, "ok");
    assert_eq!(put("pushJavaVersion", "2.1.0").await, "ok");
    let sw = data(&s, Method::GET, "/v2/ns/operator/switches", &[]).await;
    assert_eq!(
        (
            sw["clientBeatInterval"].clone(),
            sw["lightBeatEnabled"].clone()
        ),
        (json!(7000), json!(false))
    );
    assert_eq!(sw["pushJavaVersion"], "2.1.0");
    // v1 reads and writes the same switches.
    let v1 = s
        .client
        .get(s.url("/v1/ns/operator/switches"))
        .send()
        .await
        .expect("v1 switches");
    assert_eq!(
        v1.json::<Value>().await.expect("json")["clientBeatInterval"],
        7000
    );
    let v1 = s
        .client
        .put(s.url("/v1/ns/operator/switches"))
        .form(&[("entry", "checkTimes"), ("value", "5")])
        .send()
        .await
        .expect("v1 put");
    assert_eq!(v1.text().await.expect("text"), "ok");
    assert_eq!(
        data(&s, Method::GET, "/v2/ns/ops/switches", &[]).await["checkTimes"],
        5
    );

    // A beat now hands out the new interval and flag.
    register(
        &s,
        &[("serviceName", "sw"), ("ip", "10.7.0.1"), ("port", "80")],
    )
    .await;
    let (_, body) = call(
        &s,
        Method::PUT,
        "/v2/ns/instance/beat",
        &[("serviceName", "sw"), ("ip", "10.7.0.1"), ("port", "80")],
    )
    .await;
    assert_eq!(
        body,
        json!({"clientBeatInterval": 7000, "code": 10200, "lightBeatEnabled": false})
    );

    let path = "/v2/ns/operator/switches";
    bad(
        &s,
        Method::PUT,
        path,
        &[("entry", "clientBeatInterval")],
        10000,
        "value",
    )
    .await;
    bad(&s, Method::PUT, path, &[("value", "1")], 10000, "entry").await;
    bad(
        &s,
        Method::PUT,
        path,
        &[("entry", "noSuchSwitch"), ("value", "1")],
        20002,
        "entry",
    )
    .await;
    bad(
        &s,
        Method::PUT,
        path,
        &[("entry", "clientBeatInterval"), ("value", "soon")],
        20002,
        "value",
    )
    .await;
    bad(
        &s,
        Method::PUT,
        path,
        &[("entry", "pushEnabled"), ("value", "yes")],
        20002,
        "value",
    )
    .await;
    bad(
        &s,
        Method::PUT,
        path,
        &[("entry", "name"), ("value", "x")],
        20002,
        "entry",
    )
    .await;
    assert_eq!(
        data(&s, Method::GET, path, &[]).await["clientBeatInterval"],
        7000,
        "bad input changed nothing"
    );

    for path in ["/v2/ns/operator/metrics", "/v2/ns/ops/metrics"] {
        assert_eq!(
            data(&s, Method::GET, path, &[]).await,
            json!({"status": "UP"})
        );
    }
    let m = data(
        &s,
        Method::GET,
        "/v2/ns/operator/metrics",
        &[("onlyStatus", "false")],
    )
    .await;
    assert_eq!(m["status"], "UP");
    assert_eq!(m["serviceCount"], 1);
    assert_eq!(m["instanceCount"], 1);
    assert_eq!(m["ephemeralIpPortClientCount"], 1);
    assert!(m.get("responsibleInstanceCount").is_none(), "{m}");
    assert!(m["cpu"].is_number() && m["mem"].is_number(), "{m}");
    bad(
        &s,
        Method::GET,
        "/v2/ns/operator/metrics",
        &[("onlyStatus", "maybe")],
        20002,
        "onlyStatus",
    )
    .await;
}

/// A request of the attacker test: method, path and query, form.
type Attempt = (Method, String, Vec<(&'static str, String)>);

/// `mallory` holds `rw` on namespace `dev` only: every new v2 naming write (and the reads that
/// name a key) aimed at `prod` is refused with 403 and changes nothing; the same requests on
/// `dev` pass.
#[tokio::test]
async fn a_user_of_one_namespace_is_refused_on_another() {
    let s = TestServer::start_on(Storage::Embedded, &auth_props()).await;
    let admin = init_admin(&s).await;
    create_namespaces(&s, &admin, &["dev", "prod"]).await;
    let mallory = grant_user(
        &s,
        &admin,
        ("mallory", "pw-of-mallory"),
        "dev-team",
        ("dev:*:*", "rw"),
    )
    .await;
    for ns in ["dev", "prod"] {
        admin_post(
            &s,
            &admin,
            "/v2/ns/instance",
            &[
                ("namespaceId", ns),
                ("serviceName", "api"),
                ("ip", "10.8.0.1"),
                ("port", "80"),
                ("ephemeral", "false"),
            ],
        )
        .await;
        // No health checks here (the store must change only through the requests), and
        // manual health is taken only where none run.
        let resp = s
            .client
            .put(s.url("/v1/ns/cluster"))
            .header("accessToken", &admin)
            .form(&[
                ("namespaceId", ns),
                ("serviceName", "api"),
                ("clusterName", "DEFAULT"),
                ("healthChecker", r#"{"type":"NONE"}"#),
            ])
            .send()
            .await
            .expect("cluster update");
        assert_eq!(resp.status(), 200);
    }
    let as_user = |token: &str, method: Method, path: String, form: Vec<(&'static str, String)>| {
        let req = s
            .client
            .request(method, s.url(&path))
            .header("accessToken", token.to_string())
            .form(&form);
        async move {
            let resp = req.send().await.expect("request");
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        }
    };
    let writes = |ns: &str| -> Vec<Attempt> {
        let target = |extra: &[(&'static str, &str)]| {
            let mut p = vec![
                ("namespaceId", ns.to_string()),
                ("serviceName", "api".to_string()),
                ("ip", "10.8.0.1".to_string()),
                ("port", "80".to_string()),
            ];
            p.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
            p
        };
        let batch = [
            ("metadata", "owner=mallory"),
            ("consistencyType", "persist"),
        ];
        vec![
            (Method::PUT, "/v2/ns/instance/beat".into(), target(&[])),
            (
                Method::PUT,
                "/v2/ns/instance/metadata/batch".into(),
                target(&batch),
            ),
            (
                Method::DELETE,
                "/v2/ns/instance/metadata/batch".into(),
                target(&batch),
            ),
            (
                Method::PUT,
                "/v2/ns/health".into(),
                target(&[("healthy", "false")]),
            ),
            (
                Method::PUT,
                "/v2/ns/health/instance".into(),
                target(&[("healthy", "false")]),
            ),
            (
                Method::GET,
                format!("/v2/ns/instance/statuses/{ns}%23%23DEFAULT_GROUP%40%40api"),
                vec![],
            ),
            (
                Method::GET,
                format!(
                    "/v2/ns/catalog/instances?namespaceId={ns}&serviceName=api&pageNo=1&pageSize=10"
                ),
                vec![],
            ),
        ]
    };
    let prod_state = || async {
        let detail = s
            .client
            .get(s.url("/v2/ns/instance?namespaceId=prod&serviceName=api&ip=10.8.0.1&port=80"))
            .header("accessToken", admin.as_str())
            .send()
            .await
            .expect("detail");
        let v: Value = detail.json().await.expect("json");
        (v["data"]["healthy"].clone(), v["data"]["metadata"].clone())
    };
    let before = prod_state().await;
    assert_eq!(before.0, true);
    for (method, path, form) in writes("prod") {
        let (status, body) = as_user(&mallory, method.clone(), path.clone(), form).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(!body.contains("10.8.0.1"), "{method} {path}: {body}");
    }
    // Switches name no namespace: only a grant of `naming/switches` (or admin) may change them.
    let (status, body) = as_user(
        &mallory,
        Method::PUT,
        "/v2/ns/operator/switches".into(),
        vec![
            ("entry", "clientBeatInterval".into()),
            ("value", "1".into()),
        ],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(prod_state().await, before, "prod untouched");
    assert_eq!(
        data_as(&s, &admin, "/v2/ns/operator/switches").await["clientBeatInterval"],
        5000
    );
    let (status, body) = as_user(
        &admin,
        Method::PUT,
        "/v2/ns/operator/switches".into(),
        vec![
            ("entry", "clientBeatInterval".into()),
            ("value", "6000".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "the admin may: {body}");

    // Control: the same requests on her own namespace pass.
    for (method, path, form) in writes("dev") {
        let (status, body) = as_user(&mallory, method.clone(), path.clone(), form).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
    }
}

async fn data_as(s: &TestServer, token: &str, path: &str) -> Value {
    let resp = s
        .client
        .get(s.url(path))
        .header("accessToken", token)
        .send()
        .await
        .expect("get");
    resp.json::<Value>().await.expect("json")["data"].clone()
}
