//! The config and instance repositories wrapped so every call is timed and its failure
//! counted ([`StorageStats`]), whatever the backend. A call already crosses an `async_trait`
//! box and usually the network or a disk; the wrapper adds a clock read on each side and
//! three atomic adds. Config reads served from the config cache never reach it.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use nacos_core::error::{RepoError, RepoResult};
use nacos_core::model::*;
use nacos_core::{ConfigRepo, InstanceRepo};

use super::metrics::Metrics;

// Indexes into `metrics::STORAGE_OPS`.
const CONFIG_GET: usize = 0;
const CONFIG_PUBLISH: usize = 1;
const CONFIG_REMOVE: usize = 2;
const CONFIG_SEARCH: usize = 3;
const CONFIG_HISTORY: usize = 4;
const CONFIG_GRAY: usize = 5;
const CONFIG_CHANGES: usize = 6;
const INSTANCE_READ: usize = 7;
const INSTANCE_WRITE: usize = 8;
const SERVICE_READ: usize = 9;
const SERVICE_WRITE: usize = 10;
const CONFIG_HISTORY_PURGE: usize = 11;

/// Time `call` as operation `op`.
async fn timed<T>(
    metrics: &Metrics,
    op: usize,
    call: impl Future<Output = RepoResult<T>>,
) -> RepoResult<T> {
    let started = Instant::now();
    let result = call.await;
    metrics.storage.record(op, started.elapsed(), &result);
    result
}

/// A [`ConfigRepo`] whose calls are timed.
#[derive(Debug)]
pub struct TimedConfigRepo {
    inner: Arc<dyn ConfigRepo>,
    metrics: Arc<Metrics>,
}

impl TimedConfigRepo {
    pub fn wrap(inner: Arc<dyn ConfigRepo>, metrics: Arc<Metrics>) -> Arc<dyn ConfigRepo> {
        Arc::new(Self { inner, metrics })
    }
}

#[async_trait]
impl ConfigRepo for TimedConfigRepo {
    async fn get(&self, key: &ConfigKey) -> RepoResult<Option<ConfigItem>> {
        timed(&self.metrics, CONFIG_GET, self.inner.get(key)).await
    }

    fn write_problem(&self) -> Option<RepoError> {
        self.inner.write_problem()
    }

    fn ha_status(&self) -> Option<nacos_core::ha::HaStatus> {
        self.inner.ha_status()
    }

    async fn publish(&self, publish: ConfigPublish) -> RepoResult<ConfigItem> {
        timed(&self.metrics, CONFIG_PUBLISH, self.inner.publish(publish)).await
    }

    async fn remove(&self, key: &ConfigKey, operator: &Operator) -> RepoResult<Option<ConfigItem>> {
        timed(
            &self.metrics,
            CONFIG_REMOVE,
            self.inner.remove(key, operator),
        )
        .await
    }

    async fn remove_by_ids(&self, ids: &[u64], operator: &Operator) -> RepoResult<Vec<ConfigItem>> {
        let call = self.inner.remove_by_ids(ids, operator);
        timed(&self.metrics, CONFIG_REMOVE, call).await
    }

    async fn search(&self, query: &ConfigQuery) -> RepoResult<Page<ConfigItem>> {
        timed(&self.metrics, CONFIG_SEARCH, self.inner.search(query)).await
    }

    async fn history(&self, key: &ConfigKey, page: PageRequest) -> RepoResult<Page<HistoryEntry>> {
        timed(&self.metrics, CONFIG_HISTORY, self.inner.history(key, page)).await
    }

    async fn history_entry(&self, nid: u64) -> RepoResult<Option<HistoryEntry>> {
        timed(&self.metrics, CONFIG_HISTORY, self.inner.history_entry(nid)).await
    }

    async fn previous_history(&self, config_id: u64) -> RepoResult<Option<HistoryEntry>> {
        let call = self.inner.previous_history(config_id);
        timed(&self.metrics, CONFIG_HISTORY, call).await
    }

