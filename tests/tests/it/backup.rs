//! Whole-store backup, restore and migration through the library functions the
//! `nacos-server backup | restore | migrate` subcommands call
//! (`nacos_server::edges::tools::run`): a store holding every kind of data made over HTTP on
//! embedded storage, taken embedded → MySQL → PostgreSQL → embedded and served again; the rule
//! for non-empty targets and a re-run after an interrupted restore; the online backup of a
//! running server (and who may take it); a 100,000-config migration.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nacos_core::transfer::{Record, Table};
use nacos_core::{ConfigItem, ConfigKey, HistoryEntry, HistoryOp};
use nacos_server::Settings;
use nacos_server::cli::{Mode, Remote, Tool};
use nacos_server::edges::tools::{self, ToolError};
use nacos_server::services::transfer::{
    DumpReader, DumpWriter, Progress, Report, Silent, TransferError,
};
use nacos_server::settings::Properties;
use nacos_tests::mariadb::MariaDb;
use nacos_tests::postgres::PgServer;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::auth::{ADMIN_PW, admin_post, auth_props, create_namespaces, grant_user, init_admin};
use crate::support::{Storage, TestCluster, TestServer};

/// Progress as reported, for assertions; each phase's time goes to stderr.
#[derive(Debug, Default)]
struct Recorded {
    phases: Mutex<Vec<(String, Option<u64>)>>,
    advanced: AtomicU64,
    started: Mutex<Option<Instant>>,
}

impl Progress for Recorded {
    fn begin(&self, phase: &str, total: Option<u64>) {
        if let Ok(mut p) = self.phases.lock() {
            p.push((phase.to_string(), total));
        }
        if let Ok(mut started) = self.started.lock() {
            *started = Some(Instant::now());
        }
    }
    fn advance(&self, records: u64) {
        self.advanced.fetch_add(records, Ordering::Relaxed);
    }
    fn end(&self) {
        let phase = self
            .phases
            .lock()
            .ok()
            .and_then(|p| p.last().map(|(name, _)| name.clone()));
        if let (Ok(started), Some(phase)) = (self.started.lock(), phase)
            && let Some(at) = *started
        {
            eprintln!("phase {phase}: {:.1?}", at.elapsed());
        }
    }
}

/// Settings of an embedded store in `home`, as `-D nacos.home=<home>` gives them.
fn embedded_settings(home: &Path) -> Settings {
    Settings::from_properties(Mode::Standalone, home.to_path_buf(), Properties::default())
        .expect("valid settings")
}

/// A properties file holding `props` (the migrate tool's argument).
fn properties_file(dir: &Path, name: &str, props: &[(String, String)]) -> PathBuf {
    let path = dir.join(name);
    let text: String = props.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&path, text).expect("write properties");
    path
}

fn embedded_props(home: &Path) -> Vec<(String, String)> {
    vec![("nacos.home".to_string(), home.display().to_string())]
}

async fn backup(home: &Path, to: &Path) -> Report {
    let tool = Tool::Backup {
        to: to.to_path_buf(),
        remote: Remote::default(),
    };
    let settings = embedded_settings(home);
    let report = tools::run(&tool, || Ok(settings), &Silent)
        .await
        .expect("backup runs");
    assert!(report.verified(), "backup verification:\n{report}");
    report
}

async fn migrate(from: &Path, to: &Path, progress: &dyn Progress) -> Report {
    let tool = Tool::Migrate {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        force: false,
    };
    let report = tools::run(
        &tool,
        || unreachable!("migrate reads its own files"),
        progress,
    )
    .await
    .expect("migrate runs");
    assert!(report.verified(), "migrate verification:\n{report}");
    report
}

async fn restore(home: &Path, from: &Path, force: bool) -> Result<Report, ToolError> {
    let tool = Tool::Restore {
        from: from.to_path_buf(),
        force,
        remote: Remote::default(),
    };
    let settings = embedded_settings(home);
    tools::run(&tool, || Ok(settings), &Silent).await
}

