//! End-to-end in a real headless Chromium (through chromedriver and the `fantoccini` WebDriver
//! client) against the real server started in this process: the console as a user drives it.
//!
//! - first start (admin password), logout, login; a YAML config created through the form, seen
//!   in the list, edited with the diff shown before publishing, rolled back through History,
//!   deleted; a namespace created and switched to; a user, role and permission created, and
//!   that user logged in seeing only what the permission allows;
//! - a service registered by the Rust `nacos-sdk` shown with its instance, taken offline, and
//!   the SDK's subscriber told;
//! - the console of a 3-node embedded cluster showing three UP nodes and the Raft leader.
//!
//! Chromium and chromedriver are Debian's (`chromium`, `chromium-driver`; `.ci/run` installs
//! them). Without them the tests print `SKIPPED`, or fail when `NACOS_TEST_REQUIRE_DB=1` or `CI`
//! is set. A failing scenario leaves a screenshot in `target/console-screenshots/<test>.png`.
//! With `NACOS_CONSOLE_README_SHOTS=<dir>` the scenarios also save the README's pictures there.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use nacos_sdk::api::naming::{
    NamingChangeEvent, NamingEventListener, NamingServiceBuilder, ServiceInstance,
};
use nacos_sdk::api::props::ClientProps;
use serde_json::json;

use crate::auth::auth_props;
use crate::support::{Storage, TestCluster, TestServer};

/// Steps wait this long for the page to show what they expect.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

type Outcome = Result<(), String>;

fn required() -> bool {
    let set = |name: &str| {
        std::env::var(name)
            .map(|v| !v.is_empty() && v != "0" && v != "false")
            .unwrap_or(false)
    };
    set("NACOS_TEST_REQUIRE_DB") || set("CI")
}

fn find_program(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Ok(path) = std::env::var(env) {
        return Some(PathBuf::from(path));
    }
    for candidate in candidates {
        let path = Path::new(candidate);
        if path.is_absolute() {
            if path.exists() {
                return Some(path.to_path_buf());
            }
            continue;
        }
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        for dir in std::env::split_paths(&path_var) {
            let full = dir.join(candidate);
            if full.exists() {
                return Some(full);
            }
        }
    }
    None
}

