//! Console and core endpoints: namespaces, health, cluster membership (standalone: self only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::secured::{ADMIN_W, CLUSTER_R, M, NAMESPACES_W, OPEN, Routes};
use super::{Params, ServiceError, ServiceResult, rest_result, text};
use crate::app::AppState;
use crate::services::namespace;

pub fn routes() -> Routes {
    Routes::new()
        .route(
            "/v1/console/namespaces",
            get(get_namespaces)
                .post(create_namespace)
                .put(update_namespace)
                .delete(delete_namespace),
            &[
                (M::Get, OPEN),
                (M::Post, NAMESPACES_W),
                (M::Put, NAMESPACES_W),
                (M::Delete, NAMESPACES_W),
            ],
        )
        .route(
            "/v1/console/health/liveness",
            get(|| async { text("OK") }),
            &[(M::Get, OPEN)],
        )
        .route(
            "/v1/console/health/readiness",
            get(readiness),
            &[(M::Get, OPEN)],
        )
        .route(
            "/v1/core/cluster/nodes",
            get(cluster_nodes),
            &[(M::Get, CLUSTER_R)],
        )
        .route(
            "/v1/core/cluster/self",
            get(cluster_self),
            &[(M::Get, CLUSTER_R)],
        )
        .route(
            "/v1/core/cluster/simple/nodes",
            get(cluster_simple_nodes),
            &[(M::Get, CLUSTER_R)],
        )
        .route(
            "/v1/core/cluster/health",
            get(cluster_health),
            &[(M::Get, CLUSTER_R)],
        )
        .route(
            "/v1/core/cluster/server/leave",
            axum::routing::post(cluster_leave),
            &[(M::Post, ADMIN_W)],
        )
        .route(
            "/v1/console/server/state",
            get(server_state),
            &[(M::Get, OPEN)],
        )
}

async fn get_namespaces(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    if params.get("checkNamespaceIdExist") == Some("true") {
        let id = params.required("customNamespaceId")?;
        return Ok(text(namespace::exists(&app.repos, id).await?.to_string()));
    }
    if params.get("show") == Some("all") {
        let id = params.get("namespaceId").unwrap_or("");
        let view = namespace::get(&app.repos, id).await?;
        return Ok(axum::Json(view).into_response());
    }
    let list = namespace::list(&app.repos).await?;
    Ok(rest_result(
        serde_json::to_value(list).unwrap_or_default(),
        None,
    ))
}

async fn create_namespace(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let name = params
        .get("namespaceName")
        .ok_or(ServiceError::missing("namespaceName"))?;
    let desc = params.get("namespaceDesc").unwrap_or("");
    match namespace::create(&app.repos, params.get("customNamespaceId"), name, desc).await {
        Ok(_) => Ok(text("true")),
        // Nacos answers a duplicate id with `false`; keep that, but with a status that says so.
        Err(ServiceError::Conflict(message)) => Err(ServiceError::Conflict(message)),
        Err(e) => Err(e),
    }
}

async fn update_namespace(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let id = params.required("namespace")?;
    let name = params
        .get("namespaceShowName")
        .ok_or(ServiceError::missing("namespaceShowName"))?;
    let desc = params.get("namespaceDesc").unwrap_or("");
    namespace::update(&app.repos, id, name, desc).await?;
    Ok(text("true"))
}

async fn delete_namespace(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let id = params.required("namespaceId")?;
    namespace::delete(&app.repos, id).await?;
    Ok(text("true"))
}

/// This node's state, `UP` while it can serve (`DOWN` otherwise), as Nacos names member states.
async fn cluster_health(State(app): State<AppState>) -> Response {
    let state = match app.readiness_problem().await {
        None => "UP",
        Some(_) => "DOWN",
    };
    rest_result(state.into(), None)
}

async fn readiness(State(app): State<AppState>) -> Response {
    match app.readiness_problem().await {
        None => text("OK"),
        Some(problem) => (StatusCode::INTERNAL_SERVER_ERROR, problem).into_response(),
    }
}

async fn cluster_nodes(State(app): State<AppState>, params: Params) -> Response {
    let keyword = params.get("keyword").unwrap_or("");
    let list: Vec<serde_json::Value> = app
        .member_view()
        .into_iter()
        .filter(|m| m["address"].as_str().is_some_and(|a| a.contains(keyword)))
        .collect();
    rest_result(serde_json::Value::Array(list), None)
}

/// `POST /v1/core/cluster/server/leave` with a JSON array of `ip:port` (Nacos's shape).
async fn cluster_leave(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let addresses: Vec<String> = serde_json::from_slice(&params.body).map_err(|e| {
        ServiceError::bad(format!(
            "the body must be a JSON array of member addresses (\"ip:port\"): {e}"
        ))
    })?;
    let left = app.leave(&addresses).map_err(ServiceError::bad)?;
    Ok(rest_result(serde_json::json!(left), Some("ok")))
}

async fn cluster_self(State(app): State<AppState>) -> Response {
    rest_result(app.self_view(), None)
}

async fn cluster_simple_nodes(State(app): State<AppState>) -> Response {
    let list: Vec<serde_json::Value> = app
        .member_view()
        .into_iter()
        .map(|m| m["address"].clone())
        .collect();
    rest_result(serde_json::Value::Array(list), None)
}

async fn server_state(State(app): State<AppState>) -> Response {
    let admin_request =
        app.auth.enabled() && matches!(super::auth_api::has_admin(&app).await, Ok(false));
    axum::Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "standalone_mode": if app.settings.is_standalone() { "standalone" } else { "cluster" },
        "function_mode": null,
        "server_port": app.settings.port.to_string(),
        "auth_enabled": app.auth.enabled().to_string(),
        "login_page_enabled": (app.auth.enabled() && app.auth.plugin().login_enabled()).to_string(),
        "auth_system_type": app.auth.plugin().name(),
        "console_ui_enabled": super::console_ui::enabled().to_string(),
        // Auth on and no admin yet: the console offers the first-start page.
        "auth_admin_request": admin_request.to_string(),
        "datasource_platform": app.settings.platform,
        "startup_mode": if app.settings.is_standalone() { "standalone" } else { "cluster" },
    }))
    .into_response()
}
