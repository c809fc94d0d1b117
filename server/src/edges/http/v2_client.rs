//! `/v2/ns/client*`: who the naming clients are and what they publish and subscribe to.
//!
//! A client is what owns instances or subscriptions (Nacos's `Client`): a gRPC connection
//! (`clientType` `connection`, its connection id) or an HTTP client `ip:port#true|false`
//! (`clientType` `ipPort`: a v1/v2 OpenAPI publisher, or a v1 UDP subscriber `ip:udpPort#true`).
//! Nothing is kept here: every answer is read from the naming registry, the gRPC subscriber
//! index, the UDP subscribers and the connection registry.
//!
//! Auth: the service-scoped lists (`/service/publisher/list`, `/service/subscriber/list`) need
//! naming read on that service. The client-scoped ones (`/list`, `?clientId=`, `/publish/list`,
//! `/subscribe/list`) need `nacos/admin` read, as in Nacos: a client spans namespaces (one
//! connection may publish in several) and the request names none, so a namespace guard would
//! check one namespace and answer about all of them.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::routing::get;
use nacos_core::ServiceKey;
use serde::Serialize;

use super::secured::{ADMIN_R, M, Routes};
use super::v2::{V2Error, V2Result, ok};
use super::v2_naming::SERVICE_R;
use super::v2_naming::service_key;
use super::{Params, ServiceError};
use crate::app::AppState;
use crate::edges::grpc::Connection;
use crate::services::naming::ClientId;

/// Nacos's connection label naming the module a connection serves.
const MODULE_LABEL: &str = "module";
const NAMING_MODULE: &str = "naming";

pub fn routes() -> Routes {
    let admin = &[(M::Get, ADMIN_R)];
    let naming = &[(M::Get, SERVICE_R)];
    Routes::new()
        .route("/v2/ns/client/list", get(client_list), admin)
        .route("/v2/ns/client", get(client_detail), admin)
        .route("/v2/ns/client/publish/list", get(published_by), admin)
        .route("/v2/ns/client/subscribe/list", get(subscribed_by), admin)
        .route(
            "/v2/ns/client/service/publisher/list",
            get(service_publishers),
            naming,
        )
        .route(
            "/v2/ns/client/service/subscriber/list",
            get(service_subscribers),
            naming,
        )
}

fn is_ip_port(id: &ClientId) -> bool {
    id.is_ephemeral_ip_port() || id.is_persistent_ip_port()
}

fn udp_client(addr: std::net::SocketAddr) -> ClientId {
    ClientId::ip_port(&addr.ip().to_string(), addr.port(), true)
}

/// Every client: publishers, gRPC connections of the naming module or with subscriptions, UDP
/// subscribers. Sorted and without duplicates.
fn all_clients(app: &AppState) -> BTreeSet<ClientId> {
    let mut clients: BTreeSet<ClientId> = app
        .naming
        .publications(None)
        .into_iter()
        .map(|p| p.owner)
        .collect();
    clients.extend(
        app.connections
            .all()
            .into_iter()
            .filter(|c| c.meta.label(MODULE_LABEL) == Some(NAMING_MODULE))
            .map(|c| ClientId::connection(&c.id)),
    );
    clients.extend(
        app.naming_subscribers
            .subscribing_connections()
            .iter()
            .map(|id| ClientId::connection(id)),
    );
    clients.extend(
        app.naming
            .udp_subscriptions()
            .into_iter()
            .map(|s| udp_client(s.addr)),
    );
    clients
}

/// The `clientId` parameter, which must name a known client (else 404, code 20004).
fn known_client(app: &AppState, params: &Params) -> Result<ClientId, V2Error> {
    let id = ClientId::of(params.required("clientId")?);
    if all_clients(app).contains(&id) {
        Ok(id)
    } else {
        Err(V2Error::with_code(
            ServiceError::NotFound(format!("clientId [ {id} ] not exist")),
            20004,
            "resource not found",
        ))
    }
}