/// Every record of a dump file.
fn read_dump(path: &Path) -> Vec<Record> {
    let file = std::fs::File::open(path).expect("open dump");
    let mut reader = DumpReader::new(file).expect("dump header");
    let mut out = Vec::new();
    while let Some(record) = reader.next_record().expect("valid dump") {
        out.push(record);
    }
    out
}

/// A dump of `records`, as bytes.
fn dump_bytes(records: &[Record]) -> Vec<u8> {
    let mut writer = DumpWriter::new(Vec::new()).expect("header");
    for r in records {
        writer.write(r).expect("write");
    }
    writer.finish().expect("finish").0
}

async fn call(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut request = s.client.request(method.clone(), s.url(path));
    request = if method == Method::GET {
        request.query(form)
    } else {
        request.form(form)
    };
    let response = request
        .header("accessToken", token)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

async fn ok(s: &TestServer, token: &str, method: Method, path: &str, form: &[(&str, &str)]) {
    let (status, body) = call(s, token, method, path, form).await;
    assert_eq!(status, StatusCode::OK, "{path} {form:?}: {body}");
}

/// Every kind of stored data, made over HTTP as clients and the console make it.
async fn populate(s: &TestServer, admin: &str) {
    create_namespaces(s, admin, &["ns-bk"]).await;
    let publish = |form: Vec<(&'static str, &'static str)>| async move {
        ok(s, admin, Method::POST, "/v1/cs/configs", &form).await;
    };
    publish(vec![
        ("dataId", "app.yaml"),
        ("group", "G1"),
        ("content", "a: 1"),
        ("type", "yaml"),
        ("desc", "the app"),
        ("appName", "shop"),
        ("config_tags", "t1,t2"),
        ("use", "u"),
        ("effect", "e"),
        ("schema", "s"),
        ("encryptedDataKey", "edk-1"),
    ])
    .await;
    publish(vec![
        ("dataId", "app.yaml"),
        ("group", "G1"),
        ("content", "a: 2"),
        ("type", "yaml"),
    ])
    .await;
    publish(vec![
        ("dataId", "ns.properties"),
        ("group", "G2"),
        ("tenant", "ns-bk"),
        ("content", "k=v\nünïcødé=✓"),
        ("type", "properties"),
    ])
    .await;
    publish(vec![
        ("dataId", "gone.txt"),
        ("group", "G1"),
        ("content", "bye"),
    ])
    .await;
    ok(
        s,
        admin,
        Method::DELETE,
        "/v1/cs/configs",
        &[("dataId", "gone.txt"), ("group", "G1")],
    )
    .await;
    // Variants: a beta (for an address the tests never read from) and a tag.
    let response = s
        .client
        .post(s.url("/v1/cs/configs"))
        .header("accessToken", admin)
        .header("betaIps", "10.9.9.9,10.9.9.8")
        .form(&[
            ("dataId", "app.yaml"),
            ("group", "G1"),
            ("content", "a: beta"),
        ])
        .send()
        .await
        .expect("beta publish");
    assert_eq!(response.status(), StatusCode::OK);
    publish(vec![
        ("dataId", "app.yaml"),
        ("group", "G1"),
        ("content", "a: blue"),
        ("tag", "blue"),
        ("encryptedDataKey", "edk-tag"),
    ])
    .await;
    grant_user(
        s,
        admin,
        ("alice", "alice-pw-1"),
        "devs",
        ("ns-bk:*:*", "rw"),
    )
    .await;
    admin_post(
        s,
        admin,
        "/v1/auth/permissions",
        &[("role", "devs"), ("resource", ":G1:*"), ("action", "r")],
    )
    .await;
    ok(
        s,
        admin,
        Method::POST,
        "/v1/ns/service",
        &[
            ("serviceName", "orders"),
            ("groupName", "G1"),
            ("protectThreshold", "0.5"),
            ("metadata", "owner=team-a,tier=1"),
            (
                "selector",
                r#"{"type":"label","expression":"CONSUMER.label.zone = PROVIDER.label.zone"}"#,
            ),
        ],
    )
    .await;
    ok(
        s,
        admin,
        Method::POST,
        "/v1/ns/service",
        &[("serviceName", "billing"), ("namespaceId", "ns-bk")],
    )
    .await;
    for (ip, cluster) in [
        ("10.1.0.2", "c1"),
        ("10.1.0.1", "c1"),
        ("10.1.0.3", "DEFAULT"),
    ] {
        ok(
            s,
            admin,
            Method::POST,
            "/v1/ns/instance",
            &[
                ("serviceName", "orders"),
                ("groupName", "G1"),
                ("ip", ip),
                ("port", "8080"),
                ("clusterName", cluster),
                ("ephemeral", "false"),
                ("weight", "2.5"),
                ("metadata", "zone=z1"),
            ],
        )
        .await;
    }
    ok(
        s,
        admin,
        Method::PUT,
        "/v1/ns/cluster",
        &[
            ("serviceName", "orders"),
            ("groupName", "G1"),
            ("clusterName", "c1"),
            ("checkPort", "9090"),
            ("useInstancePort4Check", "false"),
            ("healthChecker", r#"{"type":"HTTP"}"#),
            ("metadata", "rack=r1"),
        ],
    )
    .await;
}

/// JSON without its time fields (MySQL keeps whole seconds, so times differ after a trip
/// through it; everything else must not).
fn timeless(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| {
                    let k = k.to_ascii_lowercase();
                    !(k.contains("time") || k.contains("gmt") || k.contains("modified"))
                })
                .map(|(k, v)| (k, timeless(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(timeless).collect()),
        other => other,
    }
}

/// What the server answers about every kind of data, times left out.
async fn answers(s: &TestServer, token: &str) -> Vec<(String, String)> {
    let reads: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "/v1/cs/configs",
            vec![("dataId", "app.yaml"), ("group", "G1")],
        ),
        (
            "/v1/cs/configs",
            vec![("dataId", "app.yaml"), ("group", "G1"), ("tag", "blue")],
        ),
        (
            "/v1/cs/configs",
            vec![
                ("dataId", "ns.properties"),
                ("group", "G2"),
                ("tenant", "ns-bk"),
            ],
        ),
        (
            "/v1/cs/configs",
            vec![("dataId", "app.yaml"), ("group", "G1"), ("show", "all")],
        ),
        (
            "/v1/cs/configs",
            vec![
                ("search", "accurate"),
                ("dataId", ""),
                ("group", ""),
                ("pageNo", "1"),
                ("pageSize", "50"),
            ],
        ),
        (
            "/v1/cs/history",
            vec![
                ("search", "accurate"),
                ("dataId", "app.yaml"),
                ("group", "G1"),
                ("pageNo", "1"),
                ("pageSize", "50"),
            ],
        ),
        (
            "/v1/cs/history",
            vec![
                ("search", "accurate"),
                ("dataId", "gone.txt"),
                ("group", "G1"),
                ("pageNo", "1"),
                ("pageSize", "50"),
            ],
        ),
        ("/v1/console/namespaces", vec![]),
        ("/v1/auth/users", vec![("pageNo", "1"), ("pageSize", "50")]),
        ("/v1/auth/roles", vec![("pageNo", "1"), ("pageSize", "50")]),
        (
            "/v1/auth/permissions",
            vec![("role", "devs"), ("pageNo", "1"), ("pageSize", "50")],
        ),
        (
            "/v1/ns/service",
            vec![("serviceName", "orders"), ("groupName", "G1")],
        ),
        (
            "/v1/ns/service",
            vec![("serviceName", "billing"), ("namespaceId", "ns-bk")],
        ),
        (
            "/v1/ns/catalog/service",
            vec![("serviceName", "orders"), ("groupName", "G1")],
        ),
        (
            "/v1/ns/instance/list",
            vec![("serviceName", "orders"), ("groupName", "G1")],
        ),
    ];
    let mut out = Vec::new();
    for (path, query) in reads {
        let (status, body) = call(s, token, Method::GET, path, &query).await;
        assert_eq!(status, StatusCode::OK, "{path} {query:?}: {body}");
        let shown = match serde_json::from_str::<Value>(&body) {
            Ok(json) => timeless(json).to_string(),
            Err(_) => body,
        };
        out.push((format!("{path} {query:?}"), shown));
    }
    out
}

