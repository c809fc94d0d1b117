//! Which client connection listens to which config key, and the `ConfigChangeNotifyRequest`
//! push to every connection listening to a key that changed — through any edge, since every
//! write goes through the one [`ConfigService`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nacos_core::ConfigKey;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::connection::ConnectionManager;
use super::push::{PushKind, PushPolicy, Subscribers};
use crate::services::config::ConfigService;

/// What a connection registered for a key.
#[derive(Debug, Clone)]
pub struct ListenData {
    /// The namespace as the client wrote it, echoed in pushes so it recognises its key.
    pub tenant: String,
    /// The client's md5 when it listened.
    pub md5: String,
}

/// `ConfigChangeNotifyRequest {dataId, group, tenant}`, retried after `tries × retryDelay`;
/// the connection is dropped after `maxRetryTime` failures (Nacos's rule).
#[derive(Debug)]
pub struct ConfigPush {
    policy: PushPolicy,
}

impl PushKind for ConfigPush {
    type Key = ConfigKey;
    type Data = ListenData;
    const TYPE: &'static str = "ConfigChangeNotifyRequest";
    const MODULE: &'static str = "config";

    fn body(&self, key: &ConfigKey, data: &ListenData) -> Vec<u8> {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ChangeNotify<'a> {
            data_id: &'a str,
            group: &'a str,
            tenant: &'a str,
        }
        let body = ChangeNotify {
            data_id: &key.data_id,
            group: &key.group,
            tenant: &data.tenant,
        };
        serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec())
    }

    fn policy(&self) -> PushPolicy {
        self.policy.clone()
    }
}

/// Which gRPC connection listens to which config key, fed by every change of the one
/// [`ConfigService`].
#[derive(Debug)]
pub struct ConfigListeners {
    subs: Arc<Subscribers<ConfigPush>>,
    changes: mpsc::UnboundedSender<ConfigKey>,
    /// Taken by the push task when the server starts.
    changes_rx: Mutex<Option<mpsc::UnboundedReceiver<ConfigKey>>>,
}

impl ConfigListeners {
    /// Create the index, observe `config` for changes and drop a connection's listens when it
    /// unregisters.
    pub fn install(
        config: &ConfigService,
        connections: &ConnectionManager,
        stats: Arc<crate::foundation::metrics::PushStats>,
    ) -> Arc<Self> {
        let settings = connections.settings();
        let kind = ConfigPush {
            policy: PushPolicy {
                delay: Duration::ZERO,
                timeout: settings.push_timeout,
                retry_delay: settings.config_push_retry_delay,
                linear: true,
                max_tries: settings.config_push_max_retries.max(1),
                eject_when_exhausted: true,
            },
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let observer = tx.clone();
        config.hub().observe(Arc::new(move |key: &ConfigKey| {
            let _ = observer.send(key.clone());
        }));
        Arc::new(Self {
            subs: Subscribers::install(kind, connections, stats),
            changes: tx,
            changes_rx: Mutex::new(Some(rx)),
        })
    }

    pub fn listen(&self, conn: &Arc<str>, key: ConfigKey, tenant: String, md5: String) {
        self.subs.add(conn, key, ListenData { tenant, md5 });
    }

    pub fn unlisten(&self, conn: &Arc<str>, key: &ConfigKey) {
        self.subs.remove(conn, key);
    }

    pub fn remove_connection(&self, conn: &str) {
        self.subs.remove_connection(conn);
    }

    /// (connection, key) listen pairs.
    pub fn listener_count(&self) -> usize {
        self.subs.count()
    }

    /// Keys `conn` listens to, with the md5 it reported.
    pub fn listened_by(&self, conn: &str) -> Vec<(ConfigKey, String)> {
        self.subs
            .watched_by(conn)
            .into_iter()
            .map(|(k, d)| (k, d.md5))
            .collect()
    }

    /// The connections listening to `key`, with the md5 each reported.
    pub fn listeners_of(&self, key: &ConfigKey) -> Vec<(Arc<str>, String)> {
        self.subs
            .watchers(key)
            .into_iter()
            .filter_map(|conn| {
                let md5 = self
                    .subs
                    .watched_by(&conn)
                    .into_iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, d)| d.md5)?;
                Some((conn, md5))
            })
            .collect()
    }

    /// Every connection that listens to something.
    pub fn listening_connections(&self) -> Vec<Arc<str>> {
        self.subs.connections()
    }

    /// Announce a change as if the config service had (cluster sync, tests).
    pub fn changed(&self, key: &ConfigKey) {
        let _ = self.changes.send(key.clone());
    }

    /// Start the task that turns changed keys into pushes. Stops with `shutdown`.
    pub fn start(
        self: &Arc<Self>,
        connections: Arc<ConnectionManager>,
        shutdown: CancellationToken,
    ) -> Option<JoinHandle<()>> {
        let mut rx = self
            .changes_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        let subs = Arc::clone(&self.subs);
        Some(tokio::spawn(async move {
            loop {
                let key = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    key = rx.recv() => key,
                };
                let Some(key) = key else { break };
                subs.changed(&connections, &key);
            }
        }))
    }
}
