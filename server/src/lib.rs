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

pub mod app;
pub mod auth;
pub mod cli;
pub mod clients;
pub mod cluster;
pub mod config;
pub mod error;
pub mod grpc;
pub mod http;
pub mod middleware;
pub mod namespace;
pub mod naming;
pub mod peer_edge;
pub mod protocol;
pub mod settings;
pub mod storage;
pub mod trusted_proxies;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use app::{App, AppState};
pub use error::StartError;
pub use settings::Settings;

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
    background.extend(app.start_cluster_tasks());
    background.extend(peer_edge::start(&app, listeners.cluster, listeners.raft));
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
