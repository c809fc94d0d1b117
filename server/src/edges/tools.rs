//! The operator tools of the `nacos-server` binary ([`Tool`]: `backup`, `restore`,
//! `migrate`): open the stores the properties name, run [`crate::services::transfer`], show
//! progress (a bar on a terminal, plain lines otherwise), and fetch online backups from a
//! running server over HTTP.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::http::{Method, StatusCode, header};
use indicatif::{ProgressBar, ProgressStyle};
use nacos_core::Repos;

use crate::foundation::cli::{Remote, Tool};
use crate::foundation::error::StartError;
use crate::foundation::settings::Settings;
use crate::foundation::storage;
use nacos_core::transfer::{Digests, encode_line};

use crate::services::transfer::{self, DumpReader, Progress, Report, TransferError};

/// Why a tool could not run (a run that ran but did not verify returns its [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(transparent)]
    Transfer(#[from] TransferError),
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Remote(String),
}

impl From<StartError> for ToolError {
    fn from(e: StartError) -> Self {
        ToolError::Setup(e.to_string())
    }
}

/// Run `tool`. `settings` resolves the properties of the command line (backup and restore).
pub async fn run(
    tool: &Tool,
    settings: impl FnOnce() -> Result<Settings, StartError>,
    progress: &dyn Progress,
) -> Result<Report, ToolError> {
    match tool {
        Tool::Backup { to, remote } => match &remote.server {
            Some(server) => remote_backup(server, remote, to, progress).await,
            None => {
                let settings = settings()?;
                let repos = open(&settings, "backup").await?;
                Ok(transfer::backup_to_file(repos.transfer.as_ref(), to, progress).await?)
            }
        },
        Tool::Restore {
            from,
            force,
            remote,
        } => {
            transfer::check_header(from)?;
            if let Some(server) = &remote.server {
                return remote_restore(server, remote, from, *force, progress).await;
            }
            let settings = settings()?;
            refuse_raft_replica(&settings)?;
            let repos = open(&settings, "restore").await?;
            Ok(
                transfer::restore_from_file(from, repos.transfer.as_ref(), *force, progress)
                    .await?,
            )
        }
        Tool::Migrate { from, to, force } => {
            let read = |path: &Path| {
                Settings::from_file(path).map_err(|e| ToolError::Setup(e.to_string()))
            };
            let (source, target) = (read(from)?, read(to)?);
            if !storage::is_external(&source)
                && !storage::is_external(&target)
                && source.data_dir() == target.data_dir()
            {
                return Err(ToolError::Setup(format!(
                    "source and target are the same embedded store ({})",
                    source.data_dir().display()
                )));
            }
            refuse_raft_replica(&target)?;
            let source_repos = open(&source, "migrate from").await?;
            let target_repos = open(&target, "migrate to").await?;
            Ok(transfer::migrate(
                source_repos.transfer.as_ref(),
                target_repos.transfer.as_ref(),
                *force,
                progress,
            )
            .await?)
        }
    }
}

async fn open(settings: &Settings, what: &str) -> Result<Repos, ToolError> {
    storage::open(settings).await.map_err(|e| {
        let hint = if storage::is_external(settings) {
            ""
        } else {
            " (a running server locks its embedded store: stop it, or take an online backup \
             with `backup --to FILE --server http://host:8848`)"
        };
        ToolError::Setup(format!("{what}: {e}{hint}"))
    })
}

/// An embedded cluster node's store is written only through Raft: a restore written into its
/// file directly would leave the other nodes (and its own Raft log) behind.
fn refuse_raft_replica(settings: &Settings) -> Result<(), ToolError> {
    let log = settings
        .data_dir()
        .join(nacos_storage_embedded::raft::LOG_FILE_NAME);
    if !storage::is_external(settings) && log.exists() {
        return Err(ToolError::Setup(format!(
            "{} belongs to an embedded cluster node ({} exists): writing it directly would \
             bypass Raft. Restore through a running node instead: restore --from FILE --server \
             http://host:8848",
            settings.data_dir().display(),
            log.display()
        )));
    }
    Ok(())
}

/// `http://host:port[/context]` split up.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    host: String,
    port: u16,
    context: String,
}

fn parse_server(url: &str) -> Result<Endpoint, ToolError> {
    let bad = |why: &str| ToolError::Setup(format!("--server {url}: {why}"));
    let rest = match url.strip_prefix("http://") {
        Some(rest) => rest,
        None if url.starts_with("https://") => {
            return Err(bad(
                "https is not supported by this tool; use http to the node (or a local tunnel)",
            ));
        }
        None => return Err(bad("expected http://host:port[/context-path]")),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| bad("the port is not a number 1..65535"))?,
        ),
        None => (authority, 8848),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let path = path.trim_end_matches('/');
    let context = if path.is_empty() {
        "/nacos".to_string()
    } else {
        format!("/{path}")
    };
    Ok(Endpoint {
        host: host.to_string(),
        port,
        context,
    })
}

