//! Distro: ephemeral instances across cluster nodes (AP, as Nacos 2.x), and the same hashing
//! deciding which node health-checks a persistent service ([`HealthCheckMapper`]).
//!
//! Every ephemeral client (a gRPC connection, or a v1 `ip:port#true` client) is owned by the
//! node it talks to. The owner sends the client's whole state to every peer when it changes
//! (`CHANGE`, merged over `distro_sync_delay`), `DELETE` when it is gone, and every
//! `distro_verify_interval` asks each peer to `VERIFY` the revisions it holds; a peer that
//! does not know a client (or holds an older revision) gets it again in full. A peer keeps
//! other nodes' clients as copies that expire when nobody verifies them for
//! `nacos.naming.client.expired.time`, which is how a dead node's clients disappear. A
//! starting node loads a `SNAPSHOT` from the first peer that answers.
//!
//! Copies are applied through the naming service's normal ephemeral path, so listings,
//! subscriptions and pushes on every node see them like local ones.
//!
//! Wire: `DistroDataRequest {distroData {distroKey, type, content}, dataOperation}` with the
//! content as Base64 of a JSON `ClientSyncData` (Nacos's distro v2 format). Two liberties, since both
//! ends are this server: `VERIFY` carries every client of the owner in one request (a list of
//! `DistroClientVerifyInfo`, the owner's address as the key) instead of one request per
//! client, so a peer also drops copies the owner no longer lists (a restarted node's old
//! connections go within seconds instead of after the expiry time); and `ClientSyncData` names
//! its owner (`ownerServer`), so snapshot copies are attributed to the right node.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use nacos_core::ServiceKey;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Cluster;
use super::members::NodeState;
use super::peer::{PeerError, PeerRequest};
use crate::foundation::protocol::error::{GrpcError, GrpcResult, code};
use crate::foundation::protocol::message::grpc_response;
use crate::services::naming::health_check::Responsibility;
use crate::services::naming::remote::ClientSyncData;
use crate::services::naming::{ClientId, NamingService};

pub const RESOURCE_TYPE: &str = "Nacos:Naming:v2:ClientData";

