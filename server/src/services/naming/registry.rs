//! In-memory naming state: per service its kind (ephemeral or persistent), its stored metadata,
//! and its instances, each owned by a client. Sharded by service key so writes to one service
//! do not block reads of another; every lock is held only for in-memory work, never across an
//! `.await`.
//!
//! Lock order: a shard lock, then (optionally) the client index lock. Never the reverse.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use nacos_core::{ServiceKey, ServiceMeta};
use smol_str::{SmolStr, format_smolstr};

use super::service_info::{Host, RenderKey, Rendered};

/// Serialised selections kept per service; beyond this the cache starts over.
const RENDER_CACHE: usize = 16;

const SHARDS: usize = 16;

/// Who owns an instance: a v1 HTTP client (`ip:port#true` for ephemeral, `ip:port#false` for
/// persistent instances, as Nacos names them) or a gRPC connection (its connection id).
/// Removing a client removes every instance it owns.
///
/// Up to 23 bytes are held inline (an HTTP client's `10.1.2.3:8080#true`), longer ids (a
/// connection's) in a shared allocation: a v1 client, one per instance it registers, then costs
/// no allocation of its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(SmolStr);

impl ClientId {
    /// The id of an HTTP (v1 / v2 OpenAPI) client publishing `ip:port`.
    pub fn ip_port(ip: &str, port: u16, ephemeral: bool) -> Self {
        ClientId(format_smolstr!("{ip}:{port}#{ephemeral}"))
    }

    /// The id of a gRPC connection.
    pub fn connection(id: &str) -> Self {
        ClientId(SmolStr::new(id))
    }