async fn client_list(State(app): State<AppState>) -> V2Result {
    let ids: Vec<String> = all_clients(&app)
        .into_iter()
        .map(|c| c.as_str().to_string())
        .collect();
    Ok(ok(ids))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ClientDetail {
    client_id: String,
    ephemeral: bool,
    last_updated_time: i64,
    client_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    connect_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ip: Option<String>,
    /// A string, as Nacos sends it.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_port: Option<String>,
}

async fn client_detail(State(app): State<AppState>, params: Params) -> V2Result {
    let id = known_client(&app, &params)?;
    let published_ms = app
        .naming
        .publications(Some(&id))
        .iter()
        .map(|p| p.updated_ms)
        .max();
    let detail = if is_ip_port(&id) {
        let subscribed_ms = app
            .naming
            .udp_subscriptions()
            .iter()
            .filter(|s| udp_client(s.addr) == id)
            .map(|s| s.seen_ms)
            .max();
        let (ip, port) = id.http_address().unzip();
        ClientDetail {
            client_id: id.to_string(),
            ephemeral: id.is_ephemeral_ip_port(),
            last_updated_time: published_ms.max(subscribed_ms).unwrap_or(0),
            client_type: "ipPort",
            connect_type: None,
            app_name: None,
            version: None,
            client_ip: ip.map(str::to_string),
            client_port: port.map(|p| p.to_string()),
        }
    } else {
        // The connection may be gone while its instances are being removed.
        let conn = app.connections.get(id.as_str());
        let meta = conn.as_ref().map(|c| &c.meta);
        ClientDetail {
            client_id: id.to_string(),
            ephemeral: true,
            last_updated_time: conn
                .as_ref()
                .map(|c| c.last_active_ms())
                .or(published_ms)
                .unwrap_or(0),
            client_type: "connection",
            connect_type: Some("grpc"),
            app_name: meta.and_then(|m| m.app_name()).map(str::to_string),
            version: meta
                .map(|m| m.client_version.clone())
                .filter(|v| !v.is_empty()),
            client_ip: meta.map(|m| m.client_ip.clone()),
            client_port: meta.map(|m| m.remote.port().to_string()),
        }
    };
    Ok(ok(detail))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Published {
    namespace: String,
    group: String,
    service_name: String,
    registered_instance: RegisteredInstance,
}

#[derive(Debug, Serialize)]
struct RegisteredInstance {
    ip: String,
    port: u16,
    cluster: String,
}

async fn published_by(State(app): State<AppState>, params: Params) -> V2Result {
    let id = known_client(&app, &params)?;
    let items: Vec<Published> = app
        .naming
        .publications(Some(&id))
        .into_iter()
        .map(|p| Published {
            namespace: p.key.namespace.clone(),
            group: p.key.group.clone(),
            service_name: p.key.name.clone(),
            registered_instance: RegisteredInstance {
                ip: p.host.instance.ip.to_string(),
                port: p.host.instance.port,
                cluster: p.host.instance.cluster.to_string(),
            },
        })
        .collect();
    Ok(ok(items))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Subscribed {
    namespace: String,
    group: String,
    service_name: String,
    subscriber_info: SubscriberInfo,
}

/// What is known of a subscriber: gRPC connections tell their app and client version; a UDP
/// subscriber only its address.
#[derive(Debug, Serialize)]
struct SubscriberInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<String>,
    addr: String,
}

/// The subscriber address of a connection: the IP it reported and its socket's port.
fn connection_addr(conn: &Connection) -> (String, u16) {
    (conn.meta.client_ip.clone(), conn.meta.remote.port())
}

fn subscribed(key: &ServiceKey, subscriber_info: SubscriberInfo) -> Subscribed {
    Subscribed {
        namespace: key.namespace.clone(),
        group: key.group.clone(),
        service_name: key.name.clone(),
        subscriber_info,
    }
}

async fn subscribed_by(State(app): State<AppState>, params: Params) -> V2Result {
    let id = known_client(&app, &params)?;
    let mut items: Vec<Subscribed> = if is_ip_port(&id) {
        app.naming
            .udp_subscriptions()
            .into_iter()
            .filter(|s| udp_client(s.addr) == id)
            .map(|s| {
                let info = SubscriberInfo {
                    app: None,
                    agent: None,
                    addr: s.addr.to_string(),
                };
                subscribed(&s.key, info)
            })
            .collect()
    } else {
        let conn = app.connections.get(id.as_str());
        app.naming_subscribers
            .subscriptions_of(id.as_str())
            .into_iter()
            .map(|(key, _clusters)| {
                let info = SubscriberInfo {
                    app: conn
                        .as_ref()
                        .and_then(|c| c.meta.app_name())
                        .map(str::to_string),
                    agent: conn
                        .as_ref()
                        .map(|c| c.meta.client_version.clone())
                        .filter(|v| !v.is_empty()),
                    addr: conn
                        .as_deref()
                        .map(|c| {
                            let (ip, port) = connection_addr(c);
                            format!("{ip}:{port}")
                        })
                        .unwrap_or_default(),
                };
                subscribed(&key, info)
            })
            .collect()
    };
    items.sort_by(|a, b| {
        (&a.namespace, &a.group, &a.service_name).cmp(&(&b.namespace, &b.group, &b.service_name))
    });
    Ok(ok(items))
}

#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
struct ServiceClient {
    client_id: String,
    ip: String,
    port: u16,
}

/// The service and the optional filters: `ephemeral` (the client's kind), `ip`, `port`.
struct ServiceQuery {
    key: ServiceKey,
    ephemeral: Option<bool>,
    ip: Option<String>,
    port: Option<u16>,
}

impl ServiceQuery {
    fn parse(params: &Params) -> Result<Self, ServiceError> {
        Ok(ServiceQuery {
            key: service_key(params)?,
            ephemeral: params.bool("ephemeral")?,
            ip: params.get("ip").map(str::to_string),
            port: params.parse("port")?,
        })
    }

    fn keeps(&self, ephemeral: bool, ip: &str, port: u16) -> bool {
        self.ephemeral.is_none_or(|e| e == ephemeral)
            && self.ip.as_deref().is_none_or(|i| i == ip)
            && self.port.is_none_or(|p| p == port)
    }
}

async fn service_publishers(State(app): State<AppState>, params: Params) -> V2Result {
    let query = ServiceQuery::parse(&params)?;
    let mut items: Vec<ServiceClient> = app
        .naming
        .publications_in(&query.key)
        .into_iter()
        .filter(|p| {
            let instance = &p.host.instance;
            query.keeps(
                !p.owner.is_persistent_ip_port(),
                &instance.ip,
                instance.port,
            )
        })
        .map(|p| ServiceClient {
            client_id: p.owner.to_string(),
            ip: p.host.instance.ip.to_string(),
            port: p.host.instance.port,
        })
        .collect();
    items.sort();
    Ok(ok(items))
}

async fn service_subscribers(State(app): State<AppState>, params: Params) -> V2Result {
    let query = ServiceQuery::parse(&params)?;
    // Every subscriber is an ephemeral client (a connection, or `ip:udpPort#true`).
    let grpc = app
        .naming_subscribers
        .subscribers_of(&query.key)
        .into_iter()
        .filter_map(|id| app.connections.get(&id))
        .map(|conn| {
            let (ip, port) = connection_addr(&conn);
            ServiceClient {
                client_id: conn.id.to_string(),
                ip,
                port,
            }
        });
    let udp = app
        .naming
        .udp_subscriptions()
        .into_iter()
        .filter(|s| s.key == query.key)
        .map(|s| ServiceClient {
            client_id: udp_client(s.addr).to_string(),
            ip: s.addr.ip().to_string(),
            port: s.addr.port(),
        });
    let mut items: Vec<ServiceClient> = grpc
        .chain(udp)
        .filter(|c| query.keeps(true, &c.ip, c.port))
        .collect();
    items.sort();
    items.dedup();
    Ok(ok(items))
}
