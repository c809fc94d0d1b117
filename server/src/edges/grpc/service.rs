//! The client edge's side of the wire: [`UnaryEdge`] for the client [`Edge`], and the
//! `BiRequestStream` service that carries connection setup, acks and server pushes.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body as GrpcBody;
use tonic::codegen::{BoxFuture, Service, StdError, http};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

use super::Edge;
use super::stream::Outbound;
use crate::foundation::protocol::transport::{
    BI_STREAM_PATH, Payload, UnaryEdge, codec, unimplemented,
};

impl UnaryEdge for Edge {
    fn max_message(&self) -> usize {
        Edge::max_message(self)
    }

    fn unary(&self, request: Request<Payload>) -> impl Future<Output = Payload> + Send {
        Edge::unary(self, request)
    }
}

/// The `BiRequestStream` service: the client's setup and acks in, server pushes out.
#[derive(Debug, Clone)]
pub struct BiStreamService {
    edge: Arc<Edge>,
}

impl BiStreamService {
    pub fn new(edge: Arc<Edge>) -> Self {
        Self { edge }
    }
}

impl NamedService for BiStreamService {
    const NAME: &'static str = "BiRequestStream";
}

struct StreamCall(Arc<Edge>);

impl StreamingService<Payload> for StreamCall {
    type Response = Payload;
    type ResponseStream = Outbound;
    type Future = BoxFuture<Response<Outbound>, Status>;

    fn call(&mut self, request: Request<Streaming<Payload>>) -> Self::Future {
        let edge = Arc::clone(&self.0);
        Box::pin(async move { edge.bi_stream(request).map(Response::new) })
    }
}

impl<B> Service<http::Request<B>> for BiStreamService
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
        if req.uri().path() != BI_STREAM_PATH {
            return Box::pin(async { Ok(unimplemented()) });
        }
        let edge = Arc::clone(&self.edge);
        Box::pin(async move {
            let limit = edge.max_message();
            let mut grpc = Grpc::new(codec()).apply_max_message_size_config(Some(limit), None);
            Ok(grpc.streaming(StreamCall(edge), req).await)
        })
    }
}
