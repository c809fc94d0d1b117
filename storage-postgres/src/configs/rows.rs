//! The config, history and gray rows as diesel reads them, and the search filter.

use diesel::pg::Pg;
use diesel::pg::data_types::PgTimestamp;
use diesel::{ExpressionMethods, QueryDsl, Queryable, Selectable, TextExpressionMethods};
use nacos_core::{
    ConfigItem, ConfigKey, ConfigQuery, Gray, GrayConfig, HistoryEntry, HistoryOp, RepoError,
    md5_hex,
};

use crate::convert::{TextFilter, id, millis, split_list, text_filter};
use crate::error::Result;
use crate::schema::{
    config_info as ci, config_info_beta as cb, config_info_tag as ct, config_tags_relation as tr,
    his_config_info as h,
};

#[derive(Queryable, Selectable)]
#[diesel(table_name = ci, check_for_backend(Pg))]
pub(super) struct ConfigRow {
    pub(super) id: i64,
    pub(super) data_id: String,
    pub(super) group_id: Option<String>,
    pub(super) content: String,
    pub(super) md5: Option<String>,
    pub(super) gmt_create: PgTimestamp,
    pub(super) gmt_modified: PgTimestamp,
    pub(super) src_user: Option<String>,
    pub(super) src_ip: Option<String>,
    pub(super) app_name: Option<String>,
    pub(super) tenant_id: Option<String>,
    pub(super) c_desc: Option<String>,
    pub(super) c_use: Option<String>,
    pub(super) effect: Option<String>,
    pub(super) config_type: Option<String>,
    pub(super) c_schema: Option<String>,
    pub(super) encrypted_data_key: String,
}

