//! `/v1/ns/operator` (alias `/v1/ns/ops`) and `/v1/ns/health/server`: the naming module's
//! operator views (metrics, switches, push state); the views themselves are in
//! [`super::naming_ops`], shared with `/v2/ns/operator`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use nacos_core::Action;
use nacos_core::auth::fixed;

use super::naming_ops;
use super::naming_params::NAMESPACE_SERVICES_R;
use super::secured::{Guard, M, OPEN, Routes};
use super::{Params, ServiceResult, text};
use crate::app::AppState;

/// Anyone may read the switches (Nacos leaves them open); changing one needs write on the fixed
/// resource `naming/switches`, which only a grant naming it (or the admin role) gives.
pub(super) const SWITCHES: &[(M, Guard)] = &[
    (M::Get, OPEN),
    (M::Put, Guard::Fixed(fixed::NAMING_SWITCHES, Action::Write)),
];

pub fn routes() -> Routes {
    Routes::new()
        .route("/v1/ns/operator/metrics", get(metrics), &[(M::Get, OPEN)])
        .route("/v1/ns/ops/metrics", get(metrics), &[(M::Get, OPEN)])
        .route(
            "/v1/ns/operator/switches",
            get(switches).put(update_switch),
            SWITCHES,
        )
        .route(
            "/v1/ns/ops/switches",
            get(switches).put(update_switch),
            SWITCHES,
        )
        .route(
            "/v1/ns/operator/push/state",
            get(push_state),
            &[(M::Get, NAMESPACE_SERVICES_R)],
        )
        .route(
            "/v1/ns/ops/push/state",
            get(push_state),
            &[(M::Get, NAMESPACE_SERVICES_R)],
        )
        .route(
            "/v1/ns/health/server",
            get(health_server),
            &[(M::Get, OPEN)],
        )
}

async fn metrics(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    Ok(Json(naming_ops::metrics(&app, &params).await?).into_response())
}

async fn switches(State(app): State<AppState>) -> Response {
    Json(naming_ops::switches(&app)).into_response()
}

async fn update_switch(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    naming_ops::update_switch(&app, &params)?;
    Ok(text("ok"))
}

async fn push_state(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let reset = params.bool("reset")?.unwrap_or(false);
    let counters = app.naming.push_counters(reset);
    let succeed = counters.total.saturating_sub(counters.failed);
    let ratio = if counters.total > 0 {
        json!(succeed as f64 / counters.total as f64)
    } else {
        json!(0)
    };
    Ok(Json(json!({
        "succeed": succeed,
        "total": counters.total,
        "ratio": ratio,
        "reset": reset,
    }))
    .into_response())
}

async fn health_server(State(app): State<AppState>) -> Response {
    let services = app.naming.metrics().service_count;
    Json(json!({
        "msg": format!(
            "Hello! I am Nacos-Naming and healthy! total services: {services}, local port:{}",
            app.settings.port
        )
    }))
    .into_response()
}
