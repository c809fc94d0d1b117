//! Config reads through a cache, writes through the repository, change events to listeners.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use moka::sync::Cache;
use nacos_core::{
    ConfigItem, ConfigKey, ConfigPublish, ConfigRepo, Gray, GrayConfig, GrayPublish, Operator,
    RepoError, RepoResult,
};

use super::hub::{ListenerHub, Subscription};

/// Everything stored for one key: the formal config and its gray variants. Cached as a unit so
/// one lookup answers a read or a listener check.
#[derive(Debug, Clone, Default)]
pub struct KeyState {
    pub formal: Option<ConfigItem>,
    pub grays: Vec<GrayConfig>,
    /// An edge's rendering of the formal config (the v1 HTTP answer: body and headers), made on
    /// the first read and reused until the key changes: the config GET hot path then only
    /// clones reference counts.
    pub formal_rendered: RenderMemo,
}

/// A memo an edge fills with its rendering of a cached value. The service does not know the
/// rendering's type; it only drops the memo with the cached version it belongs to.
#[derive(Default)]
pub struct RenderMemo(std::sync::OnceLock<Arc<dyn std::any::Any + Send + Sync>>);

impl RenderMemo {
    /// The memo, rendered by `render` on first use. `None` when another type was stored
    /// first (one edge per memo; the caller then renders afresh).
    pub fn get_or_init<T: std::any::Any + Send + Sync>(
        &self,
        render: impl FnOnce() -> T,
    ) -> Option<&T> {
        self.0
            .get_or_init(|| Arc::new(render()))
            .downcast_ref::<T>()
    }
}

impl Clone for RenderMemo {
    fn clone(&self) -> Self {
        let memo = RenderMemo::default();
        if let Some(value) = self.0.get() {
            let _ = memo.0.set(Arc::clone(value));
        }
        memo
    }
}

impl std::fmt::Debug for RenderMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "RenderMemo(filled)"
        } else {
            "RenderMemo(empty)"
        })
    }
}

/// The variant a client gets.
#[derive(Debug, Clone, Copy)]
pub enum Selected<'a> {
    Formal(&'a ConfigItem),
    Beta(&'a GrayConfig),
    Tag(&'a GrayConfig),
}

impl<'a> Selected<'a> {
    pub fn content(self) -> &'a str {
        match self {
            Selected::Formal(c) => &c.content,
            Selected::Beta(g) | Selected::Tag(g) => &g.content,
        }
    }

    pub fn md5(self) -> &'a str {
        match self {
            Selected::Formal(c) => &c.md5,
            Selected::Beta(g) | Selected::Tag(g) => &g.md5,
        }
    }

    pub fn modified_ms(self) -> i64 {
        match self {
            Selected::Formal(c) => c.modified_ms,
            Selected::Beta(g) | Selected::Tag(g) => g.modified_ms,
        }
    }

    pub fn encrypted_data_key(self) -> &'a str {
        match self {
            Selected::Formal(c) => &c.encrypted_data_key,
            Selected::Beta(g) | Selected::Tag(g) => &g.encrypted_data_key,
        }
    }
}

impl KeyState {
    fn weight(&self) -> u32 {
        let bytes = self.formal.as_ref().map_or(0, |c| c.content.len())
            + self.grays.iter().map(|g| g.content.len()).sum::<usize>()
            + 256;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    pub fn beta(&self) -> Option<&GrayConfig> {
        self.grays.iter().find(|g| g.gray == Gray::Beta)
    }

    pub fn tag(&self, tag: &str) -> Option<&GrayConfig> {
        self.grays
            .iter()
            .find(|g| matches!(&g.gray, Gray::Tag(t) if t == tag))
    }

    /// Nacos's choice for a read: the beta when the client's IP is listed; else the tag named
    /// by the request (an explicit tag that does not exist reads as missing); else the tag named
    /// by `Vipserver-Tag` when it exists; else the formal config.
    pub fn select(
        &self,
        client_ip: &str,
        explicit_tag: Option<&str>,
        auto_tag: Option<&str>,
    ) -> Option<Selected<'_>> {
        if let Some(beta) = self.beta()
            && beta.beta_ips.iter().any(|ip| ip == client_ip)
        {
            return Some(Selected::Beta(beta));
        }
        if let Some(tag) = explicit_tag {
            return self.tag(tag).map(Selected::Tag);
        }
        if let Some(tagged) = auto_tag.and_then(|t| self.tag(t)) {
            return Some(Selected::Tag(tagged));
        }
        self.formal.as_ref().map(Selected::Formal)
    }

    /// The md5 a listener compares against: as [`KeyState::select`] with the auto tag, `""` when
    /// nothing is stored.
    pub fn listen_md5(&self, client_ip: &str, auto_tag: Option<&str>) -> &str {
        self.select(client_ip, None, auto_tag)
            .map_or("", |s| s.md5())
    }
}

