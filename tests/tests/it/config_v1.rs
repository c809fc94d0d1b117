//! End-to-end: the v1 config OpenAPI over real HTTP against an in-process server.
//! The scenarios listed in `on_every_backend!` run once per storage backend
//! (`config_v1::{embedded,mysql,postgres}::<scenario>`).

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::get_config;
use crate::support::{Storage, TestServer, on_every_backend};

on_every_backend!(
    seed_commands_publish_and_get,
    missing_config_is_404_and_delete_works,
    cas_publish_checks_md5_and_rejected_write_changes_nothing,
    search_show_all_and_delete_by_ids,
    history_lists_newest_first_with_previous_content,
    beta_and_tag_variants,
    long_poll_answers_at_once_when_md5_differs,
    long_poll_wakes_on_change_in_namespace,
    long_poll_times_out_empty,
    short_poll_for_old_clients_uses_headers,
    namespaces_isolate_configs,
    data_survives_restart,
    unicode_and_large_content,
    bad_input_is_a_clear_400_and_changes_nothing,
    health_and_cluster_endpoints,
);

async fn publish(s: &TestServer, form: &[(&str, &str)]) -> reqwest::Response {
    s.client
        .post(s.url("/v1/cs/configs"))
        .form(form)
        .send()
        .await
        .expect("publish request")
}

fn md5_hex(content: &str) -> String {
    nacos_core::md5_hex(content)
}

async fn seed_commands_publish_and_get(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    // The seed's `curl -X POST ".../v1/cs/configs?dataId=nacos.cfg.dataId&group=test&content=helloWorld"`.
    let resp = s
        .client
        .post(s.url("/v1/cs/configs?dataId=nacos.cfg.dataId&group=test&content=helloWorld"))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.expect("body"), "true");

    let resp = s
        .client
        .get(s.url("/v1/cs/configs?dataId=nacos.cfg.dataId&group=test"))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert_eq!(headers["content-md5"], md5_hex("helloWorld").as_str());
    assert_eq!(headers["config-type"], "text");
    assert_eq!(headers["content-type"], "text/plain;charset=UTF-8");
    assert_eq!(headers["pragma"], "no-cache");
    assert_eq!(headers["cache-control"], "no-cache,no-store");
    assert!(headers.contains_key("last-modified"));
    assert_eq!(resp.text().await.expect("body"), "helloWorld");
}

async fn missing_config_is_404_and_delete_works(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let resp = get_config(&s, &[("dataId", "nope"), ("group", "G")]).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.text().await.expect("body"), "config data not exist\n");

    publish(
        &s,
        &[
            ("dataId", "d"),
            ("group", "G"),
            ("content", "x"),
            ("type", "json"),
        ],
    )
    .await;
    let resp = get_config(&s, &[("dataId", "d"), ("group", "G")]).await;
    assert_eq!(
        resp.headers()["content-type"],
        "application/json;charset=UTF-8"
    );
    assert_eq!(resp.headers()["config-type"], "json");

    let resp = s
        .client
        .delete(s.url("/v1/cs/configs"))
        .query(&[("dataId", "d"), ("group", "G")])
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.text().await.expect("body"), "true");
    assert_eq!(
        get_config(&s, &[("dataId", "d"), ("group", "G")])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

async fn cas_publish_checks_md5_and_rejected_write_changes_nothing(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    publish(&s, &[("dataId", "cas"), ("group", "G"), ("content", "v1")]).await;
    let bad = s
        .client
        .post(s.url("/v1/cs/configs"))
        .header("casMd5", md5_hex("other"))
        .form(&[("dataId", "cas"), ("group", "G"), ("content", "v2")])
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), StatusCode::CONFLICT);
    let body = get_config(&s, &[("dataId", "cas"), ("group", "G")])
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(body, "v1");

    let good = s
        .client
        .post(s.url("/v1/cs/configs"))
        .header("casMd5", md5_hex("v1"))
        .form(&[("dataId", "cas"), ("group", "G"), ("content", "v2")])
        .send()
        .await
        .expect("post");
    assert_eq!(good.status(), StatusCode::OK);
    let body = get_config(&s, &[("dataId", "cas"), ("group", "G")])
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(body, "v2");
}

