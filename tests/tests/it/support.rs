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
        Self::start_in(Some(home), None, props).await
    }

    async fn start_in(
        home: Option<tempfile::TempDir>,
        home_path: Option<PathBuf>,
        props: Vec<(String, String)>,
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

    /// Stop, then start a new server on the same home and properties (new port).
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let home = self.home.take();
        let path = self.home_path.clone();
        let props = std::mem::take(&mut self.props);
        Self::start_in(home, Some(path), props).await
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