// ---------------------------------------------------------------------------------------------
// Wire

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DistroKey {
    pub resource_key: String,
    pub resource_type: String,
    pub target_server: String,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DistroData {
    pub distro_key: DistroKey,
    #[serde(rename = "type")]
    pub operation: String,
    /// Base64 of the JSON document for the operation.
    pub content: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DistroDataRequest {
    pub distro_data: Option<DistroData>,
    pub data_operation: String,
}

grpc_response!(
    /// Readable on both ends: peers parse it.
    #[derive(serde::Deserialize)]
    #[serde(default)]
    DistroDataResponse {
    distro_data: Option<DistroData>,
});

impl PeerRequest for DistroDataRequest {
    const TYPE: &'static str = "DistroDataRequest";
    type Response = DistroDataResponse;
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DistroClientVerifyInfo {
    pub client_id: String,
    pub revision: u64,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientSyncDatumSnapshot {
    pub client_sync_data_list: Vec<ClientSyncData>,
}

fn encode_content<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_vec(value)
        .ok()
        .map(|json| BASE64.encode(json))
}

fn decode_content<T: serde::de::DeserializeOwned>(data: &DistroData) -> Result<T, String> {
    let raw = data.content.as_deref().unwrap_or("");
    let json = BASE64
        .decode(raw)
        .map_err(|e| format!("distro content is not Base64: {e}"))?;
    serde_json::from_slice(&json).map_err(|e| format!("distro content is not valid: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Responsibility (Nacos's `DistroMapper.responsible`)

/// Java's `String.hashCode`, which Nacos's distro hash is built on: the same service maps to
/// the same member on every node.
fn java_hash(text: &str) -> i32 {
    text.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Nacos's `distroHash`: `abs(hashCode % Integer.MAX_VALUE)`.
fn distro_hash(tag: &str) -> usize {
    usize::try_from((java_hash(tag) % i32::MAX).unsigned_abs()).unwrap_or(0)
}

/// Whether `self_address` is responsible for `tag` among `up` (the UP members' addresses,
/// in the same order on every node). A node missing from the list answers for everything,
/// as Nacos's mapper does.
pub fn responsible_among(up: &[String], self_address: &str, tag: &str) -> bool {
    match up.iter().position(|a| a == self_address) {
        None => true,
        Some(index) => distro_hash(tag) % up.len() == index,
    }
}

/// The health checks' [`Responsibility`]: a service (its grouped name, as Nacos 1.x hashed
/// it) is checked by one UP member. The member list is read at every call, so when a node goes
/// DOWN or comes back its services move at the next check.
#[derive(Debug)]
pub struct HealthCheckMapper {
    pub cluster: Arc<Cluster>,
}

impl Responsibility for HealthCheckMapper {
    fn responsible(&self, key: &ServiceKey) -> bool {
        let up: Vec<String> = self
            .cluster
            .members
            .all()
            .into_iter()
            .filter(|m| m.state == NodeState::Up)
            .map(|m| m.address())
            .collect();
        responsible_among(&up, self.cluster.self_address(), &key.grouped_name())
    }
}

// ---------------------------------------------------------------------------------------------
// The owner side

/// What this node last sent about one of its clients.
#[derive(Debug, Clone)]
struct Sent {
    revision: u64,
    fingerprint: u64,
    services: HashSet<ServiceKey>,
}

/// Distro on one node.
#[derive(Debug)]
pub struct Distro {
    naming: Arc<NamingService>,
    cluster: Arc<Cluster>,
    sent: Mutex<HashMap<ClientId, Sent>>,
}

fn fingerprint(data: &ClientSyncData) -> u64 {
    let mut hasher = DefaultHasher::new();
    // Revision excluded: it is what changes because the rest did.
    data.namespaces.hash(&mut hasher);
    data.group_names.hash(&mut hasher);
    data.service_names.hash(&mut hasher);
    for info in &data.instance_publish_infos {
        info.ip.hash(&mut hasher);
        info.port.hash(&mut hasher);
        info.healthy.hash(&mut hasher);
        info.cluster.hash(&mut hasher);
        serde_json::to_string(&info.extend_datum)
            .unwrap_or_default()
            .hash(&mut hasher);
    }
    hasher.finish()
}

fn request(operation: &str, key: &str, content: Option<String>) -> DistroDataRequest {
    DistroDataRequest {
        distro_data: Some(DistroData {
            distro_key: DistroKey {
                resource_key: key.to_string(),
                resource_type: RESOURCE_TYPE.to_string(),
                target_server: String::new(),
            },
            operation: operation.to_string(),
            content,
        }),
        data_operation: operation.to_string(),
    }
}

impl Distro {
    pub fn new(naming: Arc<NamingService>, cluster: Arc<Cluster>) -> Arc<Self> {
        Arc::new(Distro {
            naming,
            cluster,
            sent: Mutex::new(HashMap::new()),
        })
    }

    fn sent(&self) -> MutexGuard<'_, HashMap<ClientId, Sent>> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Peers a sync goes to now: every member but this node that is not known DOWN (a DOWN
    /// peer is brought up to date by verification once it is back).
    fn live_peers(&self) -> Vec<String> {
        self.cluster
            .members
            .peers()
            .into_iter()
            .filter(|m| m.state != NodeState::Down)
            .map(|m| m.address())
            .collect()
    }

    async fn send(
        &self,
        member: &str,
        req: &DistroDataRequest,
    ) -> Result<DistroDataResponse, PeerError> {
        let grpc =
            self.cluster
                .cluster_grpc_addr(member)
                .ok_or_else(|| PeerError::Unreachable {
                    addr: member.to_string(),
                    message: "no longer a member".into(),
                })?;
        self.cluster.peers.request(&grpc, req).await
    }

    /// Bring every peer up to date on `client`: CHANGE with its state, or DELETE when it
    /// publishes nothing any more. Nothing is sent when nothing changed since the last time.
    pub(crate) async fn sync_client(self: &Arc<Self>, client: ClientId) {
        if self.naming.remote.contains(&client) || client.is_persistent_ip_port() {
            return;
        }
        let self_addr = self.cluster.self_address().to_string();
        let previous = self.sent().get(&client).cloned();
        let next_revision = previous.as_ref().map_or(1, |s| s.revision + 1);
        let req = match self
            .naming
            .client_sync_data(&client, &self_addr, next_revision)
        {
            Some(data) => {
                let print = fingerprint(&data);
                if previous.as_ref().is_some_and(|p| p.fingerprint == print) {
                    return;
                }
                let services: HashSet<ServiceKey> = data.services().into_keys().collect();
                self.sent().insert(
                    client.clone(),
                    Sent {
                        revision: next_revision,
                        fingerprint: print,
                        services,
                    },
                );
                request("CHANGE", client.as_str(), encode_content(&data))
            }
            None => {
                if self.sent().remove(&client).is_none() {
                    return;
                }
                request("DELETE", client.as_str(), None)
            }
        };
        for member in self.live_peers() {
            let distro = Arc::clone(self);
            let req = req.clone();
            tokio::spawn(async move {
                if let Err(e) = distro.send(&member, &req).await {
                    tracing::debug!(member = %member, error = %e, "distro sync failed; verification will repair it");
                }
            });
        }
    }

    /// Send a client in full to one peer (after a failed verification).
    async fn resend(&self, member: &str, client: &ClientId) {
        let Some(revision) = self.sent().get(client).map(|s| s.revision) else {
            return;
        };
        let self_addr = self.cluster.self_address().to_string();
        if let Some(data) = self.naming.client_sync_data(client, &self_addr, revision) {
            let req = request("ADD", client.as_str(), encode_content(&data));
            if let Err(e) = self.send(member, &req).await {
                tracing::debug!(member = %member, error = %e, "distro resend failed");
            }
        }
    }

    /// One verification round with every live peer.
    async fn verify_round(self: &Arc<Self>) {
        let infos: Vec<DistroClientVerifyInfo> = self
            .sent()
            .iter()
            .map(|(id, s)| DistroClientVerifyInfo {
                client_id: id.as_str().to_string(),
                revision: s.revision,
            })
            .collect();
        for member in self.live_peers() {
            let distro = Arc::clone(self);
            let req = request(
                "VERIFY",
                distro.cluster.self_address(),
                encode_content(&infos),
            );
            tokio::spawn(async move {
                match distro.send(&member, &req).await {
                    Ok(resp) => {
                        let failed: Vec<String> = resp
                            .distro_data
                            .as_ref()
                            .and_then(|d| decode_content(d).ok())
                            .unwrap_or_default();
                        for id in failed {
                            distro.resend(&member, &ClientId::of(&id)).await;
                        }
                    }
                    Err(e) => tracing::debug!(member = %member, error = %e, "distro verify failed"),
                }
            });
        }
    }

    /// Load every client a peer knows (at start), from the first peer that answers.
    async fn load_snapshot(&self) -> bool {
        let self_addr = self.cluster.self_address().to_string();
        for member in self.cluster.members.peers() {
            let address = member.address();
            let req = DistroDataRequest {
                distro_data: None,
                data_operation: "SNAPSHOT".into(),
            };
            match self.send(&address, &req).await {
                Ok(resp) => {
                    let snapshot: ClientSyncDatumSnapshot = match resp
                        .distro_data
                        .as_ref()
                        .map(decode_content)
                    {
                        Some(Ok(s)) => s,
                        Some(Err(e)) => {
                            tracing::warn!(member = %address, "unreadable distro snapshot: {e}");
                            continue;
                        }
                        None => ClientSyncDatumSnapshot::default(),
                    };
                    let count = snapshot.client_sync_data_list.len();
                    for data in snapshot
                        .client_sync_data_list
                        .iter()
                        .filter(|d| d.owner_server != self_addr)
                    {
                        self.naming.apply_remote_client(data);
                    }
                    tracing::info!(member = %address, clients = count, "loaded distro snapshot");
                    return true;
                }
                Err(e) => {
                    tracing::debug!(member = %address, error = %e, "distro snapshot not available")
                }
            }
        }
        false
    }

    /// Background tasks: change sync, verification, copy expiry, the start-up snapshot.
    pub fn start(self: &Arc<Self>, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
        vec![
            tokio::spawn(Arc::clone(self).sync_loop(shutdown.clone())),
            tokio::spawn(Arc::clone(self).verify_loop(shutdown.clone())),
            tokio::spawn(Arc::clone(self).load_loop(shutdown)),
        ]
    }

    async fn sync_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut changes = self.naming.subscribe_changes();
        let delay = self.cluster.settings.distro_sync_delay;
        loop {
            let mut keys: HashSet<Arc<ServiceKey>> = HashSet::new();
            let mut everything = false;
            let first = tokio::select! {
                _ = shutdown.cancelled() => return,
                next = changes.recv() => next,
            };
            match first {
                Ok(key) => {
                    keys.insert(key);
                }
                Err(RecvError::Lagged(_)) => everything = true,
                Err(RecvError::Closed) => return,
            }
            // Merge the burst: one sync per client however many of its services changed.
            tokio::time::sleep(delay).await;
            loop {
                match changes.try_recv() {
                    Ok(key) => {
                        keys.insert(key);
                    }
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                        everything = true
                    }
                    Err(_) => break,
                }
            }
            let mut dirty: HashSet<ClientId> = HashSet::new();
            if everything {
                dirty.extend(self.naming.local_clients());
                dirty.extend(self.sent().keys().cloned());
            } else {
                for key in &keys {
                    dirty.extend(self.naming.owners_in(key));
                }
                dirty.extend(
                    self.sent()
                        .iter()
                        .filter(|(_, s)| keys.iter().any(|k| s.services.contains(k)))
                        .map(|(id, _)| id.clone()),
                );
            }
            for client in dirty {
                self.sync_client(client).await;
            }
        }
    }

    async fn verify_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let interval = self.cluster.settings.distro_verify_interval;
        let ttl = self.cluster.settings.client_expired_time;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.verify_round().await;
            for (client, owner) in self.naming.unverified_remote(ttl) {
                tracing::info!(client = %client, owner = %owner, "dropping a peer's client: not verified for {ttl:?}");
                self.naming.remove_remote_client(&client);
            }
        }
    }

    async fn load_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let retry = self.cluster.settings.distro_retry_delay;
        // A node started together with its peers finds none of them up yet; the owners'
        // verification fills it in anyway, so the snapshot is tried a few times, not forever.
        for _ in 0..10 {
            if self.load_snapshot().await {
                return;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(retry) => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The receiving side

/// A peer's distro message: apply, drop or verify copies of its clients, or answer with ours.
pub fn on_distro(
    naming: &NamingService,
    cluster: Option<&Cluster>,
    req: DistroDataRequest,
) -> GrpcResult<DistroDataResponse> {
    let data = req.distro_data.unwrap_or_default();
    let invalid = |e: String| GrpcError::fail(code::INVALID_PARAM, e);
    let mut resp = DistroDataResponse::default();
    match req.data_operation.as_str() {
        "ADD" | "CHANGE" => {
            let sync: ClientSyncData = decode_content(&data).map_err(invalid)?;
            if sync.client_id.is_empty() {
                return Err(invalid("ClientSyncData.clientId is empty".into()));
            }
            naming.apply_remote_client(&sync);
        }
        "DELETE" => {
            naming.remove_remote_client(&ClientId::of(&data.distro_key.resource_key));
        }
        "VERIFY" => {
            let infos: Vec<DistroClientVerifyInfo> = decode_content(&data).map_err(invalid)?;
            // The list is all of the owner's clients: copies it no longer names are gone
            // (a restarted owner never sends DELETE for its old connections).
            let listed: HashSet<String> = infos.iter().map(|i| i.client_id.clone()).collect();
            let owner = data.distro_key.resource_key.as_str();
            let grace = cluster.map_or(Duration::from_secs(5), |c| {
                c.settings.distro_verify_interval * 2
            });
            let dropped = naming.drop_unlisted(owner, &listed, grace);
            if dropped > 0 {
                tracing::info!(
                    owner,
                    clients = dropped,
                    "dropped copies of clients their owner no longer has"
                );
            }
            let failed: Vec<String> = infos
                .into_iter()
                .filter(|i| !naming.verify_remote(&ClientId::of(&i.client_id), i.revision))
                .map(|i| i.client_id)
                .collect();
            resp.distro_data = Some(DistroData {
                distro_key: data.distro_key,
                operation: "VERIFY".into(),
                content: encode_content(&failed),
            });
        }
        "SNAPSHOT" => {
            let self_addr = cluster
                .map(|c| c.self_address().to_string())
                .unwrap_or_default();
            let mut list = Vec::new();
            for client in naming.local_clients() {
                if let Some(d) = naming.client_sync_data(&client, &self_addr, 0) {
                    list.push(d);
                }
            }
            for (client, owner, revision) in naming.remote_clients() {
                if let Some(d) = naming.client_sync_data(&client, &owner, revision) {
                    list.push(d);
                }
            }
            resp.distro_data = Some(DistroData {
                distro_key: DistroKey {
                    resource_key: "SNAPSHOT".into(),
                    resource_type: RESOURCE_TYPE.into(),
                    target_server: String::new(),
                },
                operation: "SNAPSHOT".into(),
                content: encode_content(&ClientSyncDatumSnapshot {
                    client_sync_data_list: list,
                }),
            });
        }
        "QUERY" => {
            let client = ClientId::of(&data.distro_key.resource_key);
            let self_addr = cluster
                .map(|c| c.self_address().to_string())
                .unwrap_or_default();
            let found = naming.client_sync_data(&client, &self_addr, 0);
            resp.distro_data = Some(DistroData {
                distro_key: data.distro_key,
                operation: "QUERY".into(),
                content: found.as_ref().and_then(encode_content),
            });
        }
        other => {
            return Err(invalid(format!("unknown dataOperation '{other}'")));
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distro_hash_matches_java() {
        // Values of Java's String.hashCode (the second overflows).
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("hello"), 99_162_322);
        assert_eq!(java_hash("DEFAULT_GROUP@@nacos.test"), -339_978_099);
        let up: Vec<String> = ["10.0.0.1:8848", "10.0.0.2:8848", "10.0.0.3:8848"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let owners = up
            .iter()
            .filter(|me| responsible_among(&up, me, "DEFAULT_GROUP@@svc"))
            .count();
        assert_eq!(owners, 1);
        assert!(responsible_among(&up, "10.0.0.9:8848", "x"));
    }

    #[test]
    fn content_is_base64_json() {
        let infos = vec![DistroClientVerifyInfo {
            client_id: "c1".into(),
            revision: 3,
        }];
        let data = DistroData {
            content: encode_content(&infos),
            ..Default::default()
        };
        let raw = BASE64
            .decode(data.content.as_deref().unwrap_or(""))
            .expect("base64");
        assert_eq!(
            String::from_utf8(raw).expect("utf8"),
            r#"[{"clientId":"c1","revision":3}]"#
        );
        let back: Vec<DistroClientVerifyInfo> = decode_content(&data).expect("decode");
        assert_eq!(back[0].revision, 3);
        assert!(
            decode_content::<Vec<DistroClientVerifyInfo>>(&DistroData {
                content: Some("not base64!".into()),
                ..Default::default()
            })
            .is_err()
        );
    }
}
