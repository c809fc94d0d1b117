//! Starting real servers in-process on port 0 for end-to-end tests.

use std::net::SocketAddr;
use std::path::PathBuf;

use nacos_server::cli::Mode;
use nacos_server::settings::Properties;
use nacos_server::{App, AppState, Listeners, Settings};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running in this process on an ephemeral port (gRPC on that port + 1000, as
/// clients expect), with its own home directory.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    /// The running server's state (weak, so a stopped server's storage closes).
    app: std::sync::Weak<App>,
    home: Option<tempfile::TempDir>,
    home_path: PathBuf,
    props: Vec<(String, String)>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    pub client: reqwest::Client,
    /// The database of a MySQL/PostgreSQL server, dropped (last) with it; kept by `restart`.
    database: Option<Database>,
}

/// The storage backend a [`TestServer`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// The embedded redb store in the server's home.
    Embedded,
    /// A fresh database of the binary's shared private MariaDB server.
    Mysql,
    /// A fresh database of the binary's shared private PostgreSQL server.
    Postgres,
}

impl Storage {
    /// Whether `test` must return early because this backend's database is not installed:
    /// prints `SKIPPED: ... (<test>)` then (or panics with `NACOS_TEST_REQUIRE_DB=1`).
    pub fn skip(self, test: &str) -> bool {
        match self {
            Storage::Embedded => false,
            Storage::Mysql => {
                let missing = nacos_tests::mariadb::MariaDb::shared().is_none();
                if missing {
                    eprintln!("SKIPPED: mariadb not installed ({test})");
                }
                missing
            }
            Storage::Postgres => nacos_tests::postgres::PgServer::shared_or_skip(test).is_none(),
        }
    }

    /// A fresh database with its server properties (schema created at start), or `None` for
    /// embedded storage. Panics when the database is not installed (see [`Storage::skip`]).
    fn database(self) -> Option<(Database, Vec<(String, String)>)> {
        match self {
            Storage::Embedded => None,
            Storage::Mysql => {
                let server = nacos_tests::mariadb::MariaDb::shared()
                    .expect("mariadb installed (tests check Storage::skip first)");
                let db = server.create_database();
                let props = db.properties(true);
                Some((Database::Mysql(db), props))
            }
            Storage::Postgres => {
                let server = nacos_tests::postgres::PgServer::shared()
                    .expect("postgresql installed (tests check Storage::skip first)");
                let db = server.create_database();
                let props = db.properties(true);
                Some((Database::Postgres(db), props))
            }
        }
    }
}

