//! The `naming` module over gRPC: instances owned by the connection (removed, with a push to
//! subscribers, when it goes), persistent instances, service queries, subscriptions with
//! `NotifySubscriberRequest` pushes on every change of a subscribed service from any edge
//! (gRPC, v1 HTTP, expiry), and the service list. The rules live in [`NamingService`].

use std::collections::{BTreeMap, HashMap};

use nacos_core::validate::{self, ParamError};
use nacos_core::{
    DEFAULT_CLUSTER, DEFAULT_GROUP, Instance, PUBLIC_NAMESPACE, Resource, ServiceKey,
};
use serde::Deserialize;

use super::dispatch::{Ctx, Handlers, NAMING_R, NAMING_W, Secured};
use super::error::{GrpcError, GrpcResult, code};
use crate::foundation::protocol::message::{grpc_request, grpc_response};
use crate::services::clients::naming_subscribers::service_info;
use crate::services::naming::{ClientId, NamingError, Selection};

grpc_response!(InstanceResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    r#type: Option<String>,
});
grpc_response!(BatchInstanceResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    r#type: Option<String>,
});
grpc_response!(QueryServiceResponse {
    service_info: serde_json::Value,
});
grpc_response!(SubscribeServiceResponse {
    service_info: serde_json::Value,
});
grpc_response!(ServiceListResponse {
    count: usize,
    service_names: Vec<String>,
});

/// An instance as clients send it; derived fields (`instanceHeartBeatInterval`, ...) ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InstanceJson {
    pub instance_id: Option<String>,
    pub ip: Option<String>,
    pub port: Option<i64>,
    pub weight: Option<f64>,
    pub healthy: Option<bool>,
    pub enabled: Option<bool>,
    pub ephemeral: Option<bool>,
    pub cluster_name: Option<String>,
    pub service_name: Option<String>,
    pub metadata: Option<HashMap<String, Option<String>>>,
}

grpc_request!(InstanceRequest => InstanceResponse {
    namespace: Option<String>,
    service_name: Option<String>,
    group_name: Option<String>,
    r#type: Option<String>,
    instance: Option<InstanceJson>,
});
grpc_request!(PersistentInstanceRequest => InstanceResponse {
    namespace: Option<String>,
    service_name: Option<String>,
    group_name: Option<String>,
    r#type: Option<String>,
    instance: Option<InstanceJson>,
});
grpc_request!(BatchInstanceRequest => BatchInstanceResponse {
    namespace: Option<String>,
    service_name: Option<String>,
    group_name: Option<String>,
    r#type: Option<String>,
    instances: Option<Vec<InstanceJson>>,
});
grpc_request!(ServiceQueryRequest => QueryServiceResponse {
    namespace: Option<String>,
    service_name: Option<String>,
    group_name: Option<String>,
    cluster: Option<String>,
    healthy_only: Option<bool>,
    /// nacos-sdk-python's spelling.
    health_only: Option<bool>,
    udp_port: Option<i64>,
});
grpc_request!(SubscribeServiceRequest => SubscribeServiceResponse {
    namespace: Option<String>,
    service_name: Option<String>,
    group_name: Option<String>,
    subscribe: Option<bool>,
    clusters: Option<String>,
});
grpc_request!(ServiceListRequest => ServiceListResponse {
    namespace: Option<String>,
    group_name: Option<String>,
    page_no: Option<i64>,
    page_size: Option<i64>,
    selector: Option<String>,
});

pub fn register(handlers: &mut Handlers) {
    handlers
        .add(NAMING_W, instance)
        .add(NAMING_W, persistent_instance)
        .add(NAMING_W, batch_instance)
        .add(NAMING_R, query_service)
        .add(NAMING_R, subscribe_service)
        .add(NAMING_R, service_list);
}

impl From<NamingError> for GrpcError {
    fn from(e: NamingError) -> Self {
        match e {
            NamingError::Param(p) => p.into(),
            // Nacos's handlers throw NacosException(INVALID_PARAM / NOT_FOUND) for these.
            NamingError::Invalid(m) => GrpcError::thrown(code::INVALID_PARAM, m),
            NamingError::NotFound(m) => GrpcError::thrown(code::NOT_FOUND, m),
            NamingError::Repo(r) => r.into(),
        }
    }
}

fn non_blank(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|s| !s.is_empty())
}

