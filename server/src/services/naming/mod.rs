//! The naming service: one implementation behind every naming edge (v1 and v2 HTTP, gRPC).
//! Edges parse and validate their wire format, call a method here, and serialise the answer;
//! the rules live here.
//!
//! # Layout
//! - this file: the [`NamingService`] value, its construction, loading and background tasks;
//! - `instances`, `persistent`, `services`: its methods on instances, on stored rows, and on
//!   services and what subscribers see; `error`: [`NamingError`].
//! - [`registry`]: the in-memory state (services, instances with their owning client).
//! - [`service_info`]: the selection rules and the `ServiceInfo` value every edge serialises.
//! - [`health`]: v1 beats and the expiry sweep (unhealthy, then removed, then empty services).
//! - [`health_check`]: server-side checks of persistent instances (TCP, HTTP, MYSQL, NONE).
//! - [`push`]: UDP push to v1 subscribers.
//! - [`switches`]: the operator switches (`SwitchDomain`).
//!
//! # Model
//! - A service key is (namespace, group, name). Each service is ephemeral or persistent, fixed
//!   when it is created; instances of the other kind are refused with 400, as in Nacos 2.x.
//! - Ephemeral instances live only in memory and are owned by a client ([`ClientId`]): a v1 HTTP
//!   client `ip:port#true` that must keep beating, or a gRPC connection. A client holds
//!   at most one instance per service through [`NamingService::register_instance`] (a new
//!   registration replaces its previous one, as Nacos 2.x does) or a set through
//!   [`NamingService::batch_register`]. [`NamingService::remove_client`] drops all of them.
//! - Persistent instances and service settings are written through [`InstanceRepo`] first and
//!   mirrored in memory; [`NamingService::load`] reads them back at start.
//! - Every change to a service's instances or settings sends its key on a broadcast channel
//!   ([`NamingService::subscribe_changes`]); the UDP and gRPC pushers consume it.
//!
//! # Deliberate differences from Nacos 2.x
//! - Protect threshold applies when a service has stored settings. The repository stores a
//!   settings row for every service holding persistent instances, so protection also applies to
//!   those (Nacos 2.x applies it only after an explicit create/update of the service).
//! - `PUT /v1/ns/instance` on a missing instance is a 400 (Nacos 2.x stores a metadata overlay
//!   for it); `PATCH` also applies `healthy` (2.x ignores it; 1.x applied it).
//! - Services with stored settings are never cleaned up when empty; only ephemeral services
//!   without settings are (Nacos 2.x also drops explicitly created empty services).
//! - Label selectors select every instance: Nacos's result without a CMDB, which neither has
//!   (their expression is checked when written); a first UDP subscription does not
//!   trigger an immediate push (the `instance/list` answer already carries the data).

mod error;
pub mod health;
pub mod health_check;
mod instances;
mod persistent;
pub mod push;
pub mod registry;
pub mod remote;
pub mod service_info;
mod services;
pub mod switches;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nacos_core::validate::{self, ParamError};
use nacos_core::{
    ClusterMeta, Instance, InstanceRepo, RepoError, RepoResult, ServiceKey, ServiceMeta, now_millis,
};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::foundation::settings::NamingSettings;
use crate::foundation::settings::Settings;

pub use error::{NamingError, NamingResult};
use error::{kind_mismatch, no_matched_ip, service_not_found};
pub use health::{BEAT_NOT_FOUND, BEAT_OK, Beat, BeatOutcome};
pub use push::{PushCounters, UdpSubscription, push_capable};
pub use registry::ClientId;
use registry::{Entry, InstanceAddr, Registry, ServiceState};
pub use service_info::{Host, HostDefaults, HostView, Selection, ServiceInfo, WireStyle};
use service_info::{RenderKey, Rendered};

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
    /// `nacos.naming.persistent.health.check.intervalMs` (ours, for tests): a fixed interval between
    /// health checks of an instance instead of Nacos's adaptive 2–5 s.
    health_check_interval: Option<Duration>,
}

