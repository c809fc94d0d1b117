//! `application.properties` loading and the typed settings the server runs with.
//!
//! Precedence, lowest first: built-in defaults, `<nacos.home>/conf/application.properties`,
//! the container image's environment variables (see [`crate::foundation::env`]), `-D`
//! overrides. Keys are Nacos's own, so an operator's existing file carries over.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::foundation::cli::Mode;
use crate::foundation::trusted_proxies::{TRUSTED_PROXIES, TrustedProxies};

/// Raw properties: the merged key/value view, for the few places that read ad-hoc keys.
/// `Debug` redacts the values of secret-looking keys (secret, password, token, identity value).
#[derive(Clone, Default)]
pub struct Properties {
    values: HashMap<String, String>,
}

/// Whether a property holds a secret that must never reach a log line.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["secret", "password", "token", "identity.value", "tokens"]
        .iter()
        .any(|s| key.contains(s))
        && !key.ends_with("expire.seconds")
}

impl std::fmt::Debug for Properties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut pairs: Vec<(&String, &String)> = self.values.iter().collect();
        pairs.sort();
        let mut map = f.debug_map();
        for (key, value) in pairs {
            if is_secret_key(key) {
                map.entry(key, &"<redacted>");
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad properties file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("bad value for property '{key}': '{value}' ({expected})")]
    Value {
        key: String,
        value: String,
        expected: &'static str,
    },
}

impl Properties {
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut props = Self::default();
        for (k, v) in pairs {
            props.set(k, v);
        }
        props
    }

    /// Read a `.properties` file (Java syntax: `=`/`:` separators, `#`/`!` comments, `\`
    /// continuations, `\uXXXX` escapes).
    pub fn read_file(path: &Path) -> Result<Self, SettingsError> {
        let file = std::fs::File::open(path).map_err(|source| SettingsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let values = java_properties::read(std::io::BufReader::new(file)).map_err(|e| {
            SettingsError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            }
        })?;
        Ok(Self { values })
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.values.insert(key.into(), value.into());
    }

    /// Overlay `other` on top of `self`.
    pub fn merge(&mut self, other: Properties) {
        self.values.extend(other.values);
    }

    /// A value, trimmed; blank counts as unset (as Spring treats `key=`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every property whose key starts with `prefix` (full keys, raw values).
    pub fn with_prefix(&self, prefix: &str) -> HashMap<String, String> {
        self.values
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    pub fn parse_or<T: std::str::FromStr>(
        &self,
        key: &str,
        default: T,
        expected: &'static str,
    ) -> Result<T, SettingsError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| SettingsError::Value {
                key: key.to_string(),
                value: v.to_string(),
                expected,
            }),
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, SettingsError> {
        self.parse_or(key, default, "true or false")
    }

    /// A duration given in milliseconds.
    pub fn millis_or(&self, key: &str, default_ms: u64) -> Result<Duration, SettingsError> {
        self.parse_or(key, default_ms, "milliseconds")
            .map(Duration::from_millis)
    }

    /// A tuning duration in milliseconds read after start: a bad value is logged and the
    /// default used, since refusing it would mean stopping a running server.
    pub fn millis_or_warn(&self, key: &str, default_ms: u64) -> Duration {
        self.millis_or(key, default_ms).unwrap_or_else(|e| {
            tracing::warn!("{e}; using {default_ms} ms");
            Duration::from_millis(default_ms)
        })
    }
}

/// Naming timings. Nacos's defaults; tests shorten them through properties.
#[derive(Debug, Clone)]
pub struct NamingSettings {
    /// How often the expiry sweep runs (`nacos.naming.health.check.interval`, ours).
    pub check_interval: Duration,
    /// Default heart-beat interval handed to v1 clients (`clientBeatInterval`).
    pub beat_interval: Duration,
    /// No beat for this long: unhealthy (metadata `preserved.heart.beat.timeout` overrides).
    pub beat_timeout: Duration,
    /// No beat for this long: removed (metadata `preserved.ip.delete.timeout` overrides).
    pub delete_timeout: Duration,
    /// `nacos.naming.expireInstance`: whether expired instances are removed at all.
    pub expire_instance: bool,
    /// `defaultPushCacheMillis`: `cacheMillis` in service info.
    pub push_cache_millis: u64,
    /// UDP push: resend after this long without an ack.
    pub udp_ack_timeout: Duration,
}

