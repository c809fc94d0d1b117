//! End-to-end: login throttling that holds (per user from any address, per address for any
//! user, forwarding headers only from trusted proxies, no overshoot under parallel tries, no
//! user enumeration by timing), the first-admin bootstrap (atomic; loopback only with auth
//! off), tokens of deleted users, and start-up refusal of sample secrets and identities.

use std::time::{Duration, Instant};

use nacos_plugins::jwt::SAMPLE_SECRETS;
use nacos_plugins::nacos::{MAX_LOGIN_FAILURES, MAX_SOURCE_FAILURES};
use nacos_server::cli::Mode;
use nacos_server::http::secured::M;
use nacos_server::settings::Properties;
use nacos_server::{App, Listeners, Settings};
use serde_json::Value;

use crate::auth::{
    ADMIN_PW, SECRET, admin_post, auth_props, fixture_with, login, open_with, send, with,
};
use crate::support::{Storage, TestServer, on_every_backend};

on_every_backend!(
    parallel_admin_bootstrap_creates_exactly_one,
    tokens_of_deleted_users_stop_working,
);

const TRUSTED: &str = "nacos.core.auth.trusted.proxies";
const SECRET_KEY: &str = "nacos.core.auth.plugin.nacos.token.secret.key";
const TOO_MANY: &str = "too many failed login attempts";

