//! `/v1/ns`: the naming OpenAPI of Nacos 1.x clients, over [`crate::services::naming::NamingService`].
//!
//! Parameters come from the query and the form body merged. `serviceName` goes through Nacos's
//! grouping filter: `group@@name` names its group, otherwise `groupName` (or `DEFAULT_GROUP`)
//! applies. The namespace defaults to `public` (blank too). Answers are Nacos's raw v1 shapes:
//! `ok` text or bare JSON; errors are a status with a plain-text message.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use nacos_core::validate;
use nacos_core::{DEFAULT_CLUSTER, Instance, ServiceKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::naming_ops::{
    create_service_with, deregister_instance, find_instance, health_checker, instance_list_body,
    patch_instance, register_instance, update_instance, update_service_with,
};
use super::naming_params::{
    LISTED_GROUP_R, NAMES_R, NAMESPACE_SERVICES_R, SERVICE_R, SERVICE_W, STATUSES_R, cluster_param,
    grouped_service_key, json_metadata, listed_group_of, names_namespace, naming_namespace,
    page_of, parse_metadata, required_ip, required_page, required_port, statuses_key,
};
use super::secured::{M, Routes, read_write};
use super::{Params, ServiceError, ServiceResult, text};
use crate::app::AppState;
use crate::cluster::forward::ClientOp;
use crate::services::naming::service_info::InstanceWire;
use crate::services::naming::{ClientId, Host};

pub fn routes() -> Routes {
    let rw = &read_write(SERVICE_R, SERVICE_W);
    Routes::new()
        .route(
            "/v1/ns/instance",
            get(instance_detail)
                .post(register)
                .delete(deregister)
                .put(update)
                .patch(patch),
            rw,
        )
        .route("/v1/ns/instance/list", get(list), &[(M::Get, SERVICE_R)])
        .route("/v1/ns/instance/beat", put(beat), &[(M::Put, SERVICE_W)])
        .route(
            "/v1/ns/instance/metadata/batch",
            put(metadata_batch_put).delete(metadata_batch_delete),
            &[(M::Put, SERVICE_W), (M::Delete, SERVICE_W)],
        )
        .route(
            "/v1/ns/instance/statuses",
            get(instance_statuses),
            &[(M::Get, STATUSES_R)],
        )
        .route(
            "/v1/ns/service/names",
            get(service_names),
            &[(M::Get, NAMES_R)],
        )
        .route(
            "/v1/ns/service/subscribers",
            get(service_subscribers),
            &[(M::Get, SERVICE_R)],
        )
        .route(
            "/v1/ns/catalog/services",
            get(catalog_services),
            &[(M::Get, NAMESPACE_SERVICES_R)],
        )
        .route(
            "/v1/ns/catalog/instances",
            get(catalog_instances),
            &[(M::Get, SERVICE_R)],
        )
        .route(
            "/v1/ns/service",
            get(service_detail)
                .post(create_service)
                .delete(delete_service)
                .put(update_service),
            // Services have no PATCH.
            &rw[..4],
        )
        .route(
            "/v1/ns/service/list",
            get(service_list),
            &[(M::Get, LISTED_GROUP_R)],
        )
        .route("/v1/ns/health", put(set_health), &[(M::Put, SERVICE_W)])
        .route(
            "/v1/ns/health/instance",
            put(set_health),
            &[(M::Put, SERVICE_W)],
        )
}

// ---------------------------------------------------------------------------------------------
// Parameter helpers (shared with the v2 edge)

// ---------------------------------------------------------------------------------------------
// Instances

async fn register(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    register_instance(&app, key, &params).await?;
    Ok(text("ok"))
}

async fn deregister(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    deregister_instance(&app, key, &params).await?;
    Ok(text("ok"))
}

async fn update(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    update_instance(&app, key, &params).await?;
    Ok(text("ok"))
}

async fn patch(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    patch_instance(&app, key, &params).await?;
    Ok(text("ok"))
}

async fn instance_detail(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    let host = find_instance(&app, &key, &params)?;
    let detail =
        super::naming_ops::instance_detail_json(&host, &key, ("service", key.grouped_name()));
    Ok(Json(detail).into_response())
}

async fn list(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    let body = instance_list_body(&app, &key, &params)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The `beat` JSON of a v1 client; unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct BeatJson {
    ip: Option<String>,
    port: Option<i64>,
    cluster: Option<String>,
    weight: Option<f64>,
    metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BeatResponse {
    client_beat_interval: u64,
    code: i32,
    light_beat_enabled: bool,
}

async fn beat(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    let beat_json = match params.get("beat") {
        Some(raw) => Some(
            serde_json::from_str::<BeatJson>(raw)
                .map_err(|e| ServiceError::param("beat", format!("invalid beat JSON: {e}")))?,
        ),
        None => None,
    };
    let mut cluster = params
        .get_any(&["clusterName", "cluster"])
        .unwrap_or(DEFAULT_CLUSTER)
        .to_string();
    let (ip, port) = match &beat_json {
        Some(b) => {
            if let Some(c) = b.cluster.as_deref().filter(|c| !c.trim().is_empty()) {
                cluster = c.trim().to_string();
            }
            let ip = match b.ip.as_deref().filter(|ip| !ip.trim().is_empty()) {
                Some(ip) => ip.trim().to_string(),
                None => required_ip(&params)?,
            };
            let port = match b.port {
                Some(p) => u16::try_from(p).map_err(|_| {
                    ServiceError::param("beat", format!("invalid port in beat: {p}"))
                })?,
                None => required_port(&params)?,
            };
            (ip, port)
        }
        None => (required_ip(&params)?, required_port(&params)?),
    };
    validate::ip(&ip)?;
    validate::cluster_name("clusterName", &cluster)?;
    let register = match beat_json {
        Some(b) => {
            let mut instance = Instance::new(ip.clone(), port);
            instance.cluster = cluster.clone();
            instance.weight = b.weight.unwrap_or(1.0);
            if let Some(map) = b.metadata {
                instance.metadata = json_metadata(map).ok_or_else(|| {
                    ServiceError::param(
                        "beat",
                        "invalid beat JSON: metadata values must be strings",
                    )
                })?;
            }
            Some(instance)
        }
        None => None,
    };
    let owner = ClientId::ip_port(&ip, port, true);
    let op = ClientOp::Beat {
        service: key,
        ip,
        port,
        cluster,
        register,
    };
    let outcome = match app.client_write(&owner, op).await? {
        Some(outcome) => outcome,
        None => {
            return Err(ServiceError::Internal(
                "a beat produced no beat outcome".to_string(),
            ));
        }
    };
    Ok(Json(BeatResponse {
        client_beat_interval: u64::try_from(outcome.client_beat_interval.as_millis())
            .unwrap_or(u64::MAX),
        code: outcome.code,
        light_beat_enabled: true,
    })
    .into_response())
}

async fn set_health(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let healthy = match params.bool("healthy")? {
        Some(h) => h,
        None => params
            .bool("valid")?
            .ok_or_else(|| ServiceError::param("healthy", "Param 'healthy' is required."))?,
    };
    let key = grouped_service_key(&params)?;
    let ip = required_ip(&params)?;
    let port = required_port(&params)?;
    let cluster = cluster_param(&params)?;
    app.naming
        .set_persistent_health(&key, &ip, port, &cluster, healthy)
        .await?;
    Ok(text("ok"))
}

// ---------------------------------------------------------------------------------------------
// Services

async fn create_service(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    create_service_with(&app, key, &params).await?;
    Ok(text("ok"))
}

async fn update_service(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    update_service_with(&app, key, &params).await?;
    Ok(text("ok"))
}

async fn delete_service(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    app.naming.delete_service(&key).await?;
    Ok(text("ok"))
}

async fn service_detail(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    let detail = app.naming.service_detail(&key)?;
    let meta = &detail.meta;
    let selector =
        serde_json::from_str::<Value>(&meta.selector).unwrap_or_else(|_| json!({"type": "none"}));
    let clusters: Vec<Value> = detail
        .clusters
        .iter()
        .map(|name| {
            let cluster = meta.clusters.get(name);
            json!({
                "name": name,
                "healthChecker": health_checker(cluster.map(|c| c.health_checker.as_str())),
                "metadata": cluster.map(|c| c.metadata.clone()).unwrap_or_default(),
            })
        })
        .collect();
    Ok(Json(json!({
        "namespaceId": key.namespace,
        "groupName": key.group,
        "name": key.name,
        "protectThreshold": meta.protect_threshold,
        "metadata": meta.metadata,
        "selector": selector,
        "clusters": clusters,
    }))
    .into_response())
}

async fn service_list(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let namespace = naming_namespace(&params)?;
    let page_no = params
        .parse::<u32>("pageNo")?
        .ok_or(ServiceError::missing("pageNo"))?;
    let page_size = params
        .parse::<u32>("pageSize")?
        .ok_or(ServiceError::missing("pageSize"))?;
    let (_, group) = listed_group_of(&params)?;
    let names: Vec<String> = app
        .naming
        .list_services(&namespace, Some(group))
        .into_iter()
        .map(|k| k.name)
        .collect();
    let count = names.len();
    let start = (page_no.max(1) as usize - 1).saturating_mul(page_size as usize);
    let doms: Vec<String> = names
        .into_iter()
        .skip(start)
        .take(page_size as usize)
        .collect();
    Ok(Json(json!({ "count": count, "doms": doms })).into_response())
}

// ---------------------------------------------------------------------------------------------
// Batch metadata, statuses, names, subscribers, catalog

/// One entry of the `instances` JSON of `metadata/batch`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchTarget {
    ip: String,
    port: u16,
    cluster_name: Option<String>,
}

async fn metadata_batch_put(
    State(app): State<AppState>,
    params: Params,
) -> ServiceResult<Response> {
    metadata_batch(&app, &params, false).await
}

async fn metadata_batch_delete(
    State(app): State<AppState>,
    params: Params,
) -> ServiceResult<Response> {
    metadata_batch(&app, &params, true).await
}

async fn metadata_batch(app: &AppState, params: &Params, remove: bool) -> ServiceResult<Response> {
    let key = grouped_service_key(params)?;
    let ephemeral = params.get("consistencyType") != Some("persist");
    let targets = match params.get("instances").map(str::trim) {
        None | Some("") => Vec::new(),
        Some(raw) => serde_json::from_str::<Vec<BatchTarget>>(raw)
            .map_err(|e| ServiceError::param("instances", format!("invalid instances JSON: {e}")))?
            .into_iter()
            .map(|t| {
                let cluster = t
                    .cluster_name
                    .unwrap_or_else(|| DEFAULT_CLUSTER.to_string());
                validate::ip(&t.ip)?;
                validate::cluster_name("instances", &cluster)?;
                Ok((t.ip, t.port, cluster))
            })
            .collect::<ServiceResult<Vec<_>>>()?,
    };
    let metadata = parse_metadata(params.required("metadata")?)?;
    let updated = app
        .naming
        .batch_metadata(&key, ephemeral, &targets, &metadata, remove)
        .await?;
    Ok(Json(json!({ "updated": updated })).into_response())
}

async fn instance_statuses(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = statuses_key(&params)?;
    let mut hosts = app.naming.all_hosts(&key);
    hosts.sort_by(|a, b| (&a.instance.ip, a.instance.port).cmp(&(&b.instance.ip, b.instance.port)));
    let ips: Vec<String> = hosts
        .iter()
        .map(|h| {
            format!(
                "{}:{}_{}",
                h.instance.ip, h.instance.port, h.instance.healthy
            )
        })
        .collect();
    Ok(Json(json!({ "ips": ips })).into_response())
}

/// Names (`group@@name`) per namespace, all namespaces unless `namespaceId` is given; `expr`
/// keeps names containing it.
async fn service_names(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let only = names_namespace(&params)?;
    let expr = params.get("expr").unwrap_or("");
    let mut by_namespace: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut count = 0usize;
    for key in app.naming.all_services() {
        if only.as_deref().is_some_and(|ns| ns != key.namespace) {
            continue;
        }
        let grouped = key.grouped_name();
        if !grouped.contains(expr) {
            continue;
        }
        count += 1;
        by_namespace.entry(key.namespace).or_default().push(grouped);
    }
    // "META-INF/services" is Nacos's own key (2.2.3+; 2.2.0 said "services"), kept as is.
    Ok(Json(json!({ "META-INF/services": by_namespace, "count": count })).into_response())
}

async fn service_subscribers(
    State(app): State<AppState>,
    params: Params,
) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    let page_no = params.parse_or::<usize>("pageNo", 1)?;
    let page_size = params.parse_or::<usize>("pageSize", 1000)?;
    // One node: aggregation over the cluster gives the same answer.
    let _aggregation = params.bool("aggregation")?.unwrap_or(true);
    let service_name = key.grouped_name();
    let mut subscribers: Vec<Value> = Vec::new();
    for id in app.naming_subscribers.subscribers_of(&key) {
        let Some(conn) = app.connections.get(&id) else {
            continue;
        };
        let ip = conn.meta.client_ip.clone();
        let port = conn.meta.remote.port();
        let cluster = app
            .naming_subscribers
            .subscriptions_of(&id)
            .into_iter()
            .find(|(k, _)| k == &key)
            .map(|(_, clusters)| clusters)
            .unwrap_or_default();
        subscribers.push(json!({
            "addrStr": format!("{ip}:{port}"),
            "agent": conn.meta.client_version,
            "app": conn.meta.app_name().unwrap_or("unknown"),
            "ip": ip,
            "port": port,
            "namespaceId": key.namespace,
            "serviceName": service_name,
            "cluster": cluster,
        }));
    }
    for sub in app.naming.udp_subscriptions() {
        if sub.key != key {
            continue;
        }
        subscribers.push(json!({
            "addrStr": sub.addr.to_string(),
            "agent": "",
            "app": "unknown",
            "ip": sub.addr.ip().to_string(),
            "port": sub.addr.port(),
            "namespaceId": key.namespace,
            "serviceName": service_name,
            "cluster": sub.clusters,
        }));
    }
    subscribers.sort_by(|a, b| a["addrStr"].as_str().cmp(&b["addrStr"].as_str()));
    let count = subscribers.len();
    let subscribers = page_of(subscribers, page_no, page_size);
    Ok(Json(json!({ "subscribers": subscribers, "count": count })).into_response())
}

/// `serviceNameParam` and `groupNameParam` keep services whose name / group contain them.
async fn catalog_services(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let namespace = naming_namespace(&params)?;
    let (page_no, page_size) = required_page(&params)?;
    let name_filter = params.get("serviceNameParam").unwrap_or("");
    let group_filter = params.get("groupNameParam").unwrap_or("");
    // Accepted for compatibility; the summary shape is answered either way.
    let _with_instances = params.bool("withInstances")?.unwrap_or(false);
    // `hasIpCount=true` (the console's "hide empty services") keeps services with instances.
    let hide_empty = params.bool("hasIpCount")?.unwrap_or(false);
    let keys: Vec<ServiceKey> = app
        .naming
        .list_services(&namespace, None)
        .into_iter()
        .filter(|k| k.name.contains(name_filter) && k.group.contains(group_filter))
        .filter(|k| !hide_empty || !app.naming.all_hosts(k).is_empty())
        .collect();
    let count = keys.len();
    let list: Vec<Value> = page_of(keys, page_no, page_size)
        .into_iter()
        .map(|key| {
            let hosts = app.naming.all_hosts(&key);
            let clusters: std::collections::BTreeSet<&str> =
                hosts.iter().map(|h| h.instance.cluster.as_str()).collect();
            let healthy = hosts.iter().filter(|h| h.instance.healthy).count();
            // Nacos: healthy / ipCount <= protectThreshold (0 without stored settings);
            // no instances is never triggered (0/0 is NaN).
            let threshold = app
                .naming
                .service_detail(&key)
                .map_or(0.0, |d| f64::from(d.meta.protect_threshold));
            let triggered = !hosts.is_empty() && healthy as f64 / hosts.len() as f64 <= threshold;
            json!({
                "name": key.name,
                "groupName": key.group,
                "clusterCount": clusters.len(),
                "ipCount": hosts.len(),
                "healthyInstanceCount": healthy,
                "triggerFlag": if triggered { "true" } else { "false" },
            })
        })
        .collect();
    Ok(Json(json!({ "count": count, "serviceList": list })).into_response())
}

async fn catalog_instances(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    let cluster = params.required("clusterName")?;
    validate::cluster_name("clusterName", cluster)?;
    let (page_no, page_size) = required_page(&params)?;
    // As Nacos: an unknown service or cluster is NOT_FOUND.
    let detail = app.naming.service_detail(&key).map_err(|_| {
        ServiceError::NotFound(format!("service {}@@{} is not found!", key.group, key.name))
    })?;
    if !detail.clusters.iter().any(|c| c == cluster) {
        return Err(ServiceError::NotFound(format!(
            "cluster {cluster} is not found!"
        )));
    }
    let mut hosts: Vec<Arc<Host>> = app
        .naming
        .all_hosts(&key)
        .into_iter()
        .filter(|h| h.instance.cluster == cluster)
        .collect();
    hosts.sort_by(|a, b| (&a.instance.ip, a.instance.port).cmp(&(&b.instance.ip, b.instance.port)));
    let count = hosts.len();
    let grouped = key.grouped_name();
    let list: Vec<Value> = page_of(hosts, page_no, page_size)
        .iter()
        .map(|h| json!(InstanceWire::new(h, h.instance.healthy, &key, &grouped)))
        .collect();
    Ok(Json(json!({ "list": list, "count": count })).into_response())
}

// ---------------------------------------------------------------------------------------------
// Operator and health endpoints
