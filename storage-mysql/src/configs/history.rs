//! Config history (`his_config_info`) and the change index (`ext_config_change`): the rows
//! every config write appends, and their reads.

use nacos_core::{
    ConfigChange, ConfigItem, ConfigKey, HistoryEntry, HistoryOp, Operator, Page, PageRequest,
};
use sqlx::MySqlConnection;

use super::rows;
use crate::sql::{int, limit_offset, text};
use crate::store::Failure;

/// Append a history row describing `source` (new row for I, previous for U, deleted for D).
pub(super) async fn append_history(
    c: &mut MySqlConnection,
    source: &ConfigItem,
    config_id: u64,
    op: HistoryOp,
    operator: &Operator,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO his_config_info (id, data_id, group_id, tenant_id, app_name, content, md5, \
         src_ip, src_user, gmt_create, gmt_modified, op_type, encrypted_data_key) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, FROM_UNIXTIME(?), FROM_UNIXTIME(?), ?, ?)",
    )
    .bind(config_id)
    .bind(&source.key.data_id)
    .bind(&source.key.group)
    .bind(&source.key.namespace)
    .bind(&source.app_name)
    .bind(&source.content)
    .bind(&source.md5)
    .bind(&operator.ip)
    .bind(&operator.user)
    .bind(now.div_euclid(1000))
    .bind(now.div_euclid(1000))
    .bind(op.code())
    .bind(&source.encrypted_data_key)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Move the key's row in the change index to `now`.
pub(super) async fn record_change(
    c: &mut MySqlConnection,
    key: &ConfigKey,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ext_config_change (data_id, group_id, tenant_id, modified_ms) \
         VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE modified_ms = ?",
    )
    .bind(&key.data_id)
    .bind(&key.group)
    .bind(&key.namespace)
    .bind(now)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Delete up to `limit` history rows modified before `before_ms`, lowest nid first, in one
/// statement (`idx_gmt_modified` finds the rows). The cutoff keeps its milliseconds, so a row
/// stamped in the cutoff's own second stays.
pub(super) async fn purge(
    c: &mut MySqlConnection,
    before_ms: i64,
    limit: u32,
) -> Result<u64, Failure> {
    let done = sqlx::query(
        "DELETE FROM his_config_info WHERE gmt_modified < FROM_UNIXTIME(? / 1000) \
         ORDER BY nid LIMIT ?",
    )
    .bind(before_ms)
    .bind(limit)
    .execute(&mut *c)
    .await?;
    Ok(done.rows_affected())
}

/// One page of a key's history, newest first.
pub(super) async fn page(
    c: &mut MySqlConnection,
    key: &ConfigKey,
    page: PageRequest,
) -> Result<Page<HistoryEntry>, Failure> {
    let count = sqlx::query(
        "SELECT COUNT(*) AS total FROM his_config_info \
         WHERE data_id = ? AND group_id = ? AND tenant_id = ?",
    )
    .bind(&key.data_id)
    .bind(&key.group)
    .bind(&key.namespace)
    .fetch_one(&mut *c)
    .await?;
    let total = u64::try_from(int(&count, "total")?).unwrap_or_default();
    let mut items = Vec::new();
    if page.page_size > 0 && (page.offset() as u64) < total {
        let sql = format!(
            "SELECT {} FROM his_config_info h WHERE h.data_id = ? AND h.group_id = ? \
             AND h.tenant_id = ? ORDER BY h.nid DESC LIMIT ? OFFSET ?",
            *rows::HISTORY_COLUMNS
        );
        let (size, offset) = limit_offset(page);
        for row in sqlx::query(&sql)
            .bind(&key.data_id)
            .bind(&key.group)
            .bind(&key.namespace)
            .bind(size)
            .bind(offset)
            .fetch_all(&mut *c)
            .await?
        {
            items.push(rows::history(&row)?);
        }
    }
    Ok(Page::new(total, page, items))
}

/// The history row `nid`.
pub(super) async fn entry(
    c: &mut MySqlConnection,
    nid: u64,
) -> Result<Option<HistoryEntry>, Failure> {
    let sql = format!(
        "SELECT {} FROM his_config_info h WHERE h.nid = ?",
        *rows::HISTORY_COLUMNS
    );
    let row = sqlx::query(&sql).bind(nid).fetch_optional(&mut *c).await?;
    Ok(row.as_ref().map(rows::history).transpose()?)
}

/// The newest history row of config `config_id`.
pub(super) async fn previous(
    c: &mut MySqlConnection,
    config_id: u64,
) -> Result<Option<HistoryEntry>, Failure> {
    let sql = format!(
        "SELECT {} FROM his_config_info h WHERE h.id = ? ORDER BY h.nid DESC LIMIT 1",
        *rows::HISTORY_COLUMNS
    );
    let row = sqlx::query(&sql)
        .bind(config_id)
        .fetch_optional(&mut *c)
        .await?;
    Ok(row.as_ref().map(rows::history).transpose()?)
}

/// Keys changed at or after `since_ms`, oldest first.
pub(super) async fn changed_since(
    c: &mut MySqlConnection,
    since_ms: i64,
) -> Result<Vec<ConfigChange>, Failure> {
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
            key: ConfigKey::new(
                text(&row, "tenant_id")?,
                text(&row, "group_id")?,
                text(&row, "data_id")?,
            ),
            modified_ms: int(&row, "modified_ms")?,
        });
    }
    Ok(out)
}