/// A fresh database's properties on the shared private server, kept alive by the guard.
fn mysql_database() -> (
    Vec<(String, String)>,
    nacos_tests::mariadb::TestDatabase<'static>,
) {
    let db = MariaDb::shared()
        .expect("mariadb (checked)")
        .create_database();
    (db.properties(true), db)
}

fn postgres_database() -> (
    Vec<(String, String)>,
    nacos_tests::postgres::TestDatabase<'static>,
) {
    let db = PgServer::shared()
        .expect("postgresql (checked)")
        .create_database();
    (db.properties(true), db)
}

/// The dump `records` in the form MySQL stores them (whole seconds, no tag data keys).
fn as_mysql_stores(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .cloned()
        .map(|mut r| {
            r.truncate_times_to_seconds();
            r.drop_tag_data_key();
            r
        })
        .collect()
}

/// embedded → MySQL → PostgreSQL → embedded through the migrate tool: each hop verified, the
/// final backup byte-identical to the first one in MySQL's stored form (and to backups of the
/// MySQL and PostgreSQL stores), and the restored server answering as the original did.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_trip_embedded_mysql_postgres_embedded() {
    let test = "backup::round_trip_embedded_mysql_postgres_embedded";
    if Storage::Mysql.skip(test) || Storage::Postgres.skip(test) {
        return;
    }
    let work = tempfile::tempdir().expect("work dir");
    let mut s1 = TestServer::start_with(&auth_props()).await;
    let admin = init_admin(&s1).await;
    populate(&s1, &admin).await;
    let before = answers(&s1, &admin).await;
    let home1 = s1.home().to_path_buf();
    s1.stop().await;

    let first = work.path().join("first.jsonl.gz");
    backup(&home1, &first).await;
    let records = read_dump(&first);
    for table in Table::ALL {
        assert!(
            records.iter().any(|r| r.table() == table),
            "the store holds {}",
            table.name()
        );
    }
    let ops: Vec<HistoryOp> = records
        .iter()
        .filter_map(|r| match r {
            Record::History(h) => Some(h.op),
            _ => None,
        })
        .collect();
    for op in [HistoryOp::Insert, HistoryOp::Update, HistoryOp::Delete] {
        assert!(ops.contains(&op), "history holds {op:?} rows");
    }

    let (mysql_props, _mysql) = mysql_database();
    let (pg_props, _pg) = postgres_database();
    let home2 = work.path().join("home2");
    let e1 = properties_file(work.path(), "e1.properties", &embedded_props(&home1));
    let m = properties_file(work.path(), "m.properties", &mysql_props);
    let p = properties_file(work.path(), "p.properties", &pg_props);
    let e2 = properties_file(work.path(), "e2.properties", &embedded_props(&home2));

    let to_mysql = migrate(&e1, &m, &Silent).await;
    assert!(
        to_mysql.coarsened > 0,
        "embedded times carry milliseconds MySQL does not keep:\n{to_mysql}"
    );
    eprintln!("embedded → MySQL:\n{to_mysql}");
    let to_pg = migrate(&m, &p, &Silent).await;
    assert_eq!(to_pg.coarsened, 0, "PostgreSQL keeps what MySQL held");
    let back = migrate(&p, &e2, &Silent).await;
    assert_eq!(back.coarsened, 0);
    eprintln!("PostgreSQL → embedded:\n{back}");

    let last = work.path().join("last.jsonl.gz");
    backup(&home2, &last).await;
    let last_bytes = std::fs::read(&last).expect("read last");
    assert_eq!(
        last_bytes,
        dump_bytes(&as_mysql_stores(&records)),
        "the final backup is the first one in MySQL's stored form, byte for byte"
    );
    for (name, props) in [("mysql", &m), ("postgresql", &p)] {
        let settings = Settings::from_file(props).expect("settings");
        let path = work.path().join(format!("{name}.jsonl.gz"));
        let tool = Tool::Backup {
            to: path.clone(),
            remote: Remote::default(),
        };
        let report = tools::run(&tool, || Ok(settings), &Silent)
            .await
            .expect("backup of a database");
        assert!(report.verified(), "{report}");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            last_bytes,
            "a backup of the {name} store is byte-identical"
        );
    }

    let s2 = TestServer::start_at(&home2, &auth_props()).await;
    let token = crate::auth::login(&s2, "nacos", ADMIN_PW).await;
    let after = answers(&s2, &token).await;
    assert_eq!(
        after, before,
        "the restored server answers as the original did"
    );
    let alice = crate::auth::login(&s2, "alice", "alice-pw-1").await;
    let (status, body) = call(
        &s2,
        &alice,
        Method::GET,
        "/v1/cs/configs",
        &[
            ("dataId", "ns.properties"),
            ("group", "G2"),
            ("tenant", "ns-bk"),
        ],
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "k=v\nünïcødé=✓"),
        "restored users keep their passwords and grants"
    );
    let fresh = s2
        .app()
        .repos
        .configs
        .publish(nacos_core::ConfigPublish {
            key: ConfigKey::new("", "G1", "after.txt"),
            content: "x".into(),
            ..Default::default()
        })
        .await
        .expect("publish after the restore");
    let max_id = records
        .iter()
        .filter_map(|r| match r {
            Record::Config(c) => Some(c.id),
            _ => None,
        })
        .max()
        .unwrap_or_default();
    assert!(fresh.id > max_id, "ids continue above the restored ones");
}

