//! Formal configs (`config_info` with `config_tags_relation`): reads, search, and the publish
//! and remove transactions (each writes its history row and change entry too).

use std::collections::HashMap;

use diesel::pg::Pg;
use diesel::pg::data_types::PgTimestamp;
use diesel::{
    AsChangeset, ExpressionMethods, Insertable, OptionalExtension, QueryDsl, SelectableHelper,
    TextExpressionMethods,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use nacos_core::{
    ConfigItem, ConfigKey, ConfigPublish, ConfigQuery, HistoryOp, Operator, Page, RepoError, rules,
};

use super::history::{append_history, record_change};
use super::rows::ConfigRow;
use super::{MAX_ROUNDS, check_cas};
use crate::convert::{TextFilter, db_now, limit_offset, text_filter, timestamp};
use crate::error::Result;
use crate::schema::{config_info as ci, config_tags_relation as tr};

/// The formal row of a key, locked for the rest of the transaction when `lock` is set.
async fn load_row(
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
pub(crate) async fn load_tags(
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

async fn load_item(conn: &mut AsyncPgConnection, row: ConfigRow) -> Result<ConfigItem> {
    let tags = load_tags(conn, &[row.id])
        .await?
        .remove(&row.id)
        .unwrap_or_default();
    row.into_item(tags)
}

/// The formal config of a key, with its tags; locked when `lock` is set.
pub(super) async fn get(
    conn: &mut AsyncPgConnection,
    key: &ConfigKey,
    lock: bool,
) -> Result<Option<ConfigItem>> {
    match load_row(conn, key, lock).await? {
        Some(row) => load_item(conn, row).await.map(Some),
        None => Ok(None),
    }
}

/// Replace a config's tag rows with `tags` (already cleaned: one row each).
async fn write_tags(
    conn: &mut AsyncPgConnection,
    config_id: i64,
    key: &ConfigKey,
    tags: &[String],
) -> Result<()> {
    diesel::delete(tr::table.filter(tr::id.eq(config_id)))
        .execute(conn)
        .await?;
    if !tags.is_empty() {
        let rows: Vec<_> = tags
            .iter()
            .map(|tag| {
                (
                    tr::id.eq(config_id),
                    tr::tag_name.eq(tag),
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
    Ok(())
}

/// The columns a publish writes on insert and update alike.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = ci)]
struct ConfigValues<'a> {
    content: &'a str,
    md5: &'a str,
    gmt_modified: PgTimestamp,
    src_user: &'a str,
    src_ip: &'a str,
    app_name: &'a str,
    c_desc: &'a str,
    c_use: &'a str,
    effect: &'a str,
    config_type: &'a str,
    c_schema: &'a str,
    encrypted_data_key: &'a str,
}

impl<'a> ConfigValues<'a> {
    fn of(item: &'a ConfigItem, now: PgTimestamp) -> Self {
        ConfigValues {
            content: &item.content,
            md5: &item.md5,
            gmt_modified: now,
            src_user: &item.src_user,
            src_ip: &item.src_ip,
            app_name: &item.app_name,
            c_desc: &item.desc,
            c_use: &item.usage,
            effect: &item.effect,
            config_type: &item.config_type,
            c_schema: &item.schema,
            encrypted_data_key: &item.encrypted_data_key,
        }
    }
}

/// A stored id as a column value.
fn row_id(item: &ConfigItem) -> Result<i64> {
    i64::try_from(item.id).map_err(|_| {
        RepoError::Internal(format!("config id {} out of range", item.id).into()).into()
    })
}

/// Insert or update the formal row of a key, with its tags, history and change entry.
pub(super) async fn publish_tx(
    conn: &mut AsyncPgConnection,
    publish: &ConfigPublish,
) -> Result<ConfigItem> {
    let key = &publish.key;
    let operator = &publish.operator;
    for _ in 0..MAX_ROUNDS {
        let stored = get(conn, key, true).await?;
        check_cas(
            publish.cas_md5.as_deref(),
            stored.as_ref().map(|item| item.md5.as_str()),
            &format!("config {}", key.describe()),
        )?;
        let now_ms = db_now(conn).await?;
        let now = timestamp(now_ms);
        let mut item = rules::published_config(publish, stored.as_ref(), 0, now_ms);
        match &stored {
            None => {
                let inserted: Option<i64> = diesel::insert_into(ci::table)
                    .values((
                        ci::data_id.eq(&key.data_id),
                        ci::group_id.eq(&key.group),
                        ci::tenant_id.eq(&key.namespace),
                        ci::gmt_create.eq(now),
                        ConfigValues::of(&item, now),
                    ))
                    .on_conflict_do_nothing()
                    .returning(ci::id)
                    .get_result(conn)
                    .await
                    .optional()?;
                // A concurrent insert of this key committed first: read it (this statement's
                // snapshot sees it) and update instead.
                let Some(config_id) = inserted else { continue };
                item.id = crate::convert::id(config_id, "config id")?;
                if publish.tags.is_some() {
                    write_tags(conn, config_id, key, &item.tags).await?;
                }
                append_history(conn, &item, 0, HistoryOp::Insert, operator, now_ms).await?;
            }
            Some(old) => {
                let config_id = row_id(old)?;
                diesel::update(ci::table.filter(ci::id.eq(config_id)))
                    .set(ConfigValues::of(&item, now))
                    .execute(conn)
                    .await?;
                if publish.tags.is_some() {
                    write_tags(conn, config_id, key, &item.tags).await?;
                }
                append_history(conn, old, config_id, HistoryOp::Update, operator, now_ms).await?;
            }
        }
        record_change(conn, key, now_ms).await?;
        return Ok(item);
    }
    Err(RepoError::Unavailable(
        format!(
            "config {} kept changing under concurrent inserts; retry",
            key.describe()
        )
        .into(),
    )
    .into())
}

/// Delete one locked formal row with its tags, writing history `D` and the change entry.
async fn remove_row(
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
    let Some(item) = get(conn, key, true).await? else {
        return Ok(None);
    };
    let now_ms = db_now(conn).await?;
    remove_row(conn, &item, row_id(&item)?, operator, now_ms).await?;
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

/// The formal configs matching a query's filters (namespace included), unordered.
fn matching(query: &ConfigQuery) -> ci::BoxedQuery<'_, Pg> {
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

/// One page of the configs matching `query`, by id, with the total count.
pub(super) async fn search(
    conn: &mut AsyncPgConnection,
    query: &ConfigQuery,
) -> Result<Page<ConfigItem>> {
    let total: i64 = matching(query).count().get_result(conn).await?;
    let mut items = Vec::new();
    if query.page.page_size > 0 && total > 0 {
        let (limit, offset) = limit_offset(query.page);
        let rows: Vec<ConfigRow> = matching(query)
            .order(ci::id.asc())
            .limit(limit)
            .offset(offset)
            .select(ConfigRow::as_select())
            .load(conn)
            .await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut tags = load_tags(conn, &ids).await?;
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
}
