//! Naming operations shared by the v1 and v2 HTTP edges: each reads its parameters, calls the
//! naming service (through the cluster's forwarding where a write belongs to another node) and
//! returns a plain value that each edge wraps in its own envelope.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use nacos_core::validate;
use nacos_core::{DEFAULT_CLUSTER, Instance, ServiceKey, ServiceMeta};
use serde::Deserialize;
use serde_json::{Value, json};

use super::naming_params::{
    cluster_param, instance_from_params, json_metadata, owner_of, parse_metadata, parse_selector,
    protect_threshold, required_ip, required_port,
};
use super::{Params, ServiceError, ServiceResult};
use crate::app::AppState;
use crate::cluster::forward::ClientOp;
use crate::services::naming::service_info::InstanceWire;
use crate::services::naming::{
    ClientId, Host, InstancePatch, Selection, ServiceUpdate, WireStyle, push_capable,
};

/// Shared with the v2 edge, which builds the service key its own way.
pub async fn register_instance(
    app: &AppState,
    key: ServiceKey,
    params: &Params,
) -> ServiceResult<()> {
    let instance = instance_from_params(params)?;
    let owner = owner_of(&instance);
    if instance.ephemeral {
        // In a cluster, the node that owns this client takes it (it may be another node).
        let op = ClientOp::Register {
            service: key,
            instance,
        };
        app.client_write(&owner, op).await?;
    } else {
        app.naming.register_instance(&key, instance, &owner).await?;
    }
    Ok(())
}

/// Shared with the v2 edge, which builds the service key its own way.
pub async fn deregister_instance(
    app: &AppState,
    key: ServiceKey,
    params: &Params,
) -> ServiceResult<()> {
    let mut instance = Instance::new(required_ip(params)?, required_port(params)?);
    instance.cluster = cluster_param(params)?.into();
    instance.ephemeral = params.bool("ephemeral")?.unwrap_or(true);
    let owner = owner_of(&instance);
    if instance.ephemeral {
        let op = ClientOp::Deregister {
            service: key,
            instance,
        };
        app.client_write(&owner, op).await?;
    } else {
        app.naming
            .deregister_instance(&key, &instance, &owner)
            .await?;
    }
    Ok(())
}

/// Shared with the v2 edge, which builds the service key its own way.
pub async fn update_instance(
    app: &AppState,
    key: ServiceKey,
    params: &Params,
) -> ServiceResult<()> {
    let instance = instance_from_params(params)?;
    app.naming.update_instance(&key, instance).await?;
    Ok(())
}

