//! Gray variants of configs: the beta (`config_info_beta`) and named tags
//! (`config_info_tag`). Writes record the key in the change index; no history is written (as
//! Nacos 2.4).

use nacos_core::{ConfigKey, Gray, GrayConfig, GrayPublish, rules};
use sqlx::MySqlConnection;

use super::history::record_change;
use super::rows;
use crate::error::is_duplicate;
use crate::sql::{now_ms, to_second};
use crate::store::Failure;

/// The beta or tag variant of a key, locked for the transaction when `lock` is set.
pub(super) async fn select_gray(
    c: &mut MySqlConnection,
    key: &ConfigKey,
    gray: &Gray,
    lock: bool,
) -> Result<Option<GrayConfig>, sqlx::Error> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row = match gray {
        Gray::Beta => {
            let sql = format!(
                "SELECT {} FROM config_info_beta g WHERE g.data_id = ? AND g.group_id = ? \
                 AND g.tenant_id = ?{lock}",
                *rows::BETA_COLUMNS
            );
            sqlx::query(&sql)
                .bind(&key.data_id)
                .bind(&key.group)
                .bind(&key.namespace)
                .fetch_optional(&mut *c)
                .await?
        }
        Gray::Tag(tag) => {
            let sql = format!(
                "SELECT {} FROM config_info_tag g WHERE g.data_id = ? AND g.group_id = ? \
                 AND g.tenant_id = ? AND g.tag_id = ?{lock}",
                *rows::TAG_COLUMNS
            );
            sqlx::query(&sql)
                .bind(&key.data_id)
                .bind(&key.group)
                .bind(&key.namespace)
                .bind(tag)
                .fetch_optional(&mut *c)
                .await?
        }
    };
    row.as_ref()
        .map(|r| rows::gray(r, *gray == Gray::Beta))
        .transpose()
}

/// Insert or replace a variant and record the change.
pub(super) async fn publish_tx(
    c: &mut MySqlConnection,
    gray: &Gray,
    p: &GrayPublish,
) -> Result<GrayConfig, Failure> {
    let stored = select_gray(c, &p.key, gray, true).await?;
    nacos_core::check_cas(
        p.cas_md5.as_deref(),
        stored.as_ref().map(|variant| variant.md5.as_str()),
        &format!("{gray:?} of config {}", p.key.describe()),
    )?;
    let now = now_ms(c).await?;
    let secs = now.div_euclid(1000);
    let mut variant = rules::published_gray(gray, p, stored.as_ref(), 0, to_second(now));
    let ips = variant.beta_ips.join(",");
    let result =
        match (gray, &stored) {
            (Gray::Beta, Some(_)) => {
                sqlx::query(
                    "UPDATE config_info_beta SET content = ?, md5 = ?, beta_ips = ?, src_ip = ?, \
                 src_user = ?, gmt_modified = FROM_UNIXTIME(?), app_name = ?, \
                 encrypted_data_key = ? WHERE id = ?",
                )
                .bind(&variant.content)
                .bind(&variant.md5)
                .bind(&ips)
                .bind(&variant.src_ip)
                .bind(&variant.src_user)
                .bind(secs)
                .bind(&variant.app_name)
                .bind(&variant.encrypted_data_key)
                .bind(variant.id)
                .execute(&mut *c)
                .await
            }
            (Gray::Beta, None) => sqlx::query(
                "INSERT INTO config_info_beta (data_id, group_id, tenant_id, app_name, content, \
                 beta_ips, md5, src_ip, src_user, gmt_create, gmt_modified, encrypted_data_key) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, FROM_UNIXTIME(?), FROM_UNIXTIME(?), ?)",
            )
            .bind(&variant.key.data_id)
            .bind(&variant.key.group)
            .bind(&variant.key.namespace)
            .bind(&variant.app_name)
            .bind(&variant.content)
            .bind(&ips)
            .bind(&variant.md5)
            .bind(&variant.src_ip)
            .bind(&variant.src_user)
            .bind(secs)
            .bind(secs)
            .bind(&variant.encrypted_data_key)
            .execute(&mut *c)
            .await,
            (Gray::Tag(_), Some(_)) => {
                sqlx::query(
                    "UPDATE config_info_tag SET content = ?, md5 = ?, src_ip = ?, src_user = ?, \
                 gmt_modified = FROM_UNIXTIME(?), app_name = ? WHERE id = ?",
                )
                .bind(&variant.content)
                .bind(&variant.md5)
                .bind(&variant.src_ip)
                .bind(&variant.src_user)
                .bind(secs)
                .bind(&variant.app_name)
                .bind(variant.id)
                .execute(&mut *c)
                .await
            }
            (Gray::Tag(tag), None) => {
                sqlx::query(
                    "INSERT INTO config_info_tag (data_id, group_id, tenant_id, tag_id, app_name, \
                 content, md5, src_ip, src_user, gmt_create, gmt_modified) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, FROM_UNIXTIME(?), FROM_UNIXTIME(?))",
                )
                .bind(&variant.key.data_id)
                .bind(&variant.key.group)
                .bind(&variant.key.namespace)
                .bind(tag)
                .bind(&variant.app_name)
                .bind(&variant.content)
                .bind(&variant.md5)
                .bind(&variant.src_ip)
                .bind(&variant.src_user)
                .bind(secs)
                .bind(secs)
                .execute(&mut *c)
                .await
            }
        };
    match result {
        Ok(done) if stored.is_none() => variant.id = done.last_insert_id(),
        Ok(_) => {}
        Err(e) if stored.is_none() && is_duplicate(&e) => return Err(Failure::Retry),
        Err(e) => return Err(e.into()),
    }
    record_change(c, &variant.key, now).await?;
    Ok(variant)
}

/// Every variant of a key: the beta first, then tags by name.
pub(super) async fn list(
    c: &mut MySqlConnection,
    key: &ConfigKey,
) -> Result<Vec<GrayConfig>, Failure> {
    let mut out = Vec::new();
    if let Some(beta) = select_gray(c, key, &Gray::Beta, false).await? {
        out.push(beta);
    }
    let sql = format!(
        "SELECT {} FROM config_info_tag g WHERE g.data_id = ? AND g.group_id = ? \
         AND g.tenant_id = ? ORDER BY g.tag_id",
        *rows::TAG_COLUMNS
    );
    for row in sqlx::query(&sql)
        .bind(&key.data_id)
        .bind(&key.group)
        .bind(&key.namespace)
        .fetch_all(&mut *c)
        .await?
    {
        out.push(rows::gray(&row, false)?);
    }
    Ok(out)
}

/// Delete a variant and record the change; the deleted variant, or `None`.
pub(super) async fn remove_tx(
    c: &mut MySqlConnection,
    key: &ConfigKey,
    gray: &Gray,
) -> Result<Option<GrayConfig>, Failure> {
    let Some(variant) = select_gray(c, key, gray, true).await? else {
        return Ok(None);
    };
    let table = match gray {
        Gray::Beta => "config_info_beta",
        Gray::Tag(_) => "config_info_tag",
    };
    sqlx::query(&format!("DELETE FROM {table} WHERE id = ?"))
        .bind(variant.id)
        .execute(&mut *c)
        .await?;
    let now = now_ms(c).await?;
    record_change(c, key, now).await?;
    Ok(Some(variant))
}
