//! The HTTP edge: routing under the context path, the shared middleware ([`crate::foundation::middleware`]),
//! response helpers.
//! Handlers are thin adapters: parse and validate parameters, call a service, shape the answer.
//! Every route is timed under its template ([`secured::Routes::into_router`]); [`metrics`]
//! serves what was recorded as `/actuator/prometheus`.

pub mod auth_api;
pub mod config_ops;
pub mod config_params;
pub mod console;
pub mod console_api;
pub mod console_ui;
pub mod error;
pub mod import_report;
pub mod metrics;
pub mod naming_ops;
pub mod naming_params;
pub mod params;
pub mod secured;
pub mod transfer;
pub mod v1_config;
pub mod v1_naming;
pub mod v1_operator;
pub mod v2;
pub mod v2_client;
pub mod v2_config;
pub mod v2_naming;
pub mod wire;

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use crate::app::AppState;
use crate::foundation::metrics::RouteStats;
use crate::foundation::middleware::{
    AccessLog, AccessLogLayer, RouteMetrics, RouteMetricsLayer, RouteTable,
};

pub use error::{ServiceError, ServiceResult};
pub use params::Params;

/// Every route with its auth declarations: the single source of truth for both the router and
/// [`route_table`].
fn all_routes() -> secured::Routes {
    secured::Routes::new()
        .merge(v1_config::routes())
        .merge(v1_naming::routes())
        .merge(v1_operator::routes())
        .merge(console::routes())
        .merge(console_api::routes())
        .merge(console_ui::routes())
        .merge(auth_api::routes())
        .merge(v2::routes())
        .merge(v2_config::routes())
        .merge(v2_naming::routes())
        .merge(v2_client::routes())
        .merge(metrics::routes())
        .merge(transfer::routes())
}

/// Every (path, method, guard) the router serves, paths relative to the context path.
pub fn route_table() -> Vec<secured::RouteDecl> {
    all_routes().decls
}

/// The whole HTTP application: every route under `server.servlet.contextPath`, inside the
/// access log both edges share.
pub fn router(app: AppState) -> AccessLog<RouteMetrics<Router>> {
    let mut timed = RouteTable::new(secured::NOT_FOUND_URI);
    let mut router = all_routes().into_router(&app, &mut timed);
    let http = app.metrics.http.get();
    let stats = |index: usize, uri: &'static str| match http {
        Some(http) => http.route(index, uri),
        None => Arc::new(RouteStats::new(uri)),
    };
    let context = app.settings.context_path.clone();
    if !context.is_empty() {
        // `/nacos` without the slash opens the console too.
        let target = format!("{context}/");
        router = router.route(
            &context,
            axum::routing::get(move || async move { axum::response::Redirect::to(&target) }),
        );
        timed.insert(&context, stats(0, secured::ROOT_URI));
    }
    timed.set_not_found(stats(1, secured::NOT_FOUND_URI));
    let router = router.fallback(not_found).with_state(app.clone());
    // Both layers go around the router rather than through `Router::layer`, which would wrap
    // (and box) every route once more: allocations on every request.
    let router = tower::Layer::layer(&RouteMetricsLayer::new(timed), router);
    tower::Layer::layer(
        &AccessLogLayer::new("http", Arc::clone(&app.traffic.http)),
        router,
    )
}

async fn not_found(uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
        format!("no such endpoint: {}", uri.path()),
    )
        .into_response()
}

/// Nacos's RestResult envelope `{code, message, data}` with HTTP 200.
pub fn rest_result(data: serde_json::Value, message: Option<&str>) -> Response {
    axum::Json(serde_json::json!({ "code": 200, "message": message, "data": data })).into_response()
}

/// Plain text with HTTP 200, as v1 endpoints answer `ok` / `true`.
pub fn text(body: impl Into<String>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
        body.into(),
    )
        .into_response()
}
