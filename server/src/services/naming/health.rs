//! v1 heart beats and the expiry sweep.
//!
//! An ephemeral instance registered over HTTP belongs to the client `ip:port#true` and lives as
//! long as it beats: without a beat for its beat timeout it turns unhealthy, without one for its
//! delete timeout it is removed (when `nacos.naming.expireInstance` is on). Both timeouts come
//! from the instance metadata (`preserved.heart.beat.timeout`, `preserved.ip.delete.timeout`) or
//! the server settings. Instances owned by gRPC connections are not swept: their lifetime is the
//! connection's. The same sweep forgets ephemeral services that stayed empty, without stored
//! settings, for `nacos.naming.clean.empty-service.expired-time`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nacos_core::{Instance, InstanceAddr, ServiceKey};
use tokio_util::sync::CancellationToken;

use super::registry::BeatTime;
use super::service_info::{self, Host};
use super::{ClientId, NamingResult, NamingService};

/// Beat answered: the instance is known.
pub const BEAT_OK: i32 = 10200;
/// Beat for an unknown instance without `beat` JSON: the client must register again.
pub const BEAT_NOT_FOUND: i32 = 20404;

/// One beat of a v1 client. `ip`/`port`/`cluster` identify the instance (the `beat` JSON's
/// values win over the query's); `register` is the instance to create when the beat carried
/// `beat` JSON and the instance is unknown.
#[derive(Debug, Clone)]
pub struct Beat {
    pub ip: String,
    pub port: u16,
    pub cluster: String,
    pub register: Option<Instance>,
}

/// The answer to a beat: `{"clientBeatInterval":…,"code":…,"lightBeatEnabled":true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeatOutcome {
    pub code: i32,
    /// The instance's `preserved.heart.beat.interval`, else the `clientBeatInterval` switch.
    pub client_beat_interval: Duration,
}

impl NamingService {
    /// Handle a v1 beat: refresh the instance the client `ip:port#true` owns in the service
    /// (cluster is not matched, as in Nacos) and make it healthy again if it was not; an unknown
    /// instance is registered from `beat.register` or answered with [`BEAT_NOT_FOUND`].
    pub async fn beat(&self, key: &ServiceKey, beat: Beat) -> NamingResult<BeatOutcome> {
        let owner = ClientId::ip_port(&beat.ip, beat.port, true);
        if let Some(interval) = self.touch(key, &owner, &beat.ip, beat.port) {
            return Ok(BeatOutcome {
                code: BEAT_OK,
                client_beat_interval: interval,
            });
        }
        let Some(instance) = beat.register else {
            return Ok(BeatOutcome {
                code: BEAT_NOT_FOUND,
                client_beat_interval: self.switches.client_beat_interval(),
            });
        };
        let mut instance = instance;
        instance.ephemeral = true;
        self.register_instance(key, instance, &owner).await?;
        let interval = self
            .touch(key, &owner, &beat.ip, beat.port)
            .unwrap_or(self.switches.client_beat_interval());
        Ok(BeatOutcome {
            code: BEAT_OK,
            client_beat_interval: interval,
        })
    }

    /// Record a beat; returns the beat interval when the client owns an instance there.
    fn touch(&self, key: &ServiceKey, owner: &ClientId, ip: &str, port: u16) -> Option<Duration> {
        let now = Instant::now();
        let mut interval = None;
        let mut revived = false;
        {
            let mut shard = self.registry.write(key);
            let state = shard.get_mut(key)?;
            let beating: Vec<(InstanceAddr, Option<Arc<Host>>)> = state
                .at(ip, port)
                .filter(|entry| &entry.owner == owner)
                .map(|entry| {
                    // Nacos: the instance's own interval, else the switch (which an operator
                    // may have changed since the host's defaults were set).
                    let own = entry
                        .host
                        .instance
                        .metadata
                        .contains_key(service_info::META_BEAT_INTERVAL);
                    interval = Some(if own {
                        entry.host.beat_interval()
                    } else {
                        self.switches.client_beat_interval()
                    });
                    let revive = (!entry.host.instance.healthy)
                        .then(|| Arc::new(entry.host.with_healthy(true)));
                    (entry.host.instance.addr(), revive)
                })
                .collect();
            for (addr, revive) in beating {
                state.set_beat(&addr, now);
                if let Some(host) = revive {
                    state.replace_host(&addr, host);
                    revived = true;
                }
            }
        }
        if revived {
            self.notify(key);
        }
        interval
    }

