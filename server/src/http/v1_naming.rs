//! `/v1/ns`: the naming OpenAPI of Nacos 1.x clients, over [`crate::naming::NamingService`].
//!
//! Parameters come from the query and the form body merged. `serviceName` goes through Nacos's
//! grouping filter: `group@@name` names its group, otherwise `groupName` (or `DEFAULT_GROUP`)
//! applies. The namespace defaults to `public` (blank too). Answers are Nacos's raw v1 shapes:
//! `ok` text or bare JSON; errors are a status with a plain-text message.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use nacos_core::validate;
use nacos_core::{
    Action, DEFAULT_CLUSTER, DEFAULT_GROUP, Instance, PUBLIC_NAMESPACE, Resource, ServiceKey,
    ServiceMeta,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::secured::{Guard, M, OPEN, Routes};
use super::{ApiError, ApiResult, Params, text};
use crate::AppState;
use crate::naming::forward::{self, ClientOp};
use crate::naming::service_info::InstanceWire;
use crate::naming::{
    ClientId, Host, InstancePatch, NamingError, Selection, ServiceUpdate, WireStyle, push_capable,
};

/// Reads and writes of the service a v1 request names (`serviceName` through the grouping
/// filter, `groupName`, `namespaceId`).
pub const SERVICE_R: Guard = Guard::Naming(Action::Read, grouped_service);
pub const SERVICE_W: Guard = Guard::Naming(Action::Write, grouped_service);
/// Reads over every service of the namespace `namespaceId` names.
pub const NAMESPACE_SERVICES_R: Guard = Guard::Naming(Action::Read, whole_namespace);
/// Reads of every service of the group `/service/list` lists.
pub const LISTED_GROUP_R: Guard = Guard::Naming(Action::Read, listed_group);

pub fn routes() -> Routes {
    let rw = &[
        (M::Get, SERVICE_R),
        (M::Post, SERVICE_W),
        (M::Delete, SERVICE_W),
        (M::Put, SERVICE_W),
        (M::Patch, SERVICE_W),
    ];
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
            &[(M::Get, Guard::Naming(Action::Read, keyed_service))],
        )
        .route(
            "/v1/ns/service/names",
            get(service_names),
            &[(M::Get, Guard::Naming(Action::Read, named_namespaces))],
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
        .route("/v1/ns/health", put(set_health), &[(M::Put, SERVICE_W)])
        .route(
            "/v1/ns/health/instance",
            put(set_health),
            &[(M::Put, SERVICE_W)],
        )
}

impl From<NamingError> for ApiError {
    fn from(e: NamingError) -> Self {
        match e {
            NamingError::Param(p) => p.into(),
            NamingError::Invalid(m) => ApiError::bad(m),
            NamingError::NotFound(m) => ApiError::NotFound(m),
            NamingError::Repo(r) => r.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parameter helpers (shared with the v2 edge)

/// `namespaceId`: blank means `public`.
pub fn naming_namespace(params: &Params) -> ApiResult<String> {
    let ns = params.get("namespaceId").unwrap_or(PUBLIC_NAMESPACE);
    validate::namespace_id("namespaceId", ns)?;
    Ok(ns.to_string())
}

/// The v1 service key: namespace plus `serviceName` through the grouping filter.
pub fn grouped_service_key(params: &Params) -> ApiResult<ServiceKey> {
    let namespace = naming_namespace(params)?;
    let raw = params.required("serviceName")?;
    let (group, name) = match raw.split_once("@@") {
        Some((group, name)) => {
            if group.trim().is_empty() {
                return Err(ApiError::param(
                    "serviceName",
                    "Param 'serviceName' is illegal, groupName can't be empty",
                ));
            }
            if name.trim().is_empty() {
                return Err(ApiError::param(
                    "serviceName",
                    "Param 'serviceName' is illegal, it should be format as 'groupName@@serviceName'",
                ));
            }
            (group, name)
        }
        None => (params.get("groupName").unwrap_or(DEFAULT_GROUP), raw),
    };
    validate::group_name(group)?;
    validate::service_name(name)?;
    Ok(ServiceKey::new(namespace, group, name))
}

/// Guard: the service of [`grouped_service_key`].
fn grouped_service(params: &Params) -> ApiResult<Vec<Resource>> {
    Ok(vec![Resource::of_service(&grouped_service_key(params)?)])
}

/// Guard: every service of the namespace.
fn whole_namespace(params: &Params) -> ApiResult<Vec<Resource>> {
    Ok(vec![Resource::naming(&naming_namespace(params)?, "", "")])
}

/// Guard of `/service/list`: every service of the listed group.
fn listed_group(params: &Params) -> ApiResult<Vec<Resource>> {
    let (namespace, group) = listed_group_of(params)?;
    Ok(vec![Resource::naming(&namespace, group, "")])
}

/// Guard of `/instance/statuses`: the service of [`statuses_key`].
fn keyed_service(params: &Params) -> ApiResult<Vec<Resource>> {
    Ok(vec![Resource::of_service(&statuses_key(params)?)])
}

/// Guard of `/service/names`: one namespace, or every namespace (`*`) when none is named.
fn named_namespaces(params: &Params) -> ApiResult<Vec<Resource>> {
    let namespace = names_namespace(params)?;
    Ok(vec![Resource::naming(
        namespace.as_deref().unwrap_or("*"),
        "",
        "",
    )])
}

/// Metadata as Nacos accepts it: a JSON object (scalar values become strings) or
/// `k1=v1,k2=v2`. Blank is empty. Anything else is a 400 naming `metadata`.
pub fn parse_metadata(raw: &str) -> ApiResult<BTreeMap<String, String>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(BTreeMap::new());
    }
    if raw.chars().count() > 1024 {
        return Err(ApiError::param(
            "metadata",
            "invalid metadata, length exceeds 1024",
        ));
    }
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(raw) {
        return json_metadata(map).ok_or_else(|| {
            ApiError::param("metadata", format!("metadata format incorrect:{raw}"))
        });
    }
    let mut out = BTreeMap::new();
    for pair in raw.split(',') {
        let kv: Vec<&str> = pair.split('=').collect();
        match kv.as_slice() {
            [k, v] if !k.trim().is_empty() => {
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => {
                return Err(ApiError::param(
                    "metadata",
                    format!("metadata format incorrect:{raw}"),
                ));
            }
        }
    }
    Ok(out)
}

/// A JSON object as string metadata; `None` when a value is an object or an array.
fn json_metadata(map: serde_json::Map<String, Value>) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let v = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            Value::Array(_) | Value::Object(_) => return None,
        };
        out.insert(k, v);
    }
    Some(out)
}

