//! Private MariaDB servers for tests: one shared per test binary, started on first use in a
//! temporary directory on a free port, with one throwaway database per test case; and, for
//! failover tests, extra servers wired as primary and semi-synchronous replica.
//!
//! - [`MariaDb::shared`] starts the shared server (once) and returns it, or `None` after
//!   printing `SKIPPED: mariadb not installed` when the binaries cannot be found. With
//!   `NACOS_TEST_REQUIRE_DB=1` (CI sets it) a missing installation fails the test instead.
//! - [`MariaDb::create_database`] makes a fresh, empty database; the returned [`TestDatabase`]
//!   drops it when it goes out of scope, and hands out the `db.*` properties and the
//!   [`DataSourceConfig`] that point at it.
//! - [`MariaDb::start`] starts a server of one's own ([`ServerOptions`]: binary log, server
//!   id, semi-sync roles, read-only), [`MariaDb::replicate_from`] makes it a GTID replica of
//!   another, [`MariaDb::promote`] turns a replica into a writable primary once it has applied
//!   everything it received, and [`MariaDb::kill`] kills a server with `SIGKILL`.
//!
//! # How a server is run
//! `mariadb-install-db` (or `mysql_install_db`) creates the data directory with
//! `--auth-root-authentication-method=normal`; the server (`mariadbd` or `mysqld`) listens on
//! 127.0.0.1 and on a socket in the directory. Admin statements go through the `mariadb` (or
//! `mysql`) client over that socket as `root`; the code under test connects over TCP as
//! [`USER`] with a password, with rights only on the test databases (`nt\_%`), so
//! `read_only` applies to it as it would to a production account.
//!
//! The server is started through `sh -c '<server> & pid=$!; read _; kill $pid; …'` whose
//! standard input is a pipe this process holds: when the test binary exits, however it exits,
//! the pipe closes, the shell stops the server and removes the directory. Nothing is left
//! behind even though a shared server's `Drop` never runs.
//!
//! Servers are tuned for tests (`innodb_flush_log_at_trx_commit=2`, `sync_binlog=0`): killing
//! the server process loses nothing committed, a machine crash would.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nacos_core::datasource::DataSourceConfig;

/// The account the code under test connects as (TCP, password authentication).
pub const USER: &str = "nacos_test";
/// Its password (the servers listen on 127.0.0.1 only).
pub const PASSWORD: &str = "nacos-test-password";
/// The environment variable that turns "MariaDB not installed" into a failure.
pub use crate::dbproc::REQUIRE_ENV;
/// Prefix of every test database name (the test account has rights on these only).
const DB_PREFIX: &str = "nt_";
const REPL_USER: &str = "nacos_repl";
const REPL_PASSWORD: &str = "nacos-repl-password";

/// The programs a server needs.
#[derive(Clone, Debug)]
struct Binaries {
    server: PathBuf,
    install: PathBuf,
    client: PathBuf,
}

/// How to start a server of one's own ([`MariaDb::start`]).
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Replication: the server id and a binary log (0: no binary log).
    pub server_id: u32,
    /// Semi-synchronous primary: a commit returns only once a replica has the transaction.
    pub semi_sync_primary: bool,
    /// Semi-synchronous replica (acknowledges what it receives).
    pub semi_sync_replica: bool,
    /// Start with `read_only=ON`.
    pub read_only: bool,
    /// Serve TLS with a throwaway CA made by the `openssl` program ([`MariaDb::tls_ca`]).
    pub tls: bool,
}

/// A running private MariaDB server. Stopped (and its directory removed) when dropped or
/// when the process exits.
#[derive(Debug)]
pub struct MariaDb {
    port: u16,
    dir: PathBuf,
    bin: Binaries,
    /// Holding the write end keeps the server alive; closing it stops the server.
    stdin: Mutex<Option<ChildStdin>>,
    child: Mutex<Child>,
    /// Numbers databases created on this server.
    next_db: AtomicU64,
}

static SHARED: OnceLock<Result<Option<MariaDb>, String>> = OnceLock::new();
static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// Whether the MariaDB (or MySQL) server programs are installed.
pub fn installed() -> bool {
    find_binaries().is_some()
}

/// Whether tests must fail (not skip) when MariaDB is missing: `NACOS_TEST_REQUIRE_DB=1`.
pub fn required() -> bool {
    crate::dbproc::required()
}