    /// One pass of the expiry sweep at `now`.
    pub(crate) fn sweep(&self, now: Instant) {
        let expire = self.settings.expire_instance;
        let empty_ttl = self.timings.empty_service_ttl;
        let mut changed: Vec<ServiceKey> = Vec::new();
        // Copies of other nodes' v1 clients: their owner watches the beats and tells us.
        let remote = self.remote.ip_port_clients();
        // Compared in the entries' own milliseconds: no clock arithmetic per entry, of which
        // a big registry holds a million.
        let sweep_at = BeatTime::from(now);
        self.registry.for_each_shard_mut(|shard| {
            let mut forget: Vec<ServiceKey> = Vec::new();
            for (key, state) in shard.iter_mut() {
                let mut service_changed = false;
                let mut removed: Vec<ClientId> = Vec::new();
                let mut unhealthy: Vec<(InstanceAddr, Arc<Host>)> = Vec::new();
                state.retain(|entry| {
                    // Most instances beat in time: settle those with a clock comparison before
                    // looking at the owner (the remote-client lookup hashes its id).
                    let silent_ms = sweep_at.millis_since(entry.last_beat);
                    let overdue = silent_ms > entry.host.beat_timeout_ms()
                        || (expire && silent_ms > entry.host.delete_timeout_ms());
                    if !overdue
                        || !entry.owner.is_ephemeral_ip_port()
                        || remote.contains(&entry.owner)
                    {
                        return true;
                    }
                    let silent = Duration::from_millis(silent_ms);
                    if expire && silent_ms > entry.host.delete_timeout_ms() {
                        tracing::debug!(
                            service = %key.grouped_name(),
                            namespace = %key.namespace,
                            instance = %entry.host.instance_id(key),
                            "removing instance: no beat for {silent:?}"
                        );
                        removed.push(entry.owner.clone());
                        service_changed = true;
                        return false;
                    }
                    if entry.host.instance.healthy && silent_ms > entry.host.beat_timeout_ms() {
                        tracing::debug!(
                            service = %key.grouped_name(),
                            namespace = %key.namespace,
                            instance = %entry.host.instance_id(key),
                            "instance unhealthy: no beat for {silent:?}"
                        );
                        let host = Arc::new(entry.host.with_healthy(false));
                        unhealthy.push((entry.host.instance.addr(), host));
                        service_changed = true;
                    }
                    true
                });
                // One line per service and sweep at info (each instance at debug): a mass
                // expiry would otherwise write a line per instance while holding the shard.
                if !unhealthy.is_empty() || !removed.is_empty() {
                    tracing::info!(
                        service = %key.grouped_name(),
                        namespace = %key.namespace,
                        unhealthy = unhealthy.len(),
                        removed = removed.len(),
                        "instances without beats turned unhealthy or were removed"
                    );
                }
                for (addr, host) in unhealthy {
                    state.replace_host(&addr, host);
                }
                for owner in &removed {
                    self.registry.index_remove(owner, key, Some(state));
                }
                state.touch_empty(now);
                if service_changed {
                    changed.push(key.clone());
                }
                if state.ephemeral
                    && state.meta.is_none()
                    && state
                        .empty_since
                        .is_some_and(|since| now.saturating_duration_since(since) > empty_ttl)
                {
                    forget.push(key.clone());
                }
            }
            for key in forget {
                tracing::debug!(service = %key.grouped_name(), namespace = %key.namespace, "removing empty service");
                shard.remove(&key);
            }
        });
        for key in &changed {
            self.notify(key);
        }
    }
}

/// Run the sweep every `check_interval` until shutdown.
pub(crate) async fn sweep_task(naming: Arc<NamingService>, shutdown: CancellationToken) {
    let period = naming
        .settings
        .check_interval
        .max(Duration::from_millis(10));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => naming.sweep(Instant::now()),
        }
    }
}