/// The client gRPC edge (main port + 1000). Nacos's defaults; tests shorten the timings.
#[derive(Debug, Clone)]
pub struct GrpcSettings {
    /// `nacos.server.grpc.port.offset`: the gRPC port is `server.port` plus this.
    pub port_offset: u16,
    /// `nacos.remote.server.grpc.maxinbound.message.size`: largest accepted message.
    pub max_inbound_message: usize,
    /// `nacos.remote.server.grpc.maxConnections`: registered SDK connections beyond this are
    /// refused at setup.
    pub max_connections: usize,
    /// `nacos.remote.server.grpc.maxInflightPerConnection`: requests one TCP connection may
    /// have in progress; further ones wait (HTTP/2 flow control holds the client back).
    pub max_inflight_per_connection: usize,
    /// TCP connections accepted at once, registered or not (`maxConnections` plus a margin
    /// for connections still setting up); beyond it new ones are closed at once.
    pub max_transports: usize,
    /// A connection silent this long is probed with `ClientDetectionRequest`
    /// (`nacos.remote.server.grpc.ejector.idleMs`).
    pub detect_idle: Duration,
    /// How often idle connections are looked for (`...ejector.intervalMs`).
    pub detect_interval: Duration,
    /// How long a probed connection has to answer before it is dropped (`...ejector.timeoutMs`).
    pub detect_timeout: Duration,
    /// How long one config change push waits for its acknowledgement (`...push.timeoutMs`).
    pub push_timeout: Duration,
    /// `nacos.config.push.maxRetryTime`: failed tries of one config push before the connection
    /// is dropped.
    pub config_push_max_retries: u32,
    /// Retry `n` of a config push waits `n` times this (`nacos.config.push.retryDelayMs`).
    pub config_push_retry_delay: Duration,
    /// HTTP/2 keepalive ping interval and its timeout (`...sdk.keep-alive-time` / `-timeout`).
    pub keepalive_time: Duration,
    pub keepalive_timeout: Duration,
    /// On shutdown, connections still open this long after `ConnectResetRequest` are cut
    /// (`nacos.remote.server.grpc.shutdown.graceMs`).
    pub shutdown_grace: Duration,
}

impl GrpcSettings {
    fn from_properties(props: &Properties) -> Result<Self, SettingsError> {
        let ms = |key: &str, default: u64| props.millis_or(key, default);
        let mut settings = Self {
            port_offset: props.parse_or(
                "nacos.server.grpc.port.offset",
                1000u16,
                "a port offset 0..65535",
            )?,
            max_inbound_message: props.parse_or(
                "nacos.remote.server.grpc.maxinbound.message.size",
                10 * 1024 * 1024usize,
                "a byte count",
            )?,
            max_connections: props.parse_or(
                "nacos.remote.server.grpc.maxConnections",
                10_000usize,
                "a connection count",
            )?,
            max_inflight_per_connection: props.parse_or(
                "nacos.remote.server.grpc.maxInflightPerConnection",
                256usize,
                "a request count",
            )?,
            max_transports: 0,
            detect_idle: ms("nacos.remote.server.grpc.ejector.idleMs", 20_000)?,
            detect_interval: ms("nacos.remote.server.grpc.ejector.intervalMs", 3_000)?,
            detect_timeout: ms("nacos.remote.server.grpc.ejector.timeoutMs", 5_000)?,
            push_timeout: ms("nacos.remote.server.grpc.push.timeoutMs", 3_000)?,
            config_push_max_retries: props.parse_or(
                "nacos.config.push.maxRetryTime",
                50u32,
                "a retry count",
            )?,
            config_push_retry_delay: ms("nacos.config.push.retryDelayMs", 2_000)?,
            keepalive_time: ms("nacos.remote.server.grpc.sdk.keep-alive-time", 7_200_000)?,
            keepalive_timeout: ms("nacos.remote.server.grpc.sdk.keep-alive-timeout", 20_000)?,
            shutdown_grace: ms("nacos.remote.server.grpc.shutdown.graceMs", 3_000)?,
        };
        if settings.max_inflight_per_connection == 0 {
            return Err(SettingsError::Value {
                key: "nacos.remote.server.grpc.maxInflightPerConnection".to_string(),
                value: "0".to_string(),
                expected: "at least 1",
            });
        }
        settings.max_transports = settings
            .max_connections
            .saturating_add(settings.max_connections / 4)
            .saturating_add(64);
        Ok(settings)
    }
}

