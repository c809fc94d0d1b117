//! Settings of this backend beyond `db.*` ([`MysqlOptions`]), and the translation of one
//! `db.url.N` (a JDBC URL as Nacos operators write it) into sqlx connect and pool options.

use nacos_core::datasource::{bool_property, millis_property};
use std::time::Duration;

use nacos_core::datasource::{DbNode, PoolConfig};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions, MySqlSslMode};

/// Property: create missing tables (and the extra index) at start from the embedded
/// `conf/mysql-schema.sql`. Off by default: then a missing table fails the start, named.
pub use nacos_core::datasource::PROP_SCHEMA_INIT;
/// Property: send reads to a read-only replica when one is reachable (writes always go to the
/// primary). Off by default, because replicas lag: a read right after a write may miss it.
pub const PROP_READ_FROM_REPLICAS: &str = "nacos.db.readFromReplicas";
/// Property: how often (ms) every `db.url.N` is probed with `SELECT @@global.read_only` to find
/// the writable primary. A failed query triggers a probe at once as well.
pub use nacos_core::datasource::PROP_CHECK_INTERVAL;

/// Longest time one statement (or one write transaction) may take when the URL sets no
/// `socketTimeout`. Connector/J waits forever; a server should not.
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// How this backend runs, beyond the data source itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MysqlOptions {
    /// [`PROP_SCHEMA_INIT`].
    pub schema_init: bool,
    /// [`PROP_READ_FROM_REPLICAS`].
    pub read_from_replicas: bool,
    /// [`PROP_CHECK_INTERVAL`].
    pub check_interval: Duration,
}

impl Default for MysqlOptions {
    fn default() -> Self {
        MysqlOptions {
            schema_init: false,
            read_from_replicas: false,
            check_interval: Duration::from_millis(2_000),
        }
    }
}

impl MysqlOptions {
    /// Read the properties through `get` (trimmed, non-blank values), as
    /// [`nacos_core::datasource::DataSourceConfig::from_properties`] does.
    pub fn from_properties(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let defaults = MysqlOptions::default();
        Ok(MysqlOptions {
            schema_init: bool_property(get, PROP_SCHEMA_INIT, defaults.schema_init)?,
            read_from_replicas: bool_property(
                get,
                PROP_READ_FROM_REPLICAS,
                defaults.read_from_replicas,
            )?,
            check_interval: millis_property(get, PROP_CHECK_INTERVAL, defaults.check_interval)?,
        })
    }
}

/// `host:port/database` of a node: how logs and errors name it (never with credentials).
pub(crate) fn label(node: &DbNode) -> String {
    format!(
        "{}:{}/{}",
        node.url.host,
        node.url.port.unwrap_or(3306),
        node.url.database
    )
}

/// Connect options for one node. Honoured URL parameters: `connectTimeout` and
/// `socketTimeout` (see [`timeouts`]), `useSSL` / `sslMode`, `serverTimezone` (the session
/// `time_zone`, which the `gmt_*` datetimes are written and read in; UTC when absent, as in
/// Nacos's sample URL), `serverSslCert` (a PEM CA file for VERIFY_CA / VERIFY_IDENTITY). The
/// session always uses utf8mb4 with the binary collation, so keys
/// compare case-sensitively as in Nacos.
pub(crate) fn connect_options(node: &DbNode) -> Result<MySqlConnectOptions, String> {
    let url = &node.url;
    if !matches!(url.scheme.as_str(), "mysql" | "mariadb") {
        return Err(format!(
            "{} is a '{}' URL; the mysql platform needs jdbc:mysql:// or jdbc:mariadb://",
            label(node),
            url.scheme
        ));
    }
    if url.database.is_empty() {
        return Err(format!(
            "{}: the JDBC URL names no database (jdbc:mysql://host:port/<database>)",
            label(node)
        ));
    }
    let ssl = match url.ssl_mode().as_deref() {
        None => MySqlSslMode::Preferred,
        Some("disabled" | "disable" | "false") => MySqlSslMode::Disabled,
        Some("preferred" | "prefer") => MySqlSslMode::Preferred,
        Some("required" | "require" | "true") => MySqlSslMode::Required,
        Some("verify_ca" | "verify-ca") => MySqlSslMode::VerifyCa,
        Some("verify_identity" | "verify-full" | "verify_full") => MySqlSslMode::VerifyIdentity,
        Some(other) => {
            return Err(format!(
                "{}: unknown sslMode '{other}' (DISABLED, PREFERRED, REQUIRED, VERIFY_CA, \
                 VERIFY_IDENTITY)",
                label(node)
            ));
        }
    };
    let mut options = MySqlConnectOptions::new()
        .host(&url.host)
        .port(url.port.unwrap_or(3306))
        .database(&url.database)
        .username(&node.user)
        .password(&node.password)
        .ssl_mode(ssl)
        .charset("utf8mb4")
        .collation("utf8mb4_bin")
        .timezone(session_time_zone(url.param("serverTimezone")));
    // MariaDB Connector/J's `serverSslCert`: a PEM file with the CA (or server) certificate.
    if let Some(ca) = url.param("serverSslCert") {
        options = options.ssl_ca(ca.trim_start_matches("file:"));
    }
    Ok(options)
}

