//! `GET /actuator/prometheus`: every metric in the Prometheus text format (0.0.4), as Nacos's
//! Spring actuator serves it. Open, as Nacos leaves it, unless `nacos.metrics.auth.enabled`
//! asks for an admin's token.
//!
//! Nothing here runs per request of the other endpoints: counters and histograms are read from
//! their atomic handles ([`crate::foundation::metrics`]) and gauges (config, service, instance,
//! connection counts; Raft; database nodes; the process) are computed now, from the services.
//! `prometheus-client` writes names, labels and escaping.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::secured::{self, ADMIN_R, M, OPEN, Routes};
use crate::app::AppState;
use crate::foundation::metrics::{HTTP_METHODS, Histogram, OTHER_CODE, STORAGE_OPS};
use crate::foundation::process::{self, ProcessStats};
use crate::foundation::protocol::error::code;

pub const PATH: &str = "/actuator/prometheus";

pub fn routes() -> Routes {
    // Open in the table: the guard depends on `nacos.metrics.auth.enabled`, checked below.
    Routes::new().route(PATH, get(prometheus), &[(M::Get, OPEN)])
}

/// How long the scrape waits for the config count (a query per namespace) before leaving it
/// out: a slow database must not make the whole scrape time out.
const COUNT_TIMEOUT: Duration = Duration::from_secs(2);

async fn prometheus(State(app): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    if app.settings.metrics_auth
        && let Err(refused) = secured::require_fixed(&app, &parts, ADMIN_R, PATH).await
    {
        return refused;
    }
    let config_count =
        match tokio::time::timeout(COUNT_TIMEOUT, crate::services::namespace::list(&app.repos))
            .await
        {
            Ok(Ok(namespaces)) => Some(namespaces.iter().map(|n| n.config_count).sum::<u64>()),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "metrics: config count unavailable");
                None
            }
            Err(_) => None,
        };
    let scrape = Scrape {
        app: Arc::clone(&app),
        config_count,
        process: process::read(),
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut body = String::with_capacity(16 * 1024);
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut body, &registry) {
        // Writing into a String fails only if an encoder refuses a value.
        tracing::error!(error = %e, "metrics: encoding failed");
        return super::ServiceError::Internal(format!("cannot encode metrics: {e}"))
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        body,
    )
        .into_response()
}

/// One scrape: the server, and what was read for it ahead of encoding.
#[derive(Debug)]
struct Scrape {
    app: AppState,
    /// Configs in every namespace; `None` when storage did not answer in time.
    config_count: Option<u64>,
    process: ProcessStats,
}

type Result = std::result::Result<(), std::fmt::Error>;

fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut MetricEncoder,
    labels: &[(&str, &str)],
    value: V,
) -> Result {
    encoder.encode_family(&labels)?.encode_gauge(&value)
}

fn counter(encoder: &mut MetricEncoder, labels: &[(&str, &str)], value: u64) -> Result {
    encoder
        .encode_family(&labels)?
        .encode_counter::<NoLabelSet, _, u64>(&value, None)
}

fn histogram(encoder: &mut MetricEncoder, labels: &[(&str, &str)], h: &Histogram) -> Result {
    h.encode(encoder.encode_family(&labels)?)
}

/// A metric with no labels.
fn single<V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: Option<V>,
) -> Result {
    let Some(value) = value else { return Ok(()) };
    encoder
        .encode_descriptor(name, help, unit, MetricType::Gauge)?
        .encode_gauge(&value)
}

/// A per-code series set as label values: the code's decimal text ("other" for the
/// overflow).
fn code_label(code: i32) -> String {
    if code == OTHER_CODE {
        "other".to_string()
    } else {
        code.to_string()
    }
}

