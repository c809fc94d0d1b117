//! Persistent naming data across nodes sharing one external database.
//!
//! Each node keeps services and persistent instances in memory (loaded at start), but a write
//! lands on one node. The repository every write goes through is wrapped in
//! [`AnnouncingInstanceRepo`], which reports the service of each successful write; the node then
//! sends `PersistentServiceSyncRequest` (ours: Nacos keeps persistent instances in JRaft even
//! with MySQL) to its peers, which re-read that service from the database. A periodic reload
//! of every stored service heals lost messages. An embedded cluster does not need this: every
//! node applies the Raft log itself.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nacos_core::{Instance, InstanceAddr, InstanceRepo, RepoResult, ServiceKey, ServiceMeta};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use tokio_util::sync::CancellationToken;

use super::Cluster;
use super::peer::PeerRequest;
use crate::foundation::protocol::error::GrpcResult;
use crate::foundation::protocol::message::grpc_response;
use crate::services::naming::NamingService;

/// An [`InstanceRepo`] that reports the service of every successful write made through it.
#[derive(Debug)]
pub struct AnnouncingInstanceRepo {
    inner: Arc<dyn InstanceRepo>,
    writes: broadcast::Sender<ServiceKey>,
}

impl AnnouncingInstanceRepo {
    pub fn wrap(inner: Arc<dyn InstanceRepo>) -> Arc<Self> {
        Arc::new(AnnouncingInstanceRepo {
            inner,
            writes: broadcast::Sender::new(1024),
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ServiceKey> {
        self.writes.subscribe()
    }

    fn announce<T>(&self, key: &ServiceKey, result: RepoResult<T>) -> RepoResult<T> {
        if result.is_ok() {
            // No receiver (no peers yet) is fine.
            let _ = self.writes.send(key.clone());
        }
        result
    }
}

#[async_trait]
impl InstanceRepo for AnnouncingInstanceRepo {
    async fn list_services(&self) -> RepoResult<Vec<ServiceMeta>> {
        self.inner.list_services().await
    }

    async fn get_service(&self, key: &ServiceKey) -> RepoResult<Option<ServiceMeta>> {
        self.inner.get_service(key).await
    }

    async fn create_service(&self, meta: ServiceMeta) -> RepoResult<()> {
        let key = meta.key.clone();
        let result = self.inner.create_service(meta).await;
        self.announce(&key, result)
    }

    async fn update_service(&self, meta: ServiceMeta) -> RepoResult<()> {
        let key = meta.key.clone();
        let result = self.inner.update_service(meta).await;
        self.announce(&key, result)
    }

    async fn delete_service(&self, key: &ServiceKey) -> RepoResult<()> {
        let result = self.inner.delete_service(key).await;
        self.announce(key, result)
    }

    async fn register_instance(&self, service: &ServiceKey, instance: Instance) -> RepoResult<()> {
        let result = self.inner.register_instance(service, instance).await;
        self.announce(service, result)
    }

    async fn deregister_instance(
        &self,
        service: &ServiceKey,
        addr: &InstanceAddr,
    ) -> RepoResult<Option<Instance>> {
        let result = self.inner.deregister_instance(service, addr).await;
        self.announce(service, result)
    }

    async fn list_instances(&self, service: &ServiceKey) -> RepoResult<Vec<Instance>> {
        self.inner.list_instances(service).await
    }
}

/// `PersistentServiceSyncRequest`: re-read this service from the shared database.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PersistentServiceSyncRequest {
    pub namespace: String,
    pub group_name: String,
    pub service_name: String,
}

grpc_response!(
    /// Readable on both ends: peers parse it.
    #[derive(serde::Deserialize)]
    #[serde(default)]
    PersistentServiceSyncResponse {});

impl PeerRequest for PersistentServiceSyncRequest {
    const TYPE: &'static str = "PersistentServiceSyncRequest";
    type Response = PersistentServiceSyncResponse;
}

/// A peer wrote `req`'s service: re-read it from the database.
pub async fn on_sync(
    naming: &NamingService,
    req: PersistentServiceSyncRequest,
) -> GrpcResult<PersistentServiceSyncResponse> {
    let key = ServiceKey::new(req.namespace, req.group_name, req.service_name);
    naming.reload_persistent(&key).await;
    Ok(PersistentServiceSyncResponse::default())
}

/// The sender (this node's writes → peers) and the healing reload.
pub fn start(
    naming: Arc<NamingService>,
    cluster: Arc<Cluster>,
    writes: broadcast::Receiver<ServiceKey>,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let interval: Duration = cluster.settings.config_scan_interval;
    let sender = super::relay(
        writes,
        shutdown.clone(),
        "persistent service sync",
        move |key| {
            cluster.tell_peers(PersistentServiceSyncRequest {
                namespace: key.namespace,
                group_name: key.group,
                service_name: key.name,
            });
        },
    );
    let reloader = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            if let Err(e) = naming.reload_all_persistent().await {
                tracing::warn!("periodic reload of persistent services failed: {e}");
            }
        }
    });
    vec![sender, reloader]
}
