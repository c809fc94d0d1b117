//! `/v2/ns`: the v2 naming OpenAPI. The service key is the bare `serviceName` plus
//! `groupName` (no `group@@name` filter); the operations are those of [`super::v1_naming`]
//! (shared through [`super::naming_ops`]), wrapped in the v2 `Result` envelope.
//!
//! Nacos keeps three v1 habits here, and so do we: `instance/beat` and `catalog/instances`
//! read a grouped `serviceName` (`group@@name`, as v1's grouping filter), and `instance/beat`
//! and `instance/statuses/{key}` answer their raw v1 JSON instead of the envelope (errors are
//! enveloped all the same).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use nacos_core::validate;
use nacos_core::{Action, DEFAULT_GROUP, Resource, ServiceKey};
use serde_json::json;

use super::naming_ops;
use super::naming_params::{self, naming_namespace};
use super::secured::{Guard, M, OPEN, Routes, read_write};
use super::v1_operator::SWITCHES;
use super::v2::{V2Error, V2Result, ok};
use super::{Params, ServiceError, ServiceResult};
use crate::app::AppState;

/// Reads and writes of the service a v2 request names (bare `serviceName`, `groupName`).
pub const SERVICE_R: Guard = Guard::Naming(Action::Read, named_service);
pub const SERVICE_W: Guard = Guard::Naming(Action::Write, named_service);

/// Guard: the service of [`service_key`].
fn named_service(params: &Params) -> ServiceResult<Vec<Resource>> {
    Ok(vec![Resource::of_service(&service_key(params)?)])
}

pub fn routes() -> Routes {
    let rw = &read_write(SERVICE_R, SERVICE_W);
    Routes::new()
        .route(
            "/v2/ns/instance",
            get(instance_detail)
                .post(register)
                .delete(deregister)
                .put(update)
                .patch(patch),
            rw,
        )
        .route(
            "/v2/ns/instance/list",
            get(instance_list),
            &[(M::Get, SERVICE_R)],
        )
        .route(
            "/v2/ns/service",
            get(service_detail)
                .post(create_service)
                .put(update_service)
                .delete(delete_service),
            // Services have no PATCH.
            &rw[..4],
        )
        .route(
            "/v2/ns/service/list",
            get(service_list),
            &[(M::Get, naming_params::LISTED_GROUP_R)],
        )
        .route(
            "/v2/ns/instance/beat",
            put(beat),
            &[(M::Put, naming_params::SERVICE_W)],
        )
        .route(
            "/v2/ns/instance/metadata/batch",
            put(metadata_batch_put).delete(metadata_batch_delete),
            &[(M::Put, SERVICE_W), (M::Delete, SERVICE_W)],
        )
        .route(
            "/v2/ns/instance/statuses/{key}",
            get(instance_statuses),
            &[(M::Get, naming_params::PATH_STATUSES_R)],
        )
        .route("/v2/ns/health", put(set_health), &[(M::Put, SERVICE_W)])
        .route(
            "/v2/ns/health/instance",
            put(set_health),
            &[(M::Put, SERVICE_W)],
        )
        .route(
            "/v2/ns/catalog/instances",
            get(catalog_instances),
            &[(M::Get, naming_params::SERVICE_R)],
        )
        .route(
            "/v2/ns/operator/switches",
            get(switches).put(update_switch),
            SWITCHES,
        )
        .route(
            "/v2/ns/ops/switches",
            get(switches).put(update_switch),
            SWITCHES,
        )
        .route("/v2/ns/operator/metrics", get(metrics), &[(M::Get, OPEN)])
        .route("/v2/ns/ops/metrics", get(metrics), &[(M::Get, OPEN)])
}

/// `namespaceId` + `groupName` + bare `serviceName`.
pub(super) fn service_key(params: &Params) -> ServiceResult<ServiceKey> {
    let namespace = naming_namespace(params)?;
    let group = params.get("groupName").unwrap_or(DEFAULT_GROUP);
    validate::group_name(group)?;
    let name = params.required("serviceName")?;
    validate::service_name(name)?;
    Ok(ServiceKey::new(namespace, group, name))
}

