//! The Nacos 2.x gRPC edge for clients (main port + 1000).
//!
//! # Layout
//! - [`proto`]: the two protobuf messages and the two services (`Request`, `BiRequestStream`)
//!   as tonic server glue, written by hand (no protoc).
//! - [`stream`]: accepted transports (connection id, kill switch, unregister on close) and the
//!   outbound half of a bi-stream.
//! - [`connection`]: registered connections, server pushes with acknowledgements, the ejector,
//!   the connection limit, unregister hooks.
//! - [`dispatch`]: the JSON envelope, the payload-type → handler table (each type timed by
//!   error code) and the unary pipeline.
//! - [`error`]: the one mapping of error kinds onto Nacos codes for this edge.
//! - [`push`]: who watches which key per connection, and change pushes with retries.
//! - [`internal`], [`config`], [`naming`]: the handlers, by Nacos module.
//!
//! [`serve`] runs the edge on a bound listener until the app's shutdown token fires, then
//! sends `ConnectResetRequest` to every client, closes the bi-streams, finishes in-flight calls
//! and cuts whatever is still open after `nacos.remote.server.grpc.shutdown.graceMs`.

pub mod config;
pub mod dispatch;
pub mod error;
pub mod internal;
pub mod naming;
pub mod service;
pub mod stream;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Status, Streaming};

pub use crate::services::clients::{Connection, ConnectionManager};

use crate::app::AppState;
use crate::foundation::metrics::GrpcStats;
use crate::foundation::middleware::AccessLogLayer;
use crate::foundation::protocol::transport::{Payload, RequestService};
use dispatch::Handlers;
use service::BiStreamService;
use stream::{Incoming, Outbound, TransportInfo};

/// Queued pushes per bi-stream before a push fails as "connection busy".
const OUTBOUND_QUEUE: usize = 1024;

/// The edge: the app it serves and its handler table.
pub struct Edge {
    app: AppState,
    handlers: Handlers,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("handlers", &self.handlers)
            .finish()
    }
}

impl Edge {
    pub fn new(app: AppState) -> Self {
        let mut handlers = Handlers::default();
        internal::register(&mut handlers);
        config::register(&mut handlers);
        naming::register(&mut handlers);
        let stats = app
            .metrics
            .grpc
            .get_or_init(|| GrpcStats::new(handlers.types()));
        handlers.use_stats(stats);
        Self { app, handlers }
    }

    /// Payload types this edge handles (besides `ServerCheckRequest`).
    pub fn handled_types(&self) -> Vec<&'static str> {
        self.handlers.types()
    }

    /// Every handled payload type with its auth declaration.
    pub fn auth_declarations(&self) -> Vec<(&'static str, dispatch::GrpcGuard)> {
        self.handlers.declarations()
    }

    pub(crate) fn max_message(&self) -> usize {
        self.app.settings.grpc.max_inbound_message
    }

    pub(crate) async fn unary(&self, request: Request<Payload>) -> Payload {
        let transport = request.extensions().get::<TransportInfo>().cloned();
        self.dispatch(transport, request.into_inner()).await
    }

    pub(crate) fn bi_stream(
        &self,
        request: Request<Streaming<Payload>>,
    ) -> Result<Outbound, Status> {
        let transport = request
            .extensions()
            .get::<TransportInfo>()
            .cloned()
            .ok_or_else(|| Status::internal("no transport information for this call"))?;
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let closed = CancellationToken::new();
        tokio::spawn(internal::read_bi_stream(
            Arc::clone(&self.app.connections),
            transport,
            inbound,
            tx,
            closed.clone(),
        ));
        Ok(Outbound::new(rx, closed))
    }
}

/// Background tasks of the edge: the ejector and the config and naming push tasks.
pub fn start_background(app: &AppState) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![
        app.connections.start_ejector(app.shutdown.clone()),
        app.naming_subscribers.start(
            &app.naming,
            Arc::clone(&app.connections),
            app.shutdown.clone(),
        ),
    ];
    if let Some(task) = app
        .config_listeners
        .start(Arc::clone(&app.connections), app.shutdown.clone())
    {
        tasks.push(task);
    }
    tasks
}

/// Serve the edge on `listener` until `app.shutdown` fires.
pub async fn serve(listener: TcpListener, app: AppState) -> std::io::Result<()> {
    let settings = app.settings.grpc.clone();
    let manager = Arc::clone(&app.connections);
    let edge = Arc::new(Edge::new(app.clone()));
    let incoming = Incoming::new(listener, Arc::clone(&manager));
    let token = app.shutdown.clone();
    let signal_manager = Arc::clone(&manager);
    let signal = async move {
        token.cancelled().await;
        signal_manager.begin_shutdown();
    };
    manager.set_serving(true);
    let server = tonic::transport::Server::builder()
        .layer(AccessLogLayer::new("grpc", Arc::clone(&app.traffic.grpc)))
        .http2_keepalive_interval(Some(settings.keepalive_time))
        .http2_keepalive_timeout(Some(settings.keepalive_timeout))
        .concurrency_limit_per_connection(settings.max_inflight_per_connection)
        .add_service(RequestService::new(Arc::clone(&edge)))
        .add_service(BiStreamService::new(edge))
        .serve_with_incoming_shutdown(incoming, signal);
    let deadline = async {
        app.shutdown.cancelled().await;
        tokio::time::sleep(settings.shutdown_grace).await;
        manager.kill_all();
        std::future::pending::<()>().await;
    };
    let result = tokio::select! {
        result = server => result,
        _ = deadline => Ok(()),
    };
    manager.set_serving(false);
    result.map_err(std::io::Error::other)
}