/// The chromedriver this test started, killed when dropped (it takes its browser with it).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless Chromium driven through a chromedriver this test started.
struct Browser {
    client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

/// Start chromedriver and a headless Chromium, or `None` (SKIPPED) when they are not installed.
async fn browser(test: &str) -> Option<Browser> {
    let chromium = find_program(
        "NACOS_TEST_CHROMIUM",
        &["/usr/bin/chromium", "chromium", "chromium-browser"],
    );
    let driver = find_program(
        "NACOS_TEST_CHROMEDRIVER",
        &["/usr/bin/chromedriver", "chromedriver"],
    );
    let (Some(chromium), Some(driver)) = (chromium, driver) else {
        let message = format!(
            "chromium or chromedriver not installed (apt-get install chromium chromium-driver) ({test})"
        );
        assert!(!required(), "{message}");
        eprintln!("SKIPPED: {message}");
        return None;
    };
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("addr").port()
    };
    let child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
    let driver = Driver(child);
    let profile = tempfile::tempdir().expect("browser profile dir");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < STEP_TIMEOUT,
            "chromedriver did not listen on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_string(),
        json!({
            "binary": chromium.to_string_lossy(),
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1280,800",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| panic!("cannot start a Chromium session: {e}"));
    Some(Browser {
        client,
        _driver: driver,
        _profile: profile,
    })
}

fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("console-screenshots")
}

async fn save_screenshot(c: &Client, path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match c.screenshot().await {
        Ok(png) => {
            let _ = std::fs::write(path, png);
            eprintln!("screenshot: {}", path.display());
        }
        Err(e) => eprintln!("no screenshot: {e}"),
    }
}

/// Run `scenario` in the browser; on failure save a screenshot, then fail the test.
async fn run<F, Fut>(test: &str, browser: Browser, scenario: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Outcome> + Send + 'static,
{
    let c = browser.client.clone();
    let started = Instant::now();
    let outcome = match tokio::spawn(scenario(c.clone())).await {
        Ok(outcome) => outcome,
        Err(panic) => Err(format!("the scenario panicked: {panic}")),
    };
    if let Err(message) = &outcome {
        let path = screenshot_dir().join(format!("{test}.png"));
        save_screenshot(&c, &path).await;
        let url = c
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let _ = c.clone().close().await;
        drop(browser);
        panic!("{test} failed at {url}: {message}");
    }
    let _ = c.close().await;
    drop(browser);
    eprintln!("{test}: browser scenario took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Page helpers: find by the words a user sees (labels, button texts, aria-labels).

fn xpath_literal(s: &str) -> String {
    if !s.contains('\'') {
        format!("'{s}'")
    } else {
        format!("\"{s}\"")
    }
}

async fn wait_for<T, Fut>(what: &str, mut probe: impl FnMut() -> Fut) -> Result<T, String>
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return Ok(found);
        }
        if started.elapsed() > STEP_TIMEOUT {
            return Err(format!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first displayed element matching `xpath`, waiting for one.
async fn el(c: &Client, xpath: &str) -> Result<fantoccini::elements::Element, String> {
    wait_for(xpath, || async {
        let found = c.find_all(Locator::XPath(xpath)).await.ok()?;
        for e in found {
            if e.is_displayed().await.unwrap_or(false) {
                return Some(e);
            }
        }
        None
    })
    .await
}

/// Click the button with this text or aria-label (inside an open dialog when one is open).
async fn click(c: &Client, name: &str) -> Result<(), String> {
    let lit = xpath_literal(name);
    let xpath = format!(
        "(//dialog[@open]//button[normalize-space()={lit} or @aria-label={lit}] | \
         //button[normalize-space()={lit} or @aria-label={lit}][not(ancestor::dialog)])"
    );
    // A button inside an open dialog wins over the page behind it.
    let in_dialog =
        format!("//dialog[@open]//button[normalize-space()={lit} or @aria-label={lit}]");
    let target = match c.find(Locator::XPath(&in_dialog)).await {
        Ok(e) => e,
        Err(_) => el(c, &xpath).await?,
    };
    target
        .click()
        .await
        .map_err(|e| format!("click {name}: {e}"))
}

async fn click_link(c: &Client, text: &str) -> Result<(), String> {
    let xpath = format!("//a[normalize-space()={}]", xpath_literal(text));
    el(c, &xpath)
        .await?
        .click()
        .await
        .map_err(|e| format!("click link {text}: {e}"))
}

/// The control labelled `label` (a dialog's when a dialog is open).
async fn control(c: &Client, label: &str) -> Result<fantoccini::elements::Element, String> {
    let lit = xpath_literal(label);
    let dialog = format!("//dialog[@open]//label[normalize-space()={lit}]");
    let page = format!("//label[normalize-space()={lit}]");
    let label_el = match c.find(Locator::XPath(&dialog)).await {
        Ok(e) => e,
        Err(_) => el(c, &page).await?,
    };
    let id = label_el
        .attr("for")
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("label {label} names no control"))?;
    c.find(Locator::Id(&id))
        .await
        .map_err(|e| format!("control of {label}: {e}"))
}

async fn fill(c: &Client, label: &str, value: &str) -> Result<(), String> {
    let input = control(c, label).await?;
    input
        .clear()
        .await
        .map_err(|e| format!("clear {label}: {e}"))?;
    input
        .send_keys(value)
        .await
        .map_err(|e| format!("type into {label}: {e}"))
}

async fn main_text(c: &Client) -> String {
    c.execute(
        "const m = document.querySelector('main'); const d = document.querySelector('dialog[open]'); \
         return (m ? m.innerText : '') + '\\n' + (d ? d.innerText : '');",
        vec![],
    )
    .await
    .ok()
    .and_then(|v| v.as_str().map(str::to_string))
    .unwrap_or_default()
}

async fn see(c: &Client, text: &str) -> Result<(), String> {
    wait_for(&format!("the page to show {text:?}"), || async {
        main_text(c).await.contains(text).then_some(())
    })
    .await
    .map_err(|e| e + "; see the screenshot")
}

async fn not_see(c: &Client, text: &str) -> Result<(), String> {
    wait_for(&format!("the page to stop showing {text:?}"), || async {
        (!main_text(c).await.contains(text)).then_some(())
    })
    .await
}

async fn texts(c: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(found) = c.find_all(Locator::Css(css)).await {
        for e in found {
            out.push(e.text().await.unwrap_or_default());
        }
    }
    out
}

async fn open(c: &Client, url: &str) -> Result<(), String> {
    c.goto(url).await.map_err(|e| format!("open {url}: {e}"))
}

async fn http_get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.header("accessToken", t);
    }
    match req.send().await {
        Ok(resp) => (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        ),
        Err(e) => (0, e.to_string()),
    }
}

fn check(cond: bool, what: impl Into<String>) -> Outcome {
    if cond { Ok(()) } else { Err(what.into()) }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

const PASSWORD: &str = "admin-pass-9";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_configs_namespaces_and_users_in_a_browser() {
    let Some(browser) = browser("console_configs_namespaces_and_users_in_a_browser").await else {
        return;
    };
    let s = TestServer::start_with(&auth_props()).await;
    let base = format!("http://{}/nacos", s.addr);
    let shots = std::env::var("NACOS_CONSOLE_README_SHOTS").ok();
    run(
        "console_configs_namespaces_and_users_in_a_browser",
        browser,
        move |c| async move {
            // First start: no admin yet, so the console asks for the admin password.
            open(&c, &format!("{base}/")).await?;
            see(&c, "Initialize the admin password").await?;
            fill(&c, "Password", PASSWORD).await?;
            fill(&c, "Confirm password", PASSWORD).await?;
            click(&c, "Submit").await?;
            see(&c, "Configurations").await?;
            // Log out and in again through the login form.
            click(&c, "Logout").await?;
            see(&c, "Login").await?;
            fill(&c, "Username", "nacos").await?;
            fill(&c, "Password", "wrong-password").await?;
            click(&c, "Submit").await?;
            see(&c, "Wrong username or password.").await?;
            fill(&c, "Password", PASSWORD).await?;
            click(&c, "Submit").await?;
            see(&c, "Create Configuration").await?;
            let token: String = c
                .execute(
                    "return JSON.parse(localStorage.getItem('token')).accessToken",
                    vec![],
                )
                .await
                .map_err(|e| e.to_string())?
                .as_str()
                .unwrap_or_default()
                .to_string();
            let admin = Some(token.as_str());

            // Create a YAML config through the form; a format error is shown before publishing.
            click(&c, "Create Configuration").await?;
            fill(&c, "Data ID", "app.yaml").await?;
            click_label(&c, "YAML").await?;
            fill(&c, "Configuration Content", "port: 1\nport: 2\n").await?;
            click(&c, "Publish").await?;
            see(&c, "duplicate key").await?;
            fill(&c, "Configuration Content", "server:\n  port: 8080\n").await?;
            click(&c, "Publish").await?;
            see(&c, "To publish").await?;
            click(&c, "Publish").await?; // in the confirmation dialog
            see(&c, "Published.").await?;
            // Seen in the list.
            click_link(&c, "Configurations").await?;
            see(&c, "app.yaml").await?;
            check(
                texts(&c, "table.grid td").await.iter().any(|t| t == "YAML"),
                "the list shows the format YAML",
            )?;
            if let Some(dir) = &shots {
                save_screenshot(&c, &Path::new(dir).join("console-configurations.png")).await;
            }

            // Edit: the confirmation shows the diff against the published version.
            click(&c, "Edit app.yaml").await?;
            see(&c, "Edit Configuration").await?;
            fill(&c, "Configuration Content", "server:\n  port: 9090\n").await?;
            click(&c, "Publish").await?;
            see(&c, "To publish").await?;
            let removed = texts(&c, "dialog[open] .d-del").await;
            let added = texts(&c, "dialog[open] .d-add").await;
            check(
                removed.iter().any(|t| t.contains("port: 8080")),
                format!("the diff shows the old line: {removed:?}"),
            )?;
            check(
                added.iter().any(|t| t.contains("port: 9090")),
                format!("the diff shows the new line: {added:?}"),
            )?;
            click(&c, "Publish").await?;
            see(&c, "Published.").await?;
            let config_url = format!("{base}/v1/cs/configs?dataId=app.yaml&group=DEFAULT_GROUP");
            let (_, content) = http_get(&config_url, admin).await;
            check(content.contains("9090"), format!("published: {content}"))?;

            // Roll back through History: the newest row (the update) holds the content before it.
            click_link(&c, "Configurations").await?;
            click(&c, "History of app.yaml").await?;
            see(&c, "Update").await?;
            let rollback = el(
                &c,
                "//button[starts-with(@aria-label,'Rollback to version')]",
            )
            .await?;
            rollback.click().await.map_err(|e| e.to_string())?;
            see(&c, "Current").await?;
            click(&c, "Rollback").await?; // in the dialog
            see(&c, "Rolled back.").await?;
            let (_, content) = http_get(&config_url, admin).await;
            check(content.contains("8080"), format!("rolled back: {content}"))?;

            // Delete.
            click_link(&c, "Configurations").await?;
            click(&c, "Delete app.yaml").await?;
            click(&c, "Delete").await?; // in the dialog
            see(&c, "No data").await?;
            let (status, _) = http_get(&config_url, admin).await;
            check(status == 404, format!("deleted: {status}"))?;

            // A namespace, created and switched to.
            click_link(&c, "Namespace").await?;
            click(&c, "Create Namespace").await?;
            fill(&c, "Namespace ID", "dev-ns").await?;
            fill(&c, "Namespace Name", "dev-ns").await?;
            click(&c, "OK").await?;
            see(&c, "Created.").await?;
            see(&c, "dev-ns").await?;
            for (tenant, data_id) in [("dev-ns", "dev.yaml"), ("", "public.yaml")] {
                let resp = reqwest::Client::new()
                    .post(format!("{base}/v1/cs/configs"))
                    .header("accessToken", &token)
                    .form(&[
                        ("dataId", data_id),
                        ("group", "G"),
                        ("tenant", tenant),
                        ("content", "a: 1"),
                    ])
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                check(resp.status() == 200, "publish through HTTP")?;
            }
            click_link(&c, "Configurations").await?;
            see(&c, "public.yaml").await?;
            click(&c, "dev-ns").await?;
            see(&c, "Namespace: dev-ns").await?;
            see(&c, "dev.yaml").await?;
            not_see(&c, "public.yaml").await?;

            // A user, a role and a permission (read-write on dev-ns).
            click_link(&c, "User List").await?;
            click(&c, "Create user").await?;
            fill(&c, "Username", "alice").await?;
            fill(&c, "Password", "alice-pass-1").await?;
            fill(&c, "Confirm password", "alice-pass-1").await?;
            click(&c, "OK").await?;
            see(&c, "alice").await?;
            click_link(&c, "Role Management").await?;
            click(&c, "Bind role").await?;
            fill(&c, "Role name", "dev-role").await?;
            fill(&c, "Username", "alice").await?;
            click(&c, "OK").await?;
            see(&c, "dev-role").await?;
            click_link(&c, "Privilege Management").await?;
            click(&c, "Add permission").await?;
            fill(&c, "Role name", "dev-role").await?;
            control(&c, "Resource")
                .await?
                .select_by_value("dev-ns")
                .await
                .map_err(|e| e.to_string())?;
            control(&c, "Action")
                .await?
                .select_by_value("rw")
                .await
                .map_err(|e| e.to_string())?;
            click(&c, "OK").await?;
            see(&c, "dev-ns:*:*").await?;

            // Alice sees dev-ns and nothing else.
            click(&c, "Logout").await?;
            fill(&c, "Username", "alice").await?;
            fill(&c, "Password", "alice-pass-1").await?;
            click(&c, "Submit").await?;
            see(&c, "Create Configuration").await?;
            see(&c, "dev.yaml").await?;
            click(&c, "public").await?;
            see(&c, "authorization failed").await?;
            not_see(&c, "public.yaml").await?;
            click_link(&c, "User List").await?;
            see(&c, "authorization failed").await?;

            // A token the server no longer accepts sends the user back to the login page.
            c.execute(
                "localStorage.setItem('token', JSON.stringify({accessToken: 'expired.token.value', username: 'alice'}))",
                vec![],
            )
            .await
            .map_err(|e| e.to_string())?;
            click_link(&c, "Configurations").await?;
            see(&c, "Your session has ended; please log in again.").await?;
            el(&c, "//button[normalize-space()='Submit']").await?;
            Ok(())
        },
    )
    .await;
}

async fn click_label(c: &Client, text: &str) -> Result<(), String> {
    let xpath = format!("//label[normalize-space()={}]", xpath_literal(text));
    el(c, &xpath)
        .await?
        .click()
        .await
        .map_err(|e| format!("click label {text}: {e}"))
}

struct Events(Mutex<Vec<Vec<String>>>);

impl NamingEventListener for Events {
    fn event(&self, event: Arc<NamingChangeEvent>) {
        let ips: Vec<String> = event
            .instances
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|i| format!("{}:{}", i.ip, i.port))
            .collect();
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(ips);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_takes_an_sdk_instance_offline_in_a_browser() {
    let Some(browser) = browser("console_takes_an_sdk_instance_offline_in_a_browser").await else {
        return;
    };
    let s = TestServer::start().await;
    let cache = tempfile::tempdir().expect("cache");
    let props = ClientProps::new()
        .server_addr(s.server_addr())
        .remote_grpc_port(s.grpc_addr.port())
        .env_first(false)
        .cache_dir(cache.path())
        .app_name("console-browser")
        .naming_push_empty_protection(false);
    let naming = NamingServiceBuilder::new(props)
        .build()
        .await
        .expect("naming client");
    let instance = ServiceInstance {
        ip: "10.0.0.7".to_string(),
        port: 8080,
        weight: 1.0,
        healthy: true,
        enabled: true,
        ephemeral: true,
        metadata: [("version".to_string(), "1.2".to_string())].into(),
        ..Default::default()
    };
    naming
        .register_instance("orders".into(), Some("DEFAULT_GROUP".into()), instance)
        .await
        .expect("register");
    let events = Arc::new(Events(Mutex::new(Vec::new())));
    naming
        .subscribe(
            "orders".into(),
            Some("DEFAULT_GROUP".into()),
            Vec::new(),
            events.clone(),
        )
        .await
        .expect("subscribe");
    let base = format!("http://{}/nacos", s.addr);
    let shots = std::env::var("NACOS_CONSOLE_README_SHOTS").ok();
    run(
        "console_takes_an_sdk_instance_offline_in_a_browser",
        browser,
        move |c| async move {
            open(&c, &format!("{base}/#/services")).await?;
            see(&c, "orders").await?;
            click(&c, "Details of orders").await?;
            see(&c, "Cluster DEFAULT").await?;
            see(&c, "10.0.0.7").await?;
            see(&c, "version=1.2").await?;
            if let Some(dir) = &shots {
                save_screenshot(&c, &Path::new(dir).join("console-service-detail.png")).await;
            }
            click(&c, "Take offline 10.0.0.7:8080").await?;
            see(&c, "offline").await?;
            el(&c, "//button[@aria-label='Bring online 10.0.0.7:8080']").await?;
            Ok(())
        },
    )
    .await;
    // The SDK's subscriber is told: the instance is no longer offered.
    let started = Instant::now();
    loop {
        let last = events
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last()
            .cloned();
        if last.as_ref().is_some_and(|ips| ips.is_empty()) {
            break;
        }
        assert!(
            started.elapsed() < STEP_TIMEOUT,
            "the subscriber never saw the instance go offline: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_shows_a_three_node_cluster_in_a_browser() {
    let Some(browser) = browser("console_shows_a_three_node_cluster_in_a_browser").await else {
        return;
    };
    let cluster = TestCluster::start(Storage::Embedded, 3, &[]).await;
    crate::cluster::all_up(&cluster).await;
    let addresses: Vec<String> = (0..3).map(|i| cluster.node(i).server_addr()).collect();
    let base = cluster.node(0).url("");
    run(
        "console_shows_a_three_node_cluster_in_a_browser",
        browser,
        move |c| async move {
            open(&c, &format!("{base}/#/cluster")).await?;
            see(&c, "Node List").await?;
            see(&c, "3 UP of 3").await?;
            for address in &addresses {
                see(&c, address).await?;
            }
            let states = texts(&c, "table.grid td .state").await;
            check(
                states.len() == 3 && states.iter().all(|s| s == "UP"),
                format!("three UP nodes: {states:?}"),
            )?;
            let leader = el(&c, "//*[@id='raft-leader']")
                .await?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            check(
                addresses.contains(&leader),
                format!("the leader {leader:?} is one of {addresses:?}"),
            )?;
            let roles = texts(&c, "table.grid tbody tr td:nth-child(5)").await;
            check(
                roles.iter().filter(|r| *r == "Leader").count() == 1
                    && roles.iter().filter(|r| *r == "Follower").count() == 2,
                format!("one leader and two followers: {roles:?}"),
            )?;
            Ok(())
        },
    )
    .await;
}
