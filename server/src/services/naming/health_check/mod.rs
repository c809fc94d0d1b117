//! Server-side health checks of persistent instances, as Nacos 2.x runs them.
//!
//! # Layout
//! - this file: the scheduler ([`run`]): which instances are checked, when, by which node,
//!   and what a result does to an instance's health;
//! - [`checker`]: the cluster's `healthChecker` JSON (TCP, HTTP, MYSQL, NONE);
//! - `probe`: one TCP / HTTP / MySQL check.
//!
//! # Rules (Nacos's)
//! - Each persistent instance is checked with its cluster's checker (TCP when the cluster has
//!   no settings); `NONE` checks nothing. Disabled instances are checked too.
//! - The first check waits `2000 + rand(0, rand(0, tcpHealthParams.max))` ms; afterwards the
//!   interval follows the measured response time: `factor × interval + (1 − factor) × rt`,
//!   kept within the type's `min`..`max` (`tcpHealthParams`, `httpHealthParams`,
//!   `mysqlHealthParams` switches). `nacos.naming.persistent.health.check.intervalMs` (ours,
//!   for tests) replaces this with a fixed interval.
//! - `checkTimes` (switch, 3) passes in a row make an unhealthy instance healthy and as many
//!   failures a healthy one unhealthy; a refused connection, an unexpected HTTP status or a
//!   SQL error makes it unhealthy at once. `healthCheckEnabled=false` stops every check.
//! - A health change is written like any persistent change (repository first, then memory and
//!   subscribers), so it survives restarts and reaches the other nodes.
//! - In a cluster exactly one node checks a service: the [`Responsibility`] the composition
//!   hands in (distro hashing over the UP members); standalone, this node checks everything.

pub mod checker;
mod probe;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nacos_core::{ClusterMeta, InstanceAddr, ServiceKey, ServiceMeta};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use checker::HealthChecker;
use probe::{Rt, Verdict};

use super::NamingService;
use super::switches::HealthParams;

/// Nacos's `LOWER_CHECK_RT`: the least delay before a first check.
const FIRST_CHECK_MIN_MS: u64 = 2_000;
/// Checks running at once; more wait for a permit (Nacos bounds its NIO and executor pools).
pub const MAX_CONCURRENT_CHECKS: usize = 64;
/// How often the scheduler looks for due checks.
const SCHEDULER_TICK: Duration = Duration::from_millis(250);

/// Whether this node checks a service.
pub trait Responsibility: Send + Sync + std::fmt::Debug {
    fn responsible(&self, key: &ServiceKey) -> bool;
}

/// A standalone server checks every service.
#[derive(Debug)]
pub struct Everything;

impl Responsibility for Everything {
    fn responsible(&self, _key: &ServiceKey) -> bool {
        true
    }
}

/// Checks this node ran, per type.
#[derive(Debug, Default)]
pub struct CheckCounters {
    tcp: AtomicU64,
    http: AtomicU64,
    mysql: AtomicU64,
}

/// A reading of [`CheckCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckCounts {
    pub tcp: u64,
    pub http: u64,
    pub mysql: u64,
}

impl CheckCounts {
    pub fn total(&self) -> u64 {
        self.tcp + self.http + self.mysql
    }
}

