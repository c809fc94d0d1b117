//! Calls to other nodes: one lazily connected tonic channel per peer address, the unary
//! `Request/request` call with a [`Payload`], the server identity header when one is configured, and
//! a per-call timeout. Used by every node-to-node protocol (member reports, distro, config
//! change sync, Raft).
//!
//! Addresses are `host:port` as the member list names them; a host name is connected to at
//! the address the [`Resolver`] has for it now, and the channel is rebuilt when that changes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::codegen::http;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

use super::resolve::{self, Resolver};
use crate::foundation::protocol::transport::{Payload, REQUEST_PATH};

/// A node-to-node request type: its wire name and the response it expects.
pub trait PeerRequest: Serialize + DeserializeOwned + Send + Sync + 'static {
    const TYPE: &'static str;
    type Response: DeserializeOwned + Send + 'static;
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Certainly not delivered (no connection could be made): safe to retry anything.
    #[error("peer {addr} cannot be reached: {message}")]
    NotDelivered { addr: String, message: String },
    #[error("peer {addr} is unreachable: {message}")]
    Unreachable { addr: String, message: String },
    #[error("peer {addr} did not answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    /// The peer answered with a failure (`resultCode` ≠ 200 or an `ErrorResponse`).
    #[error("peer {addr} refused {type_name}: {code} {message}")]
    Refused {
        addr: String,
        type_name: String,
        code: i32,
        message: String,
    },
    #[error("peer {addr} sent an unreadable {type_name}: {message}")]
    Malformed {
        addr: String,
        type_name: String,
        message: String,
    },
}

/// The fields of any Nacos response that say whether it succeeded.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Outcome {
    result_code: i32,
    error_code: i32,
    message: Option<String>,
}

/// Largest message accepted from a peer (Raft snapshot chunks are the biggest).
const MAX_PEER_MESSAGE: usize = 64 * 1024 * 1024;

pub struct PeerClient {
    /// Per `host:port`: the channel and, for a host name, the address it was built for.
    channels: Mutex<HashMap<String, (Option<IpAddr>, Channel)>>,
    resolver: Arc<Resolver>,
    /// `(key, value)` of the server identity, sent on every call when configured (auth on or off).
    identity: Option<(String, String)>,
    /// This node's IP, sent as `clientIp`.
    self_ip: String,
    timeout: Duration,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The identity value is a secret: never printed.
        f.debug_struct("PeerClient")
            .field("self_ip", &self.self_ip)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl PeerClient {
    pub fn new(
        self_ip: String,
        identity: Option<(String, String)>,
        timeout: Duration,
        resolver: Arc<Resolver>,
    ) -> Self {
        PeerClient {
            channels: Mutex::new(HashMap::new()),
            resolver,
            identity,
            self_ip,
            timeout,
        }
    }

    async fn channel(&self, addr: &str) -> Result<Channel, PeerError> {
        let not_delivered = |message: String| PeerError::NotDelivered {
            addr: addr.to_string(),
            message,
        };
        let (uri, resolved) = match resolve::split_host_port(addr) {
            Some((host, port)) if resolve::is_name(host) => {
                let ip = self.resolver.address(host).await.map_err(not_delivered)?;
                let uri = match ip {
                    IpAddr::V4(v4) => format!("http://{v4}:{port}"),
                    IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
                };
                (uri, Some(ip))
            }
            _ => (format!("http://{addr}"), None),
        };
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        // A name whose address moved gets a new channel; the old one closes once its calls end.
        if let Some((ip, channel)) = channels.get(addr)
            && *ip == resolved
        {
            return Ok(channel.clone());
        }
        let endpoint = Endpoint::from_shared(uri)
            .map_err(|e| PeerError::Unreachable {
                addr: addr.to_string(),
                message: e.to_string(),
            })?
            .connect_timeout(self.timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5));
        let channel = endpoint.connect_lazy();
        channels.insert(addr.to_string(), (resolved, channel.clone()));
        Ok(channel)
    }

