//! Gray variants of configs: the beta (`config_info_beta`) and named tags
//! (`config_info_tag`). Writes record the key in the change index; no history is written (as
//! Nacos 2.4).

use diesel::pg::data_types::PgTimestamp;
use diesel::{
    AsChangeset, ExpressionMethods, Insertable, OptionalExtension, QueryDsl, SelectableHelper,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use nacos_core::{ConfigKey, Gray, GrayConfig, GrayPublish, RepoError, rules};

use super::history::record_change;
use super::rows::{BetaRow, TagRow};
use super::{MAX_ROUNDS, check_cas};
use crate::convert::{db_now, timestamp};
use crate::error::Result;
use crate::schema::{config_info_beta as cb, config_info_tag as ct};

/// The beta or tag variant of a key, locked for the rest of the transaction when `lock` is
/// set.
pub(super) async fn get(
    conn: &mut AsyncPgConnection,
    key: &ConfigKey,
    gray: &Gray,
    lock: bool,
) -> Result<Option<GrayConfig>> {
    match gray {
        Gray::Beta => {
            let query = cb::table
                .filter(cb::data_id.eq(&key.data_id))
                .filter(cb::group_id.eq(&key.group))
                .filter(cb::tenant_id.eq(&key.namespace))
                .select(BetaRow::as_select());
            let row = if lock {
                query.for_update().first(conn).await.optional()?
            } else {
                query.first(conn).await.optional()?
            };
            row.map(BetaRow::into_gray).transpose()
        }
        Gray::Tag(tag) => {
            let query = ct::table
                .filter(ct::data_id.eq(&key.data_id))
                .filter(ct::group_id.eq(&key.group))
                .filter(ct::tenant_id.eq(&key.namespace))
                .filter(ct::tag_id.eq(tag))
                .select(TagRow::as_select());
            let row = if lock {
                query.for_update().first(conn).await.optional()?
            } else {
                query.first(conn).await.optional()?
            };
            row.map(TagRow::into_gray).transpose()
        }
    }
}

/// Every variant of a key: the beta first, then tags by name (byte order).
pub(super) async fn list(conn: &mut AsyncPgConnection, key: &ConfigKey) -> Result<Vec<GrayConfig>> {
    let beta = get(conn, key, &Gray::Beta, false).await?;
    let mut tags: Vec<TagRow> = ct::table
        .filter(ct::data_id.eq(&key.data_id))
        .filter(ct::group_id.eq(&key.group))
        .filter(ct::tenant_id.eq(&key.namespace))
        .select(TagRow::as_select())
        .load(conn)
        .await?;
    // Byte order of tag names, whatever the database's collation.
    tags.sort_by(|a, b| a.tag_id.cmp(&b.tag_id));
    let mut out = Vec::with_capacity(tags.len() + 1);
    out.extend(beta);
    for tag in tags {
        out.push(tag.into_gray()?);
    }
    Ok(out)
}

/// A stored variant id as a column value.
fn row_id(variant: &GrayConfig) -> Result<i64> {
    i64::try_from(variant.id).map_err(|_| {
        RepoError::Internal(format!("gray config id {} out of range", variant.id).into()).into()
    })
}

/// The `config_info_beta` columns a publish writes on insert and update alike.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = cb)]
struct BetaValues<'a> {
    app_name: &'a str,
    content: &'a str,
    beta_ips: String,
    md5: &'a str,
    gmt_modified: PgTimestamp,
    src_user: &'a str,
    src_ip: &'a str,
    encrypted_data_key: &'a str,
}

/// The `config_info_tag` columns a publish writes on insert and update alike.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = ct)]
struct TagValues<'a> {
    app_name: &'a str,
    content: &'a str,
    md5: &'a str,
    gmt_modified: PgTimestamp,
    src_user: &'a str,
    src_ip: &'a str,
}

