//! The console's listening query across the cluster: each node knows only the clients connected
//! to it, so the node asked collects its own listens and every peer's
//! (`ConfigListenerQueryRequest` on the cluster port).

use crate::foundation::protocol::error::GrpcResult;
use crate::foundation::protocol::message::grpc_response;
use crate::services::clients::listeners::{ConfigListener, ListenerQuery};

use super::Cluster;
use super::peer::PeerRequest;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigListenerQueryRequest {
    pub query: ListenerQuery,
}

grpc_response!(
/// Readable on both ends: the asking node parses it.
#[derive(serde::Deserialize)]
#[serde(default)]
ConfigListenerQueryResponse {
    listeners: Vec<ConfigListener>,
});

impl PeerRequest for ConfigListenerQueryRequest {
    const TYPE: &'static str = "ConfigListenerQueryRequest";
    type Response = ConfigListenerQueryResponse;
}

/// A peer's answer: its own listens.
pub fn on_query(local: Vec<ConfigListener>) -> GrpcResult<ConfigListenerQueryResponse> {
    Ok(ConfigListenerQueryResponse {
        listeners: local,
        ..Default::default()
    })
}

/// This node's listens plus every peer's; the peers that did not answer are named in the
/// second value (their clients are missing from the first).
pub async fn gather(
    cluster: Option<&Cluster>,
    mut listeners: Vec<ConfigListener>,
    query: &ListenerQuery,
) -> (Vec<ConfigListener>, Vec<String>) {
    let mut unreachable = Vec::new();
    let Some(cluster) = cluster else {
        return (listeners, unreachable);
    };
    let request = ConfigListenerQueryRequest {
        query: query.clone(),
    };
    for member in cluster.members.peers() {
        let address = member.address();
        let Some(grpc) = cluster.cluster_grpc_addr(&address) else {
            unreachable.push(address);
            continue;
        };
        match cluster.peers.request(&grpc, &request).await {
            Ok(reply) => listeners.extend(reply.listeners),
            Err(error) => {
                tracing::debug!(%address, %error, "listening query: peer did not answer");
                unreachable.push(address);
            }
        }
    }
    listeners.sort_by(|a, b| {
        (&a.tenant, &a.group, &a.data_id, &a.address, &a.node)
            .cmp(&(&b.tenant, &b.group, &b.data_id, &b.address, &b.node))
    });
    (listeners, unreachable)
}
