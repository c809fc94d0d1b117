//! [`ConfigRepo`] on Nacos's config tables: `config_info`, `config_tags_relation`,
//! `his_config_info`, `config_info_beta`, `config_info_tag`, plus this server's
//! `ext_config_change` (the change index).
//!
//! Rows are written the way Nacos 2.x writes them: `tenant_id` `''` for the public namespace,
//! the lowercase hex `md5`, `gmt_*` datetimes from the database clock, one
//! `config_tags_relation` row per tag (`tag_type` `''`), history `I` rows with `id` 0 and the
//! new content, `U` rows with the previous content, `D` rows with the deleted content. A
//! `datetime` keeps whole seconds, so times read back (and returned by writes) are whole
//! seconds; the change index keeps milliseconds. What a write stores is decided by
//! [`nacos_core::rules`].
//!
//! - `rows`: the selected columns and their mapping onto the model, by column name.
//! - `formal`: formal configs and their tags (get, search, publish, remove).
//! - `gray`: beta and tag variants.
//! - `history`: history rows and the change index.

mod formal;
mod gray;
mod history;
pub(crate) mod rows;

use async_trait::async_trait;
use nacos_core::{
    ConfigChange, ConfigItem, ConfigKey, ConfigPublish, ConfigQuery, ConfigRepo, Gray, GrayConfig,
    GrayPublish, HistoryEntry, Operator, Page, PageRequest, RepoError, RepoResult,
};

use crate::store::{MysqlStore, Route};

#[async_trait]
impl ConfigRepo for MysqlStore {
    fn write_problem(&self) -> Option<RepoError> {
        (!self.is_writable()).then(|| self.no_primary("write"))
    }

    fn ha_status(&self) -> Option<nacos_core::ha::HaStatus> {
        Some(self.cluster.ha_status())
    }

    async fn get(&self, key: &ConfigKey) -> RepoResult<Option<ConfigItem>> {
        // The server caches what this returns: read the primary, never a lagging replica
        // (unless no primary is left: see `Route::Primary`).
        let key = key.clone();
        self.read("get config", Route::Primary, move |c| {
            Box::pin(async move { Ok(formal::select_config(c, &key, false).await?) })
        })
        .await
    }

    async fn publish(&self, publish: ConfigPublish) -> RepoResult<ConfigItem> {
        self.write("publish config", move |c| {
            let publish = publish.clone();
            Box::pin(async move { formal::publish_tx(c, &publish).await })
        })
        .await
    }

    async fn remove(&self, key: &ConfigKey, operator: &Operator) -> RepoResult<Option<ConfigItem>> {
        let (key, operator) = (key.clone(), operator.clone());
        self.write("remove config", move |c| {
            let (key, operator) = (key.clone(), operator.clone());
            Box::pin(async move { formal::remove_tx(c, &key, &operator).await })
        })
        .await
    }

    async fn remove_by_ids(&self, ids: &[u64], operator: &Operator) -> RepoResult<Vec<ConfigItem>> {
        let (ids, operator) = (ids.to_vec(), operator.clone());
        self.write("remove configs by id", move |c| {
            let (ids, operator) = (ids.clone(), operator.clone());
            Box::pin(async move { formal::remove_by_ids_tx(c, &ids, &operator).await })
        })
        .await
    }

    async fn search(&self, query: &ConfigQuery) -> RepoResult<Page<ConfigItem>> {
        let query = query.clone();
        self.read("search configs", Route::Reader, move |c| {
            Box::pin(async move { formal::search(c, &query).await })
        })
        .await
    }

    async fn history(&self, key: &ConfigKey, page: PageRequest) -> RepoResult<Page<HistoryEntry>> {
        let key = key.clone();
        self.read("config history", Route::Reader, move |c| {
            Box::pin(async move { history::page(c, &key, page).await })
        })
        .await
    }

    async fn history_entry(&self, nid: u64) -> RepoResult<Option<HistoryEntry>> {
        self.read("config history entry", Route::Reader, move |c| {
            Box::pin(history::entry(c, nid))
        })
        .await
    }

    async fn previous_history(&self, config_id: u64) -> RepoResult<Option<HistoryEntry>> {
        self.read("previous config history", Route::Reader, move |c| {
            Box::pin(history::previous(c, config_id))
        })
        .await
    }

    async fn get_gray(&self, key: &ConfigKey, gray: &Gray) -> RepoResult<Option<GrayConfig>> {
        let (key, gray) = (key.clone(), gray.clone());
        self.read("get gray config", Route::Primary, move |c| {
            Box::pin(async move { Ok(gray::select_gray(c, &key, &gray, false).await?) })
        })
        .await
    }

    async fn list_grays(&self, key: &ConfigKey) -> RepoResult<Vec<GrayConfig>> {
        let key = key.clone();
        self.read("list gray configs", Route::Primary, move |c| {
            Box::pin(async move { gray::list(c, &key).await })
        })
        .await
    }

    async fn publish_gray(&self, gray: Gray, publish: GrayPublish) -> RepoResult<GrayConfig> {
        self.write("publish gray config", move |c| {
            let (gray, publish) = (gray.clone(), publish.clone());
            Box::pin(async move { gray::publish_tx(c, &gray, &publish).await })
        })
        .await
    }

    async fn remove_gray(&self, key: &ConfigKey, gray: &Gray) -> RepoResult<Option<GrayConfig>> {
        let (key, gray) = (key.clone(), gray.clone());
        self.write("remove gray config", move |c| {
            let (key, gray) = (key.clone(), gray.clone());
            Box::pin(async move { gray::remove_tx(c, &key, &gray).await })
        })
        .await
    }

    async fn changed_since(&self, since_ms: i64) -> RepoResult<Vec<ConfigChange>> {
        // The primary: a lagging replica would hide changes from the scan for good.
        self.read("config changes", Route::Primary, move |c| {
            Box::pin(history::changed_since(c, since_ms))
        })
        .await
    }

    async fn purge_history(&self, before_ms: i64, limit: u32) -> RepoResult<u64> {
        if limit == 0 {
            return Ok(0);
        }
        self.write("purge config history", move |c| {
            Box::pin(history::purge(c, before_ms, limit))
        })
        .await
    }

    async fn housekeeping_lease(&self) -> RepoResult<bool> {
        self.hold_lease().await
    }
}
