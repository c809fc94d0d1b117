//! `/nacos/actuator/prometheus`: real servers scraped over HTTP, the output read with a real
//! exposition-format parser (`prometheus-parse`), and counts checked to move with the
//! requests that should move them. The Grafana dashboard in `conf/` is checked against real
//! scrapes: every metric its queries use must be served.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nacos_sdk::api::config::{ConfigChangeListener, ConfigResponse, ConfigServiceBuilder};
use nacos_sdk::api::naming::{NamingChangeEvent, NamingEventListener, NamingServiceBuilder};
use nacos_server::cli::Mode;
use nacos_server::settings::Properties;
use nacos_server::{App, Settings};
use prometheus_parse::{Sample, Scrape, Value};

use crate::auth::{auth_props, init_admin};
use crate::helpers::{self, eventually, until};
use crate::support::{Storage, TestCluster, TestServer};

const PATH: &str = "/actuator/prometheus";

/// One scrape: the raw text and what the parser made of it.
pub(crate) struct Metrics {
    raw: String,
    parsed: Scrape,
}

impl Metrics {
    /// The value of the first sample named `name` whose labels include `labels`.
    pub(crate) fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.parsed
            .samples
            .iter()
            .find(|s| s.metric == name && has_labels(s, labels))
            .and_then(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
                _ => None,
            })
    }

    /// Like [`Metrics::get`], 0 when the series does not exist (yet).
    fn or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// Every metric name served, with the suffixes of histogram series as written.
    fn names(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for s in &self.parsed.samples {
            names.insert(s.metric.clone());
            if let Value::Histogram(_) = s.value {
                // The parser files `_bucket` lines under the histogram's name.
                names.insert(format!("{}_bucket", s.metric));
            }
        }
        names
    }
}

fn has_labels(sample: &Sample, labels: &[(&str, &str)]) -> bool {
    labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v))
}

async fn scrape_url(client: &reqwest::Client, url: &str, token: Option<&str>) -> Metrics {
    let mut req = client.get(url);
    if let Some(token) = token {
        req = req.header("accessToken", token);
    }
    let resp = req.send().await.expect("scrape");
    assert_eq!(resp.status(), 200, "scrape of {url}");
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"),
        "Prometheus text format: {content_type}"
    );
    let raw = resp.text().await.expect("scrape body");
    let parsed = Scrape::parse(raw.lines().map(|l| Ok(l.to_string()))).expect("parses");
    assert!(!parsed.samples.is_empty(), "samples in:\n{raw}");
    Metrics { raw, parsed }
}

pub(crate) async fn scrape(s: &TestServer) -> Metrics {
    scrape_url(&s.client, &s.url(PATH), None).await
}

const GET_URI: [(&str, &str); 3] = [
    ("method", "GET"),
    ("uri", "/v1/cs/configs"),
    ("status", "200"),
];

