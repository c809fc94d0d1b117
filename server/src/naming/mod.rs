//! The naming service: one implementation behind every naming edge (v1 HTTP now, v2 HTTP and
//! gRPC later). Edges parse and validate their wire format, call a method here, and serialise
//! the answer; the rules live here.
//!
//! # Layout
//! - [`registry`]: the in-memory state (services, instances with their owning client).
//! - [`service_info`]: the selection rules and the `ServiceInfo` value every edge serialises.
//! - [`health`]: v1 beats and the expiry sweep (unhealthy, then removed, then empty services).
//! - [`push`]: UDP push to v1 subscribers.
//!
//! # Model
//! - A service key is (namespace, group, name). Each service is ephemeral or persistent, fixed
//!   when it is created; instances of the other kind are refused with 400, as in Nacos 2.x.
//! - Ephemeral instances live only in memory and are owned by a client ([`ClientId`]): a v1 HTTP
//!   client `ip:port#true` that must keep beating, or (later) a gRPC connection. A client holds
//!   at most one instance per service through [`NamingService::register_instance`] (a new
//!   registration replaces its previous one, as Nacos 2.x does) or a set through
//!   [`NamingService::batch_register`]. [`NamingService::remove_client`] drops all of them.
//! - Persistent instances and service settings are written through [`InstanceRepo`] first and
//!   mirrored in memory; [`NamingService::load`] reads them back at start.
//! - Every change to a service's instances or settings sends its key on a broadcast channel
//!   ([`NamingService::subscribe_changes`]); the UDP pusher consumes it now, gRPC push later.
//!
//! # Deliberate differences from Nacos 2.x
//! - Protect threshold applies when a service has stored settings. The repository stores a
//!   settings row for every service holding persistent instances, so protection also applies to
//!   those (Nacos 2.x applies it only after an explicit create/update of the service).
//! - `PUT /v1/ns/instance` on a missing instance is a 400 (Nacos 2.x stores a metadata overlay
//!   for it); `PATCH` also applies `healthy` (2.x ignores it; 1.x applied it).
//! - Services with stored settings are never cleaned up when empty; only ephemeral services
//!   without settings are (Nacos 2.x also drops explicitly created empty services).
//! - Label selectors are stored and shown but not evaluated; a first UDP subscription does not
//!   trigger an immediate push (the `instance/list` answer already carries the data).

pub mod distro;
pub mod forward;
pub mod health;
pub mod push;
pub mod registry;
pub mod service_info;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nacos_core::validate::{self, ParamError};
use nacos_core::{
    Instance, InstanceRepo, RepoError, RepoResult, ServiceKey, ServiceMeta, now_millis,
};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Settings;
use crate::settings::NamingSettings;

pub use health::{BEAT_NOT_FOUND, BEAT_OK, Beat, BeatOutcome};
pub use push::{PushCounters, UdpSubscription, push_capable};
pub use registry::ClientId;
use registry::{Entry, InstanceAddr, Registry, ServiceState};
pub use service_info::{Host, HostDefaults, HostView, Selection, ServiceInfo, WireStyle};
use service_info::{RenderKey, Rendered};

