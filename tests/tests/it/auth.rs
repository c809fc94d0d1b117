//! End-to-end: authentication and authorization with `nacos.core.auth.enabled=true`: the
//! matrix over every declared HTTP route and gRPC payload type, login, the seed's commands
//! with a token, the server identity, start-up refusals, forged tokens and login rate limits.
//! The scenarios on stored users, roles and permissions (listed in `on_every_backend!`) run
//! once per storage backend (`auth::{embedded,mysql,postgres}::<scenario>`); pure
//! configuration checks run on embedded storage only.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nacos_plugins::jwt::{JwtKey, SAMPLE_SECRETS};
use nacos_server::cli::Mode;
use nacos_server::grpc::dispatch::GrpcGuard;
use nacos_server::http::secured::M;
use nacos_server::protocol::transport::{Metadata, Payload};
use nacos_server::settings::Properties;
use nacos_server::{App, Settings};
use serde_json::{Value, json};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

use crate::support::{Storage, TestServer, on_every_backend};

on_every_backend!(
    http_route_matrix,
    password_change_is_for_the_admin_or_the_same_user,
    login_shape_and_the_seed_commands_with_a_token,
    removed_permissions_stop_applying,
    user_management_rules,
    auth_disabled_login_still_checks_the_password,
    grpc_payload_matrix,
    nacos_sdk_logs_in_with_username_and_password,
    resources_follow_the_request_parameters,
);

pub(crate) const SECRET: &str = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5YWI=";
pub(crate) const ID_KEY: &str = "X-Peer-Identity";
pub(crate) const ID_VALUE: &str = "peer-secret-value";
pub(crate) const ADMIN_PW: &str = "admin-pass-1";

