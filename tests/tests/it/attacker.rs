//! End-to-end, as an attacker with partial rights: `mallory` holds `rw` on namespace `dev`
//! only (`dev:*:*`, what the Nacos console grants), and tries to reach the public and `prod`
//! namespaces through every trick that once worked: repeated parameters, import and delete-by-id
//! targets, history ids, status keys, long-poll probes, gRPC listen contexts and mistyped bodies.
//! Each attempt must be refused with the protected data untouched and unread; the same
//! requests against her own namespace still work. Runs on every storage backend.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::auth::{
    admin_post, auth_props, create_namespaces, grant_user, grpc_connect, init_admin, payload, unary,
};
use crate::support::{Storage, TestServer, on_every_backend};

on_every_backend!(
    repeated_parameters_are_refused,
    import_and_delete_by_id_stay_in_the_named_namespace,
    history_by_id_belongs_to_the_authorized_key,
    naming_keys_are_the_handlers_keys,
    every_long_poll_probe_is_authorized,
    grpc_requests_are_authorized_by_their_own_fields,
);

const PUBLIC_SECRET: &str = "public-secret-content";
const PROD_SECRET: &str = "prod-secret-content";

/// The server, the admin's and mallory's tokens, and the planted configs and instances:
/// `pub.yaml` (public), `G/mine` in `prod` and in `dev`, instances of `prod/api` and
/// `public/payments`.
struct Scene {
    server: TestServer,
    admin: String,
    mallory: String,
}

async fn scene(storage: Storage) -> Scene {
    let server = TestServer::start_on(storage, &auth_props()).await;
    let s = &server;
    let admin = init_admin(s).await;
    create_namespaces(s, &admin, &["dev", "prod"]).await;
    let mallory = grant_user(
        s,
        &admin,
        ("mallory", "pw-of-mallory"),
        "dev-team",
        ("dev:*:*", "rw"),
    )
    .await;
    for (tenant, group, data_id, content) in [
        ("", "DEFAULT_GROUP", "pub.yaml", PUBLIC_SECRET),
        ("prod", "G", "mine", PROD_SECRET),
        ("dev", "G", "mine", "dev-content"),
    ] {
        admin_post(
            s,
            &admin,
            "/v1/cs/configs",
            &[
                ("tenant", tenant),
                ("group", group),
                ("dataId", data_id),
                ("content", content),
            ],
        )
        .await;
    }
    for (ns, service, ip) in [
        ("prod", "api", "10.0.0.1"),
        ("public", "payments", "10.0.0.2"),
    ] {
        admin_post(
            s,
            &admin,
            "/v1/ns/instance",
            &[
                ("namespaceId", ns),
                ("serviceName", service),
                ("ip", ip),
                ("port", "80"),
                ("ephemeral", "false"),
            ],
        )
        .await;
    }
    Scene {
        server,
        admin,
        mallory,
    }
}

