//! Copies of clients other cluster nodes own, held inside the naming service: the state a
//! client publishes ([`ClientSyncData`], Nacos's distro format of it), and the entry points a
//! cluster protocol uses to apply, verify, adopt and drop such copies. Copies go through the
//! normal ephemeral path, so listings, subscriptions and pushes see them like local clients.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nacos_core::{Instance, ServiceKey};
use serde::{Deserialize, Serialize};

use super::{ClientId, NamingService};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientAttributes {
    pub revision: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncAttributes {
    pub client_attributes: ClientAttributes,
}

/// One published instance (Nacos's `InstancePublishInfo`).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InstancePublishInfo {
    pub ip: String,
    pub port: u16,
    pub healthy: bool,
    pub cluster: String,
    pub extend_datum: BTreeMap<String, serde_json::Value>,
}

const CUSTOM_INSTANCE_ID: &str = "customInstanceId";
const PUBLISH_WEIGHT: &str = "publishInstanceWeight";
const PUBLISH_ENABLE: &str = "publishInstanceEnable";

impl InstancePublishInfo {
    pub fn of(instance: &Instance) -> Self {
        let mut extend: BTreeMap<String, serde_json::Value> = instance
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        if let Some(id) = &instance.instance_id {
            extend.insert(CUSTOM_INSTANCE_ID.into(), id.clone().into());
        }
        if instance.weight != 1.0 {
            extend.insert(PUBLISH_WEIGHT.into(), instance.weight.into());
        }
        if !instance.enabled {
            extend.insert(PUBLISH_ENABLE.into(), false.into());
        }
        InstancePublishInfo {
            ip: instance.ip.to_string(),
            port: instance.port,
            healthy: instance.healthy,
            cluster: instance.cluster.to_string(),
            extend_datum: extend,
        }
    }

    pub fn into_instance(self) -> Instance {
        let mut instance = Instance::new(self.ip, self.port);
        instance.cluster = self.cluster.into();
        instance.healthy = self.healthy;
        instance.ephemeral = true;
        for (k, v) in self.extend_datum {
            match k.as_str() {
                CUSTOM_INSTANCE_ID => instance.instance_id = v.as_str().map(str::to_string),
                PUBLISH_WEIGHT => instance.weight = v.as_f64().unwrap_or(1.0),
                PUBLISH_ENABLE => instance.enabled = v.as_bool().unwrap_or(true),
                _ => {
                    let v = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    instance.metadata.insert(k, v);
                }
            }
        }
        instance
    }
}

/// A client's whole published state (Nacos's `ClientSyncData`: parallel arrays, one entry
/// per instance).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientSyncData {
    pub client_id: String,
    /// The node that owns the client (ours; see the module doc).
    pub owner_server: String,
    pub attributes: SyncAttributes,
    pub namespaces: Vec<String>,
    pub group_names: Vec<String>,
    pub service_names: Vec<String>,
    pub instance_publish_infos: Vec<InstancePublishInfo>,
}

impl ClientSyncData {
    /// Instances grouped by service.
    pub fn services(&self) -> BTreeMap<ServiceKey, Vec<Instance>> {
        let mut out: BTreeMap<ServiceKey, Vec<Instance>> = BTreeMap::new();
        let rows = self
            .namespaces
            .iter()
            .zip(&self.group_names)
            .zip(&self.service_names)
            .zip(&self.instance_publish_infos);
        for (((ns, group), name), info) in rows {
            out.entry(ServiceKey::new(ns.clone(), group.clone(), name.clone()))
                .or_default()
                .push(info.clone().into_instance());
        }
        out
    }
}

/// A copy of a client another node owns.
#[derive(Debug, Clone)]
struct RemoteClient {
    owner_server: String,
    revision: u64,
    services: HashSet<ServiceKey>,
    verified: Instant,
}

/// The clients this node holds for other nodes. Kept inside the naming service so its
/// expiry sweep can leave them alone (their owner decides when they go).
#[derive(Debug, Default)]
pub struct RemoteClients {
    clients: Mutex<HashMap<ClientId, RemoteClient>>,
}

impl RemoteClients {
    fn lock(&self) -> MutexGuard<'_, HashMap<ClientId, RemoteClient>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn contains(&self, client: &ClientId) -> bool {
        self.lock().contains_key(client)
    }

    /// Copied `ip:port#true` clients (the only kind the beat sweep looks at).
    pub fn ip_port_clients(&self) -> HashSet<ClientId> {
        self.lock()
            .keys()
            .filter(|c| c.is_ephemeral_ip_port())
            .cloned()
            .collect()
    }
}

impl NamingService {
    /// Install or refresh the copy of another node's client.
    pub fn apply_remote_client(&self, data: &ClientSyncData) {
        let owner = ClientId::of(&data.client_id);
        let services = data.services();
        let keys: HashSet<ServiceKey> = services.keys().cloned().collect();
        let previous = {
            let mut remote = self.remote.lock();
            let previous = remote.get(&owner).map(|c| c.services.clone());
            if previous.is_none() && self.registry.clients().contains_key(&owner) {
                // This node owns a client by that id (a v1 client registered here too): the
                // local registration wins; the copy is ignored.
                tracing::debug!(client = %owner, "ignoring a peer's copy of a client owned here");
                return;
            }
            remote.insert(
                owner.clone(),
                RemoteClient {
                    owner_server: data.owner_server.clone(),
                    revision: data.attributes.client_attributes.revision,
                    services: keys.clone(),
                    verified: Instant::now(),
                },
            );
            previous.unwrap_or_default()
        };
        for (key, instances) in services {
            if let Err(e) = self.batch_register(&key, instances, &owner) {
                tracing::warn!(client = %owner, service = %key.grouped_name(), "cannot apply a peer's instances: {e}");
            }
        }
        for gone in previous.difference(&keys) {
            let _ = self.batch_register(gone, Vec::new(), &owner);
        }
    }

