//! The tower layer both edges share (the axum router and the tonic server): a debug-level
//! access log line (edge, method, path, status, latency) and request counters per edge. It
//! costs a clock read and a few relaxed atomics per request, so it stays on the hot path.
//! Beside it, [`RouteMetricsLayer`] times each route template's requests for
//! `http_server_requests_seconds`, finding the template in a [`RouteTable`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{Method, Request, Response};
use tower::{Layer, Service};

use super::metrics::{self, RouteStats};

/// Counters of one edge.
#[derive(Debug, Default)]
pub struct EdgeCounters {
    /// Requests answered (HTTP responses; gRPC calls whose headers went out).
    pub requests: AtomicU64,
    /// HTTP 4xx, or a gRPC status other than OK known from the response headers.
    pub client_errors: AtomicU64,
    /// HTTP 5xx.
    pub server_errors: AtomicU64,
    /// The inner service failed without a response.
    pub failures: AtomicU64,
}

impl EdgeCounters {
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Counters of both edges, shared with the layers.
#[derive(Debug, Default)]
pub struct Traffic {
    pub http: Arc<EdgeCounters>,
    pub grpc: Arc<EdgeCounters>,
}

/// Wraps a service with [`AccessLog`].
#[derive(Debug, Clone)]
pub struct AccessLogLayer {
    edge: &'static str,
    counters: Arc<EdgeCounters>,
}

impl AccessLogLayer {
    pub fn new(edge: &'static str, counters: Arc<EdgeCounters>) -> Self {
        Self { edge, counters }
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessLog {
            inner,
            edge: self.edge,
            counters: Arc::clone(&self.counters),
        }
    }
}

/// The service of [`AccessLogLayer`].
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
    edge: &'static str,
    counters: Arc<EdgeCounters>,
}

impl<S, B, R> Service<Request<B>> for AccessLog<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = AccessLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The path is copied, and the clock read, only when the line will be written.
        let detail = tracing::enabled!(tracing::Level::DEBUG).then(|| {
            (
                req.method().clone(),
                req.uri().path().to_string(),
                Instant::now(),
            )
        });
        AccessLogFuture {
            inner: self.inner.call(req),
            detail,
            edge: self.edge,
            counters: Arc::clone(&self.counters),
        }
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`AccessLog`].
    #[derive(Debug)]
    pub struct AccessLogFuture<F> {
        #[pin]
        inner: F,
        detail: Option<(Method, String, Instant)>,
        edge: &'static str,
        counters: Arc<EdgeCounters>,
    }
}

impl<F, R, E> Future for AccessLogFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(output) => output,
        };
        let counters = &this.counters;
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let status = match &output {
            Ok(resp) => {
                let status = resp.status();
                let grpc_failed = resp
                    .headers()
                    .get("grpc-status")
                    .is_some_and(|s| s.as_bytes() != b"0");
                if status.is_server_error() {
                    counters.server_errors.fetch_add(1, Ordering::Relaxed);
                } else if status.is_client_error() || grpc_failed {
                    counters.client_errors.fetch_add(1, Ordering::Relaxed);
                }
                status.as_u16()
            }
            Err(_) => {
                counters.failures.fetch_add(1, Ordering::Relaxed);
                0
            }
        };
        if let Some((method, path, started)) = this.detail.take() {
            tracing::debug!(
                edge = *this.edge,
                %method,
                path,
                status,
                latency_us = started.elapsed().as_micros() as u64,
                "request"
            );
        }
        Poll::Ready(output)
    }
}

/// Which route template a request path belongs to: the router's own paths, matched the way
/// axum matches them (`matchit`), each with its [`RouteStats`]; anything else is the
/// not-found series.
pub struct RouteTable {
    routes: matchit::Router<Arc<RouteStats>>,
    not_found: Arc<RouteStats>,
}

impl std::fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTable")
            .field("not_found", &self.not_found.uri)
            .finish_non_exhaustive()
    }
}

impl RouteTable {
    /// An empty table; requests it does not know go to an unregistered series named
    /// `not_found_uri` until [`RouteTable::set_not_found`] names the registered one.
    pub fn new(not_found_uri: &'static str) -> Self {
        Self {
            routes: matchit::Router::new(),
            not_found: Arc::new(RouteStats::new(not_found_uri)),
        }
    }

    pub fn set_not_found(&mut self, stats: Arc<RouteStats>) {
        self.not_found = stats;
    }

    /// Time requests to `path` (as given to the router) into `stats`. The router has accepted
    /// the same path, so matchit accepts it too; should it not, the path's requests would
    /// count as not found, so that is logged.
    pub fn insert(&mut self, path: &str, stats: Arc<RouteStats>) {
        if let Err(e) = self.routes.insert(path, stats) {
            tracing::warn!(path, error = %e, "route not timed");
        }
    }

    fn stats_for(&self, path: &str) -> &Arc<RouteStats> {
        self.routes
            .at(path)
            .map_or(&self.not_found, |found| found.value)
    }
}

/// Times every request into the [`RouteStats`] of its route template. It wraps the whole
/// router: a layer per route (`route_layer`) costs about four allocations per request in
/// axum's boxing, a lookup here costs none.
#[derive(Debug, Clone)]
pub struct RouteMetricsLayer {
    table: Arc<RouteTable>,
}

impl RouteMetricsLayer {
    pub fn new(table: RouteTable) -> Self {
        Self {
            table: Arc::new(table),
        }
    }
}

impl<S> Layer<S> for RouteMetricsLayer {
    type Service = RouteMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RouteMetrics {
            inner,
            table: Arc::clone(&self.table),
        }
    }
}

/// The service of [`RouteMetricsLayer`].
#[derive(Debug, Clone)]
pub struct RouteMetrics<S> {
    inner: S,
    table: Arc<RouteTable>,
}

impl<S, B, R> Service<Request<B>> for RouteMetrics<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RouteMetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = metrics::method_index(req.method());
        let stats = Arc::clone(self.table.stats_for(req.uri().path()));
        RouteMetricsFuture {
            inner: self.inner.call(req),
            started: Instant::now(),
            method,
            stats,
        }
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`RouteMetrics`].
    #[derive(Debug)]
    pub struct RouteMetricsFuture<F> {
        #[pin]
        inner: F,
        started: Instant,
        method: usize,
        stats: Arc<RouteStats>,
    }
}

impl<F, R, E> Future for RouteMetricsFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(output) => output,
        };
        // A failed inner service (no response) is what axum answers with 500.
        let status = output.as_ref().map_or(500, |r| r.status().as_u16());
        this.stats
            .observe(*this.method, status, this.started.elapsed());
        Poll::Ready(output)
    }
}