impl Scene {
    /// A request as `token` with parameters in the query (and a form body when given).
    async fn call(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        token: &str,
        form: Option<&[(&str, &str)]>,
    ) -> (u16, String) {
        let s = &self.server;
        let mut req = s
            .client
            .request(method, s.url(path_and_query))
            .header("accessToken", token)
            .timeout(Duration::from_secs(10));
        if let Some(form) = form {
            req = req.form(form);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    }

    async fn get(&self, path_and_query: &str, token: &str) -> (u16, String) {
        self.call(reqwest::Method::GET, path_and_query, token, None)
            .await
    }

    /// The content of a config as the admin reads it.
    async fn content(&self, tenant: &str, group: &str, data_id: &str) -> String {
        let (status, body) = self
            .get(
                &format!("/v1/cs/configs?tenant={tenant}&group={group}&dataId={data_id}"),
                &self.admin,
            )
            .await;
        assert_eq!(status, 200, "{tenant}/{group}/{data_id}: {body}");
        body
    }

    /// The stored id of a config, from an exact search as the admin.
    async fn config_id(&self, tenant: &str, group: &str, data_id: &str) -> u64 {
        let (status, body) = self
            .get(
                &format!(
                    "/v1/cs/configs?search=accurate&tenant={tenant}&group={group}&dataId={data_id}&pageNo=1&pageSize=10"
                ),
                &self.admin,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).expect("page json");
        id_of(&page["pageItems"][0]["id"])
    }

    /// The newest history row id (`nid`) of a config.
    async fn history_nid(&self, tenant: &str, group: &str, data_id: &str) -> u64 {
        let (status, body) = self
            .get(
                &format!(
                    "/v1/cs/history?search=accurate&tenant={tenant}&group={group}&dataId={data_id}&pageNo=1&pageSize=10"
                ),
                &self.admin,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).expect("page json");
        id_of(&page["pageItems"][0]["id"])
    }

    /// The IPs of a service's instances as the admin sees them.
    async fn ips(&self, ns: &str, service: &str) -> Vec<String> {
        let (status, body) = self
            .get(
                &format!("/v1/ns/instance/list?namespaceId={ns}&serviceName={service}"),
                &self.admin,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let list: Value = serde_json::from_str(&body).expect("list json");
        list["hosts"]
            .as_array()
            .map(|hosts| {
                hosts
                    .iter()
                    .filter_map(|h| h["ip"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Ids travel as strings or numbers depending on the endpoint.
fn id_of(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().expect("numeric id"),
        other => other.as_u64().expect("an id"),
    }
}

fn refused(status: u16) -> bool {
    status == 403 || status == 400
}

async fn repeated_parameters_are_refused(storage: Storage) {
    let sc = scene(storage).await;
    let m = sc.mallory.clone();
    // Read and overwrite the public config by repeating `tenant` (blank first).
    let read = "/v1/cs/configs?tenant=&tenant=dev&dataId=pub.yaml&group=DEFAULT_GROUP";
    let (status, body) = sc.get(read, &m).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("tenant"), "names the parameter: {body}");
    assert!(!body.contains(PUBLIC_SECRET));
    let (status, body) = sc
        .call(
            reqwest::Method::POST,
            &format!("{read}&content=x"),
            &m,
            None,
        )
        .await;
    assert!(refused(status), "{status} {body}");
    // The same repetition split between the query and the form body.
    let (status, body) = sc
        .call(
            reqwest::Method::POST,
            "/v1/cs/configs?tenant=&dataId=pub.yaml&group=DEFAULT_GROUP",
            &m,
            Some(&[("tenant", "dev"), ("content", "x")]),
        )
        .await;
    assert!(refused(status), "{status} {body}");
    // v2 with `namespaceId`.
    let (status, body) = sc
        .get(
            "/v2/cs/config?namespaceId=&namespaceId=dev&dataId=pub.yaml&group=DEFAULT_GROUP",
            &m,
        )
        .await;
    assert!(refused(status), "{status} {body}");
    assert!(!body.contains(PUBLIC_SECRET));
    assert_eq!(
        sc.content("", "DEFAULT_GROUP", "pub.yaml").await,
        PUBLIC_SECRET
    );
    // Register into public/payments by repeating `namespaceId`.
    let (status, body) = sc
        .call(
            reqwest::Method::POST,
            "/v1/ns/instance?namespaceId=&namespaceId=dev&serviceName=payments&ip=6.6.6.6&port=80",
            &m,
            None,
        )
        .await;
    assert!(refused(status), "{status} {body}");
    assert_eq!(sc.ips("public", "payments").await, vec!["10.0.0.2"]);

    // Control: her own namespace works, read and write.
    let (status, body) = sc
        .call(
            reqwest::Method::POST,
            "/v1/cs/configs?tenant=dev&dataId=own&group=G&content=hers",
            &m,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = sc
        .get("/v1/cs/configs?tenant=dev&dataId=own&group=G", &m)
        .await;
    assert_eq!((status, body.as_str()), (200, "hers"));
    let (status, body) = sc
        .call(
            reqwest::Method::POST,
            "/v1/ns/instance?namespaceId=dev&serviceName=payments&ip=6.6.6.6&port=80",
            &m,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sc.ips("dev", "payments").await, vec!["6.6.6.6"]);
}

/// A multipart body with one `file` part.
fn multipart(zip: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----attacker-boundary-7d1f";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.zip\"\r\nContent-Type: application/zip\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(zip);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn import_and_delete_by_id_stay_in_the_named_namespace(storage: Storage) {
    let sc = scene(storage).await;
    let s = &sc.server;
    let m = sc.mallory.clone();
    // An export of her own namespace holds `G/mine`, the key that also exists in prod.
    let resp = s
        .client
        .get(s.url("/v1/cs/configs?export=true&tenant=dev&group=G&dataId="))
        .header("accessToken", m.as_str())
        .send()
        .await
        .expect("export");
    assert_eq!(resp.status(), 200);
    let zip = resp.bytes().await.expect("zip").to_vec();
    let import = |query: &'static str| {
        let (content_type, body) = multipart(&zip);
        s.client
            .post(s.url(query))
            .header("accessToken", m.as_str())
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let resp = import("/v1/cs/configs?import=true&policy=OVERWRITE&namespace=prod&tenant=dev")
        .await
        .expect("import");
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    assert!(refused(status), "import into prod: {status} {body}");
    assert_eq!(sc.content("prod", "G", "mine").await, PROD_SECRET);
    // Control: importing into her own namespace works.
    let resp = import("/v1/cs/configs?import=true&policy=OVERWRITE&namespace=dev")
        .await
        .expect("import");
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"code\":200"), "{body}");

    // Delete the prod config by its id while naming her own key.
    let prod_id = sc.config_id("prod", "G", "mine").await;
    let (status, body) = sc
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/cs/configs?delType=ids&ids={prod_id}&tenant=dev&group=G&dataId=mine"),
            &m,
            None,
        )
        .await;
    assert!(refused(status), "{status} {body}");
    assert_eq!(sc.content("prod", "G", "mine").await, PROD_SECRET);
    // An id of hers with a prod id smuggled after it: nothing is deleted.
    let dev_id = sc.config_id("dev", "G", "mine").await;
    let (status, body) = sc
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/cs/configs?delType=ids&ids={dev_id},{prod_id}&tenant=dev"),
            &m,
            None,
        )
        .await;
    assert!(refused(status), "{status} {body}");
    assert_eq!(sc.content("dev", "G", "mine").await, "dev-content");
    assert_eq!(sc.content("prod", "G", "mine").await, PROD_SECRET);
    // Control: her own id alone is deleted.
    let (status, body) = sc
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/cs/configs?delType=ids&ids={dev_id}&tenant=dev"),
            &m,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = sc
        .get("/v1/cs/configs?tenant=dev&group=G&dataId=mine", &sc.admin)
        .await;
    assert_eq!(status, 404);
}

async fn history_by_id_belongs_to_the_authorized_key(storage: Storage) {
    let sc = scene(storage).await;
    let m = sc.mallory.clone();
    // A second publish, so the prod config has a previous version to ask for.
    admin_post(
        &sc.server,
        &sc.admin,
        "/v1/cs/configs",
        &[
            ("tenant", "prod"),
            ("group", "G"),
            ("dataId", "mine"),
            ("content", PROD_SECRET),
        ],
    )
    .await;
    let prod_nid = sc.history_nid("prod", "G", "mine").await;
    let prod_id = sc.config_id("prod", "G", "mine").await;
    for path in [
        format!("/v1/cs/history?nid={prod_nid}&tenant=dev&group=G&dataId=mine"),
        format!("/v2/cs/history?nid={prod_nid}&namespaceId=dev&group=G&dataId=mine"),
        format!("/v1/cs/history/previous?id={prod_id}&tenant=dev&group=G&dataId=mine"),
        format!("/v2/cs/history/previous?id={prod_id}&namespaceId=dev&group=G&dataId=mine"),
        // Whole-namespace reads need rights on that namespace.
        "/v1/cs/history/configs?tenant=prod".to_string(),
        "/v2/cs/history/configs?namespaceId=prod".to_string(),
        "/v1/cs/history/configs?tenant=".to_string(),
        "/v1/cs/configs?search=blur&tenant=prod&dataId=&group=&pageNo=1&pageSize=10".to_string(),
        "/v1/cs/configs?export=true&tenant=prod".to_string(),
    ] {
        let (status, body) = sc.get(&path, &m).await;
        assert!(refused(status), "{path}: {status} {body}");
        assert!(!body.contains(PROD_SECRET) && !body.contains(PUBLIC_SECRET));
    }
    // Control: her own history by id, and her namespace's configs.
    let dev_nid = sc.history_nid("dev", "G", "mine").await;
    let (status, body) = sc
        .get(
            &format!("/v1/cs/history?nid={dev_nid}&tenant=dev&group=G&dataId=mine"),
            &m,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("dev-content"), "{body}");
    let (status, body) = sc.get("/v1/cs/history/configs?tenant=dev", &m).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("dev-content"), "{body}");
}

async fn naming_keys_are_the_handlers_keys(storage: Storage) {
    let sc = scene(storage).await;
    let m = sc.mallory.clone();
    for path in [
        // The service named in `key` is what is read, whatever `namespaceId` says.
        "/v1/ns/instance/statuses?key=prod%23%23DEFAULT_GROUP%40%40api&namespaceId=dev&serviceName=x",
        // Every namespace's service names.
        "/v1/ns/service/names",
        "/v1/ns/service/names?namespaceId=prod",
        "/v1/ns/catalog/services?namespaceId=prod&pageNo=1&pageSize=10",
        "/v1/ns/service/list?namespaceId=prod&pageNo=1&pageSize=10",
        "/v2/ns/service/list?namespaceId=prod",
    ] {
        let (status, body) = sc.get(path, &m).await;
        assert!(refused(status), "{path}: {status} {body}");
        assert!(
            !body.contains("10.0.0.1") && !body.contains("api"),
            "{body}"
        );
    }
    // An embedded group wins over `groupName` in v1; the guard reads it the same way.
    let (status, body) = sc
        .call(
            reqwest::Method::POST,
            "/v1/ns/instance?namespaceId=prod&serviceName=DEFAULT_GROUP%40%40api&groupName=dev&ip=6.6.6.6&port=80",
            &m,
            None,
        )
        .await;
    assert!(refused(status), "{status} {body}");
    assert_eq!(sc.ips("prod", "api").await, vec!["10.0.0.1"]);
    // Control.
    let (status, body) = sc
        .get(
            "/v1/ns/instance/statuses?key=dev%23%23DEFAULT_GROUP%40%40api",
            &m,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = sc.get("/v1/ns/service/names?namespaceId=dev", &m).await;
    assert_eq!(status, 200, "{body}");
}

async fn every_long_poll_probe_is_authorized(storage: Storage) {
    let sc = scene(storage).await;
    let s = &sc.server;
    let probe = |contexts: &[(&str, &str, &str)]| -> String {
        contexts
            .iter()
            .map(|(data_id, group, tenant)| {
                if tenant.is_empty() {
                    format!("{data_id}\u{2}{group}\u{2}wrong-md5\u{1}")
                } else {
                    format!("{data_id}\u{2}{group}\u{2}wrong-md5\u{2}{tenant}\u{1}")
                }
            })
            .collect()
    };
    let poll = |listening: String| {
        s.client
            .post(s.url("/v1/cs/configs/listener"))
            .header("accessToken", sc.mallory.as_str())
            .header("Long-Pulling-Timeout", "500")
            .form(&[("Listening-Configs", listening)])
            .send()
    };
    // Her own key first, a prod key after it: the whole poll is refused, nothing is reported.
    for contexts in [
        vec![("mine", "G", "prod")],
        vec![("mine", "G", "dev"), ("mine", "G", "prod")],
        vec![("mine", "G", "dev"), ("pub.yaml", "DEFAULT_GROUP", "")],
    ] {
        let resp = poll(probe(&contexts)).await.expect("poll");
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(status, 403, "{contexts:?}: {body}");
        assert!(
            !body.contains("prod") && !body.contains("pub.yaml"),
            "{body}"
        );
    }
    // Control: her own stale md5 is reported at once.
    let resp = poll(probe(&[("mine", "G", "dev")])).await.expect("poll");
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap_or_default();
    assert!(body.contains("mine"), "{body}");
}

async fn grpc_requests_are_authorized_by_their_own_fields(storage: Storage) {
    let sc = scene(storage).await;
    let (channel, _tx, _stream) = grpc_connect(&sc.server).await;
    let mut headers = HashMap::new();
    headers.insert("accessToken".to_string(), sc.mallory.clone());
    let dev_context = json!([{"dataId": "mine", "group": "G", "tenant": "dev", "md5": ""}]);
    for (type_name, body) in [
        // A write to prod carrying a listen context of hers.
        (
            "ConfigPublishRequest",
            json!({"dataId": "mine", "group": "G", "tenant": "prod", "content": "owned",
                   "configListenContexts": dev_context}),
        ),
        (
            "ConfigRemoveRequest",
            json!({"dataId": "mine", "group": "G", "tenant": "prod",
                   "configListenContexts": dev_context}),
        ),
        // Every listen context is authorized, not only the first.
        (
            "ConfigBatchListenRequest",
            json!({"listen": true, "configListenContexts": [
                {"dataId": "mine", "group": "G", "tenant": "dev", "md5": ""},
                {"dataId": "mine", "group": "G", "tenant": "prod", "md5": ""}]}),
        ),
        // A field of an unexpected type no longer widens the check to the public wildcard.
        (
            "ConfigQueryRequest",
            json!({"dataId": "pub.yaml", "group": "DEFAULT_GROUP", "tenant": "",
                   "serviceName": 0}),
        ),
        (
            "ConfigQueryRequest",
            json!({"dataId": "mine", "group": "G", "tenant": "prod", "namespace": 7}),
        ),
        (
            "ServiceQueryRequest",
            json!({"namespace": "prod", "serviceName": "api", "groupName": "DEFAULT_GROUP",
                   "tenant": 0}),
        ),
        (
            "InstanceRequest",
            json!({"namespace": "public", "serviceName": "payments", "groupName": "DEFAULT_GROUP",
                   "type": "registerInstance", "instance": {"ip": "6.6.6.6", "port": 80},
                   "dataId": []}),
        ),
    ] {
        let (t, v) = unary(&channel, payload(type_name, headers.clone(), &body)).await;
        assert_eq!(v["errorCode"], 403, "{type_name} {body}: {t} {v}");
        let text = v.to_string();
        assert!(
            !text.contains(PROD_SECRET)
                && !text.contains(PUBLIC_SECRET)
                && !text.contains("prod\""),
            "{text}"
        );
    }
    // A body that does not parse as its type is refused outright.
    let (t, v) = unary(
        &channel,
        payload(
            "ConfigQueryRequest",
            headers.clone(),
            &json!({"dataId": "mine", "group": "G", "tenant": 5}),
        ),
    )
    .await;
    assert_eq!(t, "ErrorResponse", "{v}");
    assert_ne!(v["errorCode"], 0, "{v}");
    assert_eq!(sc.content("prod", "G", "mine").await, PROD_SECRET);
    assert_eq!(
        sc.content("", "DEFAULT_GROUP", "pub.yaml").await,
        PUBLIC_SECRET
    );
    assert_eq!(sc.ips("public", "payments").await, vec!["10.0.0.2"]);
    // Control: her own namespace over gRPC.
    let (t, v) = unary(
        &channel,
        payload(
            "ConfigQueryRequest",
            headers.clone(),
            &json!({"dataId": "mine", "group": "G", "tenant": "dev"}),
        ),
    )
    .await;
    assert_eq!(v["content"], "dev-content", "{t} {v}");
    let (t, v) = unary(
        &channel,
        payload(
            "ConfigBatchListenRequest",
            headers,
            &json!({"listen": true, "configListenContexts": dev_context}),
        ),
    )
    .await;
    assert_eq!(v["errorCode"], 0, "{t} {v}");
    assert_eq!(v["changedConfigs"][0]["dataId"], "mine", "{v}");
}

/// A caller without credentials cannot make the server buffer a large body: a form is read
/// only up to the unauthenticated limit, any other body not at all.
#[tokio::test]
async fn unauthenticated_bodies_are_bounded() {
    let server = TestServer::start_on(Storage::Embedded, &auth_props()).await;
    let s = &server;
    let big = format!("content={}", "x".repeat(3 * 1024 * 1024));
    let resp = s
        .client
        .post(s.url("/v1/cs/configs?dataId=d&group=g"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 413);
    let resp = s
        .client
        .post(s.url("/v1/cs/configs?import=true&namespace=dev"))
        .header("Content-Type", "multipart/form-data; boundary=x")
        .body(vec![b'x'; 3 * 1024 * 1024])
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 403);
    // The naming switches say that auth is on.
    let sw: Value = s
        .client
        .get(s.url("/v1/ns/operator/switches"))
        .send()
        .await
        .expect("switches")
        .json()
        .await
        .expect("switches json");
    assert_eq!(sw["enableAuthentication"], true);
    // A small form still reaches the credential check.
    let resp = s
        .client
        .post(s.url("/v1/cs/configs?dataId=d&group=g"))
        .form(&[("content", "x"), ("accessToken", "garbage")])
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 403);
    assert!(
        resp.text()
            .await
            .unwrap_or_default()
            .contains("token invalid")
    );
}
