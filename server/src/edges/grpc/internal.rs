//! The `internal` module: the bi-stream (`ConnectionSetupRequest`, acknowledgements of server
//! pushes, `SetupAckRequest`) and `HealthCheckRequest`. `ServerCheckRequest` is answered by the
//! dispatcher itself, before any registration check.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;

use super::dispatch::{Ctx, Handlers, OPEN, Secured};
use super::error::GrpcResult;
use super::stream::TransportInfo;
use crate::foundation::protocol::message::{grpc_request, grpc_response};
use crate::foundation::protocol::transport::Payload;
use crate::services::clients::connection::{
    Connection, ConnectionManager, ConnectionMeta, RegisterError,
};

/// Abilities this server announces in `SetupAckRequest` (Nacos 2.5's table).
pub const SERVER_ABILITIES: &[(&str, bool)] = &[("supportPersistentInstanceByGrpc", true)];

grpc_response!(HealthCheckResponse {});
grpc_request!(HealthCheckRequest => HealthCheckResponse {});

impl Secured for HealthCheckRequest {
    /// Touches nothing.
    fn resources(&self) -> Result<Vec<nacos_core::Resource>, super::error::GrpcError> {
        Ok(Vec::new())
    }
}

async fn health_check(_ctx: Ctx, _req: HealthCheckRequest) -> GrpcResult<HealthCheckResponse> {
    Ok(HealthCheckResponse::default())
}

pub fn register(handlers: &mut Handlers) {
    handlers.add(OPEN, health_check);
}

/// `ConnectionSetupRequest`, the first message of a bi-stream. `abilities` (≤2.2 Java, Rust)
/// and `clientAbilities` (Go) are accepted and ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ConnectionSetupRequest {
    client_version: Option<String>,
    tenant: Option<String>,
    labels: Option<HashMap<String, String>>,
    /// 2.3+ clients: its presence (even `{}`) asks for a `SetupAckRequest`.
    ability_table: Option<serde_json::Value>,
}

/// Keeps the transport's count of open bi-streams.
struct OpenStream<'a>(&'a TransportInfo);

impl Drop for OpenStream<'_> {
    fn drop(&mut self) {
        self.0.state.bi_streams.fetch_sub(1, Ordering::SeqCst);
        self.0.state.registered.notify_waiters();
    }
}

fn setup(
    manager: &ConnectionManager,
    transport: &TransportInfo,
    payload: &Payload,
    outbound: mpsc::Sender<Payload>,
    closed: CancellationToken,
) -> Result<Arc<Connection>, String> {
    let request: ConnectionSetupRequest = serde_json::from_slice(payload.body_bytes())
        .map_err(|e| format!("unparsable ConnectionSetupRequest: {e}"))?;
    let client_ip = payload
        .metadata
        .as_ref()
        .map(|m| m.client_ip.trim())
        .filter(|ip| !ip.is_empty())
        .map_or_else(|| transport.remote.ip().to_string(), str::to_string);
    let wants_ack = request.ability_table.as_ref().is_some_and(|t| !t.is_null());
    let meta = ConnectionMeta {
        client_ip,
        remote: transport.remote,
        client_version: request.client_version.unwrap_or_default(),
        tenant: request.tenant.unwrap_or_default(),
        labels: request.labels.unwrap_or_default(),
        ability_table: request.ability_table.filter(|t| !t.is_null()),
        connected_ms: nacos_core::now_millis(),
    };
    let conn = Connection::new(
        Arc::clone(&transport.id),
        meta,
        outbound,
        closed,
        Arc::clone(&transport.state),
    );
    let conn = manager
        .register(conn)
        .map_err(|e: RegisterError| e.to_string())?;
    if wants_ack {
        let table: serde_json::Map<String, serde_json::Value> = SERVER_ABILITIES
            .iter()
            .map(|(k, v)| ((*k).to_string(), serde_json::Value::Bool(*v)))
            .collect();
        let body = serde_json::json!({ "abilityTable": table });
        if let Err(e) = manager.send(&conn, "SetupAckRequest", "internal", body) {
            tracing::debug!(conn = %conn.id, error = %e, "cannot send SetupAckRequest");
        }
    }
    Ok(conn)
}

/// Read one bi-stream until the client ends it, it fails, or the server closes it. Only the
/// setup and answers to pushes are processed; anything else is logged and dropped.
pub(crate) async fn read_bi_stream(
    manager: Arc<ConnectionManager>,
    transport: TransportInfo,
    mut inbound: Streaming<Payload>,
    outbound: mpsc::Sender<Payload>,
    closed: CancellationToken,
) {
    transport.state.bi_streams.fetch_add(1, Ordering::SeqCst);
    let _open = OpenStream(&transport);
    let mut outbound = Some(outbound);
    let mut registered: Option<Arc<Connection>> = None;
    // One wait for the whole stream: a fresh one per message would register and unregister
    // with the token's lock on every answer.
    let cancelled = closed.clone().cancelled_owned();
    tokio::pin!(cancelled);
    loop {
        let next = tokio::select! {
            _ = &mut cancelled => break,
            next = inbound.message() => next,
        };
        let payload = match next {
            Ok(Some(payload)) => payload,
            Ok(None) => break,
            Err(status) => {
                tracing::debug!(conn = %transport.id, %status, "bi-stream failed");
                break;
            }
        };
        let type_name = payload.type_name();
        if type_name == "ConnectionSetupRequest" {
            if registered.is_some() {
                continue;
            }
            let Some(sender) = outbound.take() else {
                continue;
            };
            match setup(&manager, &transport, &payload, sender, closed.clone()) {
                Ok(conn) => registered = Some(conn),
                Err(reason) => {
                    tracing::info!(conn = %transport.id, reason, "gRPC connection setup refused");
                    break;
                }
            }
        } else if type_name.ends_with("Response") {
            if let Some(conn) = &registered {
                conn.touch();
                conn.complete(payload);
            }
        } else {
            tracing::debug!(conn = %transport.id, r#type = type_name, "ignored on the bi-stream");
        }
    }
    if let Some(conn) = registered {
        manager.unregister_same(&conn, "bi-stream ended");
    }
    closed.cancel();
}
