//! The metric handles the hot paths record into: plain atomics, created before the first
//! request (one per route template, per gRPC payload type, per push kind, per storage
//! operation), so recording costs a clock read and a few relaxed atomic adds — no allocation,
//! no lock, no map lookup, no formatting. Encoding (names, labels, escaping, the exposition
//! format) belongs to `prometheus-client` and happens only at scrape time
//! (`edges::http::metrics`).
//!
//! Histograms are kept here rather than taken from `prometheus-client` because its histogram
//! takes a mutex per observation; these record into fixed atomic buckets and hand their
//! snapshot to the library's encoder.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::MetricEncoder;

/// Upper bounds (seconds) of every latency histogram: 0.5 ms to 10 s, then +Inf (long polls).
pub const LATENCY_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BOUNDS_NANOS: [u64; 14] = {
    let mut out = [0u64; 14];
    let mut i = 0;
    while i < 14 {
        out[i] = (LATENCY_BOUNDS[i] * 1e9) as u64;
        i += 1;
    }
    out
};

/// A latency histogram over [`LATENCY_BOUNDS`]: per-bucket counts (not cumulative), the sum in
/// nanoseconds and the count, each an atomic.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; 15],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let index = BOUNDS_NANOS
            .iter()
            .position(|bound| nanos <= *bound)
            .unwrap_or(BOUNDS_NANOS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Sum of observations in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }

    /// Encode as one histogram series through the library's encoder. Buckets are read one by
    /// one while requests go on, so `_count` is taken as their total: the series stays
    /// self-consistent (the +Inf bucket equals `_count`).
    pub fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut buckets = [(0.0, 0u64); 15];
        let mut total = 0;
        for (i, slot) in buckets.iter_mut().enumerate() {
            let n = self.buckets[i].load(Ordering::Relaxed);
            total += n;
            *slot = (LATENCY_BOUNDS.get(i).copied().unwrap_or(f64::INFINITY), n);
        }
        encoder.encode_histogram::<NoExemplar>(self.sum_seconds(), total, &buckets, None)
    }
}

/// Histograms never carry exemplars here.
type NoExemplar = Vec<(String, String)>;

/// How many distinct codes one series set keeps apart; later codes share the overflow slot.
pub const CODE_SLOTS: usize = 8;
/// The code the overflow slot reports.
pub const OTHER_CODE: i32 = -1;
const FREE: i32 = i32::MIN;

/// One histogram per response code (HTTP status, gRPC error code), without knowing the codes
/// in advance: a slot is claimed by a compare-and-swap on first use of its code, then found by
/// a scan of at most [`CODE_SLOTS`] atomic loads.
#[derive(Debug)]
pub struct ByCode {
    codes: [AtomicI32; CODE_SLOTS],
    series: [Histogram; CODE_SLOTS],
    other: Histogram,
}

impl Default for ByCode {
    fn default() -> Self {
        Self {
            codes: std::array::from_fn(|_| AtomicI32::new(FREE)),
            series: Default::default(),
            other: Histogram::default(),
        }
    }
}

impl ByCode {
    pub fn observe(&self, code: i32, elapsed: Duration) {
        self.slot(code).observe(elapsed);
    }

    fn slot(&self, code: i32) -> &Histogram {
        for (slot, series) in self.codes.iter().zip(&self.series) {
            let current = slot.load(Ordering::Acquire);
            if current == code {
                return series;
            }
            if current == FREE {
                match slot.compare_exchange(FREE, code, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return series,
                    Err(taken) if taken == code => return series,
                    Err(_) => continue,
                }
            }
        }
        &self.other
    }

    /// Every code seen, with its histogram ([`OTHER_CODE`] for the overflow).
    pub fn each(&self) -> impl Iterator<Item = (i32, &Histogram)> {
        self.codes
            .iter()
            .zip(&self.series)
            .filter_map(|(code, series)| {
                let code = code.load(Ordering::Acquire);
                (code != FREE).then_some((code, series))
            })
            .chain((self.other.count() > 0).then_some((OTHER_CODE, &self.other)))
    }

    /// Observations of `code` so far (0 when never seen).
    pub fn count_of(&self, code: i32) -> u64 {
        self.each()
            .filter(|(c, _)| *c == code)
            .map(|(_, h)| h.count())
            .sum()
    }
}

/// The methods HTTP series keep apart.
pub const HTTP_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OTHER"];

pub fn method_index(method: &axum::http::Method) -> usize {
    use axum::http::Method;
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        _ => 6,
    }
}

/// The series of one route template: one [`ByCode`] per method, allocated when the method is
/// first used on it (most routes see one or two methods), so idle routes cost a few words.
#[derive(Debug)]
pub struct RouteStats {
    /// The template as Nacos's `uri` label shows it: relative to the context path.
    pub uri: &'static str,
    methods: [OnceLock<Box<ByCode>>; HTTP_METHODS.len()],
}

impl RouteStats {
    pub fn new(uri: &'static str) -> Self {
        Self {
            uri,
            methods: Default::default(),
        }
    }

    pub fn observe(&self, method: usize, status: u16, elapsed: Duration) {
        if let Some(cell) = self.methods.get(method) {
            cell.get_or_init(Box::default)
                .observe(i32::from(status), elapsed);
        }
    }

    /// (method, per-status series) of every method used on this route.
    pub fn each(&self) -> impl Iterator<Item = (&'static str, &ByCode)> {
        HTTP_METHODS
            .iter()
            .zip(&self.methods)
            .filter_map(|(name, cell)| cell.get().map(|series| (*name, series.as_ref())))
    }
}

/// The series of every route, in the order the router adds them; built with the first
/// router of a server (a second router of the same server reuses them).
#[derive(Debug)]
pub struct HttpStats {
    pub routes: Vec<Arc<RouteStats>>,
}