/// Write generations, one counter per shard of keys. A shard's counter is bumped after a write
/// of one of its keys commits and before the key is evicted; a cache fill that saw the counter
/// move while it loaded does not insert, so a stale load never outlives a write. Sharded so
/// that a steady stream of writes to other keys does not keep a key out of the cache.
#[derive(Debug)]
struct Generations([AtomicU64; 64]);

impl Default for Generations {
    fn default() -> Self {
        Generations(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Generations {
    fn of(&self, key: &ConfigKey) -> &AtomicU64 {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        &self.0[(hash % self.0.len() as u64) as usize]
    }

    fn read(&self, key: &ConfigKey) -> u64 {
        self.of(key).load(Ordering::SeqCst)
    }

    fn bump(&self, key: &ConfigKey) {
        self.of(key).fetch_add(1, Ordering::SeqCst);
    }

    fn bump_all(&self) {
        for counter in &self.0 {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[derive(Debug)]
pub struct ConfigService {
    repo: Arc<dyn ConfigRepo>,
    cache: Cache<ConfigKey, Arc<KeyState>>,
    write_generation: Generations,
    /// Keys whose last write failed with `Unavailable` (storage down: the write may or may not
    /// have landed). Their cached copy is kept so reads keep working through the outage, and
    /// is checked against storage on the next read that can reach it.
    suspect: Mutex<HashSet<ConfigKey>>,
    hub: ListenerHub,
    /// Keys written through this node (not changes learnt from peers), for cluster sync.
    local_writes: tokio::sync::broadcast::Sender<ConfigKey>,
    /// Over an external database: changed keys, to be loaded again at once (see `warm`).
    reload: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<ConfigKey>>,
}

impl ConfigService {
    pub fn new(repo: Arc<dyn ConfigRepo>, cache_bytes: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(cache_bytes)
            .weigher(|_k: &ConfigKey, v: &Arc<KeyState>| v.weight())
            .build();
        Self {
            repo,
            cache,
            write_generation: Generations::default(),
            suspect: Mutex::new(HashSet::new()),
            hub: ListenerHub::default(),
            // Small: only cluster sync reads it, and a lagging reader falls back to its scans.
            local_writes: tokio::sync::broadcast::Sender::new(256),
            reload: std::sync::OnceLock::new(),
        }
    }

    /// From now on, send every changed key to `reload` after forgetting it.
    pub fn reload_after_change(&self, reload: tokio::sync::mpsc::UnboundedSender<ConfigKey>) {
        let _ = self.reload.set(reload);
    }

    /// Whether the cache holds `key`.
    pub fn is_cached(&self, key: &ConfigKey) -> bool {
        self.cache.contains_key(key)
    }

    /// How many keys the cache holds.
    pub fn cached_keys(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    /// Keys written through this node, as they commit (or may have: outcome unknown). A
    /// lagging receiver should treat everything as changed.
    pub fn subscribe_local_writes(&self) -> tokio::sync::broadcast::Receiver<ConfigKey> {
        self.local_writes.subscribe()
    }

    /// A write through this node changed `key`: forget, wake listeners, tell cluster sync.
    fn wrote(&self, key: &ConfigKey) {
        self.changed(key);
        let _ = self.local_writes.send(key.clone());
    }

    pub fn repo(&self) -> &Arc<dyn ConfigRepo> {
        &self.repo
    }

    pub fn hub(&self) -> &ListenerHub {
        &self.hub
    }

    /// The stored state of a key, from the cache when possible.
    ///
    /// A cached key whose last write failed with `Unavailable` is re-read from storage; while
    /// storage stays unavailable the cached copy is served, so a storage outage never turns a
    /// cached read into an error.
    pub async fn state(&self, key: &ConfigKey) -> RepoResult<Arc<KeyState>> {
        if let Some(state) = self.cache.get(key) {
            if !self.is_suspect(key) {
                return Ok(state);
            }
            return match self.load(key).await {
                Ok(fresh) => {
                    self.lock_suspect().remove(key);
                    let same = fresh.formal == state.formal && fresh.grays == state.grays;
                    if !same {
                        // The write that failed did land after all: announce it.
                        self.changed(key);
                    }
                    self.cache.insert(key.clone(), Arc::clone(&fresh));
                    Ok(fresh)
                }
                Err(RepoError::Unavailable(_)) => Ok(state),
                Err(e) => Err(e),
            };
        }
        let generation = self.write_generation.read(key);
        let state = self.load(key).await?;
        if self.write_generation.read(key) == generation {
            self.cache.insert(key.clone(), Arc::clone(&state));
        }
        Ok(state)
    }

    /// The stored state of a key read from storage, never from the cache (linearizable reads).
    pub async fn state_uncached(&self, key: &ConfigKey) -> RepoResult<Arc<KeyState>> {
        self.load(key).await
    }

    async fn load(&self, key: &ConfigKey) -> RepoResult<Arc<KeyState>> {
        let formal = self.repo.get(key).await?;
        let grays = self.repo.list_grays(key).await?;
        Ok(Arc::new(KeyState {
            formal,
            grays,
            formal_rendered: Default::default(),
        }))
    }

    fn lock_suspect(&self) -> std::sync::MutexGuard<'_, HashSet<ConfigKey>> {
        self.suspect.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_suspect(&self, key: &ConfigKey) -> bool {
        let suspect = self.lock_suspect();
        !suspect.is_empty() && suspect.contains(key)
    }

    pub async fn publish(&self, publish: ConfigPublish) -> RepoResult<ConfigItem> {
        let key = publish.key.clone();
        let result = self.repo.publish(publish).await;
        self.after_write(&key, &result);
        result
    }

    pub async fn publish_gray(&self, gray: Gray, publish: GrayPublish) -> RepoResult<GrayConfig> {
        let key = publish.key.clone();
        let result = self.repo.publish_gray(gray, publish).await;
        self.after_write(&key, &result);
        result
    }

    pub async fn remove(
        &self,
        key: &ConfigKey,
        operator: &Operator,
    ) -> RepoResult<Option<ConfigItem>> {
        let result = self.repo.remove(key, operator).await;
        self.after_write(key, &result);
        result
    }

    pub async fn remove_gray(
        &self,
        key: &ConfigKey,
        gray: &Gray,
    ) -> RepoResult<Option<GrayConfig>> {
        let result = self.repo.remove_gray(key, gray).await;
        self.after_write(key, &result);
        result
    }

    pub async fn remove_by_ids(
        &self,
        ids: &[u64],
        operator: &Operator,
    ) -> RepoResult<Vec<ConfigItem>> {
        let removed = self.repo.remove_by_ids(ids, operator).await;
        // Without the removed rows we cannot tell which keys went; drop the whole cache (or,
        // while storage is unavailable, keep it and re-check every key on its next read).
        match &removed {
            Ok(items) => items.iter().for_each(|item| self.wrote(&item.key)),
            Err(RepoError::Unavailable(_)) => {
                self.write_generation.bump_all();
                let mut suspect = self.lock_suspect();
                suspect.extend(self.cache.iter().map(|(k, _)| k.as_ref().clone()));
            }
            Err(_) => {
                self.write_generation.bump_all();
                self.cache.invalidate_all();
            }
        }
        removed
    }

    /// Forget and announce a key after a write, unless the write was refused outright (then
    /// nothing changed). A write whose outcome is unknown (storage errors) counts as a change,
    /// except `Unavailable`: storage is down, so the cached copy is kept (reads keep working)
    /// and marked to be re-checked on the next read that reaches storage.
    fn after_write<T>(&self, key: &ConfigKey, result: &RepoResult<T>) {
        match result {
            Err(
                RepoError::PreconditionFailed(_)
                | RepoError::InvalidArgument(_)
                | RepoError::AlreadyExists(_)
                | RepoError::NotFound(_)
                | RepoError::Unsupported(_),
            ) => {}
            Err(RepoError::Unavailable(_)) => {
                // A fill racing with this write must not insert what it read before it.
                self.write_generation.bump(key);
                self.lock_suspect().insert(key.clone());
            }
            Ok(_) => {
                self.lock_suspect().remove(key);
                self.wrote(key);
            }
            Err(_) => self.wrote(key),
        }
    }

    /// A key changed (here, or on another node sharing the database): forget the cached copy
    /// and wake its listeners. Called even after a failed write, whose outcome may be unknown.
    pub fn changed(&self, key: &ConfigKey) {
        self.write_generation.bump(key);
        self.cache.invalidate(key);
        self.hub.notify(key);
        if let Some(reload) = self.reload.get() {
            let _ = reload.send(key.clone());
        }
    }

    /// Forget every cached key (the store changed under us in ways we cannot name, e.g. a
    /// replicated snapshot). Listeners are not woken here; callers name the keys they can.
    pub fn forget_all(&self) {
        self.write_generation.bump_all();
        self.cache.invalidate_all();
    }

    pub fn subscribe(&self, keys: Vec<ConfigKey>) -> Subscription {
        self.hub.subscribe(keys, 16)
    }

    /// [`Self::subscribe`] for a v1 long poll, listed as a listener while it waits.
    pub fn subscribe_poller(&self, poller: super::hub::Poller) -> Subscription {
        self.hub.subscribe_poller(poller, 16)
    }
}
