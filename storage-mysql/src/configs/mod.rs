//! [`ConfigRepo`] on Nacos's config tables: `config_info`, `config_tags_relation`,
//! `his_config_info`, `config_info_beta`, `config_info_tag`, plus this server's
//! `ext_config_change` (the change index).
//!
//! Rows are written the way Nacos 2.x writes them: `tenant_id` `''` for the public namespace,
//! the lowercase hex `md5`, `gmt_*` datetimes from the database clock, one
//! `config_tags_relation` row per tag (`tag_type` `''`), history `I` rows with `id` 0 and the
//! new content, `U` rows with the previous content, `D` rows with the deleted content. A
//! `datetime` keeps whole seconds, so times read back (and returned by writes) are whole
//! seconds; the change index keeps milliseconds.

use async_trait::async_trait;
use nacos_core::{
    ConfigChange, ConfigItem, ConfigKey, ConfigPublish, ConfigQuery, ConfigRepo, Gray, GrayConfig,
    GrayPublish, HistoryEntry, Operator, Page, PageRequest, RepoResult,
};

use crate::sql::int;
use crate::store::{MysqlStore, Route};

// Every selected column is named, and rows are read by those names (`rows.rs`).

mod formal;
mod gray;
mod rows;

pub(crate) use formal::now_ms;
use formal::*;
use gray::*;
use rows::*;

#[async_trait]
impl ConfigRepo for MysqlStore {
    async fn get(&self, key: &ConfigKey) -> RepoResult<Option<ConfigItem>> {
        // The server caches what this returns: read the primary, never a lagging replica.
        let key = key.clone();
        self.read("get config", Route::Primary, move |c| {
            Box::pin(async move { Ok(select_config(c, &key, false).await?) })
        })
        .await
    }

    async fn publish(&self, publish: ConfigPublish) -> RepoResult<ConfigItem> {
        self.write("publish config", move |c| {
            let publish = publish.clone();
            Box::pin(async move { publish_tx(c, &publish).await })
        })
        .await
    }

    async fn remove(&self, key: &ConfigKey, operator: &Operator) -> RepoResult<Option<ConfigItem>> {
        let (key, operator) = (key.clone(), operator.clone());
        self.write("remove config", move |c| {
            let (key, operator) = (key.clone(), operator.clone());
            Box::pin(async move {
                let Some(item) = select_config(c, &key, true).await? else {
                    return Ok(None);
                };
                let now = now_ms(c).await?;
                delete_config(c, &item, &operator, now).await?;
                Ok(Some(item))
            })
        })
        .await
    }

    async fn remove_by_ids(&self, ids: &[u64], operator: &Operator) -> RepoResult<Vec<ConfigItem>> {
        let (ids, operator) = (ids.to_vec(), operator.clone());
        self.write("remove configs by id", move |c| {
            let (ids, operator) = (ids.clone(), operator.clone());
            Box::pin(async move {
                let now = now_ms(c).await?;
                let mut removed = Vec::new();
                for config_id in ids {
                    if let Some(item) = select_config_by_id(c, config_id).await? {
                        delete_config(c, &item, &operator, now).await?;
                        removed.push(item);
                    }
                }
                Ok(removed)
            })
        })
        .await
    }

    async fn search(&self, query: &ConfigQuery) -> RepoResult<Page<ConfigItem>> {
        let query = query.clone();
        self.read("search configs", Route::Reader, move |c| {
            Box::pin(async move {
                let (condition, binds) = search_where(&query);
                let count_sql = format!("SELECT COUNT(*) FROM config_info c WHERE {condition}");
                let mut count = sqlx::query(&count_sql);
                for bind in &binds {
                    count = count.bind(bind);
                }
                let total = int(&count.fetch_one(&mut *c).await?, 0)?;
                let total = u64::try_from(total).unwrap_or_default();
                let mut items = Vec::new();
                if query.page.page_size > 0 && (query.page.offset() as u64) < total {
                    let sql = format!(
                        "SELECT {} FROM config_info c WHERE {condition} ORDER BY c.id \
                         LIMIT ? OFFSET ?",
                        *CONFIG_COLUMNS
                    );
                    let mut rows = sqlx::query(&sql);
                    for bind in &binds {
                        rows = rows.bind(bind);
                    }
                    let (size, offset) = limit(query.page);
                    for row in rows.bind(size).bind(offset).fetch_all(&mut *c).await? {
                        items.push(config_from_row(&row)?);
                    }
                }
                Ok(Page::new(total, query.page, items))
            })
        })
        .await
    }