impl Timings {
    fn from_settings(settings: &Settings) -> Self {
        let props = &settings.properties;
        let ms = |key: &str, default: u64| props.millis_or_warn(key, default);
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
            health_check_interval: props
                .get("nacos.naming.persistent.health.check.intervalMs")
                .map(|_| ms("nacos.naming.persistent.health.check.intervalMs", 5_000))
                .map(|d| d.max(Duration::from_millis(10))),
        }
    }
}

/// Nacos's defaults for the instance-timing check (independent of the server's settings, as in
/// Nacos's `checkInstanceIsLegal`).
const CHECK_BEAT_INTERVAL_MS: u64 = 5_000;
const CHECK_BEAT_TIMEOUT_MS: u64 = 15_000;
const CHECK_DELETE_TIMEOUT_MS: u64 = 30_000;

/// Changes kept for slow change subscribers before they see `Lagged`. The channel allocates
/// every slot up front; a change is an `Arc`, so a slot is small and a receiver's copy is a
/// reference count, not three strings.
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
    /// Instances of clients this node owns (not copies of other nodes' clients).
    pub responsible_instance_count: usize,
    /// Clients this node owns.
    pub responsible_client_count: usize,
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
        .values()
        .filter(move |e| owner.is_none_or(|o| &e.owner == o))
        .map(|e| Publication {
            key: key.clone(),
            owner: e.owner.clone(),
            host: Arc::clone(&e.host),
            updated_ms: epoch_ms(e.last_beat.instant()),
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
    /// "Service changed" events, for the UDP and gRPC pushers.
    changes: broadcast::Sender<Arc<ServiceKey>>,
    /// Serialises writes that go through the repository, so memory follows the same order.
    persist: tokio::sync::Mutex<()>,
    /// UDP subscribers, pending acks and push counters.
    push: push::UdpPush,
    /// Cluster mode: copies of clients other nodes own (distro).
    pub(crate) remote: remote::RemoteClients,
    /// Operator switches; beats read the interval they hand out from here.
    switches: switches::Switches,
    /// Health checks this node ran.
    check_counters: health_check::CheckCounters,
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
            remote: remote::RemoteClients::default(),
            switches: switches::Switches::new(naming),
            check_counters: health_check::CheckCounters::default(),
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
                .or_insert_with(|| ServiceState::new(&meta.key, meta.ephemeral));
            state.ephemeral = meta.ephemeral;
            for instance in instances {
                let (addr, entry) = self.persistent_entry(instance, now);
                state.insert(addr, entry);
            }
            state.meta = Some(Arc::new(meta));
            state.touch_empty(now);
        }
        tracing::debug!(services = count, "loaded persistent naming data");
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

    /// Start the health checks of persistent instances; `responsible` says which services
    /// this node checks. They stop when `shutdown` fires.
    pub fn start_health_checks(
        self: &Arc<Self>,
        responsible: Arc<dyn health_check::Responsibility>,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(health_check::run(Arc::clone(self), responsible, shutdown))
    }

    /// Health checks this node ran so far, per type.
    pub fn health_check_counts(&self) -> health_check::CheckCounts {
        self.check_counters.read()
    }

    /// Keys of services whose instances or settings changed, as they change.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Arc<ServiceKey>> {
        self.changes.subscribe()
    }

    pub fn settings(&self) -> &NamingSettings {
        &self.settings
    }

    pub fn switches(&self) -> &switches::Switches {
        &self.switches
    }

    /// A service's served state changed: drop its rendered answers and tell the pushers.
    /// Every write that changes what a subscriber sees calls this after releasing its lock.
    fn notify(&self, key: &ServiceKey) {
        if let Some(state) = self.registry.read(key).get(key) {
            state.forget_rendered();
        }
        // No receiver is fine: nobody is interested yet.
        if self.changes.receiver_count() > 0 {
            let _ = self.changes.send(Arc::new(key.clone()));
        }
    }
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
        assert_eq!(*changes.try_recv().expect("event"), a);
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
            Arc::unwrap_or_clone(changes.try_recv().expect("event")),
            Arc::unwrap_or_clone(changes.try_recv().expect("event")),
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
