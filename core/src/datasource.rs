//! External data source settings as Nacos operators write them: `db.num`, `db.url.N` (JDBC
//! URLs, accepted as written), `db.user[.N]`, `db.password[.N]`, `db.pool.config.*`. Shared by
//! every SQL backend so they read the same file the same way.

use std::collections::BTreeMap;
use std::time::Duration;

/// A parsed `jdbc:<scheme>://host[:port][,host2...]/database?k=v&...` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JdbcUrl {
    /// `mysql`, `mariadb` or `postgresql`.
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    pub database: String,
    /// Query parameters, keys as written (JDBC keys are case-sensitive in practice).
    pub params: BTreeMap<String, String>,
}

impl JdbcUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let rest = raw.trim().strip_prefix("jdbc:").ok_or_else(|| {
            format!("'{raw}' is not a JDBC URL (expected jdbc:<db>://host:port/db)")
        })?;
        let (scheme, rest) = rest
            .split_once("://")
            .ok_or_else(|| format!("'{raw}' has no '://' after the database type"))?;
        let (authority_path, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (authority, database) = authority_path
            .split_once('/')
            .unwrap_or((authority_path, ""));
        // Failover lists (`host1,host2`) are not used by Nacos configs; take the first host.
        let first = authority.split(',').next().unwrap_or("");
        let (host, port) = match first.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("bad port '{p}' in '{raw}'"))?;
                (h.to_string(), Some(port))
            }
            _ => (first.to_string(), None),
        };
        if host.is_empty() {
            return Err(format!("no host in '{raw}'"));
        }
        let mut params = BTreeMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.insert(k.to_string(), v.to_string());
        }
        Ok(JdbcUrl {
            scheme: scheme.to_ascii_lowercase(),
            host,
            port,
            database: database.to_string(),
            params,
        })
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    fn millis(&self, key: &str) -> Option<Duration> {
        self.param(key)
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
    }

    /// `connectTimeout` (MySQL, ms) or `connectTimeout` (PostgreSQL, seconds) is interpreted by
    /// each backend; this is the raw MySQL reading in milliseconds.
    pub fn connect_timeout_ms(&self) -> Option<Duration> {
        self.millis("connectTimeout")
    }

    /// `socketTimeout` in milliseconds (MySQL Connector/J semantics).
    pub fn socket_timeout_ms(&self) -> Option<Duration> {
        self.millis("socketTimeout")
    }

    /// `useSSL=true` / `sslMode=REQUIRED|VERIFY_CA|VERIFY_IDENTITY` / `sslmode=require` ...
    pub fn ssl_mode(&self) -> Option<String> {
        if let Some(mode) = self.param("sslMode") {
            return Some(mode.to_ascii_lowercase());
        }
        match self.param("useSSL").map(str::to_ascii_lowercase).as_deref() {
            Some("true") => Some("required".to_string()),
            Some("false") => Some("disabled".to_string()),
            _ => None,
        }
    }
}

/// One configured database: `db.url.N` with its credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct DbNode {
    pub url: JdbcUrl,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for DbNode {
    // The password never reaches logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbNode")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `db.pool.config.*` (HikariCP names, as in Nacos's shipped file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    pub maximum_pool_size: u32,
    pub minimum_idle: u32,
    pub connection_timeout: Duration,
    pub validation_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            maximum_pool_size: 20,
            minimum_idle: 2,
            connection_timeout: Duration::from_millis(30_000),
            validation_timeout: Duration::from_millis(10_000),
            idle_timeout: Duration::from_millis(600_000),
        }
    }
}

/// `nacos.db.schema.init`: create missing tables at start (ours; every SQL backend reads it).
pub const PROP_SCHEMA_INIT: &str = "nacos.db.schema.init";
/// `nacos.db.ha.checkIntervalMs`: how often a SQL backend re-checks which node is writable.
pub const PROP_CHECK_INTERVAL: &str = "nacos.db.ha.checkIntervalMs";

/// A `true`/`false` property (case-insensitive); the error names the key.
pub fn bool_property(
    get: &dyn Fn(&str) -> Option<String>,
    key: &str,
    default: bool,
) -> Result<bool, String> {
    match get(key) {
        None => Ok(default),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("{key} must be true or false, got '{v}'")),
        },
    }
}

/// A positive number of milliseconds; the error names the key.
pub fn millis_property(
    get: &dyn Fn(&str) -> Option<String>,
    key: &str,
    default: Duration,
) -> Result<Duration, String> {
    match get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .ok_or_else(|| format!("{key} must be a positive number of ms, got '{v}'")),
    }
}

/// Every `db.*` setting, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSourceConfig {
    /// Index 0 is the configured primary (Nacos's "master"); the rest are candidates.
    pub nodes: Vec<DbNode>,
    pub pool: PoolConfig,
}