    /// A client id as operators name it (either kind), e.g. a `clientId` parameter.
    pub fn of(id: &str) -> Self {
        ClientId(SmolStr::new(id))
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

    /// The `ip` and `port` of an HTTP client (`ip:port#true|false`); `None` for a connection.
    pub fn http_address(&self) -> Option<(&str, u16)> {
        let (address, kind) = self.0.rsplit_once('#')?;
        if kind != "true" && kind != "false" {
            return None;
        }
        let (ip, port) = address.rsplit_once(':')?;
        Some((ip, port.parse().ok()?))
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identity of an instance within a service.
pub use nacos_core::InstanceAddr;

#[derive(Debug, Clone)]
pub struct Entry {
    pub host: Arc<Host>,
    pub owner: ClientId,
    /// Last beat (or registration). Only consulted for ephemeral HTTP clients.
    pub last_beat: BeatTime,
}

/// A point in time to the millisecond, counted from the registry's first use: 8 bytes where
/// an `Instant` takes 16, in the entry the registry holds for every instance (about 1.5 MB
/// of B-tree nodes per 100,000 instances).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BeatTime(u64);

static BEAT_EPOCH: OnceLock<Instant> = OnceLock::new();

fn beat_epoch() -> Instant {
    *BEAT_EPOCH.get_or_init(Instant::now)
}

impl From<Instant> for BeatTime {
    fn from(at: Instant) -> Self {
        let since = at.saturating_duration_since(beat_epoch()).as_millis();
        BeatTime(u64::try_from(since).unwrap_or(u64::MAX))
    }
}

impl BeatTime {
    pub fn now() -> Self {
        Instant::now().into()
    }

    /// Milliseconds from `earlier` to `self`, 0 when `earlier` is later.
    pub fn millis_since(self, earlier: BeatTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    pub fn instant(self) -> Instant {
        beat_epoch() + Duration::from_millis(self.0)
    }
}

/// One service.
#[derive(Debug)]
pub struct ServiceState {
    /// The service's key, shared with the client index (one allocation per service, not one
    /// per client that publishes in it).
    pub key: Arc<ServiceKey>,
    /// Fixed when the service is created (first registration, or `POST /v1/ns/service`, which
    /// creates a persistent service). Instances of the other kind are refused.
    pub ephemeral: bool,
    /// Stored settings (in the repository), if any. Protect threshold applies only with them.
    pub meta: Option<Arc<ServiceMeta>>,
    /// Ordered by (ip, port, cluster), so listings are stable; keyed by the entry's own host
    /// (see [`HostKey`]). Changed only through the methods below, which keep the keys and
    /// `owned` in step.
    entries: BTreeMap<HostKey, Entry>,
    /// How many entries each owner has here, so that re-registering, deregistering or
    /// dropping a client costs the same in a service of ten instances as in one of ten
    /// thousand. An HTTP client's (`ip:port#…`) instances at its own `ip:port` are not
    /// counted: a range of `entries` finds them, and a count per instance would cost more
    /// memory than the instance's own key.
    owned: HashMap<ClientId, u32>,
    /// Since when the service holds no instance (for the empty-service cleanup).
    pub empty_since: Option<Instant>,
    /// Serialised selections (`instance/list` answers). Cleared on every change to what is
    /// served, by `NamingService::notify`, which every such change already calls for push.
    rendered: RwLock<Vec<(RenderKey, Arc<Rendered>)>>,
}

impl ServiceState {
    pub fn new(key: &ServiceKey, ephemeral: bool) -> Self {
        ServiceState {
            key: Arc::new(key.clone()),
            ephemeral,
            meta: None,
            entries: BTreeMap::new(),
            owned: HashMap::new(),
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

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, addr: &InstanceAddr) -> Option<&Entry> {
        self.entries.get(addr as &dyn AddrParts)
    }

    /// Every entry, ordered by `(ip, port, cluster)`.
    pub fn values(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The entries at `ip:port`, in any cluster (a v1 beat names no cluster).
    pub fn at(&self, ip: &str, port: u16) -> impl Iterator<Item = &Entry> {
        let from = InstanceAddr::new(ip, port, "");
        self.entries
            .range::<dyn AddrParts, _>((Bound::Included(&from as &dyn AddrParts), Bound::Unbounded))
            .map(|(_, entry)| entry)
            .take_while(move |entry| {
                entry.host.instance.ip == ip && entry.host.instance.port == port
            })
    }

    /// Record a beat of the entry at `addr`.
    pub fn set_beat(&mut self, addr: &InstanceAddr, now: Instant) {
        if let Some(entry) = self.entries.get_mut(addr as &dyn AddrParts) {
            entry.last_beat = now.into();
        }
    }

    /// Replace the host of the entry at `addr` (same address: a health, weight or metadata
    /// change). The entry is keyed anew so that its key holds the new host, not the old one.
    pub fn replace_host(&mut self, addr: &InstanceAddr, host: Arc<Host>) {
        debug_assert!(host.instance.is_at(addr), "a host keeps its address");
        if let Some((_, mut entry)) = self.entries.remove_entry(addr as &dyn AddrParts) {
            entry.host = host;
            self.entries.insert(HostKey(Arc::clone(&entry.host)), entry);
        }
    }

    pub fn insert(&mut self, addr: InstanceAddr, entry: Entry) -> Option<Entry> {
        debug_assert!(
            entry.host.instance.is_at(&addr),
            "an entry sits at its host's address"
        );
        if is_counted(&addr, &entry.owner) {
            *self.owned.entry(entry.owner.clone()).or_default() += 1;
        }
        // Remove first: `insert` would keep the old key, which holds the old host.
        let replaced = self.entries.remove(&addr as &dyn AddrParts);
        self.entries.insert(HostKey(Arc::clone(&entry.host)), entry);
        if let Some(old) = &replaced
            && is_counted(&addr, &old.owner)
        {
            disown(&mut self.owned, &old.owner);
        }
        replaced
    }

    pub fn remove(&mut self, addr: &InstanceAddr) -> Option<Entry> {
        let removed = self.entries.remove(addr as &dyn AddrParts);
        if let Some(old) = &removed
            && is_counted(addr, &old.owner)
        {
            disown(&mut self.owned, &old.owner);
        }
        removed
    }

    /// Keep the entries `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        let owned = &mut self.owned;
        self.entries.retain(|_, entry| {
            let kept = keep(entry);
            if !kept && is_counted(&entry.host.instance.addr(), &entry.owner) {
                disown(owned, &entry.owner);
            }
            kept
        });
    }

    /// How many entries `owner` has in this service.
    pub fn owned_by(&self, owner: &ClientId) -> usize {
        let counted = self.owned.get(owner).map_or(0, |n| *n as usize);
        let at_own_address = owner.http_address().map_or(0, |(ip, port)| {
            self.at(ip, port)
                .filter(|entry| &entry.owner == owner)
                .count()
        });
        counted + at_own_address
    }

    /// Remove every entry of `owner`; scans the service only when it owns something here.
    pub fn remove_owner(&mut self, owner: &ClientId) -> usize {
        let owned = self.owned_by(owner);
        if owned > 0 {
            self.retain(|entry| &entry.owner != owner);
        }
        owned
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

/// Whether `owner`'s entry at `addr` is in the per-owner counts (see `ServiceState::owned`).
fn is_counted(addr: &InstanceAddr, owner: &ClientId) -> bool {
    owner.http_address() != Some((addr.ip.as_str(), addr.port))
}

/// What entries are ordered and found by: an instance's `(ip, port, cluster)`.
pub trait AddrParts {
    fn parts(&self) -> (&str, u16, &str);
}

impl AddrParts for InstanceAddr {
    fn parts(&self) -> (&str, u16, &str) {
        (&self.ip, self.port, &self.cluster)
    }
}

/// An entry's key: the entry's own host, ordered by its address. A key of its own would hold
/// a second copy of the instance's ip and cluster, the largest part of a small instance.
#[derive(Debug, Clone)]
pub struct HostKey(Arc<Host>);

impl AddrParts for HostKey {
    fn parts(&self) -> (&str, u16, &str) {
        let instance = &self.0.instance;
        (&instance.ip, instance.port, &instance.cluster)
    }
}

impl PartialEq for dyn AddrParts + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn AddrParts + '_ {}

impl PartialOrd for dyn AddrParts + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn AddrParts + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl PartialEq for HostKey {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for HostKey {}

impl PartialOrd for HostKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HostKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl<'a> Borrow<dyn AddrParts + 'a> for HostKey {
    fn borrow(&self) -> &(dyn AddrParts + 'a) {
        self
    }
}

fn disown(owned: &mut HashMap<ClientId, u32>, owner: &ClientId) {
    if let Some(count) = owned.get_mut(owner) {
        *count -= 1;
        if *count == 0 {
            owned.remove(owner);
        }
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
    clients: Mutex<HashMap<ClientId, ClientServices>>,
}

impl Default for Registry {
    fn default() -> Self {
        // Start the beat clock before any instance is stamped, so no stamp saturates at 0.
        beat_epoch();
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

    pub fn clients(&self) -> MutexGuard<'_, HashMap<ClientId, ClientServices>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record that `owner` publishes in `key` (call while holding that service's shard lock,
    /// passing the service's shared key).
    pub fn index_add(&self, owner: &ClientId, key: &Arc<ServiceKey>) {
        if owner.is_persistent_ip_port() {
            return;
        }
        let mut clients = self.clients();
        match clients.get_mut(owner) {
            Some(services) => services.insert(key),
            None => {
                clients.insert(owner.clone(), ClientServices::One(Arc::clone(key)));
            }
        }
    }

    /// Forget that `owner` publishes in `key` when it owns nothing there any more (call while
    /// holding that service's shard lock, passing the service's state after the change).
    pub fn index_remove(&self, owner: &ClientId, key: &ServiceKey, state: Option<&ServiceState>) {
        if state.is_some_and(|s| s.owned_by(owner) > 0) {
            return;
        }
        let mut clients = self.clients();
        let emptied = clients
            .get_mut(owner)
            .is_some_and(|services| services.remove(key));
        if emptied {
            clients.remove(owner);
        }
    }

    /// Take a client out of the index; returns the services it may own instances in.
    pub fn take_client(&self, owner: &ClientId) -> Vec<Arc<ServiceKey>> {
        self.clients()
            .remove(owner)
            .map(ClientServices::into_vec)
            .unwrap_or_default()
    }
}

/// The services one client publishes in. Most clients (every v1 client, most gRPC ones)
/// publish in one service, which then costs no set; the set is boxed so that the index slot of
/// every such client is 16 bytes, not the 48 of an inline set.
#[derive(Debug, Clone)]
pub enum ClientServices {
    One(Arc<ServiceKey>),
    Many(Box<HashSet<Arc<ServiceKey>>>),
}

impl ClientServices {
    fn insert(&mut self, key: &Arc<ServiceKey>) {
        match self {
            ClientServices::One(only) if only == key => {}
            ClientServices::One(only) => {
                let set = HashSet::from([Arc::clone(only), Arc::clone(key)]);
                *self = ClientServices::Many(Box::new(set));
            }
            ClientServices::Many(set) => {
                set.insert(Arc::clone(key));
            }
        }
    }

    /// Remove `key`; returns whether none is left.
    fn remove(&mut self, key: &ServiceKey) -> bool {
        match self {
            ClientServices::One(only) => **only == *key,
            ClientServices::Many(set) => {
                set.remove(key);
                set.is_empty()
            }
        }
    }

    pub fn into_vec(self) -> Vec<Arc<ServiceKey>> {
        match self {
            ClientServices::One(only) => vec![only],
            ClientServices::Many(set) => set.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use nacos_core::{DEFAULT_CLUSTER, Instance};

    use super::*;
    use crate::services::naming::service_info::HostDefaults;

    fn entry(ip: &str, port: u16, owner: &ClientId) -> (InstanceAddr, Entry) {
        let defaults = HostDefaults {
            beat_interval: Duration::from_secs(5),
            beat_timeout: Duration::from_secs(15),
            delete_timeout: Duration::from_secs(30),
        };
        let host = Arc::new(Host::new(Instance::new(ip, port), &defaults));
        let addr = host.instance.addr();
        let entry = Entry {
            host,
            owner: owner.clone(),
            last_beat: BeatTime::now(),
        };
        (addr, entry)
    }

    /// Counting per owner must agree with the entries whichever way an owner is tracked: a
    /// connection by its count, an HTTP client at its own address by a range, and an HTTP
    /// client's copy from a peer that lists instances elsewhere (by its count again).
    #[test]
    fn owners_are_counted_exactly_however_they_are_tracked() {
        let mut state = ServiceState::new(&ServiceKey::new("public", "G", "s"), true);
        let conn = ClientId::connection("1700000000000_127.0.0.1_5000");
        let http = ClientId::ip_port("10.0.0.1", 80, true);
        for (ip, port, owner) in [
            ("10.0.0.5", 1, &conn),
            ("10.0.0.6", 1, &conn),
            ("10.0.0.1", 80, &http),
            ("10.0.0.9", 9, &http),
        ] {
            let (addr, entry) = entry(ip, port, owner);
            state.insert(addr, entry);
        }
        assert_eq!(state.owned_by(&conn), 2);
        assert_eq!(state.owned_by(&http), 2);
        assert_eq!(state.owned_by(&ClientId::ip_port("10.0.0.5", 1, true)), 0);

        // Re-registering the same address under another owner moves the count.
        let (addr, moved) = entry("10.0.0.6", 1, &http);
        state.insert(addr, moved);
        assert_eq!((state.owned_by(&conn), state.owned_by(&http)), (1, 3));

        assert_eq!(state.remove_owner(&http), 3);
        assert_eq!(state.owned_by(&http), 0);
        assert_eq!(state.len(), 1);
        state.remove(&InstanceAddr::new("10.0.0.5", 1, DEFAULT_CLUSTER));
        assert_eq!(state.owned_by(&conn), 0);
        assert!(state.owned.is_empty(), "no stale counts: {:?}", state.owned);
    }

    /// An entry is keyed by its own host: a replaced host must leave nothing of the old one
    /// behind (the key held it), and lookups by address and by ip:port still find the entry.
    #[test]
    fn replacing_a_host_keys_the_entry_anew() {
        let mut state = ServiceState::new(&ServiceKey::new("public", "G", "s"), true);
        let owner = ClientId::ip_port("10.0.0.1", 80, true);
        let (addr, first) = entry("10.0.0.1", 80, &owner);
        let old_host = Arc::clone(&first.host);
        state.insert(addr.clone(), first);
        assert_eq!(
            Arc::strong_count(&old_host),
            3,
            "the test, the key and the entry"
        );

        let healthy_off = Arc::new(old_host.with_healthy(false));
        state.replace_host(&addr, Arc::clone(&healthy_off));
        assert_eq!(
            Arc::strong_count(&old_host),
            1,
            "neither key nor entry keeps the old host"
        );
        let found = state.get(&addr).expect("found by address");
        assert!(Arc::ptr_eq(&found.host, &healthy_off));
        assert_eq!(state.at("10.0.0.1", 80).count(), 1);
        assert_eq!(state.owned_by(&owner), 1);

        // A second cluster at the same ip:port sorts next to it and is found by the range.
        let mut other = Instance::new("10.0.0.1", 80);
        other.cluster = "B".into();
        let defaults = HostDefaults {
            beat_interval: Duration::from_secs(5),
            beat_timeout: Duration::from_secs(15),
            delete_timeout: Duration::from_secs(30),
        };
        let host = Arc::new(Host::new(other, &defaults));
        let entry_b = Entry {
            host: Arc::clone(&host),
            owner: owner.clone(),
            last_beat: BeatTime::now(),
        };
        state.insert(host.instance.addr(), entry_b);
        assert_eq!(state.at("10.0.0.1", 80).count(), 2);
        assert_eq!(state.at("10.0.0.1", 81).count(), 0);
        assert_eq!(state.at("10.0.0.10", 80).count(), 0);
        assert_eq!(state.owned_by(&owner), 2);
    }
}