/// The naming namespace: blank is `public` (clients send either).
fn namespace(raw: Option<&str>) -> Result<String, ParamError> {
    let ns = non_blank(raw).unwrap_or(PUBLIC_NAMESPACE);
    validate::namespace_id("namespace", ns)?;
    Ok(ns.to_string())
}

fn service_key(
    ns: Option<&str>,
    group: Option<&str>,
    name: Option<&str>,
) -> Result<ServiceKey, ParamError> {
    let namespace = namespace(ns)?;
    let group = non_blank(group).unwrap_or(DEFAULT_GROUP);
    validate::group_name(group)?;
    let name = name.unwrap_or("").trim();
    validate::service_name(name)?;
    Ok(ServiceKey::new(namespace, group, name))
}

macro_rules! one_service {
    ($($request:ty),*) => {$(
        impl $request {
            /// The service the handler touches and the guard authorizes.
            fn key(&self) -> Result<ServiceKey, ParamError> {
                service_key(
                    self.namespace.as_deref(),
                    self.group_name.as_deref(),
                    self.service_name.as_deref(),
                )
            }
        }

        impl Secured for $request {
            fn resources(&self) -> GrpcResult<Vec<Resource>> {
                Ok(vec![Resource::of_service(&self.key()?)])
            }
        }
    )*};
}

one_service!(
    InstanceRequest,
    PersistentInstanceRequest,
    BatchInstanceRequest,
    ServiceQueryRequest,
    SubscribeServiceRequest
);

impl ServiceListRequest {
    /// The namespace and group listed (`DEFAULT_GROUP` when blank).
    fn listed(&self) -> Result<(String, &str), ParamError> {
        let namespace = namespace(self.namespace.as_deref())?;
        let group = non_blank(self.group_name.as_deref()).unwrap_or(DEFAULT_GROUP);
        validate::group_name(group)?;
        Ok((namespace, group))
    }
}

impl Secured for ServiceListRequest {
    /// Every service of the listed group.
    fn resources(&self) -> GrpcResult<Vec<Resource>> {
        let (namespace, group) = self.listed()?;
        Ok(vec![Resource::naming(&namespace, group, "")])
    }
}

fn to_instance(json: InstanceJson, ephemeral: bool) -> Result<Instance, ParamError> {
    let port = json.port.unwrap_or(0);
    let port = u16::try_from(port)
        .map_err(|_| ParamError::new("port", format!("invalid port {port}: 0..65535")))?;
    let mut instance = Instance::new(json.ip.unwrap_or_default().trim(), port);
    instance.cluster = non_blank(json.cluster_name.as_deref())
        .unwrap_or(DEFAULT_CLUSTER)
        .into();
    instance.weight = json.weight.unwrap_or(1.0);
    instance.healthy = json.healthy.unwrap_or(true);
    instance.enabled = json.enabled.unwrap_or(true);
    instance.ephemeral = ephemeral;
    instance.metadata = json
        .metadata
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect::<BTreeMap<_, _>>();
    instance.instance_id = non_blank(json.instance_id.as_deref()).map(str::to_string);
    Ok(instance)
}

fn owner(ctx: &Ctx) -> ClientId {
    ClientId::connection(&ctx.conn.id)
}

/// `registerInstance` / `deregisterInstance`: always ephemeral, owned by this connection.
async fn instance(ctx: Ctx, req: InstanceRequest) -> GrpcResult<InstanceResponse> {
    let key = req.key()?;
    let r#type = req.r#type.unwrap_or_default();
    let instance = to_instance(req.instance.unwrap_or_default(), true)?;
    let naming = &ctx.app.naming;
    match r#type.as_str() {
        "registerInstance" => {
            naming
                .register_instance(&key, instance, &owner(&ctx))
                .await?
        }
        "deregisterInstance" => {
            naming
                .deregister_instance(&key, &instance, &owner(&ctx))
                .await?
        }
        other => {
            return Err(GrpcError::thrown(
                code::INVALID_PARAM,
                format!("Unsupported request type {other}"),
            ));
        }
    }
    // The connection may have gone meanwhile; its cleanup ran before this registration.
    if ctx.conn.is_closed() {
        naming.remove_client(&owner(&ctx));
    }
    Ok(InstanceResponse {
        r#type: Some(r#type),
        ..Default::default()
    })
}

