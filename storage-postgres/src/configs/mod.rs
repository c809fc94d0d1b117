//! [`ConfigRepo`] on Nacos's config tables: `config_info` with `config_tags_relation`,
//! `his_config_info`, `config_info_beta`, `config_info_tag`, plus this server's
//! `config_changes` index.
//!
//! Writes lock the key's row (`SELECT … FOR UPDATE`) before deciding anything, so CAS checks
//! and the insert-or-update choice are race-free; an insert that loses a race with a concurrent
//! insert of the same key (`ON CONFLICT DO NOTHING` returns no row) re-reads and becomes an
//! update, inside the same transaction. What a write stores is decided by
//! [`nacos_core::rules`].
//!
//! - `rows`: the table rows and their mapping onto the model.
//! - `formal`: formal configs and their tags (get, search, publish, remove).
//! - `gray`: beta and tag variants.
//! - `history`: history rows and the change index.

pub(crate) mod formal;
mod gray;
mod history;
pub(crate) mod rows;

use async_trait::async_trait;
use nacos_core::{
    ConfigChange, ConfigItem, ConfigKey, ConfigPublish, ConfigQuery, ConfigRepo, Gray, GrayConfig,
    GrayPublish, HistoryEntry, Operator, Page, PageRequest, RepoError,
};

use crate::PgStore;
use crate::convert::db_id;
use crate::error::Result;

/// An insert that keeps losing races to concurrent inserts of the same key gives up after this
/// many rounds (each lost round means another writer committed that key meanwhile).
const MAX_ROUNDS: usize = 8;

fn check_cas(expected: Option<&str>, stored: Option<&str>, what: &str) -> Result<()> {
    Ok(nacos_core::check_cas(expected, stored, what)?)
}

#[async_trait]
impl ConfigRepo for PgStore {
    fn write_problem(&self) -> Option<RepoError> {
        self.cluster.write_problem()
    }

    fn ha_status(&self) -> Option<nacos_core::ha::HaStatus> {
        Some(self.cluster.ha_status())
    }

    async fn get(&self, key: &ConfigKey) -> Result<Option<ConfigItem>, RepoError> {
        self.read(async |conn| formal::get(conn, key, false).await)
            .await
    }

    async fn publish(&self, publish: ConfigPublish) -> Result<ConfigItem, RepoError> {
        self.in_tx(async |conn| formal::publish_tx(conn, &publish).await)
            .await
    }

    async fn remove(
        &self,
        key: &ConfigKey,
        operator: &Operator,
    ) -> Result<Option<ConfigItem>, RepoError> {
        self.in_tx(async |conn| formal::remove_tx(conn, key, operator).await)
            .await
    }

    async fn remove_by_ids(
        &self,
        ids: &[u64],
        operator: &Operator,
    ) -> Result<Vec<ConfigItem>, RepoError> {
        let ids: Vec<i64> = ids.iter().filter_map(|i| db_id(*i)).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.in_tx(async |conn| formal::remove_by_ids_tx(conn, &ids, operator).await)
            .await
    }

    async fn search(&self, query: &ConfigQuery) -> Result<Page<ConfigItem>, RepoError> {
        self.read(async |conn| formal::search(conn, query).await)
            .await
    }

    async fn history(
        &self,
        key: &ConfigKey,
        page: PageRequest,
    ) -> Result<Page<HistoryEntry>, RepoError> {
        self.read(async |conn| history::page(conn, key, page).await)
            .await
    }

    async fn history_entry(&self, nid: u64) -> Result<Option<HistoryEntry>, RepoError> {
        let Some(nid) = db_id(nid) else {
            return Ok(None);
        };
        self.read(async |conn| history::entry(conn, nid).await)
            .await
    }

    async fn previous_history(&self, config_id: u64) -> Result<Option<HistoryEntry>, RepoError> {
        let Some(config_id) = db_id(config_id) else {
            return Ok(None);
        };
        self.read(async |conn| history::previous(conn, config_id).await)
            .await
    }

    async fn get_gray(
        &self,
        key: &ConfigKey,
        gray: &Gray,
    ) -> Result<Option<GrayConfig>, RepoError> {
        self.read(async |conn| gray::get(conn, key, gray, false).await)
            .await
    }

    async fn list_grays(&self, key: &ConfigKey) -> Result<Vec<GrayConfig>, RepoError> {
        self.read(async |conn| gray::list(conn, key).await).await
    }

    async fn publish_gray(
        &self,
        gray: Gray,
        publish: GrayPublish,
    ) -> Result<GrayConfig, RepoError> {
        self.in_tx(async |conn| gray::publish_tx(conn, &gray, &publish).await)
            .await
    }

    async fn remove_gray(
        &self,
        key: &ConfigKey,
        gray: &Gray,
    ) -> Result<Option<GrayConfig>, RepoError> {
        self.in_tx(async |conn| gray::remove_tx(conn, key, gray).await)
            .await
    }

    async fn changed_since(&self, since_ms: i64) -> Result<Vec<ConfigChange>, RepoError> {
        self.read(async |conn| history::changed_since(conn, since_ms).await)
            .await
    }

    async fn purge_history(&self, before_ms: i64, limit: u32) -> Result<u64, RepoError> {
        if limit == 0 {
            return Ok(0);
        }
        self.run(async |conn| history::purge(conn, before_ms, i64::from(limit)).await)
            .await
    }

    async fn housekeeping_lease(&self) -> Result<bool, RepoError> {
        self.hold_lease().await
    }
}
