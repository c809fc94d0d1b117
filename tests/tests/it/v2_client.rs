//! End-to-end: `/v2/ns/client*`, the naming clients as operators see them: an HTTP client
//! (`ip:port#true`, registered over v1), a v1 UDP subscriber (`ip:udpPort#true`) and a gRPC
//! connection of the real `nacos-sdk` client that registers and subscribes.

use std::time::{Duration, Instant};

use nacos_sdk::api::naming::{
    NamingChangeEvent, NamingEventListener, NamingService, NamingServiceBuilder, ServiceInstance,
};
use nacos_sdk::api::props::ClientProps;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestServer;

const APP: &str = "v2-client-it";
const SERVICE: &str = "clients";
const GROUP: &str = "G";
const HTTP_CLIENT: &str = "10.3.0.2:80#true";

struct Ignore;

impl NamingEventListener for Ignore {
    fn event(&self, _event: std::sync::Arc<NamingChangeEvent>) {}
}

async fn get(s: &TestServer, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = s
        .client
        .get(s.url(path))
        .query(query)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    (status, resp.json().await.expect("json body"))
}

/// `data` of a successful v2 answer.
async fn data(s: &TestServer, path: &str, query: &[(&str, &str)]) -> Value {
    let (status, body) = get(s, path, query).await;
    assert_eq!(status, StatusCode::OK, "{path} {query:?}: {body}");
    assert_eq!(body["code"], 0, "{path} {query:?}: {body}");
    assert_eq!(body["message"], "success");
    body["data"].clone()
}