/// `None` after printing the skip line when MariaDB is not installed (or a panic when it is
/// required); `Some(())` when tests can run.
pub fn available() -> Option<()> {
    if installed() {
        return Some(());
    }
    if required() {
        panic!(
            "mariadb not installed (no mariadbd/mysqld, mariadb-install-db and mariadb client \
             found) but {REQUIRE_ENV}=1: install mariadb-server and mariadb-client"
        );
    }
    eprintln!("SKIPPED: mariadb not installed");
    None
}

impl MariaDb {
    /// The server shared by every test of this binary, started on first use. `None` when
    /// MariaDB is not installed (after printing `SKIPPED: mariadb not installed`).
    ///
    /// Panics when it is not installed and `NACOS_TEST_REQUIRE_DB=1`, or when it is installed
    /// but does not start.
    pub fn shared() -> Option<&'static MariaDb> {
        available()?;
        let started = SHARED.get_or_init(|| MariaDb::start(&ServerOptions::default()).map(Some));
        match started {
            Ok(Some(server)) => Some(server),
            Ok(None) => None,
            Err(e) => panic!("the test MariaDB server did not start: {e}"),
        }
    }

    /// Start a private server. Retries on another port if the chosen one was taken meanwhile.
    pub fn start(options: &ServerOptions) -> Result<MariaDb, String> {
        let bin = find_binaries().ok_or("mariadb not installed")?;
        let mut last = String::new();
        for _ in 0..3 {
            match Self::start_once(&bin, options) {
                Ok(server) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn start_once(bin: &Binaries, options: &ServerOptions) -> Result<MariaDb, String> {
        remove_stale_dirs();
        let dir = std::env::temp_dir().join(format!(
            "nacos-test-mariadb-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let data = dir.join("data");
        let as_root = is_root();
        let mut install = Command::new(&bin.install);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .current_dir(&dir)
            .stdin(Stdio::null());
        if as_root {
            install.arg("--user=root");
        }
        let out = install
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bin.install.display()))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!(
                "{} failed ({}): {}{}",
                bin.install.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }

        let port = free_port()?;
        let mut args = vec![
            "--no-defaults".to_string(),
            format!("--datadir={}", data.display()),
            format!("--socket={}", dir.join("mysqld.sock").display()),
            format!("--pid-file={}", dir.join("mysqld.pid").display()),
            format!("--log-error={}", dir.join("error.log").display()),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".to_string(),
            "--skip-name-resolve".to_string(),
            "--max-connections=1000".to_string(),
            "--innodb-buffer-pool-size=64M".to_string(),
            "--innodb-log-file-size=32M".to_string(),
            "--innodb-flush-log-at-trx-commit=2".to_string(),
            "--character-set-server=utf8mb4".to_string(),
            "--collation-server=utf8mb4_bin".to_string(),
        ];
        if as_root {
            args.push("--user=root".to_string());
        }
        if options.server_id > 0 {
            args.push(format!("--server-id={}", options.server_id));
            args.push(format!("--log-bin={}", dir.join("binlog").display()));
            args.push("--binlog-format=ROW".to_string());
            args.push("--sync-binlog=0".to_string());
        }
        if options.semi_sync_primary {
            args.push("--rpl-semi-sync-master-enabled=ON".to_string());
            args.push("--rpl-semi-sync-master-wait-point=AFTER_SYNC".to_string());
            args.push("--rpl-semi-sync-master-timeout=600000".to_string());
        }
        if options.semi_sync_replica {
            args.push("--rpl-semi-sync-slave-enabled=ON".to_string());
        }
        if options.read_only {
            args.push("--read-only".to_string());
        }
        if options.tls {
            make_certificates(&dir)?;
            args.push(format!("--ssl-ca={}", dir.join("ca.pem").display()));
            args.push(format!(
                "--ssl-cert={}",
                dir.join("server-cert.pem").display()
            ));
            args.push(format!(
                "--ssl-key={}",
                dir.join("server-key.pem").display()
            ));
        }
        // $1 server, $2 scratch dir (removed at the end), then the server's arguments.
        let script = r#"
server="$1"; dir="$2"; shift 2
"$server" "$@" >"$dir/server.out" 2>&1 &
pid=$!
read _ignored
kill "$pid" 2>/dev/null
wait "$pid"
rm -rf "$dir"
"#;
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&bin.server)
            .arg(&dir)
            .args(&args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = sh
            .spawn()
            .map_err(|e| format!("cannot start the MariaDB shell: {e}"))?;
        let stdin = child.stdin.take();
        let server = MariaDb {
            port,
            dir,
            bin: bin.clone(),
            stdin: Mutex::new(stdin),
            child: Mutex::new(child),
            next_db: AtomicU64::new(0),
        };
        if let Err(e) = server.wait_ready(Duration::from_secs(60)) {
            drop(server);
            return Err(e);
        }
        // Accounts are local to each server: never written to the binary log, so a replica
        // does not replay them.
        server.sql(
            None,
            &format!(
                "SET SESSION sql_log_bin = 0; \
                 CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; \
                 GRANT ALL PRIVILEGES ON `nt\\_%`.* TO '{USER}'@'127.0.0.1'; \
                 CREATE USER '{REPL_USER}'@'127.0.0.1' IDENTIFIED BY '{REPL_PASSWORD}'; \
                 GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'127.0.0.1';"
            ),
        )?;
        Ok(server)
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), String> {
        crate::dbproc::wait_ready(
            &format!("MariaDB on port {}", self.port),
            &self.dir.join("error.log"),
            &[
                "Do you already have another",
                "Aborting",
                "[ERROR] Can't start",
            ],
            limit,
            || Ok(self.sql(None, "SELECT 1").is_ok()),
        )
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM file of the CA that signed the server certificate (servers started with
    /// [`ServerOptions::tls`]); the certificate names `IP:127.0.0.1`.
    pub fn tls_ca(&self) -> Option<PathBuf> {
        let ca = self.dir.join("ca.pem");
        ca.is_file().then_some(ca)
    }

    /// `jdbc:mysql://127.0.0.1:<port>/<database>?...` as an operator writes `db.url.N`, with
    /// Nacos's sample parameters and the given timeouts (ms).
    pub fn jdbc_url(&self, database: &str, connect_ms: u64, socket_ms: u64) -> String {
        format!(
            "jdbc:mysql://127.0.0.1:{}/{database}?characterEncoding=utf8&connectTimeout={connect_ms}\
             &socketTimeout={socket_ms}&autoReconnect=true&useUnicode=true&useSSL=false\
             &serverTimezone=UTC",
            self.port
        )
    }

    /// Run SQL (several statements allowed) as `root` through the client, in `database` if
    /// given; returns the tab-separated rows without headers.
    pub fn sql(&self, database: Option<&str>, sql: &str) -> Result<String, String> {
        let mut cmd = Command::new(&self.bin.client);
        cmd.arg("--no-defaults")
            .arg(format!(
                "--socket={}",
                self.dir.join("mysqld.sock").display()
            ))
            .args([
                "-uroot",
                "--batch",
                "--skip-column-names",
                "--connect-timeout=5",
            ])
            .arg("-e")
            .arg(sql)
            .stdin(Stdio::null());
        if let Some(db) = database {
            cmd.arg(db);
        }
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.client.display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        } else {
            Err(format!(
                "{sql:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// A new, empty database (no tables), dropped when the returned guard is dropped. Panics
    /// when it cannot be created.
    pub fn create_database(&self) -> TestDatabase<'_> {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let name = format!("{DB_PREFIX}{}_{n}", std::process::id());
        self.sql(
            None,
            &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
        )
        .expect("create a test database");
        TestDatabase { server: self, name }
    }

    /// Replicate from `primary` with GTIDs, from the start of its binary log. Both servers
    /// need a binary log and distinct server ids.
    pub fn replicate_from(&self, primary: &MariaDb) -> Result<(), String> {
        self.sql(
            None,
            &format!(
                "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, \
                 MASTER_USER='{REPL_USER}', MASTER_PASSWORD='{REPL_PASSWORD}', \
                 MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos; START SLAVE;",
                primary.port
            ),
        )?;
        Ok(())
    }

    /// The value of one column of `SHOW SLAVE STATUS`, if replication is configured.
    pub fn slave_status(&self, column: &str) -> Result<Option<String>, String> {
        let mut cmd = Command::new(&self.bin.client);
        let out = cmd
            .arg("--no-defaults")
            .arg(format!(
                "--socket={}",
                self.dir.join("mysqld.sock").display()
            ))
            .args(["-uroot", "--vertical", "-e", "SHOW SLAVE STATUS"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run the client: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).to_string());
        }
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        Ok(text.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == column).then(|| v.trim().to_string())
        }))
    }

    /// Make this replica the writable primary: stop fetching from the (dead) primary, wait
    /// until every transaction already received is applied, forget the replication setup and
    /// turn `read_only` off. With a semi-synchronous primary, every transaction the old
    /// primary acknowledged is here afterwards.
    pub fn promote(&self, limit: Duration) -> Result<(), String> {
        self.sql(None, "STOP SLAVE IO_THREAD")?;
        let started = Instant::now();
        loop {
            let state = self
                .slave_status("Slave_SQL_Running_State")?
                .unwrap_or_default();
            let running = self.slave_status("Slave_SQL_Running")?.unwrap_or_default();
            if state.contains("read all relay log") || running != "Yes" {
                break;
            }
            if started.elapsed() > limit {
                return Err(format!("replica still applying after {limit:?}: {state}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.sql(
            None,
            "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF;",
        )?;
        Ok(())
    }

    /// Kill the server process with `SIGKILL` (a crash). The server stays dead; the directory
    /// is still removed when this value is dropped or the process exits.
    pub fn kill(&self) -> Result<(), String> {
        let pid = std::fs::read_to_string(self.dir.join("mysqld.pid"))
            .map_err(|e| format!("no pid file: {e}"))?;
        let status = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !status.success() {
            return Err(format!("kill -9 {} failed: {status}", pid.trim()));
        }
        // Wait until the port no longer accepts connections.
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            if started.elapsed() > Duration::from_secs(10) {
                return Err("the killed server still accepts connections".to_string());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for MariaDb {
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

/// One throwaway database of a [`MariaDb`]; dropped with this guard.
#[derive(Debug)]
pub struct TestDatabase<'a> {
    server: &'a MariaDb,
    name: String,
}

impl TestDatabase<'_> {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn server(&self) -> &MariaDb {
        self.server
    }

    /// `db.url.0` of this database (Nacos's sample parameters, generous timeouts).
    pub fn jdbc_url(&self) -> String {
        self.server.jdbc_url(&self.name, 5_000, 30_000)
    }

    /// The properties of a server using this database: `spring.sql.init.platform=mysql`, one
    /// node, the test account, a small pool, and `nacos.db.schema.init` as given.
    pub fn properties(&self, init_schema: bool) -> Vec<(String, String)> {
        [
            ("spring.sql.init.platform", "mysql".to_string()),
            ("db.num", "1".to_string()),
            ("db.url.0", self.jdbc_url()),
            ("db.user", USER.to_string()),
            ("db.password", PASSWORD.to_string()),
            ("db.pool.config.maximumPoolSize", "8".to_string()),
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

    /// Run SQL in this database as `root`.
    pub fn sql(&self, sql: &str) -> Result<String, String> {
        self.server.sql(Some(&self.name), sql)
    }
}

impl Drop for TestDatabase<'_> {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS `{}`", self.name);
        if let Err(e) = self.server.sql(None, &sql) {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}

/// A throwaway CA and a server certificate for 127.0.0.1 in `dir` (ca.pem, server-cert.pem,
/// server-key.pem), made with the `openssl` program.
fn make_certificates(dir: &Path) -> Result<(), String> {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .map_err(|e| format!("write server.ext: {e}"))?;
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=nacos-test-ca",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server-key.pem",
            "-out",
            "server.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server-cert.pem",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run openssl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "openssl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}

/// Remove directories left by test processes that died while a server was being installed
/// (before the shell that cleans up was running).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix("nacos-test-mariadb-") else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The server, installer and client programs, MariaDB's names first.
fn find_binaries() -> Option<Binaries> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for extra in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        dirs.push(PathBuf::from(extra));
    }
    let find = |names: &[&str]| -> Option<PathBuf> {
        names.iter().find_map(|name| {
            dirs.iter()
                .map(|d| d.join(name))
                .find(|p| Path::new(p).is_file())
        })
    };
    Some(Binaries {
        server: find(&["mariadbd", "mysqld"])?,
        install: find(&["mariadb-install-db", "mysql_install_db"])?,
        client: find(&["mariadb", "mysql"])?,
    })
}

use crate::dbproc::free_port;
