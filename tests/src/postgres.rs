//! A private PostgreSQL server for tests: one per test binary, started on first use in a
//! temporary directory on a free port, with one throwaway database per test case.
//!
//! - [`PgServer::shared`] starts the server (once) and returns it, or `None` when the server
//!   binaries cannot be found; [`PgServer::shared_or_skip`] also prints
//!   `SKIPPED: postgresql not installed`. With `NACOS_TEST_REQUIRE_DB=1` (CI sets it) a
//!   missing installation fails the test instead.
//! - [`PgServer::create_database`] makes a fresh database; the returned [`TestDatabase`] drops
//!   it (`WITH (FORCE)`) when it goes out of scope, and hands out the `db.*` properties and the
//!   [`DataSourceConfig`] that point at it.
//!
//! # How the server is run
//! `initdb` refuses to run as root, so when the tests run as root the server runs as the
//! `postgres` user if it exists, else `nobody` (the directory is given to that user). The
//! binaries are found through `NACOS_TEST_PG_BINDIR`, `pg_config --bindir`, the Debian layout
//! `/usr/lib/postgresql/<version>/bin`, or `PATH`.
//!
//! The server is started through `sh -c '<postgres> & pid=$!; read _; kill $pid; …'` whose
//! standard input is a pipe this process holds: when the test binary exits, however it exits,
//! the pipe closes, the shell stops the server and removes the directory. Nothing is left
//! behind even though a shared server's `Drop` never runs.
//!
//! The server is tuned for tests, not durability (`fsync=off`): a test that kills it loses
//! data. When `openssl` is installed it also speaks TLS, with a throwaway CA
//! ([`PgServer::tls_ca`]) and a certificate for `localhost`.
//!
//! Admin statements (create and drop database) go through `psql` over TCP with password
//! authentication (`scram-sha-256`), the same way the code under test connects.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use nacos_core::datasource::DataSourceConfig;

/// The superuser the tests connect as.
pub const USER: &str = "nacos_test";
/// Its password (the server listens on 127.0.0.1 only).
pub const PASSWORD: &str = "nacos-test-password";
/// The environment variable that turns "PostgreSQL not installed" into a failure.
pub use crate::dbproc::REQUIRE_ENV;

/// A running private PostgreSQL server. Stopped (and its directory removed) when dropped or
/// when the process exits.
#[derive(Debug)]
pub struct PgServer {
    port: u16,
    /// The data directory (`postmaster.pid` names the server's process).
    data: PathBuf,
    bindir: PathBuf,
    /// Holding the write end keeps the server alive; closing it stops the server.
    stdin: Mutex<Option<ChildStdin>>,
    child: Mutex<Child>,
    /// Numbers databases created from this server.
    next_db: AtomicU64,
    /// The CA that signed the server's TLS certificate (PEM), when `openssl` could make one.
    tls_ca: Option<PathBuf>,
}

static SHARED: OnceLock<Result<Option<PgServer>, String>> = OnceLock::new();