/// A small store: configs with history, made through the repositories of a server.
async fn small_store(home: &Path, prefix: &str, n: usize) {
    let mut s = TestServer::start_at(home, &[]).await;
    let repos = s.app().repos.clone();
    for i in 0..n {
        for version in ["v1", "v2"] {
            repos
                .configs
                .publish(nacos_core::ConfigPublish {
                    key: ConfigKey::new("", "G", format!("{prefix}-{i}")),
                    content: format!("{prefix} {i} {version}"),
                    ..Default::default()
                })
                .await
                .expect("publish");
        }
    }
    drop(repos);
    s.stop().await;
}

/// A non-empty target is refused (and left alone) unless forced; forced, the dump's rows
/// replace theirs and the verification lists the tables where the target holds more; a
/// restore interrupted after some batches converges when run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_rules_for_non_empty_and_interrupted_targets() {
    let work = tempfile::tempdir().expect("work dir");
    let (source, target, partial) = (
        work.path().join("source"),
        work.path().join("target"),
        work.path().join("partial"),
    );
    small_store(&source, "cfg", 20).await;
    let dump = work.path().join("dump.jsonl.gz");
    backup(&source, &dump).await;

    // The target holds a namespace the dump lacks.
    {
        let mut t = TestServer::start_at(&target, &[]).await;
        t.app()
            .repos
            .namespaces
            .create(nacos_core::Namespace {
                id: "local-ns".into(),
                name: "local".into(),
                desc: String::new(),
                created_ms: 1,
                modified_ms: 1,
            })
            .await
            .expect("namespace");
        t.stop().await;
    }
    let before = std::fs::read(dump_of(&target, work.path(), "t0").await).expect("read");
    match restore(&target, &dump, false).await {
        Err(ToolError::Transfer(TransferError::NotEmpty(held))) => {
            assert!(held.contains("1 namespaces"), "{held}");
        }
        other => panic!("a non-empty target must be refused: {other:?}"),
    }
    let unchanged = std::fs::read(dump_of(&target, work.path(), "t1").await).expect("read");
    assert_eq!(before, unchanged, "a refused restore changes nothing");

    let forced = restore(&target, &dump, true).await.expect("forced restore");
    let differing: Vec<Table> = forced.differences.iter().map(|d| d.table).collect();
    assert_eq!(
        differing,
        [Table::Namespaces],
        "the target keeps the namespace the dump lacks, and holds everything else:\n{forced}"
    );

    // An interrupted restore: the first half of the batches landed, then the run stopped.
    let records = read_dump(&dump);
    {
        let repos = nacos_storage_embedded::open_repos(&partial.join("data")).expect("open");
        repos
            .transfer
            .import(records[..records.len() / 2].to_vec())
            .await
            .expect("half");
    }
    match restore(&partial, &dump, false).await {
        Err(ToolError::Transfer(TransferError::NotEmpty(_))) => {}
        other => panic!("a half-restored store is not empty: {other:?}"),
    }
    let rerun = restore(&partial, &dump, true)
        .await
        .expect("re-run restore");
    assert!(rerun.verified(), "the re-run converges:\n{rerun}");
    let converged = dump_of(&partial, work.path(), "p").await;
    assert_eq!(
        std::fs::read(converged).expect("read"),
        std::fs::read(&dump).expect("read"),
        "byte-identical to the source's backup"
    );
}

