//! End-to-end on MySQL (a private MariaDB): the server in-process with
//! `spring.sql.init.platform=mysql` on a fresh database of the shared server, driven over HTTP,
//! with the rows checked in the database the way Java Nacos would read them; and the other
//! direction — a database laid out by `conf/mysql-schema.sql` and filled with raw SQL the way
//! Nacos 2.x writes it, served over HTTP; plus start-up errors and TLS. Skipped loudly where
//! MariaDB is not installed. The HTTP/gRPC behaviour itself is covered by the shared scenarios'
//! `*::mysql::*` tests (`support::on_every_backend!`).

use nacos_server::Settings;
use nacos_server::cli::Mode;
use nacos_server::settings::Properties;
use nacos_tests::mariadb::{self, MariaDb, TestDatabase};
use reqwest::StatusCode;

use crate::helpers::get_config;
use crate::support::TestServer;

/// A server with `props` on top of the database's own properties.
async fn start_on(db: &TestDatabase<'_>, init: bool, extra: &[(&str, &str)]) -> TestServer {
    let mut props = db.properties(init);
    props.push((
        "nacos.config.longPolling.minHoldMs".to_string(),
        "500".to_string(),
    ));
    props.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let pairs: Vec<(&str, &str)> = props
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    TestServer::start_with(&pairs).await
}