/// Persistent instances through the repository (owner `ip:port#false`, as over HTTP).
async fn persistent_instance(
    ctx: Ctx,
    req: PersistentInstanceRequest,
) -> GrpcResult<InstanceResponse> {
    let key = req.key()?;
    let r#type = req.r#type.unwrap_or_default();
    let instance = to_instance(req.instance.unwrap_or_default(), false)?;
    let owner = ClientId::ip_port(&instance.ip, instance.port, false);
    let naming = &ctx.app.naming;
    match r#type.as_str() {
        "registerInstance" => naming.register_instance(&key, instance, &owner).await?,
        "deregisterInstance" => naming.deregister_instance(&key, &instance, &owner).await?,
        other => {
            return Err(GrpcError::thrown(
                code::INVALID_PARAM,
                format!("Unsupported request type {other}"),
            ));
        }
    }
    Ok(InstanceResponse {
        r#type: Some(r#type),
        ..Default::default()
    })
}

/// `batchRegisterInstance`: replaces everything this connection publishes in the service.
async fn batch_instance(ctx: Ctx, req: BatchInstanceRequest) -> GrpcResult<BatchInstanceResponse> {
    let key = req.key()?;
    let r#type = req.r#type.unwrap_or_default();
    if r#type != "batchRegisterInstance" {
        return Err(GrpcError::thrown(
            code::INVALID_PARAM,
            format!("Unsupported request type {type}", type = r#type),
        ));
    }
    let instances = req
        .instances
        .unwrap_or_default()
        .into_iter()
        .map(|i| to_instance(i, true))
        .collect::<Result<Vec<_>, _>>()?;
    ctx.app
        .naming
        .batch_register(&key, instances, &owner(&ctx))?;
    if ctx.conn.is_closed() {
        ctx.app.naming.remove_client(&owner(&ctx));
    }
    Ok(BatchInstanceResponse {
        r#type: Some(r#type),
        ..Default::default()
    })
}

async fn query_service(ctx: Ctx, req: ServiceQueryRequest) -> GrpcResult<QueryServiceResponse> {
    let key = req.key()?;
    let clusters = req.cluster.unwrap_or_default();
    let selection = Selection {
        clusters: &clusters,
        healthy_only: req.healthy_only.or(req.health_only).unwrap_or(false),
    };
    Ok(QueryServiceResponse {
        service_info: service_info(&ctx.app.naming, &key, selection),
        ..Default::default()
    })
}

/// Subscribe or unsubscribe this connection; both answer with the current data. A first
/// subscription also schedules a push to this connection alone.
async fn subscribe_service(
    ctx: Ctx,
    req: SubscribeServiceRequest,
) -> GrpcResult<SubscribeServiceResponse> {
    let key = req.key()?;
    let clusters = req.clusters.unwrap_or_default();
    let subs = &ctx.app.naming_subscribers;
    if req.subscribe.unwrap_or(true) {
        if subs.subscribe(&ctx.conn.id, key.clone(), clusters.clone()) {
            subs.push_to(&ctx.app.connections, &ctx.conn.id, &key);
        }
        if ctx.conn.is_closed() {
            subs.remove_connection(&ctx.conn.id);
        }
    } else {
        subs.unsubscribe(&ctx.conn.id, &key);
    }
    let selection = Selection {
        clusters: &clusters,
        healthy_only: false,
    };
    Ok(SubscribeServiceResponse {
        service_info: service_info(&ctx.app.naming, &key, selection),
        ..Default::default()
    })
}

/// Services of the namespace whose group is `groupName`, plain names, one page.
async fn service_list(ctx: Ctx, req: ServiceListRequest) -> GrpcResult<ServiceListResponse> {
    let (namespace, group) = req.listed()?;
    let page_no = req.page_no.unwrap_or(1).max(1);
    let page_size = req.page_size.unwrap_or(10).max(0);
    let keys = ctx.app.naming.list_services(&namespace, Some(group));
    let count = keys.len();
    let skip = usize::try_from((page_no - 1).saturating_mul(page_size)).unwrap_or(usize::MAX);
    let take = usize::try_from(page_size).unwrap_or(0);
    let service_names = keys
        .into_iter()
        .skip(skip)
        .take(take)
        .map(|k| k.name)
        .collect();
    Ok(ServiceListResponse {
        count,
        service_names,
        ..Default::default()
    })
}