impl CheckCounters {
    fn count(&self, checker: &HealthChecker) {
        let counter = match checker {
            HealthChecker::Http { .. } => &self.http,
            HealthChecker::Mysql { .. } => &self.mysql,
            HealthChecker::Tcp | HealthChecker::None => &self.tcp,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn read(&self) -> CheckCounts {
        CheckCounts {
            tcp: self.tcp.load(Ordering::Relaxed),
            http: self.http.load(Ordering::Relaxed),
            mysql: self.mysql.load(Ordering::Relaxed),
        }
    }
}

/// One persistent instance as the scheduler sees it.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub key: ServiceKey,
    pub addr: InstanceAddr,
    pub healthy: bool,
    /// The service's stored settings, holding its clusters' checkers.
    pub meta: Option<Arc<ServiceMeta>>,
}

impl Target {
    fn cluster(&self) -> Option<&ClusterMeta> {
        self.meta
            .as_ref()
            .and_then(|m| m.clusters.get(&self.addr.cluster))
    }
}

type TargetId = (ServiceKey, InstanceAddr);

/// The check state of one instance (Nacos keeps it on the task and the instance).
#[derive(Debug)]
struct Tracked {
    /// The type it was last scheduled with: a new type starts over.
    kind: &'static str,
    next_due: Instant,
    /// `checkRtNormalized`, in ms.
    normalized_ms: u64,
    passes: u32,
    failures: u32,
    in_flight: bool,
}

#[derive(Debug)]
struct Scheduler {
    naming: Arc<NamingService>,
    responsible: Arc<dyn Responsibility>,
    fixed_interval: Option<Duration>,
    tracked: Mutex<HashMap<TargetId, Tracked>>,
    permits: Semaphore,
}

/// A random number in `0..bound` (0 when `bound` is 0). Each `RandomState` is freshly keyed,
/// which is random enough to spread check times.
fn random_below(bound: u64) -> u64 {
    if bound == 0 {
        return 0;
    }
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(bound);
    hasher.finish() % bound
}

/// Nacos's first delay: `2000 + rand(0, rand(0, tcp max))`.
fn first_interval_ms(tcp: &HealthParams) -> u64 {
    FIRST_CHECK_MIN_MS + random_below(random_below(tcp.max))
}

/// Nacos's `reEvaluateCheckRt`.
fn re_evaluate(normalized_ms: u64, rt_ms: u64, params: &HealthParams) -> u64 {
    let next = params.factor * normalized_ms as f64 + (1.0 - params.factor) * rt_ms as f64;
    (next.max(0.0) as u64).clamp(params.min, params.max.max(params.min))
}

impl Scheduler {
    fn tracked(&self) -> MutexGuard<'_, HashMap<TargetId, Tracked>> {
        self.tracked.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn params(&self, checker: &HealthChecker) -> HealthParams {
        self.naming.switches().health_params(checker.kind())
    }

    /// Start every due check in `running`.
    fn tick(self: &Arc<Self>, running: &mut JoinSet<()>) {
        let switches = self.naming.switches();
        if !switches.health_check_enabled() {
            self.tracked().clear();
            return;
        }
        let tcp = switches.health_params("TCP");
        let now = Instant::now();
        let mut due = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut responsible: HashMap<ServiceKey, bool> = HashMap::new();
        {
            let mut tracked = self.tracked();
            for target in self.naming.persistent_targets() {
                let checker = HealthChecker::of_cluster(target.cluster());
                if checker == HealthChecker::None {
                    continue;
                }
                // Asked once per service and tick: a cluster's answer reads the member table.
                let mine = *responsible
                    .entry(target.key.clone())
                    .or_insert_with(|| self.responsible.responsible(&target.key));
                if !mine {
                    continue;
                }
                let id = (target.key.clone(), target.addr.clone());
                seen.insert(id.clone());
                let state = tracked.entry(id).or_insert_with(|| {
                    let first = self
                        .fixed_interval
                        .unwrap_or_else(|| Duration::from_millis(first_interval_ms(&tcp)));
                    Tracked {
                        kind: checker.kind(),
                        next_due: now + first,
                        normalized_ms: u64::try_from(first.as_millis()).unwrap_or(u64::MAX),
                        passes: 0,
                        failures: 0,
                        in_flight: false,
                    }
                });
                if state.kind != checker.kind() && !state.in_flight {
                    state.kind = checker.kind();
                    state.passes = 0;
                    state.failures = 0;
                }
                if state.in_flight || state.next_due > now {
                    continue;
                }
                state.in_flight = true;
                due.push((target, checker));
            }
            // Instances gone, moved to NONE or to another node start over if they come back.
            tracked.retain(|id, state| state.in_flight || seen.contains(id));
        }
        for (target, checker) in due {
            let scheduler = Arc::clone(self);
            running.spawn(async move { scheduler.check(target, checker).await });
        }
    }