async fn search_show_all_and_delete_by_ids(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    for (id, app) in [
        ("app-a.yaml", "alpha"),
        ("app-b.yaml", "beta"),
        ("other.txt", "alpha"),
    ] {
        let resp = publish(
            &s,
            &[
                ("dataId", id),
                ("group", "G"),
                ("content", "c"),
                ("appName", app),
                ("config_tags", "t1,t2"),
                ("desc", "d"),
            ],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let page: serde_json::Value = get_config(
        &s,
        &[
            ("search", "blur"),
            ("dataId", "app-*"),
            ("group", ""),
            ("pageNo", "1"),
            ("pageSize", "10"),
        ],
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(page["totalCount"], 2);
    assert_eq!(page["pageNumber"], 1);
    assert_eq!(page["pagesAvailable"], 1);
    let first = &page["pageItems"][0];
    assert_eq!(first["dataId"], "app-a.yaml");
    assert!(
        first["id"].is_string(),
        "ids are strings on the wire: {first}"
    );
    assert_eq!(first["md5"], md5_hex("c"));

    let page: serde_json::Value = get_config(
        &s,
        &[
            ("search", "accurate"),
            ("dataId", ""),
            ("group", "G"),
            ("appName", "alpha"),
            ("pageNo", "1"),
            ("pageSize", "1"),
        ],
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(page["totalCount"], 2);
    assert_eq!(page["pagesAvailable"], 2);
    assert_eq!(page["pageItems"].as_array().map(Vec::len), Some(1));

    let all: serde_json::Value = get_config(
        &s,
        &[("show", "all"), ("dataId", "app-a.yaml"), ("group", "G")],
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(all["configTags"], "t1,t2");
    assert_eq!(all["desc"], "d");
    assert_eq!(all["appName"], "alpha");

    let ids: Vec<String> = page_ids(&s).await;
    let resp = s
        .client
        .delete(s.url("/v1/cs/configs"))
        .query(&[("delType", "ids"), ("ids", &ids.join(","))])
        .send()
        .await
        .expect("delete ids");
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["code"], 200);
    assert_eq!(body["data"], true);
    assert!(page_ids(&s).await.is_empty());
}

async fn page_ids(s: &TestServer) -> Vec<String> {
    let page: serde_json::Value = get_config(
        s,
        &[
            ("search", "accurate"),
            ("dataId", ""),
            ("group", ""),
            ("pageNo", "1"),
            ("pageSize", "100"),
        ],
    )
    .await
    .json()
    .await
    .expect("json");
    page["pageItems"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn history_lists_newest_first_with_previous_content(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    for content in ["one", "two", "three"] {
        publish(&s, &[("dataId", "h"), ("group", "G"), ("content", content)]).await;
    }
    let page: serde_json::Value = s
        .client
        .get(s.url("/v1/cs/history"))
        .query(&[("search", "accurate"), ("dataId", "h"), ("group", "G")])
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("json");
    assert_eq!(page["totalCount"], 3);
    let items = page["pageItems"].as_array().expect("items");
    let ops: Vec<&str> = items.iter().filter_map(|i| i["opType"].as_str()).collect();
    assert_eq!(ops, ["U", "U", "I"]);
    let newest = items[0]["id"].as_str().expect("nid").to_string();
    let detail: serde_json::Value = s
        .client
        .get(s.url("/v1/cs/history"))
        .query(&[("nid", newest.as_str()), ("dataId", "h"), ("group", "G")])
        .send()
        .await
        .expect("detail")
        .json()
        .await
        .expect("json");
    // A `U` row holds the content before the update.
    assert_eq!(detail["content"], "two");
    assert_eq!(detail["opType"], "U");
    assert!(
        detail["lastModifiedTime"]
            .as_str()
            .is_some_and(|t| t.ends_with("+0000"))
    );

    // Wrong key for the nid: refused.
    let wrong = s
        .client
        .get(s.url("/v1/cs/history"))
        .query(&[
            ("nid", newest.as_str()),
            ("dataId", "other"),
            ("group", "G"),
        ])
        .send()
        .await
        .expect("detail");
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);

    let all: serde_json::Value =
        get_config(&s, &[("show", "all"), ("dataId", "h"), ("group", "G")])
            .await
            .json()
            .await
            .expect("json");
    let id = all["id"].as_str().expect("id").to_string();
    let previous: serde_json::Value = s
        .client
        .get(s.url("/v1/cs/history/previous"))
        .query(&[("id", id.as_str()), ("dataId", "h"), ("group", "G")])
        .send()
        .await
        .expect("previous")
        .json()
        .await
        .expect("json");
    assert_eq!(previous["content"], "two");
}

async fn beta_and_tag_variants(storage: Storage) {
    // The test client plays a proxy on loopback that forwards for the beta address.
    let s = TestServer::start_on(
        storage,
        &[("nacos.core.auth.trusted.proxies", "127.0.0.1/32")],
    )
    .await;
    publish(
        &s,
        &[("dataId", "gray"), ("group", "G"), ("content", "formal")],
    )
    .await;
    let resp = s
        .client
        .post(s.url("/v1/cs/configs"))
        .header("betaIps", "10.9.9.9,10.9.9.8")
        .form(&[("dataId", "gray"), ("group", "G"), ("content", "beta")])
        .send()
        .await
        .expect("beta publish");
    assert_eq!(resp.status(), StatusCode::OK);

    let from_beta_ip = s
        .client
        .get(s.url("/v1/cs/configs"))
        .header("X-Forwarded-For", "10.9.9.9")
        .query(&[("dataId", "gray"), ("group", "G")])
        .send()
        .await
        .expect("get");
    assert_eq!(from_beta_ip.headers()["isbeta"], "true");
    assert_eq!(from_beta_ip.text().await.expect("body"), "beta");
    let other = get_config(&s, &[("dataId", "gray"), ("group", "G")]).await;
    assert_eq!(other.text().await.expect("body"), "formal");

    let beta: serde_json::Value =
        get_config(&s, &[("beta", "true"), ("dataId", "gray"), ("group", "G")])
            .await
            .json()
            .await
            .expect("json");
    assert_eq!(beta["data"]["betaIps"], "10.9.9.9,10.9.9.8");
    assert_eq!(beta["data"]["content"], "beta");

    publish(
        &s,
        &[
            ("dataId", "gray"),
            ("group", "G"),
            ("content", "tagged"),
            ("tag", "blue"),
        ],
    )
    .await;
    let tagged = get_config(&s, &[("dataId", "gray"), ("group", "G"), ("tag", "blue")]).await;
    assert_eq!(tagged.text().await.expect("body"), "tagged");
    let auto = s
        .client
        .get(s.url("/v1/cs/configs"))
        .header("Vipserver-Tag", "blue")
        .query(&[("dataId", "gray"), ("group", "G")])
        .send()
        .await
        .expect("get");
    assert_eq!(auto.text().await.expect("body"), "tagged");
    let missing_tag = get_config(&s, &[("dataId", "gray"), ("group", "G"), ("tag", "red")]).await;
    assert_eq!(missing_tag.status(), StatusCode::NOT_FOUND);

    let stop = s
        .client
        .delete(s.url("/v1/cs/configs"))
        .query(&[("beta", "true"), ("dataId", "gray"), ("group", "G")])
        .send()
        .await
        .expect("stop beta");
    assert_eq!(stop.status(), StatusCode::OK);
    let after = s
        .client
        .get(s.url("/v1/cs/configs"))
        .header("X-Forwarded-For", "10.9.9.9")
        .query(&[("dataId", "gray"), ("group", "G")])
        .send()
        .await
        .expect("get");
    assert_eq!(after.text().await.expect("body"), "formal");
}

fn listening(entries: &[(&str, &str, &str, &str)]) -> String {
    entries
        .iter()
        .map(|(d, g, m, t)| {
            if t.is_empty() {
                format!("{d}\u{2}{g}\u{2}{m}\u{1}")
            } else {
                format!("{d}\u{2}{g}\u{2}{m}\u{2}{t}\u{1}")
            }
        })
        .collect()
}

async fn long_poll_answers_at_once_when_md5_differs(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    publish(&s, &[("dataId", "lp"), ("group", "G"), ("content", "v1")]).await;
    let started = Instant::now();
    let resp = s
        .client
        .post(s.url("/v1/cs/configs/listener"))
        .header("Long-Pulling-Timeout", "30000")
        .form(&[("Listening-Configs", listening(&[("lp", "G", "stale", "")]))])
        .send()
        .await
        .expect("listen");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.expect("body"), "lp%02G%01\n");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Up to date, no-hangup: answers at once with nothing.
    let resp = s
        .client
        .post(s.url("/v1/cs/configs/listener"))
        .header("Long-Pulling-Timeout", "30000")
        .header("Long-Pulling-Timeout-No-Hangup", "true")
        .form(&[(
            "Listening-Configs",
            listening(&[("lp", "G", &md5_hex("v1"), "")]),
        )])
        .send()
        .await
        .expect("listen");
    assert_eq!(resp.text().await.expect("body"), "");
}

async fn long_poll_wakes_on_change_in_namespace(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    publish(
        &s,
        &[
            ("dataId", "lp"),
            ("group", "G"),
            ("content", "v1"),
            ("tenant", "ns-a"),
        ],
    )
    .await;
    let md5 = md5_hex("v1");
    let client = s.client.clone();
    let url = s.url("/v1/cs/configs/listener");
    let body = listening(&[("lp", "G", &md5, "ns-a")]);
    let waiter = tokio::spawn(async move {
        let started = Instant::now();
        let resp = client
            .post(url)
            .header("Long-Pulling-Timeout", "30000")
            .form(&[("Listening-Configs", body)])
            .send()
            .await
            .expect("listen");
        (started.elapsed(), resp.text().await.expect("body"))
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A change of the same dataId in another namespace must not wake it.
    publish(
        &s,
        &[("dataId", "lp"), ("group", "G"), ("content", "other-ns")],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiter.is_finished(),
        "a change in another namespace woke the listener"
    );
    publish(
        &s,
        &[
            ("dataId", "lp"),
            ("group", "G"),
            ("content", "v2"),
            ("tenant", "ns-a"),
        ],
    )
    .await;
    let (elapsed, body) = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken in time")
        .expect("task");
    assert_eq!(body, "lp%02G%02ns-a%01\n");
    assert!(elapsed < Duration::from_secs(5), "held {elapsed:?}");
}

async fn long_poll_times_out_empty(storage: Storage) {
    let s = TestServer::start_on(storage, &[("nacos.config.longPolling.minHoldMs", "200")]).await;
    let started = Instant::now();
    let resp = s
        .client
        .post(s.url("/v1/cs/configs/listener"))
        .header("Long-Pulling-Timeout", "700")
        .form(&[("Listening-Configs", listening(&[("absent", "G", "", "")]))])
        .send()
        .await
        .expect("listen");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.expect("body"), "");
    assert!(started.elapsed() >= Duration::from_millis(190));
}

async fn short_poll_for_old_clients_uses_headers(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    publish(&s, &[("dataId", "sp"), ("group", "G"), ("content", "v1")]).await;
    let resp = s
        .client
        .post(s.url("/v1/cs/configs/listener"))
        .header("Client-Version", "1.4.6")
        .form(&[("Listening-Configs", listening(&[("sp", "G", "", "")]))])
        .send()
        .await
        .expect("listen");
    assert_eq!(resp.headers()["probe-modify-response"], "sp:G;");
    assert_eq!(resp.headers()["probe-modify-response-new"], "sp%02G%01");
}

async fn namespaces_isolate_configs(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let create = s
        .client
        .post(s.url("/v1/console/namespaces"))
        .form(&[
            ("customNamespaceId", "dev"),
            ("namespaceName", "Development"),
            ("namespaceDesc", "d"),
        ])
        .send()
        .await
        .expect("create ns");
    assert_eq!(create.text().await.expect("body"), "true");
    publish(
        &s,
        &[
            ("dataId", "same"),
            ("group", "G"),
            ("content", "public-one"),
        ],
    )
    .await;
    publish(
        &s,
        &[
            ("dataId", "same"),
            ("group", "G"),
            ("content", "dev-one"),
            ("tenant", "dev"),
        ],
    )
    .await;
    let public = get_config(&s, &[("dataId", "same"), ("group", "G")])
        .await
        .text()
        .await
        .expect("body");
    let public_alias = get_config(
        &s,
        &[("dataId", "same"), ("group", "G"), ("tenant", "public")],
    )
    .await
    .text()
    .await
    .expect("body");
    let dev = get_config(&s, &[("dataId", "same"), ("group", "G"), ("tenant", "dev")])
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(public, "public-one");
    assert_eq!(public_alias, "public-one");
    assert_eq!(dev, "dev-one");

    let list: serde_json::Value = s
        .client
        .get(s.url("/v1/console/namespaces"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["code"], 200);
    assert_eq!(list["data"][0]["namespace"], "");
    assert_eq!(list["data"][0]["namespaceShowName"], "public");
    assert_eq!(list["data"][0]["configCount"], 1);
    assert_eq!(list["data"][1]["namespace"], "dev");
    assert_eq!(list["data"][1]["configCount"], 1);
    assert_eq!(list["data"][1]["type"], 2);

    let dup = s
        .client
        .post(s.url("/v1/console/namespaces"))
        .form(&[("customNamespaceId", "dev"), ("namespaceName", "again")])
        .send()
        .await
        .expect("dup");
    assert_eq!(dup.status(), StatusCode::CONFLICT);
    let update = s
        .client
        .put(s.url("/v1/console/namespaces"))
        .form(&[
            ("namespace", "dev"),
            ("namespaceShowName", "Dev2"),
            ("namespaceDesc", "x"),
        ])
        .send()
        .await
        .expect("update");
    assert_eq!(update.status(), StatusCode::OK);
    let one: serde_json::Value = s
        .client
        .get(s.url("/v1/console/namespaces"))
        .query(&[("show", "all"), ("namespaceId", "dev")])
        .send()
        .await
        .expect("show")
        .json()
        .await
        .expect("json");
    assert_eq!(one["namespaceShowName"], "Dev2");
    let delete = s
        .client
        .delete(s.url("/v1/console/namespaces"))
        .query(&[("namespaceId", "dev")])
        .send()
        .await
        .expect("delete");
    assert_eq!(delete.status(), StatusCode::OK);
    let exists = s
        .client
        .get(s.url("/v1/console/namespaces"))
        .query(&[
            ("checkNamespaceIdExist", "true"),
            ("customNamespaceId", "dev"),
        ])
        .send()
        .await
        .expect("check")
        .text()
        .await
        .expect("body");
    assert_eq!(exists, "false");
}

async fn data_survives_restart(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    publish(
        &s,
        &[("dataId", "persist"), ("group", "G"), ("content", "kept")],
    )
    .await;
    s.client
        .post(s.url("/v1/console/namespaces"))
        .form(&[("customNamespaceId", "keep"), ("namespaceName", "Keep")])
        .send()
        .await
        .expect("ns");
    let s = s.restart().await;
    let body = get_config(&s, &[("dataId", "persist"), ("group", "G")])
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(body, "kept");
    let list: serde_json::Value = s
        .client
        .get(s.url("/v1/console/namespaces"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["data"][1]["namespace"], "keep");
}

async fn unicode_and_large_content(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let unicode = "配置 ✓ — ünïcödé\nline2";
    assert_eq!(
        publish(&s, &[("dataId", "u"), ("group", "G"), ("content", unicode)])
            .await
            .status(),
        StatusCode::OK
    );
    let resp = get_config(&s, &[("dataId", "u"), ("group", "G")]).await;
    assert_eq!(resp.headers()["content-md5"], md5_hex(unicode).as_str());
    assert_eq!(resp.text().await.expect("body"), unicode);

    let big = "x".repeat(2 * 1024 * 1024);
    assert_eq!(
        publish(&s, &[("dataId", "big"), ("group", "G"), ("content", &big)])
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        get_config(&s, &[("dataId", "big"), ("group", "G")])
            .await
            .text()
            .await
            .expect("body")
            .len(),
        big.len()
    );

    let too_big = "y".repeat(10 * 1024 * 1024 + 1);
    let resp = publish(
        &s,
        &[("dataId", "huge"), ("group", "G"), ("content", &too_big)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.expect("body").contains("content"));
    assert_eq!(
        get_config(&s, &[("dataId", "huge"), ("group", "G")])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

async fn bad_input_is_a_clear_400_and_changes_nothing(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("group", "G"), ("content", "c")], "dataId"),
        (&[("dataId", "d"), ("content", "c")], "group"),
        (&[("dataId", "d"), ("group", "G")], "content"),
        (
            &[("dataId", "d"), ("group", "G"), ("content", "  ")],
            "content",
        ),
        (
            &[("dataId", "bad id"), ("group", "G"), ("content", "c")],
            "dataId",
        ),
        (
            &[("dataId", "数据"), ("group", "G"), ("content", "c")],
            "dataId",
        ),
        (
            &[("dataId", "d"), ("group", "G/x"), ("content", "c")],
            "group",
        ),
        (
            &[
                ("dataId", "d"),
                ("group", "G"),
                ("content", "c"),
                ("tenant", "a b"),
            ],
            "tenant",
        ),
        (
            &[
                ("dataId", "d"),
                ("group", "G"),
                ("content", "c"),
                ("config_tags", "1,2,3,4,5,6"),
            ],
            "config_tags",
        ),
    ];
    for (form, param) in cases {
        let resp = publish(&s, form).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{form:?}");
        let body = resp.text().await.expect("body");
        assert!(
            body.contains(param),
            "message for {form:?} should name {param}: {body}"
        );
    }
    assert!(
        page_ids(&s).await.is_empty(),
        "a rejected write stored something"
    );

    let resp = get_config(
        &s,
        &[
            ("search", "accurate"),
            ("dataId", ""),
            ("group", ""),
            ("pageNo", "x"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.expect("body").contains("pageNo"));
    let resp = get_config(&s, &[("search", "fuzzy"), ("dataId", ""), ("group", "")]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = s
        .client
        .get(s.url("/v1/cs/history"))
        .query(&[("nid", "-1"), ("dataId", "d"), ("group", "G")])
        .send()
        .await
        .expect("h");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = s
        .client
        .post(s.url("/v1/cs/configs/listener"))
        .form(&[("Listening-Configs", "a\u{2}b\u{1}")])
        .send()
        .await
        .expect("listen");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        resp.text()
            .await
            .expect("body")
            .contains("invalid probeModify")
    );
    let resp = s
        .client
        .get(s.url("/v1/cs/nothing-here"))
        .send()
        .await
        .expect("404");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = s
        .client
        .get(format!("http://{}/elsewhere", s.addr))
        .send()
        .await
        .expect("404");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

async fn health_and_cluster_endpoints(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let live = s
        .client
        .get(s.url("/v1/console/health/liveness"))
        .send()
        .await
        .expect("live");
    assert_eq!(live.text().await.expect("body"), "OK");
    let ready = s
        .client
        .get(s.url("/v1/console/health/readiness"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), StatusCode::OK);
    let nodes: serde_json::Value = s
        .client
        .get(s.url("/v1/core/cluster/nodes"))
        .send()
        .await
        .expect("nodes")
        .json()
        .await
        .expect("json");
    assert_eq!(nodes["code"], 200);
    assert_eq!(nodes["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(nodes["data"][0]["state"], "UP");
}