/// Shared with the v2 edge, which builds the service key its own way.
pub async fn patch_instance(app: &AppState, key: ServiceKey, params: &Params) -> ServiceResult<()> {
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
/// One instance's detail; v1 names the service `service` (grouped), v2 `serviceName` (bare).
pub fn instance_detail_json(host: &Host, key: &ServiceKey, service_field: (&str, String)) -> Value {
    let inst = &host.instance;
    let mut detail = json!({
        "ip": inst.ip,
        "port": inst.port,
        "clusterName": inst.cluster,
        "weight": inst.weight,
        "healthy": inst.healthy,
        "instanceId": host.instance_id(key),
        "metadata": inst.metadata,
    });
    detail[service_field.0] = Value::String(service_field.1);
    detail
}

pub fn find_instance(
    app: &AppState,
    key: &ServiceKey,
    params: &Params,
) -> ServiceResult<Arc<Host>> {
    let ip = required_ip(params)?;
    let port = required_port(params)?;
    let cluster = cluster_param(params)?;
    Ok(app.naming.get_instance(key, &ip, port, &cluster)?)
}

/// The ServiceInfo JSON of `/instance/list` (subscribing a UDP client on the way). Shared with v2.
pub fn instance_list_body(
    app: &AppState,
    key: &ServiceKey,
    params: &Params,
) -> ServiceResult<Vec<u8>> {
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

/// Shared with the v2 edge, which builds the service key its own way.
pub async fn create_service_with(
    app: &AppState,
    key: ServiceKey,
    params: &Params,
) -> ServiceResult<()> {
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

/// Shared with the v2 edge, which builds the service key its own way.
pub async fn update_service_with(
    app: &AppState,
    key: ServiceKey,
    params: &Params,
) -> ServiceResult<()> {
    let threshold = protect_threshold(params)?.ok_or(ServiceError::missing("protectThreshold"))?;
    let update = ServiceUpdate {
        protect_threshold: threshold,
        metadata: parse_metadata(params.get("metadata").unwrap_or(""))?,
        selector: parse_selector(params)?,
    };
    app.naming.update_service(&key, update).await?;
    Ok(())
}

/// A service's selector JSON as stored, or `{"type":"none"}` when it is not JSON.
pub fn selector_json(stored: &str) -> Value {
    serde_json::from_str::<Value>(stored).unwrap_or_else(|_| json!({"type": "none"}))
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

// ---------------------------------------------------------------------------------------------
// Beats, health, batch metadata, statuses

/// The `beat` JSON a v1 client sends; unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct BeatJson {
    ip: Option<String>,
    port: Option<i64>,
    cluster: Option<String>,
    weight: Option<f64>,
    metadata: Option<serde_json::Map<String, Value>>,
}

/// A client beat (`PUT …/instance/beat`, v1 and v2 alike): the `beat` JSON's ip, port and
/// cluster override the parameters, and an unknown instance is registered from it. The answer
/// is Nacos's raw `{clientBeatInterval, code, lightBeatEnabled}` (code 10200, or 20404 when the
/// instance is unknown and no `beat` JSON came to register it).
pub async fn beat(app: &AppState, key: ServiceKey, params: &Params) -> ServiceResult<Value> {
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
                None => required_ip(params)?,
            };
            let port = match b.port {
                Some(p) => u16::try_from(p).map_err(|_| {
                    ServiceError::param("beat", format!("invalid port in beat: {p}"))
                })?,
                None => required_port(params)?,
            };
            (ip, port)
        }
        None => (required_ip(params)?, required_port(params)?),
    };
    validate::ip(&ip)?;
    validate::cluster_name("clusterName", &cluster)?;
    let register = match beat_json {
        Some(b) => {
            let mut instance = Instance::new(ip.clone(), port);
            instance.cluster = cluster.as_str().into();
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
    let Some(outcome) = app.client_write(&owner, op).await? else {
        return Err(ServiceError::Internal(
            "a beat produced no beat outcome".to_string(),
        ));
    };
    Ok(json!({
        "clientBeatInterval": u64::try_from(outcome.client_beat_interval.as_millis())
            .unwrap_or(u64::MAX),
        "code": outcome.code,
        "lightBeatEnabled": app.naming.switches().light_beat_enabled(),
    }))
}

/// Set the health of a persistent instance (`healthy`, v1's alias `valid`); only instances
/// without an active health check take it, as in Nacos.
pub async fn set_persistent_health(
    app: &AppState,
    key: ServiceKey,
    params: &Params,
) -> ServiceResult<()> {
    let healthy = match params.bool("healthy")? {
        Some(h) => h,
        None => params
            .bool("valid")?
            .ok_or(ServiceError::missing("healthy"))?,
    };
    let ip = required_ip(params)?;
    let port = required_port(params)?;
    let cluster = cluster_param(params)?;
    app.naming
        .set_persistent_health(&key, &ip, port, &cluster, healthy)
        .await?;
    Ok(())
}

/// One entry of the `instances` JSON of `metadata/batch`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchTarget {
    ip: String,
    port: u16,
    cluster_name: Option<String>,
}

/// Add (or, with `remove`, delete) metadata keys on the listed instances of one service, or on
/// all its instances of the `consistencyType` (`persist` or ephemeral) when none are listed.
/// Returns the instances changed, as `ip:port:…` strings.
pub async fn batch_metadata(
    app: &AppState,
    key: &ServiceKey,
    params: &Params,
    remove: bool,
) -> ServiceResult<Vec<String>> {
    let ephemeral = params.get("consistencyType") != Some("persist");
    let targets = match params.get("instances").map(str::trim) {
        None | Some("") => Vec::new(),
        // Nacos ignores an unreadable list and changes every instance; a 400 is safer.
        Some(raw) => serde_json::from_str::<Vec<BatchTarget>>(raw)
            .map_err(|e| ServiceError::param("instances", format!("invalid instances JSON: {e}")))?
            .into_iter()
            .map(|t| {
                let cluster = t
                    .cluster_name
                    .filter(|c| !c.trim().is_empty())
                    .unwrap_or_else(|| DEFAULT_CLUSTER.to_string());
                validate::ip(&t.ip)?;
                validate::cluster_name("instances", &cluster)?;
                Ok((t.ip, t.port, cluster))
            })
            .collect::<ServiceResult<Vec<_>>>()?,
    };
    let metadata = parse_metadata(params.required("metadata")?)?;
    Ok(app
        .naming
        .batch_metadata(key, ephemeral, &targets, &metadata, remove)
        .await?)
}

/// A service's instances ordered by address, the order listings page through.
pub fn hosts_by_address(app: &AppState, key: &ServiceKey) -> Vec<Arc<Host>> {
    let mut hosts = app.naming.all_hosts(key);
    hosts.sort_by(|a, b| (&a.instance.ip, a.instance.port).cmp(&(&b.instance.ip, b.instance.port)));
    hosts
}

/// `{"ips":["ip:port_healthy",…]}` of `/instance/statuses`.
pub fn health_statuses(app: &AppState, key: &ServiceKey) -> Value {
    let ips: Vec<String> = hosts_by_address(app, key)
        .iter()
        .map(|h| {
            format!(
                "{}:{}_{}",
                h.instance.ip, h.instance.port, h.instance.healthy
            )
        })
        .collect();
    json!({ "ips": ips })
}

/// Hosts as the Java client's `Instance` JSON (catalog listings).
pub fn instances_json(hosts: &[Arc<Host>], key: &ServiceKey) -> Vec<Value> {
    let grouped = key.grouped_name();
    hosts
        .iter()
        .map(|h| json!(InstanceWire::new(h, h.instance.healthy, key, &grouped)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Operator views: metrics and switches

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

/// The naming metrics (`onlyStatus`, default true: the status alone). `status` is this node's
/// readiness (`DOWN` while it cannot serve, e.g. no quorum or no writable database); the
/// responsible counts leave out copies of other nodes' clients.
/// The v1 metrics fields counting this node's health checks (TCP, HTTP, MYSQL); not in v2's.
pub const HEALTH_CHECK_COUNTS: [&str; 3] = [
    "tcpHealthCheckCount",
    "httpHealthCheckCount",
    "mysqlHealthCheckCount",
];

pub async fn metrics(
    app: &AppState,
    params: &Params,
) -> ServiceResult<serde_json::Map<String, Value>> {
    let only_status = params.bool("onlyStatus")?.unwrap_or(true);
    let status = match app.readiness_problem().await {
        None => "UP",
        Some(_) => "DOWN",
    };
    let mut out = serde_json::Map::new();
    out.insert("status".into(), json!(status));
    if only_status {
        return Ok(out);
    }
    let m = app.naming.metrics();
    let (cpu, load, mem) = system_usage();
    for (name, value) in [
        ("serviceCount", json!(m.service_count)),
        ("instanceCount", json!(m.instance_count)),
        ("subscribeCount", json!(m.subscribe_count)),
        (
            "responsibleInstanceCount",
            json!(m.responsible_instance_count),
        ),
        ("clientCount", json!(m.client_count)),
        (
            "connectionBasedClientCount",
            json!(m.connection_based_client_count),
        ),
        (
            "ephemeralIpPortClientCount",
            json!(m.ephemeral_ip_port_client_count),
        ),
        (
            "persistentIpPortClientCount",
            json!(m.persistent_ip_port_client_count),
        ),
        ("responsibleClientCount", json!(m.responsible_client_count)),
        ("cpu", json!(cpu)),
        ("load", json!(load)),
        ("mem", json!(mem)),
    ] {
        out.insert(name.into(), value);
    }
    // Ours: health checks this node ran (Nacos counts them as the `tcpHealthCheck`, … monitors).
    let checks = app.naming.health_check_counts();
    out.insert(HEALTH_CHECK_COUNTS[0].into(), json!(checks.tcp));
    out.insert(HEALTH_CHECK_COUNTS[1].into(), json!(checks.http));
    out.insert(HEALTH_CHECK_COUNTS[2].into(), json!(checks.mysql));
    Ok(out)
}

/// Nacos's SwitchDomain as this node runs with it.
pub fn switches(app: &AppState) -> Value {
    let mut domain = app.naming.switches().snapshot();
    domain.insert("enableAuthentication".into(), json!(app.auth.enabled()));
    Value::Object(domain)
}

/// `PUT …/operator/switches`: `entry` and `value` (both required). `debug` is accepted as
/// Nacos does; switches are node-local here either way.
pub fn update_switch(app: &AppState, params: &Params) -> ServiceResult<()> {
    let entry = params.required("entry")?;
    let value = params.required("value")?;
    let _debug = params.bool("debug")?.unwrap_or(false);
    app.naming.switches().update(entry, value)?;
    Ok(())
}