fn required_port(params: &Params) -> ApiResult<u16> {
    params
        .parse::<u16>("port")?
        .ok_or(ApiError::missing("port"))
}

fn required_ip(params: &Params) -> ApiResult<String> {
    let ip = params.required("ip")?;
    validate::ip(ip)?;
    Ok(ip.to_string())
}

/// `clusterName` (alias `cluster`), default `DEFAULT`.
fn cluster_param(params: &Params) -> ApiResult<String> {
    let cluster = params
        .get_any(&["clusterName", "cluster"])
        .unwrap_or(DEFAULT_CLUSTER);
    validate::cluster_name("clusterName", cluster)?;
    Ok(cluster.to_string())
}

/// The instance of a register or update request.
fn instance_from_params(params: &Params) -> ApiResult<Instance> {
    let mut instance = Instance::new(required_ip(params)?, required_port(params)?);
    instance.cluster = cluster_param(params)?;
    instance.weight = params.parse_or("weight", 1.0f64)?;
    validate::weight(instance.weight)?;
    instance.healthy = params.bool("healthy")?.unwrap_or(true);
    instance.enabled = match params.bool("enabled")? {
        Some(e) => e,
        None => params.bool("enable")?.unwrap_or(true),
    };
    instance.ephemeral = params.bool("ephemeral")?.unwrap_or(true);
    instance.metadata = parse_metadata(params.get("metadata").unwrap_or(""))?;
    Ok(instance)
}

fn owner_of(instance: &Instance) -> ClientId {
    ClientId::ip_port(&instance.ip, instance.port, instance.ephemeral)
}

// ---------------------------------------------------------------------------------------------
// Instances

async fn register(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let key = grouped_service_key(&params)?;
    register_instance(&app, key, &params).await?;
    Ok(text("ok"))
}

/// Shared with the v2 edge, which builds the service key its own way.
pub async fn register_instance(app: &AppState, key: ServiceKey, params: &Params) -> ApiResult<()> {
    let instance = instance_from_params(params)?;
    let owner = owner_of(&instance);
    if instance.ephemeral {
        // In a cluster, the node that owns this client takes it (it may be another node).
        let op = ClientOp::Register {
            service: key,
            instance,
        };
        forward::run(app, &owner, op).await?;
    } else {
        app.naming.register_instance(&key, instance, &owner).await?;
    }
    Ok(())
}