    /// The node that owns `client`, when this node holds only a copy of it.
    /// Every copy held: (client, owner, revision).
    pub fn remote_clients(&self) -> Vec<(ClientId, String, u64)> {
        self.remote
            .lock()
            .iter()
            .map(|(id, c)| (id.clone(), c.owner_server.clone(), c.revision))
            .collect()
    }

    pub fn remote_owner(&self, client: &ClientId) -> Option<String> {
        self.remote
            .lock()
            .get(client)
            .map(|c| c.owner_server.clone())
    }

    /// Make a copy this node's own client (its owner is gone); its entries stay as they are.
    pub fn adopt_remote_client(&self, client: &ClientId) {
        self.remote.lock().remove(client);
    }

    /// Drop the copy of another node's client (never a client of this node).
    pub fn remove_remote_client(&self, client: &ClientId) -> bool {
        let removed = self.remote.lock().remove(client).is_some();
        if removed {
            self.remove_client(client);
        }
        removed
    }

    /// Verify a copy: known and at the owner's revision (0 = "any").
    pub fn verify_remote(&self, client: &ClientId, revision: u64) -> bool {
        let mut remote = self.remote.lock();
        match remote.get_mut(client) {
            Some(c) if revision == 0 || c.revision == revision => {
                c.verified = Instant::now();
                true
            }
            _ => false,
        }
    }

    /// Drop copies `owner_server` no longer lists as its clients (it restarted, or missed a
    /// DELETE), unless they were refreshed within `grace` (a CHANGE may overtake the list).
    pub fn drop_unlisted(
        &self,
        owner_server: &str,
        listed: &HashSet<String>,
        grace: Duration,
    ) -> usize {
        let now = Instant::now();
        let stale: Vec<ClientId> = self
            .remote
            .lock()
            .iter()
            .filter(|(id, c)| {
                c.owner_server == owner_server
                    && !listed.contains(id.as_str())
                    && now.saturating_duration_since(c.verified) > grace
            })
            .map(|(id, _)| id.clone())
            .collect();
        for client in &stale {
            self.remove_remote_client(client);
        }
        stale.len()
    }

    /// Copies nobody verified for `ttl`.
    pub fn unverified_remote(&self, ttl: Duration) -> Vec<(ClientId, String)> {
        let now = Instant::now();
        self.remote
            .lock()
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.verified) > ttl)
            .map(|(id, c)| (id.clone(), c.owner_server.clone()))
            .collect()
    }

    /// The current state of a client as sync data (`None`: it publishes nothing).
    pub fn client_sync_data(
        &self,
        client: &ClientId,
        owner_server: &str,
        revision: u64,
    ) -> Option<ClientSyncData> {
        let mut data = ClientSyncData {
            client_id: client.as_str().to_string(),
            owner_server: owner_server.to_string(),
            attributes: SyncAttributes {
                client_attributes: ClientAttributes { revision },
            },
            ..Default::default()
        };
        let services = self.registry.clients().get(client).cloned()?;
        let mut keys: Vec<ServiceKey> = services
            .into_vec()
            .into_iter()
            .map(|key| (*key).clone())
            .collect();
        keys.sort();
        for key in keys {
            for publication in self.publications_in(&key) {
                if &publication.owner != client {
                    continue;
                }
                data.namespaces.push(key.namespace.clone());
                data.group_names.push(key.group.clone());
                data.service_names.push(key.name.clone());
                data.instance_publish_infos
                    .push(InstancePublishInfo::of(&publication.host.instance));
            }
        }
        (!data.instance_publish_infos.is_empty()).then_some(data)
    }

    /// Clients this node owns that publish ephemeral instances.
    pub fn local_clients(&self) -> Vec<ClientId> {
        let remote = self.remote.lock().keys().cloned().collect::<HashSet<_>>();
        self.registry
            .clients()
            .keys()
            .filter(|c| !c.is_persistent_ip_port() && !remote.contains(*c))
            .cloned()
            .collect()
    }

    /// Owners of the instances of one service.
    pub fn owners_in(&self, key: &ServiceKey) -> HashSet<ClientId> {
        self.publications_in(key)
            .into_iter()
            .map(|p| p.owner)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_info_round_trips_an_instance() {
        let mut instance = Instance::new("10.0.0.1", 8080);
        instance.weight = 2.5;
        instance.enabled = false;
        instance.instance_id = Some("custom".into());
        instance.metadata.insert("zone".into(), "a".into());
        let info = InstancePublishInfo::of(&instance);
        assert_eq!(
            info.extend_datum.get(PUBLISH_WEIGHT),
            Some(&serde_json::json!(2.5))
        );
        assert_eq!(
            info.extend_datum.get(PUBLISH_ENABLE),
            Some(&serde_json::json!(false))
        );
        assert_eq!(info.into_instance(), instance);
        let plain = Instance::new("10.0.0.2", 1);
        let info = InstancePublishInfo::of(&plain);
        assert!(
            info.extend_datum.is_empty(),
            "defaults are not sent: {info:?}"
        );
        assert_eq!(info.into_instance(), plain);
    }
}