#[tokio::test]
async fn counts_move_with_http_requests() {
    let s = TestServer::start().await;
    let before = scrape(&s).await;

    let resp = s
        .client
        .post(s.url("/v1/cs/configs"))
        .form(&[("dataId", "m.d"), ("group", "m.g"), ("content", "v1")])
        .send()
        .await
        .expect("publish");
    assert_eq!(resp.text().await.expect("body"), "true");
    const N: u32 = 7;
    for _ in 0..N {
        let resp = helpers::get_config(&s, &[("dataId", "m.d"), ("group", "m.g")]).await;
        assert_eq!(resp.status(), 200);
    }
    for port in ["8001", "8002"] {
        let resp = s
            .client
            .post(s.url("/v1/ns/instance"))
            .form(&[("serviceName", "m.svc"), ("ip", "10.9.0.1"), ("port", port)])
            .send()
            .await
            .expect("register");
        assert_eq!(resp.status(), 200);
    }
    // A path with an instance key in it, and a path no route serves.
    let raw_key = "DEFAULT_GROUP@@m.svc-77f3a1";
    let raw_unknown = "/no/such/route-9c1e0b";
    s.client
        .get(s.url(&format!("/v2/ns/instance/statuses/{raw_key}")))
        .send()
        .await
        .expect("templated path");
    let resp = s.client.get(s.url(raw_unknown)).send().await.expect("404");
    assert_eq!(resp.status(), 404);

    let after = scrape(&s).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.or_zero(name, labels) - before.or_zero(name, labels)
    };
    let config = |name| [("module", "config"), ("name", name)];
    let naming = |name| [("module", "naming"), ("name", name)];
    assert_eq!(delta("nacos_monitor", &config("getConfig")), f64::from(N));
    assert_eq!(delta("nacos_monitor", &config("publish")), 1.0);
    assert_eq!(delta("nacos_monitor", &config("configCount")), 1.0);
    assert_eq!(delta("nacos_monitor", &naming("ipCount")), 2.0);
    assert_eq!(delta("nacos_monitor", &naming("serviceCount")), 1.0);
    assert_eq!(
        delta("http_server_requests_seconds_count", &GET_URI),
        f64::from(N)
    );
    let publish_uri = [
        ("method", "POST"),
        ("uri", "/v1/cs/configs"),
        ("status", "200"),
    ];
    assert_eq!(
        delta("http_server_requests_seconds_count", &publish_uri),
        1.0
    );
    let sum = after.or_zero("http_server_requests_seconds_sum", &GET_URI);
    assert!(sum > 0.0, "latency sum of the GETs: {sum}");
    // The histogram's buckets are cumulative and end at the count.
    let buckets = after
        .parsed
        .samples
        .iter()
        .find(|s| s.metric == "http_server_requests_seconds" && has_labels(s, &GET_URI))
        .and_then(|s| match &s.value {
            Value::Histogram(b) => Some(b.clone()),
            _ => None,
        })
        .expect("buckets of the GET series");
    let inf = buckets
        .iter()
        .find(|b| b.less_than.is_infinite())
        .expect("+Inf bucket");
    assert_eq!(
        inf.count,
        after.or_zero("http_server_requests_seconds_count", &GET_URI)
    );
    assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
    // Storage calls are timed by backend and operation.
    let publish_op = [("backend", "embedded"), ("op", "config_publish")];
    assert_eq!(
        delta("nacos_storage_operation_seconds_count", &publish_op),
        1.0
    );

    // Raw paths never become label values: the template and the one unmatched series do.
    assert!(!after.raw.contains(raw_key), "raw key in:\n{}", after.raw);
    assert!(
        !after.raw.contains("route-9c1e0b"),
        "raw path in:\n{}",
        after.raw
    );
    // `prometheus-parse` skips label values holding `}` (Prometheus itself reads them), so the
    // templated series is checked in the text.
    assert!(
        after.raw.lines().any(|l| l.starts_with(
            "http_server_requests_seconds_count{method=\"GET\",uri=\"/v2/ns/instance/statuses/{key}\""
        )),
        "templated uri in:\n{}",
        after.raw
    );
    assert_eq!(
        delta(
            "http_server_requests_seconds_count",
            &[("uri", "NOT_FOUND"), ("status", "404")]
        ),
        1.0
    );

    // The process, read from /proc.
    assert!(after.or_zero("process_resident_memory_bytes", &[]) > 1e6);
    assert!(after.or_zero("process_open_fds", &[]) >= 3.0);
    assert!(after.get("process_cpu_seconds_total", &[]).is_some());
    assert!(after.or_zero("process_uptime_seconds", &[]) > 0.0);
}

struct Notified(Mutex<Vec<String>>);

impl ConfigChangeListener for Notified {
    fn notify(&self, resp: ConfigResponse) {
        self.0.lock().expect("lock").push(resp.content().clone());
    }
}

