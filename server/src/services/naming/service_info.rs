//! What a subscriber sees of a service: the selection rules (cluster filter, enabled filter,
//! `healthyOnly`, protect threshold) and the one `ServiceInfo` value every edge serialises
//! (v1 HTTP, UDP push, v2 HTTP and gRPC differ only in how the name is spelled).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use nacos_core::{Instance, ServiceKey, ServiceMeta};
use serde::Serialize;

/// Metadata keys that override an instance's heart-beat timings (milliseconds).
pub const META_BEAT_INTERVAL: &str = "preserved.heart.beat.interval";
pub const META_BEAT_TIMEOUT: &str = "preserved.heart.beat.timeout";
pub const META_DELETE_TIMEOUT: &str = "preserved.ip.delete.timeout";
pub const META_ID_GENERATOR: &str = "preserved.instance.id.generator";

/// Default timings of a host whose metadata does not override them (the server's settings).
#[derive(Debug, Clone, Copy)]
pub struct HostDefaults {
    pub beat_interval: Duration,
    pub beat_timeout: Duration,
    pub delete_timeout: Duration,
}

/// A metadata timing in milliseconds: `None` when absent, `Some(Err)` when not a number.
pub fn metadata_ms(metadata: &BTreeMap<String, String>, key: &str) -> Option<Result<u64, ()>> {
    metadata
        .get(key)
        .map(|v| v.trim().parse::<u64>().map_err(|_| ()))
}

/// One instance as served: the stored instance plus the timings derived from its metadata
/// once, at write time. Immutable; a change replaces the whole host. Kept small, since a
/// registry holds one per instance: what can be derived cheaply when rendering (the generated
/// instance id, the id generator, the service name) is not stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub instance: Instance,
    /// Effective timings in milliseconds: metadata overrides, else the server defaults.
    beat_interval_ms: u32,
    beat_timeout_ms: u32,
    delete_timeout_ms: u32,
}

impl Host {
    pub fn new(instance: Instance, defaults: &HostDefaults) -> Self {
        let ms = |key: &str, default: Duration| -> u32 {
            let millis = match metadata_ms(&instance.metadata, key) {
                Some(Ok(v)) => v,
                _ => u64::try_from(default.as_millis()).unwrap_or(u64::MAX),
            };
            u32::try_from(millis).unwrap_or(u32::MAX)
        };
        Host {
            beat_interval_ms: ms(META_BEAT_INTERVAL, defaults.beat_interval),
            beat_timeout_ms: ms(META_BEAT_TIMEOUT, defaults.beat_timeout),
            delete_timeout_ms: ms(META_DELETE_TIMEOUT, defaults.delete_timeout),
            instance,
        }
    }

    /// The client's id, else Nacos's generated `ip#port#cluster#group@@service`.
    pub fn instance_id(&self, key: &ServiceKey) -> Cow<'_, str> {
        let inst = &self.instance;
        match inst.instance_id.as_deref() {
            Some(id) if !id.trim().is_empty() => Cow::Borrowed(id),
            _ => Cow::Owned(format!(
                "{}#{}#{}#{}@@{}",
                inst.ip, inst.port, inst.cluster, key.group, key.name
            )),
        }
    }

    /// The `preserved.instance.id.generator` metadata, else `simple`.
    pub fn id_generator(&self) -> &str {
        self.instance
            .metadata
            .get(META_ID_GENERATOR)
            .map_or("simple", String::as_str)
    }

    pub fn beat_interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.beat_interval_ms))
    }

    pub fn beat_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.beat_timeout_ms))
    }

    pub fn delete_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.delete_timeout_ms))
    }

    pub fn beat_timeout_ms(&self) -> u64 {
        u64::from(self.beat_timeout_ms)
    }

    pub fn delete_timeout_ms(&self) -> u64 {
        u64::from(self.delete_timeout_ms)
    }

    /// A copy with another health flag.
    pub fn with_healthy(&self, healthy: bool) -> Self {
        let mut copy = self.clone();
        copy.instance.healthy = healthy;
        copy
    }
}

/// A host in a selection; `healthy` may differ from the stored flag when protection applied.
#[derive(Debug, Clone)]
pub struct HostView {
    pub host: Arc<Host>,
    pub healthy: bool,
}

/// A selection of a service's hosts, ready to serialise.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    pub key: ServiceKey,
    /// `group@@service`, computed once per selection for every host's `serviceName`.
    pub grouped_name: String,
    /// The requested cluster filter, echoed (`""` for all).
    pub clusters: String,
    pub cache_millis: u64,
    /// Milliseconds since the epoch when the selection was made.
    pub last_ref_time: i64,
    pub hosts: Vec<HostView>,
    pub reach_protection_threshold: bool,
}

/// What to select.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    /// Comma-separated cluster names; empty means all.
    pub clusters: &'a str,
    /// Drop unhealthy hosts (unless protection kicks in).
    pub healthy_only: bool,
}

