//! Dispatch: the table from payload type name to typed handler, the JSON envelope of requests
//! and responses, and the unary pipeline in the order Nacos's `GrpcRequestAcceptor` checks:
//!
//! 1. a cluster-only type on the client port: `ErrorResponse` 502;
//! 2. server not serving: `ErrorResponse` 300;
//! 3. `ServerCheckRequest`: answered before any registration check;
//! 4. no handler: `ErrorResponse` 302 "RequestHandler Not Found";
//! 5. connection not registered: `ErrorResponse` 301;
//! 6. body not parsable as the request: `ErrorResponse` 502;
//! 7. the handler: its typed response, a typed failure (parameter check: errorCode 400), or an
//!    `ErrorResponse` when it "throws".

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::stream::TransportInfo;
use crate::app::AppState;
use crate::foundation::metrics::{ByCode, GrpcStats};
use crate::foundation::protocol::error::{GrpcError, code};
use crate::foundation::protocol::message::{
    GrpcRequest, ResponseBase, encode, error_payload, failure_payload, ok_payload,
};
use crate::foundation::protocol::transport::Payload;
use crate::services::clients::connection::Connection;

/// What a handler gets besides its request.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub app: AppState,
    pub conn: Arc<Connection>,
    /// `metadata.headers` of this request.
    pub headers: HashMap<String, String>,
    /// `metadata.clientIp` of this request (the connection's when blank).
    pub client_ip: String,
}

impl Ctx {
    /// A request header, case-insensitively (Nacos copies them into a case-insensitive map);
    /// blank counts as absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// A handler's answer, with the error code it carries (0: success) for metrics.
type HandlerFuture = Pin<Box<dyn Future<Output = (Payload, i32)> + Send>>;

trait ErasedHandler: Send + Sync {
    fn call(&self, ctx: Ctx, body: &[u8]) -> HandlerFuture;
}

struct Typed<Req, F> {
    f: Arc<F>,
    guard: GrpcGuard,
    _req: PhantomData<fn(Req)>,
}

/// What a payload type needs when auth is on (declared next to each [`Handlers::add`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrpcGuard {
    /// Never checked (health checks).
    Open,
    /// Config resources, from the request's [`Secured::resources`].
    Config(nacos_core::Action),
    /// Naming resources, from the request's [`Secured::resources`].
    Naming(nacos_core::Action),
}

pub const OPEN: GrpcGuard = GrpcGuard::Open;
pub const CONFIG_R: GrpcGuard = GrpcGuard::Config(nacos_core::Action::Read);
pub const CONFIG_W: GrpcGuard = GrpcGuard::Config(nacos_core::Action::Write);
pub const NAMING_R: GrpcGuard = GrpcGuard::Naming(nacos_core::Action::Read);
pub const NAMING_W: GrpcGuard = GrpcGuard::Naming(nacos_core::Action::Write);

/// What a request touches, for the guard: every resource its handler will read or write,
/// computed from the typed request by the same key functions the handler uses (so the two
/// cannot disagree). An `Err` is the handler's own parameter error, answered unchanged.
pub trait Secured: GrpcRequest {
    fn resources(&self) -> Result<Vec<nacos_core::Resource>, GrpcError>;
}