async fn dump_of(home: &Path, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.jsonl.gz"));
    backup(home, &path).await;
    path
}

/// The online backup of a running embedded server, taken while writes continue, restores to
/// a consistent store; the endpoint is refused to a non-admin user and to anonymous callers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn online_backup_of_a_running_server() {
    let work = tempfile::tempdir().expect("work dir");
    let s = TestServer::start_with(&auth_props()).await;
    let admin = init_admin(&s).await;
    let bob = grant_user(&s, &admin, ("bob", "bob-pw-1"), "readers", (":*:*", "rw")).await;

    let (status, _) = call(&s, &bob, Method::GET, "/v1/console/backup", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a non-admin user");
    let anonymous = s
        .client
        .get(s.url("/v1/console/backup"))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), StatusCode::FORBIDDEN, "anonymous");
    let upload = |token: &str, body: &'static str| {
        s.client
            .post(s.url("/v1/console/restore?force=true"))
            .header("accessToken", token.to_string())
            .header("Content-Type", "application/x-ndjson")
            .body(body)
            .send()
    };
    let line =
        r#"{"t":"namespace","v":{"id":"up","name":"n","desc":"","created_ms":1,"modified_ms":1}}"#;
    assert_eq!(
        upload(&bob, line).await.expect("request").status(),
        StatusCode::FORBIDDEN,
        "a non-admin user cannot restore"
    );
    let garbage = upload(&admin, "not a record\n").await.expect("request");
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    let said = garbage.text().await.unwrap_or_default();
    assert!(said.contains("line 1"), "the 400 names the line: {said}");
    assert_eq!(
        s.app().repos.namespaces.get("up").await.expect("get"),
        None,
        "refused uploads write nothing"
    );

    // Writers: each publish writes a config and its history row in one transaction.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let repos = s.app().repos.clone();
    let mut writers = Vec::new();
    for w in 0..2 {
        let (stop, repos) = (stop.clone(), repos.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                repos
                    .configs
                    .publish(nacos_core::ConfigPublish {
                        key: ConfigKey::new("", "W", format!("w{w}-{}", n % 50)),
                        content: format!("write {n}"),
                        ..Default::default()
                    })
                    .await
                    .expect("publish while backing up");
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let file = work.path().join("online.jsonl.gz");
    let tool = Tool::Backup {
        to: file.clone(),
        remote: Remote {
            server: Some(format!("http://{}/nacos", s.server_addr())),
            username: "nacos".into(),
            password: Some(ADMIN_PW.into()),
        },
    };
    let recorded = Recorded::default();
    let report = tools::run(&tool, || unreachable!("online"), &recorded)
        .await
        .expect("online backup");
    stop.store(true, Ordering::Relaxed);
    let mut writes = 0;
    for w in writers {
        writes += w.await.expect("writer");
    }
    assert!(report.verified(), "{report}");
    assert!(
        recorded.advanced.load(Ordering::Relaxed) > 0,
        "download progress"
    );

    let wrong = Tool::Backup {
        to: work.path().join("wrong.gz"),
        remote: Remote {
            server: Some(format!("http://{}", s.server_addr())),
            username: "nacos".into(),
            password: Some("not-the-password".into()),
        },
    };
    assert!(
        matches!(
            tools::run(&wrong, || unreachable!(), &Silent).await,
            Err(ToolError::Remote(_))
        ),
        "a wrong password is refused"
    );

    let restored = work.path().join("restored");
    let report = restore(&restored, &file, false).await.expect("restore");
    assert!(report.verified(), "{report}");
    let repos = nacos_storage_embedded::open_repos(&restored.join("data")).expect("open");
    let mut exported = Vec::new();
    let mut sink = Collect(&mut exported);
    repos
        .transfer
        .export(1000, &mut sink)
        .await
        .expect("export");
    let configs: Vec<&ConfigItem> = exported
        .iter()
        .filter_map(|r| match r {
            Record::Config(c) if c.key.group == "W" => Some(c),
            _ => None,
        })
        .collect();
    let history: Vec<&HistoryEntry> = exported
        .iter()
        .filter_map(|r| match r {
            Record::History(h) if h.key.group == "W" => Some(h),
            _ => None,
        })
        .collect();
    assert!(!configs.is_empty(), "writes before the backup are in it");
    assert!(
        (history.len() as u64) < writes,
        "writes after the snapshot are not ({} of {writes})",
        history.len()
    );
    // Consistent: every config's last write is its newest history row's successor (its
    // content is the newest write of it), and every history row's config exists.
    for c in &configs {
        let rows: Vec<&&HistoryEntry> = history.iter().filter(|h| h.key == c.key).collect();
        assert!(!rows.is_empty(), "{:?} has its history", c.key);
        let inserts = rows.iter().filter(|h| h.op == HistoryOp::Insert).count();
        assert_eq!(inserts, 1, "{:?}: one insert", c.key);
        let newest = rows.iter().max_by_key(|h| h.nid).expect("rows");
        if newest.op == HistoryOp::Update {
            assert_ne!(
                newest.content, c.content,
                "U rows hold the previous content"
            );
        }
    }
    for h in &history {
        assert!(
            configs.iter().any(|c| c.key == h.key),
            "history of {:?} without its config",
            h.key
        );
    }
}

struct Collect<'a>(&'a mut Vec<Record>);

