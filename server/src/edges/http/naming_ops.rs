//! Naming operations shared by the v1 and v2 HTTP edges: each reads its parameters, calls the
//! naming service (through the cluster's forwarding where a write belongs to another node) and
//! returns a plain value that each edge wraps in its own envelope.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use nacos_core::validate;
use nacos_core::{Instance, ServiceKey, ServiceMeta};
use serde_json::{Value, json};

use super::naming_params::{
    cluster_param, instance_from_params, owner_of, parse_metadata, parse_selector,
    protect_threshold, required_ip, required_port,
};
use super::{Params, ServiceError, ServiceResult};
use crate::app::AppState;
use crate::cluster::forward::ClientOp;
use crate::services::naming::{
    Host, InstancePatch, Selection, ServiceUpdate, WireStyle, push_capable,
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
    instance.cluster = cluster_param(params)?;
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
