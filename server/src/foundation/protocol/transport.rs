//! The wire of `nacos_grpc_service.proto`: its two messages as hand-written prost derives (no
//! protoc at build time) and the unary `Request` service as tonic server glue over any
//! [`UnaryEdge`] (the client edge and both node-to-node edges). The proto has no `package`, so
//! the paths are `/Request/request` and `/BiRequestStream/requestBiStream`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body as GrpcBody;
use tonic::codegen::{BoxFuture, Service, StdError, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

/// `Metadata {type=3, clientIp=8, headers=7}`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metadata {
    /// Simple class name of the request or response: the dispatch key.
    #[prost(string, tag = "3")]
    pub r#type: String,
    /// The sender's own idea of its IP; responses leave it empty.
    #[prost(string, tag = "8")]
    pub client_ip: String,
    #[prost(map = "string, string", tag = "7")]
    pub headers: HashMap<String, String>,
}

/// `Payload {metadata=2, body=3}`; `body.value` is the UTF-8 JSON of the object and
/// `body.type_url` is ignored (Java leaves it empty, Rust puts the type name there).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Payload {
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<Metadata>,
    #[prost(message, optional, tag = "3")]
    pub body: Option<prost_types::Any>,
}

impl Payload {
    /// A payload of `type_name` whose body is `json`.
    pub fn new(type_name: &str, json: Vec<u8>) -> Self {
        Payload {
            metadata: Some(Metadata {
                r#type: type_name.to_string(),
                client_ip: String::new(),
                headers: HashMap::new(),
            }),
            body: Some(prost_types::Any {
                type_url: String::new(),
                value: json,
            }),
        }
    }

    pub fn type_name(&self) -> &str {
        self.metadata.as_ref().map_or("", |m| m.r#type.as_str())
    }

    pub fn body_bytes(&self) -> &[u8] {
        self.body.as_ref().map_or(&[], |b| b.value.as_slice())
    }
}

pub const REQUEST_PATH: &str = "/Request/request";
pub const BI_STREAM_PATH: &str = "/BiRequestStream/requestBiStream";

pub fn codec() -> ProstCodec<Payload, Payload> {
    ProstCodec::default()
}

pub fn unimplemented() -> http::Response<GrpcBody> {
    Status::unimplemented("no such method").into_http()
}

/// What answers unary `Request/request` calls: the client edge, or a node-to-node edge
/// (cluster port, Raft port).
pub trait UnaryEdge: Send + Sync + 'static {
    /// Largest accepted inbound message.
    fn max_message(&self) -> usize;
    fn unary(&self, request: Request<Payload>) -> impl Future<Output = Payload> + Send;
}

/// The `Request` service: one unary method carrying every request.
#[derive(Debug)]
pub struct RequestService<E> {
    edge: Arc<E>,
}

impl<E> Clone for RequestService<E> {
    fn clone(&self) -> Self {
        Self {
            edge: Arc::clone(&self.edge),
        }
    }
}

impl<E> RequestService<E> {
    pub fn new(edge: Arc<E>) -> Self {
        Self { edge }
    }
}

impl<E> NamedService for RequestService<E> {
    const NAME: &'static str = "Request";
}

struct UnaryCall<E>(Arc<E>);

impl<E: UnaryEdge> UnaryService<Payload> for UnaryCall<E> {
    type Response = Payload;
    type Future = BoxFuture<Response<Payload>, Status>;

    fn call(&mut self, request: Request<Payload>) -> Self::Future {
        let edge = Arc::clone(&self.0);
        Box::pin(async move { Ok(Response::new(edge.unary(request).await)) })
    }
}

impl<E: UnaryEdge, B> Service<http::Request<B>> for RequestService<E>
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<GrpcBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != REQUEST_PATH {
            return Box::pin(async { Ok(unimplemented()) });
        }
        let edge = Arc::clone(&self.edge);
        Box::pin(async move {
            let limit = edge.max_message();
            let mut grpc = Grpc::new(codec()).apply_max_message_size_config(Some(limit), None);
            Ok(grpc.unary(UnaryCall(edge), req).await)
        })
    }
}