/// A throwaway database kept alive by the server using it.
#[derive(Debug)]
#[allow(dead_code, reason = "held only to be dropped with the server")]
enum Database {
    Mysql(nacos_tests::mariadb::TestDatabase<'static>),
    Postgres(nacos_tests::postgres::TestDatabase<'static>),
}

impl TestServer {
    /// Standalone, embedded storage, default properties.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Standalone with extra properties (e.g. shortened naming timings).
    pub async fn start_with(props: &[(&str, &str)]) -> Self {
        let home = tempfile::tempdir().expect("temp home");
        let props = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::start_in(Some(home), None, props, None).await
    }

    /// Standalone on `storage` (a fresh database for MySQL/PostgreSQL, dropped with the
    /// server) with extra properties on top of the database's own.
    pub async fn start_on(storage: Storage, extra: &[(&str, &str)]) -> Self {
        let home = tempfile::tempdir().expect("temp home");
        let (database, mut props) = match storage.database() {
            Some((db, props)) => (Some(db), props),
            None => (None, Vec::new()),
        };
        props.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Self::start_in(Some(home), None, props, database).await
    }

    /// Standalone on embedded storage in `home` (kept when the server stops), with `props`.
    pub async fn start_at(home: &std::path::Path, props: &[(&str, &str)]) -> Self {
        let props = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::start_in(None, Some(home.to_path_buf()), props, None).await
    }

    /// The server's home directory (embedded storage lives in `<home>/data`).
    pub fn home(&self) -> &std::path::Path {
        &self.home_path
    }

    async fn start_in(
        home: Option<tempfile::TempDir>,
        home_path: Option<PathBuf>,
        props: Vec<(String, String)>,
        database: Option<Database>,
    ) -> Self {
        let home_path = home_path
            .or_else(|| home.as_ref().map(|h| h.path().to_path_buf()))
            .expect("a home directory");
        let settings = Settings::from_properties(
            Mode::Standalone,
            home_path.clone(),
            Properties::from_pairs(props.clone()),
        )
        .expect("valid test properties");
        let listeners = bind_pair(settings.grpc.port_offset).await;
        let addr = listeners.http.local_addr().expect("local addr");
        let grpc_addr = listeners.grpc.local_addr().expect("grpc local addr");
        let app = App::open(settings).await.expect("server opens");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(nacos_server::run(
            listeners,
            std::sync::Arc::clone(&app),
            async move {
                let _ = rx.await;
            },
        ));
        TestServer {
            addr,
            grpc_addr,
            app: std::sync::Arc::downgrade(&app),
            home,
            home_path,
            props,
            shutdown: Some(tx),
            task: Some(task),
            client: reqwest::Client::new(),
            database,
        }
    }

    /// The running server's state, for assertions on its internals.
    pub fn app(&self) -> AppState {
        self.app.upgrade().expect("the server is running")
    }

    /// `127.0.0.1:port` of HTTP, as clients are configured with it.
    pub fn server_addr(&self) -> String {
        self.addr.to_string()
    }

    /// Run SQL in this server's database (`None` on embedded storage), e.g. to backdate rows.
    pub fn sql(&self, sql: &str) -> Option<Result<String, String>> {
        match self.database.as_ref()? {
            Database::Mysql(db) => Some(db.sql(sql)),
            Database::Postgres(db) => Some(db.psql(sql)),
        }
    }

    /// `http://127.0.0.1:port/nacos` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/nacos{}", self.addr, path)
    }

    /// Graceful stop: in-flight requests finish, storage is closed.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server exits cleanly");
        }
    }

    /// Stop, then start a new server on the same home, properties and database (new port).
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let home = self.home.take();
        let path = self.home_path.clone();
        let props = std::mem::take(&mut self.props);
        let database = self.database.take();
        Self::start_in(home, Some(path), props, database).await
    }
}

/// HTTP on an ephemeral port and gRPC on that port + `offset`; a new pair when the second is
/// taken.
pub async fn bind_pair(offset: u16) -> Listeners {
    for _ in 0..50 {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let port = http.local_addr().expect("local addr").port();
        let Some(grpc_port) = port.checked_add(offset) else {
            continue;
        };
        if let Ok(grpc) = tokio::net::TcpListener::bind(("127.0.0.1", grpc_port)).await {
            return Listeners {
                http,
                grpc,
                cluster: None,
                raft: None,
            };
        }
    }
    panic!("no free port pair (p, p + {offset}) after 50 tries");
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Expands each listed scenario of the calling module — an `async fn name(storage: Storage)`
/// — into one `#[tokio::test]` per backend: `embedded::name`, `mysql::name` and
/// `postgres::name`, so a failure names both. The database ones skip loudly where the
/// database is not installed (and fail instead with `NACOS_TEST_REQUIRE_DB=1`).
macro_rules! on_every_backend {
    ($($scenario:ident),+ $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario($crate::support::Storage::Embedded).await;
                }
            )+
        }
        mod mysql {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let storage = $crate::support::Storage::Mysql;
                    if storage.skip(concat!(module_path!(), "::", stringify!($scenario))) {
                        return;
                    }
                    super::$scenario(storage).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let storage = $crate::support::Storage::Postgres;
                    if storage.skip(concat!(module_path!(), "::", stringify!($scenario))) {
                        return;
                    }
                    super::$scenario(storage).await;
                }
            )+
        }
    };
}
pub(crate) use on_every_backend;

// ---------------------------------------------------------------------------------------------
// Clusters

