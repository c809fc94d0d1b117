//! The v2 OpenAPI envelope `{code, message, data}` and the v2 endpoints that do not belong to a
//! single service: namespaces and cluster nodes. Config and naming v2 endpoints live beside
//! their v1 counterparts and reuse this envelope.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::secured::{Guard, M, NAMESPACES_R, NAMESPACES_W, OPEN, Routes};
use super::{Params, ServiceError};
use crate::app::AppState;
use crate::services::namespace;
use nacos_core::Action;

/// A v2 success: HTTP 200, code 0.
pub fn ok(data: impl serde::Serialize) -> Response {
    let data = serde_json::to_value(data).unwrap_or(serde_json::Value::Null);
    axum::Json(serde_json::json!({ "code": 0, "message": "success", "data": data })).into_response()
}

/// A v2 success around `data` that is already JSON (the naming service's cached ServiceInfo
/// bytes), without parsing and re-serialising it.
pub fn ok_raw_json(data: &[u8]) -> Response {
    const HEAD: &[u8] = br#"{"code":0,"message":"success","data":"#;
    let mut body = Vec::with_capacity(HEAD.len() + data.len() + 1);
    body.extend_from_slice(HEAD);
    body.extend_from_slice(data);
    body.push(b'}');
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// A v2 failure: the kind's HTTP status, its detail code, an abstract message, the detail in
/// `data` (Nacos's `Result` of the v2 OpenAPI).
#[derive(Debug)]
pub struct V2Error {
    pub error: ServiceError,
    /// A more specific detail code than the kind's default (22001 namespace not exist, ...).
    pub code: Option<(i32, &'static str)>,
}

impl V2Error {
    pub fn with_code(error: ServiceError, code: i32, abstract_message: &'static str) -> Self {
        V2Error {
            error,
            code: Some((code, abstract_message)),
        }
    }
}

impl From<nacos_core::validate::ParamError> for V2Error {
    fn from(error: nacos_core::validate::ParamError) -> Self {
        ServiceError::from(error).into()
    }
}

impl From<ServiceError> for V2Error {
    fn from(error: ServiceError) -> Self {
        V2Error { error, code: None }
    }
}

fn abstract_message(code: i32) -> &'static str {
    match code {
        10000 => "parameter missing",
        10001 => "access denied",
        10002 => "data access error",
        20002 => "parameter validate error",
        20004 => "resource not found",
        20005 => "resource conflict",
        _ => "server error",
    }
}

impl IntoResponse for V2Error {
    fn into_response(self) -> Response {
        let (code, message) = self
            .code
            .unwrap_or_else(|| (self.error.v2_code(), abstract_message(self.error.v2_code())));
        let status = self.error.status();
        let body =
            serde_json::json!({ "code": code, "message": message, "data": self.error.to_string() });
        (status, axum::Json(body)).into_response()
    }
}

pub type V2Result = Result<Response, V2Error>;

pub fn routes() -> Routes {
    let cluster = &[(M::Get, Guard::Fixed("/v2/core/cluster", Action::Read))];
    Routes::new()
        .route(
            "/v2/console/namespace/list",
            get(namespace_list),
            &[(M::Get, NAMESPACES_R)],
        )
        .route(
            "/v2/console/namespace",
            get(namespace_get)
                .post(namespace_create)
                .put(namespace_update)
                .delete(namespace_delete),
            &[
                (M::Get, NAMESPACES_R),
                (M::Post, NAMESPACES_W),
                (M::Put, NAMESPACES_W),
                (M::Delete, NAMESPACES_W),
            ],
        )
        .route(
            "/v2/console/health/liveness",
            get(|| async { ok("ok") }),
            &[(M::Get, OPEN)],
        )
        .route(
            "/v2/console/health/readiness",
            get(readiness),
            &[(M::Get, OPEN)],
        )
        .route("/v2/core/cluster/node/self", get(node_self), cluster)
        .route("/v2/core/cluster/node/list", get(node_list), cluster)
        .route(
            "/v2/core/cluster/node/self/health",
            get(|| async { ok("UP") }),
            cluster,
        )
}

fn namespace_error(error: ServiceError) -> V2Error {
    match &error {
        ServiceError::NotFound(_) => V2Error::with_code(error, 22001, "namespace not exist"),
        ServiceError::Conflict(_) => V2Error::with_code(error, 22002, "namespace already exist"),
        ServiceError::BadRequest { .. } => V2Error::with_code(error, 22000, "illegal namespace"),
        _ => error.into(),
    }
}

async fn namespace_list(State(app): State<AppState>) -> V2Result {
    Ok(ok(namespace::list(&app.repos).await?))
}

async fn namespace_get(State(app): State<AppState>, params: Params) -> V2Result {
    let id = params.required("namespaceId")?;
    namespace::get(&app.repos, id)
        .await
        .map(ok)
        .map_err(namespace_error)
}

async fn namespace_create(State(app): State<AppState>, params: Params) -> V2Result {
    let name = params
        .get("namespaceName")
        .ok_or(ServiceError::missing("namespaceName"))?;
    let desc = params.get("namespaceDesc").unwrap_or("");
    namespace::create(&app.repos, params.get("namespaceId"), name, desc)
        .await
        .map(|_| ok(true))
        .map_err(namespace_error)
}

async fn namespace_update(State(app): State<AppState>, params: Params) -> V2Result {
    let id = params.required("namespaceId")?;
    let name = params
        .get("namespaceName")
        .ok_or(ServiceError::missing("namespaceName"))?;
    let desc = params.get("namespaceDesc").unwrap_or("");
    namespace::update(&app.repos, id, name, desc)
        .await
        .map(|()| ok(true))
        .map_err(namespace_error)
}

async fn namespace_delete(State(app): State<AppState>, params: Params) -> V2Result {
    let id = params.required("namespaceId")?;
    Ok(ok(namespace::delete(&app.repos, id).await?))
}

async fn readiness(State(app): State<AppState>) -> Response {
    match app.readiness_problem().await {
        None => ok("ok"),
        Some(problem) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(
                serde_json::json!({"code": 30000, "message": "server error", "data": problem}),
            ),
        )
            .into_response(),
    }
}

async fn node_self(State(app): State<AppState>) -> Response {
    ok(app.self_view())
}

async fn node_list(State(app): State<AppState>, params: Params) -> Response {
    let address = params.get("address").unwrap_or("");
    let state = params.get("state").unwrap_or("");
    let list: Vec<serde_json::Value> = app
        .member_view()
        .into_iter()
        .filter(|m| m["address"].as_str().is_some_and(|a| a.contains(address)))
        .filter(|m| state.is_empty() || m["state"].as_str() == Some(state))
        .collect();
    ok(list)
}
