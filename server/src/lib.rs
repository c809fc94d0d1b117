//! A Nacos-compatible service registry and configuration center.
//!
//! # Layout
//! - [`cli`]: the command line, shaped like Nacos's `startup.sh` (`-m`, `-p`, `-D key=value`).
//! - [`settings`]: `application.properties` loading and the typed [`Settings`].
//! - [`storage`]: picks the storage backend named by the properties and opens it.
//! - [`config`]: the config service (cache, writes, listeners) behind every config edge.
//! - [`naming`]: the naming service (ephemeral registry, beats and expiry, persistent instances
//!   through the repository, UDP push to v1 subscribers) behind every naming edge.
//! - [`namespace`]: namespace rules over the namespace repository.
//! - [`http`]: the axum router: v1 OpenAPI, console endpoints, the shared tower middleware.
//! - [`App`] and [`run`]: wiring, and serving on a bound listener until a shutdown future
//!   resolves, so tests bind port 0 and run the real thing.

pub mod cli;
pub mod config;
pub mod http;
pub mod namespace;
pub mod naming;
pub mod settings;
pub mod storage;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use nacos_core::Repos;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use settings::Settings;

use config::ConfigService;
use naming::NamingService;

/// Shared state of a running server.
#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    pub repos: Repos,
    pub config: ConfigService,
    pub naming: Arc<NamingService>,
    /// Cancelled when the server shuts down: long polls answer, background tasks stop.
    pub shutdown: CancellationToken,
    pub started: Instant,
}

pub type AppState = Arc<App>;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

impl App {
    /// Open storage and build the services. Background tasks start with [`run`].
    pub async fn open(settings: Settings) -> Result<AppState, StartError> {
        let repos = storage::open(&settings)?;
        Self::with_repos(settings, repos).await
    }

    /// Build the services over already opened repositories (tests, other backends).
    pub async fn with_repos(settings: Settings, repos: Repos) -> Result<AppState, StartError> {
        let config = ConfigService::new(Arc::clone(&repos.configs), settings.config_cache_bytes);
        let naming = NamingService::new(&settings, Arc::clone(&repos.instances));
        naming
            .load()
            .await
            .map_err(|e| StartError::Storage(format!("cannot load persistent services: {e}")))?;
        Ok(Arc::new(App {
            settings,
            repos,
            config,
            naming,
            shutdown: CancellationToken::new(),
            started: Instant::now(),
        }))
    }
}

/// Serve HTTP on `listener` until `shutdown` resolves, then finish in-flight requests.
pub async fn run(
    listener: TcpListener,
    app: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let background = app.naming.start(app.shutdown.clone());
    let router = http::router(Arc::clone(&app));
    let token = app.shutdown.clone();
    let result = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        token.cancel();
    })
    .await;
    app.shutdown.cancel();
    for task in background {
        let _ = task.await;
    }
    result
}
