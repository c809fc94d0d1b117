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
//! - [`http`]: the axum router: v1 OpenAPI, console endpoints.
//! - [`grpc`]: the Nacos 2.x gRPC edge for clients (port + 1000): connections, pushes, dispatch,
//!   handlers.
//! - [`cluster`]: cluster mode: members, the node-to-node edges (cluster port main + 1001,
//!   Raft port main - 1000), member reports, config change sync, the Raft wiring.
//! - [`auth`]: the selected auth plugin and the server identity; both edges enforce through it.
//! - [`trusted_proxies`]: the proxies whose forwarding headers name the client address.
//! - [`middleware`]: the tower layer both edges share (access log, counters).
//! - [`App`] and [`run`]: wiring, and serving on bound [`Listeners`] until a shutdown future
//!   resolves, so tests bind port 0 and run the real thing.

pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod grpc;
pub mod http;
pub mod middleware;
pub mod namespace;
pub mod naming;
pub mod settings;
pub mod storage;
pub mod trusted_proxies;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use nacos_core::Repos;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use settings::Settings;

use config::ConfigService;
use grpc::ConnectionManager;
use grpc::config::ConfigListeners;
use grpc::naming::NamingSubscribers;
use naming::NamingService;

/// Shared state of a running server.
#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    pub repos: Repos,
    /// Authentication and authorization (`nacos.core.auth.*`).
    pub auth: Arc<auth::Auth>,
    pub config: ConfigService,
    pub naming: Arc<NamingService>,
    /// Registered gRPC client connections (pushes, ejection, limits).
    pub connections: Arc<ConnectionManager>,
    /// Which gRPC connection listens to which config key.
    pub config_listeners: Arc<ConfigListeners>,
    /// Which gRPC connection subscribes to which service.
    pub naming_subscribers: Arc<NamingSubscribers>,
    /// Cluster mode: members and peers (`None` when standalone).
    pub cluster: Option<Arc<cluster::Cluster>>,
    /// Cluster mode: ephemeral instances across nodes.
    pub distro: Option<Arc<naming::distro::Distro>>,
    /// Config changes already acted on (cluster sync over a shared database).
    pub config_seen: cluster::config_sync::SeenChanges,
    /// Shared-database cluster: this node's writes of persistent naming data, for its peers.
    pub naming_writes: Option<Arc<cluster::naming_sync::AnnouncingInstanceRepo>>,
    /// Embedded cluster: this node's Raft.
    pub raft: Option<Arc<cluster::raft::RaftHandle>>,
    /// Request counters of both edges, fed by the shared middleware.
    pub traffic: middleware::Traffic,
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
    #[error("{0}")]
    Auth(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

impl App {
    /// Open storage and build the services. Background tasks start with [`run`].
    pub async fn open(settings: Settings) -> Result<AppState, StartError> {
        let cluster = Self::open_cluster(&settings)?;
        let (repos, raft) = match &cluster {
            Some(cluster) if settings.embedded_cluster => {
                let (repos, raft) = cluster::raft::open(&settings, cluster).await?;
                (repos, Some(raft))
            }
            Some(_) if settings.platform.is_empty() => {
                return Err(StartError::Unsupported(
                    "cluster mode needs shared storage: an external database \
                     (spring.sql.init.platform=mysql or postgresql, with db.*) or `-p embedded` \
                     (embedded storage replicated by Raft); for one node use `-m standalone`"
                        .to_string(),
                ));
            }
            _ => (storage::open(&settings).await?, None),
        };
        Self::build(settings, repos, cluster, raft).await
    }

    /// Build the services over already opened repositories (tests, other backends).
    pub async fn with_repos(settings: Settings, repos: Repos) -> Result<AppState, StartError> {
        let cluster = Self::open_cluster(&settings)?;
        Self::build(settings, repos, cluster, None).await
    }

    fn open_cluster(settings: &Settings) -> Result<Option<Arc<cluster::Cluster>>, StartError> {
        if settings.is_standalone() {
            return Ok(None);
        }
        let identity = auth::server_identity(&settings.properties);
        cluster::Cluster::open(settings, identity)
            .map(|c| Some(Arc::new(c)))
            .map_err(StartError::Unsupported)
    }

    async fn build(
        settings: Settings,
        repos: Repos,
        cluster: Option<Arc<cluster::Cluster>>,
        raft: Option<Arc<cluster::raft::RaftHandle>>,
    ) -> Result<AppState, StartError> {
        let mut repos = repos;
        let naming_writes = match (&cluster, &raft) {
            (Some(_), None) => {
                let announcing = cluster::naming_sync::AnnouncingInstanceRepo::wrap(Arc::clone(
                    &repos.instances,
                ));
                repos.instances = Arc::clone(&announcing) as Arc<dyn nacos_core::InstanceRepo>;
                Some(announcing)
            }
            _ => None,
        };
        let auth = Arc::new(
            auth::Auth::open(&settings.properties, Arc::clone(&repos.users))
                .map_err(StartError::Auth)?,
        );
        let config = ConfigService::new(Arc::clone(&repos.configs), settings.config_cache_bytes);
        let naming = NamingService::new(&settings, Arc::clone(&repos.instances));
        naming
            .load()
            .await
            .map_err(|e| StartError::Storage(format!("cannot load persistent services: {e}")))?;
        let connections = Arc::new(ConnectionManager::new(settings.grpc.clone()));
        let config_listeners = ConfigListeners::install(&config, &connections);
        let naming_subscribers = NamingSubscribers::install(&naming, &settings, &connections);
        let distro = cluster
            .as_ref()
            .map(|c| naming::distro::Distro::new(Arc::clone(&naming), Arc::clone(c)));
        Ok(Arc::new(App {
            cluster,
            distro,
            config_seen: cluster::config_sync::SeenChanges::default(),
            naming_writes,
            raft,
            settings,
            repos,
            auth,
            config,
            naming,
            connections,
            config_listeners,
            naming_subscribers,
            traffic: middleware::Traffic::default(),
            shutdown: CancellationToken::new(),
            started: Instant::now(),
        }))
    }
}

/// The two bound listeners a server runs on.
#[derive(Debug)]
pub struct Listeners {
    /// HTTP: OpenAPI, console (`server.port`).
    pub http: TcpListener,
    /// gRPC for clients (`server.port` + 1000).
    pub grpc: TcpListener,
    /// Cluster mode: gRPC between nodes (`server.port` + 1001).
    pub cluster: Option<TcpListener>,
    /// Embedded cluster: Raft between nodes (`server.port` - 1000).
    pub raft: Option<TcpListener>,
}

impl Listeners {
    /// Bind HTTP on `host:server.port` and gRPC on `host:server.port + offset`.
    pub async fn bind(host: &str, settings: &Settings) -> Result<Self, StartError> {
        let bind = |port: u16| {
            let addr = format!("{host}:{port}");
            async move {
                TcpListener::bind(&addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })
            }
        };
        let grpc_port = settings.grpc_port().ok_or_else(|| {
            StartError::Unsupported(format!(
                "gRPC port {} + {} is past 65535; choose a lower server.port",
                settings.port, settings.grpc.port_offset
            ))
        })?;
        let http = bind(settings.port).await?;
        let grpc = bind(grpc_port).await?;
        let (mut cluster, mut raft) = (None, None);
        if !settings.is_standalone() {
            let port = settings.cluster_port().ok_or_else(|| {
                StartError::Unsupported(format!(
                    "cluster port {} + {} + 1 is past 65535; choose a lower server.port",
                    settings.port, settings.grpc.port_offset
                ))
            })?;
            cluster = Some(bind(port).await?);
            if settings.embedded_cluster {
                let port = settings.raft_port().ok_or_else(|| {
                    StartError::Unsupported(format!(
                        "the Raft port is server.port - 1000; server.port {} is too low",
                        settings.port
                    ))
                })?;
                raft = Some(bind(port).await?);
            }
        }
        Ok(Self {
            http,
            grpc,
            cluster,
            raft,
        })
    }
}

/// Serve HTTP and gRPC until `shutdown` resolves (or either edge fails), then stop gracefully:
/// long polls answer, gRPC clients are told to reconnect elsewhere, in-flight requests finish,
/// background tasks stop.
pub async fn run(
    listeners: Listeners,
    app: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut background = app.naming.start(app.shutdown.clone());
    background.extend(grpc::start_background(&app));
    background.extend(cluster::start(&app, listeners.cluster, listeners.raft));
    let router = http::router(Arc::clone(&app));
    let token = app.shutdown.clone();
    let http_token = app.shutdown.clone();
    let http = async move {
        let result = axum::serve(
            listeners.http,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(http_token.clone().cancelled_owned())
        .await;
        http_token.cancel();
        result
    };
    let grpc_token = app.shutdown.clone();
    let grpc = {
        let app = Arc::clone(&app);
        async move {
            let result = grpc::serve(listeners.grpc, app).await;
            grpc_token.cancel();
            result
        }
    };
    let trigger = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = token.cancelled() => {}
        }
        token.cancel();
    };
    let ((), http_result, grpc_result) = tokio::join!(trigger, http, grpc);
    app.shutdown.cancel();
    for task in background {
        let _ = task.await;
    }
    http_result.and(grpc_result)
}
