//! Config changes across nodes sharing one external database (MySQL / PostgreSQL).
//!
//! Every node caches configs and holds its own listeners, but a write lands on one node.
//! That node sends `ConfigChangeClusterSyncRequest` for the key to every peer; a peer forgets
//! its cached copy (the next read goes to the database) and wakes its listeners. Messages can
//! be lost (a peer restarting, a network blip), so every node also scans the database's change
//! index (`ConfigRepo::changed_since`) periodically and treats what it had not heard of the
//! same way. Not used in an embedded cluster: there every node applies the Raft log itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nacos_core::ConfigKey;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Cluster;
use super::peer::PeerRequest;
use crate::foundation::protocol::error::GrpcResult;
use crate::foundation::protocol::message::grpc_response;
use crate::services::config::ConfigService;

/// Writes whose modification time lies this far before the newest one seen are still
/// looked for by the scan: it covers clock skew between nodes and commits that finish after
/// a later-stamped one.
const SCAN_OVERLAP_MS: i64 = 60_000;

/// `ConfigChangeClusterSyncRequest`, Nacos's own message for this.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConfigChangeClusterSyncRequest {
    pub data_id: String,
    pub group: String,
    pub tenant: String,
    pub last_modified: i64,
    pub gray_name: Option<String>,
    pub beta: bool,
    pub tag: Option<String>,
}

grpc_response!(
    /// Readable on both ends: peers parse it.
    #[derive(serde::Deserialize)]
    #[serde(default)]
    ConfigChangeClusterSyncResponse {});

impl PeerRequest for ConfigChangeClusterSyncRequest {
    const TYPE: &'static str = "ConfigChangeClusterSyncRequest";
    type Response = ConfigChangeClusterSyncResponse;
}

/// Which change of which key this node already acted on, so a key announced by a peer is not
/// announced again by the scan. Clones share one record.
#[derive(Debug, Default, Clone)]
pub struct SeenChanges {
    seen: Arc<Mutex<HashMap<ConfigKey, i64>>>,
}

impl SeenChanges {
    /// Record `modified_ms` for `key`; `true` when it is newer than what was seen.
    fn record(&self, key: &ConfigKey, modified_ms: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match seen.get(key) {
            Some(known) if *known >= modified_ms => false,
            _ => {
                seen.insert(key.clone(), modified_ms);
                true
            }
        }
    }

    fn prune(&self, before_ms: i64) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, ms| *ms >= before_ms);
    }
}

/// A peer wrote `req`'s key: forget the cached copy and wake its listeners.
pub fn on_sync(
    config: &ConfigService,
    seen: &SeenChanges,
    req: ConfigChangeClusterSyncRequest,
) -> GrpcResult<ConfigChangeClusterSyncResponse> {
    let key = ConfigKey::new(req.tenant, req.group, req.data_id);
    seen.record(&key, req.last_modified);
    config.changed(&key);
    Ok(ConfigChangeClusterSyncResponse::default())
}

/// The sender (local writes → peers) and the healing scan.
pub fn start(
    config: Arc<ConfigService>,
    seen: SeenChanges,
    cluster: Arc<Cluster>,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let sender_seen = seen.clone();
    let interval = cluster.settings.config_scan_interval;
    let sender = super::relay(
        config.subscribe_local_writes(),
        shutdown.clone(),
        "config change sync",
        move |key| {
            // Stamped after the commit: this node's own scan then skips the change.
            let now = nacos_core::now_millis();
            sender_seen.record(&key, now);
            cluster.tell_peers(ConfigChangeClusterSyncRequest {
                data_id: key.data_id,
                group: key.group,
                tenant: key.namespace,
                last_modified: now,
                ..Default::default()
            });
        },
    );
    let scanner = tokio::spawn(async move { scan_loop(config, seen, interval, shutdown).await });
    vec![sender, scanner]
}

async fn scan_loop(
    config: Arc<ConfigService>,
    seen: SeenChanges,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut newest = nacos_core::now_millis();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let since = newest.saturating_sub(SCAN_OVERLAP_MS);
        match config.repo().changed_since(since).await {
            Ok(changes) => {
                let mut healed = 0usize;
                for change in changes {
                    newest = newest.max(change.modified_ms);
                    if seen.record(&change.key, change.modified_ms) {
                        config.changed(&change.key);
                        healed += 1;
                    }
                }
                if healed > 0 {
                    tracing::debug!(keys = healed, "config scan refreshed changed keys");
                }
                seen.prune(since.saturating_sub(SCAN_OVERLAP_MS));
            }
            Err(e) => tracing::warn!("config change scan failed: {e}"),
        }
    }
}