/// Cluster mode: who the members are and the peer protocols' timings. Nacos's keys and
/// defaults; tests shorten the timings.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// `nacos.inetutils.ip-address`: this node's own IP as the other members know it.
    pub self_ip: Option<String>,
    /// `nacos.inetutils.prefer-hostname-over-ip` (`PREFER_HOST_MODE=hostname`; Nacos's older
    /// key `nacos.preferHostnameOverIp` too): without an explicit address, this node is the
    /// member-list entry named after its host name rather than its IP.
    pub prefer_hostname: bool,
    /// `nacos.member.list` (`-c`): used when `conf/cluster.conf` is missing or empty.
    pub member_list: Option<String>,
    /// How often each node reports itself to its peers (Nacos: 2 s).
    pub report_interval: Duration,
    /// How often `conf/cluster.conf` is checked for changes (`nacos.member.reload.intervalMs`,
    /// ours).
    pub reload_interval: Duration,
    /// How often member host names are resolved again, so a restarted pod's new address is
    /// followed (`nacos.member.resolve.intervalMs`, ours). A failed connection asks sooner.
    pub resolve_interval: Duration,
    /// Per-call timeout of node-to-node requests (`nacos.core.protocol.distro.data.sync.timeoutMs`).
    pub request_timeout: Duration,
    /// Distro: delay that merges a burst of changes of one client into one sync
    /// (`nacos.core.protocol.distro.data.sync.delayMs`; Nacos waits 1 s, we 100 ms so a
    /// registration is visible on every node well within a second).
    pub distro_sync_delay: Duration,
    /// Distro: a failed sync is retried after this (`...distro.data.sync.retryDelayMs`).
    pub distro_retry_delay: Duration,
    /// Distro: each owner verifies its clients with every peer this often
    /// (`...distro.data.verify.intervalMs`).
    pub distro_verify_interval: Duration,
    /// A copy of another node's client not verified for this long is dropped
    /// (`nacos.naming.client.expired.time`).
    pub client_expired_time: Duration,
    /// External database: every node re-reads configs changed since its last scan this often,
    /// healing missed change messages (`nacos.config.cluster.scanIntervalMs`, ours).
    pub config_scan_interval: Duration,
    /// Embedded cluster: Raft heartbeat and election timeouts
    /// (`nacos.core.protocol.raft.data.*`).
    pub raft_heartbeat: Duration,
    pub raft_election_min: Duration,
    pub raft_election_max: Duration,
    /// Embedded cluster: a snapshot is taken after this many log entries, and this many are
    /// kept behind it for lagging followers.
    pub raft_snapshot_logs: u64,
    pub raft_keep_logs: u64,
}