impl<'a> BetaValues<'a> {
    fn of(variant: &'a GrayConfig) -> Self {
        BetaValues {
            app_name: &variant.app_name,
            content: &variant.content,
            beta_ips: variant.beta_ips.join(","),
            md5: &variant.md5,
            gmt_modified: timestamp(variant.modified_ms),
            src_user: &variant.src_user,
            src_ip: &variant.src_ip,
            encrypted_data_key: &variant.encrypted_data_key,
        }
    }
}

impl<'a> TagValues<'a> {
    fn of(variant: &'a GrayConfig) -> Self {
        TagValues {
            app_name: &variant.app_name,
            content: &variant.content,
            md5: &variant.md5,
            gmt_modified: timestamp(variant.modified_ms),
            src_user: &variant.src_user,
            src_ip: &variant.src_ip,
        }
    }
}

/// Insert `variant`; its new id, or `None` when a concurrent insert of the same variant
/// committed first.
async fn insert(conn: &mut AsyncPgConnection, variant: &GrayConfig) -> Result<Option<i64>> {
    let key = &variant.key;
    let created = timestamp(variant.created_ms);
    let inserted = match &variant.gray {
        Gray::Beta => diesel::insert_into(cb::table)
            .values((
                cb::data_id.eq(&key.data_id),
                cb::group_id.eq(&key.group),
                cb::tenant_id.eq(&key.namespace),
                cb::gmt_create.eq(created),
                BetaValues::of(variant),
            ))
            .on_conflict_do_nothing()
            .returning(cb::id)
            .get_result(conn)
            .await
            .optional()?,
        Gray::Tag(tag) => diesel::insert_into(ct::table)
            .values((
                ct::data_id.eq(&key.data_id),
                ct::group_id.eq(&key.group),
                ct::tenant_id.eq(&key.namespace),
                ct::tag_id.eq(tag),
                ct::gmt_create.eq(created),
                TagValues::of(variant),
            ))
            .on_conflict_do_nothing()
            .returning(ct::id)
            .get_result(conn)
            .await
            .optional()?,
    };
    Ok(inserted)
}

/// Overwrite the stored (locked) row of `variant`.
async fn update(conn: &mut AsyncPgConnection, variant: &GrayConfig) -> Result<()> {
    let id = row_id(variant)?;
    match &variant.gray {
        Gray::Beta => {
            diesel::update(cb::table.filter(cb::id.eq(id)))
                .set(BetaValues::of(variant))
                .execute(conn)
                .await?
        }
        Gray::Tag(_) => {
            diesel::update(ct::table.filter(ct::id.eq(id)))
                .set(TagValues::of(variant))
                .execute(conn)
                .await?
        }
    };
    Ok(())
}

/// Insert or replace a variant and record the change.
pub(super) async fn publish_tx(
    conn: &mut AsyncPgConnection,
    gray: &Gray,
    publish: &GrayPublish,
) -> Result<GrayConfig> {
    let key = &publish.key;
    let what = format!("{gray:?} of config {}", key.describe());
    for _ in 0..MAX_ROUNDS {
        let stored = get(conn, key, gray, true).await?;
        check_cas(
            publish.cas_md5.as_deref(),
            stored.as_ref().map(|s| s.md5.as_str()),
            &what,
        )?;
        let now_ms = db_now(conn).await?;
        let mut variant = rules::published_gray(gray, publish, stored.as_ref(), 0, now_ms);
        if stored.is_some() {
            update(conn, &variant).await?;
        } else {
            // None: a concurrent insert of this variant committed first; go round and update it.
            let Some(id) = insert(conn, &variant).await? else {
                continue;
            };
            variant.id = crate::convert::id(id, "gray config id")?;
        }
        record_change(conn, key, now_ms).await?;
        return Ok(variant);
    }
    Err(RepoError::Unavailable(
        format!("{what} kept changing under concurrent inserts; retry").into(),
    )
    .into())
}

/// Delete a variant and record the change; the deleted variant, or `None`.
pub(super) async fn remove_tx(
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