#[async_trait::async_trait]
impl nacos_core::transfer::ExportSink for Collect<'_> {
    async fn page(&mut self, _t: Table, records: Vec<Record>) -> Result<(), nacos_core::RepoError> {
        self.0.extend(records);
        Ok(())
    }
}

/// 100,000 configs (and their history) migrate from embedded storage to MySQL, reporting
/// progress, in a bounded time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_thousand_configs_migrate_to_mysql() {
    let test = "backup::hundred_thousand_configs_migrate_to_mysql";
    if Storage::Mysql.skip(test) {
        return;
    }
    const N: u64 = 100_000;
    let work = tempfile::tempdir().expect("work dir");
    let home = work.path().join("big");
    {
        // Made through the import path (a publish per config would time the group commit,
        // not the migration): configs with ids 1..N and their insert rows.
        let repos = nacos_storage_embedded::open_repos(&home.join("data")).expect("open");
        let mut batch = Vec::new();
        for id in 1..=N {
            let key = ConfigKey::new("", format!("G{}", id % 7), format!("cfg-{id:06}.yaml"));
            let content = format!("id: {id}\nvalue: {}\n", id * 31);
            let md5 = nacos_core::md5_hex(&content);
            let ms = 1_700_000_000_000 + i64::try_from(id).unwrap_or_default() * 7;
            batch.push(Record::Config(ConfigItem {
                id,
                key: key.clone(),
                content: content.clone(),
                md5: md5.clone(),
                config_type: "yaml".into(),
                app_name: "big".into(),
                created_ms: ms,
                modified_ms: ms,
                ..Default::default()
            }));
            batch.push(Record::History(HistoryEntry {
                nid: id,
                config_id: 0,
                key,
                content,
                md5,
                app_name: "big".into(),
                src_user: "loader".into(),
                src_ip: "127.0.0.1".into(),
                op: HistoryOp::Insert,
                encrypted_data_key: String::new(),
                created_ms: ms,
                modified_ms: ms,
            }));
            if batch.len() >= 5_000 {
                repos
                    .transfer
                    .import(std::mem::take(&mut batch))
                    .await
                    .expect("load");
            }
        }
        repos.transfer.import(batch).await.expect("load");
    }
    let (mysql_props, _db) = mysql_database();
    let from = properties_file(work.path(), "big.properties", &embedded_props(&home));
    let to = properties_file(work.path(), "m.properties", &mysql_props);
    let recorded = Recorded::default();
    let started = Instant::now();
    let report = migrate(&from, &to, &recorded).await;
    let elapsed = started.elapsed();
    eprintln!("100k-config migration embedded → MySQL took {elapsed:.1?}:\n{report}");
    let configs = report
        .tables
        .iter()
        .find(|t| t.table == Table::Configs)
        .expect("configs line");
    assert_eq!((configs.expected.count, configs.actual.count), (N, N));
    let phases = recorded.phases.lock().expect("phases").clone();
    assert_eq!(
        phases.first(),
        Some(&("migrate".to_string(), Some(2 * N))),
        "the migration announced its total: {phases:?}"
    );
    assert!(
        recorded.advanced.load(Ordering::Relaxed) >= 2 * N,
        "progress reached every record"
    );
    assert!(
        elapsed < Duration::from_secs(300),
        "the migration took {elapsed:?}"
    );
}