/// Why a naming call failed. Edges map these onto their codes (v1: the HTTP status).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NamingError {
    /// A parameter breaks a rule; names the parameter (400).
    #[error(transparent)]
    Param(#[from] ParamError),
    /// Nacos's `INVALID_PARAM` for a state conflict: wrong service kind, service exists, service
    /// not found, service not empty (400).
    #[error("{0}")]
    Invalid(String),
    /// Nacos's `NOT_FOUND` (404): no such instance.
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

pub type NamingResult<T> = Result<T, NamingError>;

/// Timings that are not in [`NamingSettings`], read from Nacos's own property names.
#[derive(Debug, Clone)]
struct Timings {
    /// `nacos.naming.push.pushTaskDelay` (500 ms): changes within this window are pushed once.
    push_delay: Duration,
    /// A UDP subscriber is dropped when it has not listed the service for this long:
    /// 3 × cacheMillis (30 s by default). v1 clients re-list every cacheMillis, so a live client
    /// is never dropped, and a dead one stops receiving packets within half a minute. (Nacos 2.x
    /// keeps the `ip:port#true` subscriber client for 180 s; 1.x for about 10 s.)
    udp_subscriber_ttl: Duration,
    /// `nacos.naming.clean.empty-service.expired-time` (60 s): an ephemeral service without
    /// instances or stored settings is forgotten after this long.
    empty_service_ttl: Duration,
}

impl Timings {
    fn from_settings(settings: &Settings) -> Self {
        let props = &settings.properties;
        let ms = |key: &str, default: u64| {
            Duration::from_millis(props.parse_or(key, default, "milliseconds").unwrap_or_else(
                |e| {
                    tracing::warn!("{e}; using {default} ms");
                    default
                },
            ))
        };
        Timings {
            push_delay: ms("nacos.naming.push.pushTaskDelay", 500),
            udp_subscriber_ttl: Duration::from_millis(
                settings
                    .naming
                    .push_cache_millis
                    .saturating_mul(3)
                    .max(1000),
            ),
            empty_service_ttl: ms("nacos.naming.clean.empty-service.expired-time", 60_000),
        }
    }
}

/// Nacos's defaults for the instance-timing check (independent of the server's settings, as in
/// Nacos's `checkInstanceIsLegal`).
const CHECK_BEAT_INTERVAL_MS: u64 = 5_000;
const CHECK_BEAT_TIMEOUT_MS: u64 = 15_000;
const CHECK_DELETE_TIMEOUT_MS: u64 = 30_000;

/// Changes kept for slow change subscribers before they see `Lagged`.
const CHANGE_CAPACITY: usize = 4096;

/// Fields of `PATCH /v1/ns/instance`: only those present change; metadata is merged.
#[derive(Debug, Clone, Default)]
pub struct InstancePatch {
    pub metadata: Option<BTreeMap<String, String>>,
    pub weight: Option<f64>,
    pub healthy: Option<bool>,
    pub enabled: Option<bool>,
}

/// New service settings (`PUT /v1/ns/service`); clusters and kind are kept.
#[derive(Debug, Clone)]
pub struct ServiceUpdate {
    pub protect_threshold: f32,
    pub metadata: BTreeMap<String, String>,
    /// Selector JSON (`{"type":"none"}` by default).
    pub selector: String,
}

/// A service as `GET /v1/ns/service` shows it.
#[derive(Debug, Clone)]
pub struct ServiceDetail {
    pub ephemeral: bool,
    /// Stored settings, or the defaults when none are stored.
    pub meta: ServiceMeta,
    /// Clusters of the current instances and of the stored settings, sorted.
    pub clusters: Vec<String>,
    pub instance_count: usize,
}

/// Counts for `/v1/ns/operator/metrics`.
#[derive(Debug, Clone, Default)]
pub struct NamingMetrics {
    pub service_count: usize,
    pub instance_count: usize,
    pub subscribe_count: usize,
    pub client_count: usize,
    pub connection_based_client_count: usize,
    pub ephemeral_ip_port_client_count: usize,
    pub persistent_ip_port_client_count: usize,
}

/// One instance with the client that publishes it (operator views: `/v2/ns/client/*`).
#[derive(Debug, Clone)]
pub struct Publication {
    pub key: ServiceKey,
    pub owner: ClientId,
    pub host: Arc<Host>,
    /// Epoch millis of its registration or last beat.
    pub updated_ms: i64,
}

/// Epoch millis of a past `Instant`.
fn epoch_ms(at: Instant) -> i64 {
    let ago = i64::try_from(at.elapsed().as_millis()).unwrap_or(i64::MAX);
    now_millis().saturating_sub(ago)
}

fn publications_of(
    key: &ServiceKey,
    state: &ServiceState,
    owner: Option<&ClientId>,
) -> impl Iterator<Item = Publication> {
    state
        .entries
        .values()
        .filter(move |e| owner.is_none_or(|o| &e.owner == o))
        .map(|e| Publication {
            key: key.clone(),
            owner: e.owner.clone(),
            host: Arc::clone(&e.host),
            updated_ms: epoch_ms(e.last_beat),
        })
}

#[derive(Debug)]
pub struct NamingService {
    settings: NamingSettings,
    timings: Timings,
    /// Timings of hosts whose metadata does not override them.
    defaults: HostDefaults,
    /// Persistent instances and service settings.
    repo: Arc<dyn InstanceRepo>,
    registry: Registry,
    /// "Service changed" events: UDP push now, gRPC push later.
    changes: broadcast::Sender<ServiceKey>,
    /// Serialises writes that go through the repository, so memory follows the same order.
    persist: tokio::sync::Mutex<()>,
    /// UDP subscribers, pending acks and push counters.
    push: push::UdpPush,
    /// Cluster mode: copies of clients other nodes own (distro).
    pub(crate) remote: distro::RemoteClients,
}

enum Modified {
    Done,
    NoService,
    NoInstance,
}

fn kind_mismatch(key: &ServiceKey, service_ephemeral: bool) -> NamingError {
    if service_ephemeral {
        NamingError::Invalid(format!(
            "Current service {} is ephemeral service, can't register persistent instance.",
            key.grouped_name()
        ))
    } else {
        NamingError::Invalid(format!(
            "Current service {} is persistent service, can't register ephemeral instance.",
            key.grouped_name()
        ))
    }
}

fn service_not_found(key: &ServiceKey) -> NamingError {
    NamingError::Invalid(format!(
        "service not found, namespace: {}, service: {}",
        key.namespace,
        key.grouped_name()
    ))
}

/// Nacos's instance rules, for every edge: ip, cluster, weight, and the `preserved.*` timings
/// (numbers; the beat interval may not exceed the beat timeout or the delete timeout).
pub fn check_instance(instance: &Instance) -> Result<(), ParamError> {
    validate::ip(&instance.ip)?;
    validate::cluster_name("clusterName", &instance.cluster)?;
    validate::weight(instance.weight)?;
    let ms = |key: &str, default: u64| match service_info::metadata_ms(&instance.metadata, key) {
        None => Ok(default),
        Some(Ok(v)) => Ok(v),
        Some(Err(())) => Err(ParamError::new(
            "metadata",
            format!("metadata '{key}' must be a number of milliseconds"),
        )),
    };
    let interval = ms(service_info::META_BEAT_INTERVAL, CHECK_BEAT_INTERVAL_MS)?;
    let timeout = ms(service_info::META_BEAT_TIMEOUT, CHECK_BEAT_TIMEOUT_MS)?;
    let delete = ms(service_info::META_DELETE_TIMEOUT, CHECK_DELETE_TIMEOUT_MS)?;
    if timeout < interval || delete < interval {
        return Err(ParamError::new(
            "metadata",
            "invalid metadata: Instance 'heart beat interval' must less than 'heart beat timeout' \
             and 'ip delete timeout'.",
        ));
    }
    Ok(())
}

impl NamingService {
    pub fn new(settings: &Settings, repo: Arc<dyn InstanceRepo>) -> Arc<Self> {
        let (changes, _) = broadcast::channel(CHANGE_CAPACITY);
        let naming = &settings.naming;
        Arc::new(Self {
            settings: naming.clone(),
            timings: Timings::from_settings(settings),
            defaults: HostDefaults {
                beat_interval: naming.beat_interval,
                beat_timeout: naming.beat_timeout,
                delete_timeout: naming.delete_timeout,
            },
            repo,
            registry: Registry::default(),
            changes,
            persist: tokio::sync::Mutex::new(()),
            push: push::UdpPush::new(),
            remote: distro::RemoteClients::default(),
        })
    }

    /// Load persistent services and instances from the repository.
    pub async fn load(&self) -> RepoResult<()> {
        let services = self.repo.list_services().await?;
        let count = services.len();
        for meta in services {
            let key = meta.key.clone();
            let instances = self.repo.list_instances(&key).await?;
            let now = Instant::now();
            let mut shard = self.registry.write(&key);
            let state = shard
                .entry(key.clone())
                .or_insert_with(|| ServiceState::new(meta.ephemeral));
            state.ephemeral = meta.ephemeral;
            for instance in instances {
                let (addr, entry) = self.persistent_entry(&key, instance, now);
                state.entries.insert(addr, entry);
            }
            state.meta = Some(Arc::new(meta));
            state.touch_empty(now);
        }
        tracing::debug!(services = count, "loaded persistent naming data");
        Ok(())
    }

    /// A stored instance as held in memory: owned by `ip:port#false`, as Nacos names it.
    fn persistent_entry(
        &self,
        key: &ServiceKey,
        instance: Instance,
        now: Instant,
    ) -> (InstanceAddr, Entry) {
        let owner = ClientId::ip_port(&instance.ip, instance.port, false);
        let host = Arc::new(Host::new(key, instance, &self.defaults));
        (
            InstanceAddr::of(&host),
            Entry {
                host,
                owner,
                last_beat: now,
            },
        )
    }

    /// Re-read one service's stored settings and persistent instances: another node changed
    /// them in the replicated store. Ephemeral instances are left alone.
    pub async fn reload_persistent(&self, key: &ServiceKey) {
        let _guard = self.persist.lock().await;
        let loaded = match self.repo.get_service(key).await {
            Ok(None) => None,
            Ok(Some(meta)) => match self.repo.list_instances(key).await {
                Ok(instances) => Some((meta, instances)),
                Err(e) => {
                    tracing::warn!(service = %key.grouped_name(), "cannot reload persistent instances: {e}");
                    return;
                }
            },
            Err(e) => {
                tracing::warn!(service = %key.grouped_name(), "cannot reload a service: {e}");
                return;
            }
        };
        let now = Instant::now();
        {
            let mut shard = self.registry.write(key);
            match loaded {
                None => {
                    let gone = shard.get_mut(key).is_some_and(|state| {
                        state
                            .entries
                            .retain(|_, e| !e.owner.is_persistent_ip_port());
                        state.meta = None;
                        state.touch_empty(now);
                        state.entries.is_empty()
                    });
                    if gone {
                        shard.remove(key);
                    }
                }
                Some((meta, instances)) => {
                    let state = shard
                        .entry(key.clone())
                        .or_insert_with(|| ServiceState::new(meta.ephemeral));
                    state.ephemeral = meta.ephemeral;
                    state
                        .entries
                        .retain(|_, e| !e.owner.is_persistent_ip_port());
                    for instance in instances {
                        let (addr, entry) = self.persistent_entry(key, instance, now);
                        state.entries.insert(addr, entry);
                    }
                    state.meta = Some(Arc::new(meta));
                    state.touch_empty(now);
                }
            }
        }
        self.notify(key);
    }

    /// [`Self::reload_persistent`] for every stored service and every service held with
    /// stored settings (a replicated snapshot replaced the store).
    pub async fn reload_all_persistent(&self) -> RepoResult<()> {
        let mut keys: HashSet<ServiceKey> = self
            .repo
            .list_services()
            .await?
            .into_iter()
            .map(|m| m.key)
            .collect();
        self.registry.for_each_shard(|shard| {
            keys.extend(
                shard
                    .iter()
                    .filter(|(_, s)| s.meta.is_some())
                    .map(|(k, _)| k.clone()),
            );
        });
        for key in keys {
            self.reload_persistent(&key).await;
        }
        Ok(())
    }

    /// Start background tasks (expiry sweep, UDP push); they stop when `shutdown` fires.
    pub fn start(self: &Arc<Self>, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
        let mut tasks = vec![tokio::spawn(health::sweep_task(
            Arc::clone(self),
            shutdown.clone(),
        ))];
        match push::bind_socket() {
            Ok(socket) => tasks.push(tokio::spawn(push::run(
                Arc::clone(self),
                socket,
                self.subscribe_changes(),
                shutdown,
            ))),
            Err(e) => tracing::warn!("UDP push disabled: cannot bind a UDP socket: {e}"),
        }
        tasks
    }

    /// Keys of services whose instances or settings changed, as they change.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<ServiceKey> {
        self.changes.subscribe()
    }

    pub fn settings(&self) -> &NamingSettings {
        &self.settings
    }

    /// A service's served state changed: drop its rendered answers and tell the pushers.
    /// Every write that changes what a subscriber sees calls this after releasing its lock.
    fn notify(&self, key: &ServiceKey) {
        if let Some(state) = self.registry.read(key).get(key) {
            state.forget_rendered();
        }
        // No receiver is fine: nobody is interested yet.
        let _ = self.changes.send(key.clone());
    }

    // -----------------------------------------------------------------------------------------
    // Instances

    /// Register an instance. Ephemeral instances belong to `owner` and replace what `owner`
    /// published in this service before; persistent ones (`instance.ephemeral == false`) are
    /// stored through the repository (their owner is always `ip:port#false`).
    pub async fn register_instance(
        &self,
        key: &ServiceKey,
        instance: Instance,
        owner: &ClientId,
    ) -> NamingResult<()> {
        check_instance(&instance)?;
        if instance.ephemeral {
            self.put_ephemeral(key, vec![instance], owner)
        } else {
            self.register_persistent(key, instance).await
        }
    }

    /// Replace everything `owner` publishes in a service with `instances` (all treated as
    /// ephemeral; an empty list deregisters). gRPC `BatchInstanceRequest`.
    pub fn batch_register(
        &self,
        key: &ServiceKey,
        instances: Vec<Instance>,
        owner: &ClientId,
    ) -> NamingResult<()> {
        let mut instances = instances;
        for instance in &mut instances {
            instance.ephemeral = true;
            check_instance(instance)?;
        }
        self.put_ephemeral(key, instances, owner)
    }

    fn put_ephemeral(
        &self,
        key: &ServiceKey,
        instances: Vec<Instance>,
        owner: &ClientId,
    ) -> NamingResult<()> {
        let hosts: Vec<Arc<Host>> = instances
            .into_iter()
            .map(|i| Arc::new(Host::new(key, i, &self.defaults)))
            .collect();
        let now = Instant::now();
        let changed = {
            let mut shard = self.registry.write(key);
            if hosts.is_empty() && !shard.contains_key(key) {
                return Ok(());
            }
            let state = shard
                .entry(key.clone())
                .or_insert_with(|| ServiceState::new(true));
            if !state.ephemeral {
                return Err(kind_mismatch(key, false));
            }
            let addrs: HashSet<InstanceAddr> = hosts.iter().map(|h| InstanceAddr::of(h)).collect();
            let before = state.entries.len();
            state
                .entries
                .retain(|addr, e| &e.owner != owner || addrs.contains(addr));
            let mut changed = state.entries.len() != before;
            for host in hosts {
                let addr = InstanceAddr::of(&host);
                match state.entries.get_mut(&addr) {
                    Some(e) if &e.owner == owner && *e.host == *host => e.last_beat = now,
                    _ => {
                        state.entries.insert(
                            addr,
                            Entry {
                                host,
                                owner: owner.clone(),
                                last_beat: now,
                            },
                        );
                        changed = true;
                    }
                }
            }
            state.touch_empty(now);
            if addrs.is_empty() {
                self.registry.index_remove(owner, key, Some(state));
            } else {
                self.registry.index_add(owner, key);
            }
            changed
        };
        if changed {
            self.notify(key);
        }
        Ok(())
    }

    /// Make sure the service exists in memory with the given kind before a repository write,
    /// so a concurrent registration of the other kind is refused. Returns whether it was new.
    fn reserve(&self, key: &ServiceKey, ephemeral: bool) -> NamingResult<bool> {
        let mut shard = self.registry.write(key);
        match shard.get(key) {
            Some(s) if s.ephemeral != ephemeral => Err(kind_mismatch(key, s.ephemeral)),
            Some(_) => Ok(false),
            None => {
                shard.insert(key.clone(), ServiceState::new(ephemeral));
                Ok(true)
            }
        }
    }

    /// Undo [`Self::reserve`] after a failed repository write.
    fn drop_reservation(&self, key: &ServiceKey) {
        let mut shard = self.registry.write(key);
        if shard
            .get(key)
            .is_some_and(|s| s.entries.is_empty() && s.meta.is_none())
        {
            shard.remove(key);
        }
    }

    async fn register_persistent(&self, key: &ServiceKey, instance: Instance) -> NamingResult<()> {
        let _guard = self.persist.lock().await;
        let created = self.reserve(key, false)?;
        if let Err(e) = self.repo.register_instance(key, instance.clone()).await {
            if created {
                self.drop_reservation(key);
            }
            return Err(match e {
                RepoError::PreconditionFailed(_) => kind_mismatch(key, true),
                other => other.into(),
            });
        }
        let now = Instant::now();
        let (addr, entry) = self.persistent_entry(key, instance, now);
        {
            let mut shard = self.registry.write(key);
            let state = shard
                .entry(key.clone())
                .or_insert_with(|| ServiceState::new(false));
            // The repository created the service row if it was missing.
            if state.meta.is_none() {
                state.meta = Some(Arc::new(ServiceMeta::new(key.clone(), false)));
            }
            state.entries.insert(addr, entry);
            state.touch_empty(now);
        }
        self.notify(key);
        Ok(())
    }

    /// Deregister. Ephemeral: remove what `owner` publishes in the service (the instance body is
    /// not matched, as Nacos 2.x). Persistent: remove `(ip, port, cluster)` from the repository.
    /// Unknown services, clients and instances are ignored.
    pub async fn deregister_instance(
        &self,
        key: &ServiceKey,
        instance: &Instance,
        owner: &ClientId,
    ) -> NamingResult<()> {
        if instance.ephemeral {
            let changed = {
                let mut shard = self.registry.write(key);
                let Some(state) = shard.get_mut(key) else {
                    return Ok(());
                };
                if !state.ephemeral {
                    return Ok(());
                }
                let before = state.entries.len();
                state.entries.retain(|_, e| &e.owner != owner);
                state.touch_empty(Instant::now());
                self.registry.index_remove(owner, key, Some(state));
                state.entries.len() != before
            };
            if changed {
                self.notify(key);
            }
            return Ok(());
        }
        let _guard = self.persist.lock().await;
        let ephemeral_service = self.registry.read(key).get(key).map(|s| s.ephemeral);
        if ephemeral_service != Some(false) {
            return Ok(());
        }
        self.repo
            .deregister_instance(key, &instance.ip, instance.port, &instance.cluster)
            .await?;
        let addr = InstanceAddr {
            ip: instance.ip.clone(),
            port: instance.port,
            cluster: instance.cluster.clone(),
        };
        let changed = {
            let mut shard = self.registry.write(key);
            match shard.get_mut(key) {
                Some(state) => {
                    let removed = state.entries.remove(&addr).is_some();
                    state.touch_empty(Instant::now());
                    removed
                }
                None => false,
            }
        };
        if changed {
            self.notify(key);
        }
        Ok(())
    }

    /// Apply `change` to the instance at `addr`. `kind` restricts the service kind (`None`: any).
    /// Persistent instances are written through the repository first.
    async fn modify_instance(
        &self,
        key: &ServiceKey,
        addr: &InstanceAddr,
        kind: Option<bool>,
        change: impl FnOnce(&Instance) -> Instance,
    ) -> NamingResult<Modified> {
        let service_ephemeral = match self.registry.read(key).get(key) {
            Some(s) if kind.is_none_or(|k| k == s.ephemeral) => s.ephemeral,
            _ => return Ok(Modified::NoService),
        };
        if service_ephemeral {
            let changed = {
                let mut shard = self.registry.write(key);
                let Some(entry) = shard.get_mut(key).and_then(|s| s.entries.get_mut(addr)) else {
                    return Ok(Modified::NoInstance);
                };
                let updated = change(&entry.host.instance);
                check_instance(&updated)?;
                let host = Host::new(key, updated, &self.defaults);
                if host == *entry.host {
                    false
                } else {
                    entry.host = Arc::new(host);
                    true
                }
            };
            if changed {
                self.notify(key);
            }
            return Ok(Modified::Done);
        }
        let _guard = self.persist.lock().await;
        let current = self
            .registry
            .read(key)
            .get(key)
            .and_then(|s| s.entries.get(addr))
            .map(|e| Arc::clone(&e.host));
        let Some(current) = current else {
            return Ok(Modified::NoInstance);
        };
        let updated = change(&current.instance);
        check_instance(&updated)?;
        let host = Host::new(key, updated.clone(), &self.defaults);
        if host == *current {
            return Ok(Modified::Done);
        }
        self.repo.register_instance(key, updated).await?;
        {
            let mut shard = self.registry.write(key);
            if let Some(entry) = shard.get_mut(key).and_then(|s| s.entries.get_mut(addr)) {
                entry.host = Arc::new(host);
            }
        }
        self.notify(key);
        Ok(Modified::Done)
    }

    /// `PUT /v1/ns/instance`: replace weight, enabled and metadata of an existing instance. The
    /// service must exist with the instance's kind.
    pub async fn update_instance(&self, key: &ServiceKey, instance: Instance) -> NamingResult<()> {
        check_instance(&instance)?;
        let addr = InstanceAddr {
            ip: instance.ip.clone(),
            port: instance.port,
            cluster: instance.cluster.clone(),
        };
        let outcome = self
            .modify_instance(key, &addr, Some(instance.ephemeral), |current| {
                let mut next = current.clone();
                next.weight = instance.weight;
                next.enabled = instance.enabled;
                next.metadata = instance.metadata.clone();
                next
            })
            .await?;
        match outcome {
            Modified::Done => Ok(()),
            Modified::NoService => Err(service_not_found(key)),
            Modified::NoInstance => Err(NamingError::Invalid(format!(
                "instance not exist: {}:{} in cluster {} of service {}",
                addr.ip,
                addr.port,
                addr.cluster,
                key.grouped_name()
            ))),
        }
    }

    /// `PATCH /v1/ns/instance`: change only the given fields; metadata is merged.
    pub async fn patch_instance(
        &self,
        key: &ServiceKey,
        ip: &str,
        port: u16,
        cluster: &str,
        patch: InstancePatch,
    ) -> NamingResult<()> {
        let addr = InstanceAddr {
            ip: ip.to_string(),
            port,
            cluster: cluster.to_string(),
        };
        let outcome = self
            .modify_instance(key, &addr, None, |current| {
                let mut next = current.clone();
                if let Some(metadata) = &patch.metadata {
                    next.metadata
                        .extend(metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                if let Some(w) = patch.weight {
                    next.weight = w;
                }
                if let Some(h) = patch.healthy {
                    next.healthy = h;
                }
                if let Some(e) = patch.enabled {
                    next.enabled = e;
                }
                next
            })
            .await?;
        match outcome {
            Modified::Done => Ok(()),
            Modified::NoService | Modified::NoInstance => Err(no_matched_ip()),
        }
    }

    /// `PUT`/`DELETE /v1/ns/instance/metadata/batch`: merge `metadata` into (or, with
    /// `remove`, drop its keys from) the instances of the given kind. `targets` are
    /// `(ip, port, cluster)`; empty means every instance of that kind. Persistent instances go
    /// through the repository; each change notifies subscribers. Returns Nacos's datum keys
    /// `ip:port:unknown:cluster:ephemeral|persist` of the instances found.
    pub async fn batch_metadata(
        &self,
        key: &ServiceKey,
        ephemeral: bool,
        targets: &[(String, u16, String)],
        metadata: &BTreeMap<String, String>,
        remove: bool,
    ) -> NamingResult<Vec<String>> {
        let addrs: Vec<InstanceAddr> = {
            let shard = self.registry.read(key);
            match shard.get(key).filter(|s| s.ephemeral == ephemeral) {
                Some(state) => {
                    let mut addrs: Vec<InstanceAddr> = state
                        .entries
                        .keys()
                        .filter(|a| {
                            targets.is_empty()
                                || targets.iter().any(|(ip, port, c)| {
                                    &a.ip == ip && a.port == *port && &a.cluster == c
                                })
                        })
                        .cloned()
                        .collect();
                    addrs.sort_by(|a, b| {
                        (&a.ip, a.port, &a.cluster).cmp(&(&b.ip, b.port, &b.cluster))
                    });
                    addrs
                }
                None => Vec::new(),
            }
        };
        let kind = if ephemeral { "ephemeral" } else { "persist" };
        let mut updated = Vec::new();
        for addr in addrs {
            let outcome = self
                .modify_instance(key, &addr, Some(ephemeral), |current| {
                    let mut next = current.clone();
                    if remove {
                        for k in metadata.keys() {
                            next.metadata.remove(k);
                        }
                    } else {
                        next.metadata
                            .extend(metadata.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                    next
                })
                .await?;
            if matches!(outcome, Modified::Done) {
                updated.push(format!(
                    "{}:{}:unknown:{}:{kind}",
                    addr.ip, addr.port, addr.cluster
                ));
            }
        }
        Ok(updated)
    }

    /// `PUT /v1/ns/health`: set the health of a persistent instance (there is no active health
    /// check here, so it is always allowed). Anything else is ignored, as in Nacos.
    pub async fn set_persistent_health(
        &self,
        key: &ServiceKey,
        ip: &str,
        port: u16,
        cluster: &str,
        healthy: bool,
    ) -> NamingResult<()> {
        let addr = InstanceAddr {
            ip: ip.to_string(),
            port,
            cluster: cluster.to_string(),
        };
        self.modify_instance(key, &addr, Some(false), |current| {
            let mut next = current.clone();
            next.healthy = healthy;
            next
        })
        .await
        .map(|_| ())
    }

    /// One instance by `(ip, port, cluster)`, disabled or not.
    pub fn get_instance(
        &self,
        key: &ServiceKey,
        ip: &str,
        port: u16,
        cluster: &str,
    ) -> NamingResult<Arc<Host>> {
        let shard = self.registry.read(key);
        let Some(state) = shard.get(key).filter(|s| !s.entries.is_empty()) else {
            return Err(NamingError::NotFound(format!(
                "no ips found for cluster {cluster} in service {}",
                key.grouped_name()
            )));
        };
        let addr = InstanceAddr {
            ip: ip.to_string(),
            port,
            cluster: cluster.to_string(),
        };
        state
            .entries
            .get(&addr)
            .map(|e| Arc::clone(&e.host))
            .ok_or_else(no_matched_ip)
    }

    /// Every host of a service (no filter), for consoles and client views.
    pub fn all_hosts(&self, key: &ServiceKey) -> Vec<Arc<Host>> {
        self.registry
            .read(key)
            .get(key)
            .map(|s| s.hosts().cloned().collect())
            .unwrap_or_default()
    }

    /// Every published instance with its client, or only those of `owner`. Walks every
    /// service: for operator views, not for hot paths.
    pub fn publications(&self, owner: Option<&ClientId>) -> Vec<Publication> {
        let mut out = Vec::new();
        self.registry.for_each_shard(|shard| {
            for (key, state) in shard {
                out.extend(publications_of(key, state, owner));
            }
        });
        out.sort_by(|a, b| (&a.key, &a.owner).cmp(&(&b.key, &b.owner)));
        out
    }

    /// The instances of one service with their clients.
    pub fn publications_in(&self, key: &ServiceKey) -> Vec<Publication> {
        self.registry
            .read(key)
            .get(key)
            .map(|state| publications_of(key, state, None).collect())
            .unwrap_or_default()
    }

    /// Every v1 UDP subscription (client `ip:udpPort#true` in Nacos's terms).
    pub fn udp_subscriptions(&self) -> Vec<UdpSubscription> {
        self.push.subscriptions()
    }

    /// Remove a client and everything it owns (a closed gRPC connection). Subscribers of each
    /// affected service are notified.
    pub fn remove_client(&self, owner: &ClientId) {
        for key in self.registry.take_client(owner) {
            let changed = {
                let mut shard = self.registry.write(&key);
                match shard.get_mut(&key) {
                    Some(state) => {
                        let before = state.entries.len();
                        state.entries.retain(|_, e| &e.owner != owner);
                        state.touch_empty(Instant::now());
                        state.entries.len() != before
                    }
                    None => false,
                }
            };
            if changed {
                self.notify(&key);
            }
        }
    }

    /// What a subscriber sees: enabled hosts of the selected clusters, `healthyOnly`, protect
    /// threshold (see [`service_info::select`]). An unknown service gives no hosts.
    pub fn select(&self, key: &ServiceKey, selection: Selection<'_>) -> ServiceInfo {
        let shard = self.registry.read(key);
        self.select_in(shard.get(key), key, selection)
    }

    fn select_in(
        &self,
        state: Option<&ServiceState>,
        key: &ServiceKey,
        selection: Selection<'_>,
    ) -> ServiceInfo {
        let (hosts, reached) = match state {
            Some(state) => service_info::select(state.hosts(), state.meta.as_deref(), selection),
            None => (Vec::new(), false),
        };
        ServiceInfo {
            key: key.clone(),
            clusters: selection.clusters.to_string(),
            cache_millis: self.settings.push_cache_millis,
            last_ref_time: now_millis(),
            hosts,
            reach_protection_threshold: reached,
        }
    }

    /// [`Self::select`] serialised for `style`: the hot path of `instance/list`. The JSON of a
    /// selection is kept until the service changes; only `lastRefTime` is filled in per call.
    pub fn select_json(
        &self,
        key: &ServiceKey,
        selection: Selection<'_>,
        style: WireStyle,
    ) -> Vec<u8> {
        let shard = self.registry.read(key);
        let state = shard.get(key);
        if let Some(state) = state {
            let render_key = RenderKey {
                clusters: selection.clusters.to_string(),
                healthy_only: selection.healthy_only,
                style,
            };
            if let Some(rendered) = state.rendered(&render_key) {
                return rendered.body(now_millis());
            }
            let info = self.select_in(Some(state), key, selection);
            if let Some(rendered) = Rendered::new(&info, style) {
                let body = rendered.body(info.last_ref_time);
                state.keep_rendered(render_key, Arc::new(rendered));
                return body;
            }
        }
        let info = self.select_in(state, key, selection);
        serde_json::to_vec(&info.wire(style)).unwrap_or_default()
    }

    // -----------------------------------------------------------------------------------------
    // Services

    /// Create a service with stored settings (`POST /v1/ns/service` passes `ephemeral: false`).
    /// Errors: `Invalid` when the service exists (with or without settings).
    pub async fn create_service(&self, meta: ServiceMeta) -> NamingResult<()> {
        let key = meta.key.clone();
        let exists = || {
            NamingError::Invalid(format!(
                "specified service {} already exists!",
                key.grouped_name()
            ))
        };
        let _guard = self.persist.lock().await;
        if self.registry.read(&key).contains_key(&key) {
            return Err(exists());
        }
        self.reserve(&key, meta.ephemeral)?;
        if let Err(e) = self.repo.create_service(meta.clone()).await {
            self.drop_reservation(&key);
            return Err(match e {
                RepoError::AlreadyExists(_) => exists(),
                other => other.into(),
            });
        }
        {
            let mut shard = self.registry.write(&key);
            let state = shard
                .entry(key.clone())
                .or_insert_with(|| ServiceState::new(meta.ephemeral));
            state.meta = Some(Arc::new(meta));
        }
        self.notify(&key);
        Ok(())
    }

    /// Replace protect threshold, metadata and selector of an existing service, storing
    /// settings for a service that had none.
    pub async fn update_service(
        &self,
        key: &ServiceKey,
        update: ServiceUpdate,
    ) -> NamingResult<()> {
        let _guard = self.persist.lock().await;
        let (current, ephemeral) = match self.registry.read(key).get(key) {
            Some(s) => (s.meta.clone(), s.ephemeral),
            None => return Err(service_not_found(key)),
        };
        let mut meta = current
            .as_deref()
            .cloned()
            .unwrap_or_else(|| ServiceMeta::new(key.clone(), ephemeral));
        meta.protect_threshold = update.protect_threshold;
        meta.metadata = update.metadata;
        meta.selector = update.selector;
        meta.modified_ms = now_millis();
        let stored = if current.is_some() {
            self.repo.update_service(meta.clone()).await
        } else {
            Err(RepoError::NotFound(String::new()))
        };
        match stored {
            Ok(()) => {}
            Err(RepoError::NotFound(_)) => self.repo.create_service(meta.clone()).await?,
            Err(e) => return Err(e.into()),
        }
        if let Some(state) = self.registry.write(key).get_mut(key) {
            state.meta = Some(Arc::new(meta));
        }
        self.notify(key);
        Ok(())
    }

    /// Delete a service. Errors: `Invalid` when it does not exist or still has instances.
    pub async fn delete_service(&self, key: &ServiceKey) -> NamingResult<()> {
        let not_empty = || {
            NamingError::Invalid(format!(
                "Service {} is not empty, can't be delete. Please unregister instance first",
                key.grouped_name()
            ))
        };
        let _guard = self.persist.lock().await;
        let stored = match self.registry.read(key).get(key) {
            None => {
                return Err(NamingError::Invalid(format!(
                    "service {} not found!",
                    key.grouped_name()
                )));
            }
            Some(s) if !s.entries.is_empty() => return Err(not_empty()),
            Some(s) => s.meta.is_some(),
        };
        if stored {
            match self.repo.delete_service(key).await {
                Ok(()) | Err(RepoError::NotFound(_)) => {}
                Err(RepoError::PreconditionFailed(_)) => return Err(not_empty()),
                Err(e) => return Err(e.into()),
            }
        }
        {
            let mut shard = self.registry.write(key);
            let empty = shard.get(key).map(|s| s.entries.is_empty());
            match empty {
                Some(true) => {
                    shard.remove(key);
                }
                // An ephemeral registration slipped in: keep the service, without settings.
                Some(false) => {
                    if let Some(state) = shard.get_mut(key) {
                        state.meta = None;
                    }
                }
                None => {}
            }
        }
        self.notify(key);
        Ok(())
    }

    /// A service's settings and clusters. Errors: `Invalid` when it does not exist.
    pub fn service_detail(&self, key: &ServiceKey) -> NamingResult<ServiceDetail> {
        let shard = self.registry.read(key);
        let Some(state) = shard.get(key) else {
            return Err(service_not_found(key));
        };
        let meta = state
            .meta
            .as_deref()
            .cloned()
            .unwrap_or_else(|| ServiceMeta::new(key.clone(), state.ephemeral));
        let mut clusters: BTreeSet<String> = state
            .entries
            .keys()
            .map(|addr| addr.cluster.clone())
            .collect();
        clusters.extend(meta.clusters.keys().cloned());
        Ok(ServiceDetail {
            ephemeral: state.ephemeral,
            clusters: clusters.into_iter().collect(),
            instance_count: state.entries.len(),
            meta,
        })
    }

    pub fn service_exists(&self, key: &ServiceKey) -> bool {
        self.registry.read(key).contains_key(key)
    }

    /// Every service key of every namespace, sorted.
    pub fn all_services(&self) -> Vec<ServiceKey> {
        let mut out = Vec::new();
        self.registry
            .for_each_shard(|shard| out.extend(shard.keys().cloned()));
        out.sort();
        out
    }

    /// Services of a namespace (of one group when given), sorted.
    pub fn list_services(&self, namespace: &str, group: Option<&str>) -> Vec<ServiceKey> {
        let mut out = Vec::new();
        self.registry.for_each_shard(|shard| {
            out.extend(
                shard
                    .keys()
                    .filter(|k| k.namespace == namespace && group.is_none_or(|g| k.group == g))
                    .cloned(),
            );
        });
        out.sort();
        out
    }

    // -----------------------------------------------------------------------------------------
    // UDP push and counters

    /// Subscribe a v1 client's UDP receiver to a service (called by `instance/list` with
    /// `udpPort > 0` and a push-capable user agent; see [`push_capable`]).
    pub fn subscribe_udp(&self, key: &ServiceKey, addr: SocketAddr, clusters: &str) {
        self.push.subscribe(key, addr, clusters);
    }

    /// Push counters; `reset` zeroes them after reading.
    pub fn push_counters(&self, reset: bool) -> PushCounters {
        self.push.counters(reset)
    }

    pub fn metrics(&self) -> NamingMetrics {
        let mut m = NamingMetrics::default();
        let mut owners: HashSet<ClientId> = HashSet::new();
        self.registry.for_each_shard(|shard| {
            m.service_count += shard.len();
            for state in shard.values() {
                m.instance_count += state.entries.len();
                owners.extend(state.entries.values().map(|e| e.owner.clone()));
            }
        });
        for owner in &owners {
            if owner.is_ephemeral_ip_port() {
                m.ephemeral_ip_port_client_count += 1;
            } else if owner.is_persistent_ip_port() {
                m.persistent_ip_port_client_count += 1;
            } else {
                m.connection_based_client_count += 1;
            }
        }
        m.client_count = owners.len();
        m.subscribe_count = self.push.subscriber_count();
        m
    }
}

fn no_matched_ip() -> NamingError {
    NamingError::NotFound("no matched ip found!".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(dir: &std::path::Path) -> Arc<NamingService> {
        let repos = nacos_storage_embedded::open_repos(dir).expect("open embedded store");
        NamingService::new(&Settings::standalone(dir), repos.instances)
    }

    fn inst(ip: &str, port: u16) -> Instance {
        Instance::new(ip, port)
    }

    fn ips(naming: &NamingService, key: &ServiceKey) -> Vec<String> {
        naming
            .select(key, Selection::default())
            .hosts
            .iter()
            .map(|h| format!("{}:{}", h.host.instance.ip, h.host.instance.port))
            .collect()
    }

    #[tokio::test]
    async fn connection_clients_own_and_lose_their_instances() {
        let dir = tempfile::tempdir().expect("tempdir");
        let naming = service(dir.path());
        let mut changes = naming.subscribe_changes();
        let a = ServiceKey::new("public", "DEFAULT_GROUP", "a");
        let b = ServiceKey::new("public", "DEFAULT_GROUP", "b");
        let conn = ClientId::connection("1700000000000_127.0.0.1_5000");
        let other = ClientId::connection("1700000000001_127.0.0.1_5001");

        naming
            .register_instance(&a, inst("10.0.0.1", 1), &conn)
            .await
            .expect("register");
        assert_eq!(changes.try_recv().expect("event"), a);
        // A second registration by the same client in the same service replaces the first.
        naming
            .register_instance(&a, inst("10.0.0.2", 1), &conn)
            .await
            .expect("register");
        assert_eq!(ips(&naming, &a), ["10.0.0.2:1"]);
        // Re-registering the same instance is not a change.
        while changes.try_recv().is_ok() {}
        naming
            .register_instance(&a, inst("10.0.0.2", 1), &conn)
            .await
            .expect("register");
        assert!(changes.try_recv().is_err());

        naming
            .batch_register(&b, vec![inst("10.0.1.1", 1), inst("10.0.1.2", 1)], &conn)
            .expect("batch");
        naming
            .register_instance(&b, inst("10.0.1.3", 1), &other)
            .await
            .expect("register");
        naming
            .batch_register(&b, vec![inst("10.0.1.2", 1)], &conn)
            .expect("batch replaces");
        assert_eq!(ips(&naming, &b), ["10.0.1.2:1", "10.0.1.3:1"]);
        assert_eq!(naming.metrics().connection_based_client_count, 2);

        while changes.try_recv().is_ok() {}
        naming.remove_client(&conn);
        assert!(ips(&naming, &a).is_empty());
        assert_eq!(ips(&naming, &b), ["10.0.1.3:1"]);
        let mut changed = vec![
            changes.try_recv().expect("event"),
            changes.try_recv().expect("event"),
        ];
        changed.sort();
        assert_eq!(changed, [a.clone(), b.clone()]);
        // Removing an unknown client is harmless.
        naming.remove_client(&conn);
        assert_eq!(naming.metrics().instance_count, 1);
    }

    #[tokio::test]
    async fn persistent_and_ephemeral_kinds_do_not_mix_and_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = ServiceKey::new("public", "G", "p");
        {
            let naming = service(dir.path());
            let mut persistent = inst("10.0.2.1", 80);
            persistent.ephemeral = false;
            let owner = ClientId::ip_port("10.0.2.1", 80, false);
            naming
                .register_instance(&key, persistent, &owner)
                .await
                .expect("persistent");
            let err = naming
                .register_instance(&key, inst("10.0.2.2", 80), &ClientId::connection("c"))
                .await
                .expect_err("ephemeral into persistent");
            assert_eq!(
                err.to_string(),
                "Current service G@@p is persistent service, can't register ephemeral instance."
            );
        }
        let naming = service(dir.path());
        assert!(naming.select(&key, Selection::default()).hosts.is_empty());
        naming.load().await.expect("load");
        assert_eq!(ips(&naming, &key), ["10.0.2.1:80"]);
        assert!(!naming.service_detail(&key).expect("detail").ephemeral);
    }

    #[test]
    fn sweep_marks_then_removes_silent_http_instances_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let naming = service(dir.path());
        let key = ServiceKey::new("public", "DEFAULT_GROUP", "swept");
        let http = ClientId::ip_port("10.0.3.1", 1, true);
        naming
            .put_ephemeral(&key, vec![inst("10.0.3.1", 1)], &http)
            .expect("http");
        naming
            .put_ephemeral(
                &key,
                vec![inst("10.0.3.2", 1)],
                &ClientId::connection("grpc"),
            )
            .expect("grpc");
        let now = Instant::now();
        naming.sweep(now + Duration::from_secs(16));
        let info = naming.select(&key, Selection::default());
        let healthy: Vec<bool> = info.hosts.iter().map(|h| h.healthy).collect();
        assert_eq!(healthy, [false, true]);
        naming.sweep(now + Duration::from_secs(31));
        assert_eq!(ips(&naming, &key), ["10.0.3.2:1"]);
        assert_eq!(naming.metrics().ephemeral_ip_port_client_count, 0);
    }
}
