//! The node-to-node gRPC edges: the cluster port (main + 1001: member reports, distro, config
//! and persistent-naming change sync, forwarded client writes) and, in an embedded cluster, the
//! Raft port (main - 1000). Both serve the same `Request/request` service as the client edge,
//! with their own handler tables; client types are not served here. Only members get in: with a
//! server identity configured every call must carry it (auth on or off); without one, calls
//! are accepted only from the addresses of the members in the member list. Each handler hands its message to the cluster protocol
//! that owns it, with the services that protocol acts on.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tonic::Request;

use crate::app::AppState;
use crate::cluster::peer::PeerRequest;
use crate::cluster::{
    client_metrics, config_sync, distro, forward, listeners, naming_sync, raft, report,
};
use crate::foundation::middleware::AccessLogLayer;
use crate::foundation::protocol::error::{GrpcError, code};
use crate::foundation::protocol::message::{
    GrpcResponse, error_payload, failure_payload, ok_payload,
};
use crate::foundation::protocol::transport::{Payload, RequestService, UnaryEdge};

type PeerFuture = Pin<Box<dyn Future<Output = Payload> + Send>>;
type Handler = Box<dyn Fn(AppState, Vec<u8>) -> PeerFuture + Send + Sync>;

/// Payload type → handler, for one node-to-node port.
#[derive(Default)]
pub struct PeerHandlers {
    table: HashMap<&'static str, Handler>,
}

impl std::fmt::Debug for PeerHandlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut types: Vec<_> = self.table.keys().collect();
        types.sort();
        f.debug_struct("PeerHandlers")
            .field("types", &types)
            .finish()
    }
}

impl PeerHandlers {
    /// A typed handler: the body is the JSON of `Req`, the answer its response (or a typed
    /// failure / `ErrorResponse`, as on the client edge).
    pub fn add<Req, F, Fut>(&mut self, f: F)
    where
        Req: PeerRequest + DeserializeOwned,
        Req::Response: GrpcResponse,
        F: Fn(AppState, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Req::Response, GrpcError>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.table.insert(
            Req::TYPE,
            Box::new(move |app, body| {
                let f = Arc::clone(&f);
                Box::pin(async move {
                    match serde_json::from_slice::<Req>(&body) {
                        Ok(req) => match f(app, req).await {
                            Ok(resp) => ok_payload(resp, None),
                            Err(e) => failure_payload::<Req::Response>(e, None),
                        },
                        Err(e) => error_payload(
                            code::SERVER_ERROR,
                            code::BAD_GATEWAY,
                            &format!("cannot parse {}: {e}", Req::TYPE),
                            None,
                        ),
                    }
                })
            }),
        );
    }

    /// A handler of opaque bytes (Raft's messages): `Ok` bytes travel back as a payload of
    /// `reply_type`, `Err` as an `ErrorResponse` carrying the message.
    pub fn add_raw<F, Fut>(&mut self, type_name: &'static str, reply_type: &'static str, f: F)
    where
        F: Fn(AppState, Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, String>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.table.insert(
            type_name,
            Box::new(move |app, body| {
                let f = Arc::clone(&f);
                Box::pin(async move {
                    match f(app, body).await {
                        Ok(bytes) => Payload::new(reply_type, bytes),
                        Err(message) => {
                            error_payload(code::SERVER_ERROR, code::SERVER_ERROR, &message, None)
                        }
                    }
                })
            }),
        );
    }

    pub fn contains(&self, type_name: &str) -> bool {
        self.table.contains_key(type_name)
    }
}

/// One node-to-node port: the app and its handler table.
#[derive(Debug)]
pub struct PeerEdge {
    app: AppState,
    handlers: PeerHandlers,
    max_message: usize,
}

impl PeerEdge {
    pub fn new(app: AppState, handlers: PeerHandlers, max_message: usize) -> Self {
        PeerEdge {
            app,
            handlers,
            max_message,
        }
    }
}

impl UnaryEdge for PeerEdge {
    fn max_message(&self) -> usize {
        self.max_message
    }

    fn unary(&self, request: Request<Payload>) -> impl Future<Output = Payload> + Send {
        let remote = request.remote_addr();
        let payload = request.into_inner();
        let app = Arc::clone(&self.app);
        let type_name = payload.type_name().to_string();
        let outcome: Result<PeerFuture, Payload> = match self.handlers.table.get(type_name.as_str())
        {
            None => Err(error_payload(
                code::SERVER_ERROR,
                code::NO_HANDLER,
                &format!("RequestHandler Not Found: {type_name} is not served on this port"),
                None,
            )),
            Some(_) if app.auth.has_server_identity() && !is_peer(&app, &payload) => {
                Err(error_payload(
                    code::NO_RIGHT,
                    code::NO_RIGHT,
                    "node-to-node requests must carry the server identity",
                    None,
                ))
            }
            Some(_) if !app.auth.has_server_identity() && !from_member(&app, remote) => {
                Err(error_payload(
                    code::NO_RIGHT,
                    code::NO_RIGHT,
                    "node-to-node requests are accepted only from cluster members (set \
                     nacos.core.auth.server.identity.key/.value to admit members by identity)",
                    None,
                ))
            }
            Some(handler) => Ok(handler(
                app,
                payload.body.map(|b| b.value).unwrap_or_default(),
            )),
        };
        async move {
            match outcome {
                Ok(fut) => fut.await,
                Err(refused) => refused,
            }
        }
    }
}

