//! Config history (`his_config_info`) and the change index (`config_changes`): the rows every
//! config write appends, and their reads.

use diesel::pg::data_types::PgTimestamp;
use diesel::sql_types::{BigInt, Timestamp};
use diesel::upsert::excluded;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use nacos_core::{
    ConfigChange, ConfigItem, ConfigKey, HistoryEntry, HistoryOp, Operator, Page, PageRequest,
};

use super::rows::HistoryRow;
use crate::convert::{limit_offset, millis, timestamp};
use crate::error::Result;
use crate::schema::{config_changes as cc, his_config_info as h};

/// Append a history row describing `source` (the new row for `I`, the previous one for `U`,
/// the deleted one for `D`), written by `operator` at `now_ms`.
pub(super) async fn append_history(
    conn: &mut AsyncPgConnection,
    source: &ConfigItem,
    config_id: i64,
    op: HistoryOp,
    operator: &Operator,
    now_ms: i64,
) -> Result<()> {
    let now = timestamp(now_ms);
    diesel::insert_into(h::table)
        .values((
            h::id.eq(config_id),
            h::data_id.eq(&source.key.data_id),
            h::group_id.eq(&source.key.group),
            h::tenant_id.eq(&source.key.namespace),
            h::app_name.eq(&source.app_name),
            h::content.eq(&source.content),
            h::md5.eq(&source.md5),
            h::gmt_create.eq(now),
            h::gmt_modified.eq(now),
            h::src_user.eq(&operator.user),
            h::src_ip.eq(&operator.ip),
            h::op_type.eq(op.code()),
            h::encrypted_data_key.eq(&source.encrypted_data_key),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Move the key's entry in the change index to `now_ms`.
pub(super) async fn record_change(
    conn: &mut AsyncPgConnection,
    key: &ConfigKey,
    now_ms: i64,
) -> Result<()> {
    diesel::insert_into(cc::table)
        .values((
            cc::tenant_id.eq(&key.namespace),
            cc::group_id.eq(&key.group),
            cc::data_id.eq(&key.data_id),
            cc::gmt_modified.eq(timestamp(now_ms)),
        ))
        .on_conflict((cc::tenant_id, cc::group_id, cc::data_id))
        .do_update()
        .set(cc::gmt_modified.eq(excluded(cc::gmt_modified)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Delete up to `limit` history rows modified before `before_ms`, lowest nid first; one
/// statement, so one short transaction (`idx_gmt_modified` finds the rows).
pub(super) async fn purge(conn: &mut AsyncPgConnection, before_ms: i64, limit: i64) -> Result<u64> {
    // Raw SQL: diesel cannot express a DELETE whose IN-subquery is limited.
    let deleted = diesel::sql_query(
        "DELETE FROM his_config_info WHERE nid IN (SELECT nid FROM his_config_info \
         WHERE gmt_modified < $1 ORDER BY nid LIMIT $2)",
    )
    .bind::<Timestamp, _>(timestamp(before_ms))
    .bind::<BigInt, _>(limit)
    .execute(conn)
    .await?;
    Ok(deleted as u64)
}

/// One page of a key's history, newest first.
pub(super) async fn page(
    conn: &mut AsyncPgConnection,
    key: &ConfigKey,
    page: PageRequest,
) -> Result<Page<HistoryEntry>> {
    let of_key = || {
        h::table
            .filter(h::tenant_id.eq(&key.namespace))
            .filter(h::group_id.eq(&key.group))
            .filter(h::data_id.eq(&key.data_id))
    };
    let total: i64 = of_key().count().get_result(conn).await?;
    let mut items = Vec::new();
    if page.page_size > 0 && total > 0 {
        let (limit, offset) = limit_offset(page);
        let rows: Vec<HistoryRow> = of_key()
            .order(h::nid.desc())
            .limit(limit)
            .offset(offset)
            .select(HistoryRow::as_select())
            .load(conn)
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
}

/// The history row `nid`.
pub(super) async fn entry(conn: &mut AsyncPgConnection, nid: i64) -> Result<Option<HistoryEntry>> {
    let row: Option<HistoryRow> = h::table
        .filter(h::nid.eq(nid))
        .select(HistoryRow::as_select())
        .first(conn)
        .await
        .optional()?;
    row.map(HistoryRow::into_entry).transpose()
}

/// The newest history row of config `config_id`.
pub(super) async fn previous(
    conn: &mut AsyncPgConnection,
    config_id: i64,
) -> Result<Option<HistoryEntry>> {
    let row: Option<HistoryRow> = h::table
        .filter(h::id.eq(config_id))
        .order(h::nid.desc())
        .select(HistoryRow::as_select())
        .first(conn)
        .await
        .optional()?;
    row.map(HistoryRow::into_entry).transpose()
}

/// Keys changed at or after `since_ms`, oldest first.
pub(super) async fn changed_since(
    conn: &mut AsyncPgConnection,
    since_ms: i64,
) -> Result<Vec<ConfigChange>> {
    let rows: Vec<(String, String, String, PgTimestamp)> = cc::table
        .filter(cc::gmt_modified.ge(timestamp(since_ms)))
        .order((
            cc::gmt_modified.asc(),
            cc::tenant_id.asc(),
            cc::group_id.asc(),
            cc::data_id.asc(),
        ))
        .select((cc::tenant_id, cc::group_id, cc::data_id, cc::gmt_modified))
        .load(conn)
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
}
