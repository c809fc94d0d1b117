//! The formal config inside a write transaction: the locked row, tags, history rows, the
//! change index, publish and remove.

use std::collections::HashMap;

use diesel::upsert::excluded;
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use nacos_core::rules::updated_field;
use nacos_core::{ConfigItem, ConfigKey, ConfigPublish, HistoryOp, Operator, RepoError, md5_hex};

use crate::convert::{db_now, dedup, timestamp};
use crate::error::Result;
use crate::schema::{
    config_changes as cc, config_info as ci, config_tags_relation as tr, his_config_info as h,
};

use super::rows::*;

/// An insert that keeps losing races to concurrent inserts of the same key gives up after this
/// many rounds (each lost round means another writer committed that key meanwhile).
pub(super) const MAX_ROUNDS: usize = 8;

/// The formal row of a key, locked for the rest of the transaction when `lock` is set.
pub(super) async fn load_row(
    conn: &mut AsyncPgConnection,
    key: &ConfigKey,
    lock: bool,
) -> Result<Option<ConfigRow>> {
    let query = ci::table
        .filter(ci::data_id.eq(&key.data_id))
        .filter(ci::group_id.eq(&key.group))
        .filter(ci::tenant_id.eq(&key.namespace))
        .select(ConfigRow::as_select());
    let row = if lock {
        query.for_update().first(conn).await.optional()?
    } else {
        query.first(conn).await.optional()?
    };
    Ok(row)
}