/// The auth check of one parsed request: `Err` is the typed failure to answer with.
async fn authorize(
    ctx: &Ctx,
    action: nacos_core::Action,
    resources: Result<Vec<nacos_core::Resource>, GrpcError>,
    type_name: &str,
) -> Result<(), GrpcError> {
    let auth = &ctx.app.auth;
    if auth.is_server_request(|name| ctx.header(name)) {
        return Ok(());
    }
    // Login limits key on the address: the socket peer, never the client's own claim.
    let peer = ctx.conn.meta.remote.ip().to_canonical().to_string();
    let identity = auth.identity(&peer, |name| ctx.header(name), |_| None);
    let refused = |e: nacos_core::AuthError| match e {
        nacos_core::AuthError::Unavailable(m) => GrpcError::fail(code::SERVER_ERROR, m),
        e => GrpcError::fail(code::NO_RIGHT, e.to_string()),
    };
    let principal = auth
        .plugin()
        .validate_identity(&identity)
        .await
        .map_err(refused)?;
    for resource in resources? {
        if let Err(e) = auth
            .plugin()
            .validate_authority(&principal, &resource, action)
            .await
        {
            tracing::debug!(%resource, error = %e, r#type = type_name, "refused");
            return Err(refused(e));
        }
    }
    Ok(())
}

impl<Req, F, Fut> ErasedHandler for Typed<Req, F>
where
    Req: Secured,
    F: Fn(Ctx, Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Req::Response, GrpcError>> + Send + 'static,
{
    fn call(&self, ctx: Ctx, body: &[u8]) -> HandlerFuture {
        let mut req: Req = match serde_json::from_slice(body) {
            Ok(req) => req,
            Err(e) => {
                let message = format!("cannot parse {}: {e}", Req::TYPE);
                return Box::pin(std::future::ready((
                    error_payload(code::SERVER_ERROR, code::BAD_GATEWAY, &message, None),
                    code::BAD_GATEWAY,
                )));
            }
        };
        let request_id = req.take_request_id();
        let action = match self.guard {
            GrpcGuard::Config(action) | GrpcGuard::Naming(action) if ctx.app.auth.enabled() => {
                action
            }
            _ => {
                let fut = (self.f)(ctx, req);
                return Box::pin(async move { answer::<Req>(fut.await, request_id) });
            }
        };
        let f = Arc::clone(&self.f);
        let resources = req.resources();
        Box::pin(async move {
            if let Err(e) = authorize(&ctx, action, resources, Req::TYPE).await {
                return answer::<Req>(Err(e), request_id);
            }
            answer::<Req>(f(ctx, req).await, request_id)
        })
    }
}

/// The payload of a handler's result, with its error code.
fn answer<Req: GrpcRequest>(
    result: Result<Req::Response, GrpcError>,
    request_id: Option<String>,
) -> (Payload, i32) {
    match result {
        Ok(resp) => (ok_payload(resp, request_id), 0),
        Err(e) => {
            let code = e.code();
            (failure_payload::<Req::Response>(e, request_id), code)
        }
    }
}

/// A handler and the series its requests are timed into.
struct Entry {
    handler: Box<dyn ErasedHandler>,
    stats: Arc<ByCode>,
}

/// Payload type name → handler.
#[derive(Default)]
pub struct Handlers {
    table: HashMap<&'static str, Entry>,
    guards: HashMap<&'static str, GrpcGuard>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.table.keys().collect();
        names.sort();
        f.debug_struct("Handlers").field("types", &names).finish()
    }
}

impl Handlers {
    /// Handle `Req` with `f`; `guard` is what it needs when auth is on.
    pub fn add<Req, F, Fut>(&mut self, guard: GrpcGuard, f: F) -> &mut Self
    where
        Req: Secured,
        F: Fn(Ctx, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Req::Response, GrpcError>> + Send + 'static,
    {
        self.guards.insert(Req::TYPE, guard);
        self.table.insert(
            Req::TYPE,
            Entry {
                handler: Box::new(Typed {
                    f: Arc::new(f),
                    guard,
                    _req: PhantomData::<fn(Req)>,
                }),
                stats: Arc::default(),
            },
        );
        self
    }

    /// Time each type's requests into the series of `stats` (one set per server, shared by
    /// every edge built for it).
    pub fn use_stats(&mut self, stats: &GrpcStats) {
        for (name, entry) in &mut self.table {
            if let Some(series) = stats.of(name) {
                entry.stats = series;
            }
        }
    }

    /// Every handled type with its auth declaration (the matrix test walks this).
    pub fn declarations(&self) -> Vec<(&'static str, GrpcGuard)> {
        let mut all: Vec<_> = self.guards.iter().map(|(t, g)| (*t, *g)).collect();
        all.sort_by_key(|(t, _)| *t);
        all
    }

    pub fn contains(&self, type_name: &str) -> bool {
        self.table.contains_key(type_name)
    }

    pub fn types(&self) -> Vec<&'static str> {
        self.table.keys().copied().collect()
    }
}

/// Types only peers may send, on the cluster port.
const CLUSTER_ONLY: &[&str] = &[
    "DistroDataRequest",
    "MemberReportRequest",
    "ConfigChangeClusterSyncRequest",
    "ServerLoaderInfoRequest",
    "ServerReloadRequest",
];

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RequestIdOnly {
    request_id: Option<String>,
}

/// The `ServerCheckResponse`: the connection id the client cannot learn otherwise.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerCheckResponse {
    #[serde(flatten)]
    base: ResponseBase,
    connection_id: String,
    support_ability_negotiation: bool,
}

