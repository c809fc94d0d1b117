//! The guard decides on exactly what the handler executes: a differential test over every
//! keyed HTTP route and every secured gRPC payload type.
//!
//! A user holds rights on one corner of a grid of namespaces × groups (`ns1:G1:*`). Each route
//! and payload type is fed seeded random requests: selector parameters repeated, blank, given
//! by alias, with `group@@name` embedded, in the query or the form body, mixed listen contexts,
//! fields of unexpected types. After every request the whole store is compared with its state
//! before: a refused request changed nothing, and an allowed one changed nothing and showed
//! nothing outside the corner the guard authorized. Any disagreement between the key the guard
//! checked and the key the handler touched shows up as a write or a read outside the corner.
//!
//! `NACOS_DIFF_SEED` replays a run; the seed is printed with every failure.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use nacos_core::{ConfigQuery, PageRequest};
use nacos_server::grpc::dispatch::GrpcGuard;
use serde_json::{Value, json};

use crate::auth::{
    admin_post, auth_props, create_namespaces, grant_user, grpc_connect, init_admin, payload, unary,
};
use crate::support::{Storage, TestServer};

/// Variants per route method and per payload type.
const VARIANTS: usize = 30;

const NAMESPACES: [(&str, u8); 3] = [("public", 0), ("ns1", 1), ("ns2", 2)];
const GROUPS: [(&str, u8); 2] = [("G1", 1), ("G2", 2)];

/// The corner the user may touch.
fn in_corner(namespace: &str, group: &str) -> bool {
    namespace == "ns1" && group == "G1"
}

/// Small deterministic generator (xorshift64*): runs replay from their seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

// Pools lean towards the corner so that allowed requests are common, with every other cell,
// blanks and `null` mixed in.
const NS_POOL: &[&str] = &["ns1", "ns1", "ns1", "ns2", "public", "", "null"];
const GROUP_POOL: &[&str] = &["G1", "G1", "G1", "G2", ""];
const DATA_ID_POOL: &[&str] = &[
    "d.ns1.G1",
    "d.ns1.G1",
    "d.ns1.G2",
    "d.ns2.G1",
    "d.public.G1",
    "",
];
const SERVICE_POOL: &[&str] = &[
    "s.ns1.G1",
    "s.ns1.G1",
    "G1@@s.ns1.G1",
    "G2@@s.ns1.G2",
    "G1@@s.ns1.G2",
    "s.ns2.G1",
    "G1@@s.public.G1",
    "",
];
const KEY_POOL: &[&str] = &[
    "ns1##G1@@s.ns1.G1",
    "ns1##G1@@s.ns1.G1",
    "ns2##G1@@s.ns2.G1",
    "G1@@s.public.G1",
    "ns1##G2@@s.ns1.G2",
    "##G1@@s.public.G1",
];

/// The store as the admin would see it: every config and every instance and service.
async fn snapshot(s: &TestServer) -> BTreeMap<String, String> {
    let app = s.app();
    let mut out = BTreeMap::new();
    for (ns, _) in NAMESPACES {
        let tenant = if ns == "public" { "" } else { ns };
        let page = app
            .config
            .repo()
            .search(&ConfigQuery::namespace(
                tenant.to_string(),
                PageRequest::new(1, u32::MAX),
            ))
            .await
            .expect("search");
        for item in page.items {
            let key = &item.key;
            let state = app.config.state(key).await.expect("config state");
            out.insert(
                format!("config {ns}/{}/{}", key.group, key.data_id),
                format!(
                    "{} beta={:?}",
                    item.md5,
                    state.beta().map(|b| b.md5.clone())
                ),
            );
        }
    }
    for key in app.naming.all_services() {
        let mut hosts: Vec<String> = app
            .naming
            .all_hosts(&key)
            .iter()
            .map(|h| format!("{:?}", h.instance))
            .collect();
        hosts.sort();
        let detail = app
            .naming
            .service_detail(&key)
            .map(|d| without_times(&format!("{d:?}")))
            .unwrap_or_default();
        out.insert(
            format!("service {}/{}/{}", key.namespace, key.group, key.name),
            format!("{hosts:?} {detail}"),
        );
    }
    for sub in app.naming.udp_subscriptions() {
        out.insert(
            format!(
                "udp {}/{}/{} {}",
                sub.key.namespace, sub.key.group, sub.key.name, sub.addr
            ),
            String::new(),
        );
    }
    out
}

