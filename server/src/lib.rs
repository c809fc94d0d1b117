//! A Nacos-compatible service registry and configuration center.
//!
//! # Layout
//! Four layers, each a folder; every arrow points down (`tests/it/module_cycles.rs` fails the
//! build on an import that points up or around a loop):
//!
//! - [`edges`]: presentation only — the HTTP router (v1 and v2 OpenAPI, console endpoints,
//!   auth guards), the gRPC client edge (port + 1000: bi-streams, dispatch, handlers) and the
//!   peer edge (cluster port + 1001, Raft port − 1000). Each parses its wire, calls into the
//!   layers below through [`App`], and maps errors onto its codes in one place.
//! - [`cluster`]: cluster protocols — members and reports, the peer client, distro, forwarding
//!   of v1 client writes, config and persistent-naming change sync, the Raft glue. Each takes
//!   the services it acts on, never the whole [`App`].
//! - [`services`]: config, naming, namespaces, auth and client connections: the rules, over the
//!   repositories and settings values they are given.
//! - [`foundation`]: command line, settings, the shared middleware, the edge-neutral
//!   [`foundation::error::ServiceError`] and [`StartError`], the gRPC protocol (messages,
//!   envelopes, error codes), trusted proxies, opening the storage backend.
//!
//! [`app`] is the composition: [`App`] holds every service and handle of a running server, and
//! edges read it as their state. This file is the root: it serves the edges on bound
//! [`Listeners`] until a shutdown future resolves ([`run`]), so tests bind port 0 and run the
//! real thing. A request's path: an edge parses and authorizes it, calls a service method (or a
//! cluster protocol, when the write belongs to another node), and renders the result.
//!
//! Next to `src`, `build.rs` has the linker place the functions listed in `startup.order`
//! together in the release binary, so an idle server keeps little of its code resident.

pub mod app;
pub mod cluster;
pub mod edges;
pub mod foundation;
pub mod services;

// The public paths tests and tools use.
pub use edges::{grpc, http};
pub use foundation::{cli, protocol, settings};
pub use services::naming;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use app::{App, AppState};
pub use foundation::error::StartError;
pub use foundation::settings::Settings;

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
    background.push(app.start_health_checks());
    if foundation::storage::is_external(&app.settings) {
        background.push(services::config::warm::start(
            Arc::clone(&app.config),
            Arc::clone(&app.repos.namespaces),
            app.shutdown.clone(),
        ));
    }
    background.extend(services::config::retention::start(
        Arc::clone(&app.retention),
        app.settings.config_retention_interval,
        app.shutdown.clone(),
    ));
    background.extend(edges::peer::start(&app, listeners.cluster, listeners.raft));
    let router = http::router(Arc::clone(&app));
    let token = app.shutdown.clone();
    let http_token = app.shutdown.clone();
    let http = async move {
        let result = axum::serve(
            listeners.http,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                SocketAddr,
            >(router),
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