/// Micrometer's `outcome` of an HTTP status.
fn outcome(status: i32) -> &'static str {
    match status {
        100..=199 => "INFORMATIONAL",
        200..=299 => "SUCCESS",
        300..=399 => "REDIRECTION",
        400..=499 => "CLIENT_ERROR",
        500..=599 => "SERVER_ERROR",
        _ => "UNKNOWN",
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result {
        self.nacos_monitor(&mut encoder)?;
        self.nacos_timers(&mut encoder)?;
        self.http(&mut encoder)?;
        self.grpc(&mut encoder)?;
        self.pushes(&mut encoder)?;
        self.storage(&mut encoder)?;
        self.database(&mut encoder)?;
        self.raft(&mut encoder)?;
        self.process(&mut encoder)
    }
}

impl Scrape {
    /// Nacos's `nacos_monitor{module, name}` gauges, under Nacos's names.
    fn nacos_monitor(&self, encoder: &mut DescriptorEncoder) -> Result {
        let app = &self.app;
        let metrics = &app.metrics;
        let naming = app.naming.metrics();
        let udp = app.naming.push_counters(false);
        let push = &metrics.naming_push;
        let grpc_pushes = push.latency.count() + push.failed.get();
        let total_push = grpc_pushes + udp.total;
        let cost_ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let avg_push_cost = match push.latency.count() {
            0 => -1.0,
            n => push.latency.sum_seconds() * 1000.0 / n as f64,
        };
        let max_push_cost = push.max().map_or(-1.0, cost_ms);
        let mut m = encoder.encode_descriptor(
            "nacos_monitor",
            "Nacos module gauges (counts since start for getConfig, publish, totalPush, failedPush)",
            None,
            MetricType::Gauge,
        )?;
        let config = |name| [("module", "config"), ("name", name)];
        let naming_label = |name| [("module", "naming"), ("name", name)];
        gauge(
            &mut m,
            &config("getConfig"),
            metrics.config.get_config.get(),
        )?;
        gauge(&mut m, &config("publish"), metrics.config.publish.get())?;
        gauge(
            &mut m,
            &config("longPolling"),
            app.config.hub().pollers().len(),
        )?;
        if let Some(count) = self.config_count {
            gauge(&mut m, &config("configCount"), count)?;
        }
        gauge(&mut m, &naming_label("serviceCount"), naming.service_count)?;
        gauge(&mut m, &naming_label("ipCount"), naming.instance_count)?;
        let subscribers = naming.subscribe_count + app.naming_subscribers.subscriber_count();
        gauge(&mut m, &naming_label("subscriberCount"), subscribers)?;
        gauge(&mut m, &naming_label("totalPush"), total_push)?;
        let failed = push.failed.get() + udp.failed;
        gauge(&mut m, &naming_label("failedPush"), failed)?;
        gauge(&mut m, &naming_label("maxPushCost"), max_push_cost)?;
        gauge(&mut m, &naming_label("avgPushCost"), avg_push_cost)?;
        gauge(
            &mut m,
            &[("module", "core"), ("name", "longConnection")],
            app.connections.count(),
        )
    }

