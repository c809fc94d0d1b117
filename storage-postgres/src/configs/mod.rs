//! [`ConfigRepo`] on Nacos's config tables: `config_info` with `config_tags_relation`,
//! `his_config_info`, `config_info_beta`, `config_info_tag`, plus this server's
//! `config_changes` index.
//!
//! Writes lock the key's row (`SELECT … FOR UPDATE`) before deciding anything, so CAS checks
//! and the insert-or-update choice are race-free; an insert that loses a race with a concurrent
//! insert of the same key (`ON CONFLICT DO NOTHING` returns no row) re-reads and becomes an
//! update, inside the same transaction.

use async_trait::async_trait;
use diesel::pg::data_types::PgTimestamp;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncConnection, RunQueryDsl};
use nacos_core::{
    ConfigChange, ConfigItem, ConfigKey, ConfigPublish, ConfigQuery, ConfigRepo, Gray, GrayConfig,
    GrayPublish, HistoryEntry, Operator, Page, PageRequest, RepoError,
};

use crate::PgStore;
use crate::convert::{db_id, limit_offset, millis, timestamp};
use crate::error::Result;
use crate::schema::{
    config_changes as cc, config_info as ci, config_info_beta as cb, config_info_tag as ct,
    his_config_info as h,
};

mod formal;
mod gray;
mod rows;

use formal::*;
use gray::*;
use rows::*;