    async fn get_gray(&self, key: &ConfigKey, gray: &Gray) -> RepoResult<Option<GrayConfig>> {
        timed(&self.metrics, CONFIG_GRAY, self.inner.get_gray(key, gray)).await
    }

    async fn list_grays(&self, key: &ConfigKey) -> RepoResult<Vec<GrayConfig>> {
        timed(&self.metrics, CONFIG_GRAY, self.inner.list_grays(key)).await
    }

    async fn publish_gray(&self, gray: Gray, publish: GrayPublish) -> RepoResult<GrayConfig> {
        let call = self.inner.publish_gray(gray, publish);
        timed(&self.metrics, CONFIG_GRAY, call).await
    }

    async fn remove_gray(&self, key: &ConfigKey, gray: &Gray) -> RepoResult<Option<GrayConfig>> {
        timed(
            &self.metrics,
            CONFIG_GRAY,
            self.inner.remove_gray(key, gray),
        )
        .await
    }

    async fn changed_since(&self, since_ms: i64) -> RepoResult<Vec<ConfigChange>> {
        let call = self.inner.changed_since(since_ms);
        timed(&self.metrics, CONFIG_CHANGES, call).await
    }

    async fn purge_history(&self, before_ms: i64, limit: u32) -> RepoResult<u64> {
        let call = self.inner.purge_history(before_ms, limit);
        timed(&self.metrics, CONFIG_HISTORY_PURGE, call).await
    }

    // Not timed: a lock probe, not a storage operation; forwarded so that a shared database
    // keeps one purging node (the default would make every node the holder).
    async fn housekeeping_lease(&self) -> RepoResult<bool> {
        self.inner.housekeeping_lease().await
    }
}

/// An [`InstanceRepo`] whose calls are timed.
#[derive(Debug)]
pub struct TimedInstanceRepo {
    inner: Arc<dyn InstanceRepo>,
    metrics: Arc<Metrics>,
}

impl TimedInstanceRepo {
    pub fn wrap(inner: Arc<dyn InstanceRepo>, metrics: Arc<Metrics>) -> Arc<dyn InstanceRepo> {
        Arc::new(Self { inner, metrics })
    }
}

#[async_trait]
impl InstanceRepo for TimedInstanceRepo {
    async fn list_services(&self) -> RepoResult<Vec<ServiceMeta>> {
        timed(&self.metrics, SERVICE_READ, self.inner.list_services()).await
    }

    async fn get_service(&self, key: &ServiceKey) -> RepoResult<Option<ServiceMeta>> {
        timed(&self.metrics, SERVICE_READ, self.inner.get_service(key)).await
    }

    async fn create_service(&self, meta: ServiceMeta) -> RepoResult<()> {
        timed(
            &self.metrics,
            SERVICE_WRITE,
            self.inner.create_service(meta),
        )
        .await
    }

    async fn update_service(&self, meta: ServiceMeta) -> RepoResult<()> {
        timed(
            &self.metrics,
            SERVICE_WRITE,
            self.inner.update_service(meta),
        )
        .await
    }

    async fn delete_service(&self, key: &ServiceKey) -> RepoResult<()> {
        timed(&self.metrics, SERVICE_WRITE, self.inner.delete_service(key)).await
    }

    async fn register_instance(&self, service: &ServiceKey, instance: Instance) -> RepoResult<()> {
        let call = self.inner.register_instance(service, instance);
        timed(&self.metrics, INSTANCE_WRITE, call).await
    }

    async fn deregister_instance(
        &self,
        service: &ServiceKey,
        addr: &InstanceAddr,
    ) -> RepoResult<Option<Instance>> {
        let call = self.inner.deregister_instance(service, addr);
        timed(&self.metrics, INSTANCE_WRITE, call).await
    }

    async fn list_instances(&self, service: &ServiceKey) -> RepoResult<Vec<Instance>> {
        timed(
            &self.metrics,
            INSTANCE_READ,
            self.inner.list_instances(service),
        )
        .await
    }
}
