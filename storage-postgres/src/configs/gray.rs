//! Gray variants (beta, tag) inside a write transaction.

use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use nacos_core::{ConfigKey, Gray, GrayConfig, GrayPublish, RepoError, md5_hex};

use crate::convert::{db_now, timestamp};
use crate::error::Result;
use crate::schema::{config_info_beta as cb, config_info_tag as ct};

use super::formal::*;
use super::rows::*;

pub(super) async fn publish_gray_tx(
    conn: &mut AsyncPgConnection,
    gray: &Gray,
    publish: &GrayPublish,
) -> Result<GrayConfig> {
    let key = &publish.key;
    let operator = &publish.operator;
    let md5 = md5_hex(&publish.content);
    let what = format!("{gray:?} of config {}", key.describe());
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

pub(super) async fn remove_gray_tx(
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
