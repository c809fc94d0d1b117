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
use nacos_core::ServiceKey;
use nacos_core::validate;
use serde_json::{Value, json};

use super::naming_ops::{
    self, create_service_with, deregister_instance, find_instance, health_checker,
    instance_list_body, patch_instance, register_instance, update_instance, update_service_with,
};
use super::naming_params::{
    LISTED_GROUP_R, NAMES_R, NAMESPACE_SERVICES_R, SERVICE_R, SERVICE_W, STATUSES_R,
    grouped_service_key, listed_group_of, names_namespace, naming_namespace, page_of,
    required_page, statuses_key,
};
use super::secured::{M, OPEN, Routes, read_write};
use super::{Params, ServiceError, ServiceResult, text};
use crate::app::AppState;
use crate::services::naming::Host;

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
        // Open, as Nacos's `HealthController.checkers`: fixed defaults, nothing stored.
        .route(
            "/v1/ns/health/checkers",
            get(health_checkers),
            &[(M::Get, OPEN)],
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

async fn beat(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    Ok(Json(naming_ops::beat(&app, key, &params).await?).into_response())
}

async fn set_health(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = grouped_service_key(&params)?;
    naming_ops::set_persistent_health(&app, key, &params).await?;
    Ok(text("ok"))
}

// ---------------------------------------------------------------------------------------------
// Services

/// `GET /v1/ns/health/checkers`: each checker type with its default JSON.
async fn health_checkers() -> Response {
    Json(crate::services::naming::health_check::checker::defaults()).into_response()
}

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
    let selector = naming_ops::selector_json(&meta.selector);
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
    let updated = naming_ops::batch_metadata(app, &key, params, remove).await?;
    Ok(Json(json!({ "updated": updated })).into_response())
}

async fn instance_statuses(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = statuses_key(&params)?;
    Ok(Json(naming_ops::health_statuses(&app, &key)).into_response())
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
    let hosts: Vec<Arc<Host>> = naming_ops::hosts_by_address(&app, &key)
        .into_iter()
        .filter(|h| h.instance.cluster == cluster)
        .collect();
    let count = hosts.len();
    let list = naming_ops::instances_json(&page_of(hosts, page_no, page_size), &key);
    Ok(Json(json!({ "list": list, "count": count })).into_response())
}

// ---------------------------------------------------------------------------------------------
// Operator and health endpoints
