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
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::connection::Connection;
use super::error::{GrpcError, code};
use super::proto::Payload;
use super::stream::TransportInfo;
use crate::AppState;

/// Fields every response carries. `resultCode` 200 / 500, `errorCode` 0 on success, `success`
/// derived (Java serialises its `isSuccess()` getter).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResponseBase {
    pub result_code: i32,
    pub error_code: i32,
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A client request type: its wire name and its response type.
pub trait GrpcRequest: DeserializeOwned + Send + 'static {
    const TYPE: &'static str;
    type Response: GrpcResponse;
    fn take_request_id(&mut self) -> Option<String>;
}

/// A response type: its wire name; `Default` is the body of a typed failure.
pub trait GrpcResponse: Serialize + Default + Send + 'static {
    const TYPE: &'static str;
    fn base_mut(&mut self) -> &mut ResponseBase;
}

/// Define a request struct (camelCase JSON, every field optional, unknown fields ignored).
macro_rules! grpc_request {
    ($(#[$meta:meta])* $name:ident => $resp:ty { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(rename_all = "camelCase", default)]
        pub struct $name {
            pub request_id: Option<String>,
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $crate::grpc::dispatch::GrpcRequest for $name {
            const TYPE: &'static str = stringify!($name);
            type Response = $resp;
            fn take_request_id(&mut self) -> Option<String> {
                self.request_id.take()
            }
        }
    };
}

/// Define a response struct carrying [`ResponseBase`] plus its own fields.
macro_rules! grpc_response {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Default, serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            #[serde(flatten)]
            pub base: $crate::grpc::dispatch::ResponseBase,
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $crate::grpc::dispatch::GrpcResponse for $name {
            const TYPE: &'static str = stringify!($name);
            fn base_mut(&mut self) -> &mut $crate::grpc::dispatch::ResponseBase {
                &mut self.base
            }
        }
    };
}

pub(crate) use {grpc_request, grpc_response};

grpc_response!(
    /// The answer when no typed response applies.
    ErrorResponse {}
);

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

fn encode<T: Serialize>(type_name: &str, value: &T) -> Payload {
    match serde_json::to_vec(value) {
        Ok(json) => Payload::new(type_name, json),
        Err(e) => error_payload(
            code::SERVER_ERROR,
            code::SERVER_ERROR,
            &format!("cannot encode {type_name}: {e}"),
            None,
        ),
    }
}

/// A successful typed response.
pub fn ok_payload<R: GrpcResponse>(mut resp: R, request_id: Option<String>) -> Payload {
    let base = resp.base_mut();
    base.result_code = 200;
    base.error_code = 0;
    base.success = true;
    base.request_id = request_id;
    encode(R::TYPE, &resp)
}

/// An `ErrorResponse`.
pub fn error_payload(
    result_code: i32,
    error_code: i32,
    message: &str,
    request_id: Option<String>,
) -> Payload {
    let resp = ErrorResponse {
        base: ResponseBase {
            result_code,
            error_code,
            success: false,
            message: Some(message.to_string()),
            request_id,
        },
    };
    match serde_json::to_vec(&resp) {
        Ok(json) => Payload::new("ErrorResponse", json),
        // Serialising integers and strings cannot fail; keep a literal answer regardless.
        Err(_) => Payload::new(
            "ErrorResponse",
            br#"{"resultCode":500,"errorCode":500,"success":false}"#.to_vec(),
        ),
    }
}

/// The answer to a failed handler: typed failure or `ErrorResponse`.
pub fn failure_payload<R: GrpcResponse>(error: GrpcError, request_id: Option<String>) -> Payload {
    match error {
        GrpcError::Fail { code, message } => {
            let mut resp = R::default();
            let base = resp.base_mut();
            base.result_code = 500;
            base.error_code = code;
            base.success = false;
            base.message = Some(message);
            base.request_id = request_id;
            encode(R::TYPE, &resp)
        }
        GrpcError::Thrown { code, message } => error_payload(code, code, &message, request_id),
    }
}

type HandlerFuture = Pin<Box<dyn Future<Output = Payload> + Send>>;

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
    let identity = auth.identity(&ctx.client_ip, |name| ctx.header(name), |_| None);
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
                return Box::pin(std::future::ready(error_payload(
                    code::SERVER_ERROR,
                    code::BAD_GATEWAY,
                    &message,
                    None,
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
                return Box::pin(async move {
                    match fut.await {
                        Ok(resp) => ok_payload(resp, request_id),
                        Err(e) => failure_payload::<Req::Response>(e, request_id),
                    }
                });
            }
        };
        let f = Arc::clone(&self.f);
        let resources = req.resources();
        Box::pin(async move {
            if let Err(e) = authorize(&ctx, action, resources, Req::TYPE).await {
                return failure_payload::<Req::Response>(e, request_id);
            }
            match f(ctx, req).await {
                Ok(resp) => ok_payload(resp, request_id),
                Err(e) => failure_payload::<Req::Response>(e, request_id),
            }
        })
    }
}

/// Payload type name → handler.
#[derive(Default)]
pub struct Handlers {
    table: HashMap<&'static str, Box<dyn ErasedHandler>>,
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
            Box::new(Typed {
                f: Arc::new(f),
                guard,
                _req: PhantomData::<fn(Req)>,
            }),
        );
        self
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
        let Some(handler) = self.handlers.table.get(type_name) else {
            return error_payload(
                code::SERVER_ERROR,
                code::NO_HANDLER,
                "RequestHandler Not Found",
                None,
            );
        };
        let Some(conn) = self.registered(&transport).await else {
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
        let response = handler.call(ctx, &body).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    grpc_response!(DemoResponse {
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        last_modified: i64,
    });

    fn json(p: &Payload) -> serde_json::Value {
        serde_json::from_slice(p.body_bytes()).expect("json body")
    }

    #[test]
    fn envelopes() {
        let ok = ok_payload(
            DemoResponse {
                content: Some("x".into()),
                ..Default::default()
            },
            Some("7".into()),
        );
        assert_eq!(ok.type_name(), "DemoResponse");
        let v = json(&ok);
        assert_eq!(v["resultCode"], 200);
        assert_eq!(v["errorCode"], 0);
        assert_eq!(v["success"], true);
        assert_eq!(v["requestId"], "7");
        assert_eq!(v["content"], "x");
        assert!(v.get("message").is_none());

        let fail =
            failure_payload::<DemoResponse>(GrpcError::fail(300, "config data not exist"), None);
        assert_eq!(fail.type_name(), "DemoResponse");
        let v = json(&fail);
        assert_eq!(v["resultCode"], 500);
        assert_eq!(v["errorCode"], 300);
        assert_eq!(v["lastModified"], 0);
        assert!(v.get("content").is_none());

        let thrown = failure_payload::<DemoResponse>(GrpcError::thrown(400, "bad"), None);
        assert_eq!(thrown.type_name(), "ErrorResponse");
        let v = json(&thrown);
        assert_eq!(v["resultCode"], 400);
        assert_eq!(v["errorCode"], 400);
        assert_eq!(v["success"], false);
    }
}