pub(crate) fn auth_props() -> Vec<(&'static str, &'static str)> {
    vec![
        ("nacos.core.auth.enabled", "true"),
        ("nacos.core.auth.plugin.nacos.token.secret.key", SECRET),
        ("nacos.core.auth.server.identity.key", ID_KEY),
        ("nacos.core.auth.server.identity.value", ID_VALUE),
    ]
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Log in; the token.
pub(crate) async fn login(s: &TestServer, user: &str, password: &str) -> String {
    let resp = s
        .client
        .post(s.url(&format!("/v1/auth/users/login?username={user}")))
        .form(&[("password", password)])
        .send()
        .await
        .expect("login request");
    assert_eq!(resp.status(), 200, "login of {user}");
    let body: Value = resp.json().await.expect("login json");
    body["accessToken"]
        .as_str()
        .expect("accessToken string")
        .to_string()
}

/// Post a form as the admin and expect HTTP 200.
pub(crate) async fn admin_post(s: &TestServer, token: &str, path: &str, form: &[(&str, &str)]) {
    let resp = s
        .client
        .post(s.url(path))
        .header("accessToken", token)
        .form(form)
        .send()
        .await
        .expect("admin request");
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{path}: {body}");
}

/// Create the first admin (`nacos` / [`ADMIN_PW`]) and log in; the admin's token.
pub(crate) async fn init_admin(s: &TestServer) -> String {
    let resp = s
        .client
        .post(s.url("/v1/auth/users/admin"))
        .form(&[("password", ADMIN_PW)])
        .send()
        .await
        .expect("init admin");
    assert_eq!(resp.status(), 200);
    login(s, "nacos", ADMIN_PW).await
}

/// As the admin: namespaces with these ids (their names the same).
pub(crate) async fn create_namespaces(s: &TestServer, admin: &str, ids: &[&str]) {
    for ns in ids {
        admin_post(
            s,
            admin,
            "/v1/console/namespaces",
            &[("customNamespaceId", ns), ("namespaceName", ns)],
        )
        .await;
    }
}

/// As the admin: a user with one role holding `action` on `resource`; the user's token.
pub(crate) async fn grant_user(
    s: &TestServer,
    admin: &str,
    (user, password): (&str, &str),
    role: &str,
    (resource, action): (&str, &str),
) -> String {
    admin_post(
        s,
        admin,
        "/v1/auth/users",
        &[("username", user), ("password", password)],
    )
    .await;
    admin_post(
        s,
        admin,
        "/v1/auth/roles",
        &[("role", role), ("username", user)],
    )
    .await;
    admin_post(
        s,
        admin,
        "/v1/auth/permissions",
        &[("role", role), ("resource", resource), ("action", action)],
    )
    .await;
    login(s, user, password).await
}

/// A server with auth on: admin `nacos`, `alice` (role `devs`: rw on the public namespace and
/// the naming switches, r on the cluster resources) and `bob` (role `others`: rw on namespace `other` only).
pub(crate) struct Fixture {
    pub(crate) server: TestServer,
    pub(crate) admin: String,
    pub(crate) alice: String,
    pub(crate) bob: String,
}

async fn fixture(storage: Storage) -> Fixture {
    fixture_with(storage, &[]).await
}

/// [`fixture`] with properties on top of [`auth_props`].
pub(crate) async fn fixture_with(storage: Storage, extra: &[(&str, &str)]) -> Fixture {
    let mut props: Vec<(&str, &str)> = auth_props();
    props.extend_from_slice(extra);
    let server = TestServer::start_on(storage, &props).await;
    let s = &server;
    let resp = s
        .client
        .post(s.url("/v1/auth/users/admin"))
        .form(&[("password", ADMIN_PW)])
        .send()
        .await
        .expect("init admin");
    let body: Value = resp.json().await.expect("admin json");
    assert_eq!(body["username"], "nacos");
    assert_eq!(body["password"], ADMIN_PW);
    let admin = login(s, "nacos", ADMIN_PW).await;
    for (user, role) in [("alice", "devs"), ("bob", "others")] {
        admin_post(
            s,
            &admin,
            "/v1/auth/users",
            &[("username", user), ("password", "pw-of-user")],
        )
        .await;
        admin_post(
            s,
            &admin,
            "/v1/auth/roles",
            &[("role", role), ("username", user)],
        )
        .await;
    }
    for (role, resource, action) in [
        ("devs", ":*:*", "rw"),
        ("devs", "/v1/core/cluster", "r"),
        ("devs", "/v2/core/cluster", "r"),
        // Switch changes need a grant naming `naming/switches` (bob has none).
        ("devs", "naming/switches", "rw"),
        ("others", "other:*:*", "rw"),
    ] {
        admin_post(
            s,
            &admin,
            "/v1/auth/permissions",
            &[("role", role), ("resource", resource), ("action", action)],
        )
        .await;
    }
    let alice = login(s, "alice", "pw-of-user").await;
    let bob = login(s, "bob", "pw-of-user").await;
    Fixture {
        server,
        admin,
        alice,
        bob,
    }
}

fn method(m: M) -> reqwest::Method {
    match m {
        M::Get => reqwest::Method::GET,
        M::Post => reqwest::Method::POST,
        M::Put => reqwest::Method::PUT,
        M::Delete => reqwest::Method::DELETE,
        M::Patch => reqwest::Method::PATCH,
    }
}

/// One request with an optional `accessToken` header; (status, body).
pub(crate) async fn send(s: &TestServer, m: M, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = s
        .client
        .request(method(m), s.url(path))
        .timeout(Duration::from_secs(10));
    if let Some(token) = token {
        req = req.header("accessToken", token);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

fn is_login(path: &str) -> bool {
    path.ends_with("/login")
}

async fn http_route_matrix(storage: Storage) {
    let f = fixture(storage).await;
    let s = &f.server;
    let key = JwtKey::from_base64(SECRET);
    let expired = key.sign("alice", now() - 10);
    let table = nacos_server::http::route_table();
    assert!(table.len() > 40, "the route table lists every route");
    let paths: std::collections::BTreeSet<&str> = table.iter().map(|d| d.path).collect();

    // Every method a path serves is declared: probing undeclared methods either finds them
    // unserved (405) or names the missing declaration.
    for path in &paths {
        for m in M::ALL {
            let declared = table.iter().any(|d| d.path == *path && d.method == m);
            if !declared {
                let (status, body) = send(s, m, path, Some(&f.admin)).await;
                assert_eq!(
                    status, 405,
                    "{m:?} {path} is served without a declaration: {body}"
                );
            }
        }
    }

    for decl in &table {
        let (path, m) = (decl.path, decl.method);
        if m != M::Get && path == "/v1/cs/configs/listener" {
            // A long poll: covered with parameters below.
            continue;
        }
        let what = format!("{m:?} {path} ({:?})", decl.guard);
        // Parameters every resolver of a keyed route can read (a config, a service, a key).
        let target = format!(
            "{path}?namespaceId=public&dataId=matrix.d&group=matrix.g&serviceName=matrix.s&key=matrix.g%40%40matrix.s"
        );
        let refused = |who: &str, (status, body): (u16, String), message: &str| {
            assert_eq!(status, 403, "{what} as {who}: {body}");
            assert!(body.contains(message), "{what} as {who}: {body}");
        };
        let passed = |who: &str, (status, body): (u16, String)| {
            assert_ne!(status, 403, "{what} as {who}: {body}");
            assert!(!body.contains("no auth declaration"), "{what}: {body}");
        };
        if decl.guard.is_open() {
            if !is_login(path) {
                passed("anonymous", send(s, m, &target, None).await);
                passed("bad token", send(s, m, &target, Some("garbage")).await);
            }
            continue;
        }
        refused(
            "anonymous",
            send(s, m, &target, None).await,
            "user not found!",
        );
        refused(
            "bad token",
            send(s, m, &target, Some("garbage")).await,
            "token invalid!",
        );
        refused(
            "expired token",
            send(s, m, &target, Some(&expired)).await,
            "token expired!",
        );
        // `console/*` and `nacos/admin`: no grant of the fixture names them, only the admin passes.
        let console = decl
            .guard
            .fixed_name()
            .is_some_and(|name| name.starts_with("console/") || name == "nacos/admin");
        let password_change = decl.guard.fixed_name() == Some("console/user/password");
        if password_change {
            // The role check passes; the handler allows only the admin or the same user.
            passed("bob", send(s, m, &target, Some(&f.bob)).await);
        } else {
            refused(
                "bob",
                send(s, m, &target, Some(&f.bob)).await,
                "authorization failed!",
            );
        }
        if console && !password_change {
            refused(
                "alice",
                send(s, m, &target, Some(&f.alice)).await,
                "authorization failed!",
            );
        } else {
            passed("alice", send(s, m, &target, Some(&f.alice)).await);
        }
        passed("admin", send(s, m, &target, Some(&f.admin)).await);
    }

    // The listener with parameters answers at once for a stale md5 (alice may read).
    let listen = format!("d1{}g1{}stale{}", '\u{2}', '\u{2}', '\u{1}');
    for (token, expect) in [(&f.alice, 200), (&f.bob, 403)] {
        let resp = s
            .client
            .post(s.url("/v1/cs/configs/listener"))
            .header("accessToken", token.as_str())
            .header("Long-Pulling-Timeout", "500")
            .form(&[("Listening-Configs", listen.as_str())])
            .send()
            .await
            .expect("listener");
        assert_eq!(resp.status(), expect);
    }
}

async fn password_change_is_for_the_admin_or_the_same_user(storage: Storage) {
    let f = fixture(storage).await;
    let s = &f.server;
    let put = |token: &str, user: &str| {
        s.client
            .put(s.url("/v1/auth/users"))
            .header("accessToken", token.to_string())
            .form(&[("username", user), ("newPassword", "pw-changed")])
            .send()
    };
    assert_eq!(put(&f.bob, "alice").await.expect("put").status(), 403);
    assert_eq!(put(&f.bob, "bob").await.expect("put").status(), 200);
    assert_eq!(put(&f.admin, "alice").await.expect("put").status(), 200);
    login(s, "alice", "pw-changed").await;
}

async fn login_shape_and_the_seed_commands_with_a_token(storage: Storage) {
    let f = fixture(storage).await;
    let s = &f.server;
    for path in ["/v1/auth/login", "/v1/auth/users/login"] {
        let resp = s
            .client
            .post(s.url(&format!("{path}?username=nacos&password={ADMIN_PW}")))
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status(), 200);
        let header = resp
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .expect("Authorization header");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["tokenTtl"], 18000, "a number");
        assert_eq!(body["globalAdmin"], true);
        assert_eq!(body["username"], "nacos");
        assert_eq!(
            header,
            format!("Bearer {}", body["accessToken"].as_str().expect("token"))
        );
    }
    let resp = s
        .client
        .post(s.url("/v1/auth/users/login?username=nacos&password=wrong"))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 403);
    assert!(
        resp.text()
            .await
            .unwrap_or_default()
            .contains("user not found!")
    );

    let token = login(s, "nacos", ADMIN_PW).await;
    let seed = [
        (
            M::Post,
            "/v1/ns/instance?serviceName=nacos.naming.serviceName&ip=20.18.7.10&port=8080",
        ),
        (
            M::Get,
            "/v1/ns/instance/list?serviceName=nacos.naming.serviceName",
        ),
        (
            M::Post,
            "/v1/cs/configs?dataId=nacos.cfg.dataId&group=test&content=helloWorld",
        ),
        (M::Get, "/v1/cs/configs?dataId=nacos.cfg.dataId&group=test"),
    ];
    for (m, path) in seed {
        let (status, body) = send(s, m, path, None).await;
        assert_eq!(status, 403, "{path} without a token: {body}");
        let with_param = format!("{path}&accessToken={token}");
        let (status, body) = send(s, m, &with_param, None).await;
        assert_eq!(status, 200, "{path} with accessToken: {body}");
    }
    let (_, content) = send(
        s,
        M::Get,
        "/v1/cs/configs?dataId=nacos.cfg.dataId&group=test",
        Some(&token),
    )
    .await;
    assert_eq!(content, "helloWorld");
    // Bearer and username/password identities work too (the Node SDK sends the latter).
    let resp = s
        .client
        .get(s.url("/v1/cs/configs?dataId=nacos.cfg.dataId&group=test"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("bearer");
    assert_eq!(resp.status(), 200);
    let (status, _) = send(
        s,
        M::Get,
        &format!(
            "/v1/cs/configs?dataId=nacos.cfg.dataId&group=test&username=nacos&password={ADMIN_PW}"
        ),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn peers_need_the_identity_header_and_user_agent_gets_nothing() {
    let f = fixture(Storage::Embedded).await;
    let s = &f.server;
    let path = "/v1/cs/configs?dataId=d&group=g&content=c";
    let post = |headers: &[(&str, &str)]| {
        let mut req = s.client.post(s.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    assert_eq!(post(&[]).await.expect("post").status(), 403);
    assert_eq!(
        post(&[("User-Agent", "Nacos-Server:v2.4.3")])
            .await
            .expect("post")
            .status(),
        403,
        "no User-Agent bypass"
    );
    assert_eq!(
        post(&[(ID_KEY, "wrong-value")])
            .await
            .expect("post")
            .status(),
        403
    );
    assert_eq!(
        post(&[(ID_KEY, ID_VALUE)]).await.expect("post").status(),
        200,
        "the server identity passes"
    );
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let f = fixture(Storage::Embedded).await;
    let s = &f.server;
    let path = "/v1/cs/configs?dataId=d&group=g";
    for sample in SAMPLE_SECRETS {
        let forged = JwtKey::from_base64(sample).sign("nacos", now() + 3600);
        let (status, body) = send(s, M::Get, path, Some(&forged)).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("Invalid signature"), "{body}");
    }
    // A token with a `typ` header is not one Nacos issues.
    let good = login(s, "alice", "pw-of-user").await;
    let typ = good.replacen(
        nacos_plugins::jwt::HS256_HEADER,
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
        1,
    );
    let (status, body) = send(s, M::Get, path, Some(&typ)).await;
    assert_eq!(status, 403);
    assert!(body.contains("unsupported signature algorithm"), "{body}");
}

async fn removed_permissions_stop_applying(storage: Storage) {
    let f = fixture(storage).await;
    let s = &f.server;
    let path = "/v1/cs/configs?dataId=d&group=g";
    // Removing alice's permission takes effect (well within seconds).
    assert_ne!(send(s, M::Get, path, Some(&f.alice)).await.0, 403);
    let resp = s
        .client
        .delete(s.url("/v1/auth/permissions?role=devs&resource=:*:*&action=rw"))
        .header("accessToken", f.admin.as_str())
        .send()
        .await
        .expect("delete permission");
    assert_eq!(resp.status(), 200);
    let started = std::time::Instant::now();
    loop {
        if send(s, M::Get, path, Some(&f.alice)).await.0 == 403 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "permission change not applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn login_failures_are_rate_limited() {
    let f = fixture(Storage::Embedded).await;
    let s = &f.server;
    let attempt = |password: &'static str| {
        s.client
            .post(s.url("/v1/auth/users/login?username=alice"))
            .form(&[("password", password)])
            .send()
    };
    for _ in 0..nacos_plugins::nacos::MAX_LOGIN_FAILURES {
        assert_eq!(attempt("wrong").await.expect("login").status(), 403);
    }
    let resp = attempt("pw-of-user").await.expect("login");
    assert_eq!(resp.status(), 403);
    assert!(
        resp.text()
            .await
            .unwrap_or_default()
            .contains("too many failed login attempts")
    );
    // Another user from the same address is not affected.
    login(s, "bob", "pw-of-user").await;
}

async fn user_management_rules(storage: Storage) {
    let f = fixture(storage).await;
    let s = &f.server;
    let admin = f.admin.as_str();
    let post = |path: &str, form: Vec<(&'static str, &'static str)>| {
        s.client
            .post(s.url(path))
            .header("accessToken", admin)
            .form(&form)
            .send()
    };
    // `nacos` cannot be created through /users: RestResult 409 with HTTP 200.
    let resp = post(
        "/v1/auth/users",
        vec![("username", "nacos"), ("password", "x")],
    )
    .await
    .expect("create");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], 409);
    // An existing user: 400.
    let resp = post(
        "/v1/auth/users",
        vec![("username", "alice"), ("password", "x")],
    )
    .await
    .expect("create");
    assert_eq!(resp.status(), 400);
    // ROLE_ADMIN cannot be granted.
    let resp = post(
        "/v1/auth/roles",
        vec![("role", "ROLE_ADMIN"), ("username", "alice")],
    )
    .await
    .expect("role");
    assert_eq!(resp.status(), 400);
    // A second admin initialisation is refused.
    let resp = post("/v1/auth/users/admin", vec![("password", "again")])
        .await
        .expect("admin");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], 409);
    // The admin cannot be deleted.
    let resp = s
        .client
        .delete(s.url("/v1/auth/users?username=nacos"))
        .header("accessToken", admin)
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status(), 400);
    // Pages have Nacos's shape; hashes are BCrypt `$2a$`.
    let resp = s
        .client
        .get(s.url("/v1/auth/users?pageNo=1&pageSize=10&search=accurate"))
        .header("accessToken", admin)
        .send()
        .await
        .expect("list");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["totalCount"], 3);
    let hash = body["pageItems"][0]["password"].as_str().expect("hash");
    assert!(hash.starts_with("$2a$10$"), "{hash}");
    let resp = s
        .client
        .get(s.url("/v1/auth/roles/search?role=dev"))
        .header("accessToken", admin)
        .send()
        .await
        .expect("search");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body, json!(["devs"]));
}

