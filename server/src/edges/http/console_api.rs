//! Endpoints the web console calls that the OpenAPI modules do not serve: service detail with
//! clusters (`GET /v1/ns/catalog/service`), cluster settings (`PUT /v1/ns/cluster`), the
//! listening query (`GET /v1/cs/configs/listener` and `GET /v1/cs/listener`, from every node),
//! a client's config metrics (`GET /v1/cs/metrics/cluster` from every node, `/current` from
//! this one), and the overview (`GET /v1/console/overview`, ours). Each is guarded by the same rules as the
//! rest of the API: naming reads and writes on the service, config reads on the config or the
//! namespace.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use nacos_core::{Action, ClusterMeta, ConfigKey, Resource, validate};
use serde_json::{Value, json};

use super::config_params::{config_key, config_namespace};
use super::naming_ops::health_checker;
use super::naming_params::{SERVICE_R, SERVICE_W, grouped_service_key, parse_metadata};
use super::secured::{CLUSTER_R, Guard, M, Routes};
use super::{Params, ServiceError, ServiceResult};
use crate::app::AppState;
use crate::services::clients::config_metrics::MetricsQuery;
use crate::services::clients::listeners::{ConfigListener, ListenerQuery};
use crate::services::naming::health_check::HealthChecker;
use crate::services::naming::health_check::checker::PARAM as HEALTH_CHECKER_PARAM;

pub fn routes() -> Routes {
    Routes::new()
        .route(
            "/v1/ns/catalog/service",
            get(catalog_service),
            &[(M::Get, SERVICE_R)],
        )
        .route(
            "/v1/ns/cluster",
            put(update_cluster),
            &[(M::Put, SERVICE_W)],
        )
        .route(
            "/v1/cs/listener",
            get(client_listeners),
            &[(M::Get, Guard::Config(Action::Read, client_scope))],
        )
        .route(
            "/v1/cs/metrics/cluster",
            get(cluster_client_metrics),
            &[(M::Get, Guard::Config(Action::Read, metrics_scope))],
        )
        .route(
            "/v1/cs/metrics/current",
            get(current_client_metrics),
            &[(M::Get, Guard::Config(Action::Read, metrics_scope))],
        )
        .route(
            "/v1/console/overview",
            get(overview),
            &[(M::Get, CLUSTER_R)],
        )
}

// ---------------------------------------------------------------------------------------------
// Services

/// `GET /v1/ns/catalog/service`: the service's settings and each cluster's settings.
async fn catalog_service(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    let detail = app.naming.service_detail(&key).map_err(|_| {
        ServiceError::NotFound(format!("service {} is not found!", key.grouped_name()))
    })?;
    let meta = &detail.meta;
    let selector = super::naming_ops::selector_json(&meta.selector);
    let clusters: Vec<Value> = detail
        .clusters
        .iter()
        .map(|name| {
            let cluster = meta.clusters.get(name).cloned().unwrap_or_default();
            json!({
                "name": name,
                "serviceName": key.grouped_name(),
                "healthChecker": health_checker(Some(cluster.health_checker.as_str())),
                "metadata": cluster.metadata,
                "useIPPort4Check": cluster.use_instance_port || cluster.check_port == 0,
                "defaultPort": 80,
                "defaultCheckPort": if cluster.check_port == 0 { 80 } else { cluster.check_port },
            })
        })
        .collect();
    Ok(Json(json!({
        "service": {
            "name": key.name,
            "groupName": key.group,
            "namespaceId": key.namespace,
            "protectThreshold": meta.protect_threshold,
            "selector": selector,
            "metadata": meta.metadata,
            "ephemeral": detail.ephemeral,
        },
        "clusters": clusters,
    }))
    .into_response())
}

/// `PUT /v1/ns/cluster`: `clusterName`, `checkPort`, `useInstancePort4Check`, `healthChecker`
/// (JSON with a `type`: `TCP`, `HTTP`, `MYSQL` or `NONE`), `metadata`.
async fn update_cluster(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    let name = params.required("clusterName")?;
    validate::cluster_name("clusterName", name)?;
    let check_port: u16 = params.parse_or("checkPort", 0)?;
    let use_instance_port = params.bool("useInstancePort4Check")?.unwrap_or(true);
    let checker = match params.get(HEALTH_CHECKER_PARAM) {
        None => json!({"type": "TCP"}),
        Some(raw) => HealthChecker::parse_param(raw)?.1,
    };
    let metadata = match params.get("metadata") {
        Some(raw) => parse_metadata(raw)?,
        None => Default::default(),
    };
    let cluster = ClusterMeta {
        health_checker: checker.to_string(),
        check_port,
        use_instance_port,
        metadata,
    };
    app.naming.update_cluster(&key, name, cluster).await?;
    Ok(super::text("ok"))
}

// ---------------------------------------------------------------------------------------------
// Listening query

/// Nacos's `GroupkeyStatus`, plus the listens in full (ours) and the nodes that did not answer.
fn listener_status(
    listeners: &[ConfigListener],
    unreachable: &[String],
    key_of: impl Fn(&ConfigListener) -> String,
) -> Response {
    let mut status = serde_json::Map::new();
    for l in listeners {
        status.insert(key_of(l), Value::String(l.md5.clone()));
    }
    Json(json!({
        "collectStatus": 200,
        "lisentersGroupkeyStatus": status,
        "listeners": listeners,
        "unreachableNodes": unreachable,
    }))
    .into_response()
}

