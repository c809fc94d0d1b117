//! Client config metrics, as Nacos's `/v1/cs/metrics` asks for them: the server sends
//! `ClientConfigMetricRequest` to every connection of one client IP and merges the `metrics`
//! maps the clients answer with (`ClientConfigMetricResponse`; the Java client answers one
//! entry, its uuid → a JSON document of its cache and snapshot state). With a config key the
//! request names it twice (`cacheData` and `snapshotData`), so the client adds that key's
//! values. A connection that does not answer in time, or answers with an error, is skipped.

use std::sync::Arc;
use std::time::Duration;

use nacos_core::ConfigKey;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::task::JoinSet;

use super::connection::ConnectionManager;
use crate::services::config::listen::group_key;

/// The push's type name.
pub const REQUEST: &str = "ClientConfigMetricRequest";

/// How long one connection has to answer (Nacos: 1 s).
pub const ANSWER_TIMEOUT: Duration = Duration::from_millis(1000);

/// Which client to ask, and optionally about which config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsQuery {
    /// The client's IP, as its connections reported it at setup.
    pub ip: String,
    pub key: Option<ConfigKey>,
}

/// The request's body: `metricsKeys` empty, or the key's cache and snapshot entries.
pub fn request_body(key: Option<&ConfigKey>) -> Value {
    let keys: Vec<Value> = key
        .map(|k| {
            let group_key = group_key(&k.data_id, &k.group, &k.namespace);
            ["cacheData", "snapshotData"]
                .iter()
                .map(|kind| json!({"type": kind, "key": group_key}))
                .collect()
        })
        .unwrap_or_default();
    json!({ "metricsKeys": keys })
}

/// Ask every client connection of `query.ip` on this node at once and merge their answers
/// (later keys win, as Nacos's `putAll`). Returns within about `timeout`.
pub async fn local(
    connections: &Arc<ConnectionManager>,
    query: &MetricsQuery,
    timeout: Duration,
) -> Map<String, Value> {
    let mut asks = JoinSet::new();
    for conn in connections.all() {
        if conn.meta.client_ip != query.ip || !conn.meta.is_sdk() {
            continue;
        }
        let connections = Arc::clone(connections);
        let body = request_body(query.key.as_ref());
        asks.spawn(async move {
            let answer = connections
                .ask(&conn, REQUEST, "config", body, timeout)
                .await;
            (conn.id.clone(), answer)
        });
    }
    let mut merged = Map::new();
    while let Some(done) = asks.join_next().await {
        match done {
            Ok((_, Ok(answer))) => match answer.get("metrics") {
                Some(Value::Object(metrics)) => merged.extend(metrics.clone()),
                Some(Value::Null) | None => {}
                Some(other) => tracing::debug!(%other, "client metrics: not a map, skipped"),
            },
            Ok((conn, Err(error))) => {
                tracing::debug!(%conn, %error, "client metrics: connection skipped");
            }
            Err(error) => tracing::debug!(%error, "client metrics: ask task failed"),
        }
    }
    merged
}