/// Without a server identity, a caller is a peer when its address is a member's address (or
/// what a member's host name resolves to).
fn from_member(app: &AppState, remote: Option<std::net::SocketAddr>) -> bool {
    let (Some(cluster), Some(remote)) = (app.cluster.as_ref(), remote) else {
        return false;
    };
    cluster.is_member_ip(remote.ip())
}

fn is_peer(app: &AppState, payload: &Payload) -> bool {
    let Some(meta) = payload.metadata.as_ref() else {
        return false;
    };
    app.auth.is_server_request(|name| {
        meta.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    })
}

/// Serve `edge` on `listener` until the app shuts down.
pub async fn serve(
    listener: TcpListener,
    edge: PeerEdge,
    name: &'static str,
) -> std::io::Result<()> {
    let app = Arc::clone(&edge.app);
    let token = app.shutdown.clone();
    // Small request/answer exchanges (Raft appends, forwarded writes): without TCP_NODELAY a
    // forwarded write waits ~40 ms on Nagle and delayed ACKs.
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .layer(AccessLogLayer::new(name, Arc::clone(&app.traffic.grpc)))
        .add_service(RequestService::new(Arc::new(edge)))
        .serve_with_incoming_shutdown(incoming, token.cancelled_owned())
        .await
        .map_err(std::io::Error::other)
}

/// The cluster port's handler table.
pub fn cluster_handlers() -> PeerHandlers {
    let mut handlers = PeerHandlers::default();
    handlers.add(
        |app: AppState, req: report::MemberReportRequest| async move {
            report::on_report(app.cluster.as_deref(), req)
        },
    );
    handlers.add(
        |app: AppState, req: config_sync::ConfigChangeClusterSyncRequest| async move {
            config_sync::on_sync(&app.config, &app.config_seen, req)
        },
    );
    handlers.add(
        |app: AppState, req: naming_sync::PersistentServiceSyncRequest| async move {
            naming_sync::on_sync(&app.naming, req).await
        },
    );
    handlers.add(
        |app: AppState, req: listeners::ConfigListenerQueryRequest| async move {
            listeners::on_query(app.local_config_listeners(&req.query))
        },
    );
    handlers.add(
        |app: AppState, req: client_metrics::ClientConfigMetricQueryRequest| async move {
            client_metrics::on_query(app.local_client_metrics(&req.query).await)
        },
    );
    handlers.add(|app: AppState, req: distro::DistroDataRequest| async move {
        distro::on_distro(&app.naming, app.cluster.as_deref(), req)
    });
    handlers.add(
        |app: AppState, req: forward::EphemeralClientForwardRequest| async move {
            forward::on_forward(&app.naming, req).await
        },
    );
    handlers
}

/// The Raft port's handler table: every Raft request kind goes to the local node.
pub fn raft_handlers() -> PeerHandlers {
    let mut handlers = PeerHandlers::default();
    for kind in raft::RPC_KINDS {
        handlers.add_raw(
            kind,
            raft::REPLY,
            move |app: AppState, body: Vec<u8>| async move {
                let Some(raft) = app.raft.as_ref() else {
                    return Err("this node does not run Raft".to_string());
                };
                raft.handle(kind, &body).await.map_err(|e| e.to_string())
            },
        );
    }
    handlers
}

/// Serve the node-to-node ports of a cluster node (none in standalone mode). If one fails the
/// whole server stops: a node that peers cannot reach must not keep serving clients as if it
/// were part of the cluster.
pub fn start(
    app: &AppState,
    cluster_listener: Option<TcpListener>,
    raft_listener: Option<TcpListener>,
) -> Vec<tokio::task::JoinHandle<()>> {
    if app.cluster.is_none() {
        return Vec::new();
    }
    let mut tasks = Vec::new();
    if let Some(listener) = cluster_listener {
        let edge = PeerEdge::new(
            Arc::clone(app),
            cluster_handlers(),
            app.settings.grpc.max_inbound_message,
        );
        tasks.push(spawn(app, listener, edge, "cluster"));
    }
    match (&app.raft, raft_listener) {
        (Some(_), Some(listener)) => {
            let edge = PeerEdge::new(Arc::clone(app), raft_handlers(), usize::MAX);
            tasks.push(spawn(app, listener, edge, "raft"));
        }
        (Some(_), None) => tracing::error!(
            "embedded cluster without a bound Raft port: peers cannot reach this node"
        ),
        (None, _) => {}
    }
    tasks
}

fn spawn(
    app: &AppState,
    listener: TcpListener,
    edge: PeerEdge,
    name: &'static str,
) -> tokio::task::JoinHandle<()> {
    let token = app.shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = serve(listener, edge, name).await {
            tracing::error!("the {name} port failed: {e}; shutting down");
            token.cancel();
        }
    })
}