/// `GET /v1/cs/configs/listener?dataId=&group=&tenant=`: which clients listen to the config
/// (client IP → md5), on every node.
pub async fn config_listeners(
    State(app): State<AppState>,
    params: Params,
) -> ServiceResult<Response> {
    let key = config_key(&params)?;
    let (listeners, unreachable) = app.config_listeners(&ListenerQuery::Config(key)).await;
    Ok(listener_status(&listeners, &unreachable, |l| l.ip.clone()))
}

/// Guard of `GET /v1/cs/listener`: reads over the namespace asked for, or (`all=true`,
/// every namespace) the fixed resource `/v1/cs/listener`, which only the admin or an explicit
/// grant holds.
fn client_scope(params: &Params) -> ServiceResult<Vec<Resource>> {
    if params.bool("all")?.unwrap_or(false) {
        return Ok(vec![Resource::fixed(
            nacos_core::auth::fixed::CONFIG_LISTENER,
        )]);
    }
    let namespace = config_namespace(params, &["tenant", "namespaceId"])?;
    Ok(vec![Resource::config(&namespace, "", "")])
}

/// `GET /v1/cs/listener?ip=&tenant=&all=`: the configs one client IP listens to (group key →
/// md5), in the namespace asked for or (`all=true`) in every namespace.
async fn client_listeners(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let ip = params.required("ip")?.to_string();
    validate::ip(&ip)?;
    let namespace = if params.bool("all")?.unwrap_or(false) {
        None
    } else {
        Some(config_namespace(&params, &["tenant", "namespaceId"])?)
    };
    let query = ListenerQuery::Client { ip, namespace };
    let (listeners, unreachable) = app.config_listeners(&query).await;
    Ok(listener_status(&listeners, &unreachable, |l| {
        crate::services::config::listen::group_key(&l.data_id, &l.group, &l.tenant)
    }))
}

// ---------------------------------------------------------------------------------------------
// Client config metrics

/// The config a metrics query names: when `dataId` is given (`group` required then, `tenant`
/// optional).
fn metrics_key(params: &Params) -> ServiceResult<Option<ConfigKey>> {
    match params
        .get("dataId")
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        Some(_) => Ok(Some(config_key(params)?)),
        None => Ok(None),
    }
}

/// `ip` and the config, if any.
fn metrics_query(params: &Params) -> ServiceResult<MetricsQuery> {
    let ip = params.required("ip")?.trim().to_string();
    validate::ip(&ip)?;
    Ok(MetricsQuery {
        ip,
        key: metrics_key(params)?,
    })
}

/// Guard of the metrics endpoints: a read of the config asked about. Without a config the
/// request asks a client for its whole cache, whatever namespaces it holds, so it takes what
/// every namespace at once takes (`GET /v1/cs/listener?all=true`): the fixed resource
/// `/v1/cs/listener`, which only the admin or an explicit grant holds. The handler checks `ip`.
fn metrics_scope(params: &Params) -> ServiceResult<Vec<Resource>> {
    Ok(vec![match metrics_key(params)? {
        Some(key) => Resource::of_config(&key),
        None => Resource::fixed(nacos_core::auth::fixed::CONFIG_LISTENER),
    }])
}

/// `GET /v1/cs/metrics/cluster?ip=&dataId=&group=&tenant=`: what every connection of that
/// client IP, on every node, answers to `ClientConfigMetricRequest`, merged into one map (as
/// Nacos: the Java client answers its uuid → a JSON document). Clients and nodes that do not
/// answer in time are left out.
async fn cluster_client_metrics(
    State(app): State<AppState>,
    params: Params,
) -> ServiceResult<Response> {
    let query = metrics_query(&params)?;
    let (metrics, _unreachable) = app.client_metrics(&query).await;
    Ok(Json(metrics).into_response())
}

/// `GET /v1/cs/metrics/current?ip=&dataId=&group=&tenant=`: the same, from this node's
/// connections only.
async fn current_client_metrics(
    State(app): State<AppState>,
    params: Params,
) -> ServiceResult<Response> {
    let query = metrics_query(&params)?;
    Ok(Json(app.local_client_metrics(&query).await).into_response())
}

// ---------------------------------------------------------------------------------------------
// Overview

/// `GET /v1/console/overview` (ours): what the overview page shows — version, mode, storage,
/// uptime, counts, and the request and connection counters the page turns into rates.
async fn overview(State(app): State<AppState>) -> ServiceResult<Response> {
    let namespaces = crate::services::namespace::list(&app.repos).await?;
    let config_count: u64 = namespaces.iter().map(|n| n.config_count).sum();
    let metrics = app.naming.metrics();
    let members = app.member_view();
    let up = members
        .iter()
        .filter(|m| m["state"].as_str() == Some("UP"))
        .count();
    let storage = if app.raft.is_some() {
        "embedded (Raft)".to_string()
    } else if app.settings.platform.is_empty() {
        "embedded".to_string()
    } else {
        app.settings.platform.clone()
    };
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "mode": if app.settings.is_standalone() { "standalone" } else { "cluster" },
        "storage": storage,
        "authEnabled": app.auth.enabled(),
        "uptimeSeconds": app.started.elapsed().as_secs(),
        "serverTimeMs": nacos_core::now_millis(),
        "namespaceCount": namespaces.len(),
        "configCount": config_count,
        "serviceCount": metrics.service_count,
        "instanceCount": metrics.instance_count,
        "subscriberCount": metrics.subscribe_count,
        "connectionCount": app.connections.count(),
        "configListenerCount": app.config_listeners.listener_count()
            + app.config.hub().listener_count(),
        "httpRequests": app.traffic.http.requests(),
        "grpcRequests": app.traffic.grpc.requests(),
        "memberCount": members.len(),
        "membersUp": up,
    }))
    .into_response())
}
