//! End-to-end: the v2 OpenAPI envelope `{code, message, data}` over real HTTP, every scenario
//! once per storage backend (`http_v2::{embedded,mysql,postgres}::<scenario>`).

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::status_and_json as json;
use crate::support::{Storage, TestServer, on_every_backend};

on_every_backend!(
    config_publish_get_delete_and_history,
    config_errors_use_v2_codes,
    namespaces_with_v2_codes,
    naming_instances_and_services,
);

async fn config_publish_get_delete_and_history(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let (status, body) = json(
        s.client
            .post(s.url("/v2/cs/config"))
            .form(&[
                ("dataId", "v2.yaml"),
                ("group", "G"),
                ("content", "a: 1"),
                ("namespaceId", "public"),
                ("type", "yaml"),
            ])
            .send()
            .await
            .expect("publish"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({"code": 0, "message": "success", "data": true})
    );

    // v1 and v2 read the same store: `public` is the default namespace.
    let v1 = s
        .client
        .get(s.url("/v1/cs/configs?dataId=v2.yaml&group=G"))
        .send()
        .await
        .expect("v1 get");
    assert_eq!(v1.text().await.expect("body"), "a: 1");
    let (_, body) = json(
        s.client
            .get(s.url("/v2/cs/config?dataId=v2.yaml&group=G"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(body["data"], "a: 1");

    s.client
        .post(s.url("/v2/cs/config"))
        .form(&[("dataId", "v2.yaml"), ("group", "G"), ("content", "a: 2")])
        .send()
        .await
        .expect("update");
    let (_, list) = json(
        s.client
            .get(s.url("/v2/cs/history/list?dataId=v2.yaml&group=G"))
            .send()
            .await
            .expect("history"),
    )
    .await;
    assert_eq!(list["code"], 0);
    assert_eq!(list["data"]["totalCount"], 2);
    let nid = list["data"]["pageItems"][0]["id"]
        .as_str()
        .expect("nid")
        .to_string();
    let (_, entry) = json(
        s.client
            .get(s.url("/v2/cs/history"))
            .query(&[("dataId", "v2.yaml"), ("group", "G"), ("nid", nid.as_str())])
            .send()
            .await
            .expect("entry"),
    )
    .await;
    assert_eq!(entry["data"]["content"], "a: 1");

    let (status, body) = json(
        s.client
            .delete(s.url("/v2/cs/config?dataId=v2.yaml&group=G"))
            .send()
            .await
            .expect("delete"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], true);
    let (status, body) = json(
        s.client
            .get(s.url("/v2/cs/config?dataId=v2.yaml&group=G"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 20004);
    assert_eq!(body["message"], "resource not found");
    assert_eq!(body["data"], "config data not exist");
}

async fn config_errors_use_v2_codes(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let (status, body) = json(
        s.client
            .get(s.url("/v2/cs/config?group=G"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 10000);
    assert!(
        body["data"].as_str().is_some_and(|d| d.contains("dataId")),
        "{body}"
    );
    let (status, body) = json(
        s.client
            .post(s.url("/v2/cs/config"))
            .form(&[("dataId", "bad id"), ("group", "G"), ("content", "c")])
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 20002);
}

async fn namespaces_with_v2_codes(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let create = |id: &'static str| {
        s.client
            .post(s.url("/v2/console/namespace"))
            .form(&[
                ("namespaceId", id),
                ("namespaceName", "Test"),
                ("namespaceDesc", "d"),
            ])
            .send()
    };
    let (status, body) = json(create("team-a").await.expect("create")).await;
    assert_eq!(
        (status, body["data"].clone()),
        (StatusCode::OK, Value::Bool(true))
    );
    let (status, body) = json(create("team-a").await.expect("create again")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], 22002);
    let (_, list) = json(
        s.client
            .get(s.url("/v2/console/namespace/list"))
            .send()
            .await
            .expect("list"),
    )
    .await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|n| n["namespace"].as_str())
        .collect();
    assert_eq!(ids, ["", "team-a"]);
    let (status, body) = json(
        s.client
            .get(s.url("/v2/console/namespace?namespaceId=nope"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 22001);
    let (status, body) = json(
        s.client
            .put(s.url("/v2/console/namespace"))
            .form(&[("namespaceId", "team-a"), ("namespaceName", "Renamed")])
            .send()
            .await
            .expect("put"),
    )
    .await;
    assert_eq!(
        (status, body["data"].clone()),
        (StatusCode::OK, Value::Bool(true))
    );
    let (_, one) = json(
        s.client
            .get(s.url("/v2/console/namespace?namespaceId=team-a"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(one["data"]["namespaceShowName"], "Renamed");
    let (status, _) = json(
        s.client
            .delete(s.url("/v2/console/namespace?namespaceId=team-a"))
            .send()
            .await
            .expect("delete"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

async fn naming_instances_and_services(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let (status, body) = json(
        s.client
            .post(s.url("/v2/ns/instance"))
            .form(&[
                ("serviceName", "orders"),
                ("groupName", "shop"),
                ("ip", "10.1.1.1"),
                ("port", "9000"),
                ("metadata", r#"{"zone":"a"}"#),
            ])
            .send()
            .await
            .expect("register"),
    )
    .await;
    assert_eq!(
        (status, body["data"].clone()),
        (StatusCode::OK, Value::from("ok"))
    );

    let (_, list) = json(
        s.client
            .get(s.url("/v2/ns/instance/list?serviceName=orders&groupName=shop"))
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!(list["code"], 0);
    assert_eq!(list["data"]["hosts"][0]["ip"], "10.1.1.1");
    assert_eq!(list["data"]["hosts"][0]["metadata"]["zone"], "a");
    // The same instance through the v1 grouped name.
    let v1: Value = s
        .client
        .get(s.url("/v1/ns/instance/list?serviceName=shop@@orders"))
        .send()
        .await
        .expect("v1 list")
        .json()
        .await
        .expect("json");
    assert_eq!(v1["hosts"][0]["port"], 9000);

    let (_, detail) = json(
        s.client
            .get(s.url("/v2/ns/instance?serviceName=orders&groupName=shop&ip=10.1.1.1&port=9000"))
            .send()
            .await
            .expect("detail"),
    )
    .await;
    assert_eq!(detail["data"]["serviceName"], "orders");
    let (status, missing) = json(
        s.client
            .get(s.url("/v2/ns/instance?serviceName=orders&groupName=shop&ip=10.1.1.2&port=9000"))
            .send()
            .await
            .expect("detail"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["code"], 21003);

    let (_, services) = json(
        s.client
            .get(s.url("/v2/ns/service/list?groupName=shop"))
            .send()
            .await
            .expect("services"),
    )
    .await;
    assert_eq!(services["data"]["count"], 1);
    assert_eq!(services["data"]["services"][0], "orders");
    let (_, svc) = json(
        s.client
            .get(s.url("/v2/ns/service?serviceName=orders&groupName=shop"))
            .send()
            .await
            .expect("service"),
    )
    .await;
    assert_eq!(
        svc["data"]["clusterMap"]["DEFAULT"]["hosts"][0]["ip"],
        "10.1.1.1"
    );
    assert_eq!(svc["data"]["ephemeral"], true);

    let (status, _) = json(
        s.client
            .delete(
                s.url("/v2/ns/instance?serviceName=orders&groupName=shop&ip=10.1.1.1&port=9000"),
            )
            .send()
            .await
            .expect("deregister"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = json(
        s.client
            .get(s.url("/v2/ns/instance/list?serviceName=orders&groupName=shop"))
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!(list["data"]["hosts"].as_array().map(Vec::len), Some(0));

    let (status, body) = json(
        s.client
            .get(s.url("/v2/ns/service?serviceName=ghost"))
            .send()
            .await
            .expect("service"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 21008);
    let (status, body) = json(
        s.client
            .post(s.url("/v2/ns/instance"))
            .form(&[("serviceName", "orders"), ("ip", "10.1.1.1")])
            .send()
            .await
            .expect("register"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["data"].as_str().is_some_and(|d| d.contains("port")),
        "{body}"
    );
}