/// Listeners of one cluster node on loopback: HTTP `p`, client gRPC `p + 1000`, cluster gRPC
/// `p + 1001` and (embedded) Raft `p - 1000`, all bound, so nothing can take them before the
/// node starts.
pub async fn bind_node(raft: bool) -> (u16, Listeners) {
    let bind = |port: u16| async move { tokio::net::TcpListener::bind(("127.0.0.1", port)).await };
    for _ in 0..100 {
        let http = bind(0).await.expect("bind port 0");
        let port = http.local_addr().expect("local addr").port();
        let (Some(grpc), Some(cluster), Some(raft_port)) = (
            port.checked_add(1000),
            port.checked_add(1001),
            port.checked_sub(1000),
        ) else {
            continue;
        };
        let (Ok(grpc), Ok(cluster)) = (bind(grpc).await, bind(cluster).await) else {
            continue;
        };
        let raft = if raft {
            match bind(raft_port).await {
                Ok(l) => Some(l),
                Err(_) => continue,
            }
        } else {
            None
        };
        return (
            port,
            Listeners {
                http,
                grpc,
                cluster: Some(cluster),
                raft,
            },
        );
    }
    panic!("no free port set for a cluster node after 100 tries");
}

/// One node of a [`TestCluster`], running in this process.
#[derive(Debug)]
pub struct TestNode {
    pub port: u16,
    app: std::sync::Weak<App>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestNode {
    pub fn app(&self) -> AppState {
        self.app.upgrade().expect("the node is running")
    }

    pub fn server_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/nacos{}", self.port, path)
    }

    async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Several nodes on loopback sharing one member list: embedded storage replicated by Raft,
/// or one shared MySQL / PostgreSQL database. Timings are shortened so tests run in seconds.
#[derive(Debug)]
pub struct TestCluster {
    pub storage: Storage,
    pub nodes: Vec<Option<TestNode>>,
    pub ports: Vec<u16>,
    homes: Vec<tempfile::TempDir>,
    props: Vec<(String, String)>,
    /// What the member list calls each node's host: `127.0.0.1`, or a name such as `localhost`.
    host: String,
    /// Members listed that are no node of this cluster (e.g. a name that does not resolve).
    also_listed: Vec<String>,
    /// The shared database, dropped (last) with the cluster.
    _database: Option<Database>,
}

/// Cluster timings for tests: fast reports, distro and scans.
pub const CLUSTER_TEST_PROPS: &[(&str, &str)] = &[
    ("nacos.inetutils.ip-address", "127.0.0.1"),
    ("nacos.member.report.intervalMs", "200"),
    ("nacos.member.reload.intervalMs", "200"),
    ("nacos.core.protocol.distro.data.sync.delayMs", "20"),
    ("nacos.core.protocol.distro.data.sync.retryDelayMs", "300"),
    ("nacos.core.protocol.distro.data.verify.intervalMs", "300"),
    ("nacos.core.protocol.distro.data.sync.timeoutMs", "1000"),
    ("nacos.naming.client.expired.time", "2000"),
    // Change messages alone must carry changes between nodes; the healing scan (which would
    // hide a broken message path) is tested on its own with a short interval.
    ("nacos.config.cluster.scanIntervalMs", "600000"),
    ("nacos.naming.push.pushTaskDelay", "20"),
    ("nacos.config.longPolling.minHoldMs", "500"),
];

impl TestCluster {
    /// Start `n` nodes on `storage` with `extra` properties on top of the test timings.
    pub async fn start(storage: Storage, n: usize, extra: &[(&str, &str)]) -> Self {
        Self::start_named(storage, n, "127.0.0.1", &[], extra).await
    }