/// Select hosts of a service (Nacos 2.x's rules):
/// 1. keep hosts of the requested clusters that are enabled;
/// 2. `healthy_only` drops unhealthy hosts;
/// 3. only when the service has stored metadata: if healthy / total ≤ protectThreshold
///    (negative counts as 0), return every host of step 1 marked healthy and set
///    `reach_protection_threshold`. With the default threshold 0 this happens only when no host
///    is healthy. A label selector keeps every host, as Nacos does when no CMDB labels instances.
pub fn select<'h>(
    hosts: impl Iterator<Item = &'h Arc<Host>>,
    meta: Option<&ServiceMeta>,
    selection: Selection<'_>,
) -> (Vec<HostView>, bool) {
    let wanted: HashSet<&str> = selection
        .clusters
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let mut candidates: Vec<&Arc<Host>> = Vec::new();
    let mut healthy = 0usize;
    for host in hosts {
        let inst = &host.instance;
        if !inst.enabled || (!wanted.is_empty() && !wanted.contains(inst.cluster.as_str())) {
            continue;
        }
        if inst.healthy {
            healthy += 1;
        }
        candidates.push(host);
    }
    if let Some(meta) = meta {
        let threshold = meta.protect_threshold.max(0.0);
        if !candidates.is_empty() && (healthy as f32 / candidates.len() as f32) <= threshold {
            let hosts = candidates
                .into_iter()
                .map(|h| HostView {
                    host: Arc::clone(h),
                    healthy: true,
                })
                .collect();
            return (hosts, true);
        }
    }
    let hosts = candidates
        .into_iter()
        .filter(|h| !selection.healthy_only || h.instance.healthy)
        .map(|h| HostView {
            host: Arc::clone(h),
            healthy: h.instance.healthy,
        })
        .collect();
    (hosts, false)
}

/// How an edge spells the service in a `ServiceInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireStyle {
    /// v1 and v2 HTTP: `name` = `group@@service`, `groupName` present.
    Http,
    /// UDP push to v1 clients: `name` = `group@@service`, no `groupName`.
    UdpPush,
    /// gRPC: `name` = the plain service name, `groupName` present.
    Grpc,
}

/// Nacos's `ServiceInfo` JSON (null fields omitted).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInfoWire<'a> {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_name: Option<&'a str>,
    pub clusters: &'a str,
    pub cache_millis: u64,
    pub hosts: Vec<InstanceWire<'a>>,
    pub last_ref_time: i64,
    pub checksum: &'a str,
    #[serde(rename = "allIPs")]
    pub all_ips: bool,
    pub reach_protection_threshold: bool,
    pub valid: bool,
}

/// Nacos's `Instance` JSON, including the four derived fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceWire<'a> {
    pub instance_id: Cow<'a, str>,
    pub ip: &'a str,
    pub port: u16,
    pub weight: f64,
    pub healthy: bool,
    pub enabled: bool,
    pub ephemeral: bool,
    pub cluster_name: &'a str,
    pub service_name: &'a str,
    pub metadata: &'a BTreeMap<String, String>,
    pub instance_heart_beat_interval: u64,
    #[serde(rename = "instanceHeartBeatTimeOut")]
    pub instance_heart_beat_time_out: u64,
    pub ip_delete_timeout: u64,
    pub instance_id_generator: &'a str,
}

impl<'a> InstanceWire<'a> {
    /// `service_name` is `group@@service`, as every Nacos edge names an instance's service.
    pub fn new(host: &'a Host, healthy: bool, key: &ServiceKey, service_name: &'a str) -> Self {
        let inst = &host.instance;
        InstanceWire {
            instance_id: host.instance_id(key),
            ip: &inst.ip,
            port: inst.port,
            weight: inst.weight,
            healthy,
            enabled: inst.enabled,
            ephemeral: inst.ephemeral,
            cluster_name: &inst.cluster,
            service_name,
            metadata: &inst.metadata,
            instance_heart_beat_interval: u64::from(host.beat_interval_ms),
            instance_heart_beat_time_out: u64::from(host.beat_timeout_ms),
            ip_delete_timeout: u64::from(host.delete_timeout_ms),
            instance_id_generator: host.id_generator(),
        }
    }
}

impl ServiceInfo {
    /// The JSON view for one edge.
    pub fn wire(&self, style: WireStyle) -> ServiceInfoWire<'_> {
        let name = match style {
            WireStyle::Http | WireStyle::UdpPush => self.key.grouped_name(),
            WireStyle::Grpc => self.key.name.clone(),
        };
        let hosts = self
            .hosts
            .iter()
            .map(|h| InstanceWire::new(&h.host, h.healthy, &self.key, &self.grouped_name))
            .collect();
        ServiceInfoWire {
            name,
            group_name: (style != WireStyle::UdpPush).then_some(self.key.group.as_str()),
            clusters: &self.clusters,
            cache_millis: self.cache_millis,
            hosts,
            last_ref_time: self.last_ref_time,
            checksum: "",
            all_ips: false,
            reach_protection_threshold: self.reach_protection_threshold,
            valid: true,
        }
    }
}

/// Which serialised selection a cache entry holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RenderKey {
    pub clusters: String,
    pub healthy_only: bool,
    pub style: WireStyle,
}

