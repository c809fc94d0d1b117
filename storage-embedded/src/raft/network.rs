//! openraft's network over [`RaftTransport`], the byte pipe the server provides (it carries the
//! bodies over its own gRPC port; this crate stays free of any RPC framework).
//!
//! Every request body is the JSON of the openraft request; every reply body is the JSON of
//! `Result<reply, openraft error>`, so remote Raft errors (a higher vote, a stopped node)
//! arrive as openraft expects them. Transport failures map onto openraft's RPC errors:
//! [`TransportError::Unreachable`] becomes `Unreachable` (openraft backs off before retrying
//! that peer), anything else `Network`; a call that outlives its TTL becomes `Timeout`.

use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{
    Infallible, InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError,
    RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::TypeConfig;
use crate::error::TransportError;

/// Request kinds on the wire (the `kind` argument of [`RaftTransport::call`]).
pub(crate) const APPEND_ENTRIES: &str = "RaftAppendEntries";
pub(crate) const VOTE: &str = "RaftVote";
pub(crate) const INSTALL_SNAPSHOT: &str = "RaftInstallSnapshot";
pub(crate) const FORWARD: &str = "RaftForward";
pub(crate) const READ_INDEX: &str = "RaftReadIndex";
pub(crate) const PROBE: &str = "RaftProbe";

/// Bodies above this are refused before sending: the server's gRPC messages are capped at
/// 8 MiB. An AppendEntries that large is split by openraft (we answer `PayloadTooLarge`).
pub(crate) const MAX_BODY: usize = 6 * 1024 * 1024;

/// The byte pipe between Raft nodes, implemented by the server.
#[async_trait::async_trait]
pub trait RaftTransport: Send + Sync + std::fmt::Debug + 'static {
    /// Send one request (`kind` names it, `body` is JSON) to the node whose Raft address is
    /// `addr`; return the reply body (what the peer's [`super::RaftNode::handle`] returned).
    async fn call(
        &self,
        addr: &str,
        kind: &'static str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError>;
}

/// Hands openraft one [`Connection`] per peer.
#[derive(Debug, Clone)]
pub(crate) struct NetworkFactory {
    pub(crate) self_id: u64,
    pub(crate) transport: Arc<dyn RaftTransport>,
    pub(crate) timeout: Duration,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Connection {
        Connection {
            self_id: self.self_id,
            target,
            addr: node.addr.clone(),
            transport: self.transport.clone(),
            timeout: self.timeout,
        }
    }
}

/// The way to one peer.
#[derive(Debug)]
pub(crate) struct Connection {
    self_id: u64,
    target: u64,
    addr: String,
    transport: Arc<dyn RaftTransport>,
    timeout: Duration,
}

type RpcResult<T, E> = Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

fn to_body<T: Serialize>(request: &T) -> Result<Vec<u8>, NetworkError> {
    serde_json::to_vec(request).map_err(|e| NetworkError::new(&e))
}

impl Connection {
    async fn send<Resp, E>(
        &self,
        kind: &'static str,
        action: RPCTypes,
        body: Vec<u8>,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let ttl = option.hard_ttl().min(self.timeout);
        let call = self.transport.call(&self.addr, kind, body);
        let reply = match tokio::time::timeout(ttl, call).await {
            Err(_) => {
                return Err(RPCError::Timeout(Timeout {
                    action,
                    id: self.self_id,
                    target: self.target,
                    timeout: ttl,
                }));
            }
            Ok(Err(e @ TransportError::Unreachable(_))) => {
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
            Ok(Err(e)) => return Err(RPCError::Network(NetworkError::new(&e))),
            Ok(Ok(reply)) => reply,
        };
        let reply: Result<Resp, RaftError<u64, E>> =
            serde_json::from_slice(&reply).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>, Infallible> {
        // Ask openraft to split a batch that would exceed the transport's message cap (it
        // retries with at most `entries_hint` entries). A single oversized entry cannot be
        // split and is sent anyway; the transport reports its failure.
        let body = to_body(&rpc).map_err(RPCError::Network)?;
        if rpc.entries.len() > 1 && body.len() > MAX_BODY {
            let hint = (rpc.entries.len() as u64 / 2).max(1);
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(hint),
            ));
        }
        self.send(APPEND_ENTRIES, RPCTypes::AppendEntries, body, &option)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        self.send(
            INSTALL_SNAPSHOT,
            RPCTypes::InstallSnapshot,
            to_body(&rpc).map_err(RPCError::Network)?,
            &option,
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>, Infallible> {
        self.send(
            VOTE,
            RPCTypes::Vote,
            to_body(&rpc).map_err(RPCError::Network)?,
            &option,
        )
        .await
    }
}