    /// Run one check and apply its result.
    async fn check(self: Arc<Self>, target: Target, checker: HealthChecker) {
        let id = (target.key.clone(), target.addr.clone());
        let outcome = match self.permits.acquire().await {
            Ok(_permit) => {
                let port = checker_port(&checker, target.cluster(), target.addr.port);
                let outcome = probe::run(&checker, &target.addr.ip, port).await;
                self.naming.check_counters.count(&checker);
                Some(outcome)
            }
            // Closed: the server is stopping.
            Err(_) => None,
        };
        let Some(outcome) = outcome else {
            return;
        };
        let params = self.params(&checker);
        let check_times = self.naming.switches().check_times();
        let change = {
            let mut tracked = self.tracked();
            let Some(state) = tracked.get_mut(&id) else {
                return;
            };
            let rt_ms = match outcome.rt {
                Rt::Measured(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
                Rt::Doubled => state.normalized_ms.saturating_mul(2),
                Rt::Max => params.max,
            };
            state.normalized_ms = re_evaluate(state.normalized_ms, rt_ms, &params);
            let interval = self
                .fixed_interval
                .unwrap_or(Duration::from_millis(state.normalized_ms));
            state.next_due = Instant::now() + interval;
            let change = match outcome.verdict {
                Verdict::Pass => {
                    state.failures = 0;
                    if target.healthy {
                        None
                    } else {
                        state.passes = state.passes.saturating_add(1);
                        (state.passes >= check_times).then_some(true)
                    }
                }
                Verdict::Fail => {
                    state.passes = 0;
                    if target.healthy {
                        state.failures = state.failures.saturating_add(1);
                        (state.failures >= check_times).then_some(false)
                    } else {
                        None
                    }
                }
                Verdict::FailNow => {
                    state.passes = 0;
                    target.healthy.then_some(false)
                }
            };
            if change.is_none() {
                state.in_flight = false;
            }
            change
        };
        let Some(healthy) = change else {
            tracing::trace!(service = %target.key.grouped_name(), ip = %target.addr.ip, port = target.addr.port, "{}", outcome.message);
            return;
        };
        // As Nacos, only while checks are still on and this node still responsible.
        if self.naming.switches().health_check_enabled()
            && self.responsible.responsible(&target.key)
        {
            tracing::info!(
                service = %target.key.grouped_name(),
                namespace = %target.key.namespace,
                instance = %format!("{}:{}@{}", target.addr.ip, target.addr.port, target.addr.cluster),
                healthy,
                "health check: {}",
                outcome.message
            );
            if let Err(e) = self
                .naming
                .write_health(&target.key, &target.addr, healthy)
                .await
            {
                tracing::warn!(service = %target.key.grouped_name(), "cannot store a health change: {e}");
            }
        }
        if let Some(state) = self.tracked().get_mut(&id) {
            state.passes = 0;
            state.failures = 0;
            state.in_flight = false;
        }
    }
}

/// MySQL checks connect to the instance's own port, as Nacos's processor does; TCP and HTTP
/// follow the cluster's `checkPort` / `useInstancePort4Check`.
fn checker_port(checker: &HealthChecker, cluster: Option<&ClusterMeta>, port: u16) -> u16 {
    match checker {
        HealthChecker::Mysql { .. } => port,
        _ => checker::check_port(cluster, port),
    }
}

/// Check persistent instances until `shutdown`.
pub(crate) async fn run(
    naming: Arc<NamingService>,
    responsible: Arc<dyn Responsibility>,
    shutdown: CancellationToken,
) {
    let fixed_interval = naming.timings.health_check_interval;
    let tick = fixed_interval
        .map(|i| i.min(SCHEDULER_TICK))
        .unwrap_or(SCHEDULER_TICK)
        .max(Duration::from_millis(10));
    let scheduler = Arc::new(Scheduler {
        naming,
        responsible,
        fixed_interval,
        tracked: Mutex::new(HashMap::new()),
        permits: Semaphore::new(MAX_CONCURRENT_CHECKS),
    });
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut running = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => scheduler.tick(&mut running),
            Some(_) = running.join_next() => {}
        }
    }
    // Checks in flight hold the naming service (and its storage): they end with the server,
    // so a restart can open the same store.
    scheduler.permits.close();
    running.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_follow_nacos() {
        let tcp = HealthParams {
            max: 3000,
            min: 2000,
            factor: 0.65,
        };
        for _ in 0..200 {
            let first = first_interval_ms(&tcp);
            assert!((2000..5000).contains(&first), "{first}");
        }
        // A fast answer pulls the interval down, never below min.
        assert_eq!(re_evaluate(4000, 0, &tcp), 2600);
        assert_eq!(re_evaluate(2100, 0, &tcp), 2000);
        assert_eq!(re_evaluate(3000, 100_000, &tcp), 3000);
    }
}