/// A serialised `ServiceInfo` split around its `lastRefTime` value, so a cached selection is
/// answered with a fresh timestamp and no re-serialisation.
#[derive(Debug)]
pub struct Rendered {
    head: Vec<u8>,
    tail: Vec<u8>,
}

/// Stands in for `lastRefTime` while rendering. The unescaped key-value pair can only be the
/// top-level field: hosts have no such field and metadata values are strings.
const REF_SENTINEL: i64 = i64::MIN;

impl Rendered {
    pub fn new(info: &ServiceInfo, style: WireStyle) -> Option<Self> {
        let mut probe = info.clone();
        probe.last_ref_time = REF_SENTINEL;
        let json = serde_json::to_vec(&probe.wire(style)).ok()?;
        let marker = format!("\"lastRefTime\":{REF_SENTINEL}");
        let at = json
            .windows(marker.len())
            .rposition(|w| w == marker.as_bytes())?;
        let value_at = at + marker.len() - REF_SENTINEL.to_string().len();
        Some(Rendered {
            head: json[..value_at].to_vec(),
            tail: json[at + marker.len()..].to_vec(),
        })
    }

    /// The JSON with `last_ref_time` filled in.
    pub fn body(&self, last_ref_time: i64) -> Vec<u8> {
        let stamp = last_ref_time.to_string();
        let mut out = Vec::with_capacity(self.head.len() + stamp.len() + self.tail.len());
        out.extend_from_slice(&self.head);
        out.extend_from_slice(stamp.as_bytes());
        out.extend_from_slice(&self.tail);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> HostDefaults {
        HostDefaults {
            beat_interval: Duration::from_secs(5),
            beat_timeout: Duration::from_secs(15),
            delete_timeout: Duration::from_secs(30),
        }
    }

    fn host(ip: &str, cluster: &str, healthy: bool, enabled: bool) -> Arc<Host> {
        let mut inst = Instance::new(ip, 80);
        inst.cluster = cluster.into();
        inst.healthy = healthy;
        inst.enabled = enabled;
        Arc::new(Host::new(inst, &defaults()))
    }

    #[test]
    fn derived_fields_and_id() {
        let mut inst = Instance::new("1.2.3.4", 8080);
        inst.metadata
            .insert(META_BEAT_TIMEOUT.to_string(), "2000".to_string());
        let h = Host::new(inst, &defaults());
        let key = ServiceKey::new("public", "G", "s");
        assert_eq!(h.instance_id(&key), "1.2.3.4#8080#DEFAULT#G@@s");
        assert_eq!(h.beat_timeout(), Duration::from_millis(2000));
        assert_eq!(h.beat_interval(), Duration::from_secs(5));
        assert_eq!(h.id_generator(), "simple");
    }

    #[test]
    fn filters_and_protection() {
        let hosts = [
            host("1.1.1.1", "A", true, true),
            host("1.1.1.2", "B", false, true),
            host("1.1.1.3", "A", true, false),
        ];
        let (all, reached) = select(hosts.iter(), None, Selection::default());
        assert_eq!(all.len(), 2);
        assert!(!reached);
        let (only_a, _) = select(
            hosts.iter(),
            None,
            Selection {
                clusters: "A",
                healthy_only: false,
            },
        );
        assert_eq!(only_a.len(), 1);
        let (healthy, _) = select(
            hosts.iter(),
            None,
            Selection {
                clusters: "",
                healthy_only: true,
            },
        );
        assert_eq!(healthy.len(), 1);
        // Protection: 1 healthy of 2 = 0.5 <= 0.6.
        let mut meta = ServiceMeta::new(ServiceKey::new("public", "DEFAULT_GROUP", "s"), true);
        meta.protect_threshold = 0.6;
        let (protected, reached) = select(
            hosts.iter(),
            Some(&meta),
            Selection {
                clusters: "",
                healthy_only: true,
            },
        );
        assert!(reached);
        assert_eq!(protected.len(), 2);
        assert!(protected.iter().all(|h| h.healthy));
        // Default threshold 0 on an empty selection does not trigger.
        meta.protect_threshold = 0.0;
        let (none, reached) = select(
            hosts.iter(),
            Some(&meta),
            Selection {
                clusters: "C",
                healthy_only: false,
            },
        );
        assert!(none.is_empty() && !reached);
    }

    #[test]
    fn rendered_matches_direct_serialisation() {
        let hosts = [host("1.1.1.1", "A", true, true)];
        let (views, _) = select(hosts.iter(), None, Selection::default());
        let info = ServiceInfo {
            key: ServiceKey::new("public", "DEFAULT_GROUP", "s"),
            grouped_name: "DEFAULT_GROUP@@s".to_string(),
            clusters: String::new(),
            cache_millis: 10000,
            last_ref_time: 1_700_000_000_123,
            hosts: views,
            reach_protection_threshold: false,
        };
        for style in [WireStyle::Http, WireStyle::UdpPush, WireStyle::Grpc] {
            let direct = serde_json::to_vec(&info.wire(style)).expect("json");
            let rendered = Rendered::new(&info, style).expect("render");
            assert_eq!(rendered.body(info.last_ref_time), direct);
        }
    }
}