fn remote(url: String) -> Remote {
    Remote {
        server: Some(url),
        username: "nacos".into(),
        password: Some(ADMIN_PW.into()),
    }
}

/// A dump restored into a running 3-node embedded cluster through one node (batches go through
/// Raft): refused while the cluster holds data unless forced, then every node's online backup
/// is the dump, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restore_into_a_running_embedded_cluster() {
    let work = tempfile::tempdir().expect("work dir");
    let mut source = TestServer::start_with(&auth_props()).await;
    let admin = init_admin(&source).await;
    populate(&source, &admin).await;
    let home = source.home().to_path_buf();
    source.stop().await;
    let dump = work.path().join("source.jsonl.gz");
    backup(&home, &dump).await;

    let cluster = TestCluster::start(Storage::Embedded, 3, &auth_props()).await;
    // The cluster's own admin (same password as the dump's), once a leader is elected.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = reqwest::Client::new()
            .post(cluster.node(0).url("/v1/auth/users/admin"))
            .form(&[("password", ADMIN_PW)])
            .send()
            .await;
        if response.is_ok_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster never took its admin"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let via = cluster.node(1).url("").trim_end_matches('/').to_string();
    let refused = Tool::Restore {
        from: dump.clone(),
        force: false,
        remote: remote(via.clone()),
    };
    match tools::run(&refused, || unreachable!("remote"), &Silent).await {
        Err(ToolError::Remote(message)) => {
            assert!(message.contains("not empty"), "{message}")
        }
        other => panic!("a cluster holding its admin is not empty: {other:?}"),
    }
    let forced = Tool::Restore {
        from: dump.clone(),
        force: true,
        remote: remote(via),
    };
    let recorded = Recorded::default();
    let report = tools::run(&forced, || unreachable!("remote"), &recorded)
        .await
        .expect("restore through a node");
    assert!(report.verified(), "{report}");
    let expected = std::fs::read(&dump).expect("read dump");
    let client = reqwest::Client::new();
    let login: Value = client
        .post(cluster.node(2).url("/v1/auth/login"))
        .form(&[("username", "nacos"), ("password", ADMIN_PW)])
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login json");
    let token = login["accessToken"].as_str().expect("token").to_string();
    let read = client
        .get(cluster.node(2).url("/v1/cs/configs"))
        .query(&[("dataId", "app.yaml"), ("group", "G1")])
        .header("accessToken", &token)
        .send()
        .await
        .expect("read");
    assert_eq!(
        read.text().await.expect("body"),
        "a: 2",
        "another node serves the restored config"
    );
    let hosts: Value = client
        .get(cluster.node(2).url("/v1/ns/instance/list"))
        .query(&[("serviceName", "orders"), ("groupName", "G1")])
        .header("accessToken", &token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(
        hosts["hosts"].as_array().map(Vec::len),
        Some(3),
        "another node serves the restored persistent instances: {hosts}"
    );
    for i in 0..3 {
        let path = work.path().join(format!("node{i}.jsonl.gz"));
        let tool = Tool::Backup {
            to: path.clone(),
            remote: remote(cluster.node(i).url("")),
        };
        let report = tools::run(&tool, || unreachable!("remote"), &Silent)
            .await
            .expect("online backup of a node");
        assert!(report.verified(), "{report}");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            expected,
            "node {i} holds the dump, byte for byte"
        );
    }
}
