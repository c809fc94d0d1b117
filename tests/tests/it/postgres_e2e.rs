//! End-to-end on PostgreSQL: the server in-process with `spring.sql.init.platform=postgresql`
//! on a fresh database of the shared private server, driven over HTTP. Skipped loudly where
//! PostgreSQL is not installed.

use std::time::{Duration, Instant};

use nacos_server::Settings;
use nacos_server::cli::Mode;
use nacos_server::settings::Properties;
use nacos_tests::postgres::{PgServer, TestDatabase};
use reqwest::StatusCode;

use crate::support::TestServer;

/// A server on a fresh database (schema created at start), with shortened long polls.
async fn start(test: &str) -> Option<(TestServer, TestDatabase<'static>)> {
    let pg = PgServer::shared_or_skip(test)?;
    let db = pg.create_database();
    let mut props = db.properties(true);
    props.push((
        "nacos.config.longPolling.minHoldMs".to_string(),
        "500".to_string(),
    ));
    let pairs: Vec<(&str, &str)> = props
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let server = TestServer::start_with(&pairs).await;
    Some((server, db))
}

async fn publish(s: &TestServer, form: &[(&str, &str)]) -> String {
    let resp = s
        .client
        .post(s.url("/v1/cs/configs"))
        .form(form)
        .send()
        .await
        .expect("publish request");
    assert_eq!(resp.status(), StatusCode::OK, "publish {form:?}");
    resp.text().await.expect("body")
}

async fn get_config(s: &TestServer, query: &[(&str, &str)]) -> (StatusCode, String) {
    let resp = s
        .client
        .get(s.url("/v1/cs/configs"))
        .query(query)
        .send()
        .await
        .expect("get request");
    (resp.status(), resp.text().await.expect("body"))
}

async fn json(s: &TestServer, path: &str, query: &[(&str, &str)]) -> serde_json::Value {
    s.client
        .get(s.url(path))
        .query(query)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json body")
}

/// The rows of a table, counted in the database itself (the data really is in PostgreSQL).
fn count(db: &TestDatabase<'_>, table_and_filter: &str) -> i64 {
    db.psql(&format!("SELECT count(*) FROM {table_and_filter}"))
        .expect("count rows")
        .parse()
        .expect("a number")
}