/// Tags of the given configs, each list in the order they were written.
pub(super) async fn load_tags(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<String>>> {
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(i64, String)> = tr::table
        .filter(tr::id.eq_any(ids))
        .order((tr::id.asc(), tr::nid.asc()))
        .select((tr::id, tr::tag_name))
        .load(conn)
        .await?;
    for (config_id, tag) in rows {
        out.entry(config_id).or_default().push(tag);
    }
    Ok(out)
}

pub(super) async fn load_item(conn: &mut AsyncPgConnection, row: ConfigRow) -> Result<ConfigItem> {
    let tags = load_tags(conn, &[row.id])
        .await?
        .remove(&row.id)
        .unwrap_or_default();
    row.into_item(tags)
}

/// Replace a config's tag rows.
pub(super) async fn write_tags(
    conn: &mut AsyncPgConnection,
    config_id: i64,
    key: &ConfigKey,
    tags: &[String],
) -> Result<Vec<String>> {
    diesel::delete(tr::table.filter(tr::id.eq(config_id)))
        .execute(conn)
        .await?;
    let unique = dedup(tags.iter().filter(|t| !t.is_empty()));
    if !unique.is_empty() {
        let rows: Vec<_> = unique
            .iter()
            .map(|tag| {
                (
                    tr::id.eq(config_id),
                    tr::tag_name.eq(*tag),
                    tr::tag_type.eq(""),
                    tr::data_id.eq(&key.data_id),
                    tr::group_id.eq(&key.group),
                    tr::tenant_id.eq(&key.namespace),
                )
            })
            .collect();
        diesel::insert_into(tr::table)
            .values(rows)
            .execute(conn)
            .await?;
    }
    Ok(unique.into_iter().cloned().collect())
}

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

pub(super) fn check_cas(expected: Option<&String>, stored: Option<&str>, what: &str) -> Result<()> {
    Ok(nacos_core::check_cas(
        expected.map(String::as_str),
        stored,
        what,
    )?)
}

pub(super) async fn publish_tx(
    conn: &mut AsyncPgConnection,
    publish: &ConfigPublish,
) -> Result<ConfigItem> {
    let key = &publish.key;
    let operator = &publish.operator;
    let md5 = md5_hex(&publish.content);
    for _ in 0..MAX_ROUNDS {
        let stored = load_row(conn, key, true).await?;
        let stored_md5 = stored
            .as_ref()
            .map(|r| r.md5.clone().unwrap_or_else(|| md5_hex(&r.content)));
        check_cas(
            publish.cas_md5.as_ref(),
            stored_md5.as_deref(),
            &format!("config {}", key.describe()),
        )?;
        let now_ms = db_now(conn).await?;
        let now = timestamp(now_ms);
        let item = match stored {
            None => {
                let inserted: Option<ConfigRow> = diesel::insert_into(ci::table)
                    .values((
                        ci::data_id.eq(&key.data_id),
                        ci::group_id.eq(&key.group),
                        ci::tenant_id.eq(&key.namespace),
                        ci::content.eq(&publish.content),
                        ci::md5.eq(&md5),
                        ci::gmt_create.eq(now),
                        ci::gmt_modified.eq(now),
                        ci::src_user.eq(&operator.user),
                        ci::src_ip.eq(&operator.ip),
                        ci::app_name.eq(publish.app_name.as_deref().unwrap_or_default()),
                        ci::c_desc.eq(publish.desc.as_deref().unwrap_or_default()),
                        ci::c_use.eq(publish.usage.as_deref().unwrap_or_default()),
                        ci::effect.eq(publish.effect.as_deref().unwrap_or_default()),
                        ci::config_type.eq(publish.config_type.as_deref().unwrap_or_default()),
                        ci::c_schema.eq(publish.schema.as_deref().unwrap_or_default()),
                        ci::encrypted_data_key
                            .eq(publish.encrypted_data_key.as_deref().unwrap_or_default()),
                    ))
                    .on_conflict_do_nothing()
                    .returning(ConfigRow::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?;
                // A concurrent insert of this key committed first: read it (this statement's
                // snapshot sees it) and update instead.
                let Some(row) = inserted else { continue };
                let config_id = row.id;
                let tags = match &publish.tags {
                    Some(tags) => write_tags(conn, config_id, key, tags).await?,
                    None => Vec::new(),
                };
                let item = row.into_item(tags)?;
                append_history(conn, &item, 0, HistoryOp::Insert, operator, now_ms).await?;
                item
            }
            Some(old) => {
                let old_id = old.id;
                let old = load_item(conn, old).await?;
                let row: ConfigRow = diesel::update(ci::table.filter(ci::id.eq(old_id)))
                    .set((
                        ci::content.eq(&publish.content),
                        ci::md5.eq(&md5),
                        ci::gmt_modified.eq(now),
                        ci::src_user.eq(&operator.user),
                        ci::src_ip.eq(&operator.ip),
                        ci::app_name.eq(updated_field(&publish.app_name, &old.app_name)),
                        ci::c_desc.eq(updated_field(&publish.desc, &old.desc)),
                        ci::c_use.eq(updated_field(&publish.usage, &old.usage)),
                        ci::effect.eq(updated_field(&publish.effect, &old.effect)),
                        ci::config_type.eq(updated_field(&publish.config_type, &old.config_type)),
                        ci::c_schema.eq(updated_field(&publish.schema, &old.schema)),
                        ci::encrypted_data_key.eq(updated_field(
                            &publish.encrypted_data_key,
                            &old.encrypted_data_key,
                        )),
                    ))
                    .returning(ConfigRow::as_returning())
                    .get_result(conn)
                    .await?;
                let tags = match &publish.tags {
                    Some(tags) => write_tags(conn, old_id, key, tags).await?,
                    None => old.tags.clone(),
                };
                append_history(conn, &old, old_id, HistoryOp::Update, operator, now_ms).await?;
                row.into_item(tags)?
            }
        };
        record_change(conn, key, now_ms).await?;
        return Ok(item);
    }
    Err(RepoError::Unavailable(format!(
        "config {} kept changing under concurrent inserts; retry",
        key.describe()
    ))
    .into())
}

/// Delete one locked formal row with its tags, writing history `D` and the change entry.
pub(super) async fn remove_row(
    conn: &mut AsyncPgConnection,
    item: &ConfigItem,
    row_id: i64,
    operator: &Operator,
    now_ms: i64,
) -> Result<()> {
    diesel::delete(tr::table.filter(tr::id.eq(row_id)))
        .execute(conn)
        .await?;
    diesel::delete(ci::table.filter(ci::id.eq(row_id)))
        .execute(conn)
        .await?;
    append_history(conn, item, row_id, HistoryOp::Delete, operator, now_ms).await?;
    record_change(conn, &item.key, now_ms).await
}

pub(super) async fn remove_tx(
    conn: &mut AsyncPgConnection,
    key: &ConfigKey,
    operator: &Operator,
) -> Result<Option<ConfigItem>> {
    let Some(row) = load_row(conn, key, true).await? else {
        return Ok(None);
    };
    let row_id = row.id;
    let item = load_item(conn, row).await?;
    let now_ms = db_now(conn).await?;
    remove_row(conn, &item, row_id, operator, now_ms).await?;
    Ok(Some(item))
}

pub(super) async fn remove_by_ids_tx(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
    operator: &Operator,
) -> Result<Vec<ConfigItem>> {
    // Lock in id order, so two overlapping batches cannot deadlock.
    let rows: Vec<ConfigRow> = ci::table
        .filter(ci::id.eq_any(ids))
        .order(ci::id.asc())
        .select(ConfigRow::as_select())
        .for_update()
        .load(conn)
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let row_ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut tags = load_tags(conn, &row_ids).await?;
    let now_ms = db_now(conn).await?;
    let mut removed: HashMap<i64, ConfigItem> = HashMap::new();
    for row in rows {
        let row_id = row.id;
        let item = row.into_item(tags.remove(&row_id).unwrap_or_default())?;
        remove_row(conn, &item, row_id, operator, now_ms).await?;
        removed.insert(row_id, item);
    }
    // In the order the ids were given.
    Ok(ids.iter().filter_map(|i| removed.remove(i)).collect())
}
