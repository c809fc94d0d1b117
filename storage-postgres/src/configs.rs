//! [`ConfigRepo`] on Nacos's config tables: `config_info` with `config_tags_relation`,
//! `his_config_info`, `config_info_beta`, `config_info_tag`, plus this server's
//! `config_changes` index.
//!
//! Writes lock the key's row (`SELECT … FOR UPDATE`) before deciding anything, so CAS checks
//! and the insert-or-update choice are race-free; an insert that loses a race with a concurrent
//! insert of the same key (`ON CONFLICT DO NOTHING` returns no row) re-reads and becomes an
//! update, inside the same transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use diesel::pg::Pg;
use diesel::pg::data_types::PgTimestamp;
use diesel::upsert::excluded;
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
    TextExpressionMethods,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use nacos_core::{
    ConfigChange, ConfigItem, ConfigKey, ConfigPublish, ConfigQuery, ConfigRepo, Gray, GrayConfig,
    GrayPublish, HistoryEntry, HistoryOp, Operator, Page, PageRequest, RepoError, md5_hex,
};

use crate::PgStore;
use crate::convert::{
    TextFilter, db_id, db_now, dedup, id, limit_offset, millis, split_list, text_filter, timestamp,
};
use crate::error::Result;
use crate::schema::{
    config_changes as cc, config_info as ci, config_info_beta as cb, config_info_tag as ct,
    config_tags_relation as tr, his_config_info as h,
};

/// An insert that keeps losing races to concurrent inserts of the same key gives up after this
/// many rounds (each lost round means another writer committed that key meanwhile).
const MAX_ROUNDS: usize = 8;

