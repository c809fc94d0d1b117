//! UDP push to v1 subscribers (Nacos 1.x's `PushService`: a JSON `dom` packet per change, acked by the client).
//!
//! A v1 client that lists a service with `udpPort > 0` and a push-capable user agent is
//! subscribed as `clientIP:udpPort` (with its cluster filter) until it stops listing for
//! 3 × cacheMillis. When the service changes (events merged over `pushTaskDelay`), every
//! subscriber gets `{"type":"dom","data":"<ServiceInfo JSON>","lastRefTime":<n>}` from one
//! server socket, gzip-compressed when the packet is 1024 bytes or more. The client answers
//! `{"type":"push-ack","lastRefTime":"<n>",…}`; acks are matched by (address, lastRefTime).
//! Without an ack after `udp_ack_timeout` the packet is sent once more; without one after
//! another timeout the push counts as failed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nacos_core::ServiceKey;
use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::NamingService;
use super::service_info::{Selection, WireStyle};

/// Packets at least this long are gzip-compressed (clients sniff `1f 8b`).
pub const GZIP_THRESHOLD: usize = 1024;

/// User-agent prefixes of clients that accept UDP push, with the lowest pushable version
/// (Nacos's `push*Version` switches; `Nacos-DNS` uses the python switch).
const PUSH_CLIENTS: &[(&str, (u64, u64, u64))] = &[
    ("Nacos-Java-Client", (0, 1, 0)),
    ("Nacos-Go-Client", (0, 1, 0)),
    ("Nacos-C-Client", (1, 0, 12)),
    ("vip-client4cpp", (1, 0, 12)),
    ("Nacos-CSharp-Client", (0, 9, 0)),
    ("Nacos-DNS", (0, 4, 3)),
];

/// `major.minor.patch` from the start of `text`; missing parts are 0, suffixes are ignored.
fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let numeric: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = numeric.split('.').filter(|p| !p.is_empty());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    Some((major, minor, patch))
}

/// Whether a `User-Agent` (or `Client-Version`) names a client that accepts UDP push, e.g.
/// `Nacos-Java-Client:v1.4.6`. Python's agent does not qualify.
pub fn push_capable(agent: &str) -> bool {
    let agent = agent.trim();
    PUSH_CLIENTS.iter().any(|(prefix, min)| {
        agent.strip_prefix(prefix).is_some_and(|rest| {
            let version = rest
                .strip_prefix(":v")
                .or_else(|| rest.strip_prefix(':'))
                .unwrap_or("");
            parse_version(version).is_some_and(|v| v >= *min)
        })
    })
}

/// Push counters for `/v1/ns/operator/push/state`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushCounters {
    /// Pushes sent (a resend is not a new push).
    pub total: u64,
    /// Pushes that failed to send or got no ack after the resend.
    pub failed: u64,
}

/// A v1 UDP subscription as operator views show it (`/v2/ns/client/*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpSubscription {
    pub key: ServiceKey,
    /// The client's UDP receiver (`clientIP:udpPort`).
    pub addr: SocketAddr,
    /// Its cluster filter (comma-separated, empty for all).
    pub clusters: String,
    /// Epoch millis of its last `instance/list`.
    pub seen_ms: i64,
}

/// One subscriber of a service: the address and its cluster filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Target {
    addr: SocketAddr,
    clusters: String,
}

#[derive(Debug)]
struct Pending {
    packet: Arc<[u8]>,
    sent_at: Instant,
    resent: bool,
}

type Subscribers = HashMap<ServiceKey, HashMap<Target, Instant>>;

#[derive(Debug)]
pub(crate) struct UdpPush {
    /// Per service, each subscriber and when it last listed the service.
    subscribers: Mutex<Subscribers>,
    /// Packets waiting for an ack, by (address, lastRefTime).
    pending: Mutex<HashMap<(SocketAddr, u64), Pending>>,
    total: AtomicU64,
    failed: AtomicU64,
    /// Last `lastRefTime` handed out; strictly increasing.
    last_ref: AtomicU64,
    /// Wall-clock nanoseconds at `base`, so `lastRefTime` reads like a timestamp.
    base_nanos: u64,
    base: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl UdpPush {
    pub(crate) fn new() -> Self {
        let base_nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(0))
            .unwrap_or(0);
        UdpPush {
            subscribers: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            total: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_ref: AtomicU64::new(0),
            base_nanos,
            base: Instant::now(),
        }
    }