/// A server on a fresh database (schema created at start).
async fn start() -> Option<(TestServer, TestDatabase<'static>)> {
    let server = MariaDb::shared()?;
    let db = server.create_database();
    let s = start_on(&db, true, &[]).await;
    Some((s, db))
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

async fn body_of(s: &TestServer, query: &[(&str, &str)]) -> (StatusCode, String) {
    let resp = get_config(s, query).await;
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

/// One value (or rows, tab-separated) from the database itself.
fn query(db: &TestDatabase<'_>, sql: &str) -> String {
    db.sql(sql).expect("query the test database")
}

/// The rows Java Nacos reads, checked in the database (the HTTP behaviour itself is covered by
/// the shared scenarios' `mysql::` tests): config_info with tenant_id '' or the namespace, the
/// md5 column and datetimes; tenant_info as Nacos lays it out; only persistent instances in
/// ext_instance.
#[tokio::test]
async fn rows_as_java_nacos_reads_them() {
    let Some((s, db)) = start().await else {
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
        query(
            &db,
            "SELECT CONCAT(tenant_id, '|', md5, '|', type, '|', \
             gmt_modified >= gmt_create) FROM config_info \
             WHERE data_id = 'nacos.cfg.dataId' AND group_id = 'test'"
        ),
        format!("|{}|text|1", nacos_core::md5_hex("helloWorld"))
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
        query(
            &db,
            "SELECT CONCAT(kp, ':', tenant_id, ':', tenant_name, ':', create_source, ':', \
             gmt_create > 1600000000000) FROM tenant_info",
        ),
        "1:dev:Development:nacos:1",
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
        query(
            &db,
            "SELECT GROUP_CONCAT(CONCAT('[', tenant_id, ']') ORDER BY tenant_id) FROM config_info"
        ),
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
        query(&db, "SELECT COUNT(*) FROM ext_instance"),
        "1",
        "only the persistent instance reaches the database"
    );
    drop(s);
}

#[tokio::test]
async fn history_tags_and_beta_rows_as_nacos_writes_them() {
    let Some((s, db)) = start().await else {
        return;
    };
    publish(
        &s,
        &[
            ("dataId", "h"),
            ("group", "G"),
            ("content", "one"),
            ("config_tags", "blue,green"),
        ],
    )
    .await;
    for content in ["two", "three"] {
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
    let id = query(
        &db,
        "SELECT id FROM config_info WHERE data_id = 'h' AND group_id = 'G'",
    );
    assert_eq!(
        query(
            &db,
            "SELECT CONCAT(TRIM(op_type), ':', id, ':', content) FROM his_config_info \
             ORDER BY nid"
        ),
        format!("I:0:one\nU:{id}:one\nU:{id}:two"),
        "I rows carry id 0; U rows the config id and the previous content"
    );
    assert_eq!(
        query(
            &db,
            "SELECT CONCAT(id, ':', tag_name, ':', tag_type) FROM config_tags_relation \
             ORDER BY nid"
        ),
        format!("{id}:blue:\n{id}:green:"),
        "one row per tag, tag_type ''"
    );
    // A beta publish (header betaIps) lands in config_info_beta with a comma list.
    let resp = s
        .client
        .post(s.url("/v1/cs/configs"))
        .header("betaIps", "127.0.0.1,10.9.9.9")
        .form(&[("dataId", "h"), ("group", "G"), ("content", "beta!")])
        .send()
        .await
        .expect("beta publish");
    assert_eq!(resp.text().await.expect("body"), "true");
    assert_eq!(
        query(
            &db,
            "SELECT CONCAT(beta_ips, '|', content) FROM config_info_beta"
        ),
        "127.0.0.1,10.9.9.9|beta!"
    );
    assert_eq!(
        body_of(&s, &[("dataId", "h"), ("group", "G")]).await.1,
        "beta!",
        "this client (127.0.0.1) is in the beta list"
    );
    let resp = s
        .client
        .delete(s.url("/v1/cs/configs"))
        .query(&[("dataId", "h"), ("group", "G")])
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.text().await.expect("body"), "true");
    assert_eq!(
        query(
            &db,
            "SELECT CONCAT(TRIM(op_type), ':', content) FROM his_config_info \
             ORDER BY nid DESC LIMIT 1"
        ),
        "D:three"
    );
    assert_eq!(query(&db, "SELECT COUNT(*) FROM config_tags_relation"), "0");
    drop(s);
}

/// Without `nacos.db.schema.init` an empty database stops the server at start, naming a
/// missing table and never the password; with it the same database starts.
#[tokio::test]
async fn missing_tables_stop_the_start_on_mysql() {
    let Some(server) = MariaDb::shared() else {
        return;
    };
    let db = server.create_database();
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
    assert!(!message.contains(mariadb::PASSWORD), "{message}");
    let app = nacos_server::App::open(settings(true))
        .await
        .expect("init creates the tables");
    drop(app);
    // Init is idempotent: a second start with init on an initialised database is fine.
    let app = nacos_server::App::open(settings(true))
        .await
        .expect("init again");
    drop(app);
}

/// A wrong password fails the start with `Unavailable`-style text naming the node, not the
/// password.
#[tokio::test]
async fn bad_credentials_fail_the_start_without_leaking_them() {
    let Some(server) = MariaDb::shared() else {
        return;
    };
    let db = server.create_database();
    let home = tempfile::tempdir().expect("home");
    let mut props = db.properties(true);
    props.retain(|(k, _)| k != "db.password");
    props.push(("db.password".to_string(), "wrong-secret-123".to_string()));
    let settings = Settings::from_properties(
        Mode::Standalone,
        home.path().to_path_buf(),
        Properties::from_pairs(props),
    )
    .expect("settings");
    let err = nacos_server::App::open(settings)
        .await
        .expect_err("bad password");
    let message = err.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{}", server.port())),
        "{message}"
    );
    assert!(!message.contains("wrong-secret-123"), "{message}");
}

/// Raw SQL exactly as Nacos 2.x writes it (md5 column, datetimes in UTC, tenant_id '',
/// history I/U rows, a tenant_info row with kp '1' and ms times, tags, a beta with a comma
/// list), on a database laid out by `conf/mysql-schema.sql` run through the mysql client.
const NACOS_ROWS: &str = r#"
INSERT INTO config_info (data_id, group_id, content, md5, gmt_create, gmt_modified, src_user,
  src_ip, app_name, tenant_id, c_desc, c_use, effect, type, c_schema, encrypted_data_key)
VALUES ('legacy.yaml', 'DEFAULT_GROUP', 'a: 1', MD5('a: 1'), '2024-01-02 03:04:05',
  '2024-01-02 03:04:05', 'nacos', '10.0.0.9', '', '', 'from java', NULL, NULL, 'yaml', NULL, '');
SET @legacy = LAST_INSERT_ID();
INSERT INTO config_tags_relation (id, tag_name, tag_type, data_id, group_id, tenant_id)
VALUES (@legacy, 'old', '', 'legacy.yaml', 'DEFAULT_GROUP', '');
INSERT INTO his_config_info (id, data_id, group_id, app_name, content, md5, gmt_create,
  gmt_modified, src_user, src_ip, op_type, tenant_id, encrypted_data_key)
VALUES (0, 'legacy.yaml', 'DEFAULT_GROUP', '', 'a: 0', MD5('a: 0'), '2024-01-01 00:00:00',
  '2024-01-01 00:00:00', 'nacos', '10.0.0.9', 'I', '', ''),
  (@legacy, 'legacy.yaml', 'DEFAULT_GROUP', '', 'a: 0', MD5('a: 0'), '2024-01-02 03:04:05',
  '2024-01-02 03:04:05', 'nacos', '10.0.0.9', 'U', '', '');
INSERT INTO tenant_info (kp, tenant_id, tenant_name, tenant_desc, create_source, gmt_create,
  gmt_modified)
VALUES ('1', 'legacy-ns', 'Legacy', 'written by java', 'nacos', 1704164645000, 1704164645000);
INSERT INTO config_info (data_id, group_id, content, md5, gmt_create, gmt_modified, src_user,
  src_ip, app_name, tenant_id, type, encrypted_data_key)
VALUES ('in-ns.properties', 'G', 'k=v', MD5('k=v'), '2024-01-02 03:04:05',
  '2024-01-02 03:04:05', NULL, '10.0.0.9', NULL, 'legacy-ns', 'properties', '');
INSERT INTO config_info_beta (data_id, group_id, app_name, content, beta_ips, md5, gmt_create,
  gmt_modified, src_user, src_ip, tenant_id, encrypted_data_key)
VALUES ('beta.txt', 'G', '', 'for testers', '10.1.1.1,127.0.0.1', MD5('for testers'),
  '2024-01-02 03:04:05', '2024-01-02 03:04:05', 'nacos', '10.0.0.9', '', '');
INSERT INTO config_info (data_id, group_id, content, md5, gmt_create, gmt_modified, src_user,
  src_ip, app_name, tenant_id, type, encrypted_data_key)
VALUES ('beta.txt', 'G', 'for everyone', MD5('for everyone'), '2024-01-02 03:04:05',
  '2024-01-02 03:04:05', 'nacos', '10.0.0.9', '', '', 'text', '');
"#;

#[tokio::test]
async fn database_written_by_java_nacos_is_served() {
    let Some(server) = MariaDb::shared() else {
        return;
    };
    let db = server.create_database();
    db.sql(nacos_storage_mysql::SCHEMA)
        .expect("conf/mysql-schema.sql runs through the mysql client");
    db.sql(NACOS_ROWS).expect("rows as Nacos writes them");
    let s = start_on(&db, false, &[]).await;

    let resp = get_config(&s, &[("dataId", "legacy.yaml"), ("group", "DEFAULT_GROUP")]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert_eq!(headers["content-md5"], nacos_core::md5_hex("a: 1").as_str());
    assert_eq!(headers["config-type"], "yaml");
    assert_eq!(
        headers["last-modified"], "Tue, 02 Jan 2024 03:04:05 GMT",
        "gmt_modified is read in UTC (serverTimezone=UTC)"
    );
    assert_eq!(resp.text().await.expect("body"), "a: 1");

    let detail = json(
        &s,
        "/v1/cs/configs",
        &[
            ("show", "all"),
            ("dataId", "legacy.yaml"),
            ("group", "DEFAULT_GROUP"),
        ],
    )
    .await;
    assert_eq!(detail["configTags"], "old");
    assert_eq!(detail["desc"], "from java");

    let history = json(
        &s,
        "/v1/cs/history",
        &[
            ("search", "accurate"),
            ("dataId", "legacy.yaml"),
            ("group", "DEFAULT_GROUP"),
        ],
    )
    .await;
    assert_eq!(history["totalCount"], 2, "{history}");
    let ops: Vec<&str> = history["pageItems"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["opType"].as_str())
        .collect();
    assert_eq!(ops, ["U", "I"]);
    let nid = history["pageItems"][0]["id"]
        .as_str()
        .expect("history id")
        .to_string();
    let entry = json(
        &s,
        "/v1/cs/history",
        &[
            ("nid", nid.as_str()),
            ("dataId", "legacy.yaml"),
            ("group", "DEFAULT_GROUP"),
        ],
    )
    .await;
    assert_eq!(entry["content"], "a: 0", "U holds the previous content");

    let namespaces = json(&s, "/v1/console/namespaces", &[]).await;
    assert_eq!(namespaces["data"][1]["namespace"], "legacy-ns");
    assert_eq!(namespaces["data"][1]["namespaceShowName"], "Legacy");
    assert_eq!(namespaces["data"][1]["configCount"], 1);
    assert_eq!(
        body_of(
            &s,
            &[
                ("dataId", "in-ns.properties"),
                ("group", "G"),
                ("tenant", "legacy-ns")
            ]
        )
        .await
        .1,
        "k=v"
    );
    assert_eq!(
        body_of(&s, &[("dataId", "beta.txt"), ("group", "G")])
            .await
            .1,
        "for testers",
        "this client (127.0.0.1) is in the Java-written beta list"
    );

    // And the other way round: an update through this server reads as Java Nacos expects.
    publish(
        &s,
        &[
            ("dataId", "legacy.yaml"),
            ("group", "DEFAULT_GROUP"),
            ("content", "a: 2"),
        ],
    )
    .await;
    assert_eq!(
        query(
            &db,
            "SELECT CONCAT(TRIM(op_type), ':', id = (SELECT id FROM config_info \
             WHERE data_id = 'legacy.yaml'), ':', content) FROM his_config_info \
             ORDER BY nid DESC LIMIT 1"
        ),
        "U:1:a: 1"
    );
    assert_eq!(
        query(
            &db,
            "SELECT CONCAT(md5 = MD5(content), ':', app_name, ':', tenant_id, ':', \
             type) FROM config_info WHERE data_id = 'legacy.yaml'"
        ),
        "1:::text",
        "the md5 column matches; app_name kept; a v1 publish without type stores text, as \
         Nacos does"
    );
    drop(s);
}

/// Open a store on `database` of `server` with the given JDBC URL parameters.
async fn open_with(
    server: &MariaDb,
    database: &str,
    params: &str,
) -> Result<std::sync::Arc<nacos_storage_mysql::MysqlStore>, nacos_core::RepoError> {
    let url = format!(
        "jdbc:mysql://127.0.0.1:{}/{database}?connectTimeout=3000&{params}",
        server.port()
    );
    let props = [
        ("db.num", "1".to_string()),
        ("db.url.0", url),
        ("db.user", mariadb::USER.to_string()),
        ("db.password", mariadb::PASSWORD.to_string()),
    ];
    let get = |key: &str| {
        props
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    };
    let config =
        nacos_core::datasource::DataSourceConfig::from_properties(&get).expect("valid data source");
    let options = nacos_storage_mysql::MysqlOptions {
        schema_init: true,
        ..nacos_storage_mysql::MysqlOptions::default()
    };
    nacos_storage_mysql::MysqlStore::open(config, options).await
}

/// `useSSL` / `sslMode` reach the wire: an account that requires TLS is refused without it,
/// served with `useSSL=true`, and with `sslMode=VERIFY_IDENTITY` when the URL names the CA
/// (`serverSslCert`); `VERIFY_CA` without that CA fails (the throwaway CA is not a public root).
#[tokio::test]
async fn tls_settings_are_honoured() {
    if mariadb::available().is_none() {
        return;
    }
    let server = tokio::task::spawn_blocking(|| {
        MariaDb::start(&mariadb::ServerOptions {
            tls: true,
            ..mariadb::ServerOptions::default()
        })
    })
    .await
    .expect("start task")
    .expect("start a TLS server");
    let db = server.create_database();
    server
        .sql(
            None,
            &format!("ALTER USER '{}'@'127.0.0.1' REQUIRE SSL", mariadb::USER),
        )
        .expect("require TLS for the test account");
    let ca = server.tls_ca().expect("the CA file");

    let refused = open_with(&server, db.name(), "useSSL=false")
        .await
        .expect_err("plain text is refused");
    assert!(
        matches!(refused, nacos_core::RepoError::Unavailable(_)),
        "{refused:?}"
    );

    let store = open_with(&server, db.name(), "useSSL=true")
        .await
        .expect("useSSL=true connects over TLS");
    let repos = std::sync::Arc::clone(&store).repos();
    let key = nacos_core::ConfigKey::new("", "TLS", "secret.txt");
    repos
        .configs
        .publish(nacos_conformance::fixtures::publish(&key, "over tls"))
        .await
        .expect("publish over TLS");
    assert_eq!(
        repos
            .configs
            .get(&key)
            .await
            .expect("get")
            .map(|c| c.content),
        Some("over tls".to_string())
    );
    drop(repos);
    drop(store);

    let verified = open_with(
        &server,
        db.name(),
        &format!("sslMode=VERIFY_IDENTITY&serverSslCert={}", ca.display()),
    )
    .await
    .expect("VERIFY_IDENTITY with the CA");
    drop(verified);
    let unverified = open_with(&server, db.name(), "sslMode=VERIFY_CA")
        .await
        .expect_err("an unknown CA is refused");
    assert!(
        matches!(unverified, nacos_core::RepoError::Unavailable(_)),
        "{unverified:?}"
    );
    drop(db);
}
