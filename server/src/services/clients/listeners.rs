//! Who listens to configs on this node, over both kinds of listener: gRPC connections that
//! registered a listen, and v1 long polls waiting now. The console's listening query reads it
//! (by config, and by client IP).

use nacos_core::ConfigKey;
use serde::{Deserialize, Serialize};

use super::config_listeners::ConfigListeners;
use super::connection::ConnectionManager;
use crate::services::config::ConfigService;

/// One (client, config) listen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigListener {
    pub data_id: String,
    pub group: String,
    pub tenant: String,
    /// The client's IP.
    pub ip: String,
    /// `ip:port` of a gRPC connection; the IP of a long poll (its port is not the client's).
    pub address: String,
    /// The md5 the client reported for the config.
    pub md5: String,
    /// `grpc` or `http` (a v1 long poll).
    pub transport: String,
    /// The node the client is connected to (`ip:port`; empty when standalone).
    pub node: String,
}

/// What a listening query asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ListenerQuery {
    /// Every client listening to one config.
    Config(ConfigKey),
    /// Every config one client IP listens to, in one namespace (`None`: every namespace).
    Client {
        ip: String,
        namespace: Option<String>,
    },
}

impl ListenerQuery {
    fn wants(&self, key: &ConfigKey, ip: &str) -> bool {
        match self {
            ListenerQuery::Config(k) => k == key,
            ListenerQuery::Client {
                ip: want,
                namespace,
            } => want == ip && namespace.as_ref().is_none_or(|ns| ns == &key.namespace),
        }
    }
}

/// The listens on this node that `query` selects, sorted by config then address.
pub fn local(
    config: &ConfigService,
    grpc: &ConfigListeners,
    connections: &ConnectionManager,
    query: &ListenerQuery,
    node: &str,
) -> Vec<ConfigListener> {
    let mut found = Vec::new();
    let mut push = |key: &ConfigKey, ip: &str, address: String, md5: &str, transport: &str| {
        found.push(ConfigListener {
            data_id: key.data_id.clone(),
            group: key.group.clone(),
            tenant: key.namespace.clone(),
            ip: ip.to_string(),
            address,
            md5: md5.to_string(),
            transport: transport.to_string(),
            node: node.to_string(),
        });
    };
    let conn_ids: Vec<std::sync::Arc<str>> = match query {
        ListenerQuery::Config(key) => grpc.listeners_of(key).into_iter().map(|(c, _)| c).collect(),
        ListenerQuery::Client { .. } => grpc.listening_connections(),
    };
    for conn_id in conn_ids {
        let Some(conn) = connections.get(&conn_id) else {
            continue;
        };
        let ip = conn.meta.client_ip.as_str();
        let address = format!("{ip}:{}", conn.meta.remote.port());
        for (key, md5) in grpc.listened_by(&conn_id) {
            if query.wants(&key, ip) {
                push(&key, ip, address.clone(), &md5, "grpc");
            }
        }
    }
    for poller in config.hub().pollers() {
        for (key, md5) in &poller.md5s {
            if query.wants(key, &poller.client_ip) {
                push(
                    key,
                    &poller.client_ip,
                    poller.client_ip.clone(),
                    md5,
                    "http",
                );
            }
        }
    }
    found.sort_by(|a, b| {
        (&a.tenant, &a.group, &a.data_id, &a.address, &a.transport).cmp(&(
            &b.tenant,
            &b.group,
            &b.data_id,
            &b.address,
            &b.transport,
        ))
    });
    found.dedup();
    found
}
