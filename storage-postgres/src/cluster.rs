//! Connections: one bb8 pool per configured node (`db.url.N`), the choice of the first
//! writable one (not `pg_is_in_recovery()`, sessions not read-only), and a background re-check
//! (every `nacos.db.ha.checkIntervalMs`, and at once after a call failed with `Unavailable`)
//! that moves to another node when the current one becomes a standby, read-only or unreachable
//! (as Nacos re-selects its MySQL master). The policy (who is primary, when to re-check) is
//! [`nacos_core::ha`]'s, shared with the MySQL backend; this module only asks the nodes.
//!
//! JDBC URL parameters honoured, with PostgreSQL JDBC's meaning:
//!
//! | parameter | effect |
//! | --- | --- |
//! | `connectTimeout` (seconds, default 10, 0 = none) | TCP connect and start-up time limit |
//! | `loginTimeout` (seconds) | same, when `connectTimeout` is absent |
//! | `socketTimeout` (seconds, default 60, 0 = none) | time limit of each repository call |
//! | `sslmode` / `ssl` / `sslrootcert` / `sslfactory` | TLS, see `tls` (default `prefer`) |
//! | `currentSchema` | the session's `search_path` |
//! | `ApplicationName` | `application_name` (default `nacos-server`) |
//! | `user` / `password` | used when `db.user` / `db.password` are not set |
//! | `tcpKeepAlive` | TCP keep-alives (on unless `false`) |
//!
//! Other parameters are ignored. Passwords never reach logs or error messages: a node is named
//! by `host:port/database` only.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use diesel::sql_types::Bool;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, PoolError};
use nacos_core::RepoError;
use nacos_core::datasource::{DataSourceConfig, DbNode, PoolConfig};
use nacos_core::ha::{self, Monitor, NodeProbe};

use crate::{error, tls};

/// PostgreSQL JDBC's default `connectTimeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The time limit of one repository call when the URL sets no `socketTimeout` (PostgreSQL
/// JDBC would wait forever; a server should not hang on a silent network). `socketTimeout=0`
/// still means "no limit".
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// One configured database.
pub(crate) struct Node {
    /// `host:port/database`, for logs and errors (never the password).
    pub label: String,
    pub pool: Pool<AsyncPgConnection>,
    /// The last error of a background connection attempt, so a pool time-out can say why.
    last_error: Arc<Mutex<Option<String>>>,
}

impl Node {
    /// A pooled connection, or `Unavailable` naming the node (and the last connect error).
    pub async fn get(&self) -> Result<PooledConnection<'_, AsyncPgConnection>, RepoError> {
        self.pool.get().await.map_err(|e| {
            let mapped = error::pool(&self.label, e);
            match (mapped, self.last_error()) {
                (RepoError::Unavailable(m), Some(last)) => {
                    let message = format!("{m}; last connection error: {last}");
                    RepoError::Unavailable(m.reworded(message))
                }
                (other, _) => other,
            }
        })
    }

    fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }

    /// `Ok(true)` when the node accepts writes, `Ok(false)` when it is a standby or read-only.
    /// Uses a connection of its own, so a failure reports the real cause instead of a pool
    /// time-out.
    async fn probe(&self) -> Result<bool, RepoError> {
        // Scoped: the trait's blanket methods (`load`, `first`) shadow std ones elsewhere.
        use diesel_async::RunQueryDsl;
        let mut conn = self
            .pool
            .dedicated_connection()
            .await
            .map_err(|e| error::pool_error(&self.label, e))?;
        // A standby, or a session that is read-only anyway (`default_transaction_read_only`
        // set on the database or role), cannot take writes.
        let writable: bool = diesel::select(diesel::dsl::sql::<Bool>(
            "NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'",
        ))
        .get_result(&mut conn)
        .await
        .map_err(error::db)?;
        Ok(writable)
    }
}

#[async_trait]
impl NodeProbe for Node {
    async fn is_writable(&self) -> Result<bool, String> {
        self.probe().await.map_err(|e| e.to_string())
    }
}

/// After a failed call wakes the re-check, it waits this long first: several failing calls
/// wake it at once; let them settle.
const SETTLE: Duration = Duration::from_millis(200);

