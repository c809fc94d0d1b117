//! Member reports: every `report_interval` this node sends `MemberReportRequest` with its own
//! `Member` to each peer. An answer marks the peer UP; a failure counts towards SUSPICIOUS and
//! DOWN. A report received marks its sender UP. (Nacos reports to one peer per tick, round
//! robin; with the few members a cluster has, reporting to all of them each tick finds a dead
//! node in a third of the time for a handful of small calls.)

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Cluster;
use super::peer::PeerRequest;
use crate::foundation::protocol::error::{GrpcError, GrpcResult, code};
use crate::foundation::protocol::message::grpc_response;

/// `MemberReportRequest {node}`: the sender's `Member`.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MemberReportRequest {
    pub node: serde_json::Value,
}

grpc_response!(
    /// Readable on both ends: peers parse it.
    #[derive(serde::Deserialize)]
    #[serde(default)]
    MemberReportResponse {
    node: serde_json::Value,
});

impl PeerRequest for MemberReportRequest {
    const TYPE: &'static str = "MemberReportRequest";
    type Response = MemberReportResponse;
}

/// A peer reported itself: mark it UP and answer with this node.
pub fn on_report(
    cluster: Option<&Cluster>,
    req: MemberReportRequest,
) -> GrpcResult<MemberReportResponse> {
    let Some(cluster) = cluster else {
        return Err(GrpcError::fail(
            code::INVALID_PARAM,
            "this node is standalone",
        ));
    };
    let address = req
        .node
        .get("address")
        .and_then(|a| a.as_str())
        .unwrap_or("");
    if !cluster.members.contains(address) {
        return Err(GrpcError::fail(
            code::INVALID_PARAM,
            format!("'{address}' is not a member of this cluster"),
        ));
    }
    let version = req
        .node
        .pointer("/extendInfo/version")
        .and_then(|v| v.as_str());
    cluster.members.mark_up(address, version);
    Ok(MemberReportResponse {
        node: cluster.self_member().to_json(),
        ..Default::default()
    })
}

/// Report to one peer and record the outcome.
async fn report_to(cluster: &Cluster, address: &str) {
    let Some(grpc) = cluster.cluster_grpc_addr(address) else {
        return;
    };
    let request = MemberReportRequest {
        node: cluster.self_member().to_json(),
    };
    match cluster.peers.request(&grpc, &request).await {
        Ok(resp) => {
            let version = resp
                .node
                .pointer("/extendInfo/version")
                .and_then(|v| v.as_str());
            cluster.members.mark_up(address, version);
        }
        Err(e) => {
            tracing::debug!(member = %address, error = %e, "member report failed");
            cluster.members.mark_failed(address);
        }
    }
}

pub fn start(cluster: Arc<Cluster>, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(cluster.settings.report_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            // Concurrently, and the next round only once every report of this one ended.
            let mut reports = tokio::task::JoinSet::new();
            for member in cluster.members.peers() {
                let cluster = Arc::clone(&cluster);
                reports.spawn(async move { report_to(&cluster, &member.address()).await });
            }
            while reports.join_next().await.is_some() {}
        }
    })
}
