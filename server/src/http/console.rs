//! Console and core endpoints: namespaces, health, cluster membership (standalone: self only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::secured::{CLUSTER_R, M, NAMESPACES_W, OPEN, Routes};
use super::{ApiError, ApiResult, Params, rest_result, text};
use crate::{AppState, namespace};

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
            get(|| async { rest_result("UP".into(), None) }),
            &[(M::Get, CLUSTER_R)],
        )
        .route(
            "/v1/console/server/state",
            get(server_state),
            &[(M::Get, OPEN)],
        )
}

async fn get_namespaces(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    if params.get("checkNamespaceIdExist") == Some("true") {
        let id = params.required("customNamespaceId")?;
        return Ok(text(namespace::exists(&app, id).await?.to_string()));
    }
    if params.get("show") == Some("all") {
        let id = params.get("namespaceId").unwrap_or("");
        let view = namespace::get(&app, id).await?;
        return Ok(axum::Json(view).into_response());
    }
    let list = namespace::list(&app).await?;
    Ok(rest_result(
        serde_json::to_value(list).unwrap_or_default(),
        None,
    ))
}

async fn create_namespace(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let name = params
        .get("namespaceName")
        .ok_or(ApiError::missing("namespaceName"))?;
    let desc = params.get("namespaceDesc").unwrap_or("");
    match namespace::create(&app, params.get("customNamespaceId"), name, desc).await {
        Ok(_) => Ok(text("true")),
        // Nacos answers a duplicate id with `false`; keep that, but with a status that says so.
        Err(ApiError::Conflict(message)) => Err(ApiError::Conflict(message)),
        Err(e) => Err(e),
    }
}

async fn update_namespace(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let id = params.required("namespace")?;
    let name = params
        .get("namespaceShowName")
        .ok_or(ApiError::missing("namespaceShowName"))?;
    let desc = params.get("namespaceDesc").unwrap_or("");
    namespace::update(&app, id, name, desc).await?;
    Ok(text("true"))
}

async fn delete_namespace(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let id = params.required("namespaceId")?;
    namespace::delete(&app, id).await?;
    Ok(text("true"))
}

async fn readiness(State(app): State<AppState>) -> Response {
    // Ready when storage answers a read.
    match app.repos.namespaces.list().await {
        Ok(_) => text("OK"),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("storage is not ready: {e}"),
        )
            .into_response(),
    }
}

/// This node's address: `nacos.inetutils.ip-address`, else the address of the default route.
pub fn local_ip(app: &AppState) -> String {
    if let Some(ip) = app.settings.properties.get("nacos.inetutils.ip-address") {
        return ip.to_string();
    }
    // Connecting a UDP socket sends nothing; it only asks the kernel which source address
    // it would use.
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("10.255.255.255:1").map(|()| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "127.0.0.1".to_string())
}

pub fn self_member(app: &AppState) -> serde_json::Value {
    let ip = local_ip(app);
    let port = app.settings.port;
    serde_json::json!({
        "ip": ip,
        "port": port,
        "state": "UP",
        "address": format!("{ip}:{port}"),
        "extendInfo": {
            "raftPort": (i32::from(port) - 1000).to_string(),
            "version": env!("CARGO_PKG_VERSION"),
            "lastRefreshTime": nacos_core::now_millis(),
        },
        "failAccessCnt": 0,
        "abilities": {
            "remoteAbility": { "supportRemoteConnection": false, "grpcReportEnabled": false },
            "configAbility": { "supportRemoteMetrics": false },
            "namingAbility": { "supportJraft": false },
        },
        "grpcReportEnabled": false,
    })
}

async fn cluster_nodes(State(app): State<AppState>, params: Params) -> Response {
    let member = self_member(&app);
    let keyword = params.get("keyword").unwrap_or("");
    let matches = member["address"]
        .as_str()
        .is_some_and(|a| a.contains(keyword));
    let list = if matches { vec![member] } else { Vec::new() };
    rest_result(serde_json::Value::Array(list), None)
}

async fn cluster_self(State(app): State<AppState>) -> Response {
    rest_result(self_member(&app), None)
}

async fn cluster_simple_nodes(State(app): State<AppState>) -> Response {
    rest_result(
        serde_json::json!([format!("{}:{}", local_ip(&app), app.settings.port)]),
        None,
    )
}

async fn server_state(State(app): State<AppState>) -> Response {
    axum::Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "standalone_mode": if app.settings.is_standalone() { "standalone" } else { "cluster" },
        "function_mode": null,
        "server_port": app.settings.port.to_string(),
        "auth_enabled": app.auth.enabled().to_string(),
        "login_page_enabled": (app.auth.enabled() && app.auth.plugin().login_enabled()).to_string(),
        "auth_system_type": app.auth.plugin().name(),
        "console_ui_enabled": "false",
        "datasource_platform": app.settings.platform,
        "startup_mode": if app.settings.is_standalone() { "standalone" } else { "cluster" },
    }))
    .into_response()
}