/// v1 answers a missing service with 400 (as Nacos); v2 says 404 with code 21008.
fn service_error(error: ServiceError) -> V2Error {
    match error {
        ServiceError::NotFound(m) => {
            V2Error::with_code(ServiceError::NotFound(m), 21008, "service not exist")
        }
        ServiceError::BadRequest { message, .. } if message.starts_with("service not found") => {
            V2Error::with_code(ServiceError::NotFound(message), 21008, "service not exist")
        }
        other => other.into(),
    }
}

async fn register(State(app): State<AppState>, params: Params) -> V2Result {
    naming_ops::register_instance(&app, service_key(&params)?, &params).await?;
    Ok(ok("ok"))
}

async fn deregister(State(app): State<AppState>, params: Params) -> V2Result {
    naming_ops::deregister_instance(&app, service_key(&params)?, &params).await?;
    Ok(ok("ok"))
}

async fn update(State(app): State<AppState>, params: Params) -> V2Result {
    naming_ops::update_instance(&app, service_key(&params)?, &params).await?;
    Ok(ok("ok"))
}

async fn patch(State(app): State<AppState>, params: Params) -> V2Result {
    naming_ops::patch_instance(&app, service_key(&params)?, &params).await?;
    Ok(ok("ok"))
}

async fn instance_detail(State(app): State<AppState>, params: Params) -> V2Result {
    let key = service_key(&params)?;
    let host = naming_ops::find_instance(&app, &key, &params).map_err(|e| match e {
        ServiceError::NotFound(_) => V2Error::with_code(e, 21003, "instance not found"),
        other => other.into(),
    })?;
    Ok(ok(naming_ops::instance_detail_json(
        &host,
        &key,
        ("serviceName", key.name.clone()),
    )))
}

async fn instance_list(State(app): State<AppState>, params: Params) -> V2Result {
    let key = service_key(&params)?;
    let body = naming_ops::instance_list_body(&app, &key, &params)?;
    Ok(super::v2::ok_raw_json(&body))
}

async fn create_service(State(app): State<AppState>, params: Params) -> V2Result {
    let key = service_key(&params)?;
    naming_ops::create_service_with(&app, key, &params)
        .await
        .map_err(|e| match e {
            ServiceError::Conflict(_) | ServiceError::BadRequest { .. }
                if e.to_string().contains("already exist") =>
            {
                V2Error::with_code(e, 21007, "service already exist")
            }
            other => other.into(),
        })?;
    Ok(ok("ok"))
}

async fn update_service(State(app): State<AppState>, params: Params) -> V2Result {
    let key = service_key(&params)?;
    naming_ops::update_service_with(&app, key, &params)
        .await
        .map_err(service_error)?;
    Ok(ok("ok"))
}

async fn delete_service(State(app): State<AppState>, params: Params) -> V2Result {
    let key = service_key(&params)?;
    app.naming
        .delete_service(&key)
        .await
        .map_err(|e| service_error(e.into()))?;
    Ok(ok("ok"))
}

async fn service_detail(State(app): State<AppState>, params: Params) -> V2Result {
    let key = service_key(&params)?;
    let detail = app
        .naming
        .service_detail(&key)
        .map_err(|e| service_error(e.into()))?;
    let hosts = app.naming.all_hosts(&key);
    let meta = &detail.meta;
    let mut cluster_map = serde_json::Map::new();
    for name in &detail.clusters {
        let cluster = meta.clusters.get(name);
        let members: Vec<serde_json::Value> = hosts
            .iter()
            .filter(|h| h.instance.cluster == name)
            .map(|h| {
                json!({
                    "ip": h.instance.ip, "port": h.instance.port, "weight": h.instance.weight,
                    "healthy": h.instance.healthy, "enabled": h.instance.enabled,
                    "ephemeral": h.instance.ephemeral, "clusterName": h.instance.cluster,
                    "serviceName": key.grouped_name(), "metadata": h.instance.metadata,
                    "instanceId": h.instance_id(&key),
                })
            })
            .collect();
        cluster_map.insert(
            name.clone(),
            json!({
                "clusterName": name,
                "healthChecker": naming_ops::health_checker(cluster.map(|c| c.health_checker.as_str())),
                "metadata": cluster.map(|c| c.metadata.clone()).unwrap_or_default(),
                "hosts": members,
            }),
        );
    }
    let selector = naming_ops::selector_json(&meta.selector);
    Ok(ok(json!({
        "namespace": key.namespace,
        "serviceName": key.name,
        "groupName": key.group,
        "clusterMap": cluster_map,
        "metadata": meta.metadata,
        "protectThreshold": meta.protect_threshold,
        "selector": selector,
        "ephemeral": detail.ephemeral,
    })))
}