    /// Nacos's `nacos_timer` and `nacos_exception` where this server has the same event.
    fn nacos_timers(&self, encoder: &mut DescriptorEncoder) -> Result {
        let metrics = &self.app.metrics;
        let mut m = encoder.encode_descriptor(
            "nacos_timer",
            "Nacos timers: config change notification round trips (notifyRt)",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        histogram(
            &mut m,
            &[("module", "config"), ("name", "notifyRt")],
            &metrics.config_push.latency,
        )?;
        let mut m = encoder.encode_descriptor(
            "nacos_exception",
            "Nacos failure counters: config change notifications that failed (configNotify)",
            None,
            MetricType::Counter,
        )?;
        counter(
            &mut m,
            &[("module", "config"), ("name", "configNotify")],
            metrics.config_push.failed.get(),
        )
    }

    /// `http_server_requests_seconds{method, uri, status, outcome}`: `uri` is the route
    /// template relative to the context path, as Spring labels it.
    fn http(&self, encoder: &mut DescriptorEncoder) -> Result {
        let Some(http) = self.app.metrics.http.get() else {
            return Ok(());
        };
        let mut m = encoder.encode_descriptor(
            "http_server_requests",
            "HTTP requests by route template, method and status",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for route in &http.routes {
            for (method, by_status) in route.each() {
                debug_assert!(HTTP_METHODS.contains(&method));
                for (status, h) in by_status.each() {
                    let code = code_label(status);
                    let labels = [
                        ("method", method),
                        ("uri", route.uri),
                        ("status", code.as_str()),
                        ("outcome", outcome(status)),
                    ];
                    histogram(&mut m, &labels, h)?;
                }
            }
        }
        Ok(())
    }

    /// gRPC requests by payload type and error code (0: success).
    fn grpc(&self, encoder: &mut DescriptorEncoder) -> Result {
        let metrics = &self.app.metrics;
        if let Some(grpc) = metrics.grpc.get() {
            let mut m = encoder.encode_descriptor(
                "nacos_grpc_server_requests",
                "gRPC requests by payload type and errorCode (0: success)",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for (type_name, by_code) in &grpc.types {
                for (code, h) in by_code.each() {
                    let code = code_label(code);
                    histogram(&mut m, &[("type", type_name), ("code", &code)], h)?;
                }
            }
        }
        let mut m = encoder.encode_descriptor(
            "nacos_grpc_server_rejected",
            "gRPC requests refused before a handler: unknown type (302), unregistered connection (301)",
            None,
            MetricType::Counter,
        )?;
        // Both codes always, so a rate over them starts at zero rather than at the first one.
        for code in [code::UN_REGISTER, code::NO_HANDLER] {
            let count = metrics.grpc_rejected.count_of(code);
            counter(&mut m, &[("code", &code.to_string())], count)?;
        }
        Ok(())
    }

    /// Push round trips (acknowledged tries) and failed tries, config and naming.
    fn pushes(&self, encoder: &mut DescriptorEncoder) -> Result {
        let metrics = &self.app.metrics;
        let kinds = [
            ("config", &metrics.config_push),
            ("naming", &metrics.naming_push),
        ];
        let mut m = encoder.encode_descriptor(
            "nacos_push",
            "gRPC pushes to clients (config change notify, naming subscriber notify): acknowledged round trips",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (module, stats) in kinds {
            histogram(&mut m, &[("module", module)], &stats.latency)?;
        }
        let mut m = encoder.encode_descriptor(
            "nacos_push_failed",
            "gRPC push tries that failed (timeout, client error, busy connection)",
            None,
            MetricType::Counter,
        )?;
        for (module, stats) in kinds {
            counter(&mut m, &[("module", module)], stats.failed.get())?;
        }
        Ok(())
    }

    /// Storage call latency and failures by backend and operation.
    fn storage(&self, encoder: &mut DescriptorEncoder) -> Result {
        let storage = &self.app.metrics.storage;
        let mut m = encoder.encode_descriptor(
            "nacos_storage_operation",
            "Storage calls by backend and operation (config reads served by the cache are not storage calls)",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (op, h) in STORAGE_OPS.iter().zip(&storage.latency) {
            histogram(&mut m, &[("backend", storage.backend), ("op", op)], h)?;
        }
        let mut m = encoder.encode_descriptor(
            "nacos_storage_errors",
            "Storage calls that failed, by backend and operation",
            None,
            MetricType::Counter,
        )?;
        for (op, c) in STORAGE_OPS.iter().zip(&storage.errors) {
            counter(&mut m, &[("backend", storage.backend), ("op", op)], c.get())?;
        }
        Ok(())
    }

    /// Multi-node SQL backends: which node takes writes, and failovers.
    fn database(&self, encoder: &mut DescriptorEncoder) -> Result {
        let Some(ha) = self.app.repos.configs.ha_status() else {
            return Ok(());
        };
        let backend = self.app.metrics.storage.backend;
        let labels = [("backend", backend)];
        let mut m = encoder.encode_descriptor(
            "nacos_db_nodes",
            "Configured database nodes (db.num)",
            None,
            MetricType::Gauge,
        )?;
        gauge(&mut m, &labels, ha.nodes)?;
        let mut m = encoder.encode_descriptor(
            "nacos_db_primary",
            "1 for the database node (db.url.N index) that takes writes, 0 for the others",
            None,
            MetricType::Gauge,
        )?;
        for index in 0..ha.nodes {
            let node = index.to_string();
            let value = u32::from(ha.primary == Some(index));
            gauge(&mut m, &[("backend", backend), ("node", &node)], value)?;
        }
        let mut m = encoder.encode_descriptor(
            "nacos_db_writable",
            "1 while some database node takes writes",
            None,
            MetricType::Gauge,
        )?;
        gauge(&mut m, &labels, u32::from(ha.primary.is_some()))?;
        let mut m = encoder.encode_descriptor(
            "nacos_db_failovers",
            "Times writes moved to another database node since start",
            None,
            MetricType::Counter,
        )?;
        counter(&mut m, &labels, ha.failovers)
    }

    /// Embedded cluster: this node's view of Raft.
    fn raft(&self, encoder: &mut DescriptorEncoder) -> Result {
        let Some(raft) = &self.app.raft else {
            return Ok(());
        };
        let status = raft.status();
        let is_leader = status.leader.as_deref() == Some(status.self_addr.as_str());
        single(
            encoder,
            "nacos_raft_term",
            "Current Raft term",
            None,
            Some(status.term),
        )?;
        single(
            encoder,
            "nacos_raft_is_leader",
            "1 while this node is the Raft leader",
            None,
            Some(u32::from(is_leader)),
        )?;
        single(
            encoder,
            "nacos_raft_has_leader",
            "1 while this node knows a Raft leader",
            None,
            Some(u32::from(status.leader.is_some())),
        )?;
        single(
            encoder,
            "nacos_raft_last_log_index",
            "Index of the last entry in this node's Raft log",
            None,
            Some(status.last_log_index.unwrap_or(0)),
        )?;
        single(
            encoder,
            "nacos_raft_applied_index",
            "Index of the last Raft entry applied to this node's store",
            None,
            Some(status.last_applied_index.unwrap_or(0)),
        )?;
        single(
            encoder,
            "nacos_raft_voters",
            "Raft voters in the current membership",
            None,
            Some(status.voters.len()),
        )?;
        let replication = raft.replication();
        if replication.is_empty() {
            return Ok(());
        }
        let last = status.last_log_index.unwrap_or(0);
        let mut m = encoder.encode_descriptor(
            "nacos_raft_replication_lag",
            "On the leader: log entries each follower is behind",
            None,
            MetricType::Gauge,
        )?;
        for (peer, matched) in &replication {
            let lag = last.saturating_sub(matched.unwrap_or(0));
            gauge(&mut m, &[("peer", peer.as_str())], lag)?;
        }
        Ok(())
    }

    /// The standard `process_*` metrics, and Micrometer's `process_uptime_seconds` that Nacos
    /// dashboards show.
    fn process(&self, encoder: &mut DescriptorEncoder) -> Result {
        let p = &self.process;
        if let Some(cpu) = p.cpu_seconds {
            encoder
                .encode_descriptor(
                    "process_cpu",
                    "User and system CPU time spent",
                    Some(&Unit::Seconds),
                    MetricType::Counter,
                )?
                .encode_counter::<NoLabelSet, _, u64>(&cpu, None)?;
        }
        single(
            encoder,
            "process_resident_memory",
            "Resident memory size",
            Some(&Unit::Bytes),
            p.resident_bytes,
        )?;
        single(
            encoder,
            "process_virtual_memory",
            "Virtual memory size",
            Some(&Unit::Bytes),
            p.virtual_bytes,
        )?;
        single(
            encoder,
            "process_open_fds",
            "Open file descriptors",
            None,
            p.open_fds,
        )?;
        single(
            encoder,
            "process_max_fds",
            "Limit on open file descriptors",
            None,
            p.max_fds,
        )?;
        single(encoder, "process_threads", "OS threads", None, p.threads)?;
        single(
            encoder,
            "process_start_time",
            "Start time since the Unix epoch",
            Some(&Unit::Seconds),
            p.start_time_seconds,
        )?;
        single(
            encoder,
            "process_uptime",
            "Time since the server started",
            Some(&Unit::Seconds),
            Some(self.app.started.elapsed().as_secs_f64()),
        )
    }
}