#[tokio::test]
async fn sdk_client_moves_connections_grpc_counts_and_push_latency() {
    let s = TestServer::start().await;
    let before = scrape(&s).await;
    let cache = tempfile::tempdir().expect("cache dir");
    let props = helpers::sdk_props(s.server_addr(), &cache, "metrics-it")
        .remote_grpc_port(s.grpc_addr.port());
    let client = ConfigServiceBuilder::new(props)
        .build()
        .await
        .expect("config client");
    client
        .publish_config("m.listened".into(), "G".into(), "v0".into(), None)
        .await
        .expect("publish over gRPC");
    let got = client
        .get_config("m.listened".into(), "G".into())
        .await
        .expect("get over gRPC");
    assert_eq!(got.content(), "v0");
    // Counted before any listener: a listen and each notification add requests of their own.
    let grpc = scrape(&s).await;
    let grpc_delta = |name: &str, labels: &[(&str, &str)]| {
        grpc.or_zero(name, labels) - before.or_zero(name, labels)
    };
    let requests = "nacos_grpc_server_requests_seconds_count";
    let query = [("type", "ConfigQueryRequest"), ("code", "0")];
    assert_eq!(grpc_delta(requests, &query), 1.0);
    let publish = [("type", "ConfigPublishRequest"), ("code", "0")];
    assert_eq!(grpc_delta(requests, &publish), 1.0);
    let get_config = [("module", "config"), ("name", "getConfig")];
    assert_eq!(grpc_delta("nacos_monitor", &get_config), 1.0);
    let connections = [("module", "core"), ("name", "longConnection")];
    assert!(
        grpc_delta("nacos_monitor", &connections) >= 1.0,
        "the SDK's connection"
    );
    let seen = Arc::new(Notified(Mutex::new(Vec::new())));
    client
        .add_listener("m.listened".into(), "G".into(), seen.clone())
        .await
        .expect("listen");
    let listeners = s.app().config_listeners.clone();
    until(Duration::from_secs(5), "the listen", || {
        listeners.listener_count() > 0
    })
    .await;
    let resp = s
        .client
        .post(s.url("/v1/cs/configs"))
        .form(&[("dataId", "m.listened"), ("group", "G"), ("content", "v1")])
        .send()
        .await
        .expect("publish over HTTP");
    assert_eq!(resp.status(), 200);
    until(Duration::from_secs(5), "the change notification", || {
        seen.0.lock().expect("lock").iter().any(|c| c == "v1")
    })
    .await;

    // The push is recorded once acknowledged: the client may notify before it answers.
    eventually(Duration::from_secs(5), "the push to be counted", || async {
        let m = scrape(&s).await;
        m.or_zero("nacos_push_seconds_count", &[("module", "config")]) >= 1.0
    })
    .await;
    let after = scrape(&s).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.or_zero(name, labels) - before.or_zero(name, labels)
    };
    let config = |name| [("module", "config"), ("name", name)];
    assert_eq!(delta("nacos_monitor", &config("publish")), 2.0);
    assert!(delta("nacos_push_seconds_count", &[("module", "config")]) >= 1.0);
    assert!(delta("nacos_timer_seconds_count", &config("notifyRt")) >= 1.0);
    assert_eq!(
        delta("nacos_push_failed_total", &[("module", "config")]),
        0.0
    );
    drop(client);
}

#[tokio::test]
async fn the_auth_property_asks_for_an_admin_token() {
    let mut props = auth_props();
    props.push(("nacos.metrics.auth.enabled", "true"));
    let s = TestServer::start_with(&props).await;
    let admin = init_admin(&s).await;
    let url = s.url(PATH);
    let anonymous = s.client.get(&url).send().await.expect("anonymous");
    assert_eq!(anonymous.status(), 403);
    let bad = s
        .client
        .get(&url)
        .header("accessToken", "garbage")
        .send()
        .await
        .expect("bad token");
    assert_eq!(bad.status(), 403);
    let ok = scrape_url(&s.client, &url, Some(&admin)).await;
    assert!(
        ok.get("nacos_monitor", &[("name", "longConnection")])
            .is_some()
    );
    let in_query = s
        .client
        .get(format!("{url}?accessToken={admin}"))
        .send()
        .await
        .expect("token in the query");
    assert_eq!(in_query.status(), 200);

    // Auth on, the metrics property off: open, as Nacos's actuator.
    let open = TestServer::start_with(&auth_props()).await;
    let resp = open.client.get(open.url(PATH)).send().await.expect("open");
    assert_eq!(resp.status(), 200);

    // Asking for a token while auth is off is refused at start.
    let home = tempfile::tempdir().expect("home");
    let settings = Settings::from_properties(
        Mode::Standalone,
        home.path().to_path_buf(),
        Properties::from_pairs([("nacos.metrics.auth.enabled", "true")]),
    )
    .expect("settings");
    let err = App::open(settings).await.expect_err("refused");
    assert!(err.to_string().contains("nacos.core.auth.enabled"), "{err}");
}

/// The metric names a PromQL expression reads: identifiers that are neither functions,
/// keywords, label names (inside `{}` or `by (...)`), nor durations.
fn promql_metric_names(expr: &str) -> Vec<String> {
    const KEYWORDS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
    ];
    /// Aggregations may take `by (...)` between their name and their parentheses.
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
    ];
    let chars: Vec<char> = expr.chars().collect();
    // The index after the string starting at `i` (a `"`).
    let skip_string = |mut i: usize| {
        i += 1;
        while i < chars.len() && chars[i] != '"' {
            i += if chars[i] == '\\' { 2 } else { 1 };
        }
        i + 1
    };
    let mut names = Vec::new();
    let mut i = 0;
    let mut after_grouping = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' => {
                i = skip_string(i);
                continue;
            }
            // Label matchers (their strings may hold `}`) and ranges hold no metric names.
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                i += 1;
                while i < chars.len() && chars[i] != close {
                    i = if chars[i] == '"' {
                        skip_string(i)
                    } else {
                        i + 1
                    };
                }
                i += 1;
                continue;
            }
            // `by (label, ...)`
            '(' if after_grouping => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                after_grouping = false;
                i += 1;
                continue;
            }
            _ => {}
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            let is_call = chars.get(j) == Some(&'(');
            if KEYWORDS.contains(&word.as_str()) {
                after_grouping = matches!(word.as_str(), "by" | "without" | "on" | "ignoring");
            } else if !is_call && !AGGREGATIONS.contains(&word.as_str()) {
                names.push(word);
            }
            continue;
        }
        i += 1;
    }
    names
}