#[tokio::test]
async fn seed_commands_on_postgres() {
    let Some((s, db)) = start("postgres_e2e::seed_commands_on_postgres").await else {
        return;
    };
    // The quick-start's commands.
    let resp = s
        .client
        .post(s.url("/v1/ns/instance?serviceName=nacos.naming.serviceName&ip=20.18.7.10&port=8080"))
        .send()
        .await
        .expect("register");
    assert_eq!(resp.text().await.expect("body"), "ok");
    let list = json(
        &s,
        "/v1/ns/instance/list",
        &[("serviceName", "nacos.naming.serviceName")],
    )
    .await;
    assert_eq!(list["hosts"][0]["ip"], "20.18.7.10");
    let resp = s
        .client
        .post(s.url("/v1/cs/configs?dataId=nacos.cfg.dataId&group=test&content=helloWorld"))
        .send()
        .await
        .expect("publish");
    assert_eq!(resp.text().await.expect("body"), "true");
    let (status, body) = get_config(&s, &[("dataId", "nacos.cfg.dataId"), ("group", "test")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "helloWorld");
    assert_eq!(
        count(
            &db,
            "config_info WHERE data_id = 'nacos.cfg.dataId' AND group_id = 'test' AND tenant_id = ''"
        ),
        1,
        "stored in config_info with tenant_id ''"
    );
    assert_eq!(
        db.psql("SELECT md5 FROM config_info WHERE data_id = 'nacos.cfg.dataId'")
            .expect("md5"),
        nacos_core::md5_hex("helloWorld")
    );
    assert_eq!(
        count(&db, "naming_instance"),
        0,
        "ephemeral instances never reach the database"
    );
    let resp = s
        .client
        .delete(s.url("/v1/cs/configs"))
        .query(&[("dataId", "nacos.cfg.dataId"), ("group", "test")])
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.text().await.expect("body"), "true");
    let (status, _) = get_config(&s, &[("dataId", "nacos.cfg.dataId"), ("group", "test")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    drop(s);
}

#[tokio::test]
async fn history_in_his_config_info() {
    let Some((s, db)) = start("postgres_e2e::history_in_his_config_info").await else {
        return;
    };
    for content in ["one", "two", "three"] {
        publish(&s, &[("dataId", "h"), ("group", "G"), ("content", content)]).await;
    }
    let page = json(
        &s,
        "/v1/cs/history",
        &[("search", "accurate"), ("dataId", "h"), ("group", "G")],
    )
    .await;
    assert_eq!(page["totalCount"], 3);
    let items = page["pageItems"].as_array().expect("items");
    let ops: Vec<&str> = items.iter().filter_map(|i| i["opType"].as_str()).collect();
    assert_eq!(ops, ["U", "U", "I"]);
    let newest = items[0]["id"].as_str().expect("nid").to_string();
    let detail = json(
        &s,
        "/v1/cs/history",
        &[("nid", newest.as_str()), ("dataId", "h"), ("group", "G")],
    )
    .await;
    assert_eq!(detail["content"], "two", "U holds the previous content");
    let all = json(
        &s,
        "/v1/cs/configs",
        &[("show", "all"), ("dataId", "h"), ("group", "G")],
    )
    .await;
    let id = all["id"].as_str().expect("id").to_string();
    let previous = json(
        &s,
        "/v1/cs/history/previous",
        &[("id", id.as_str()), ("dataId", "h"), ("group", "G")],
    )
    .await;
    assert_eq!(previous["content"], "two");
    // Nacos's layout: I rows carry id 0, U rows the config id and the previous content.
    assert_eq!(
        db.psql("SELECT op_type || ':' || id || ':' || content FROM his_config_info ORDER BY nid")
            .expect("rows"),
        format!("I:0:one\nU:{id}:one\nU:{id}:two")
    );
    let resp = s
        .client
        .delete(s.url("/v1/cs/configs"))
        .query(&[("dataId", "h"), ("group", "G")])
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.text().await.expect("body"), "true");
    let page = json(
        &s,
        "/v1/cs/history",
        &[("search", "accurate"), ("dataId", "h"), ("group", "G")],
    )
    .await;
    assert_eq!(page["totalCount"], 4);
    assert_eq!(page["pageItems"][0]["opType"], "D");
    assert_eq!(count(&db, "config_tags_relation"), 0);
    drop(s);
}

#[tokio::test]
async fn long_poll_wakes_on_publish() {
    let Some((s, _db)) = start("postgres_e2e::long_poll_wakes_on_publish").await else {
        return;
    };
    publish(&s, &[("dataId", "lp"), ("group", "G"), ("content", "v1")]).await;
    let md5 = nacos_core::md5_hex("v1");
    let client = s.client.clone();
    let url = s.url("/v1/cs/configs/listener");
    let body = format!("lp\u{2}G\u{2}{md5}\u{1}");
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
    assert!(!waiter.is_finished(), "up to date: the listener is held");
    publish(&s, &[("dataId", "lp"), ("group", "G"), ("content", "v2")]).await;
    let (elapsed, body) = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("woken in time")
        .expect("task");
    assert_eq!(body, "lp%02G%01\n");
    assert!(elapsed < Duration::from_secs(10), "held {elapsed:?}");
    drop(s);
}

#[tokio::test]
async fn namespaces_isolate_configs() {
    let Some((s, db)) = start("postgres_e2e::namespaces_isolate_configs").await else {
        return;
    };
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
    assert_eq!(
        db.psql("SELECT kp || ':' || tenant_id || ':' || tenant_name FROM tenant_info")
            .expect("row"),
        "1:dev:Development",
        "Nacos's tenant_info layout"
    );
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
    assert_eq!(
        get_config(&s, &[("dataId", "same"), ("group", "G")])
            .await
            .1,
        "public-one"
    );
    assert_eq!(
        get_config(&s, &[("dataId", "same"), ("group", "G"), ("tenant", "dev")])
            .await
            .1,
        "dev-one"
    );
    let (status, _) = get_config(
        &s,
        &[("dataId", "same"), ("group", "G"), ("tenant", "other")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let dup = s
        .client
        .post(s.url("/v1/console/namespaces"))
        .form(&[("customNamespaceId", "dev"), ("namespaceName", "again")])
        .send()
        .await
        .expect("dup");
    assert_eq!(dup.status(), StatusCode::CONFLICT);
    drop(s);
}

#[tokio::test]
async fn restart_keeps_configs_namespaces_and_persistent_instances() {
    let Some((s, db)) = start("postgres_e2e::restart").await else {
        return;
    };
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
    let register = |form: Vec<(&'static str, &'static str)>| {
        let client = s.client.clone();
        let url = s.url("/v1/ns/instance");
        async move {
            let resp = client.post(url).form(&form).send().await.expect("register");
            assert_eq!(resp.text().await.expect("body"), "ok", "{form:?}");
        }
    };
    register(vec![
        ("serviceName", "durable"),
        ("ip", "10.5.0.1"),
        ("port", "81"),
        ("ephemeral", "false"),
        ("weight", "4"),
        ("metadata", "role=db"),
    ])
    .await;
    register(vec![
        ("serviceName", "fleeting"),
        ("ip", "10.5.0.3"),
        ("port", "83"),
    ])
    .await;
    assert_eq!(count(&db, "naming_instance"), 1, "only the persistent one");

    let s = s.restart().await;
    let (status, body) = get_config(&s, &[("dataId", "persist"), ("group", "G")]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "kept"));
    let list = json(&s, "/v1/console/namespaces", &[]).await;
    assert_eq!(list["data"][1]["namespace"], "keep");
    let durable = json(&s, "/v1/ns/instance/list", &[("serviceName", "durable")]).await;
    let hosts = durable["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 1, "{durable}");
    assert_eq!(hosts[0]["ip"], "10.5.0.1");
    assert_eq!(hosts[0]["ephemeral"], false);
    assert_eq!(hosts[0]["weight"], 4.0);
    assert_eq!(hosts[0]["metadata"], serde_json::json!({"role": "db"}));
    let fleeting = json(&s, "/v1/ns/instance/list", &[("serviceName", "fleeting")]).await;
    assert!(
        fleeting["hosts"].as_array().is_none_or(|h| h.is_empty()),
        "ephemeral data is not kept: {fleeting}"
    );
    drop(s);
}

/// Without `nacos.db.schema.init` an empty database stops the server at start, naming a
/// missing table; with it the same database starts.
#[tokio::test]
async fn missing_tables_stop_the_start() {
    let Some(pg) = PgServer::shared_or_skip("postgres_e2e::missing_tables") else {
        return;
    };
    let db = pg.create_database();
    let home = tempfile::tempdir().expect("home");
    let settings = |init: bool| {
        Settings::from_properties(
            Mode::Standalone,
            home.path().to_path_buf(),
            Properties::from_pairs(db.properties(init)),
        )
        .expect("settings")
    };
    let err = nacos_server::App::open(settings(false))
        .await
        .expect_err("no tables");
    let message = err.to_string();
    assert!(message.contains("config_info"), "{message}");
    assert!(message.contains("nacos.db.schema.init"), "{message}");
    assert!(
        !message.contains(nacos_tests::postgres::PASSWORD),
        "{message}"
    );
    let app = nacos_server::App::open(settings(true))
        .await
        .expect("init creates the tables");
    drop(app);
}

/// With auth on, users and roles live in PostgreSQL's `users` / `roles` tables (BCrypt
/// hashes) and survive a restart.
#[tokio::test]
async fn users_live_in_postgres_and_survive_restart() {
    let Some(pg) = PgServer::shared_or_skip("postgres_e2e::users") else {
        return;
    };
    let db = pg.create_database();
    let mut props = db.properties(true);
    for (k, v) in [
        ("nacos.core.auth.enabled", "true"),
        (
            "nacos.core.auth.plugin.nacos.token.secret.key",
            "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5YWI=",
        ),
        ("nacos.core.auth.server.identity.key", "X-Peer-Identity"),
        ("nacos.core.auth.server.identity.value", "peer-secret-value"),
    ] {
        props.push((k.to_string(), v.to_string()));
    }
    let pairs: Vec<(&str, &str)> = props
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let s = TestServer::start_with(&pairs).await;
    let login = async |s: &TestServer, user: &str, password: &str| -> reqwest::Response {
        s.client
            .post(s.url(&format!("/v1/auth/users/login?username={user}")))
            .form(&[("password", password)])
            .send()
            .await
            .expect("login request")
    };
    let resp = s
        .client
        .post(s.url("/v1/auth/users/admin"))
        .form(&[("password", "admin-pass-1")])
        .send()
        .await
        .expect("init admin");
    assert_eq!(resp.status(), StatusCode::OK);
    let token: serde_json::Value = login(&s, "nacos", "admin-pass-1")
        .await
        .json()
        .await
        .expect("login json");
    let token = token["accessToken"].as_str().expect("token").to_string();
    let resp = s
        .client
        .post(s.url("/v1/auth/users"))
        .header("accessToken", &token)
        .form(&[("username", "alice"), ("password", "pw-of-alice")])
        .send()
        .await
        .expect("create user");
    assert_eq!(resp.status(), StatusCode::OK);
    let hash = db
        .psql("SELECT password FROM users WHERE username = 'alice'")
        .expect("users row");
    assert!(hash.starts_with("$2"), "a BCrypt hash is stored: {hash}");
    assert_eq!(
        db.psql("SELECT role FROM roles WHERE username = 'nacos'")
            .expect("roles row"),
        "ROLE_ADMIN"
    );

    let s = s.restart().await;
    assert_eq!(
        login(&s, "alice", "pw-of-alice").await.status(),
        StatusCode::OK,
        "the user survives a restart"
    );
    assert_ne!(
        login(&s, "alice", "wrong").await.status(),
        StatusCode::OK,
        "a wrong password is refused"
    );
    drop(s);
}