impl ClusterSettings {
    fn from_properties(props: &Properties) -> Result<Self, SettingsError> {
        let ms = |key: &str, default: u64| props.millis_or(key, default);
        let text = |key: &str| {
            props
                .get(key)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Ok(Self {
            self_ip: text("nacos.inetutils.ip-address").or_else(|| text("nacos.server.ip")),
            prefer_hostname: match props.get("nacos.inetutils.prefer-hostname-over-ip") {
                Some(_) => props.bool_or("nacos.inetutils.prefer-hostname-over-ip", false)?,
                None => props.bool_or("nacos.preferHostnameOverIp", false)?,
            },
            member_list: text("nacos.member.list"),
            resolve_interval: ms("nacos.member.resolve.intervalMs", 10_000)?,
            report_interval: ms("nacos.member.report.intervalMs", 2_000)?,
            reload_interval: ms("nacos.member.reload.intervalMs", 5_000)?,
            request_timeout: ms("nacos.core.protocol.distro.data.sync.timeoutMs", 3_000)?,
            distro_sync_delay: ms("nacos.core.protocol.distro.data.sync.delayMs", 100)?,
            distro_retry_delay: ms("nacos.core.protocol.distro.data.sync.retryDelayMs", 3_000)?,
            distro_verify_interval: ms("nacos.core.protocol.distro.data.verify.intervalMs", 5_000)?,
            client_expired_time: ms("nacos.naming.client.expired.time", 180_000)?,
            config_scan_interval: ms("nacos.config.cluster.scanIntervalMs", 30_000)?,
            raft_heartbeat: ms("nacos.core.protocol.raft.data.heartbeatMs", 250)?,
            raft_election_min: ms("nacos.core.protocol.raft.data.election_timeout_ms", 1_000)?,
            raft_election_max: ms(
                "nacos.core.protocol.raft.data.election_timeout_max_ms",
                2_000,
            )?,
            raft_snapshot_logs: props.parse_or(
                "nacos.core.protocol.raft.data.snapshot_logs",
                5_000u64,
                "a log entry count",
            )?,
            raft_keep_logs: props.parse_or(
                "nacos.core.protocol.raft.data.keep_logs",
                1_000u64,
                "a log entry count",
            )?,
        })
    }
}

/// Everything the server needs to start, resolved from properties and the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub home: PathBuf,
    pub port: u16,
    /// Normalised: starts with `/`, no trailing `/`; empty for the root.
    pub context_path: String,
    /// `spring.sql.init.platform` (or the older `spring.datasource.platform`); empty = embedded.
    pub platform: String,
    pub embedded_cluster: bool,
    pub max_content: usize,
    /// Upper bound on a request body (form-encoded content can be three times its decoded size).
    pub max_body: usize,
    pub naming: NamingSettings,
    pub grpc: GrpcSettings,
    pub cluster: ClusterSettings,
    /// Shortest hold of a v1 long poll (Nacos: 10 s; tests shorten it).
    pub long_poll_min_hold_ms: u64,
    /// Bytes of config content kept in the read cache.
    pub config_cache_bytes: u64,
    /// `nacos.config.retention.days`: config history rows older than this many days are
    /// purged (Nacos's default 30). `0` keeps every row (Nacos reads 0 as its default).
    pub config_retention_days: u32,
    /// How often the history purge runs, and how long after start it first runs
    /// (`nacos.config.retention.intervalMs`, ours; Nacos: 10 minutes).
    pub config_retention_interval: Duration,
    /// `nacos.core.auth.trusted.proxies`: peers whose forwarding headers name the client.
    pub trusted_proxies: TrustedProxies,
    /// `nacos.metrics.auth.enabled`: `/actuator/prometheus` asks for an admin's token (Nacos
    /// leaves its actuator open; so does this server unless told otherwise).
    pub metrics_auth: bool,
    pub properties: Properties,
}

impl Settings {
    /// Resolve settings: defaults, then the file under `<home>/conf` (if present), then the
    /// properties the environment set (`env`), then `-D`.
    pub fn load(
        mode: Mode,
        storage_flag: Option<&str>,
        env: &Properties,
        defines: &[(String, String)],
    ) -> Result<Self, SettingsError> {
        let overrides = Properties::from_pairs(defines.iter().cloned());
        let home = overrides
            .get("nacos.home")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let file = home.join("conf").join("application.properties");
        let mut props = Properties::default();
        if file.exists() {
            props.merge(Properties::read_file(&file)?);
        }
        props.merge(env.clone());
        props.merge(overrides);
        if let Some(storage) = storage_flag {
            props.set("embeddedStorage", (storage == "embedded").to_string());
        }
        Self::from_properties(mode, home, props)
    }