/// How long a request on a fresh transport waits for the setup that its bi-stream is still
/// carrying (the Rust SDK sends its first health check right behind the setup).
const SETUP_GRACE: Duration = Duration::from_millis(300);
/// Transports younger than this get [`SETUP_GRACE`].
const FRESH_TRANSPORT: Duration = Duration::from_secs(10);

impl super::Edge {
    /// The unary pipeline. Never fails at the gRPC level: every outcome is a payload.
    pub(crate) async fn dispatch(
        &self,
        transport: Option<TransportInfo>,
        payload: Payload,
    ) -> Payload {
        let Payload { metadata, body } = payload;
        let metadata = metadata.unwrap_or_default();
        let body = body.map(|b| b.value).unwrap_or_default();
        let type_name = metadata.r#type.as_str();
        tracing::trace!(r#type = type_name, "gRPC request");

        if CLUSTER_ONLY.contains(&type_name) {
            return error_payload(
                code::SERVER_ERROR,
                code::BAD_GATEWAY,
                &format!(" invoke {type_name} from sdk is forbidden"),
                None,
            );
        }
        let manager = &self.app.connections;
        if !manager.is_serving() {
            return error_payload(
                code::SERVER_ERROR,
                code::NOT_FOUND_OR_STARTING,
                "Server is starting,please try later.",
                None,
            );
        }
        let Some(transport) = transport else {
            return error_payload(
                code::SERVER_ERROR,
                code::SERVER_ERROR,
                "no transport information for this call",
                None,
            );
        };
        if type_name == "ServerCheckRequest" {
            let request_id = serde_json::from_slice::<RequestIdOnly>(&body)
                .ok()
                .and_then(|r| r.request_id);
            let resp = ServerCheckResponse {
                base: ResponseBase {
                    result_code: 200,
                    error_code: 0,
                    success: true,
                    message: None,
                    request_id,
                },
                connection_id: transport.id.to_string(),
                support_ability_negotiation: true,
            };
            return encode("ServerCheckResponse", &resp);
        }
        let Some(entry) = self.handlers.table.get(type_name) else {
            self.app
                .metrics
                .grpc_rejected
                .observe(code::NO_HANDLER, Duration::ZERO);
            return error_payload(
                code::SERVER_ERROR,
                code::NO_HANDLER,
                "RequestHandler Not Found",
                None,
            );
        };
        let started = Instant::now();
        let Some(conn) = self.registered(&transport).await else {
            self.app
                .metrics
                .grpc_rejected
                .observe(code::UN_REGISTER, started.elapsed());
            return error_payload(
                code::SERVER_ERROR,
                code::UN_REGISTER,
                "Connection is unregistered.",
                None,
            );
        };
        conn.touch();
        let client_ip = if metadata.client_ip.trim().is_empty() {
            conn.meta.client_ip.clone()
        } else {
            metadata.client_ip.trim().to_string()
        };
        let ctx = Ctx {
            app: self.app.clone(),
            conn: Arc::clone(&conn),
            headers: metadata.headers,
            client_ip,
        };
        let (response, code) = entry.handler.call(ctx, &body).await;
        entry.stats.observe(code, started.elapsed());
        conn.touch();
        response
    }

    /// The connection registered on this transport, waiting briefly on a fresh transport whose
    /// bi-stream may still be carrying the setup.
    async fn registered(&self, transport: &TransportInfo) -> Option<Arc<Connection>> {
        let manager = &self.app.connections;
        if let Some(conn) = manager.get(&transport.id) {
            return Some(conn);
        }
        if transport.state.accepted.elapsed() > FRESH_TRANSPORT {
            return None;
        }
        let wait = async {
            loop {
                let notified = transport.state.registered.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(conn) = manager.get(&transport.id) {
                    return conn;
                }
                notified.await;
            }
        };
        tokio::time::timeout(SETUP_GRACE, wait).await.ok()
    }
}