impl HttpStats {
    pub fn new(uris: impl IntoIterator<Item = &'static str>) -> Self {
        Self {
            routes: uris
                .into_iter()
                .map(|uri| Arc::new(RouteStats::new(uri)))
                .collect(),
        }
    }

    /// The series of route `index`, or of `uri` when the table has no such index (a router
    /// built with other routes than the first).
    pub fn route(&self, index: usize, uri: &'static str) -> Arc<RouteStats> {
        match self.routes.get(index) {
            Some(stats) if stats.uri == uri => Arc::clone(stats),
            _ => Arc::new(RouteStats::new(uri)),
        }
    }
}

/// The series of every handled gRPC payload type, by error code (0: success); built with the
/// first gRPC edge of a server.
#[derive(Debug)]
pub struct GrpcStats {
    /// Sorted by type name.
    pub types: Vec<(&'static str, Arc<ByCode>)>,
}

impl GrpcStats {
    pub fn new(types: impl IntoIterator<Item = &'static str>) -> Self {
        let mut types: Vec<_> = types.into_iter().map(|t| (t, Arc::default())).collect();
        types.sort_by_key(|(t, _)| *t);
        Self { types }
    }

    pub fn of(&self, type_name: &str) -> Option<Arc<ByCode>> {
        self.types
            .binary_search_by_key(&type_name, |(t, _)| *t)
            .ok()
            .map(|i| Arc::clone(&self.types[i].1))
    }
}

/// A counter with nothing else to it.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Pushes of one kind (config change notifications, naming subscriber notifications): the
/// latency of each acknowledged try, failed tries, and the slowest try (Nacos's
/// `maxPushCost`).
#[derive(Debug, Default)]
pub struct PushStats {
    pub latency: Histogram,
    pub failed: Counter,
    max_nanos: AtomicU64,
}

impl PushStats {
    pub fn succeeded(&self, elapsed: Duration) {
        self.latency.observe(elapsed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.max_nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    pub fn max(&self) -> Option<Duration> {
        let nanos = self.max_nanos.load(Ordering::Relaxed);
        (self.latency.count() > 0).then(|| Duration::from_nanos(nanos))
    }
}

/// The storage operations that are timed, in the order of [`StorageStats`]'s arrays.
pub const STORAGE_OPS: [&str; 12] = [
    "config_get",
    "config_publish",
    "config_remove",
    "config_search",
    "config_history",
    "config_gray",
    "config_changes",
    "instance_read",
    "instance_write",
    "service_read",
    "service_write",
    "config_history_purge",
];

/// Latency and failures of storage calls, per operation, for one backend.
#[derive(Debug)]
pub struct StorageStats {
    pub backend: &'static str,
    pub latency: [Histogram; STORAGE_OPS.len()],
    pub errors: [Counter; STORAGE_OPS.len()],
}

impl StorageStats {
    pub fn new(backend: &'static str) -> Self {
        Self {
            backend,
            latency: Default::default(),
            errors: Default::default(),
        }
    }

    /// Record one call of operation `op` (an index into [`STORAGE_OPS`]).
    pub fn record<T, E>(&self, op: usize, elapsed: Duration, result: &Result<T, E>) {
        if let Some(h) = self.latency.get(op) {
            h.observe(elapsed);
        }
        if result.is_err()
            && let Some(c) = self.errors.get(op)
        {
            c.inc();
        }
    }
}

/// Nacos's config module counters (`nacos_monitor{module="config"}`).
#[derive(Debug, Default)]
pub struct ConfigCounters {
    /// Config reads answered (HTTP and gRPC).
    pub get_config: Counter,
    /// Config publishes accepted (HTTP and gRPC).
    pub publish: Counter,
}

/// Every hot-path handle of one server. Per server rather than global, so several servers in
/// one process (tests) keep their own numbers.
#[derive(Debug)]
pub struct Metrics {
    /// Per route template; set when the HTTP router is built.
    pub http: OnceLock<HttpStats>,
    /// Per payload type; set when the gRPC edge is built.
    pub grpc: OnceLock<GrpcStats>,
    pub config: ConfigCounters,
    pub config_push: Arc<PushStats>,
    pub naming_push: Arc<PushStats>,
    pub storage: StorageStats,
    /// gRPC requests refused before reaching a handler (unknown type, unregistered
    /// connection, server starting), by error code.
    pub grpc_rejected: ByCode,
}

impl Metrics {
    pub fn new(backend: &'static str) -> Self {
        Self {
            http: OnceLock::new(),
            grpc: OnceLock::new(),
            config: ConfigCounters::default(),
            config_push: Arc::default(),
            naming_push: Arc::default(),
            storage: StorageStats::new(backend),
            grpc_rejected: ByCode::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_by_bound() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(400));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(30));
        assert_eq!(h.count(), 3);
        assert_eq!(h.buckets[0].load(Ordering::Relaxed), 1);
        assert_eq!(h.buckets[3].load(Ordering::Relaxed), 1);
        assert_eq!(h.buckets[14].load(Ordering::Relaxed), 1);
        assert!((h.sum_seconds() - 30.0034).abs() < 1e-9);
    }

    #[test]
    fn codes_claim_slots_then_overflow() {
        let by = ByCode::default();
        for code in 0..(CODE_SLOTS as i32 + 3) {
            by.observe(code, Duration::from_millis(1));
        }
        by.observe(2, Duration::from_millis(1));
        assert_eq!(by.count_of(2), 2);
        assert_eq!(by.count_of(OTHER_CODE), 3);
        assert_eq!(by.each().count(), CODE_SLOTS + 1);
    }
}