    pub fn from_properties(
        mode: Mode,
        home: PathBuf,
        props: Properties,
    ) -> Result<Self, SettingsError> {
        let port = props.parse_or("server.port", 8848u16, "a port number 0..65535")?;
        let context_path =
            normalise_context_path(props.get_or("server.servlet.contextPath", "/nacos"));
        let platform = props
            .get("spring.sql.init.platform")
            .or_else(|| props.get("spring.datasource.platform"))
            .unwrap_or("")
            .to_string();
        let embedded_cluster = props.bool_or("embeddedStorage", false)?;
        let max_content = props.parse_or(
            "maxContent",
            nacos_core::validate::DEFAULT_MAX_CONTENT,
            "a byte count",
        )?;
        let ms = |key: &str, default: u64| props.millis_or(key, default);
        let naming = NamingSettings {
            check_interval: ms("nacos.naming.health.check.interval", 1000)?,
            beat_interval: ms("nacos.naming.heart.beat.interval", 5000)?,
            beat_timeout: ms("nacos.naming.heart.beat.timeout", 15000)?,
            delete_timeout: ms("nacos.naming.ip.delete.timeout", 30000)?,
            expire_instance: props.bool_or("nacos.naming.expireInstance", true)?,
            push_cache_millis: props.parse_or(
                "nacos.naming.push.cacheMillis",
                10000u64,
                "milliseconds",
            )?,
            udp_ack_timeout: ms("nacos.naming.push.udp.ackTimeout", 10000)?,
        };
        let config_cache_bytes = props.parse_or(
            "nacos.config.cache.maxBytes",
            256u64 * 1024 * 1024,
            "a byte count",
        )?;
        let config_retention_days = props.parse_or(
            "nacos.config.retention.days",
            30u32,
            "a whole number of days, 0 to keep every history row",
        )?;
        let config_retention_interval = ms("nacos.config.retention.intervalMs", 600_000)?;
        if config_retention_interval.is_zero() {
            return Err(SettingsError::Value {
                key: "nacos.config.retention.intervalMs".to_string(),
                value: "0".to_string(),
                expected: "at least 1 millisecond",
            });
        }
        let long_poll_min_hold_ms = props.parse_or(
            "nacos.config.longPolling.minHoldMs",
            10_000u64,
            "milliseconds",
        )?;
        let metrics_auth = props.bool_or("nacos.metrics.auth.enabled", false)?;
        let grpc = GrpcSettings::from_properties(&props)?;
        let cluster = ClusterSettings::from_properties(&props)?;
        let proxies = props.get(TRUSTED_PROXIES).unwrap_or("");
        let trusted_proxies = TrustedProxies::parse(proxies).map_err(|_| SettingsError::Value {
            key: TRUSTED_PROXIES.to_string(),
            value: proxies.to_string(),
            expected: "a comma-separated list of IP addresses or CIDR blocks",
        })?;
        Ok(Self {
            trusted_proxies,
            metrics_auth,
            grpc,
            cluster,
            long_poll_min_hold_ms,
            mode,
            home,
            port,
            context_path,
            platform,
            embedded_cluster,
            max_content,
            max_body: max_content.saturating_mul(3).saturating_add(64 * 1024),
            naming,
            config_cache_bytes,
            config_retention_days,
            config_retention_interval,
            properties: props,
        })
    }

    /// The settings of a store described by one properties file (the migrate tool): standalone,
    /// home from `nacos.home` in the file, else the directory above `conf/` when the file sits
    /// in one, else the file's own directory (so an embedded store is `<home>/data`).
    pub fn from_file(path: &Path) -> Result<Self, SettingsError> {
        let props = Properties::read_file(path)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let home = match props.get("nacos.home") {
            Some(home) => PathBuf::from(home),
            None if dir.file_name().is_some_and(|n| n == "conf") => {
                dir.parent().unwrap_or(Path::new(".")).to_path_buf()
            }
            None => dir.to_path_buf(),
        };
        Self::from_properties(Mode::Standalone, home, props)
    }

    /// Settings for tests and embedding: standalone, defaults, the given home.
    pub fn standalone(home: &Path) -> Self {
        match Self::from_properties(Mode::Standalone, home.to_path_buf(), Properties::default()) {
            Ok(settings) => settings,
            // Defaults always parse; this arm exists only to avoid a panic path.
            Err(e) => unreachable!("built-in defaults are valid: {e}"),
        }
    }