/// One login through `/v1/auth/users/login` with optional forwarding headers; (status, body).
async fn try_login(
    s: &TestServer,
    user: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut req = s
        .client
        .post(s.url("/v1/auth/users/login"))
        .form(&[("username", user), ("password", password)]);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("login request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

fn assert_refused_for_too_many(result: (u16, String), what: &str) {
    assert_eq!(result.0, 403, "{what}: {}", result.1);
    assert!(result.1.contains(TOO_MANY), "{what}: {}", result.1);
}

#[tokio::test]
async fn rotating_forwarded_for_cannot_brute_force_a_user() {
    // Without trusted proxies the headers are ignored; with the test client as a trusted
    // proxy every try really comes from another address. Either way the user's counter holds.
    for trusted in ["", "127.0.0.1/32"] {
        let f = fixture_with(Storage::Embedded, &[(TRUSTED, trusted)]).await;
        let s = &f.server;
        for i in 0..8 {
            let xff = format!("198.51.100.{i}");
            let (status, body) =
                try_login(s, "alice", "wrong", &[("X-Forwarded-For", xff.as_str())]).await;
            assert_eq!(status, 403, "{body}");
            if i < MAX_LOGIN_FAILURES {
                assert!(body.contains("user not found"), "try {i}: {body}");
            } else {
                assert!(body.contains(TOO_MANY), "try {i}: {body}");
            }
        }
        for xff in ["198.51.100.99", "203.0.113.1"] {
            assert_refused_for_too_many(
                try_login(s, "alice", "pw-of-user", &[("X-Forwarded-For", xff)]).await,
                &format!("right password from {xff} (trusted '{trusted}')"),
            );
        }
        assert_refused_for_too_many(
            try_login(s, "ALICE", "pw-of-user", &[]).await,
            "another spelling of the name",
        );
        // Other users are not affected.
        login(s, "bob", "pw-of-user").await;
    }
}

#[tokio::test]
async fn one_address_is_throttled_for_every_user_and_proxies_are_believed_only_when_trusted() {
    // Untrusted peer: the headers are ignored, so all tries count against 127.0.0.1.
    let f = fixture_with(Storage::Embedded, &[]).await;
    let s = &f.server;
    for i in 0..MAX_SOURCE_FAILURES {
        let xff = format!("198.51.100.{i}");
        let (status, body) = try_login(
            s,
            &format!("ghost{i}"),
            "x",
            &[("X-Forwarded-For", xff.as_str())],
        )
        .await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("user not found"), "{body}");
    }
    assert_refused_for_too_many(
        try_login(
            s,
            "bob",
            "pw-of-user",
            &[("X-Forwarded-For", "203.0.113.77")],
        )
        .await,
        "a forged X-Forwarded-For does not move an untrusted client elsewhere",
    );
    assert_refused_for_too_many(
        try_login(s, "bob", "pw-of-user", &[("X-Real-IP", "203.0.113.78")]).await,
        "nor does X-Real-IP",
    );

    // Trusted proxy: the right-most entry that is not a trusted proxy is the client.
    let f = fixture_with(Storage::Embedded, &[(TRUSTED, "127.0.0.1/32, 10.0.0.0/8")]).await;
    let s = &f.server;
    let attacker = [("X-Forwarded-For", "203.0.113.9")];
    for i in 0..MAX_SOURCE_FAILURES {
        let (status, body) = try_login(s, &format!("ghost{i}"), "x", &attacker).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("user not found"), "{body}");
    }
    assert_refused_for_too_many(
        try_login(s, "bob", "pw-of-user", &attacker).await,
        "the attacker's address is throttled for every user",
    );
    assert_refused_for_too_many(
        try_login(
            s,
            "bob",
            "pw-of-user",
            &[("X-Forwarded-For", "198.51.100.1, 203.0.113.9, 10.1.2.3")],
        )
        .await,
        "entries left of the client are the client's own writing; trusted hops are skipped",
    );
    for headers in [
        [("X-Forwarded-For", "203.0.113.10")],
        [("X-Forwarded-For", "203.0.113.9, 203.0.113.11")],
        [("X-Real-IP", "203.0.113.12")],
    ] {
        let (status, body) = try_login(s, "bob", "pw-of-user", &headers).await;
        assert_eq!(status, 200, "{headers:?}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_tries_never_exceed_the_limit() {
    let f = fixture_with(Storage::Embedded, &[(TRUSTED, "127.0.0.1/32")]).await;
    let s = &f.server;
    let mut tries = tokio::task::JoinSet::new();
    for i in 0..30 {
        let client = s.client.clone();
        let url = s.url("/v1/auth/users/login");
        tries.spawn(async move {
            let resp = client
                .post(url)
                .header("X-Forwarded-For", format!("198.51.100.{i}"))
                .form(&[("username", "alice"), ("password", "wrong")])
                .send()
                .await
                .expect("login request");
            (
                resp.status().as_u16(),
                resp.text().await.unwrap_or_default(),
            )
        });
    }
    let (mut checked, mut throttled) = (0, 0);
    while let Some(result) = tries.join_next().await {
        let (status, body) = result.expect("task");
        assert_eq!(status, 403, "{body}");
        if body.contains(TOO_MANY) {
            throttled += 1;
        } else {
            assert!(body.contains("user not found"), "{body}");
            checked += 1;
        }
    }
    assert_eq!(checked, MAX_LOGIN_FAILURES, "passwords actually checked");
    assert_eq!(throttled, 30 - MAX_LOGIN_FAILURES);
    assert_refused_for_too_many(
        try_login(
            s,
            "alice",
            "pw-of-user",
            &[("X-Forwarded-For", "203.0.113.5")],
        )
        .await,
        "the right password after the parallel burst",
    );
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn unknown_users_cost_as_much_as_known_ones() {
    // Each try from another (trusted-proxy) address; under the per-user limit.
    let f = fixture_with(Storage::Embedded, &[(TRUSTED, "127.0.0.1/32")]).await;
    let s = &f.server;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    let mut no_check = Vec::new();
    for i in 0..MAX_LOGIN_FAILURES - 1 {
        let xff = format!("198.51.100.{i}");
        let headers = [("X-Forwarded-For", xff.as_str())];
        let started = Instant::now();
        let (status, _) = try_login(s, "alice", "wrong", &headers).await;
        known.push(started.elapsed());
        assert_eq!(status, 403);
        let started = Instant::now();
        let (status, _) = try_login(s, &format!("nobody{i}"), "wrong", &headers).await;
        unknown.push(started.elapsed());
        assert_eq!(status, 403);
        // An empty password is refused before any check: the cost of the round trip alone.
        let started = Instant::now();
        let (status, _) = try_login(s, "alice", "", &headers).await;
        no_check.push(started.elapsed());
        assert_eq!(status, 403);
    }
    let (known, unknown, no_check) = (median(known), median(unknown), median(no_check));
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    assert!(
        (0.4..2.5).contains(&ratio),
        "unknown user {unknown:?} vs known user {known:?}"
    );
    assert!(
        unknown > no_check * 3,
        "an unknown user runs a BCrypt verification: {unknown:?} vs round trip {no_check:?}"
    );
}

async fn parallel_admin_bootstrap_creates_exactly_one(storage: Storage) {
    let s = TestServer::start_on(storage, &auth_props()).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..8 {
        let client = s.client.clone();
        let url = s.url("/v1/auth/users/admin");
        calls.spawn(async move {
            let password = format!("first-admin-pw-{i}");
            let resp = client
                .post(url)
                .form(&[("password", password.as_str())])
                .send()
                .await
                .expect("init admin");
            assert_eq!(resp.status(), 200);
            let body: Value = resp.json().await.expect("json");
            (password, body)
        });
    }
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    while let Some(result) = calls.join_next().await {
        let (password, body) = result.expect("task");
        if body["code"] == 409 {
            losers.push(password);
        } else {
            assert_eq!(body["username"], "nacos", "{body}");
            assert_eq!(body["password"], password.as_str(), "{body}");
            winners.push(password);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one bootstrap wins: {winners:?}");
    assert_eq!(losers.len(), 7);
    // The first password stays; a later call does not replace it.
    let resp = s
        .client
        .post(s.url("/v1/auth/users/admin"))
        .form(&[("password", "late-pw")])
        .send()
        .await
        .expect("late init");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["code"], 409, "{body}");
    for password in [losers[0].as_str(), "late-pw"] {
        let (status, _) = try_login(&s, "nacos", password, &[]).await;
        assert_eq!(status, 403, "{password} is not the admin password");
    }
    let token = login(&s, "nacos", &winners[0]).await;
    // The winner is the admin: it may create users.
    admin_post(
        &s,
        &token,
        "/v1/auth/users",
        &[("username", "carol"), ("password", "pw")],
    )
    .await;
}

/// A local IPv4 address that is not loopback (the interface of the default route), if any.
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // Connecting a UDP socket sends nothing; it only picks the source address.
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn with_auth_off_the_admin_is_bootstrapped_from_loopback_only() {
    // A non-loopback peer: the server listens on this host's other address.
    match non_loopback_address() {
        None => eprintln!("SKIPPED: no non-loopback address (non-loopback bootstrap)"),
        Some(ip) => {
            let home = tempfile::tempdir().expect("home");
            let settings = Settings::from_properties(
                Mode::Standalone,
                home.path().to_path_buf(),
                Properties::default(),
            )
            .expect("settings");
            let http = tokio::net::TcpListener::bind((ip, 0))
                .await
                .expect("bind http");
            let port = http.local_addr().expect("addr").port();
            let grpc = tokio::net::TcpListener::bind((ip, 0))
                .await
                .expect("bind grpc");
            let app = App::open(settings).await.expect("server opens");
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let listeners = Listeners {
                http,
                grpc,
                cluster: None,
                raft: None,
            };
            let task = tokio::spawn(nacos_server::run(listeners, app, async move {
                let _ = rx.await;
            }));
            let resp = reqwest::Client::new()
                .post(format!("http://{ip}:{port}/nacos/v1/auth/users/admin"))
                .form(&[("password", "planted")])
                .send()
                .await
                .expect("init admin");
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            assert_eq!(status, 403, "{body}");
            assert!(body.contains("nacos.core.auth.enabled=false"), "{body}");
            let _ = tx.send(());
            task.await.expect("server task").expect("clean exit");
        }
    }

    // A loopback proxy that is trusted forwards for a remote client: refused; for itself: fine.
    let s = TestServer::start_with(&[(TRUSTED, "127.0.0.1/32")]).await;
    let post = |headers: &'static [(&'static str, &'static str)]| {
        let mut req = s
            .client
            .post(s.url("/v1/auth/users/admin"))
            .form(&[("password", ADMIN_PW)]);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    let resp = post(&[("X-Forwarded-For", "192.0.2.50")])
        .await
        .expect("init admin");
    assert_eq!(resp.status(), 403);
    let resp = post(&[]).await.expect("init admin");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["password"], ADMIN_PW);
}

async fn tokens_of_deleted_users_stop_working(storage: Storage) {
    let f = fixture_with(storage, &[]).await;
    let s = &f.server;
    let path = "/v1/cs/configs?dataId=d&group=g";
    // bob may read only in namespace `other`.
    let bob_path = "/v1/cs/configs?dataId=d&group=g&tenant=other";
    assert_ne!(send(s, M::Get, path, Some(&f.alice)).await.0, 403);
    assert_ne!(send(s, M::Get, bob_path, Some(&f.bob)).await.0, 403);

    // Deleted behind the node's back (as by another node of a cluster; the node's caches are
    // warm): within the cache window of 3 s.
    let deleted = s.app().repos.users.delete_user("bob").await;
    assert!(deleted.expect("delete"));
    let deleted_at = Instant::now();
    loop {
        // Judged by when the request was sent, so a slow answer on a loaded machine is fair.
        let sent = deleted_at.elapsed();
        let (status, body) = send(s, M::Get, bob_path, Some(&f.bob)).await;
        if status == 403 {
            // Deleting a user also deletes its role bindings; whichever of the two caches
            // refreshes first refuses the token (user not found, or no role grants the read).
            assert!(
                body.contains("user not found") || body.contains("authorization failed"),
                "{body}"
            );
            break;
        }
        assert!(
            sent < Duration::from_millis(3_200),
            "the token of a deleted user still works {sent:?} after the deletion"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Deleted through the API of this node: at once.
    let resp = s
        .client
        .delete(s.url("/v1/auth/users?username=alice"))
        .header("accessToken", f.admin.as_str())
        .send()
        .await
        .expect("delete alice");
    assert_eq!(resp.status(), 200);
    let (status, body) = send(s, M::Get, path, Some(&f.alice)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("user not found"), "{body}");

    // The admin's token is unaffected.
    assert_ne!(send(s, M::Get, path, Some(&f.admin)).await.0, 403);
}

#[tokio::test]
async fn sample_secrets_in_any_spelling_and_the_sample_identity_are_refused_at_start() {
    let unpadded = SAMPLE_SECRETS[1].trim_end_matches('=');
    let wrapped = format!(
        " {}\r\n{} ",
        &SAMPLE_SECRETS[1][..20],
        &SAMPLE_SECRETS[1][20..]
    );
    let over_padded = format!("{}==", SAMPLE_SECRETS[0]);
    for spelling in [unpadded, wrapped.as_str(), over_padded.as_str()] {
        let err = open_with(&with(&[(SECRET_KEY, spelling)]))
            .await
            .expect_err("sample secret refused");
        assert!(err.contains(SECRET_KEY), "{spelling:?}: {err}");
        assert!(err.contains("public sample key"), "{spelling:?}: {err}");
    }
    let identity_value = "nacos.core.auth.server.identity.value";
    let sample_identity = with(&[
        ("nacos.core.auth.server.identity.key", "serverIdentity"),
        (identity_value, "security"),
    ]);
    let err = open_with(&sample_identity)
        .await
        .expect_err("sample identity refused");
    assert!(err.contains(identity_value), "{err}");
    // Only the pair is refused: our own key with the sample value starts.
    open_with(&with(&[(identity_value, "security")]))
        .await
        .expect("own key, other value");
    // With auth off nothing is required.
    open_with(&[
        ("nacos.core.auth.server.identity.key", "serverIdentity"),
        (identity_value, "security"),
    ])
    .await
    .expect("auth off");
    // A malformed trusted-proxy list names the property.
    let home = tempfile::tempdir().expect("home");
    let err = Settings::from_properties(
        Mode::Standalone,
        home.path().to_path_buf(),
        Properties::from_pairs([(TRUSTED, "10.0.0.0/8, proxy.local")]),
    )
    .expect_err("bad list");
    assert!(err.to_string().contains(TRUSTED), "{err}");
    // The real secret still starts.
    open_with(&with(&[(SECRET_KEY, SECRET)]))
        .await
        .expect("own secret");
}