#[async_trait]
impl ConfigRepo for PgStore {
    async fn get(&self, key: &ConfigKey) -> Result<Option<ConfigItem>, RepoError> {
        self.call(async {
            let mut conn = self.conn().await?;
            match load_row(&mut conn, key, false).await? {
                Some(row) => load_item(&mut conn, row).await.map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn publish(&self, publish: ConfigPublish) -> Result<ConfigItem, RepoError> {
        self.call(async {
            let mut conn = self.conn().await?;
            conn.transaction(async |conn| publish_tx(conn, &publish).await)
                .await
        })
        .await
    }

    async fn remove(
        &self,
        key: &ConfigKey,
        operator: &Operator,
    ) -> Result<Option<ConfigItem>, RepoError> {
        self.call(async {
            let mut conn = self.conn().await?;
            conn.transaction(async |conn| remove_tx(conn, key, operator).await)
                .await
        })
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
        self.call(async {
            let mut conn = self.conn().await?;
            conn.transaction(async |conn| remove_by_ids_tx(conn, &ids, operator).await)
                .await
        })
        .await
    }

    async fn search(&self, query: &ConfigQuery) -> Result<Page<ConfigItem>, RepoError> {
        self.call(async {
            let mut conn = self.conn().await?;
            let total: i64 = matching(query).count().get_result(&mut conn).await?;
            let mut items = Vec::new();
            if query.page.page_size > 0 && total > 0 {
                let (limit, offset) = limit_offset(query.page);
                let rows: Vec<ConfigRow> = matching(query)
                    .order(ci::id.asc())
                    .limit(limit)
                    .offset(offset)
                    .select(ConfigRow::as_select())
                    .load(&mut conn)
                    .await?;
                let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                let mut tags = load_tags(&mut conn, &ids).await?;
                for row in rows {
                    let row_tags = tags.remove(&row.id).unwrap_or_default();
                    items.push(row.into_item(row_tags)?);
                }
            }
            Ok(Page::new(
                u64::try_from(total).unwrap_or_default(),
                query.page,
                items,
            ))
        })
        .await
    }

    async fn history(
        &self,
        key: &ConfigKey,
        page: PageRequest,
    ) -> Result<Page<HistoryEntry>, RepoError> {
        self.call(async {
            let mut conn = self.conn().await?;
            let of_key = || {
                h::table
                    .filter(h::tenant_id.eq(&key.namespace))
                    .filter(h::group_id.eq(&key.group))
                    .filter(h::data_id.eq(&key.data_id))
            };
            let total: i64 = of_key().count().get_result(&mut conn).await?;
            let mut items = Vec::new();
            if page.page_size > 0 && total > 0 {
                let (limit, offset) = limit_offset(page);
                let rows: Vec<HistoryRow> = of_key()
                    .order(h::nid.desc())
                    .limit(limit)
                    .offset(offset)
                    .select(HistoryRow::as_select())
                    .load(&mut conn)
                    .await?;
                for row in rows {
                    items.push(row.into_entry()?);
                }
            }
            Ok(Page::new(
                u64::try_from(total).unwrap_or_default(),
                page,
                items,
            ))
        })
        .await
    }

    async fn history_entry(&self, nid: u64) -> Result<Option<HistoryEntry>, RepoError> {
        let Some(nid) = db_id(nid) else {
            return Ok(None);
        };
        self.call(async {
            let mut conn = self.conn().await?;
            let row: Option<HistoryRow> = h::table
                .filter(h::nid.eq(nid))
                .select(HistoryRow::as_select())
                .first(&mut conn)
                .await
                .optional()?;
            row.map(HistoryRow::into_entry).transpose()
        })
        .await
    }

    async fn previous_history(&self, config_id: u64) -> Result<Option<HistoryEntry>, RepoError> {
        let Some(config_id) = db_id(config_id) else {
            return Ok(None);
        };
        self.call(async {
            let mut conn = self.conn().await?;
            let row: Option<HistoryRow> = h::table
                .filter(h::id.eq(config_id))
                .order(h::nid.desc())
                .select(HistoryRow::as_select())
                .first(&mut conn)
                .await
                .optional()?;
            row.map(HistoryRow::into_entry).transpose()
        })
        .await
    }

    async fn get_gray(
        &self,
        key: &ConfigKey,
        gray: &Gray,
    ) -> Result<Option<GrayConfig>, RepoError> {
        self.call(async {
            let mut conn = self.conn().await?;
            match gray {
                Gray::Beta => cb::table
                    .filter(cb::data_id.eq(&key.data_id))
                    .filter(cb::group_id.eq(&key.group))
                    .filter(cb::tenant_id.eq(&key.namespace))
                    .select(BetaRow::as_select())
                    .first(&mut conn)
                    .await
                    .optional()?
                    .map(BetaRow::into_gray)
                    .transpose(),
                Gray::Tag(tag) => ct::table
                    .filter(ct::data_id.eq(&key.data_id))
                    .filter(ct::group_id.eq(&key.group))
                    .filter(ct::tenant_id.eq(&key.namespace))
                    .filter(ct::tag_id.eq(tag))
                    .select(TagRow::as_select())
                    .first(&mut conn)
                    .await
                    .optional()?
                    .map(TagRow::into_gray)
                    .transpose(),
            }
        })
        .await
    }

    async fn list_grays(&self, key: &ConfigKey) -> Result<Vec<GrayConfig>, RepoError> {
        self.call(async {
            let mut conn = self.conn().await?;
            let beta: Option<BetaRow> = cb::table
                .filter(cb::data_id.eq(&key.data_id))
                .filter(cb::group_id.eq(&key.group))
                .filter(cb::tenant_id.eq(&key.namespace))
                .select(BetaRow::as_select())
                .first(&mut conn)
                .await
                .optional()?;
            let mut tags: Vec<TagRow> = ct::table
                .filter(ct::data_id.eq(&key.data_id))
                .filter(ct::group_id.eq(&key.group))
                .filter(ct::tenant_id.eq(&key.namespace))
                .select(TagRow::as_select())
                .load(&mut conn)
                .await?;
            // Byte order of tag names, whatever the database's collation.
            tags.sort_by(|a, b| a.tag_id.cmp(&b.tag_id));
            let mut out = Vec::with_capacity(tags.len() + 1);
            if let Some(beta) = beta {
                out.push(beta.into_gray()?);
            }
            for tag in tags {
                out.push(tag.into_gray()?);
            }
            Ok(out)
        })
        .await
    }

    async fn publish_gray(
        &self,
        gray: Gray,
        publish: GrayPublish,
    ) -> Result<GrayConfig, RepoError> {
        self.call(async {
            let mut conn = self.conn().await?;
            conn.transaction(async |conn| publish_gray_tx(conn, &gray, &publish).await)
                .await
        })
        .await
    }

    async fn remove_gray(
        &self,
        key: &ConfigKey,
        gray: &Gray,
    ) -> Result<Option<GrayConfig>, RepoError> {
        self.call(async {
            let mut conn = self.conn().await?;
            conn.transaction(async |conn| remove_gray_tx(conn, key, gray).await)
                .await
        })
        .await
    }

    async fn changed_since(&self, since_ms: i64) -> Result<Vec<ConfigChange>, RepoError> {
        self.call(async {
            let mut conn = self.conn().await?;
            let rows: Vec<(String, String, String, PgTimestamp)> = cc::table
                .filter(cc::gmt_modified.ge(timestamp(since_ms)))
                .order((
                    cc::gmt_modified.asc(),
                    cc::tenant_id.asc(),
                    cc::group_id.asc(),
                    cc::data_id.asc(),
                ))
                .select((cc::tenant_id, cc::group_id, cc::data_id, cc::gmt_modified))
                .load(&mut conn)
                .await?;
            Ok(rows
                .into_iter()
                .map(|(namespace, group, data_id, modified)| ConfigChange {
                    key: ConfigKey {
                        namespace,
                        group,
                        data_id,
                    },
                    modified_ms: millis(modified),
                })
                .collect())
        })
        .await
    }
}