impl ConfigRow {
    pub(super) fn into_item(self, tags: Vec<String>) -> Result<ConfigItem> {
        let md5 = self.md5.unwrap_or_else(|| md5_hex(&self.content));
        Ok(ConfigItem {
            id: id(self.id, "config id")?,
            key: ConfigKey {
                namespace: self.tenant_id.unwrap_or_default(),
                group: self.group_id.unwrap_or_default(),
                data_id: self.data_id,
            },
            content: self.content,
            md5,
            config_type: self.config_type.unwrap_or_default(),
            app_name: self.app_name.unwrap_or_default(),
            desc: self.c_desc.unwrap_or_default(),
            usage: self.c_use.unwrap_or_default(),
            effect: self.effect.unwrap_or_default(),
            schema: self.c_schema.unwrap_or_default(),
            tags,
            encrypted_data_key: self.encrypted_data_key,
            src_user: self.src_user.unwrap_or_default(),
            src_ip: self.src_ip.unwrap_or_default(),
            created_ms: millis(self.gmt_create),
            modified_ms: millis(self.gmt_modified),
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = h, check_for_backend(Pg))]
pub(super) struct HistoryRow {
    pub(super) id: i64,
    pub(super) nid: i64,
    pub(super) data_id: String,
    pub(super) group_id: String,
    pub(super) app_name: Option<String>,
    pub(super) content: String,
    pub(super) md5: Option<String>,
    pub(super) gmt_create: PgTimestamp,
    pub(super) gmt_modified: PgTimestamp,
    pub(super) src_user: Option<String>,
    pub(super) src_ip: Option<String>,
    pub(super) op_type: Option<String>,
    pub(super) tenant_id: Option<String>,
    pub(super) encrypted_data_key: String,
}

impl HistoryRow {
    pub(super) fn into_entry(self) -> Result<HistoryEntry> {
        // Nacos's column is char(10): trailing blanks may come back.
        let op = match self.op_type.as_deref().map(str::trim) {
            Some("I") => HistoryOp::Insert,
            Some("U") => HistoryOp::Update,
            Some("D") => HistoryOp::Delete,
            other => {
                return Err(RepoError::Internal(format!(
                    "his_config_info nid {} has op_type {other:?}, not I, U or D",
                    self.nid
                ))
                .into());
            }
        };
        let md5 = self.md5.unwrap_or_else(|| md5_hex(&self.content));
        Ok(HistoryEntry {
            nid: id(self.nid, "history nid")?,
            config_id: id(self.id, "history config id")?,
            key: ConfigKey {
                namespace: self.tenant_id.unwrap_or_default(),
                group: self.group_id,
                data_id: self.data_id,
            },
            content: self.content,
            md5,
            app_name: self.app_name.unwrap_or_default(),
            src_user: self.src_user.unwrap_or_default(),
            src_ip: self.src_ip.unwrap_or_default(),
            op,
            encrypted_data_key: self.encrypted_data_key,
            created_ms: millis(self.gmt_create),
            modified_ms: millis(self.gmt_modified),
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = cb, check_for_backend(Pg))]
pub(super) struct BetaRow {
    pub(super) id: i64,
    pub(super) data_id: String,
    pub(super) group_id: String,
    pub(super) app_name: Option<String>,
    pub(super) content: String,
    pub(super) beta_ips: Option<String>,
    pub(super) md5: Option<String>,
    pub(super) gmt_create: PgTimestamp,
    pub(super) gmt_modified: PgTimestamp,
    pub(super) src_user: Option<String>,
    pub(super) src_ip: Option<String>,
    pub(super) tenant_id: Option<String>,
    pub(super) encrypted_data_key: String,
}

impl BetaRow {
    pub(super) fn into_gray(self) -> Result<GrayConfig> {
        let md5 = self.md5.unwrap_or_else(|| md5_hex(&self.content));
        Ok(GrayConfig {
            id: id(self.id, "beta id")?,
            key: ConfigKey {
                namespace: self.tenant_id.unwrap_or_default(),
                group: self.group_id,
                data_id: self.data_id,
            },
            gray: Gray::Beta,
            content: self.content,
            md5,
            beta_ips: split_list(self.beta_ips.as_deref()),
            app_name: self.app_name.unwrap_or_default(),
            encrypted_data_key: self.encrypted_data_key,
            src_user: self.src_user.unwrap_or_default(),
            src_ip: self.src_ip.unwrap_or_default(),
            created_ms: millis(self.gmt_create),
            modified_ms: millis(self.gmt_modified),
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = ct, check_for_backend(Pg))]
pub(super) struct TagRow {
    pub(super) id: i64,
    pub(super) data_id: String,
    pub(super) group_id: String,
    pub(super) tenant_id: Option<String>,
    pub(super) tag_id: String,
    pub(super) app_name: Option<String>,
    pub(super) content: String,
    pub(super) md5: Option<String>,
    pub(super) gmt_create: PgTimestamp,
    pub(super) gmt_modified: PgTimestamp,
    pub(super) src_user: Option<String>,
    pub(super) src_ip: Option<String>,
}

impl TagRow {
    /// Nacos's tag table has no `encrypted_data_key` column, so tag variants carry none.
    pub(super) fn into_gray(self) -> Result<GrayConfig> {
        let md5 = self.md5.unwrap_or_else(|| md5_hex(&self.content));
        Ok(GrayConfig {
            id: id(self.id, "tag variant id")?,
            key: ConfigKey {
                namespace: self.tenant_id.unwrap_or_default(),
                group: self.group_id,
                data_id: self.data_id,
            },
            gray: Gray::Tag(self.tag_id),
            content: self.content,
            md5,
            beta_ips: Vec::new(),
            app_name: self.app_name.unwrap_or_default(),
            encrypted_data_key: String::new(),
            src_user: self.src_user.unwrap_or_default(),
            src_ip: self.src_ip.unwrap_or_default(),
            created_ms: millis(self.gmt_create),
            modified_ms: millis(self.gmt_modified),
        })
    }
}

/// The formal configs matching a query's filters (namespace included), unordered.
pub(super) fn matching(query: &ConfigQuery) -> ci::BoxedQuery<'_, Pg> {
    let mut q = ci::table
        .filter(ci::tenant_id.eq(&query.namespace))
        .into_boxed();
    if !query.data_id.is_empty() {
        q = match text_filter(&query.data_id, query.mode) {
            TextFilter::Equal(v) => q.filter(ci::data_id.eq(v)),
            TextFilter::Like(p) => q.filter(ci::data_id.like(p)),
        };
    }
    if !query.group.is_empty() {
        q = match text_filter(&query.group, query.mode) {
            TextFilter::Equal(v) => q.filter(ci::group_id.eq(v)),
            TextFilter::Like(p) => q.filter(ci::group_id.like(p)),
        };
    }
    if !query.app_name.is_empty() {
        q = q.filter(ci::app_name.eq(&query.app_name));
    }
    if !query.types.is_empty() {
        q = q.filter(ci::config_type.eq_any(&query.types));
    }
    if !query.content.is_empty() {
        q = match text_filter(&query.content, query.mode) {
            TextFilter::Equal(v) => q.filter(ci::content.eq(v)),
            TextFilter::Like(p) => q.filter(ci::content.like(p)),
        };
    }
    if !query.tags.is_empty() {
        q = q.filter(
            ci::id.eq_any(
                tr::table
                    .filter(tr::tag_name.eq_any(&query.tags))
                    .select(tr::id),
            ),
        );
    }
    q
}