    /// The client gRPC port: `server.port` plus the offset, or `None` past 65535.
    pub fn grpc_port(&self) -> Option<u16> {
        self.port.checked_add(self.grpc.port_offset)
    }

    /// The cluster gRPC port of a member whose main port is `port`: Nacos puts it one above
    /// the client gRPC port (default main + 1001).
    pub fn cluster_port_of(&self, port: u16) -> Option<u16> {
        port.checked_add(self.grpc.port_offset)?.checked_add(1)
    }

    /// This node's cluster gRPC port.
    pub fn cluster_port(&self) -> Option<u16> {
        self.cluster_port_of(self.port)
    }

    /// This node's Raft port (main - 1000, as Nacos's JRaft), for embedded clusters.
    pub fn raft_port(&self) -> Option<u16> {
        raft_port_of(self.port)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.home.join("data")
    }

    pub fn is_standalone(&self) -> bool {
        self.mode == Mode::Standalone
    }
}

/// The default Raft port of a member whose main port is `port`.
pub fn raft_port_of(port: u16) -> Option<u16> {
    port.checked_sub(1000).filter(|p| *p > 0)
}

fn normalise_context_path(raw: &str) -> String {
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_path_forms() {
        assert_eq!(normalise_context_path("/nacos"), "/nacos");
        assert_eq!(normalise_context_path("nacos/"), "/nacos");
        assert_eq!(normalise_context_path("/"), "");
    }

    #[test]
    fn overrides_win_and_bad_values_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("conf")).expect("mkdir");
        std::fs::write(
            dir.path().join("conf/application.properties"),
            "# comment\nserver.port=9000\nserver.servlet.contextPath=/x\n",
        )
        .expect("write");
        let home = dir.path().to_string_lossy().to_string();
        let s = Settings::load(
            Mode::Standalone,
            None,
            &Properties::default(),
            &[
                ("nacos.home".into(), home.clone()),
                ("server.port".into(), "9001".into()),
            ],
        )
        .expect("load");
        assert_eq!(s.port, 9001);
        assert_eq!(s.context_path, "/x");
        let err = Settings::load(
            Mode::Standalone,
            None,
            &Properties::default(),
            &[
                ("nacos.home".into(), home),
                ("server.port".into(), "http".into()),
            ],
        )
        .expect_err("bad port");
        assert!(err.to_string().contains("server.port"), "{err}");
    }

    #[test]
    fn retention_days_default_zero_and_bad_values() {
        let load = |value: Option<&str>| {
            let props = match value {
                Some(v) => Properties::from_pairs([("nacos.config.retention.days", v)]),
                None => Properties::default(),
            };
            Settings::from_properties(Mode::Standalone, PathBuf::from("."), props)
        };
        assert_eq!(load(None).expect("default").config_retention_days, 30);
        assert_eq!(load(Some("0")).expect("zero").config_retention_days, 0);
        assert_eq!(load(Some(" 7 ")).expect("seven").config_retention_days, 7);
        for bad in ["-1", "1.5", "thirty", "99999999999"] {
            let err = load(Some(bad)).expect_err(bad).to_string();
            assert!(err.contains("nacos.config.retention.days"), "{err}");
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn environment_beats_the_file_and_loses_to_defines() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("conf")).expect("mkdir");
        std::fs::write(
            dir.path().join("conf/application.properties"),
            "server.port=9000\nserver.servlet.contextPath=/file\nmaxContent=100\n",
        )
        .expect("write");
        let env = Properties::from_pairs([("server.port", "9100"), ("maxContent", "200")]);
        let home = dir.path().to_string_lossy().to_string();
        let s = Settings::load(
            Mode::Standalone,
            None,
            &env,
            &[
                ("nacos.home".into(), home),
                ("maxContent".into(), "300".into()),
            ],
        )
        .expect("load");
        assert_eq!(s.context_path, "/file", "file over defaults");
        assert_eq!(s.port, 9100, "environment over the file");
        assert_eq!(s.max_content, 300, "-D over the environment");
    }
}