impl PgServer {
    /// The server shared by every test of this binary, started on first use; `None` when
    /// PostgreSQL is not installed.
    ///
    /// Panics when it is not installed and `NACOS_TEST_REQUIRE_DB=1`, or when it is installed
    /// but does not start.
    pub fn shared() -> Option<&'static PgServer> {
        let started = SHARED.get_or_init(|| match find_bindir() {
            None => Ok(None),
            Some(bindir) => PgServer::start(&bindir).map(Some),
        });
        match started {
            Ok(Some(server)) => Some(server),
            Ok(None) if required() => panic!(
                "postgresql not installed (no initdb/postgres found) but {REQUIRE_ENV}=1: \
                 install postgresql-15"
            ),
            Ok(None) => None,
            Err(e) => panic!("the test PostgreSQL server did not start: {e}"),
        }
    }

    /// [`PgServer::shared`], printing `SKIPPED: postgresql not installed (<test>)` when it is
    /// `None`, so the calling test can return early and pass loudly.
    pub fn shared_or_skip(test: &str) -> Option<&'static PgServer> {
        let server = Self::shared();
        if server.is_none() {
            eprintln!("SKIPPED: postgresql not installed ({test})");
        }
        server
    }

    /// Start a private server with the binaries in `bindir` (initdb, postgres, pg_isready,
    /// psql). Retries on another port if the chosen one was taken meanwhile.
    pub fn start(bindir: &Path) -> Result<PgServer, String> {
        Self::start_from(bindir, None)
    }

    /// A new private server that is a hot standby of this one: a base backup streamed with
    /// `pg_basebackup -R`, then kept current by streaming replication (read-only, in
    /// recovery).
    pub fn start_standby(&self) -> Result<PgServer, String> {
        Self::start_from(&self.bindir, Some(self.port))
    }

    /// A new private server of its own (not the shared one), e.g. a primary a test kills;
    /// `None` when PostgreSQL is not installed.
    pub fn start_private() -> Option<Result<PgServer, String>> {
        find_bindir().map(|bindir| Self::start(&bindir))
    }

    /// Kill the server with SIGKILL (no shutdown), as a crash would. Its directory is removed
    /// when the value is dropped.
    pub fn kill(&self) -> Result<(), String> {
        let pids = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .map_err(|e| format!("no postmaster.pid: {e}"))?;
        let pid = pids.lines().next().unwrap_or_default().trim().to_string();
        let status = Command::new("kill")
            .args(["-9", &pid])
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill -9 {pid} failed: {status}"))
        }
    }

    fn start_from(bindir: &Path, primary_port: Option<u16>) -> Result<PgServer, String> {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::start_once(bindir, primary_port) {
                Ok(server) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn start_once(bindir: &Path, primary_port: Option<u16>) -> Result<PgServer, String> {
        let owner = RunAs::pick()?;
        let dir = scratch_dir(&owner)?;
        owner.give(&dir)?;
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, format!("{PASSWORD}\n"))
            .map_err(|e| format!("write {}: {e}", pwfile.display()))?;
        owner.give(&pwfile)?;
        let sockets = dir.join("sock");
        std::fs::create_dir(&sockets).map_err(|e| format!("mkdir {}: {e}", sockets.display()))?;
        owner.give(&sockets)?;
        let data = dir.join("data");
        let tls = make_certificates(&dir, &owner);

        let mut initdb = match primary_port {
            None => {
                let mut initdb = Command::new(bindir.join("initdb"));
                initdb
                    .arg("-D")
                    .arg(&data)
                    .args(["-U", USER, "-E", "UTF8", "--locale=C", "--no-sync"])
                    .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                    .arg(format!("--pwfile={}", pwfile.display()));
                initdb
            }
            // initdb's pg_hba.conf lets the superuser replicate over 127.0.0.1.
            Some(port) => {
                let mut backup = Command::new(bindir.join("pg_basebackup"));
                backup
                    .arg("-D")
                    .arg(&data)
                    .args(["-R", "-X", "stream", "--no-sync", "--checkpoint=fast"])
                    .args(["-h", "127.0.0.1", "-U", USER])
                    .arg("-p")
                    .arg(port.to_string())
                    .env("PGPASSWORD", PASSWORD);
                backup
            }
        };
        initdb.current_dir(&dir).stdin(Stdio::null());
        owner.apply(&mut initdb);
        let out = initdb
            .output()
            .map_err(|e| format!("cannot run initdb / pg_basebackup: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!(
                "initdb / pg_basebackup failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }

        let port = free_port()?;
        // $1 postgres, $2 data dir, $3 port, $4 socket dir, $5 scratch dir (removed at the end).
        // Further arguments ($6...) go to postgres as they are (the TLS settings).
        let script = r#"
pg="$1"; data="$2"; port="$3"; sockets="$4"; dir="$5"; shift 5
"$pg" -D "$data" -p "$port" -k "$sockets" -c listen_addresses=127.0.0.1 \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c max_connections=300 -c shared_buffers=64MB -c log_min_messages=warning \
    "$@" >"$dir/server.log" 2>&1 &
pid=$!
read _ignored
kill -INT "$pid" 2>/dev/null
wait "$pid"
rm -rf "$dir"
"#;
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(script)
            .arg("sh")
            .arg(bindir.join("postgres"))
            .arg(&data)
            .arg(port.to_string())
            .arg(&sockets)
            .arg(&dir);
        if let Some(tls) = &tls {
            sh.arg("-c")
                .arg("ssl=on")
                .arg("-c")
                .arg(format!("ssl_cert_file={}", tls.cert.display()))
                .arg("-c")
                .arg(format!("ssl_key_file={}", tls.key.display()));
        }
        sh.current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        owner.apply(&mut sh);
        let mut child = sh
            .spawn()
            .map_err(|e| format!("cannot start the PostgreSQL shell: {e}"))?;
        let stdin = child.stdin.take();
        let server = PgServer {
            port,
            data: data.clone(),
            bindir: bindir.to_path_buf(),
            stdin: Mutex::new(stdin),
            child: Mutex::new(child),
            next_db: AtomicU64::new(0),
            tls_ca: tls.map(|t| t.ca),
        };
        if let Err(e) = server.wait_ready(&dir, Duration::from_secs(60)) {
            drop(server);
            return Err(e);
        }
        Ok(server)
    }

    fn wait_ready(&self, dir: &Path, limit: Duration) -> Result<(), String> {
        // A server that gave up (port taken, bad directory) says so in its log.
        crate::dbproc::wait_ready(
            &format!("PostgreSQL on port {}", self.port),
            &dir.join("server.log"),
            &[
                "could not create any TCP/IP sockets",
                "Address already in use",
                "PANIC",
                "FATAL:  data directory",
                "FATAL:  lock file",
                "FATAL:  could not",
            ],
            limit,
            || {
                Command::new(self.bindir.join("pg_isready"))
                    .args(["-q", "-h", "127.0.0.1", "-t", "1", "-p"])
                    .arg(self.port.to_string())
                    .stdin(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .map_err(|e| format!("cannot run pg_isready: {e}"))
            },
        )
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM file of the CA that signed the server's certificate, when the server speaks TLS
    /// (it does when `openssl` is installed). The certificate names `localhost` only, so
    /// `verify-full` passes for `localhost` and fails for `127.0.0.1`.
    pub fn tls_ca(&self) -> Option<&Path> {
        self.tls_ca.as_deref()
    }

    /// `jdbc:postgresql://127.0.0.1:<port>/<database>`, as an operator writes `db.url.N`.
    pub fn jdbc_url(&self, database: &str) -> String {
        format!("jdbc:postgresql://127.0.0.1:{}/{database}", self.port)
    }

    /// Run SQL through `psql` against `database`; returns its unaligned, tuples-only output.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bindir.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args(["-U", USER, "-p"])
            .arg(self.port.to_string())
            .args(["-d", database, "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "psql -c {sql:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// A new, empty database (no tables), dropped when the returned guard is dropped.
    /// Panics when it cannot be created.
    pub fn create_database(&self) -> TestDatabase<'_> {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let name = format!("nacos_t{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name}"))
            .expect("create a test database");
        TestDatabase { server: self, name }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Closing the pipe makes the shell stop the server and remove its directory.
        if let Ok(mut stdin) = self.stdin.lock()
            && let Some(mut pipe) = stdin.take()
        {
            let _ = pipe.write_all(b"\n");
        }
        if let Ok(mut child) = self.child.lock() {
            let _ = child.wait();
        }
    }
}

/// One throwaway database of a [`PgServer`]; dropped (connections and all) with this guard.
#[derive(Debug)]
pub struct TestDatabase<'a> {
    server: &'a PgServer,
    name: String,
}

impl TestDatabase<'_> {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn jdbc_url(&self) -> String {
        self.server.jdbc_url(&self.name)
    }

    /// The `db.*` properties of a server using this database (one node, test credentials,
    /// a small pool), plus `nacos.db.schema.init` as given.
    pub fn properties(&self, init_schema: bool) -> Vec<(String, String)> {
        [
            ("spring.sql.init.platform", "postgresql".to_string()),
            ("db.num", "1".to_string()),
            (
                "db.url.0",
                format!("{}?connectTimeout=10&socketTimeout=60", self.jdbc_url()),
            ),
            ("db.user", USER.to_string()),
            ("db.password", PASSWORD.to_string()),
            ("db.pool.config.maximumPoolSize", "8".to_string()),
            ("db.pool.config.minimumIdle", "0".to_string()),
            ("db.pool.config.connectionTimeout", "10000".to_string()),
            ("nacos.db.schema.init", init_schema.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The data source settings [`TestDatabase::properties`] describe.
    pub fn datasource(&self) -> DataSourceConfig {
        let props = self.properties(false);
        let get = |key: &str| props.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        DataSourceConfig::from_properties(&get).expect("valid test data source settings")
    }

    /// Run SQL in this database through `psql`.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.server.psql(&self.name, sql)
    }
}

impl Drop for TestDatabase<'_> {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = self.server.psql("postgres", &sql) {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}

use crate::dbproc::required;

/// A directory holding `initdb` and `postgres` (and the client programs).
fn find_bindir() -> Option<PathBuf> {
    let usable = |dir: &Path| {
        ["initdb", "postgres", "pg_isready", "psql"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(dir) = std::env::var_os("NACOS_TEST_PG_BINDIR").map(PathBuf::from) {
        return usable(&dir).then_some(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && usable(&dir) {
            return Some(dir);
        }
    }
    // Debian / Ubuntu: /usr/lib/postgresql/<major>/bin, newest first.
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                Some((major, e.path().join("bin")))
            })
            .filter(|(_, bin)| usable(bin))
            .collect();
        versions.sort();
        if let Some((_, bin)) = versions.pop() {
            return Some(bin);
        }
    }
    std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).find(|d| usable(d)))
}

/// The user the server runs as: ourselves, or an unprivileged user when we are root.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    /// `None`: run as the current user.
    ids: Option<(u32, u32)>,
}

impl RunAs {
    fn pick() -> Result<RunAs, String> {
        let euid = std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .map_err(|e| format!("cannot tell who runs the tests (/proc/self): {e}"))?;
        if euid != 0 {
            return Ok(RunAs { ids: None });
        }
        let passwd = std::fs::read_to_string("/etc/passwd")
            .map_err(|e| format!("cannot read /etc/passwd: {e}"))?;
        for wanted in ["postgres", "nobody"] {
            for line in passwd.lines() {
                let fields: Vec<&str> = line.split(':').collect();
                if fields.len() >= 4
                    && fields[0] == wanted
                    && let (Ok(uid), Ok(gid)) = (fields[2].parse(), fields[3].parse())
                {
                    return Ok(RunAs {
                        ids: Some((uid, gid)),
                    });
                }
            }
        }
        Err(
            "running as root and neither a postgres nor a nobody user exists to run \
             PostgreSQL as (initdb refuses root)"
                .to_string(),
        )
    }

    /// Hand a path to the server's user.
    fn give(&self, path: &Path) -> Result<(), String> {
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", path.display()))?;
        }
        Ok(())
    }

    fn apply(&self, command: &mut Command) {
        if let Some((uid, gid)) = self.ids {
            command.uid(uid).gid(gid);
        }
    }
}

/// The server's TLS files.
struct TlsFiles {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A throwaway CA and a server certificate for `localhost` signed by it, made with `openssl`;
/// `None` (the server then runs without TLS) when that fails.
fn make_certificates(dir: &Path, owner: &RunAs) -> Option<TlsFiles> {
    let openssl = |args: &[&str]| -> Option<()> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .ok()?;
        if out.status.success() {
            Some(())
        } else {
            eprintln!(
                "note: openssl {args:?} failed, the test PostgreSQL runs without TLS: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-subj",
                "/CN=nacos-test-ca",
            ],
            &["-days", "3"],
        ]
        .concat(),
    )?;
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    )?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .ok()?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "3",
        "-extfile",
        "server.ext",
    ])?;
    let key = dir.join("server.key");
    // PostgreSQL insists on a private key only its user can read.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).ok()?;
    owner.give(&key).ok()?;
    owner.give(&dir.join("server.crt")).ok()?;
    Some(TlsFiles {
        ca: dir.join("ca.crt"),
        cert: dir.join("server.crt"),
        key,
    })
}

/// A new, empty directory under the system temp directory (`/tmp` when the server runs as
/// another user, who may not be able to reach a private `TMPDIR`).
fn scratch_dir(owner: &RunAs) -> Result<PathBuf, String> {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let base = match owner.ids {
        Some(_) if Path::new("/tmp").is_dir() => PathBuf::from("/tmp"),
        _ => std::env::temp_dir(),
    };
    let dir = base.join(format!(
        "nacos-pg-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    Ok(dir)
}

use crate::dbproc::free_port;