async fn deregister(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let key = grouped_service_key(&params)?;
    deregister_instance(&app, key, &params).await?;
    Ok(text("ok"))
}

/// Shared with the v2 edge, which builds the service key its own way.
pub async fn deregister_instance(
    app: &AppState,
    key: ServiceKey,
    params: &Params,
) -> ApiResult<()> {
    let mut instance = Instance::new(required_ip(params)?, required_port(params)?);
    instance.cluster = cluster_param(params)?;
    instance.ephemeral = params.bool("ephemeral")?.unwrap_or(true);
    let owner = owner_of(&instance);
    if instance.ephemeral {
        let op = ClientOp::Deregister {
            service: key,
            instance,
        };
        forward::run(app, &owner, op).await?;
    } else {
        app.naming
            .deregister_instance(&key, &instance, &owner)
            .await?;
    }
    Ok(())
}

async fn update(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let key = grouped_service_key(&params)?;
    update_instance(&app, key, &params).await?;
    Ok(text("ok"))
}

/// Shared with the v2 edge, which builds the service key its own way.
pub async fn update_instance(app: &AppState, key: ServiceKey, params: &Params) -> ApiResult<()> {
    let instance = instance_from_params(params)?;
    app.naming.update_instance(&key, instance).await?;
    Ok(())
}

async fn patch(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let key = grouped_service_key(&params)?;
    patch_instance(&app, key, &params).await?;
    Ok(text("ok"))
}

/// Shared with the v2 edge, which builds the service key its own way.
pub async fn patch_instance(app: &AppState, key: ServiceKey, params: &Params) -> ApiResult<()> {
    let ip = required_ip(params)?;
    let port = required_port(params)?;
    let cluster = cluster_param(params)?;
    let weight = params.parse::<f64>("weight")?;
    if let Some(w) = weight {
        validate::weight(w)?;
    }
    let patch = InstancePatch {
        metadata: match params.get("metadata") {
            Some(raw) => Some(parse_metadata(raw)?),
            None => None,
        },
        weight,
        healthy: params.bool("healthy")?,
        enabled: params.bool("enabled")?,
    };
    app.naming
        .patch_instance(&key, &ip, port, &cluster, patch)
        .await?;
    Ok(())
}

/// The instance addressed by `ip`, `port` and `clusterName`. Shared with v2.
pub fn find_instance(app: &AppState, key: &ServiceKey, params: &Params) -> ApiResult<Arc<Host>> {
    let ip = required_ip(params)?;
    let port = required_port(params)?;
    let cluster = cluster_param(params)?;
    Ok(app.naming.get_instance(key, &ip, port, &cluster)?)
}

async fn instance_detail(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let key = grouped_service_key(&params)?;
    let host = find_instance(&app, &key, &params)?;
    let inst = &host.instance;
    Ok(Json(json!({
        "service": key.grouped_name(),
        "ip": inst.ip,
        "port": inst.port,
        "clusterName": inst.cluster,
        "weight": inst.weight,
        "healthy": inst.healthy,
        "instanceId": host.instance_id,
        "metadata": inst.metadata,
    }))
    .into_response())
}