#[derive(Queryable, Selectable)]
#[diesel(table_name = ci, check_for_backend(Pg))]
struct ConfigRow {
    id: i64,
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
    fn into_item(self, tags: Vec<String>) -> Result<ConfigItem> {
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
struct HistoryRow {
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
    fn into_entry(self) -> Result<HistoryEntry> {
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
struct BetaRow {
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
    fn into_gray(self) -> Result<GrayConfig> {
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
struct TagRow {
    id: i64,
    data_id: String,
    group_id: String,
    tenant_id: Option<String>,
    tag_id: String,
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
    fn into_gray(self) -> Result<GrayConfig> {
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

/// `(namespace, group, dataId)` for messages.
fn describe(key: &ConfigKey) -> String {
    format!(
        "(namespace {:?}, group {:?}, dataId {:?})",
        key.namespace, key.group, key.data_id
    )
}

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
async fn load_tags(conn: &mut AsyncPgConnection, ids: &[i64]) -> Result<HashMap<i64, Vec<String>>> {
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

/// Replace a config's tag rows.
async fn write_tags(
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
async fn append_history(
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
async fn record_change(conn: &mut AsyncPgConnection, key: &ConfigKey, now_ms: i64) -> Result<()> {
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

fn check_cas(expected: Option<&String>, stored: Option<&str>, what: &str) -> Result<()> {
    Ok(nacos_core::check_cas(
        expected.map(String::as_str),
        stored,
        what,
    )?)
}

async fn publish_tx(conn: &mut AsyncPgConnection, publish: &ConfigPublish) -> Result<ConfigItem> {
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
            &format!("config {}", describe(key)),
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
                let keep = |new: &Option<String>, stored: &str| -> String {
                    new.clone().unwrap_or_else(|| stored.to_string())
                };
                let row: ConfigRow = diesel::update(ci::table.filter(ci::id.eq(old_id)))
                    .set((
                        ci::content.eq(&publish.content),
                        ci::md5.eq(&md5),
                        ci::gmt_modified.eq(now),
                        ci::src_user.eq(&operator.user),
                        ci::src_ip.eq(&operator.ip),
                        ci::app_name.eq(keep(&publish.app_name, &old.app_name)),
                        ci::c_desc.eq(keep(&publish.desc, &old.desc)),
                        ci::c_use.eq(keep(&publish.usage, &old.usage)),
                        ci::effect.eq(keep(&publish.effect, &old.effect)),
                        ci::config_type.eq(keep(&publish.config_type, &old.config_type)),
                        ci::c_schema.eq(keep(&publish.schema, &old.schema)),
                        ci::encrypted_data_key
                            .eq(keep(&publish.encrypted_data_key, &old.encrypted_data_key)),
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
        describe(key)
    ))
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

async fn remove_tx(
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

async fn remove_by_ids_tx(
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

async fn publish_gray_tx(
    conn: &mut AsyncPgConnection,
    gray: &Gray,
    publish: &GrayPublish,
) -> Result<GrayConfig> {
    let key = &publish.key;
    let operator = &publish.operator;
    let md5 = md5_hex(&publish.content);
    let what = format!("{gray:?} of config {}", describe(key));
    for _ in 0..MAX_ROUNDS {
        let (written, now_ms) = match gray {
            Gray::Beta => {
                let stored: Option<BetaRow> = cb::table
                    .filter(cb::data_id.eq(&key.data_id))
                    .filter(cb::group_id.eq(&key.group))
                    .filter(cb::tenant_id.eq(&key.namespace))
                    .select(BetaRow::as_select())
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?;
                let stored_md5 = stored
                    .as_ref()
                    .map(|r| r.md5.clone().unwrap_or_else(|| md5_hex(&r.content)));
                check_cas(publish.cas_md5.as_ref(), stored_md5.as_deref(), &what)?;
                let now_ms = db_now(conn).await?;
                let now = timestamp(now_ms);
                let ips = publish.beta_ips.join(",");
                let written = match stored {
                    None => diesel::insert_into(cb::table)
                        .values((
                            cb::data_id.eq(&key.data_id),
                            cb::group_id.eq(&key.group),
                            cb::tenant_id.eq(&key.namespace),
                            cb::app_name.eq(publish.app_name.as_deref().unwrap_or_default()),
                            cb::content.eq(&publish.content),
                            cb::beta_ips.eq(&ips),
                            cb::md5.eq(&md5),
                            cb::gmt_create.eq(now),
                            cb::gmt_modified.eq(now),
                            cb::src_user.eq(&operator.user),
                            cb::src_ip.eq(&operator.ip),
                            cb::encrypted_data_key
                                .eq(publish.encrypted_data_key.as_deref().unwrap_or_default()),
                        ))
                        .on_conflict_do_nothing()
                        .returning(BetaRow::as_returning())
                        .get_result(conn)
                        .await
                        .optional()?,
                    Some(old) => {
                        let app_name = publish
                            .app_name
                            .clone()
                            .or(old.app_name)
                            .unwrap_or_default();
                        let edk = publish
                            .encrypted_data_key
                            .clone()
                            .unwrap_or(old.encrypted_data_key);
                        Some(
                            diesel::update(cb::table.filter(cb::id.eq(old.id)))
                                .set((
                                    cb::app_name.eq(app_name),
                                    cb::content.eq(&publish.content),
                                    cb::beta_ips.eq(&ips),
                                    cb::md5.eq(&md5),
                                    cb::gmt_modified.eq(now),
                                    cb::src_user.eq(&operator.user),
                                    cb::src_ip.eq(&operator.ip),
                                    cb::encrypted_data_key.eq(edk),
                                ))
                                .returning(BetaRow::as_returning())
                                .get_result(conn)
                                .await?,
                        )
                    }
                };
                (written.map(BetaRow::into_gray).transpose()?, now_ms)
            }
            Gray::Tag(tag) => {
                let stored: Option<TagRow> = ct::table
                    .filter(ct::data_id.eq(&key.data_id))
                    .filter(ct::group_id.eq(&key.group))
                    .filter(ct::tenant_id.eq(&key.namespace))
                    .filter(ct::tag_id.eq(tag))
                    .select(TagRow::as_select())
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?;
                let stored_md5 = stored
                    .as_ref()
                    .map(|r| r.md5.clone().unwrap_or_else(|| md5_hex(&r.content)));
                check_cas(publish.cas_md5.as_ref(), stored_md5.as_deref(), &what)?;
                let now_ms = db_now(conn).await?;
                let now = timestamp(now_ms);
                let written = match stored {
                    None => diesel::insert_into(ct::table)
                        .values((
                            ct::data_id.eq(&key.data_id),
                            ct::group_id.eq(&key.group),
                            ct::tenant_id.eq(&key.namespace),
                            ct::tag_id.eq(tag),
                            ct::app_name.eq(publish.app_name.as_deref().unwrap_or_default()),
                            ct::content.eq(&publish.content),
                            ct::md5.eq(&md5),
                            ct::gmt_create.eq(now),
                            ct::gmt_modified.eq(now),
                            ct::src_user.eq(&operator.user),
                            ct::src_ip.eq(&operator.ip),
                        ))
                        .on_conflict_do_nothing()
                        .returning(TagRow::as_returning())
                        .get_result(conn)
                        .await
                        .optional()?,
                    Some(old) => {
                        let app_name = publish
                            .app_name
                            .clone()
                            .or(old.app_name)
                            .unwrap_or_default();
                        Some(
                            diesel::update(ct::table.filter(ct::id.eq(old.id)))
                                .set((
                                    ct::app_name.eq(app_name),
                                    ct::content.eq(&publish.content),
                                    ct::md5.eq(&md5),
                                    ct::gmt_modified.eq(now),
                                    ct::src_user.eq(&operator.user),
                                    ct::src_ip.eq(&operator.ip),
                                ))
                                .returning(TagRow::as_returning())
                                .get_result(conn)
                                .await?,
                        )
                    }
                };
                (written.map(TagRow::into_gray).transpose()?, now_ms)
            }
        };
        // None: a concurrent insert of this variant committed first; go round and update it.
        if let Some(variant) = written {
            record_change(conn, key, now_ms).await?;
            return Ok(variant);
        }
    }
    Err(RepoError::Unavailable(format!(
        "{what} kept changing under concurrent inserts; retry"
    ))
    .into())
}

async fn remove_gray_tx(
    conn: &mut AsyncPgConnection,
    key: &ConfigKey,
    gray: &Gray,
) -> Result<Option<GrayConfig>> {
    let removed = match gray {
        Gray::Beta => diesel::delete(
            cb::table
                .filter(cb::data_id.eq(&key.data_id))
                .filter(cb::group_id.eq(&key.group))
                .filter(cb::tenant_id.eq(&key.namespace)),
        )
        .returning(BetaRow::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .map(BetaRow::into_gray)
        .transpose()?,
        Gray::Tag(tag) => diesel::delete(
            ct::table
                .filter(ct::data_id.eq(&key.data_id))
                .filter(ct::group_id.eq(&key.group))
                .filter(ct::tenant_id.eq(&key.namespace))
                .filter(ct::tag_id.eq(tag)),
        )
        .returning(TagRow::as_returning())
        .get_result(conn)
        .await
        .optional()?
        .map(TagRow::into_gray)
        .transpose()?,
    };
    if removed.is_some() {
        let now_ms = db_now(conn).await?;
        record_change(conn, key, now_ms).await?;
    }
    Ok(removed)
}

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