// ---------------------------------------------------------------------------------------------
// Start-up refusals

pub(crate) async fn open_with(props: &[(&str, &str)]) -> Result<(), String> {
    let home = tempfile::tempdir().expect("home");
    let settings = Settings::from_properties(
        Mode::Standalone,
        home.path().to_path_buf(),
        Properties::from_pairs(props.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
    )
    .expect("settings");
    App::open(settings)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub(crate) fn with<'a>(overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut props: HashMap<&str, &str> = auth_props().into_iter().collect();
    for (k, v) in overrides {
        props.insert(k, v);
    }
    props.into_iter().collect()
}

#[tokio::test]
async fn unsafe_settings_are_refused_at_start() {
    open_with(&auth_props()).await.expect("safe settings start");
    let secret = "nacos.core.auth.plugin.nacos.token.secret.key";
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (with(&[(secret, "")]), secret),
        (with(&[(secret, SAMPLE_SECRETS[0])]), secret),
        (with(&[(secret, SAMPLE_SECRETS[1])]), secret),
        (with(&[(secret, "c2hvcnQta2V5")]), secret),
        (
            with(&[("nacos.core.auth.server.identity.key", "")]),
            "nacos.core.auth.server.identity.key",
        ),
        (
            with(&[("nacos.core.auth.server.identity.value", " ")]),
            "nacos.core.auth.server.identity.value",
        ),
        (
            with(&[("nacos.core.auth.system.type", "ldap")]),
            "known plugins: nacos, static-token",
        ),
    ];
    for (props, property) in cases {
        let err = open_with(&props).await.expect_err("refused");
        assert!(err.contains(property), "{err}");
        assert!(
            !err.contains(SAMPLE_SECRETS[0]),
            "the secret is not echoed: {err}"
        );
    }
    // Auth disabled (default): nothing is required.
    open_with(&[]).await.expect("defaults start");
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output() {
    let s = TestServer::start_with(&auth_props()).await;
    let debug = format!("{:?}", s.app());
    assert!(!debug.contains(SECRET), "secret key in Debug output");
    assert!(!debug.contains(ID_VALUE), "identity value in Debug output");
}

async fn auth_disabled_login_still_checks_the_password(storage: Storage) {
    let s = TestServer::start_on(storage, &[]).await;
    let resp = s
        .client
        .post(s.url("/v1/auth/users/admin"))
        .form(&[("password", "pw")])
        .send()
        .await
        .expect("admin");
    assert_eq!(resp.status(), 200);
    let resp = s
        .client
        .post(s.url("/v1/auth/login?username=nacos&password=pw"))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["accessToken"], "AUTH_DISABLED");
    let resp = s
        .client
        .post(s.url("/v1/auth/login?username=nacos&password=bad"))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 403);
    // And nothing is enforced.
    let (status, _) = send(&s, M::Get, "/v1/cs/configs?dataId=a&group=b", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn static_token_plugin_is_selected_by_name() {
    let s = TestServer::start_with(&[
        ("nacos.core.auth.enabled", "true"),
        ("nacos.core.auth.system.type", "static-token"),
        (
            "nacos.core.auth.plugin.static-token.tokens",
            "reader:reader-token-0123456:r, ops:ops-token-0123456789:rw",
        ),
        ("nacos.core.auth.server.identity.key", ID_KEY),
        ("nacos.core.auth.server.identity.value", ID_VALUE),
    ])
    .await;
    let path = "/v1/cs/configs?dataId=d&group=g&content=c";
    assert_eq!(send(&s, M::Post, path, None).await.0, 403);
    assert_eq!(
        send(&s, M::Post, path, Some("reader-token-0123456"))
            .await
            .0,
        403
    );
    assert_eq!(
        send(&s, M::Post, path, Some("ops-token-0123456789"))
            .await
            .0,
        200
    );
    assert_eq!(
        send(&s, M::Get, path, Some("reader-token-0123456")).await.0,
        200
    );
    // The console reports the plugin (the endpoint is open).
    let (status, body) = send(&s, M::Get, "/v1/console/server/state", None).await;
    assert_eq!(status, 200);
    let state: Value = serde_json::from_str(&body).expect("state json");
    assert_eq!(state["auth_enabled"], "true");
    assert_eq!(state["auth_system_type"], "static-token");
    // No login with this plugin.
    let resp = s
        .client
        .post(s.url("/v1/auth/login?username=a&password=b"))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 501);
}