/// Poll `path` until its `data` satisfies `check`.
async fn eventually(
    s: &TestServer,
    path: &str,
    query: &[(&str, &str)],
    check: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let value = data(s, path, query).await;
        if check(&value) {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting on {path} {query:?}: {value}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn sdk_naming(s: &TestServer, cache: &tempfile::TempDir) -> NamingService {
    let props = ClientProps::new()
        .server_addr(s.server_addr())
        .remote_grpc_port(s.grpc_addr.port())
        .env_first(false)
        .cache_dir(cache.path())
        .app_name(APP)
        .naming_push_empty_protection(false);
    NamingServiceBuilder::new(props)
        .build()
        .await
        .expect("naming client builds")
}

fn service_query<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut query = vec![("serviceName", SERVICE), ("groupName", GROUP)];
    query.extend_from_slice(extra);
    query
}

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list
        .as_array()
        .expect("an array")
        .iter()
        .map(|c| c["clientId"].as_str().expect("clientId").to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn clients_of_every_kind_with_what_they_publish_and_subscribe() {
    let s = TestServer::start_with(&[("nacos.naming.push.pushTaskDelay", "50")]).await;

    // An HTTP client over v1: `10.3.0.2:80#true`.
    let resp = s
        .client
        .post(s.url("/v1/ns/instance"))
        .query(&[
            ("serviceName", SERVICE),
            ("groupName", GROUP),
            ("ip", "10.3.0.2"),
            ("port", "80"),
        ])
        .send()
        .await
        .expect("register over HTTP");
    assert_eq!(resp.text().await.expect("body"), "ok");

    // A v1 UDP subscriber: `127.0.0.1:<udpPort>#true` (the socket only has to exist).
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind udp");
    let udp_port = udp.local_addr().expect("udp addr").port().to_string();
    let udp_client = format!("127.0.0.1:{udp_port}#true");
    let resp = s
        .client
        .get(s.url("/v1/ns/instance/list"))
        .header("User-Agent", "Nacos-Java-Client:v1.4.6")
        .query(&[
            ("serviceName", "G@@clients"),
            ("udpPort", udp_port.as_str()),
            ("clientIP", "127.0.0.1"),
        ])
        .send()
        .await
        .expect("list over HTTP");
    assert_eq!(resp.status(), StatusCode::OK);

    // A gRPC connection that registers and subscribes.
    let cache = tempfile::tempdir().expect("cache dir");
    let sdk = sdk_naming(&s, &cache).await;
    sdk.register_instance(
        SERVICE.into(),
        Some(GROUP.into()),
        ServiceInstance {
            ip: "10.3.0.1".to_string(),
            port: 8080,
            ..Default::default()
        },
    )
    .await
    .expect("register over gRPC");
    sdk.subscribe(
        SERVICE.into(),
        Some(GROUP.into()),
        Vec::new(),
        std::sync::Arc::new(Ignore),
    )
    .await
    .expect("subscribe over gRPC");

    // Publishers of the service: both kinds; the gRPC one tells us the connection id.
    let path = "/v2/ns/client/service/publisher/list";
    let publishers = data(&s, path, &service_query(&[])).await;
    let grpc_entry = publishers
        .as_array()
        .expect("an array")
        .iter()
        .find(|p| p["ip"] == "10.3.0.1")
        .cloned()
        .expect("the gRPC publisher");
    let conn = grpc_entry["clientId"]
        .as_str()
        .expect("clientId")
        .to_string();
    assert!(!conn.contains('#'), "a connection id: {conn}");
    assert_eq!(grpc_entry["port"], 8080);
    let mut expected = vec![conn.clone(), HTTP_CLIENT.to_string()];
    expected.sort();
    assert_eq!(ids(&publishers), expected);
    assert!(
        publishers
            .as_array()
            .expect("an array")
            .contains(&json!({"clientId": HTTP_CLIENT, "ip": "10.3.0.2", "port": 80})),
        "{publishers}"
    );
    // Filters: ip, port, the client's kind.
    let only_http = data(&s, path, &service_query(&[("ip", "10.3.0.2")])).await;
    assert_eq!(ids(&only_http), [HTTP_CLIENT]);
    let only_grpc = data(&s, path, &service_query(&[("port", "8080")])).await;
    assert_eq!(ids(&only_grpc), [conn.as_str()]);
    let none = data(
        &s,
        path,
        &service_query(&[("ip", "10.3.0.2"), ("port", "81")]),
    )
    .await;
    assert_eq!(none, json!([]));
    let persistent = data(&s, path, &service_query(&[("ephemeral", "false")])).await;
    assert_eq!(persistent, json!([]));
    let other = data(
        &s,
        path,
        &[("serviceName", SERVICE), ("groupName", "OTHER")],
    )
    .await;
    assert_eq!(other, json!([]));

    // Subscribers of the service: the connection (once its subscription lands) and UDP.
    let path = "/v2/ns/client/service/subscriber/list";
    let subscribers = eventually(&s, path, &service_query(&[]), |v| {
        v.as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    let mut expected = vec![conn.clone(), udp_client.clone()];
    expected.sort();
    assert_eq!(ids(&subscribers), expected);
    let udp_port_number: u16 = udp_port.parse().expect("port");
    assert!(
        subscribers
            .as_array()
            .expect("an array")
            .contains(&json!({"clientId": udp_client, "ip": "127.0.0.1", "port": udp_port_number})),
        "{subscribers}"
    );
    let by_port = data(&s, path, &service_query(&[("port", udp_port.as_str())])).await;
    assert_eq!(ids(&by_port), [udp_client.as_str()]);
    let persistent = data(&s, path, &service_query(&[("ephemeral", "false")])).await;
    assert_eq!(persistent, json!([]));

    // Every client.
    let list = data(&s, "/v2/ns/client/list", &[]).await;
    let mut all: Vec<String> = list
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("an id").to_string())
        .collect();
    all.sort();
    let mut expected = vec![conn.clone(), HTTP_CLIENT.to_string(), udp_client.clone()];
    expected.sort();
    assert_eq!(all, expected);

    // Details.
    let http = data(&s, "/v2/ns/client", &[("clientId", HTTP_CLIENT)]).await;
    assert_eq!(http["clientId"], HTTP_CLIENT);
    assert_eq!(http["clientType"], "ipPort");
    assert_eq!(http["ephemeral"], true);
    assert_eq!(http["clientIp"], "10.3.0.2");
    assert_eq!(http["clientPort"], "80");
    assert!(http["lastUpdatedTime"].as_i64().is_some_and(|t| t > 0));
    assert!(http.get("connectType").is_none(), "{http}");

    let grpc = data(&s, "/v2/ns/client", &[("clientId", conn.as_str())]).await;
    assert_eq!(grpc["clientId"], conn.as_str());
    assert_eq!(grpc["clientType"], "connection");
    assert_eq!(grpc["connectType"], "grpc");
    assert_eq!(grpc["ephemeral"], true);
    assert_eq!(grpc["appName"], APP);
    assert!(
        grpc["version"].as_str().is_some_and(|v| !v.is_empty()),
        "{grpc}"
    );
    assert!(grpc["clientIp"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(
        grpc["clientPort"]
            .as_str()
            .is_some_and(|p| p.parse::<u16>().is_ok()),
        "{grpc}"
    );
    assert!(grpc["lastUpdatedTime"].as_i64().is_some_and(|t| t > 0));

    let udp_detail = data(&s, "/v2/ns/client", &[("clientId", udp_client.as_str())]).await;
    assert_eq!(udp_detail["clientType"], "ipPort");
    assert_eq!(udp_detail["clientPort"], udp_port.as_str());

    // What each client publishes.
    let path = "/v2/ns/client/publish/list";
    let published = |ip: &str, port: u16| {
        json!([{
            "namespace": "public", "group": GROUP, "serviceName": SERVICE,
            "registeredInstance": {"ip": ip, "port": port, "cluster": "DEFAULT"},
        }])
    };
    assert_eq!(
        data(&s, path, &[("clientId", HTTP_CLIENT)]).await,
        published("10.3.0.2", 80)
    );
    assert_eq!(
        data(&s, path, &[("clientId", conn.as_str())]).await,
        published("10.3.0.1", 8080)
    );
    assert_eq!(
        data(&s, path, &[("clientId", udp_client.as_str())]).await,
        json!([])
    );

    // What each client subscribes to.
    let path = "/v2/ns/client/subscribe/list";
    let grpc_subs = data(&s, path, &[("clientId", conn.as_str())]).await;
    let subs = grpc_subs.as_array().expect("an array");
    assert_eq!(subs.len(), 1, "{grpc_subs}");
    assert_eq!(subs[0]["namespace"], "public");
    assert_eq!(subs[0]["group"], GROUP);
    assert_eq!(subs[0]["serviceName"], SERVICE);
    let info = &subs[0]["subscriberInfo"];
    assert_eq!(info["app"], APP);
    assert_eq!(info["agent"], grpc["version"]);
    assert_eq!(
        info["addr"],
        format!(
            "{}:{}",
            grpc["clientIp"].as_str().unwrap_or(""),
            grpc["clientPort"].as_str().unwrap_or("")
        )
    );
    assert_eq!(
        data(&s, path, &[("clientId", udp_client.as_str())]).await,
        json!([{
            "namespace": "public", "group": GROUP, "serviceName": SERVICE,
            "subscriberInfo": {"addr": format!("127.0.0.1:{udp_port}")},
        }])
    );
    assert_eq!(
        data(&s, path, &[("clientId", HTTP_CLIENT)]).await,
        json!([])
    );

    // A closed connection is no client any more (the SDK reconnects under a new id).
    s.app().connections.unregister(&conn, "test closes it");
    eventually(&s, "/v2/ns/client/list", &[], |v| {
        v.as_array()
            .is_some_and(|a| !a.iter().any(|id| id == conn.as_str()))
    })
    .await;
}

#[tokio::test]
async fn unknown_clients_and_missing_parameters() {
    let s = TestServer::start().await;
    for path in [
        "/v2/ns/client",
        "/v2/ns/client/publish/list",
        "/v2/ns/client/subscribe/list",
    ] {
        let (status, body) = get(&s, path, &[("clientId", "10.9.9.9:1#true")]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["code"], 20004, "{path}: {body}");
        assert_eq!(body["message"], "resource not found");
        assert!(
            body["data"]
                .as_str()
                .is_some_and(|d| d.contains("10.9.9.9:1#true")),
            "{path}: {body}"
        );

        let (status, body) = get(&s, path, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["code"], 10000, "{path}: {body}");
        assert!(
            body["data"]
                .as_str()
                .is_some_and(|d| d.contains("clientId")),
            "{path}: {body}"
        );
    }
    for path in [
        "/v2/ns/client/service/publisher/list",
        "/v2/ns/client/service/subscriber/list",
    ] {
        let (status, body) = get(&s, path, &[("groupName", GROUP)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["code"], 10000, "{path}: {body}");
        assert!(
            body["data"]
                .as_str()
                .is_some_and(|d| d.contains("serviceName")),
            "{path}: {body}"
        );
        for (param, value) in [("port", "70000"), ("ephemeral", "maybe")] {
            let (status, body) = get(&s, path, &[("serviceName", SERVICE), (param, value)]).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {param}: {body}");
            assert_eq!(body["code"], 20002, "{path} {param}: {body}");
            assert!(
                body["data"].as_str().is_some_and(|d| d.contains(param)),
                "{path} {param}: {body}"
            );
        }
        // An unknown service has no clients.
        assert_eq!(
            data(&s, path, &[("serviceName", "nobody")]).await,
            json!([])
        );
    }
    assert_eq!(data(&s, "/v2/ns/client/list", &[]).await, json!([]));
}
