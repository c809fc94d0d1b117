//! Client config metrics across the cluster (Nacos's `/v1/cs/metrics/cluster`): a client's
//! connections may sit on any node, so the node asked gathers its own clients' answers and
//! every peer's (`ClientConfigMetricQueryRequest` on the cluster port, ours; Nacos asks each
//! member's `/v1/cs/metrics/current` over HTTP). Peers are asked at once; one that does not
//! answer within the gather limit is left out and named in the log.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::task::JoinSet;

use crate::foundation::protocol::error::GrpcResult;
use crate::foundation::protocol::message::grpc_response;
use crate::services::clients::config_metrics::MetricsQuery;

use super::Cluster;
use super::peer::PeerRequest;

/// How long the whole gather waits for peers (Nacos waits 3 s for its members).
pub const GATHER_LIMIT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfigMetricQueryRequest {
    pub query: MetricsQuery,
}

grpc_response!(
/// Readable on both ends: the asking node parses it.
#[derive(serde::Deserialize)]
#[serde(default)]
ClientConfigMetricQueryResponse {
    metrics: Map<String, Value>,
});

impl PeerRequest for ClientConfigMetricQueryRequest {
    const TYPE: &'static str = "ClientConfigMetricQueryRequest";
    type Response = ClientConfigMetricQueryResponse;
}

/// A peer's answer: what its own clients answered.
pub fn on_query(local: Map<String, Value>) -> GrpcResult<ClientConfigMetricQueryResponse> {
    Ok(ClientConfigMetricQueryResponse {
        metrics: local,
        ..Default::default()
    })
}

/// Every peer's answers merged; the peers that did not answer in time are returned second.
/// Standalone (no cluster): nothing.
pub async fn gather(
    cluster: Option<&Arc<Cluster>>,
    query: &MetricsQuery,
) -> (Map<String, Value>, Vec<String>) {
    let mut metrics = Map::new();
    let mut unreachable = Vec::new();
    let Some(cluster) = cluster else {
        return (metrics, unreachable);
    };
    let mut asks = JoinSet::new();
    for member in cluster.members.peers() {
        let address = member.address();
        let Some(grpc) = cluster.cluster_grpc_addr(&address) else {
            unreachable.push(address);
            continue;
        };
        let cluster = Arc::clone(cluster);
        let request = ClientConfigMetricQueryRequest {
            query: query.clone(),
        };
        asks.spawn(async move {
            let reply = cluster
                .peers
                .request_within(&grpc, &request, GATHER_LIMIT)
                .await
                .map_err(|e| e.to_string());
            (address, reply)
        });
    }
    while let Some(done) = asks.join_next().await {
        match done {
            Ok((_, Ok(reply))) => metrics.extend(reply.metrics),
            Ok((address, Err(error))) => {
                tracing::info!(%address, %error, "client metrics: peer did not answer");
                unreachable.push(address);
            }
            Err(error) => tracing::warn!(%error, "client metrics: peer task failed"),
        }
    }
    unreachable.sort();
    (metrics, unreachable)
}