async fn send(
    endpoint: &Endpoint,
    method: Method,
    path: &str,
    body: Option<(&'static str, Bytes)>,
) -> Result<hyper::Response<hyper::body::Incoming>, ToolError> {
    let remote = |e: &dyn std::fmt::Display| {
        ToolError::Remote(format!("{}:{}: {e}", endpoint.host, endpoint.port))
    };
    let stream = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| remote(&e))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| remote(&e))?;
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(format!("{}{path}", endpoint.context))
        .header(header::HOST, format!("{}:{}", endpoint.host, endpoint.port));
    let body = match body {
        Some((content_type, bytes)) => {
            request = request.header(header::CONTENT_TYPE, content_type);
            bytes
        }
        None => Bytes::new(),
    };
    let request = request.body(Full::new(body)).map_err(|e| remote(&e))?;
    sender.send_request(request).await.map_err(|e| remote(&e))
}

async fn text_of(response: hyper::Response<hyper::body::Incoming>) -> String {
    match response.into_body().collect().await {
        Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        Err(e) => format!("(unreadable body: {e})"),
    }
}

/// Log in and return the access token.
async fn login(endpoint: &Endpoint, remote: &Remote) -> Result<String, ToolError> {
    let password = match &remote.password {
        Some(p) => p.clone(),
        None => std::env::var("NACOS_PASSWORD").map_err(|_| {
            ToolError::Setup(
                "--server needs the admin's password: --password or NACOS_PASSWORD".into(),
            )
        })?,
    };
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("username", &remote.username)
        .append_pair("password", &password)
        .finish();
    let body = ("application/x-www-form-urlencoded", Bytes::from(form));
    let response = send(endpoint, Method::POST, "/v1/auth/login", Some(body)).await?;
    let status = response.status();
    let body = text_of(response).await;
    if status != StatusCode::OK {
        return Err(ToolError::Remote(format!(
            "login as {} refused ({status}): {body}",
            remote.username
        )));
    }
    let json: serde_json::Value = serde_json::from_str(&body)
        .map_err(|_| ToolError::Remote(format!("login answered no JSON: {body}")))?;
    json.get("accessToken")
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| ToolError::Remote(format!("login answered no accessToken: {body}")))
}

/// Download the online backup of a running server into `to`, then check the file whole (its
/// trailer holds the server's per-table counts and MD5s).
async fn remote_backup(
    server: &str,
    remote: &Remote,
    to: &Path,
    progress: &dyn Progress,
) -> Result<Report, ToolError> {
    let started = Instant::now();
    let endpoint = parse_server(server)?;
    let token = login(&endpoint, remote).await?;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("accessToken", &token)
        .finish();
    let response = send(
        &endpoint,
        Method::GET,
        &format!("/v1/console/backup?{query}"),
        None,
    )
    .await?;
    let status = response.status();
    if status != StatusCode::OK {
        let body = text_of(response).await;
        return Err(ToolError::Remote(format!(
            "online backup refused ({status}): {body}"
        )));
    }
    let partial = {
        let mut name = to.as_os_str().to_owned();
        name.push(".partial");
        PathBuf::from(name)
    };
    let io = |what: String| move |source| TransferError::Io { what, source };
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&partial)
            .map_err(io(format!("cannot create {}", partial.display())))?,
    );
    progress.begin("download (bytes)", None);
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ToolError::Remote(format!("the server broke off the backup: {e}")))?;
        if let Some(data) = frame.data_ref() {
            file.write_all(data)
                .map_err(io(format!("writing {}", partial.display())))?;
            progress.advance(data.len() as u64);
        }
    }
    let file = file.into_inner().map_err(|e| TransferError::Io {
        what: format!("writing {}", partial.display()),
        source: e.into_error(),
    })?;
    file.sync_all()
        .map_err(io(format!("writing {}", partial.display())))?;
    std::fs::rename(&partial, to).map_err(io(format!("cannot rename to {}", to.display())))?;
    progress.end();
    let digests = transfer::digest_file(to)?;
    let mut report = transfer::report_of_file(&digests, started);
    report.sides = ("server", "file");
    Ok(report)
}