/// The configured nodes and which one is in use.
pub(crate) struct Cluster {
    nodes: Vec<Node>,
    /// Index into `nodes` of the writable node every call goes to.
    current: AtomicUsize,
    /// While the last check found no writable node: a reachable standby that serves reads
    /// (`usize::MAX`: none, or a writable node is in use).
    standby: AtomicUsize,
    /// `socketTimeout` of the first URL (default [`DEFAULT_CALL_TIMEOUT`]): the time limit of
    /// one repository call.
    pub socket_timeout: Option<Duration>,
    /// Wakes the re-check early (after a call failed with `Unavailable`).
    monitor: Arc<Monitor>,
    /// Times calls moved to another node.
    failovers: AtomicU64,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field(
                "nodes",
                &self.nodes.iter().map(|n| &n.label).collect::<Vec<_>>(),
            )
            .field("current", &self.current.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Build a pool per node (no connection is made yet) and pick the first writable node.
    ///
    /// Errors: `InvalidArgument` for unusable URL settings (not a PostgreSQL URL, an unknown
    /// `sslmode`, an unreadable `sslrootcert`); `Unavailable` when no node can be reached or
    /// none accepts writes, naming each node's problem.
    pub async fn connect(
        config: &DataSourceConfig,
        check_interval: Duration,
    ) -> Result<Arc<Cluster>, RepoError> {
        let mut nodes = Vec::with_capacity(config.nodes.len());
        for node in &config.nodes {
            nodes.push(build_node(node, &config.pool)?);
        }
        let socket_timeout = match config
            .nodes
            .first()
            .and_then(|n| n.url.param("socketTimeout"))
        {
            None => Some(DEFAULT_CALL_TIMEOUT),
            Some(v) => seconds(Some(v)),
        };
        let cluster = Arc::new(Cluster {
            nodes,
            current: AtomicUsize::new(0),
            standby: AtomicUsize::new(usize::MAX),
            socket_timeout,
            monitor: Arc::new(Monitor::default()),
            failovers: AtomicU64::new(0),
        });
        let chosen = cluster.select_writable().await?;
        cluster.current.store(chosen, Ordering::Relaxed);
        if cluster.nodes.len() > 1 {
            ha::spawn_monitor(
                Arc::downgrade(&cluster),
                Arc::clone(&cluster.monitor),
                check_interval,
                SETTLE,
                |cluster: Arc<Cluster>| {
                    Box::pin(async move {
                        cluster.recheck_once().await;
                    })
                },
            );
        }
        Ok(cluster)
    }

    /// The node calls go to.
    pub fn current(&self) -> &Node {
        let index = self.current.load(Ordering::Relaxed);
        // `current` only ever holds an index of `nodes`, which is never empty.
        &self.nodes[index.min(self.nodes.len() - 1)]
    }

    /// The node reads go to: the standby while no node is writable, else [`Self::current`].
    pub fn reader(&self) -> &Node {
        match self.nodes.get(self.standby.load(Ordering::Relaxed)) {
            Some(standby) => standby,
            None => self.current(),
        }
    }

    /// Which node takes writes (none while only a standby answers) and how often that
    /// changed, for metrics.
    pub fn ha_status(&self) -> ha::HaStatus {
        let writable = self.standby.load(Ordering::Relaxed) == usize::MAX;
        ha::HaStatus {
            nodes: self.nodes.len(),
            primary: writable.then(|| self.current.load(Ordering::Relaxed)),
            failovers: self.failovers.load(Ordering::Relaxed),
        }
    }

    /// Why writes fail now, when the last check found no writable node.
    pub fn write_problem(&self) -> Option<RepoError> {
        let standby = self.nodes.get(self.standby.load(Ordering::Relaxed))?;
        Some(RepoError::Unavailable(
            format!(
                "no writable PostgreSQL node; reads go to the standby {}",
                standby.label
            )
            .into(),
        ))
    }

    /// Ask the background task to check the nodes now (no-op with a single node).
    pub fn suspect(&self) {
        if self.nodes.len() > 1 {
            self.monitor.suspect();
        }
    }

    /// The node to use: `current` while it is writable, else the first node (in `db.url.N`
    /// order) that is reachable and writable ([`ha::first_writable`]); with what is wrong with
    /// the nodes it asked.
    async fn choose(&self, current: Option<usize>) -> (Option<usize>, Vec<String>) {
        let (chosen, answers) = ha::first_writable(&self.nodes, current).await;
        // Without a writable node every node was asked: the first one answering read-only
        // serves reads until a writable one is back.
        let standby = match chosen {
            Some(_) => None,
            None => answers
                .iter()
                .find(|(_, answer)| *answer == Ok(false))
                .map(|(index, _)| *index),
        };
        let previous = self
            .standby
            .swap(standby.unwrap_or(usize::MAX), Ordering::Relaxed);
        if let Some(index) = standby
            && previous != index
        {
            tracing::warn!(
                node = %self.nodes[index].label,
                "no writable PostgreSQL node: reads go to a standby"
            );
        }
        let problems = answers
            .iter()
            .filter_map(|(index, answer)| match answer {
                Ok(true) => None,
                Ok(false) => Some(format!(
                    "{} is read-only (a standby?)",
                    self.nodes[*index].label
                )),
                Err(e) => Some(e.clone()),
            })
            .collect();
        (chosen, problems)
    }

    /// The first writable node, or `Unavailable` naming each node's problem.
    async fn select_writable(&self) -> Result<usize, RepoError> {
        match self.choose(None).await {
            (Some(index), _) => {
                tracing::info!(node = %self.nodes[index].label, "using PostgreSQL node");
                Ok(index)
            }
            (None, problems) => Err(RepoError::Unavailable(
                format!("no writable PostgreSQL node: {}", problems.join("; ")).into(),
            )),
        }
    }

    /// Keep the current node if it is still writable, else move to the first one that is.
    async fn recheck_once(&self) {
        let current = self.current.load(Ordering::Relaxed);
        match self.choose(Some(current)).await {
            (Some(index), _) if index == current => {}
            (Some(index), problems) => {
                tracing::warn!(
                    from = %self.nodes[current].label,
                    to = %self.nodes[index].label,
                    why = %problems.join("; "),
                    "switched PostgreSQL node"
                );
                self.current.store(index, Ordering::Relaxed);
                self.failovers.fetch_add(1, Ordering::Relaxed);
            }
            (None, problems) => tracing::error!(
                why = %problems.join("; "),
                "no writable PostgreSQL node"
            ),
        }
    }
}

/// Seconds from a JDBC parameter; `None` when absent, unparsable or 0 (PostgreSQL JDBC's "no
/// limit").
fn seconds(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

/// `host:port/database` of a node.
fn label(node: &DbNode, host: &str, port: u16) -> String {
    format!("{host}:{port}/{}", node.url.database)
}

/// The tokio-postgres settings of one node, from its JDBC URL and credentials.
pub(crate) fn client_config(
    node: &DbNode,
) -> Result<(tokio_postgres::Config, tls::RustlsConnect), RepoError> {
    let url = &node.url;
    let host = url.host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port.unwrap_or(5432);
    if !matches!(url.scheme.as_str(), "postgresql" | "postgres" | "pgsql") {
        return Err(RepoError::InvalidArgument(format!(
            "{} is a '{}' URL; the postgresql platform needs jdbc:postgresql://",
            label(node, host, port),
            url.scheme
        )));
    }
    let mut config = tokio_postgres::Config::new();
    config.host(host).port(port);
    let user = if node.user.is_empty() {
        url.param("user").unwrap_or_default().to_string()
    } else {
        node.user.clone()
    };
    if !user.is_empty() {
        config.user(&user);
    }
    let password = if node.password.is_empty() {
        url.param("password").unwrap_or_default().to_string()
    } else {
        node.password.clone()
    };
    if !password.is_empty() {
        config.password(password);
    }
    if !url.database.is_empty() {
        config.dbname(&url.database);
    }
    config.application_name(url.param("ApplicationName").unwrap_or("nacos-server"));
    let connect_timeout = match url
        .param("connectTimeout")
        .or_else(|| url.param("loginTimeout"))
    {
        None => Some(DEFAULT_CONNECT_TIMEOUT),
        Some(v) => seconds(Some(v)),
    };
    if let Some(timeout) = connect_timeout {
        config.connect_timeout(timeout);
    }
    if url
        .param("tcpKeepAlive")
        .is_some_and(|v| v.eq_ignore_ascii_case("false"))
    {
        config.keepalives(false);
    }
    if let Some(schema) = url.param("currentSchema").filter(|s| !s.is_empty()) {
        config.options(format!("-c search_path={}", escape_option(schema)));
    }
    let tls = tls_settings(node, host, port)?;
    config.ssl_mode(tls.mode);
    Ok((config, tls.connector))
}

/// The `sslmode` a node's URL asks for (PostgreSQL JDBC: `ssl=true` means `verify-full`; the
/// default is `prefer`), with its trusted roots (`sslrootcert`).
fn tls_settings(node: &DbNode, host: &str, port: u16) -> Result<tls::TlsSettings, RepoError> {
    let url = &node.url;
    let mode = match url.param("sslmode").map(str::to_ascii_lowercase) {
        Some(mode) => mode,
        None if url
            .param("ssl")
            .is_some_and(|v| v.is_empty() || v.eq_ignore_ascii_case("true")) =>
        {
            "verify-full".to_string()
        }
        None => "prefer".to_string(),
    };
    let non_validating = url
        .param("sslfactory")
        .is_some_and(|f| f.contains("NonValidatingFactory"));
    tls::settings(
        &mode,
        url.param("sslrootcert").filter(|p| !p.is_empty()),
        non_validating,
    )
    .map_err(|e| RepoError::InvalidArgument(format!("PostgreSQL {}: {e}", label(node, host, port))))
}

/// An error with its causes (tokio-postgres puts the useful part, such as why a certificate
/// was refused, in the source).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = inner.source();
    }
    message
}

