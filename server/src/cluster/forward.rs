//! v1 HTTP clients in a cluster: their writes go to the node that owns them.
//!
//! A v1 client (`ip:port#true`) belongs to the node it registered on, which watches its beats
//! and tells the other nodes (distro). Nacos 1.x clients pick a server at random for every
//! request, so its beats, re-registrations and deregistration often reach a node that only
//! holds a copy. Such a node forwards the operation to the owner over the cluster port
//! (`EphemeralClientForwardRequest`, ours; Nacos proxies the HTTP request to a node chosen by
//! hashing the client id) and answers with the owner's result. When the owner cannot be reached,
//! the node adopts the client: the copy becomes its own and it carries on (and tells its peers).

use std::sync::Arc;

use nacos_core::{Instance, ServiceKey};
use serde::{Deserialize, Serialize};

use super::Cluster;
use super::distro::Distro;
use super::members::NodeState;
use super::peer::{PeerError, PeerRequest};
use crate::foundation::protocol::error::{GrpcError, GrpcResult, code};
use crate::foundation::protocol::message::grpc_response;
use crate::services::naming::health::{Beat, BeatOutcome};
use crate::services::naming::{ClientId, NamingError, NamingResult, NamingService};

/// One write of a v1 ephemeral client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum ClientOp {
    Register {
        service: ServiceKey,
        instance: Instance,
    },
    Deregister {
        service: ServiceKey,
        instance: Instance,
    },
    Beat {
        service: ServiceKey,
        ip: String,
        port: u16,
        cluster: String,
        register: Option<Instance>,
    },
}

/// `EphemeralClientForwardRequest`: run `operation` for `clientId` on its owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EphemeralClientForwardRequest {
    pub client_id: String,
    pub operation: ClientOp,
}

grpc_response!(
    /// Readable on both ends: peers parse it.
    #[derive(serde::Deserialize)]
    #[serde(default)]
    EphemeralClientForwardResponse {
        /// Beats: the beat code (10200 / 20404) and the interval for the client.
        beat_code: Option<i32>,
        beat_interval_ms: Option<u64>,
    }
);

impl PeerRequest for EphemeralClientForwardRequest {
    const TYPE: &'static str = "EphemeralClientForwardRequest";
    type Response = EphemeralClientForwardResponse;
}

/// Run `op` for `client` here, without forwarding.
async fn execute(
    naming: &NamingService,
    client: &ClientId,
    op: ClientOp,
) -> NamingResult<Option<BeatOutcome>> {
    match op {
        ClientOp::Register { service, instance } => {
            naming.register_instance(&service, instance, client).await?;
            Ok(None)
        }
        ClientOp::Deregister { service, instance } => {
            naming
                .deregister_instance(&service, &instance, client)
                .await?;
            Ok(None)
        }
        ClientOp::Beat {
            service,
            ip,
            port,
            cluster,
            register,
        } => {
            let beat = Beat {
                ip,
                port,
                cluster,
                register,
            };
            naming.beat(&service, beat).await.map(Some)
        }
    }
}

/// Run a v1 client's write where it belongs: on its owner when this node only holds a copy,
/// else here. Returns the beat outcome for beats.
pub async fn run(
    naming: &NamingService,
    cluster: Option<&Cluster>,
    distro: Option<&Arc<Distro>>,
    client: &ClientId,
    op: ClientOp,
) -> NamingResult<Option<BeatOutcome>> {
    let owner = cluster
        .zip(naming.remote_owner(client))
        .filter(|(cluster, owner)| {
            cluster
                .members
                .get(owner)
                .is_some_and(|m| m.state != NodeState::Down)
        });
    let Some((cluster, owner)) = owner else {
        return execute(naming, client, op).await;
    };
    let request = EphemeralClientForwardRequest {
        client_id: client.as_str().to_string(),
        operation: op.clone(),
    };
    let sent = match cluster.cluster_grpc_addr(&owner) {
        Some(grpc) => cluster.peers.request(&grpc, &request).await,
        None => Err(PeerError::NotDelivered {
            addr: owner.clone(),
            message: "no longer a member".to_string(),
        }),
    };
    match sent {
        Ok(resp) => Ok(resp.beat_code.map(|code| BeatOutcome {
            code,
            client_beat_interval: std::time::Duration::from_millis(
                resp.beat_interval_ms.unwrap_or_default(),
            ),
        })),
        Err(PeerError::Refused { code, message, .. }) => Err(match code {
            code::NOT_FOUND => NamingError::NotFound(message),
            code::INVALID_PARAM => NamingError::Invalid(message),
            _ => NamingError::Repo(nacos_core::RepoError::Unavailable(message.into())),
        }),
        Err(e) => {
            tracing::info!(client = %client, owner = %owner, error = %e, "the owner of a v1 client cannot be reached; this node takes the client over");
            naming.adopt_remote_client(client);
            let result = execute(naming, client, op).await;
            if let Some(distro) = distro {
                distro.sync_client(client.clone()).await;
            }
            result
        }
    }
}

/// A peer forwarded a write of a client this node owns: run it here.
pub async fn on_forward(
    naming: &NamingService,
    req: EphemeralClientForwardRequest,
) -> GrpcResult<EphemeralClientForwardResponse> {
    let client = ClientId::of(&req.client_id);
    // Executed here whatever this node thinks of the client: forwarding again could loop.
    match execute(naming, &client, req.operation).await {
        Ok(beat) => Ok(EphemeralClientForwardResponse {
            beat_code: beat.map(|b| b.code),
            beat_interval_ms: beat
                .map(|b| u64::try_from(b.client_beat_interval.as_millis()).unwrap_or(u64::MAX)),
            ..Default::default()
        }),
        Err(NamingError::NotFound(m)) => Err(GrpcError::fail(code::NOT_FOUND, m)),
        Err(NamingError::Invalid(m)) => Err(GrpcError::fail(code::INVALID_PARAM, m)),
        Err(NamingError::Param(p)) => Err(GrpcError::fail(code::INVALID_PARAM, p.to_string())),
        Err(NamingError::Repo(e)) => Err(GrpcError::fail(code::SERVER_ERROR, e.to_string())),
    }
}
