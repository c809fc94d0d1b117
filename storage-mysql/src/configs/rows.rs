//! How config, history and gray rows are selected (every column named) and read back by
//! name; the search filter.

use std::sync::LazyLock;

use nacos_core::{
    ConfigItem, ConfigKey, ConfigQuery, Gray, GrayConfig, HistoryEntry, HistoryOp, MatchMode,
    PageRequest, md5_hex,
};
use sqlx::mysql::MySqlRow;

use crate::sql::{filter, id, int, ms_of, placeholders, text};

pub(super) static CONFIG_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CAST(c.id AS SIGNED) AS id, c.data_id AS data_id, c.group_id AS group_id, \
         c.tenant_id AS tenant_id, c.content AS content, c.md5 AS md5, c.type AS type, \
         c.app_name AS app_name, c.c_desc AS c_desc, c.c_use AS c_use, c.effect AS effect, \
         c.c_schema AS c_schema, c.encrypted_data_key AS encrypted_data_key, \
         c.src_user AS src_user, c.src_ip AS src_ip, {} AS created_ms, {} AS modified_ms, \
         (SELECT GROUP_CONCAT(t.tag_name ORDER BY t.nid SEPARATOR ',') \
          FROM config_tags_relation t WHERE t.id = c.id) AS tags",
        ms_of("c.gmt_create"),
        ms_of("c.gmt_modified")
    )
});

pub(super) static HISTORY_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CAST(h.nid AS SIGNED) AS nid, CAST(h.id AS SIGNED) AS id, h.data_id AS data_id, \
         h.group_id AS group_id, h.tenant_id AS tenant_id, h.content AS content, h.md5 AS md5, \
         h.app_name AS app_name, h.src_user AS src_user, h.src_ip AS src_ip, \
         h.op_type AS op_type, h.encrypted_data_key AS encrypted_data_key, \
         {} AS created_ms, {} AS modified_ms",
        ms_of("h.gmt_create"),
        ms_of("h.gmt_modified")
    )
});

/// Beta and tag rows share one shape: `gray_marker` is `beta_ips` or `tag_id`.
pub(super) static BETA_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CAST(g.id AS SIGNED) AS id, g.data_id AS data_id, g.group_id AS group_id, \
         g.tenant_id AS tenant_id, g.content AS content, g.md5 AS md5, \
         g.beta_ips AS gray_marker, g.app_name AS app_name, \
         g.encrypted_data_key AS encrypted_data_key, g.src_user AS src_user, \
         g.src_ip AS src_ip, {} AS created_ms, {} AS modified_ms",
        ms_of("g.gmt_create"),
        ms_of("g.gmt_modified")
    )
});

pub(super) static TAG_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CAST(g.id AS SIGNED) AS id, g.data_id AS data_id, g.group_id AS group_id, \
         g.tenant_id AS tenant_id, g.content AS content, g.md5 AS md5, \
         g.tag_id AS gray_marker, g.app_name AS app_name, '' AS encrypted_data_key, \
         g.src_user AS src_user, g.src_ip AS src_ip, {} AS created_ms, {} AS modified_ms",
        ms_of("g.gmt_create"),
        ms_of("g.gmt_modified")
    )
});

pub(super) const KEY_WHERE: &str = "data_id = ? AND group_id = ? AND tenant_id = ?";

pub(super) fn md5_or_compute(stored: String, content: &str) -> String {
    if stored.is_empty() {
        md5_hex(content)
    } else {
        stored
    }
}

pub(super) fn key_of(row: &MySqlRow) -> Result<ConfigKey, sqlx::Error> {
    Ok(ConfigKey::new(
        text(row, "tenant_id")?,
        text(row, "group_id")?,
        text(row, "data_id")?,
    ))
}

pub(super) fn config_from_row(row: &MySqlRow) -> Result<ConfigItem, sqlx::Error> {
    let content = text(row, "content")?;
    Ok(ConfigItem {
        id: id(row, "id")?,
        key: key_of(row)?,
        md5: md5_or_compute(text(row, "md5")?, &content),
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
        tags: text(row, "tags")?
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

pub(super) fn history_from_row(row: &MySqlRow) -> Result<HistoryEntry, sqlx::Error> {
    let content = text(row, "content")?;
    let op = text(row, "op_type")?;
    Ok(HistoryEntry {
        nid: id(row, "nid")?,
        config_id: id(row, "id")?,
        key: key_of(row)?,
        md5: md5_or_compute(text(row, "md5")?, &content),
        content,
        app_name: text(row, "app_name")?,
        src_user: text(row, "src_user")?,
        src_ip: text(row, "src_ip")?,
        op: match op.trim() {
            "I" => HistoryOp::Insert,
            "D" => HistoryOp::Delete,
            _ => HistoryOp::Update,
        },
        encrypted_data_key: text(row, "encrypted_data_key")?,
        created_ms: int(row, "created_ms")?,
        modified_ms: int(row, "modified_ms")?,
    })
}

/// A beta row (`BETA_COLUMNS`) or a tag row (`TAG_COLUMNS`).
pub(super) fn gray_from_row(row: &MySqlRow, beta: bool) -> Result<GrayConfig, sqlx::Error> {
    let content = text(row, "content")?;
    let marker = text(row, "gray_marker")?;
    let (gray, beta_ips) = if beta {
        let ips = marker
            .split(',')
            .map(str::trim)
            .filter(|ip| !ip.is_empty())
            .map(str::to_string)
            .collect();
        (Gray::Beta, ips)
    } else {
        (Gray::Tag(marker), Vec::new())
    };
    Ok(GrayConfig {
        id: id(row, "id")?,
        key: key_of(row)?,
        gray,
        md5: md5_or_compute(text(row, "md5")?, &content),
        content,
        beta_ips,
        app_name: text(row, "app_name")?,
        encrypted_data_key: text(row, "encrypted_data_key")?,
        src_user: text(row, "src_user")?,
        src_ip: text(row, "src_ip")?,
        created_ms: int(row, "created_ms")?,
        modified_ms: int(row, "modified_ms")?,
    })
}

/// The `WHERE` clause and binds of a config search.
pub(super) fn search_where(query: &ConfigQuery) -> (String, Vec<String>) {
    let mut conditions = vec!["c.tenant_id = ?".to_string()];
    let mut binds = vec![query.namespace.clone()];
    let mut add = |found: Option<(String, String)>| {
        if let Some((condition, bind)) = found {
            conditions.push(condition);
            binds.push(bind);
        }
    };
    add(filter("c.data_id", &query.data_id, query.mode));
    add(filter("c.group_id", &query.group, query.mode));
    add(filter("c.app_name", &query.app_name, MatchMode::Exact));
    add(filter("c.content", &query.content, query.mode));
    if !query.types.is_empty() {
        conditions.push(format!("c.type IN ({})", placeholders(query.types.len())));
        binds.extend(query.types.iter().cloned());
    }
    if !query.tags.is_empty() {
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM config_tags_relation t WHERE t.id = c.id AND t.tag_name IN \
             ({}))",
            placeholders(query.tags.len())
        ));
        binds.extend(query.tags.iter().cloned());
    }
    (conditions.join(" AND "), binds)
}

pub(super) fn limit(page: PageRequest) -> (i64, i64) {
    (
        i64::from(page.page_size),
        i64::try_from(page.offset()).unwrap_or(i64::MAX),
    )
}