/// Configs reported as changed by a long poll (`dataId^Bgroup^Btenant^A`, URL-encoded) or a
/// gRPC batch listen (`changedConfigs`) that lie outside the corner. Names are no markers, so
/// these answers are checked by their structure.
fn listed_outside_corner(body: &str) -> Vec<String> {
    let mut outside = Vec::new();
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        for c in v["changedConfigs"].as_array().into_iter().flatten() {
            let (group, tenant) = (c["group"].as_str(), c["tenant"].as_str());
            if !(group == Some("G1") && tenant == Some("ns1")) {
                outside.push(c.to_string());
            }
        }
        return outside;
    }
    let decoded: String = form_urlencoded::parse(format!("x={body}").as_bytes())
        .map(|(_, v)| v.into_owned())
        .collect();
    for entry in decoded.split('\u{1}').filter(|e| !e.trim().is_empty()) {
        let fields: Vec<&str> = entry.split('\u{2}').collect();
        if !(fields.get(1) == Some(&"G1") && fields.get(2) == Some(&"ns1")) {
            outside.push(entry.to_string());
        }
    }
    outside
}

/// A service's `Debug` text without its timestamps: an ephemeral-only service has no stored
/// settings, and the ones shown for it are made at the time of asking.
fn without_times(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("_ms: ") {
        let (head, tail) = rest.split_at(at + "_ms: ".len());
        out.push_str(head);
        rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// Entries that differ between two snapshots.
fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect()
}

/// Whether a snapshot entry lies in the corner (`config ns1/G1/…`, `service ns1/G1/…`).
fn entry_in_corner(entry: &str) -> bool {
    let path = entry.split_once(' ').map_or("", |(_, rest)| rest);
    let mut parts = path.split('/');
    let ns = parts.next().unwrap_or("");
    let group = parts.next().unwrap_or("");
    in_corner(ns, group)
}

/// Traces of cells outside the corner that a response must not carry: the contents the admin
/// planted there (`c.ns2.G1.`) and their instance addresses (`10.2.1.`). Names are no markers:
/// the user may create `s.ns2.G1` inside the corner.
fn leaks(body: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (ns, n) in NAMESPACES {
        for (group, g) in GROUPS {
            if in_corner(ns, group) {
                continue;
            }
            for marker in [format!("c.{ns}.{group}."), format!("10.{n}.{g}.")] {
                if body.contains(&marker) {
                    found.push(marker);
                }
            }
        }
    }
    found
}

/// The grid: a config and a persistent instance in every namespace × group cell, and a user
/// `probe` with `rw` on `ns1:G1:*` only.
async fn grid() -> (TestServer, String, String) {
    let s = TestServer::start_on(Storage::Embedded, &auth_props()).await;
    let admin = init_admin(&s).await;
    create_namespaces(&s, &admin, &["ns1", "ns2"]).await;
    for (ns, n) in NAMESPACES {
        let tenant = if ns == "public" { "" } else { ns };
        for (group, g) in GROUPS {
            admin_post(
                &s,
                &admin,
                "/v1/cs/configs",
                &[
                    ("tenant", tenant),
                    ("group", group),
                    ("dataId", &format!("d.{ns}.{group}")),
                    ("content", &format!("c.{ns}.{group}.")),
                ],
            )
            .await;
            admin_post(
                &s,
                &admin,
                "/v1/ns/instance",
                &[
                    ("namespaceId", ns),
                    ("groupName", group),
                    ("serviceName", &format!("s.{ns}.{group}")),
                    ("ip", &format!("10.{n}.{g}.1")),
                    ("port", "80"),
                    ("ephemeral", "false"),
                ],
            )
            .await;
        }
    }
    // The grid's store must change only through the requests under test: no health checks
    // of its persistent instances in the background.
    let resp = s
        .client
        .put(s.url("/v1/ns/operator/switches"))
        .header("accessToken", &admin)
        .form(&[("entry", "healthCheckEnabled"), ("value", "false")])
        .send()
        .await
        .expect("switch request");
    assert_eq!(resp.status(), 200, "health checks off");
    let probe = grant_user(
        &s,
        &admin,
        ("probe", "pw-of-probe"),
        "corner",
        ("ns1:G1:*", "rw"),
    )
    .await;
    (s, admin, probe)
}

fn seed() -> u64 {
    std::env::var("NACOS_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x005E_ED0F_D1FF)
}

/// A random long-poll probe list of one to three configs.
fn listening_configs(rng: &mut Rng) -> String {
    (0..1 + rng.below(3))
        .map(|_| {
            let tenant = rng.pick(NS_POOL);
            let (data_id, group) = (rng.pick(DATA_ID_POOL), rng.pick(GROUP_POOL));
            if tenant.is_empty() {
                format!("{data_id}\u{2}{group}\u{2}x\u{1}")
            } else {
                format!("{data_id}\u{2}{group}\u{2}x\u{2}{tenant}\u{1}")
            }
        })
        .collect()
}

/// The corner's own selectors, under one of their aliases.
fn corner_params(rng: &mut Rng) -> Vec<(String, String)> {
    let mut params = vec![
        (
            rng.pick(&["tenant", "namespaceId"]).to_string(),
            "ns1".to_string(),
        ),
        ("group".to_string(), "G1".to_string()),
        ("groupName".to_string(), "G1".to_string()),
        ("dataId".to_string(), "d.ns1.G1".to_string()),
        (
            "serviceName".to_string(),
            rng.pick(&["s.ns1.G1", "G1@@s.ns1.G1"]).to_string(),
        ),
        ("key".to_string(), "ns1##G1@@s.ns1.G1".to_string()),
    ];
    if rng.chance(50) {
        params.push(("namespace".to_string(), "ns1".to_string()));
    }
    params
}

/// Selectors drawn from the pools, each absent, given once or (rarely) twice.
fn random_params(rng: &mut Rng) -> Vec<(String, String)> {
    let mut params = Vec::new();
    for (name, pool) in SELECTORS {
        let times = match rng.below(20) {
            0..=6 => 0,
            7..=18 => 1,
            _ => 2,
        };
        for _ in 0..times {
            params.push((name.to_string(), rng.pick(pool).to_string()));
        }
    }
    params
}

/// Values that make one reading of a request differ from another: an embedded group against
/// `groupName`, one namespace alias against another, a `key` naming another service, blanks.
const TRICKS: &[(&str, &str)] = &[
    ("serviceName", "G2@@s.ns1.G2"),
    ("serviceName", "G1@@s.ns1.G2"),
    ("groupName", "G2"),
    ("group", "G2"),
    ("namespaceId", "ns2"),
    ("namespaceId", ""),
    ("tenant", "ns2"),
    ("tenant", ""),
    ("namespace", "ns2"),
    ("namespace", "public"),
    ("key", "ns2##G1@@s.ns2.G1"),
    ("key", "G1@@s.public.G1"),
    ("dataId", "d.ns2.G1"),
];

const SELECTORS: [(&str, &[&str]); 8] = [
    ("tenant", NS_POOL),
    ("namespaceId", NS_POOL),
    ("namespace", NS_POOL),
    ("group", GROUP_POOL),
    ("groupName", GROUP_POOL),
    ("dataId", DATA_ID_POOL),
    ("serviceName", SERVICE_POOL),
    ("key", KEY_POOL),
];

/// Random parameters for a route: half the time the corner's selectors with one perturbation
/// (a value from elsewhere, a blank, a repetition, an alias), otherwise selectors drawn from
/// the pools; plus the values handlers need to do something.
fn http_params(rng: &mut Rng, path: &str) -> Vec<(String, String)> {
    let mut params = if rng.chance(50) {
        let mut params = corner_params(rng);
        for _ in 0..rng.below(3) {
            let (name, value) = TRICKS[rng.below(TRICKS.len())];
            if rng.chance(70) {
                params.retain(|(k, _)| k != name);
            }
            params.push((name.to_string(), value.to_string()));
        }
        if rng.chance(30) {
            let (name, pool) = SELECTORS[rng.below(SELECTORS.len())];
            let value = rng.pick(pool).to_string();
            // Mostly a replacement; otherwise a repetition of the name.
            if rng.chance(70) {
                params.retain(|(k, _)| k != name);
            }
            params.push((name.to_string(), value));
        }
        params
    } else {
        random_params(rng)
    };
    for (name, value) in [
        ("content", "new-content"),
        ("ip", "10.9.9.9"),
        ("port", "81"),
        ("healthy", "false"),
        ("weight", "2"),
        ("metadata", "k=v"),
        ("instances", r#"[{"ip":"10.9.9.9","port":81}]"#),
        ("pageNo", "1"),
        ("pageSize", "100"),
        ("ephemeral", "false"),
    ] {
        params.push((name.to_string(), value.to_string()));
    }
    if rng.chance(20) {
        let mode = rng.pick(&["accurate", "blur"]);
        params.push(("search".to_string(), mode.to_string()));
    }
    if rng.chance(10) {
        params.push(("show".to_string(), "all".to_string()));
    }
    if rng.chance(30) {
        let id = (1 + rng.below(40)).to_string();
        let name = rng.pick(&["nid", "id"]);
        params.push((name.to_string(), id));
    }
    if path.ends_with("/listener") {
        let probes = if rng.chance(50) {
            "d.ns1.G1\u{2}G1\u{2}x\u{2}ns1\u{1}".to_string()
        } else {
            listening_configs(rng)
        };
        params.push(("Listening-Configs".to_string(), probes));
    }
    // Shuffle, so repeated names come in every order.
    for i in (1..params.len()).rev() {
        let j = rng.below(i + 1);
        params.swap(i, j);
    }
    params
}

fn encode(pairs: &[(String, String)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}

/// The outcome of one request, checked against the store before and after it.
fn judge(
    what: &str,
    allowed: bool,
    body: &str,
    listed: &str,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    failures: &mut Vec<String>,
) {
    let diff = changed(before, after);
    if !allowed {
        if !diff.is_empty() {
            let detail: Vec<String> = diff
                .iter()
                .map(|k| format!("{k}: {:?} -> {:?}", before.get(k), after.get(k)))
                .collect();
            failures.push(format!("{what}: refused but changed {detail:?}"));
        }
        return;
    }
    let outside: Vec<&String> = diff.iter().filter(|e| !entry_in_corner(e)).collect();
    if !outside.is_empty() {
        failures.push(format!("{what}: allowed and changed {outside:?}"));
    }
    let mut leaked = leaks(body);
    leaked.extend(listed_outside_corner(listed));
    if !leaked.is_empty() {
        failures.push(format!(
            "{what}: allowed and showed {leaked:?}: {}",
            body.chars().take(300).collect::<String>()
        ));
    }
}

#[tokio::test]
async fn guard_and_handler_agree_on_every_route_and_payload_type() {
    let (s, _admin, probe) = grid().await;
    let seed = seed();
    let mut rng = Rng(seed | 1);
    let mut failures = Vec::new();
    let mut allowed_count: HashMap<String, usize> = HashMap::new();

    let table = nacos_server::http::route_table();
    let keyed: Vec<_> = table
        .iter()
        .filter(|d| !d.guard.is_open() && d.guard.fixed_name().is_none())
        .collect();
    assert!(keyed.len() > 30, "every keyed route is listed");
    for decl in &keyed {
        let method = match decl.method {
            nacos_server::http::secured::M::Get => reqwest::Method::GET,
            nacos_server::http::secured::M::Post => reqwest::Method::POST,
            nacos_server::http::secured::M::Put => reqwest::Method::PUT,
            nacos_server::http::secured::M::Delete => reqwest::Method::DELETE,
            nacos_server::http::secured::M::Patch => reqwest::Method::PATCH,
        };
        for _ in 0..VARIANTS {
            let params = http_params(&mut rng, decl.path);
            // GET reads only the query; other methods split the parameters at random.
            let (query, form): (Vec<_>, Vec<_>) = params
                .into_iter()
                .partition(|_| method == reqwest::Method::GET || rng.chance(50));
            // A key in the path (`/statuses/{key}`) is drawn from the same pool as `key`.
            let path = match decl.path.split_once("{key}") {
                Some((head, tail)) => {
                    let key: String =
                        form_urlencoded::byte_serialize(rng.pick(KEY_POOL).as_bytes()).collect();
                    format!("{head}{key}{tail}")
                }
                None => decl.path.to_string(),
            };
            let url = format!("{}?{}", s.url(&path), encode(&query));
            let mut req = s
                .client
                .request(method.clone(), url)
                .header("accessToken", probe.as_str())
                .timeout(Duration::from_secs(10));
            if !form.is_empty() {
                req = req
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(encode(&form));
            }
            let before = snapshot(&s).await;
            let resp = req.send().await.expect("request");
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            let after = snapshot(&s).await;
            let allowed = (200..300).contains(&status);
            if allowed {
                *allowed_count
                    .entry(format!("{method} {}", decl.path))
                    .or_default() += 1;
            }
            let what = format!(
                "seed {seed}: {method} {path}?{} form {} -> {status}",
                encode(&query),
                encode(&form)
            );
            let listed = if decl.path.ends_with("/listener") {
                body.clone()
            } else {
                String::new()
            };
            judge(
                &what,
                allowed,
                &body,
                &listed,
                &before,
                &after,
                &mut failures,
            );
        }
    }

    let (channel, _tx, _stream) = grpc_connect(&s).await;
    let mut headers = HashMap::new();
    headers.insert("accessToken".to_string(), probe.clone());
    let declarations = nacos_server::grpc::Edge::new(s.app()).auth_declarations();
    let secured: Vec<_> = declarations
        .iter()
        .filter(|(_, guard)| *guard != GrpcGuard::Open)
        .collect();
    assert!(secured.len() >= 10, "every secured payload type is listed");
    for (type_name, _) in &secured {
        for _ in 0..VARIANTS {
            let body = grpc_body(&mut rng, type_name);
            let before = snapshot(&s).await;
            let (t, v) = unary(&channel, payload(type_name, headers.clone(), &body)).await;
            let after = snapshot(&s).await;
            let allowed = v["errorCode"] == 0 && v["resultCode"] == 200;
            if allowed {
                *allowed_count.entry(type_name.to_string()).or_default() += 1;
            }
            let what = format!("seed {seed}: {type_name} {body} -> {t} {}", v["errorCode"]);
            let text = v.to_string();
            let listed = if t == "ConfigChangeBatchListenResponse" {
                text.as_str()
            } else {
                ""
            };
            judge(
                &what,
                allowed,
                &text,
                listed,
                &before,
                &after,
                &mut failures,
            );
        }
    }

    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The test means something only if requests got through: most routes (namespace-wide reads
    // need rights the corner lacks, updates need an instance created first) and every
    // payload type let some variants in.
    let routes_with_allowed = keyed
        .iter()
        .filter(|d| {
            let method = format!("{:?}", d.method).to_uppercase();
            allowed_count.contains_key(&format!("{method} {}", d.path))
        })
        .count();
    assert!(
        routes_with_allowed * 2 > keyed.len(),
        "only {routes_with_allowed} of {} routes allowed any variant: {allowed_count:?}",
        keyed.len()
    );
    for (type_name, _) in &secured {
        assert!(
            allowed_count.contains_key(*type_name),
            "{type_name} never allowed: {allowed_count:?}"
        );
    }
}

/// A random body for a payload type: selectors from the pools (sometimes missing or of the
/// wrong type) plus the fields the handler needs.
fn grpc_body(rng: &mut Rng, type_name: &str) -> Value {
    let mut body = serde_json::Map::new();
    let corner = rng.chance(50);
    let own_service = rng.chance(50);
    let mut put = |body: &mut serde_json::Map<String, Value>, name: &str, pool: &[&str]| {
        if corner {
            body.insert(name.to_string(), json!(pool[0]));
        } else if rng.chance(85) {
            body.insert(name.to_string(), json!(rng.pick(pool)));
        }
    };
    if type_name.starts_with("Config") {
        put(&mut body, "tenant", NS_POOL);
        put(&mut body, "group", GROUP_POOL);
        put(&mut body, "dataId", DATA_ID_POOL);
        body.insert("content".into(), json!("new-content"));
        let contexts: Vec<Value> = (0..1 + rng.below(3))
            .map(|_| {
                if corner && rng.chance(70) {
                    json!({"tenant": "ns1", "group": "G1", "dataId": "d.ns1.G1", "md5": "x"})
                } else {
                    json!({"tenant": rng.pick(NS_POOL), "group": rng.pick(GROUP_POOL),
                           "dataId": rng.pick(DATA_ID_POOL), "md5": "x"})
                }
            })
            .collect();
        body.insert("configListenContexts".into(), Value::Array(contexts));
        body.insert("listen".into(), json!(true));
    } else {
        put(&mut body, "namespace", NS_POOL);
        put(&mut body, "groupName", GROUP_POOL);
        // In the corner, also a service of its own: ephemeral registrations cannot join the
        // planted persistent one.
        let services: &[&str] = if corner && own_service {
            &["fresh.svc"]
        } else {
            SERVICE_POOL
        };
        put(&mut body, "serviceName", services);
        let r#type = match type_name {
            "BatchInstanceRequest" => "batchRegisterInstance",
            _ => rng.pick(&["registerInstance", "deregisterInstance"]),
        };
        body.insert("type".into(), json!(r#type));
        let instance = json!({"ip": "10.9.9.9", "port": 81, "ephemeral": true});
        body.insert("instance".into(), instance.clone());
        body.insert("instances".into(), json!([instance]));
        body.insert("subscribe".into(), json!(true));
        body.insert("pageNo".into(), json!(1));
        body.insert("pageSize".into(), json!(100));
    }
    // Fields of other request kinds, sometimes of an unexpected type.
    if rng.chance(30) {
        let (name, value) = match rng.below(4) {
            0 => ("serviceName", json!(0)),
            1 => ("tenant", json!(["prod"])),
            2 => ("namespace", json!({"x": 1})),
            _ => ("dataId", json!(null)),
        };
        body.insert(name.to_string(), value);
    }
    Value::Object(body)
}
