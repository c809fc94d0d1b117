//! Gray variants (beta, tag) inside a write transaction.

use nacos_core::rules::updated_field;
use nacos_core::{ConfigKey, Gray, GrayConfig, GrayPublish, md5_hex};
use sqlx::MySqlConnection;

use crate::error::is_duplicate;
use crate::sql::to_second;
use crate::store::Failure;

use super::formal::*;
use super::rows::*;

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
                *BETA_COLUMNS
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
                *TAG_COLUMNS
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
        .map(|r| gray_from_row(r, *gray == Gray::Beta))
        .transpose()
}

pub(super) async fn publish_gray_tx(
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
    let is_beta = *gray == Gray::Beta;
    let (old_app, old_edk) = stored
        .as_ref()
        .map(|s| (s.app_name.clone(), s.encrypted_data_key.clone()))
        .unwrap_or_default();
    let mut variant = GrayConfig {
        id: stored.as_ref().map_or(0, |s| s.id),
        key: p.key.clone(),
        gray: gray.clone(),
        content: p.content.clone(),
        md5: md5_hex(&p.content),
        beta_ips: if is_beta {
            p.beta_ips
                .iter()
                .map(|ip| ip.trim().to_string())
                .filter(|ip| !ip.is_empty())
                .collect()
        } else {
            Vec::new()
        },
        app_name: updated_field(&p.app_name, &old_app),
        // config_info_tag has no encrypted_data_key column (as in Nacos 2.x).
        encrypted_data_key: if is_beta {
            updated_field(&p.encrypted_data_key, &old_edk)
        } else {
            String::new()
        },
        src_user: p.operator.user.clone(),
        src_ip: p.operator.ip.clone(),
        created_ms: stored.as_ref().map_or(to_second(now), |s| s.created_ms),
        modified_ms: to_second(now),
    };
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