    async fn history(&self, key: &ConfigKey, page: PageRequest) -> RepoResult<Page<HistoryEntry>> {
        let key = key.clone();
        self.read("config history", Route::Reader, move |c| {
            Box::pin(async move {
                let count = sqlx::query(&format!(
                    "SELECT COUNT(*) FROM his_config_info WHERE {KEY_WHERE}"
                ))
                .bind(&key.data_id)
                .bind(&key.group)
                .bind(&key.namespace)
                .fetch_one(&mut *c)
                .await?;
                let total = u64::try_from(int(&count, 0)?).unwrap_or_default();
                let mut items = Vec::new();
                if page.page_size > 0 && (page.offset() as u64) < total {
                    let sql = format!(
                        "SELECT {} FROM his_config_info h WHERE h.data_id = ? AND h.group_id = ? \
                         AND h.tenant_id = ? ORDER BY h.nid DESC LIMIT ? OFFSET ?",
                        *HISTORY_COLUMNS
                    );
                    let (size, offset) = limit(page);
                    for row in sqlx::query(&sql)
                        .bind(&key.data_id)
                        .bind(&key.group)
                        .bind(&key.namespace)
                        .bind(size)
                        .bind(offset)
                        .fetch_all(&mut *c)
                        .await?
                    {
                        items.push(history_from_row(&row)?);
                    }
                }
                Ok(Page::new(total, page, items))
            })
        })
        .await
    }

    async fn history_entry(&self, nid: u64) -> RepoResult<Option<HistoryEntry>> {
        self.read("config history entry", Route::Reader, move |c| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {} FROM his_config_info h WHERE h.nid = ?",
                    *HISTORY_COLUMNS
                );
                let row = sqlx::query(&sql).bind(nid).fetch_optional(&mut *c).await?;
                Ok(row.as_ref().map(history_from_row).transpose()?)
            })
        })
        .await
    }

    async fn previous_history(&self, config_id: u64) -> RepoResult<Option<HistoryEntry>> {
        self.read("previous config history", Route::Reader, move |c| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {} FROM his_config_info h WHERE h.id = ? ORDER BY h.nid DESC LIMIT 1",
                    *HISTORY_COLUMNS
                );
                let row = sqlx::query(&sql)
                    .bind(config_id)
                    .fetch_optional(&mut *c)
                    .await?;
                Ok(row.as_ref().map(history_from_row).transpose()?)
            })
        })
        .await
    }

    async fn get_gray(&self, key: &ConfigKey, gray: &Gray) -> RepoResult<Option<GrayConfig>> {
        let (key, gray) = (key.clone(), gray.clone());
        self.read("get gray config", Route::Primary, move |c| {
            Box::pin(async move { Ok(select_gray(c, &key, &gray, false).await?) })
        })
        .await
    }

    async fn list_grays(&self, key: &ConfigKey) -> RepoResult<Vec<GrayConfig>> {
        let key = key.clone();
        self.read("list gray configs", Route::Primary, move |c| {
            Box::pin(async move {
                let mut out = Vec::new();
                if let Some(beta) = select_gray(c, &key, &Gray::Beta, false).await? {
                    out.push(beta);
                }
                let sql = format!(
                    "SELECT {} FROM config_info_tag g WHERE g.data_id = ? AND g.group_id = ? \
                     AND g.tenant_id = ? ORDER BY g.tag_id",
                    *TAG_COLUMNS
                );
                for row in sqlx::query(&sql)
                    .bind(&key.data_id)
                    .bind(&key.group)
                    .bind(&key.namespace)
                    .fetch_all(&mut *c)
                    .await?
                {
                    out.push(gray_from_row(&row, false)?);
                }
                Ok(out)
            })
        })
        .await
    }

    async fn publish_gray(&self, gray: Gray, publish: GrayPublish) -> RepoResult<GrayConfig> {
        self.write("publish gray config", move |c| {
            let (gray, publish) = (gray.clone(), publish.clone());
            Box::pin(async move { publish_gray_tx(c, &gray, &publish).await })
        })
        .await
    }

    async fn remove_gray(&self, key: &ConfigKey, gray: &Gray) -> RepoResult<Option<GrayConfig>> {
        let (key, gray) = (key.clone(), gray.clone());
        self.write("remove gray config", move |c| {
            let (key, gray) = (key.clone(), gray.clone());
            Box::pin(async move {
                let Some(variant) = select_gray(c, &key, &gray, true).await? else {
                    return Ok(None);
                };
                let table = match gray {
                    Gray::Beta => "config_info_beta",
                    Gray::Tag(_) => "config_info_tag",
                };
                sqlx::query(&format!("DELETE FROM {table} WHERE id = ?"))
                    .bind(variant.id)
                    .execute(&mut *c)
                    .await?;
                let now = now_ms(c).await?;
                record_change(c, &key, now).await?;
                Ok(Some(variant))
            })
        })
        .await
    }

    async fn changed_since(&self, since_ms: i64) -> RepoResult<Vec<ConfigChange>> {
        // The primary: a lagging replica would hide changes from the scan for good.
        self.read("config changes", Route::Primary, move |c| {
            Box::pin(async move {
                let rows = sqlx::query(
                    "SELECT data_id, group_id, tenant_id, CAST(modified_ms AS SIGNED) AS modified_ms \
                     FROM ext_config_change WHERE modified_ms >= ? ORDER BY modified_ms, id",
                )
                .bind(since_ms)
                .fetch_all(&mut *c)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(ConfigChange {
                        key: key_of(&row)?,
                        modified_ms: int(&row, "modified_ms")?,
                    });
                }
                Ok(out)
            })
        })
        .await
    }
}
