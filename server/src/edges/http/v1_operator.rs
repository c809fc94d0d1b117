//! `/v1/ns/operator` (alias `/v1/ns/ops`) and `/v1/ns/health/server`: the naming module's
//! operator views (metrics, switches, push state).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::naming_params::NAMESPACE_SERVICES_R;
use super::secured::{M, OPEN, Routes};
use super::{Params, ServiceResult};
use crate::app::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .route("/v1/ns/operator/metrics", get(metrics), &[(M::Get, OPEN)])
        .route("/v1/ns/ops/metrics", get(metrics), &[(M::Get, OPEN)])
        .route("/v1/ns/operator/switches", get(switches), &[(M::Get, OPEN)])
        .route("/v1/ns/ops/switches", get(switches), &[(M::Get, OPEN)])
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

/// `(cpu, load, mem)`: cpu is the 1-minute load per core (capped at 1), load the 1-minute load
/// average, mem the used fraction of memory. Zeros where `/proc` is unavailable.
fn system_usage() -> (f64, f64, f64) {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0f64);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let field = |name: &str| -> Option<f64> {
                s.lines()
                    .find(|l| l.starts_with(name))?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()
            };
            let total = field("MemTotal:")?;
            let available = field("MemAvailable:")?;
            (total > 0.0).then(|| 1.0 - available / total)
        })
        .unwrap_or(0.0);
    ((load / cores).min(1.0), load, mem)
}

/// `status` is this node's readiness (`DOWN` while it cannot serve, e.g. no quorum or no
/// writable database); the responsible counts leave out copies of other nodes' clients.
async fn metrics(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let only_status = params.bool("onlyStatus")?.unwrap_or(true);
    let status = match app.readiness_problem().await {
        None => "UP",
        Some(_) => "DOWN",
    };
    if only_status {
        return Ok(Json(json!({ "status": status })).into_response());
    }
    let m = app.naming.metrics();
    let (cpu, load, mem) = system_usage();
    Ok(Json(json!({
        "status": status,
        "serviceCount": m.service_count,
        "instanceCount": m.instance_count,
        "subscribeCount": m.subscribe_count,
        "responsibleInstanceCount": m.responsible_instance_count,
        "clientCount": m.client_count,
        "connectionBasedClientCount": m.connection_based_client_count,
        "ephemeralIpPortClientCount": m.ephemeral_ip_port_client_count,
        "persistentIpPortClientCount": m.persistent_ip_port_client_count,
        "responsibleClientCount": m.responsible_client_count,
        "cpu": cpu,
        "load": load,
        "mem": mem,
    }))
    .into_response())
}

/// Nacos's SwitchDomain with its defaults, reflecting the settings this server runs with.
async fn switches(State(app): State<AppState>) -> Response {
    let naming = app.naming.settings();
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Json(json!({
        "name": "00-00---000-NACOS_SWITCH_DOMAIN-000---00-00",
        "adWeightMap": {},
        "defaultPushCacheMillis": naming.push_cache_millis,
        "clientBeatInterval": ms(naming.beat_interval),
        "defaultCacheMillis": 3000,
        "distroThreshold": 0.7,
        "healthCheckEnabled": true,
        "autoChangeHealthCheckEnabled": true,
        "distroEnabled": true,
        "enableStandalone": true,
        "pushEnabled": true,
        "checkTimes": 3,
        "httpHealthParams": { "max": 5000, "min": 500, "factor": 0.85 },
        "tcpHealthParams": { "max": 3000, "min": 2000, "factor": 0.65 },
        "mysqlHealthParams": { "max": 5000, "min": 1000, "factor": 0.75 },
        "incrementalList": [],
        "serverStatusSynchronizationPeriodMillis": 2000,
        "serviceStatusSynchronizationPeriodMillis": 5000,
        "disableAddIP": false,
        "sendBeatOnly": false,
        "lightBeatEnabled": true,
        "limitedUrlMap": {},
        "distroServerExpiredMillis": 10000,
        "pushGoVersion": "0.1.0",
        "pushJavaVersion": "0.1.0",
        "pushPythonVersion": "0.4.3",
        "pushCVersion": "1.0.12",
        "pushCSharpVersion": "0.9.0",
        "enableAuthentication": app.auth.enabled(),
        "defaultInstanceEphemeral": true,
        "healthCheckWhiteList": [],
        "checksum": null,
    }))
    .into_response()
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
