//! What the config queries select, and the mapping of their rows onto the model. Every column
//! is read by its name (the `AS` aliases below), never by its position.

use std::sync::LazyLock;

use nacos_core::{ConfigItem, ConfigKey, Gray, GrayConfig, HistoryEntry, HistoryOp, rules};
use sqlx::mysql::MySqlRow;

use crate::sql::{id, int, ms_of, text};

/// Columns of a `config_info c` row, with its tags (comma-joined, in written order).
pub(crate) static CONFIG_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CAST(c.id AS SIGNED) AS id, c.data_id, c.group_id, c.tenant_id, c.content, c.md5, \
         c.type, c.app_name, c.c_desc, c.c_use, c.effect, c.c_schema, c.encrypted_data_key, \
         c.src_user, c.src_ip, {} AS created_ms, {} AS modified_ms, \
         (SELECT GROUP_CONCAT(t.tag_name ORDER BY t.nid SEPARATOR ',') \
          FROM config_tags_relation t WHERE t.id = c.id) AS tags",
        ms_of("c.gmt_create"),
        ms_of("c.gmt_modified")
    )
});

/// Columns of a `his_config_info h` row.
pub(crate) static HISTORY_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CAST(h.nid AS SIGNED) AS nid, CAST(h.id AS SIGNED) AS id, h.data_id, h.group_id, \
         h.tenant_id, h.content, h.md5, h.app_name, h.src_user, h.src_ip, h.op_type, \
         h.encrypted_data_key, {} AS created_ms, {} AS modified_ms",
        ms_of("h.gmt_create"),
        ms_of("h.gmt_modified")
    )
});

/// Columns of a `config_info_beta g` row.
pub(crate) static BETA_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CAST(g.id AS SIGNED) AS id, g.data_id, g.group_id, g.tenant_id, g.content, g.md5, \
         g.beta_ips, g.app_name, g.encrypted_data_key, g.src_user, g.src_ip, \
         {} AS created_ms, {} AS modified_ms",
        ms_of("g.gmt_create"),
        ms_of("g.gmt_modified")
    )
});

/// Columns of a `config_info_tag g` row (the table has no `encrypted_data_key`).
pub(crate) static TAG_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CAST(g.id AS SIGNED) AS id, g.data_id, g.group_id, g.tenant_id, g.content, g.md5, \
         g.tag_id, g.app_name, g.src_user, g.src_ip, {} AS created_ms, {} AS modified_ms",
        ms_of("g.gmt_create"),
        ms_of("g.gmt_modified")
    )
});

fn key(row: &MySqlRow) -> Result<ConfigKey, sqlx::Error> {
    Ok(ConfigKey::new(
        text(row, "tenant_id")?,
        text(row, "group_id")?,
        text(row, "data_id")?,
    ))
}

/// A [`CONFIG_COLUMNS`] row.
pub(crate) fn config(row: &MySqlRow) -> Result<ConfigItem, sqlx::Error> {
    let content = text(row, "content")?;
    Ok(ConfigItem {
        id: id(row, "id")?,
        key: key(row)?,
        md5: rules::stored_md5(Some(text(row, "md5")?), &content),
        content,
        config_type: text(row, "type")?,
        app_name: text(row, "app_name")?,
        desc: text(row, "c_desc")?,
        usage: text(row, "c_use")?,
        effect: text(row, "effect")?,
        schema: text(row, "c_schema")?,
        encrypted_data_key: text(row, "encrypted_data_key")?,
        src_user: text(row, "src_user")?,
        src_ip: text(row, "src_ip")?,
        created_ms: int(row, "created_ms")?,
        modified_ms: int(row, "modified_ms")?,
        tags: rules::split_list(Some(&text(row, "tags")?)),
    })
}

/// A [`HISTORY_COLUMNS`] row. An `op_type` other than I, U or D reads as an update.
pub(crate) fn history(row: &MySqlRow) -> Result<HistoryEntry, sqlx::Error> {
    let content = text(row, "content")?;
    Ok(HistoryEntry {
        nid: id(row, "nid")?,
        config_id: id(row, "id")?,
        key: key(row)?,
        md5: rules::stored_md5(Some(text(row, "md5")?), &content),
        content,
        app_name: text(row, "app_name")?,
        src_user: text(row, "src_user")?,
        src_ip: text(row, "src_ip")?,
        op: HistoryOp::from_code(&text(row, "op_type")?).unwrap_or(HistoryOp::Update),
        encrypted_data_key: text(row, "encrypted_data_key")?,
        created_ms: int(row, "created_ms")?,
        modified_ms: int(row, "modified_ms")?,
    })
}

/// A [`BETA_COLUMNS`] row (`beta` set) or a [`TAG_COLUMNS`] row.
pub(crate) fn gray(row: &MySqlRow, beta: bool) -> Result<GrayConfig, sqlx::Error> {
    let content = text(row, "content")?;
    let (gray, beta_ips, encrypted_data_key) = if beta {
        (
            Gray::Beta,
            rules::split_list(Some(&text(row, "beta_ips")?)),
            text(row, "encrypted_data_key")?,
        )
    } else {
        (Gray::Tag(text(row, "tag_id")?), Vec::new(), String::new())
    };
    Ok(GrayConfig {
        id: id(row, "id")?,
        key: key(row)?,
        gray,
        md5: rules::stored_md5(Some(text(row, "md5")?), &content),
        content,
        beta_ips,
        app_name: text(row, "app_name")?,
        encrypted_data_key,
        src_user: text(row, "src_user")?,
        src_ip: text(row, "src_ip")?,
        created_ms: int(row, "created_ms")?,
        modified_ms: int(row, "modified_ms")?,
    })
}
