//! End-to-end on PostgreSQL: the server in-process with `spring.sql.init.platform=postgresql`
//! on a fresh database of the shared private server, driven over HTTP, with the rows checked in
//! the database; plus start-up errors and users. Skipped loudly where PostgreSQL is not
//! installed. The HTTP/gRPC behaviour itself is covered by the shared scenarios'
//! `*::postgres::*` tests (`support::on_every_backend!`).

use std::time::Duration;

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

/// The rows Java Nacos reads, checked in the database (the HTTP behaviour itself is covered by
/// the shared scenarios' `postgres::` tests): config_info with tenant_id '' or the namespace, the
/// md5 column and datetimes; tenant_info as Nacos lays it out; only persistent instances in
/// naming_instance.
#[tokio::test]
async fn rows_as_java_nacos_reads_them() {
    let Some((s, db)) = start("postgres_e2e::rows_as_java_nacos_reads_them").await else {
        return;
    };
    publish(
        &s,
        &[
            ("dataId", "nacos.cfg.dataId"),
            ("group", "test"),
            ("content", "helloWorld"),
        ],
    )
    .await;
    assert_eq!(
        db.psql(
            "SELECT tenant_id || '|' || md5 || '|' || type || '|' || \
             (gmt_modified >= gmt_create) FROM config_info \
             WHERE data_id = 'nacos.cfg.dataId' AND group_id = 'test'"
        )
        .expect("row"),
        format!("|{}|text|true", nacos_core::md5_hex("helloWorld"))
    );
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
            ("dataId", "nacos.cfg.dataId"),
            ("group", "test"),
            ("content", "dev-one"),
            ("tenant", "dev"),
        ],
    )
    .await;
    assert_eq!(
        db.psql(
            "SELECT string_agg('[' || tenant_id || ']', ',' ORDER BY tenant_id) FROM config_info"
        )
        .expect("rows"),
        "[],[dev]"
    );
    for form in [
        vec![
            ("serviceName", "durable"),
            ("ip", "10.5.0.1"),
            ("port", "81"),
            ("ephemeral", "false"),
        ],
        vec![
            ("serviceName", "fleeting"),
            ("ip", "10.5.0.3"),
            ("port", "83"),
        ],
    ] {
        let resp = s
            .client
            .post(s.url("/v1/ns/instance"))
            .form(&form)
            .send()
            .await
            .expect("register");
        assert_eq!(resp.text().await.expect("body"), "ok", "{form:?}");
    }
    assert_eq!(
        count(&db, "naming_instance"),
        1,
        "only the persistent instance reaches the database"
    );
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

/// The primary of a streaming-replication pair killed with SIGKILL: configs no client read
/// stay servable (from the cache kept loaded, and from the hot standby for what is not cached:
/// an absent key answers 404, not 503), a long poll still answers, writes answer 503 at once
/// and readiness reports DOWN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_survive_the_primary_on_a_streaming_standby() {
    let Some(started) = PgServer::start_private() else {
        eprintln!("SKIPPED: postgresql not installed (reads_survive_the_primary)");
        return;
    };
    let primary = started.expect("start the primary");
    primary
        .psql("postgres", "CREATE DATABASE nt_ha")
        .expect("create the database");
    let standby = primary.start_standby().expect("start the standby");
    assert_eq!(
        standby
            .psql("postgres", "SELECT pg_is_in_recovery()")
            .expect("ask the standby"),
        "t"
    );
    let url = |pg: &PgServer| format!("{}?connectTimeout=2&socketTimeout=5", pg.jdbc_url("nt_ha"));
    let props = [
        ("spring.sql.init.platform", "postgresql".to_string()),
        ("db.num", "2".to_string()),
        ("db.url.0", url(&primary)),
        ("db.url.1", url(&standby)),
        ("db.user", nacos_tests::postgres::USER.to_string()),
        ("db.password", nacos_tests::postgres::PASSWORD.to_string()),
        ("db.pool.config.connectionTimeout", "1000".to_string()),
        ("nacos.db.schema.init", "true".to_string()),
        ("nacos.db.ha.checkIntervalMs", "200".to_string()),
    ];
    let pairs: Vec<(&str, &str)> = props.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = TestServer::start_with(&pairs).await;
    for i in 0..30 {
        let (id, content) = (format!("c-{i}"), format!("content {i}"));
        let form = [
            ("dataId", id.as_str()),
            ("group", "HA"),
            ("content", content.as_str()),
        ];
        assert_eq!(publish(&s, &form).await, "true");
    }
    let replayed = || {
        standby
            .psql(
                "nt_ha",
                "SELECT count(*) FROM config_info WHERE group_id = 'HA'",
            )
            .is_ok_and(|n| n == "30")
    };
    crate::helpers::until(Duration::from_secs(20), "the standby replayed", replayed).await;

    tokio::task::spawn_blocking(move || {
        primary.kill().expect("kill the primary");
        drop(primary);
    })
    .await
    .expect("kill task");

    let get = |data_id: String| {
        let request = s
            .client
            .get(s.url("/v1/cs/configs"))
            .query(&[("dataId", data_id.as_str()), ("group", "HA")])
            .timeout(Duration::from_secs(10))
            .send();
        async move {
            let resp = request.await.expect("get");
            (resp.status(), resp.text().await.expect("body"))
        }
    };
    // Not cached anywhere: only the standby can answer.
    crate::helpers::eventually(
        Duration::from_secs(20),
        "the standby answers reads",
        || async { get("never-written".to_string()).await.0 == StatusCode::NOT_FOUND },
    )
    .await;
    for i in 0..30 {
        assert_eq!(
            get(format!("c-{i}")).await,
            (StatusCode::OK, format!("content {i}")),
            "c-{i} after the primary died"
        );
    }
    let listening = "c-3\u{2}HA\u{2}stale-md5\u{1}";
    let resp = s
        .client
        .post(s.url("/v1/cs/configs/listener"))
        .header("Long-Pulling-Timeout", "3000")
        .form(&[("Listening-Configs", listening)])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("long poll");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.expect("body").contains("c-3"));

    let started = std::time::Instant::now();
    let resp = s
        .client
        .post(s.url("/v1/cs/configs"))
        .form(&[("dataId", "c-1"), ("group", "HA"), ("content", "x")])
        .send()
        .await
        .expect("publish during the outage");
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a write fails fast: {:?}",
        started.elapsed()
    );
    let resp = s
        .client
        .get(s.url("/v1/console/health/readiness"))
        .send()
        .await
        .expect("readiness");
    assert_ne!(resp.status(), StatusCode::OK);
    assert_eq!(
        get("c-1".to_string()).await.1,
        "content 1",
        "nothing changed"
    );
    drop(s);
    drop(standby);
}