async fn service_list(State(app): State<AppState>, params: Params) -> V2Result {
    let (namespace, group) = naming_params::listed_group_of(&params)?;
    let page_no: u32 = params.parse_or("pageNo", 1)?;
    let page_size: u32 = params.parse_or("pageSize", 20)?;
    let names: Vec<String> = app
        .naming
        .list_services(&namespace, Some(group))
        .into_iter()
        .map(|k| k.name)
        .collect();
    let page = nacos_core::PageRequest::new(page_no, page_size).slice(names);
    Ok(ok(
        json!({ "count": page.total_count, "services": page.items }),
    ))
}

/// Raw `{clientBeatInterval, code, lightBeatEnabled}`, as Nacos's v2 beat answers.
async fn beat(State(app): State<AppState>, params: Params) -> Result<Response, V2Error> {
    let key = naming_params::grouped_service_key(&params)?;
    Ok(Json(naming_ops::beat(&app, key, &params).await?).into_response())
}

async fn metadata_batch_put(State(app): State<AppState>, params: Params) -> V2Result {
    metadata_batch(&app, &params, false).await
}

async fn metadata_batch_delete(State(app): State<AppState>, params: Params) -> V2Result {
    metadata_batch(&app, &params, true).await
}

async fn metadata_batch(app: &AppState, params: &Params, remove: bool) -> V2Result {
    let key = service_key(params)?;
    let updated = naming_ops::batch_metadata(app, &key, params, remove).await?;
    Ok(ok(json!({ "updated": updated })))
}

/// Raw `{"ips":[…]}`, as Nacos's v2 statuses answers.
async fn instance_statuses(
    State(app): State<AppState>,
    params: Params,
) -> Result<Response, V2Error> {
    let key = naming_params::path_statuses_key(&params)?;
    Ok(Json(naming_ops::health_statuses(&app, &key)).into_response())
}

async fn set_health(State(app): State<AppState>, params: Params) -> V2Result {
    naming_ops::set_persistent_health(&app, service_key(&params)?, &params).await?;
    Ok(ok("ok"))
}

/// One page of a service's instances, optionally only healthy / enabled ones (`healthyOnly`,
/// `enabledOnly` keep instances whose flag equals the value given). `instances` is left out
/// when the page is empty, as Nacos does.
async fn catalog_instances(State(app): State<AppState>, params: Params) -> V2Result {
    let key = naming_params::grouped_service_key(&params)?;
    let healthy = params.bool("healthyOnly")?;
    let enabled = params.bool("enabledOnly")?;
    let (page_no, page_size) = naming_params::required_page(&params)?;
    app.naming
        .service_detail(&key)
        .map_err(|e| service_error(e.into()))?;
    let hosts: Vec<_> = naming_ops::hosts_by_address(&app, &key)
        .into_iter()
        .filter(|h| healthy.is_none_or(|want| h.instance.healthy == want))
        .filter(|h| enabled.is_none_or(|want| h.instance.enabled == want))
        .collect();
    let count = hosts.len();
    let page = naming_params::page_of(hosts, page_no, page_size);
    let mut data = serde_json::Map::new();
    if !page.is_empty() {
        data.insert(
            "instances".into(),
            json!(naming_ops::instances_json(&page, &key)),
        );
    }
    data.insert("count".into(), json!(count));
    Ok(ok(data))
}

async fn switches(State(app): State<AppState>) -> V2Result {
    Ok(ok(naming_ops::switches(&app)))
}

async fn update_switch(State(app): State<AppState>, params: Params) -> V2Result {
    naming_ops::update_switch(&app, &params)?;
    Ok(ok("ok"))
}

/// As v1's, without `responsibleInstanceCount` and the health-check counts (Nacos's v2 view has
/// no such fields).
async fn metrics(State(app): State<AppState>, params: Params) -> V2Result {
    let mut metrics = naming_ops::metrics(&app, &params).await?;
    metrics.remove("responsibleInstanceCount");
    for field in naming_ops::HEALTH_CHECK_COUNTS {
        metrics.remove(field);
    }
    Ok(ok(metrics))
}
