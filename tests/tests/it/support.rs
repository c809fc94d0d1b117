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
            return Listeners { http, grpc };
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