// ---------------------------------------------------------------------------------------------
// gRPC

pub(crate) fn payload(type_name: &str, headers: HashMap<String, String>, body: &Value) -> Payload {
    Payload {
        metadata: Some(Metadata {
            r#type: type_name.to_string(),
            client_ip: "127.0.0.1".to_string(),
            headers,
        }),
        body: Some(prost_types::Any {
            type_url: String::new(),
            value: serde_json::to_vec(body).expect("json"),
        }),
    }
}

pub(crate) async fn unary(channel: &Channel, p: Payload) -> (String, Value) {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    let out = grpc
        .unary(
            tonic::Request::new(p),
            PathAndQuery::from_static("/Request/request"),
            ProstCodec::<Payload, Payload>::default(),
        )
        .await
        .expect("unary")
        .into_inner();
    let t = out
        .metadata
        .as_ref()
        .map(|m| m.r#type.clone())
        .unwrap_or_default();
    let body = out.body.map(|b| b.value).unwrap_or_default();
    (t, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// A registered raw connection: bi-stream setup, then health checks until registered.
pub(crate) async fn grpc_connect(
    s: &TestServer,
) -> (
    Channel,
    tokio::sync::mpsc::Sender<Payload>,
    tonic::Streaming<Payload>,
) {
    let channel = Endpoint::from_shared(format!("http://{}", s.grpc_addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    let stream = grpc
        .streaming(
            tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx)),
            PathAndQuery::from_static("/BiRequestStream/requestBiStream"),
            ProstCodec::<Payload, Payload>::default(),
        )
        .await
        .expect("bi-stream")
        .into_inner();
    tx.send(payload(
        "ConnectionSetupRequest",
        HashMap::new(),
        &json!({"clientVersion": "auth-test", "tenant": "", "labels": {"source": "sdk"},
                "abilities": {}, "headers": {}, "module": "internal"}),
    ))
    .await
    .expect("setup");
    let started = std::time::Instant::now();
    loop {
        let (t, _) = unary(
            &channel,
            payload("HealthCheckRequest", HashMap::new(), &json!({})),
        )
        .await;
        if t == "HealthCheckResponse" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never registered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (channel, tx, stream)
}

/// A body for each payload type that passes parsing, in the public namespace.
fn grpc_body(type_name: &str) -> Value {
    match type_name {
        "ConfigBatchListenRequest" => json!({
            "listen": true,
            "configListenContexts": [{"dataId": "d", "group": "g", "tenant": "", "md5": ""}],
        }),
        t if t.starts_with("Config") => json!({
            "dataId": "d", "group": "g", "tenant": "", "content": "c",
        }),
        "BatchInstanceRequest" => json!({
            "namespace": "public", "serviceName": "svc", "groupName": "DEFAULT_GROUP",
            "type": "batchRegisterInstance",
            "instances": [{"ip": "10.0.0.1", "port": 80, "ephemeral": true, "clusterName": "DEFAULT",
                           "weight": 1.0, "healthy": true, "enabled": true}],
        }),
        t if t.ends_with("InstanceRequest") => json!({
            "namespace": "public", "serviceName": "svc", "groupName": "DEFAULT_GROUP",
            "type": "registerInstance",
            "instance": {"ip": "10.0.0.1", "port": 80,
                         "ephemeral": t == "InstanceRequest", "clusterName": "DEFAULT",
                         "weight": 1.0, "healthy": true, "enabled": true},
        }),
        _ => json!({
            "namespace": "public", "serviceName": "svc", "groupName": "DEFAULT_GROUP",
            "pageNo": 1, "pageSize": 10, "clusters": "", "subscribe": true,
        }),
    }
}

async fn grpc_payload_matrix(storage: Storage) {
    let f = fixture(storage).await;
    let s = &f.server;
    let declarations = nacos_server::grpc::Edge::new(s.app()).auth_declarations();
    assert!(declarations.len() >= 10, "{declarations:?}");
    let (channel, _tx, _stream) = grpc_connect(s).await;
    let expired = JwtKey::from_base64(SECRET).sign("alice", now() - 10);
    let headers = |token: Option<&str>| {
        let mut h = HashMap::new();
        if let Some(t) = token {
            h.insert("accessToken".to_string(), t.to_string());
        }
        h
    };
    for (type_name, guard) in declarations {
        let body = grpc_body(type_name);
        let call = |token: Option<&str>| {
            let p = payload(type_name, headers(token), &body);
            let channel = channel.clone();
            async move { unary(&channel, p).await }
        };
        if guard == GrpcGuard::Open {
            let (t, v) = call(None).await;
            assert_ne!(v["errorCode"], 403, "{type_name}: {t} {v}");
            continue;
        }
        let expect_refused = |who: &str, (t, v): (String, Value), message: &str| {
            assert!(
                t.ends_with("Response") && t != "ErrorResponse",
                "{type_name} as {who}: {t}"
            );
            assert_eq!(v["resultCode"], 500, "{type_name} as {who}: {v}");
            assert_eq!(v["errorCode"], 403, "{type_name} as {who}: {v}");
            assert_eq!(v["message"], message, "{type_name} as {who}: {v}");
        };
        let expect_passed = |who: &str, (t, v): (String, Value)| {
            assert_ne!(v["errorCode"], 403, "{type_name} as {who}: {t} {v}");
        };
        expect_refused("anonymous", call(None).await, "user not found!");
        expect_refused("bad token", call(Some("garbage")).await, "token invalid!");
        expect_refused("expired", call(Some(&expired)).await, "token expired!");
        expect_refused("bob", call(Some(&f.bob)).await, "authorization failed!");
        expect_passed("alice", call(Some(&f.alice)).await);
        expect_passed("admin", call(Some(&f.admin)).await);
        // A peer carrying the server identity passes.
        let mut peer = HashMap::new();
        peer.insert(ID_KEY.to_string(), ID_VALUE.to_string());
        let (t, v) = unary(&channel, payload(type_name, peer, &body)).await;
        assert_ne!(v["errorCode"], 403, "{type_name} as peer: {t} {v}");
    }
}

async fn nacos_sdk_logs_in_with_username_and_password(storage: Storage) {
    use nacos_sdk::api::config::ConfigServiceBuilder;
    use nacos_sdk::api::naming::{NamingServiceBuilder, ServiceInstance};
    use nacos_sdk::api::props::ClientProps;

    let f = fixture(storage).await;
    let s = &f.server;
    let cache = tempfile::tempdir().expect("cache dir");
    let props = ClientProps::new()
        .server_addr(s.server_addr())
        .remote_grpc_port(s.grpc_addr.port())
        .env_first(false)
        .cache_dir(cache.path())
        .app_name("auth-it")
        .auth_username("alice")
        .auth_password("pw-of-user");
    let config = ConfigServiceBuilder::new(props.clone())
        .enable_auth_plugin_http()
        .build()
        .await
        .expect("config client");
    let published = config
        .publish_config("sdk.d".into(), "sdk.g".into(), "from-sdk".into(), None)
        .await
        .expect("publish with a token");
    assert!(published);
    let got = config
        .get_config("sdk.d".into(), "sdk.g".into())
        .await
        .expect("get with a token");
    assert_eq!(got.content(), "from-sdk");

    let naming = NamingServiceBuilder::new(props)
        .enable_auth_plugin_http()
        .build()
        .await
        .expect("naming client");
    let instance = ServiceInstance {
        ip: "10.1.1.1".into(),
        port: 8080,
        ..Default::default()
    };
    naming
        .register_instance("sdk-svc".into(), None, instance)
        .await
        .expect("register with a token");
    let all = naming
        .get_all_instances("sdk-svc".into(), None, Vec::new(), false)
        .await
        .expect("query with a token");
    assert_eq!(all.len(), 1);

    // Without credentials the same publish is refused.
    let anon_cache = tempfile::tempdir().expect("cache dir");
    let anon = ConfigServiceBuilder::new(
        ClientProps::new()
            .server_addr(s.server_addr())
            .remote_grpc_port(s.grpc_addr.port())
            .env_first(false)
            .cache_dir(anon_cache.path()),
    )
    .build()
    .await
    .expect("anonymous client");
    assert!(
        anon.publish_config("sdk.d".into(), "sdk.g".into(), "x".into(), None)
            .await
            .is_err(),
        "anonymous publish refused"
    );
}

async fn resources_follow_the_request_parameters(storage: Storage) {
    // bob may touch namespace `other` only: the resource must come from the parameters.
    let f = fixture(storage).await;
    let s = &f.server;
    for (path, allowed) in [
        ("/v1/cs/configs?tenant=other&dataId=d&group=g", true),
        ("/v1/cs/configs?tenant=public&dataId=d&group=g", false),
        ("/v2/cs/config?namespaceId=other&dataId=d&group=g", true),
        ("/v2/cs/config?dataId=d&group=g", false),
        (
            "/v1/ns/instance/list?namespaceId=other&serviceName=G@@svc",
            true,
        ),
        ("/v1/ns/instance/list?serviceName=svc", false),
        (
            "/v2/ns/instance/list?namespaceId=other&serviceName=svc&groupName=G",
            true,
        ),
        // `statuses` names its service only in `key`; that is what is checked.
        ("/v1/ns/instance/statuses?key=other%23%23G%40%40svc", true),
        ("/v1/ns/instance/statuses?key=G%40%40svc", false),
        (
            "/v1/ns/instance/statuses?namespaceId=other&key=G%40%40svc",
            false,
        ),
    ] {
        let (status, body) = send(s, M::Get, path, Some(&f.bob)).await;
        assert_eq!(status == 403, !allowed, "{path}: {status} {body}");
    }
    let (channel, _tx, _stream) = grpc_connect(s).await;
    let mut headers = HashMap::new();
    headers.insert("accessToken".to_string(), f.bob.clone());
    for (type_name, body, allowed) in [
        (
            "ConfigQueryRequest",
            json!({"dataId": "d", "group": "g", "tenant": "other"}),
            true,
        ),
        (
            "ConfigQueryRequest",
            json!({"dataId": "d", "group": "g", "tenant": ""}),
            false,
        ),
        (
            "ConfigBatchListenRequest",
            json!({"listen": true, "configListenContexts": [
                {"dataId": "d", "group": "g", "tenant": "other", "md5": ""}]}),
            true,
        ),
        (
            "ServiceQueryRequest",
            json!({"namespace": "other", "serviceName": "svc", "groupName": "G"}),
            true,
        ),
        (
            "ServiceQueryRequest",
            json!({"namespace": "public", "serviceName": "svc", "groupName": "G"}),
            false,
        ),
    ] {
        let (t, v) = unary(&channel, payload(type_name, headers.clone(), &body)).await;
        assert_eq!(
            v["errorCode"] == 403,
            !allowed,
            "{type_name} {body}: {t} {v}"
        );
    }
}
