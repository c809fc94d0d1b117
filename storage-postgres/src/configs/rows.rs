//! The rows of the config tables as diesel reads them, and their mapping onto the model.

use diesel::pg::Pg;
use diesel::pg::data_types::PgTimestamp;
use diesel::{Queryable, Selectable};
use nacos_core::{
    ConfigItem, ConfigKey, Gray, GrayConfig, HistoryEntry, HistoryOp, RepoError, rules,
};

use crate::convert::{id, millis};
use crate::error::Result;
use crate::schema::{
    config_info as ci, config_info_beta as cb, config_info_tag as ct, his_config_info as h,
};

/// A `config_info` row (its tags live in `config_tags_relation`).
#[derive(Queryable, Selectable)]
#[diesel(table_name = ci, check_for_backend(Pg))]
pub(crate) struct ConfigRow {
    pub id: i64,
    data_id: String,
    group_id: Option<String>,
    content: String,
    md5: Option<String>,
    gmt_create: PgTimestamp,
    gmt_modified: PgTimestamp,
    src_user: Option<String>,
    src_ip: Option<String>,
    app_name: Option<String>,
    tenant_id: Option<String>,
    c_desc: Option<String>,
    c_use: Option<String>,
    effect: Option<String>,
    config_type: Option<String>,
    c_schema: Option<String>,
    encrypted_data_key: String,
}

impl ConfigRow {
    pub fn into_item(self, tags: Vec<String>) -> Result<ConfigItem> {
        Ok(ConfigItem {
            id: id(self.id, "config id")?,
            key: ConfigKey {
                namespace: self.tenant_id.unwrap_or_default(),
                group: self.group_id.unwrap_or_default(),
                data_id: self.data_id,
            },
            md5: rules::stored_md5(self.md5, &self.content),
            content: self.content,
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

/// A `his_config_info` row.
#[derive(Queryable, Selectable)]
#[diesel(table_name = h, check_for_backend(Pg))]
pub(crate) struct HistoryRow {
    id: i64,
    nid: i64,
    data_id: String,
    group_id: String,
    app_name: Option<String>,
    content: String,
    md5: Option<String>,
    gmt_create: PgTimestamp,
    gmt_modified: PgTimestamp,
    src_user: Option<String>,
    src_ip: Option<String>,
    op_type: Option<String>,
    tenant_id: Option<String>,
    encrypted_data_key: String,
}

impl HistoryRow {
    pub fn into_entry(self) -> Result<HistoryEntry> {
        let Some(op) = self.op_type.as_deref().and_then(HistoryOp::from_code) else {
            return Err(RepoError::Internal(
                format!(
                    "his_config_info nid {} has op_type {:?}, not I, U or D",
                    self.nid,
                    self.op_type.as_deref().map(str::trim)
                )
                .into(),
            )
            .into());
        };
        Ok(HistoryEntry {
            nid: id(self.nid, "history nid")?,
            config_id: id(self.id, "history config id")?,
            key: ConfigKey {
                namespace: self.tenant_id.unwrap_or_default(),
                group: self.group_id,
                data_id: self.data_id,
            },
            md5: rules::stored_md5(self.md5, &self.content),
            content: self.content,
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

/// A `config_info_beta` row.
#[derive(Queryable, Selectable)]
#[diesel(table_name = cb, check_for_backend(Pg))]
pub(crate) struct BetaRow {
    id: i64,
    data_id: String,
    group_id: String,
    app_name: Option<String>,
    content: String,
    beta_ips: Option<String>,
    md5: Option<String>,
    gmt_create: PgTimestamp,
    gmt_modified: PgTimestamp,
    src_user: Option<String>,
    src_ip: Option<String>,
    tenant_id: Option<String>,
    encrypted_data_key: String,
}

impl BetaRow {
    pub fn into_gray(self) -> Result<GrayConfig> {
        Ok(GrayConfig {
            id: id(self.id, "beta id")?,
            key: ConfigKey {
                namespace: self.tenant_id.unwrap_or_default(),
                group: self.group_id,
                data_id: self.data_id,
            },
            gray: Gray::Beta,
            md5: rules::stored_md5(self.md5, &self.content),
            content: self.content,
            beta_ips: rules::split_list(self.beta_ips.as_deref()),
            app_name: self.app_name.unwrap_or_default(),
            encrypted_data_key: self.encrypted_data_key,
            src_user: self.src_user.unwrap_or_default(),
            src_ip: self.src_ip.unwrap_or_default(),
            created_ms: millis(self.gmt_create),
            modified_ms: millis(self.gmt_modified),
        })
    }
}

/// A `config_info_tag` row.
#[derive(Queryable, Selectable)]
#[diesel(table_name = ct, check_for_backend(Pg))]
pub(crate) struct TagRow {
    id: i64,
    data_id: String,
    group_id: String,
    tenant_id: Option<String>,
    pub tag_id: String,
    app_name: Option<String>,
    content: String,
    md5: Option<String>,
    gmt_create: PgTimestamp,
    gmt_modified: PgTimestamp,
    src_user: Option<String>,
    src_ip: Option<String>,
}

impl TagRow {
    /// Nacos's tag table has no `encrypted_data_key` column, so tag variants carry none.
    pub fn into_gray(self) -> Result<GrayConfig> {
        Ok(GrayConfig {
            id: id(self.id, "tag variant id")?,
            key: ConfigKey {
                namespace: self.tenant_id.unwrap_or_default(),
                group: self.group_id,
                data_id: self.data_id,
            },
            gray: Gray::Tag(self.tag_id),
            md5: rules::stored_md5(self.md5, &self.content),
            content: self.content,
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