/// Escape a value for the `options` start-up parameter (spaces and backslashes).
fn escape_option(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == ' ' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Records background connection errors for [`Node::get`].
#[derive(Debug, Clone)]
struct LastError(Arc<Mutex<Option<String>>>);

impl bb8::ErrorSink<PoolError> for LastError {
    fn sink(&self, error: PoolError) {
        tracing::debug!(error = %error, "PostgreSQL background connection failed");
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(error.to_string());
        }
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<PoolError>> {
        Box::new(self.clone())
    }
}

fn build_node(node: &DbNode, pool: &PoolConfig) -> Result<Node, RepoError> {
    let (config, connector) = client_config(node)?;
    let host = node.url.host.trim_start_matches('[').trim_end_matches(']');
    let label = label(node, host, node.url.port.unwrap_or(5432));
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    manager_config.custom_setup = Box::new(move |_ignored_url: &str| {
        let config = config.clone();
        let connector = connector.clone();
        Box::pin(async move {
            let (client, connection) = config
                .connect(connector)
                .await
                .map_err(|e| diesel::ConnectionError::BadConnection(with_causes(&e)))?;
            AsyncPgConnection::try_from_client_and_connection(client, connection).await
        })
    });
    // The manager's URL is only a name here: the setup above connects with `config`.
    let manager = AsyncDieselConnectionManager::new_with_config(label.clone(), manager_config);
    let max = pool.maximum_pool_size.max(1);
    let last_error = Arc::new(Mutex::new(None));
    let pool = Pool::builder()
        .max_size(max)
        .min_idle(Some(pool.minimum_idle.min(max)))
        .connection_timeout(pool.connection_timeout.max(Duration::from_millis(100)))
        .idle_timeout(Some(pool.idle_timeout).filter(|d| !d.is_zero()))
        .error_sink(Box::new(LastError(Arc::clone(&last_error))))
        .build_unchecked(manager);
    Ok(Node {
        label,
        pool,
        last_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nacos_core::datasource::JdbcUrl;

    fn node(url: &str) -> DbNode {
        DbNode {
            url: JdbcUrl::parse(url).expect("valid url"),
            user: "nacos".to_string(),
            password: "secret".to_string(),
        }
    }

    #[test]
    fn reads_jdbc_parameters() {
        let (config, _) = client_config(&node(
            "jdbc:postgresql://db.local:6543/nacos?connectTimeout=3&currentSchema=my schema&sslmode=disable",
        ))
        .expect("valid");
        assert_eq!(config.get_ports(), &[6543]);
        assert_eq!(config.get_dbname(), Some("nacos"));
        assert_eq!(config.get_user(), Some("nacos"));
        assert_eq!(config.get_password(), Some(&b"secret"[..]));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(config.get_options(), Some("-c search_path=my\\ schema"));
        let (default, _) = client_config(&node("jdbc:postgresql://h/nacos")).expect("valid");
        assert_eq!(default.get_ports(), &[5432]);
        assert_eq!(
            default.get_connect_timeout(),
            Some(&DEFAULT_CONNECT_TIMEOUT)
        );
        let (none, _) =
            client_config(&node("jdbc:postgresql://h/nacos?connectTimeout=0")).expect("ok");
        assert_eq!(none.get_connect_timeout(), None);
    }

    #[test]
    fn tls_parameters() {
        use tokio_postgres::config::SslMode;
        let mode = |url: &str| client_config(&node(url)).map(|(c, _)| c.get_ssl_mode());
        assert!(matches!(
            mode("jdbc:postgresql://h/nacos"),
            Ok(SslMode::Prefer)
        ));
        assert!(matches!(
            mode("jdbc:postgresql://h/nacos?sslmode=require"),
            Ok(SslMode::Require)
        ));
        assert!(matches!(
            mode("jdbc:postgresql://h/nacos?ssl=true"),
            Ok(SslMode::Require)
        ));
        assert!(matches!(
            mode("jdbc:postgresql://h/nacos?sslmode=disable"),
            Ok(SslMode::Disable)
        ));
        for url in [
            "jdbc:postgresql://h/nacos?sslmode=bogus",
            "jdbc:postgresql://h/nacos?sslmode=verify-ca&sslrootcert=/nonexistent.pem",
            "jdbc:mysql://h/nacos",
        ] {
            let err = client_config(&node(url)).map(|_| ()).expect_err(url);
            assert!(matches!(err, RepoError::InvalidArgument(_)), "{url}: {err}");
            assert!(!err.to_string().contains("secret"), "no password: {err}");
        }
    }

    #[test]
    fn socket_timeout_is_seconds() {
        assert_eq!(seconds(Some("3")), Some(Duration::from_secs(3)));
        assert_eq!(seconds(Some("0")), None);
        assert_eq!(seconds(None), None);
    }
}