    /// Start `n` nodes whose member list names them `host:port` (each node goes by that name
    /// too), with `also_listed` members that no node answers for.
    pub async fn start_named(
        storage: Storage,
        n: usize,
        host: &str,
        also_listed: &[&str],
        extra: &[(&str, &str)],
    ) -> Self {
        let raft = storage == Storage::Embedded;
        let mut bound = Vec::new();
        for _ in 0..n {
            bound.push(bind_node(raft).await);
        }
        let ports: Vec<u16> = bound.iter().map(|(p, _)| *p).collect();
        let also_listed: Vec<String> = also_listed.iter().map(|m| m.to_string()).collect();
        let list = ports
            .iter()
            .map(|p| format!("{host}:{p}"))
            .chain(also_listed.iter().cloned())
            .collect::<Vec<_>>()
            .join(",");
        let (database, mut props) = match storage.database() {
            Some((db, props)) => (Some(db), props),
            None => (
                None,
                vec![("embeddedStorage".to_string(), "true".to_string())],
            ),
        };
        props.push(("nacos.member.list".to_string(), list));
        props.extend(
            CLUSTER_TEST_PROPS
                .iter()
                .chain(&[("nacos.inetutils.ip-address", host)])
                .chain(extra)
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let homes: Vec<tempfile::TempDir> =
            (0..n).map(|_| tempfile::tempdir().expect("home")).collect();
        let mut cluster = TestCluster {
            storage,
            nodes: Vec::new(),
            ports,
            homes,
            props,
            host: host.to_string(),
            also_listed,
            _database: database,
        };
        // Start concurrently: an embedded node waits for its peers to form a quorum.
        let starts: Vec<_> = bound
            .into_iter()
            .enumerate()
            .map(|(i, (port, listeners))| tokio::spawn(cluster.launch(i, port, listeners)))
            .collect();
        for start in starts {
            cluster
                .nodes
                .push(Some(start.await.expect("node start task")));
        }
        cluster
    }

    fn launch(
        &self,
        index: usize,
        port: u16,
        listeners: Listeners,
    ) -> impl std::future::Future<Output = TestNode> + use<> {
        let mut props = self.props.clone();
        props.push(("server.port".to_string(), port.to_string()));
        let home = self.homes[index].path().to_path_buf();
        async move {
            let settings =
                Settings::from_properties(Mode::Cluster, home, Properties::from_pairs(props))
                    .expect("valid cluster properties");
            let app = App::open(settings).await.expect("cluster node opens");
            let (tx, rx) = oneshot::channel::<()>();
            let task = tokio::spawn(nacos_server::run(
                listeners,
                std::sync::Arc::clone(&app),
                async move {
                    let _ = rx.await;
                },
            ));
            TestNode {
                port,
                app: std::sync::Arc::downgrade(&app),
                shutdown: Some(tx),
                task: Some(task),
            }
        }
    }

    pub fn node(&self, i: usize) -> &TestNode {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// Stop node `i` (gracefully; process tests cover SIGKILL).
    pub async fn stop(&mut self, i: usize) {
        if let Some(mut node) = self.nodes[i].take() {
            node.stop().await;
        }
    }

    /// Start node `i` again on its ports and home. With `wipe`, its data directory is
    /// deleted first (a node that lost its disk).
    pub async fn restart(&mut self, i: usize, wipe: bool) {
        self.stop(i).await;
        if wipe {
            let _ = std::fs::remove_dir_all(self.homes[i].path().join("data"));
        }
        let port = self.ports[i];
        let bind = |p: u16| async move {
            tokio::net::TcpListener::bind(("127.0.0.1", p))
                .await
                .expect("rebind the node's port")
        };
        let listeners = Listeners {
            http: bind(port).await,
            grpc: bind(port + 1000).await,
            cluster: Some(bind(port + 1001).await),
            raft: if self.storage == Storage::Embedded {
                Some(bind(port - 1000).await)
            } else {
                None
            },
        };
        let node = self.launch(i, port, listeners).await;
        self.nodes[i] = Some(node);
    }

    /// Grow the cluster by one node: every existing node gets a `conf/cluster.conf` listing
    /// all of them (they reload it), and the new node starts with that list. Returns its index.
    pub async fn add_node(&mut self) -> usize {
        let (port, listeners) = bind_node(self.storage == Storage::Embedded).await;
        self.ports.push(port);
        let list: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("{}:{p}", self.host))
            .chain(self.also_listed.iter().cloned())
            .collect();
        for home in &self.homes {
            let conf = home.path().join("conf");
            std::fs::create_dir_all(&conf).expect("conf dir");
            std::fs::write(conf.join("cluster.conf"), list.join("\n")).expect("cluster.conf");
        }
        for (key, value) in &mut self.props {
            if key == "nacos.member.list" {
                *value = list.join(",");
            }
        }
        self.homes.push(tempfile::tempdir().expect("home"));
        let index = self.homes.len() - 1;
        let node = self.launch(index, port, listeners).await;
        self.nodes.push(Some(node));
        index
    }

    /// Indexes of running nodes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some())
            .collect()
    }
}