    pub(crate) fn subscribe(&self, key: &ServiceKey, addr: SocketAddr, clusters: &str) {
        lock(&self.subscribers)
            .entry(key.clone())
            .or_default()
            .insert(
                Target {
                    addr,
                    clusters: clusters.to_string(),
                },
                Instant::now(),
            );
    }

    /// Every (service, subscriber) pair, with when the subscriber last listed the service.
    pub(crate) fn subscriptions(&self) -> Vec<UdpSubscription> {
        lock(&self.subscribers)
            .iter()
            .flat_map(|(key, targets)| {
                targets.iter().map(|(target, seen)| UdpSubscription {
                    key: key.clone(),
                    addr: target.addr,
                    clusters: target.clusters.clone(),
                    seen_ms: super::epoch_ms(*seen),
                })
            })
            .collect()
    }

    pub(crate) fn subscriber_count(&self) -> usize {
        lock(&self.subscribers).values().map(HashMap::len).sum()
    }

    fn has_subscribers(&self, key: &ServiceKey) -> bool {
        lock(&self.subscribers).contains_key(key)
    }

    fn subscribed_services(&self) -> Vec<ServiceKey> {
        lock(&self.subscribers).keys().cloned().collect()
    }

    fn targets(&self, key: &ServiceKey) -> Vec<Target> {
        lock(&self.subscribers)
            .get(key)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn expire_subscribers(&self, now: Instant, ttl: Duration) {
        let mut subs = lock(&self.subscribers);
        for targets in subs.values_mut() {
            targets.retain(|_, seen| now.saturating_duration_since(*seen) <= ttl);
        }
        subs.retain(|_, targets| !targets.is_empty());
    }

    pub(crate) fn counters(&self, reset: bool) -> PushCounters {
        if reset {
            PushCounters {
                total: self.total.swap(0, Ordering::Relaxed),
                failed: self.failed.swap(0, Ordering::Relaxed),
            }
        } else {
            PushCounters {
                total: self.total.load(Ordering::Relaxed),
                failed: self.failed.load(Ordering::Relaxed),
            }
        }
    }

    /// A fresh `lastRefTime`: wall-clock-like nanoseconds, strictly increasing.
    fn next_ref(&self) -> u64 {
        let elapsed = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let candidate = self.base_nanos.saturating_add(elapsed);
        let mut previous = self.last_ref.load(Ordering::Relaxed);
        loop {
            let next = candidate.max(previous.saturating_add(1));
            match self.last_ref.compare_exchange_weak(
                previous,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(actual) => previous = actual,
            }
        }
    }

    /// Handle a datagram from a client: a `push-ack` settles its pending push.
    fn on_datagram(&self, bytes: &[u8], from: SocketAddr) {
        let Ok(ack) = serde_json::from_slice::<serde_json::Value>(bytes) else {
            tracing::debug!(%from, "ignoring a non-JSON datagram");
            return;
        };
        if ack.get("type").and_then(|t| t.as_str()) != Some("push-ack") {
            return;
        }
        let reference = match ack.get("lastRefTime") {
            Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        let Some(reference) = reference else {
            tracing::debug!(%from, "ack without a usable lastRefTime");
            return;
        };
        if lock(&self.pending).remove(&(from, reference)).is_none() {
            tracing::debug!(%from, reference, "ack for no pending push");
        }
    }

    /// Pushes past the ack timeout: resend once, then count as failed. Returns the resends.
    fn due(&self, now: Instant, timeout: Duration) -> Vec<(SocketAddr, Arc<[u8]>)> {
        let mut resend = Vec::new();
        let mut failed = 0u64;
        lock(&self.pending).retain(|(addr, _), p| {
            if now.saturating_duration_since(p.sent_at) < timeout {
                return true;
            }
            if p.resent {
                failed += 1;
                return false;
            }
            p.resent = true;
            p.sent_at = now;
            resend.push((*addr, Arc::clone(&p.packet)));
            true
        });
        if failed > 0 {
            self.failed.fetch_add(failed, Ordering::Relaxed);
        }
        resend
    }
}

/// The packet a v1 client receives.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PushPacket<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: &'a str,
    last_ref_time: u64,
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// Serialise a packet, compressing it when it is large.
fn encode(data: &str, last_ref_time: u64) -> Option<Vec<u8>> {
    let json = serde_json::to_vec(&PushPacket {
        kind: "dom",
        data,
        last_ref_time,
    })
    .ok()?;
    if json.len() < GZIP_THRESHOLD {
        return Some(json);
    }
    match gzip(&json) {
        Ok(compressed) => Some(compressed),
        Err(e) => {
            tracing::warn!("cannot gzip a push packet: {e}");
            Some(json)
        }
    }
}

/// Decode a push packet as a client does: gunzip when it starts with the gzip magic bytes.
pub fn decode_packet(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        let mut decoder = flate2::write::GzDecoder::new(&mut out);
        decoder.write_all(bytes)?;
        decoder.finish()?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

/// The one server socket pushes are sent from (and acks received on).
pub(crate) fn bind_socket() -> std::io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

impl NamingService {
    /// Push the current state of `key` to each of its UDP subscribers.
    async fn push_service(&self, socket: &UdpSocket, key: &ServiceKey) {
        let targets = self.push.targets(key);
        if targets.is_empty() {
            return;
        }
        let mut by_clusters: BTreeMap<&str, Vec<SocketAddr>> = BTreeMap::new();
        for target in &targets {
            by_clusters
                .entry(target.clusters.as_str())
                .or_default()
                .push(target.addr);
        }
        for (clusters, addrs) in by_clusters {
            let info = self.select(
                key,
                Selection {
                    clusters,
                    healthy_only: false,
                },
            );
            let data = match serde_json::to_string(&info.wire(WireStyle::UdpPush)) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!("cannot serialise service info for push: {e}");
                    continue;
                }
            };
            for addr in addrs {
                let reference = self.push.next_ref();
                let Some(packet) = encode(&data, reference) else {
                    continue;
                };
                let packet: Arc<[u8]> = Arc::from(packet);
                self.push.total.fetch_add(1, Ordering::Relaxed);
                // Pending first, so an ack that beats the send's return still matches.
                lock(&self.push.pending).insert(
                    (addr, reference),
                    Pending {
                        packet: Arc::clone(&packet),
                        sent_at: Instant::now(),
                        resent: false,
                    },
                );
                if let Err(e) = socket.send_to(&packet, addr).await {
                    tracing::debug!(%addr, "UDP push failed: {e}");
                    if lock(&self.push.pending)
                        .remove(&(addr, reference))
                        .is_some()
                    {
                        self.push.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    async fn retry_pushes(&self, socket: &UdpSocket) {
        for (addr, packet) in self.push.due(Instant::now(), self.settings.udp_ack_timeout) {
            if let Err(e) = socket.send_to(&packet, addr).await {
                tracing::debug!(%addr, "UDP push resend failed: {e}");
            }
        }
    }
}

/// The push loop: merge change events, push, read acks, resend, expire subscribers.
pub(crate) async fn run(
    naming: Arc<NamingService>,
    socket: UdpSocket,
    mut changes: broadcast::Receiver<Arc<ServiceKey>>,
    shutdown: CancellationToken,
) {
    let delay = naming.timings.push_delay;
    let ack_timeout = naming.settings.udp_ack_timeout;
    let tick_period = (ack_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick_period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty: HashSet<ServiceKey> = HashSet::new();
    let mut flush_at: Option<tokio::time::Instant> = None;
    let mut last_flush: Option<tokio::time::Instant> = None;
    // Leading edge: the first change after a quiet `delay` is pushed at once; changes within
    // `delay` of the last push wait for the end of that window and go out together.
    let schedule = |flush_at: &mut Option<tokio::time::Instant>,
                    last_flush: Option<tokio::time::Instant>| {
        let now = tokio::time::Instant::now();
        flush_at.get_or_insert_with(|| last_flush.map_or(now, |at| (at + delay).max(now)));
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let deadline = flush_at;
        let flush = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            event = changes.recv() => match event {
                Ok(key) => {
                    if naming.push.has_subscribers(&key) {
                        dirty.insert(Arc::unwrap_or_clone(key));
                        schedule(&mut flush_at, last_flush);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "push lagged behind changes; pushing every subscribed service");
                    dirty.extend(naming.push.subscribed_services());
                    schedule(&mut flush_at, last_flush);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = flush => {
                flush_at = None;
                last_flush = Some(tokio::time::Instant::now());
                for key in std::mem::take(&mut dirty) {
                    naming.push_service(&socket, &key).await;
                }
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, from)) => naming.push.on_datagram(&buf[..n], from),
                Err(e) => tracing::debug!("UDP receive error: {e}"),
            },
            _ = ticker.tick() => {
                naming.retry_pushes(&socket).await;
                naming.push.expire_subscribers(Instant::now(), naming.timings.udp_subscriber_ttl);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_capable_agents() {
        assert!(push_capable("Nacos-Java-Client:v1.4.6"));
        assert!(push_capable("Nacos-Java-Client:v1.0.0"));
        assert!(push_capable("Nacos-Go-Client:v1.1.6"));
        assert!(push_capable("Nacos-C-Client:v1.0.12"));
        assert!(!push_capable("Nacos-C-Client:v1.0.11"));
        assert!(push_capable("Nacos-CSharp-Client:v0.9.1"));
        assert!(!push_capable("Nacos-CSharp-Client:v0.8.9"));
        assert!(push_capable("Nacos-DNS:v1.0.0"));
        assert!(!push_capable("Nacos-Python-Client:v0.1.0"));
        assert!(!push_capable("curl/8.0"));
        assert!(!push_capable("Nacos-Java-Client"));
        assert!(push_capable("Nacos-Java-Client:v2.0.0-SNAPSHOT"));
    }

    #[test]
    fn packets_compress_when_large() {
        let small = encode("{}", 7).expect("encode");
        assert_eq!(small[0], b'{');
        let text: String = std::iter::repeat_n("x", 2000).collect();
        let big = encode(&text, 8).expect("encode");
        assert_eq!(&big[..2], &[0x1f, 0x8b]);
        let back = decode_packet(&big).expect("gunzip");
        let v: serde_json::Value = serde_json::from_slice(&back).expect("json");
        assert_eq!(v["type"], "dom");
        assert_eq!(v["lastRefTime"], 8);
        assert_eq!(v["data"].as_str().map(str::len), Some(2000));
    }

    #[test]
    fn refs_increase_and_acks_settle() {
        let push = UdpPush::new();
        let a = push.next_ref();
        let b = push.next_ref();
        assert!(b > a);
        let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        lock(&push.pending).insert(
            (addr, b),
            Pending {
                packet: Arc::from(vec![1u8]),
                sent_at: Instant::now(),
                resent: false,
            },
        );
        let ack = format!(r#"{{"type":"push-ack","lastRefTime":"{b}","data":""}}"#);
        push.on_datagram(ack.as_bytes(), addr);
        assert!(lock(&push.pending).is_empty());
    }

    #[test]
    fn resend_once_then_fail() {
        let push = UdpPush::new();
        let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let t0 = Instant::now();
        lock(&push.pending).insert(
            (addr, 1),
            Pending {
                packet: Arc::from(vec![1u8]),
                sent_at: t0,
                resent: false,
            },
        );
        let timeout = Duration::from_millis(100);
        assert!(push.due(t0, timeout).is_empty());
        assert_eq!(push.due(t0 + timeout, timeout).len(), 1);
        assert!(push.due(t0 + timeout + timeout, timeout).is_empty());
        assert_eq!(push.counters(false).failed, 1);
        assert!(lock(&push.pending).is_empty());
    }
}