impl DataSourceConfig {
    /// Read the `db.*` keys through `get` (which returns trimmed, non-blank values).
    ///
    /// `db.num` is required; `db.url.N` for every N below it; `db.user.N` / `db.password.N`
    /// fall back to `db.user` / `db.password`, and an unindexed value with commas is a list by
    /// index, as Spring binds them.
    pub fn from_properties(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let num: usize = get("db.num")
            .ok_or("db.num is not set: an external data source needs db.num and db.url.0")?
            .parse()
            .map_err(|_| "db.num must be a number".to_string())?;
        if num == 0 {
            return Err("db.num must be at least 1".to_string());
        }
        let indexed = |base: &str, i: usize| -> Option<String> {
            get(&format!("{base}.{i}")).or_else(|| {
                get(base).map(|v| {
                    let list: Vec<&str> = v.split(',').map(str::trim).collect();
                    list.get(i)
                        .or(list.first())
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                })
            })
        };
        let mut nodes = Vec::with_capacity(num);
        for i in 0..num {
            let raw = get(&format!("db.url.{i}"))
                .ok_or_else(|| format!("db.url.{i} is not set but db.num is {num}"))?;
            let url = JdbcUrl::parse(&raw).map_err(|e| format!("db.url.{i}: {e}"))?;
            let user = indexed("db.user", i).unwrap_or_default();
            let password = indexed("db.password", i).unwrap_or_default();
            nodes.push(DbNode {
                url,
                user,
                password,
            });
        }
        let ms = |key: &str, default: Duration| -> Result<Duration, String> {
            match get(&format!("db.pool.config.{key}")) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| format!("db.pool.config.{key} must be milliseconds, got '{v}'")),
            }
        };
        let count = |key: &str, default: u32| -> Result<u32, String> {
            match get(&format!("db.pool.config.{key}")) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| format!("db.pool.config.{key} must be a number, got '{v}'")),
            }
        };
        let defaults = PoolConfig::default();
        let pool = PoolConfig {
            maximum_pool_size: count("maximumPoolSize", defaults.maximum_pool_size)?.max(1),
            minimum_idle: count("minimumIdle", defaults.minimum_idle)?,
            connection_timeout: ms("connectionTimeout", defaults.connection_timeout)?,
            validation_timeout: ms("validationTimeout", defaults.validation_timeout)?,
            idle_timeout: ms("idleTimeout", defaults.idle_timeout)?,
        };
        Ok(DataSourceConfig { nodes, pool })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nacos_sample_url() {
        let url = JdbcUrl::parse(
            "jdbc:mysql://127.0.0.1:3306/nacos?characterEncoding=utf8&connectTimeout=1000&socketTimeout=3000&autoReconnect=true&useUnicode=true&useSSL=false&serverTimezone=UTC",
        )
        .expect("valid");
        assert_eq!(url.scheme, "mysql");
        assert_eq!(url.host, "127.0.0.1");
        assert_eq!(url.port, Some(3306));
        assert_eq!(url.database, "nacos");
        assert_eq!(url.connect_timeout_ms(), Some(Duration::from_millis(1000)));
        assert_eq!(url.socket_timeout_ms(), Some(Duration::from_millis(3000)));
        assert_eq!(url.ssl_mode().as_deref(), Some("disabled"));
        let pg = JdbcUrl::parse("jdbc:postgresql://db.local/nacos").expect("valid");
        assert_eq!((pg.scheme.as_str(), pg.port), ("postgresql", None));
        assert!(JdbcUrl::parse("mysql://x/y").is_err());
        assert!(JdbcUrl::parse("jdbc:mysql://h:99999/y").is_err());
    }

    #[test]
    fn reads_indexed_and_shared_credentials() {
        let props: BTreeMap<&str, &str> = [
            ("db.num", "2"),
            ("db.url.0", "jdbc:mysql://a:3306/nacos"),
            ("db.url.1", "jdbc:mysql://b:3306/nacos"),
            ("db.user", "nacos"),
            ("db.password.1", "second"),
            ("db.password", "first"),
            ("db.pool.config.maximumPoolSize", "7"),
        ]
        .into_iter()
        .collect();
        let get = |k: &str| props.get(k).map(|v| v.to_string());
        let cfg = DataSourceConfig::from_properties(&get).expect("valid");
        assert_eq!(cfg.nodes.len(), 2);
        assert_eq!(cfg.nodes[0].user, "nacos");
        assert_eq!(cfg.nodes[1].user, "nacos");
        assert_eq!(cfg.nodes[0].password, "first");
        assert_eq!(cfg.nodes[1].password, "second");
        assert_eq!(cfg.pool.maximum_pool_size, 7);
        assert!(!format!("{:?}", cfg.nodes[0]).contains("first"));
        let missing = |k: &str| {
            if k == "db.num" {
                Some("2".to_string())
            } else {
                None
            }
        };
        assert!(
            DataSourceConfig::from_properties(&missing)
                .expect_err("no url")
                .contains("db.url.0")
        );
    }
}