/// Upload a dump file to a running server batch by batch (`POST /v1/console/restore`), then
/// compare what the server said it stored with a fresh online backup of it.
async fn remote_restore(
    server: &str,
    remote: &Remote,
    from: &Path,
    force: bool,
    progress: &dyn Progress,
) -> Result<Report, ToolError> {
    let started = Instant::now();
    let endpoint = parse_server(server)?;
    // The whole file is sound (trailer checked) before anything is sent.
    transfer::digest_file(from)?;
    let token = login(&endpoint, remote).await?;
    let io = |what: String| move |source| TransferError::Io { what, source };
    let file = std::fs::File::open(from).map_err(io(format!("cannot open {}", from.display())))?;
    let mut reader = DumpReader::new(std::io::BufReader::new(file))?;
    progress.begin("restore", None);
    let mut expected = Digests::new();
    let mut coarsened = 0;
    let (mut batch, mut count, mut first) = (Vec::new(), 0, true);
    loop {
        let record = reader.next_record()?;
        if let Some(record) = &record {
            batch.extend(encode_line(record).map_err(TransferError::from)?);
            batch.push(b'\n');
            count += 1;
        }
        let full = batch.len() >= transfer::BATCH_BYTES || count >= transfer::BATCH_RECORDS;
        // The first batch is sent even when empty: the server checks the target is empty.
        if full || (record.is_none() && (count > 0 || first)) {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("accessToken", &token)
                .append_pair("force", if force || !first { "true" } else { "false" })
                .finish();
            let body = (
                "application/x-ndjson",
                Bytes::from(std::mem::take(&mut batch)),
            );
            let sent = body.1.clone();
            let path = format!("/v1/console/restore?{query}");
            let response = send(&endpoint, Method::POST, &path, Some(body)).await?;
            let status = response.status();
            let answer = text_of(response).await;
            if status != StatusCode::OK {
                return Err(ToolError::Remote(format!(
                    "restore refused ({status}): {answer}"
                )));
            }
            let kept: Vec<&[u8]> = answer
                .as_bytes()
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            let lines: Vec<&[u8]> = sent
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .collect();
            if kept.len() != lines.len() {
                return Err(ToolError::Remote(format!(
                    "the server stored {} of {} records of a batch",
                    kept.len(),
                    lines.len()
                )));
            }
            for (line, stored) in lines.iter().zip(&kept) {
                let record: nacos_core::transfer::Record = serde_json::from_slice(stored)
                    .map_err(|e| ToolError::Remote(format!("unreadable answer: {e}")))?;
                expected.add_line(record.table(), stored);
                if line != stored {
                    coarsened += 1;
                }
            }
            progress.advance(count as u64);
            (count, first) = (0, false);
        }
        if record.is_none() {
            break;
        }
    }
    progress.end();
    let check = {
        let mut name = from.as_os_str().to_owned();
        name.push(".verify");
        PathBuf::from(name)
    };
    let fetched = remote_backup(server, remote, &check, progress).await;
    let actual = fetched.and_then(|_| Ok(transfer::digest_file(&check)?));
    let _ = std::fs::remove_file(&check);
    let mut report = Report::compare(("file", "server"), &expected.finish(), &actual?, started);
    report.coarsened = coarsened;
    Ok(report)
}

/// Progress on stderr: a bar when it is a terminal, else a plain line every few seconds.
#[derive(Debug)]
pub struct ConsoleProgress {
    terminal: bool,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    bar: Option<ProgressBar>,
    phase: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_line: Instant,
}

impl ConsoleProgress {
    pub fn new() -> Self {
        ConsoleProgress {
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::new(State {
                bar: None,
                phase: String::new(),
                total: None,
                done: 0,
                started: Instant::now(),
                last_line: Instant::now(),
            }),
        }
    }
}

impl Default for ConsoleProgress {
    fn default() -> Self {
        Self::new()
    }
}

/// Plain lines at most this often.
const LINE_EVERY: Duration = Duration::from_secs(2);

impl Progress for ConsoleProgress {
    fn begin(&self, phase: &str, total: Option<u64>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.phase = phase.to_string();
        state.total = total;
        state.done = 0;
        state.started = Instant::now();
        state.last_line = Instant::now();
        if self.terminal {
            let bar = match total {
                Some(n) => ProgressBar::new(n).with_style(
                    ProgressStyle::with_template(
                        "{prefix:>9} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{prefix:>9} {spinner} {pos} {per_sec}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
            };
            bar.set_prefix(phase.to_string());
            state.bar = Some(bar);
        } else {
            match total {
                Some(n) => eprintln!("{phase}: {n} records"),
                None => eprintln!("{phase}: started"),
            }
        }
    }

    fn advance(&self, records: u64) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.done += records;
        if let Some(bar) = &state.bar {
            bar.inc(records);
        } else if state.last_line.elapsed() >= LINE_EVERY {
            state.last_line = Instant::now();
            match state.total {
                Some(n) => eprintln!("{}: {}/{n}", state.phase, state.done),
                None => eprintln!("{}: {}", state.phase, state.done),
            }
        }
    }

    fn end(&self) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if let Some(bar) = state.bar.take() {
            bar.finish_and_clear();
        }
        eprintln!(
            "{}: {} done in {:.1?}",
            state.phase,
            state.done,
            state.started.elapsed()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            parse_server("http://10.0.0.1:8848").expect("valid"),
            Endpoint {
                host: "10.0.0.1".into(),
                port: 8848,
                context: "/nacos".into()
            }
        );
        assert_eq!(
            parse_server("http://h/base/").expect("valid").context,
            "/base"
        );
        assert_eq!(parse_server("http://h").expect("valid").port, 8848);
        assert!(parse_server("https://h:1").is_err());
        assert!(parse_server("h:1").is_err());
        assert!(parse_server("http://h:x").is_err());
        assert!(parse_server("http://:1").is_err());
    }
}
