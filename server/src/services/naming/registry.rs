//! In-memory naming state: per service its kind (ephemeral or persistent), its stored metadata,
//! and its instances, each owned by a client. Sharded by service key so writes to one service
//! do not block reads of another; every lock is held only for in-memory work, never across an
//! `.await`.
//!
//! Lock order: a shard lock, then (optionally) the client index lock. Never the reverse.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use nacos_core::{ServiceKey, ServiceMeta};

use super::service_info::{Host, RenderKey, Rendered};

/// Serialised selections kept per service; beyond this the cache starts over.
const RENDER_CACHE: usize = 16;

const SHARDS: usize = 16;

/// Who owns an instance: a v1 HTTP client (`ip:port#true` for ephemeral, `ip:port#false` for
/// persistent instances, as Nacos names them) or a gRPC connection (its connection id).
/// Removing a client removes every instance it owns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(Arc<str>);

impl ClientId {
    /// The id of an HTTP (v1 / v2 OpenAPI) client publishing `ip:port`.
    pub fn ip_port(ip: &str, port: u16, ephemeral: bool) -> Self {
        ClientId(Arc::from(format!("{ip}:{port}#{ephemeral}")))
    }

    /// The id of a gRPC connection.
    pub fn connection(id: &str) -> Self {
        ClientId(Arc::from(id))
    }

    /// A client id as operators name it (either kind), e.g. a `clientId` parameter.
    pub fn of(id: &str) -> Self {
        ClientId(Arc::from(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An ephemeral HTTP client: its instances live only as long as it keeps beating.
    pub fn is_ephemeral_ip_port(&self) -> bool {
        self.0.ends_with("#true")
    }

    pub fn is_persistent_ip_port(&self) -> bool {
        self.0.ends_with("#false")
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identity of an instance within a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceAddr {
    pub ip: String,
    pub port: u16,
    pub cluster: String,
}

impl InstanceAddr {
    pub fn of(host: &Host) -> Self {
        InstanceAddr {
            ip: host.instance.ip.clone(),
            port: host.instance.port,
            cluster: host.instance.cluster.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub host: Arc<Host>,
    pub owner: ClientId,
    /// Last beat (or registration). Only consulted for ephemeral HTTP clients.
    pub last_beat: Instant,
}

/// One service.
#[derive(Debug)]
pub struct ServiceState {
    /// Fixed when the service is created (first registration, or `POST /v1/ns/service`, which
    /// creates a persistent service). Instances of the other kind are refused.
    pub ephemeral: bool,
    /// Stored settings (in the repository), if any. Protect threshold applies only with them.
    pub meta: Option<Arc<ServiceMeta>>,
    /// Ordered by (ip, port, cluster), so listings are stable.
    pub entries: BTreeMap<InstanceAddr, Entry>,
    /// Since when the service holds no instance (for the empty-service cleanup).
    pub empty_since: Option<Instant>,
    /// Serialised selections (`instance/list` answers). Cleared on every change to what is
    /// served, by `NamingService::notify`, which every such change already calls for push.
    rendered: RwLock<Vec<(RenderKey, Arc<Rendered>)>>,
}

impl ServiceState {
    pub fn new(ephemeral: bool) -> Self {
        ServiceState {
            ephemeral,
            meta: None,
            entries: BTreeMap::new(),
            empty_since: Some(Instant::now()),
            rendered: RwLock::new(Vec::new()),
        }
    }

    pub fn rendered(&self, key: &RenderKey) -> Option<Arc<Rendered>> {
        let cache = self.rendered.read().unwrap_or_else(|p| p.into_inner());
        cache
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, r)| Arc::clone(r))
    }

    pub fn keep_rendered(&self, key: RenderKey, rendered: Arc<Rendered>) {
        let mut cache = self.rendered.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= RENDER_CACHE {
            cache.clear();
        }
        cache.retain(|(k, _)| k != &key);
        cache.push((key, rendered));
    }

    pub fn forget_rendered(&self) {
        self.rendered
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Keep `empty_since` in step with `entries`.
    pub fn touch_empty(&mut self, now: Instant) {
        if self.entries.is_empty() {
            self.empty_since.get_or_insert(now);
        } else {
            self.empty_since = None;
        }
    }

    pub fn hosts(&self) -> impl Iterator<Item = &Arc<Host>> {
        self.entries.values().map(|e| &e.host)
    }
}

pub type Shard = HashMap<ServiceKey, ServiceState>;

/// The sharded service map plus an index from client to the services it publishes in.
#[derive(Debug)]
pub struct Registry {
    hasher: RandomState,
    shards: Vec<RwLock<Shard>>,
    /// A superset: a client may be listed under a service where it no longer owns an instance
    /// (harmless; removal re-checks ownership).
    clients: Mutex<HashMap<ClientId, HashSet<ServiceKey>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            clients: Mutex::new(HashMap::new()),
        }
    }
}

impl Registry {
    fn shard(&self, key: &ServiceKey) -> &RwLock<Shard> {
        let index = (self.hasher.hash_one(key) as usize) % self.shards.len();
        &self.shards[index]
    }

    pub fn read(&self, key: &ServiceKey) -> RwLockReadGuard<'_, Shard> {
        self.shard(key).read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn write(&self, key: &ServiceKey) -> RwLockWriteGuard<'_, Shard> {
        self.shard(key).write().unwrap_or_else(|p| p.into_inner())
    }

    /// Every shard, one at a time, for reading.
    pub fn for_each_shard(&self, mut f: impl FnMut(&Shard)) {
        for shard in &self.shards {
            f(&shard.read().unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// Every shard, one at a time, for writing (the expiry sweep).
    pub fn for_each_shard_mut(&self, mut f: impl FnMut(&mut Shard)) {
        for shard in &self.shards {
            f(&mut shard.write().unwrap_or_else(|p| p.into_inner()));
        }
    }

    pub fn clients(&self) -> MutexGuard<'_, HashMap<ClientId, HashSet<ServiceKey>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record that `owner` publishes in `key` (call while holding that service's shard lock).
    pub fn index_add(&self, owner: &ClientId, key: &ServiceKey) {
        if owner.is_persistent_ip_port() {
            return;
        }
        self.clients()
            .entry(owner.clone())
            .or_default()
            .insert(key.clone());
    }

    /// Forget that `owner` publishes in `key` when it owns nothing there any more (call while
    /// holding that service's shard lock, passing the service's state after the change).
    pub fn index_remove(&self, owner: &ClientId, key: &ServiceKey, state: Option<&ServiceState>) {
        if state.is_some_and(|s| s.entries.values().any(|e| &e.owner == owner)) {
            return;
        }
        let mut clients = self.clients();
        if let Some(services) = clients.get_mut(owner) {
            services.remove(key);
            if services.is_empty() {
                clients.remove(owner);
            }
        }
    }

    /// Take a client out of the index; returns the services it may own instances in.
    pub fn take_client(&self, owner: &ClientId) -> HashSet<ServiceKey> {
        self.clients().remove(owner).unwrap_or_default()
    }
}