async fn list(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let key = grouped_service_key(&params)?;
    let body = instance_list_body(&app, &key, &params)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The ServiceInfo JSON of `/instance/list` (subscribing a UDP client on the way). Shared with v2.
pub fn instance_list_body(app: &AppState, key: &ServiceKey, params: &Params) -> ApiResult<Vec<u8>> {
    let clusters = params.get("clusters").unwrap_or("");
    let healthy_only = params.bool("healthyOnly")?.unwrap_or(false);
    let udp_port = params.parse_or::<u16>("udpPort", 0)?;
    if udp_port > 0 {
        let agent = params
            .header("User-Agent")
            .or_else(|| params.header("Client-Version"))
            .unwrap_or("");
        if push_capable(agent) {
            let ip = params.get("clientIP").unwrap_or(params.client_ip());
            match ip.parse::<IpAddr>() {
                Ok(ip) => app
                    .naming
                    .subscribe_udp(key, SocketAddr::new(ip, udp_port), clusters),
                Err(_) => tracing::debug!(ip, "not subscribing a UDP client without an IP"),
            }
        }
    }
    Ok(app.naming.select_json(
        key,
        Selection {
            clusters,
            healthy_only,
        },
        WireStyle::Http,
    ))
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

async fn beat(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let key = grouped_service_key(&params)?;
    let beat_json = match params.get("beat") {
        Some(raw) => Some(
            serde_json::from_str::<BeatJson>(raw)
                .map_err(|e| ApiError::param("beat", format!("invalid beat JSON: {e}")))?,
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
                Some(p) => u16::try_from(p)
                    .map_err(|_| ApiError::param("beat", format!("invalid port in beat: {p}")))?,
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
                    ApiError::param("beat", "invalid beat JSON: metadata values must be strings")
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
    let outcome = match forward::run(&app, &owner, op).await? {
        Some(outcome) => outcome,
        None => {
            return Err(ApiError::Internal(
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

async fn set_health(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let healthy = match params.bool("healthy")? {
        Some(h) => h,
        None => params
            .bool("valid")?
            .ok_or_else(|| ApiError::param("healthy", "Param 'healthy' is required."))?,
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

/// `selector`: JSON `{"type":"none"|"label",…}`, possibly URL-encoded once more. Blank is none.
pub fn parse_selector(params: &Params) -> ApiResult<String> {
    let Some(raw) = params.get("selector") else {
        return Ok(r#"{"type":"none"}"#.to_string());
    };
    let parsed = serde_json::from_str::<Value>(raw).ok().or_else(|| {
        let decoded = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()?;
        serde_json::from_str::<Value>(&decoded).ok()
    });
    let bad = || ApiError::param("selector", format!("invalid selector: {raw}"));
    let value = parsed.ok_or_else(bad)?;
    match value.get("type").and_then(Value::as_str) {
        Some("none") | Some("label") => Ok(value.to_string()),
        _ => Err(ApiError::param(
            "selector",
            format!("selector type is illegal: {raw}"),
        )),
    }
}

pub fn protect_threshold(params: &Params) -> ApiResult<Option<f32>> {
    let value = params.parse::<f32>("protectThreshold")?;
    if value.is_some_and(|v| !v.is_finite()) {
        return Err(ApiError::param(
            "protectThreshold",
            "protectThreshold must be a number",
        ));
    }
    Ok(value)
}

async fn create_service(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let key = grouped_service_key(&params)?;
    create_service_with(&app, key, &params).await?;
    Ok(text("ok"))
}

/// Shared with the v2 edge, which builds the service key its own way.
pub async fn create_service_with(
    app: &AppState,
    key: ServiceKey,
    params: &Params,
) -> ApiResult<()> {
    let threshold = protect_threshold(params)?.unwrap_or(0.0);
    let metadata = parse_metadata(params.get("metadata").unwrap_or(""))?;
    let selector = parse_selector(params)?;
    // Quirk kept from Nacos 2.x: a service created here is persistent, so ephemeral
    // registrations into it fail with 400 ("... is persistent service, can't register
    // ephemeral instance.") until it is deleted.
    // v2 takes an `ephemeral` flag (default false); v1 never sends one.
    let ephemeral = params.bool("ephemeral")?.unwrap_or(false);
    let mut meta = ServiceMeta::new(key, ephemeral);
    meta.protect_threshold = threshold;
    meta.metadata = metadata;
    meta.selector = selector;
    app.naming.create_service(meta).await?;
    Ok(())
}

async fn update_service(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let key = grouped_service_key(&params)?;
    update_service_with(&app, key, &params).await?;
    Ok(text("ok"))
}

/// Shared with the v2 edge, which builds the service key its own way.
pub async fn update_service_with(
    app: &AppState,
    key: ServiceKey,
    params: &Params,
) -> ApiResult<()> {
    let threshold = protect_threshold(params)?.ok_or(ApiError::missing("protectThreshold"))?;
    let update = ServiceUpdate {
        protect_threshold: threshold,
        metadata: parse_metadata(params.get("metadata").unwrap_or(""))?,
        selector: parse_selector(params)?,
    };
    app.naming.update_service(&key, update).await?;
    Ok(())
}

async fn delete_service(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let key = grouped_service_key(&params)?;
    app.naming.delete_service(&key).await?;
    Ok(text("ok"))
}

/// Cluster health checker JSON: stored JSON, a stored type name, or Nacos's default TCP.
pub fn health_checker(stored: Option<&str>) -> Value {
    match stored.map(str::trim).filter(|s| !s.is_empty()) {
        None => json!({"type": "TCP"}),
        Some(s) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            _ => json!({ "type": s }),
        },
    }
}

async fn service_detail(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
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

/// The namespace and group `/service/list` lists (`groupName` defaults to `DEFAULT_GROUP`).
pub(super) fn listed_group_of(params: &Params) -> ApiResult<(String, &str)> {
    let namespace = naming_namespace(params)?;
    let group = params.get("groupName").unwrap_or(DEFAULT_GROUP);
    validate::group_name(group)?;
    Ok((namespace, group))
}

async fn service_list(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let namespace = naming_namespace(&params)?;
    let page_no = params
        .parse::<u32>("pageNo")?
        .ok_or(ApiError::missing("pageNo"))?;
    let page_size = params
        .parse::<u32>("pageSize")?
        .ok_or(ApiError::missing("pageSize"))?;
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

async fn metadata_batch_put(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    metadata_batch(&app, &params, false).await
}

async fn metadata_batch_delete(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    metadata_batch(&app, &params, true).await
}

async fn metadata_batch(app: &AppState, params: &Params, remove: bool) -> ApiResult<Response> {
    let key = grouped_service_key(params)?;
    let ephemeral = params.get("consistencyType") != Some("persist");
    let targets = match params.get("instances").map(str::trim) {
        None | Some("") => Vec::new(),
        Some(raw) => serde_json::from_str::<Vec<BatchTarget>>(raw)
            .map_err(|e| ApiError::param("instances", format!("invalid instances JSON: {e}")))?
            .into_iter()
            .map(|t| {
                let cluster = t
                    .cluster_name
                    .unwrap_or_else(|| DEFAULT_CLUSTER.to_string());
                validate::ip(&t.ip)?;
                validate::cluster_name("instances", &cluster)?;
                Ok((t.ip, t.port, cluster))
            })
            .collect::<ApiResult<Vec<_>>>()?,
    };
    let metadata = parse_metadata(params.required("metadata")?)?;
    let updated = app
        .naming
        .batch_metadata(&key, ephemeral, &targets, &metadata, remove)
        .await?;
    Ok(Json(json!({ "updated": updated })).into_response())
}

/// The service `/instance/statuses` names in `key` = `[namespace##]group@@service` (no `@@`:
/// `DEFAULT_GROUP`); the other naming parameters are not read.
fn statuses_key(params: &Params) -> ApiResult<ServiceKey> {
    let raw = params.required("key")?;
    let (namespace, grouped) = match raw.split_once("##") {
        Some((ns, rest)) if !ns.trim().is_empty() => (ns, rest),
        Some((_, rest)) => (PUBLIC_NAMESPACE, rest),
        None => (PUBLIC_NAMESPACE, raw),
    };
    let (group, name) = grouped.split_once("@@").unwrap_or((DEFAULT_GROUP, grouped));
    if name.trim().is_empty() || group.trim().is_empty() {
        return Err(ApiError::param(
            "key",
            "Param 'key' is illegal, it should be format as '[namespace##]groupName@@serviceName'",
        ));
    }
    validate::namespace_id("key", namespace)?;
    Ok(ServiceKey::new(namespace, group, name))
}

async fn instance_statuses(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
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
async fn service_names(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
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

/// The namespace `/service/names` lists, `None` for all of them.
fn names_namespace(params: &Params) -> ApiResult<Option<String>> {
    match params.get("namespaceId") {
        None => Ok(None),
        Some(_) => Ok(Some(naming_namespace(params)?)),
    }
}

fn page_of<T>(items: Vec<T>, page_no: usize, page_size: usize) -> Vec<T> {
    let start = page_no.max(1).saturating_sub(1).saturating_mul(page_size);
    items.into_iter().skip(start).take(page_size).collect()
}

async fn service_subscribers(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
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

fn required_page(params: &Params) -> ApiResult<(usize, usize)> {
    let page_no = params
        .parse::<usize>("pageNo")?
        .ok_or(ApiError::missing("pageNo"))?;
    let page_size = params
        .parse::<usize>("pageSize")?
        .ok_or(ApiError::missing("pageSize"))?;
    Ok((page_no, page_size))
}

/// `serviceNameParam` and `groupNameParam` keep services whose name / group contain them.
async fn catalog_services(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let namespace = naming_namespace(&params)?;
    let (page_no, page_size) = required_page(&params)?;
    let name_filter = params.get("serviceNameParam").unwrap_or("");
    let group_filter = params.get("groupNameParam").unwrap_or("");
    // Accepted for compatibility; the summary shape is answered either way.
    let _with_instances = params.bool("withInstances")?.unwrap_or(false);
    let keys: Vec<ServiceKey> = app
        .naming
        .list_services(&namespace, None)
        .into_iter()
        .filter(|k| k.name.contains(name_filter) && k.group.contains(group_filter))
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

async fn catalog_instances(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let key = grouped_service_key(&params)?;
    let cluster = params.required("clusterName")?;
    validate::cluster_name("clusterName", cluster)?;
    let (page_no, page_size) = required_page(&params)?;
    // As Nacos: an unknown service or cluster is NOT_FOUND.
    let detail = app.naming.service_detail(&key).map_err(|_| {
        ApiError::NotFound(format!("service {}@@{} is not found!", key.group, key.name))
    })?;
    if !detail.clusters.iter().any(|c| c == cluster) {
        return Err(ApiError::NotFound(format!(
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
    let list: Vec<Value> = page_of(hosts, page_no, page_size)
        .iter()
        .map(|h| json!(InstanceWire::new(h, h.instance.healthy)))
        .collect();
    Ok(Json(json!({ "list": list, "count": count })).into_response())
}

// ---------------------------------------------------------------------------------------------
// Operator and health endpoints

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

async fn metrics(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let only_status = params.bool("onlyStatus")?.unwrap_or(true);
    if only_status {
        return Ok(Json(json!({ "status": "UP" })).into_response());
    }
    let m = app.naming.metrics();
    let (cpu, load, mem) = system_usage();
    Ok(Json(json!({
        "status": "UP",
        "serviceCount": m.service_count,
        "instanceCount": m.instance_count,
        "subscribeCount": m.subscribe_count,
        "responsibleInstanceCount": m.instance_count,
        "clientCount": m.client_count,
        "connectionBasedClientCount": m.connection_based_client_count,
        "ephemeralIpPortClientCount": m.ephemeral_ip_port_client_count,
        "persistentIpPortClientCount": m.persistent_ip_port_client_count,
        "responsibleClientCount": m.client_count,
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
        "enableAuthentication": false,
        "defaultInstanceEphemeral": true,
        "healthCheckWhiteList": [],
        "checksum": null,
    }))
    .into_response()
}

async fn push_state(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_forms() {
        let m = parse_metadata(r#"{"a":"1","b":2,"c":true}"#).expect("json");
        assert_eq!(m.get("b").map(String::as_str), Some("2"));
        assert_eq!(m.get("c").map(String::as_str), Some("true"));
        let kv = parse_metadata("k1=v1,k2=v2").expect("kv");
        assert_eq!(kv.len(), 2);
        assert!(parse_metadata(r#"{"a":"#).is_err());
        assert!(parse_metadata(r#"{"a":{"b":1}}"#).is_err());
        assert!(parse_metadata("k1").is_err());
        assert!(parse_metadata("").expect("blank").is_empty());
        let err = parse_metadata("{bad").expect_err("bad");
        assert!(matches!(
            err,
            ApiError::BadRequest {
                param: Some("metadata"),
                ..
            }
        ));
    }

    #[test]
    fn grouping_filter() {
        let key = grouped_service_key(&Params::from_query("serviceName=g1@@s1")).expect("key");
        assert_eq!(key, ServiceKey::new("public", "g1", "s1"));
        let key = grouped_service_key(&Params::from_query(
            "serviceName=s1&groupName=g2&namespaceId=ns",
        ))
        .expect("key");
        assert_eq!(key, ServiceKey::new("ns", "g2", "s1"));
        let key =
            grouped_service_key(&Params::from_query("serviceName=s1&namespaceId=")).expect("key");
        assert_eq!(key, ServiceKey::new("public", "DEFAULT_GROUP", "s1"));
        assert!(grouped_service_key(&Params::from_query("serviceName=@@s")).is_err());
        assert!(grouped_service_key(&Params::from_query("serviceName=g@@")).is_err());
        assert!(grouped_service_key(&Params::from_query("serviceName=a@@b@@c")).is_err());
        assert!(grouped_service_key(&Params::from_query("groupName=g")).is_err());
    }
}