    /// Send `body` as a payload of `type_name` to the gRPC address `addr` (`ip:port`) and
    /// return the peer's payload, whatever it says. Transport failures and timeouts are errors.
    pub async fn call_raw(
        &self,
        addr: &str,
        type_name: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Payload, PeerError> {
        let mut payload = Payload::new(type_name, body);
        if let Some(meta) = payload.metadata.as_mut() {
            meta.client_ip = self.self_ip.clone();
            if let Some((key, value)) = &self.identity {
                meta.headers.insert(key.clone(), value.clone());
            }
        }
        let channel = self.channel(addr).await?;
        let unreachable = |e: &dyn std::fmt::Display| PeerError::Unreachable {
            addr: addr.to_string(),
            message: e.to_string(),
        };
        let call = async {
            let mut grpc = tonic::client::Grpc::new(channel)
                .max_decoding_message_size(MAX_PEER_MESSAGE)
                .max_encoding_message_size(MAX_PEER_MESSAGE);
            grpc.ready().await.map_err(|e| unreachable(&e))?;
            let path = http::uri::PathAndQuery::from_static(REQUEST_PATH);
            let codec = ProstCodec::<Payload, Payload>::default();
            grpc.unary(tonic::Request::new(payload), path, codec)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|status| {
                    // A refused or failed connect happens before the request is written; any
                    // other failure may come after the peer got it.
                    let text = format!("{status:?}");
                    if status.code() == tonic::Code::Unavailable && text.contains("connect") {
                        PeerError::NotDelivered {
                            addr: addr.to_string(),
                            message: status.message().to_string(),
                        }
                    } else {
                        unreachable(&status.message())
                    }
                })
        };
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(PeerError::Timeout {
                addr: addr.to_string(),
                timeout,
            }),
        };
        // A peer that cannot be reached under its name may have moved (a pod restarted with a
        // new address): look the name up again rather than wait for the next refresh.
        if let Err(PeerError::NotDelivered { .. } | PeerError::Timeout { .. }) = &result
            && let Some((host, _)) = resolve::split_host_port(addr)
        {
            self.resolver.failed(host);
        }
        result
    }

    /// A typed request: success only when the peer's `resultCode` is 200.
    pub async fn request<R: PeerRequest>(
        &self,
        addr: &str,
        request: &R,
    ) -> Result<R::Response, PeerError> {
        self.request_within(addr, request, self.timeout).await
    }

    /// [`PeerClient::request`] with its own time limit, for requests the peer needs longer to
    /// answer than the usual per-call timeout (it asks its own clients first).
    pub async fn request_within<R: PeerRequest>(
        &self,
        addr: &str,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response, PeerError> {
        let body = serde_json::to_vec(request).map_err(|e| PeerError::Malformed {
            addr: addr.to_string(),
            type_name: R::TYPE.to_string(),
            message: e.to_string(),
        })?;
        let reply = self.call_raw(addr, R::TYPE, body, timeout).await?;
        let malformed = |message: String| PeerError::Malformed {
            addr: addr.to_string(),
            type_name: reply.type_name().to_string(),
            message,
        };
        let outcome: Outcome =
            serde_json::from_slice(reply.body_bytes()).map_err(|e| malformed(e.to_string()))?;
        if reply.type_name() == "ErrorResponse" || outcome.result_code != 200 {
            return Err(PeerError::Refused {
                addr: addr.to_string(),
                type_name: R::TYPE.to_string(),
                code: if outcome.error_code != 0 {
                    outcome.error_code
                } else {
                    outcome.result_code
                },
                message: outcome.message.unwrap_or_default(),
            });
        }
        serde_json::from_slice(reply.body_bytes()).map_err(|e| malformed(e.to_string()))
    }

    /// Forget the channel to `addr` (a member that left).
    pub fn forget(&self, addr: &str) {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::resolve::tests::table_resolver;

    fn built_for(client: &PeerClient, addr: &str) -> Option<IpAddr> {
        client
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(addr)
            .and_then(|(ip, _)| *ip)
    }

    #[tokio::test]
    async fn a_named_peer_gets_a_new_channel_when_its_address_moves() {
        let (resolver, table) = table_resolver();
        let resolver = Arc::new(resolver);
        let client = PeerClient::new(
            "10.0.0.9".into(),
            None,
            Duration::from_millis(200),
            Arc::clone(&resolver),
        );
        let addr = "nacos-1.nacos-headless:9849";
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        // Not resolvable yet: not delivered (safe to retry), and no channel is kept.
        let err = client
            .call_raw(
                addr,
                "ServerCheckRequest",
                Vec::new(),
                Duration::from_millis(200),
            )
            .await
            .expect_err("does not resolve");
        assert!(matches!(err, PeerError::NotDelivered { .. }), "{err}");
        assert!(err.to_string().contains("does not resolve"), "{err}");
        assert_eq!(built_for(&client, addr), None);

        table
            .lock()
            .expect("lock")
            .insert("nacos-1.nacos-headless".into(), vec![ip("10.1.0.1")]);
        client.channel(addr).await.expect("resolves");
        assert_eq!(built_for(&client, addr), Some(ip("10.1.0.1")));

        // The pod restarts elsewhere; the next refresh moves the channel with it.
        table
            .lock()
            .expect("lock")
            .insert("nacos-1.nacos-headless".into(), vec![ip("10.1.0.2")]);
        client.channel(addr).await.expect("cached");
        assert_eq!(
            built_for(&client, addr),
            Some(ip("10.1.0.1")),
            "until refreshed"
        );
        resolver
            .refresh(&["nacos-1.nacos-headless".to_string()])
            .await;
        client.channel(addr).await.expect("resolves");
        assert_eq!(built_for(&client, addr), Some(ip("10.1.0.2")));

        // IP members are connected to as they are.
        client.channel("127.0.0.1:9849").await.expect("literal");
        assert!(
            client
                .channels
                .lock()
                .expect("lock")
                .contains_key("127.0.0.1:9849")
        );
    }
}