/// The session `time_zone` for a Connector/J `serverTimezone`: UTC and GMT spell `+00:00`,
/// `GMT+8` / `UTC-03:30` become offsets, anything else (e.g. `Asia/Shanghai`) is passed
/// through and needs the server's time zone tables loaded.
fn session_time_zone(server_timezone: Option<&str>) -> String {
    let Some(zone) = server_timezone.map(str::trim).filter(|z| !z.is_empty()) else {
        return "+00:00".to_string();
    };
    let upper = zone.to_ascii_uppercase();
    if matches!(
        upper.as_str(),
        "UTC" | "GMT" | "Z" | "UCT" | "ETC/UTC" | "ETC/GMT"
    ) {
        return "+00:00".to_string();
    }
    let offset = upper
        .strip_prefix("GMT")
        .or_else(|| upper.strip_prefix("UTC"))
        .unwrap_or(&upper);
    if let Some(sign) = offset.chars().next().filter(|c| *c == '+' || *c == '-') {
        let digits = &offset[1..];
        let (h, m) = digits.split_once(':').unwrap_or((digits, "0"));
        if let (Ok(h), Ok(m)) = (h.parse::<u8>(), m.parse::<u8>()) {
            return format!("{sign}{h:02}:{m:02}");
        }
    }
    zone.to_string()
}

/// `(connect, operation)` timeouts of a node. `connectTimeout` (ms) bounds getting a
/// connection (and the probe), capped by `db.pool.config.connectionTimeout`; `socketTimeout`
/// (ms) bounds one statement or one write transaction.
pub(crate) fn timeouts(node: &DbNode, pool: &PoolConfig) -> (Duration, Duration) {
    let connect = node
        .url
        .connect_timeout_ms()
        .map_or(pool.connection_timeout, |t| t.min(pool.connection_timeout))
        .max(Duration::from_millis(100));
    let operation = node
        .url
        .socket_timeout_ms()
        .unwrap_or(DEFAULT_OPERATION_TIMEOUT);
    (connect, operation)
}

/// Pool options for one node (`db.pool.config.*`). Connections are opened on demand, so a
/// node that is down at start costs nothing until it is needed; every connection reads at
/// READ COMMITTED (no gap locks: concurrent inserts of different keys never deadlock).
pub(crate) fn pool_options(pool: &PoolConfig, connect_timeout: Duration) -> MySqlPoolOptions {
    MySqlPoolOptions::new()
        .max_connections(pool.maximum_pool_size.max(1))
        .min_connections(0)
        .acquire_timeout(connect_timeout)
        .idle_timeout(Some(pool.idle_timeout))
        .test_before_acquire(true)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                sqlx::query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    .execute(conn)
                    .await
                    .map(|_| ())
            })
        })
}

/// The probe's own pool: one connection, kept open between probes (pinged before each use,
/// so a connection broken by a server restart is replaced, not reported as a dead node).
pub(crate) fn probe_pool_options(connect_timeout: Duration) -> MySqlPoolOptions {
    MySqlPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(connect_timeout)
        .test_before_acquire(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones() {
        assert_eq!(session_time_zone(None), "+00:00");
        assert_eq!(session_time_zone(Some("UTC")), "+00:00");
        assert_eq!(session_time_zone(Some("GMT+8")), "+08:00");
        assert_eq!(session_time_zone(Some("UTC-03:30")), "-03:30");
        assert_eq!(session_time_zone(Some("Asia/Shanghai")), "Asia/Shanghai");
    }

    #[test]
    fn options_from_properties() {
        let get = |k: &str| match k {
            PROP_SCHEMA_INIT => Some("true".to_string()),
            PROP_CHECK_INTERVAL => Some("250".to_string()),
            _ => None,
        };
        let options = MysqlOptions::from_properties(&get).expect("valid");
        assert!(options.schema_init);
        assert!(!options.read_from_replicas);
        assert_eq!(options.check_interval, Duration::from_millis(250));
        let bad = |k: &str| (k == PROP_READ_FROM_REPLICAS).then(|| "yes".to_string());
        assert!(MysqlOptions::from_properties(&bad).is_err());
    }
}