#[test]
fn the_promql_scanner_finds_metric_names_only() {
    let names = promql_metric_names(
        r#"histogram_quantile(0.99, sum by (le, uri) (rate(http_server_requests_seconds_bucket{instance=~"a|b",uri="/x/{key}"}[5m]))) / on (uri) foo_total"#,
    );
    assert_eq!(names, ["http_server_requests_seconds_bucket", "foo_total"]);
}

/// Every PromQL expression of the dashboard's panels.
fn dashboard_exprs() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conf/grafana-dashboard.json"
    );
    let text = std::fs::read_to_string(path).expect("conf/grafana-dashboard.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut exprs = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(e)) = map.get("expr") {
                    out.push(e.clone());
                }
                map.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&json, &mut exprs);
    exprs
}

/// A 3-node embedded cluster: every node reports Raft term, leader and applied index, the
/// leader the replication lag of its two followers; with a MySQL scrape for the database
/// series, every metric the dashboard reads is served.
#[tokio::test]
async fn raft_cluster_scrape_and_the_dashboard_names() {
    let cluster = TestCluster::start(Storage::Embedded, 3, &[]).await;
    let client = reqwest::Client::new();
    let url = |i: usize| cluster.node(i).url(PATH);
    // A write through any node, so every applied index moves past the membership entries.
    eventually(
        Duration::from_secs(20),
        "a write through the cluster",
        || {
            let client = client.clone();
            let url = cluster.node(0).url("/v1/cs/configs");
            async move {
                let resp = client
                    .post(url)
                    .form(&[("dataId", "raft.d"), ("group", "G"), ("content", "x")])
                    .send()
                    .await;
                matches!(resp, Ok(r) if r.status() == 200)
            }
        },
    )
    .await;
    // A gRPC client, so the gRPC series exist.
    let cache = tempfile::tempdir().expect("cache dir");
    let node = cluster.node(0);
    let sdk = ConfigServiceBuilder::new(
        helpers::sdk_props(node.server_addr(), &cache, "metrics-raft")
            .remote_grpc_port(node.port + 1000),
    )
    .build()
    .await
    .expect("config client");
    sdk.get_config("raft.d".into(), "G".into())
        .await
        .expect("read over gRPC");
    let mut scrapes = Vec::new();
    eventually(
        Duration::from_secs(20),
        "one leader known by all and its followers' lag",
        || {
            let client = client.clone();
            let urls: Vec<String> = (0..3).map(url).collect();
            async move {
                let mut all = Vec::new();
                for u in &urls {
                    all.push(scrape_url(&client, u, None).await);
                }
                let leaders = all
                    .iter()
                    .filter(|m| m.get("nacos_raft_is_leader", &[]) == Some(1.0))
                    .count();
                let known = all
                    .iter()
                    .all(|m| m.get("nacos_raft_has_leader", &[]) == Some(1.0));
                let lag_series = all
                    .iter()
                    .map(|m| {
                        m.parsed
                            .samples
                            .iter()
                            .filter(|s| s.metric == "nacos_raft_replication_lag")
                            .count()
                    })
                    .sum::<usize>();
                let voters = all
                    .iter()
                    .all(|m| m.get("nacos_raft_voters", &[]) == Some(3.0));
                leaders == 1 && known && voters && lag_series == 2
            }
        },
    )
    .await;
    for i in 0..3 {
        scrapes.push(scrape_url(&client, &url(i), None).await);
    }
    let terms: BTreeSet<u64> = scrapes
        .iter()
        .map(|m| m.get("nacos_raft_term", &[]).expect("term") as u64)
        .collect();
    assert!(terms.iter().all(|t| *t >= 1), "terms {terms:?}");
    for m in &scrapes {
        assert!(m.or_zero("nacos_raft_applied_index", &[]) >= 1.0);
        assert!(
            m.or_zero("nacos_raft_last_log_index", &[])
                >= m.or_zero("nacos_raft_applied_index", &[])
        );
        assert_eq!(m.get("nacos_raft_voters", &[]), Some(3.0));
        assert!(
            m.get(
                "nacos_storage_operation_seconds_count",
                &[("backend", "raft")]
            )
            .is_some()
        );
    }

    // The dashboard: every metric name it queries is served by one of these scrapes.
    let mut served: BTreeSet<String> = scrapes.iter().flat_map(Metrics::names).collect();
    let mysql = Storage::Mysql;
    let db_checked = !mysql.skip("metrics::raft_cluster_scrape_and_the_dashboard_names (db)");
    if db_checked {
        let s = TestServer::start_on(mysql, &[]).await;
        let m = scrape(&s).await;
        assert_eq!(m.get("nacos_db_nodes", &[("backend", "mysql")]), Some(1.0));
        assert_eq!(m.get("nacos_db_primary", &[("node", "0")]), Some(1.0));
        assert_eq!(m.get("nacos_db_writable", &[]), Some(1.0));
        assert_eq!(m.get("nacos_db_failovers_total", &[]), Some(0.0));
        served.extend(m.names());
    }
    let exprs = dashboard_exprs();
    assert!(exprs.len() > 30, "the dashboard's queries");
    let mut missing = BTreeSet::new();
    for expr in &exprs {
        for name in promql_metric_names(expr) {
            let unchecked = name.starts_with("nacos_db_") && !db_checked;
            if !served.contains(&name) && !unchecked {
                missing.insert(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "queried by the dashboard, not served: {missing:?}"
    );
}

struct Changes(Mutex<usize>);

impl NamingEventListener for Changes {
    fn event(&self, event: Arc<NamingChangeEvent>) {
        if event.instances.as_ref().is_some_and(|i| !i.is_empty()) {
            *self.0.lock().expect("lock") += 1;
        }
    }
}

#[tokio::test]
async fn a_naming_subscriber_moves_subscribers_and_push_counts() {
    let s = TestServer::start_with(&[("nacos.naming.push.pushTaskDelay", "20")]).await;
    let before = scrape(&s).await;
    let cache = tempfile::tempdir().expect("cache dir");
    let props = helpers::sdk_props(s.server_addr(), &cache, "metrics-naming")
        .remote_grpc_port(s.grpc_addr.port())
        .naming_push_empty_protection(false);
    let naming = NamingServiceBuilder::new(props)
        .build()
        .await
        .expect("naming client");
    let changes = Arc::new(Changes(Mutex::new(0)));
    naming
        .subscribe(
            "m.watched".into(),
            Some("G".into()),
            Vec::new(),
            changes.clone(),
        )
        .await
        .expect("subscribe");
    let subs = s.app().naming_subscribers.clone();
    until(Duration::from_secs(5), "the subscription", || {
        subs.subscriber_count() == 1
    })
    .await;
    let resp = s
        .client
        .post(s.url("/v1/ns/instance"))
        .form(&[
            ("serviceName", "m.watched"),
            ("groupName", "G"),
            ("ip", "10.9.1.1"),
            ("port", "80"),
        ])
        .send()
        .await
        .expect("register over HTTP");
    assert_eq!(resp.status(), 200);
    until(
        Duration::from_secs(5),
        "the push to reach the subscriber",
        || *changes.0.lock().expect("lock") > 0,
    )
    .await;
    eventually(Duration::from_secs(5), "the push to be counted", || async {
        let m = scrape(&s).await;
        m.or_zero("nacos_push_seconds_count", &[("module", "naming")]) >= 1.0
    })
    .await;
    let after = scrape(&s).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.or_zero(name, labels) - before.or_zero(name, labels)
    };
    let naming_label = |name| [("module", "naming"), ("name", name)];
    assert_eq!(
        delta("nacos_monitor", &naming_label("subscriberCount")),
        1.0
    );
    assert!(delta("nacos_monitor", &naming_label("totalPush")) >= 1.0);
    assert_eq!(delta("nacos_monitor", &naming_label("failedPush")), 0.0);
    let avg = after.or_zero("nacos_monitor", &naming_label("avgPushCost"));
    let max = after.or_zero("nacos_monitor", &naming_label("maxPushCost"));
    assert!(
        avg > 0.0 && max >= avg,
        "push cost avg {avg} ms, max {max} ms"
    );
    let subscribe = [("type", "SubscribeServiceRequest"), ("code", "0")];
    assert!(delta("nacos_grpc_server_requests_seconds_count", &subscribe) >= 1.0);
    drop(naming);
}
