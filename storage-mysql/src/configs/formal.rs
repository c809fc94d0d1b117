//! The formal config inside a write transaction: reading the row, tags, history rows, the
//! change index, publish and delete.

use nacos_core::rules::{clean_tags, updated_field};
use nacos_core::{ConfigItem, ConfigKey, ConfigPublish, HistoryOp, Operator, md5_hex};
use sqlx::MySqlConnection;

use crate::error::is_duplicate;
use crate::sql::{NOW_MS, int, to_second};
use crate::store::Failure;

use super::rows::*;

/// The database clock, epoch ms.
pub(crate) async fn now_ms(c: &mut MySqlConnection) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(NOW_MS).fetch_one(&mut *c).await?;
    int(&row, 0)
}

pub(super) async fn select_config(
    c: &mut MySqlConnection,
    key: &ConfigKey,
    lock: bool,
) -> Result<Option<ConfigItem>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM config_info c WHERE c.{KEY_WHERE_C}{}",
        *CONFIG_COLUMNS,
        if lock { " FOR UPDATE" } else { "" },
        KEY_WHERE_C = "data_id = ? AND c.group_id = ? AND c.tenant_id = ?"
    );
    let row = sqlx::query(&sql)
        .bind(&key.data_id)
        .bind(&key.group)
        .bind(&key.namespace)
        .fetch_optional(&mut *c)
        .await?;
    row.as_ref().map(config_from_row).transpose()
}

pub(super) async fn select_config_by_id(
    c: &mut MySqlConnection,
    config_id: u64,
) -> Result<Option<ConfigItem>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM config_info c WHERE c.id = ? FOR UPDATE",
        *CONFIG_COLUMNS
    );
    let row = sqlx::query(&sql)
        .bind(config_id)
        .fetch_optional(&mut *c)
        .await?;
    row.as_ref().map(config_from_row).transpose()
}

pub(super) async fn write_tags(
    c: &mut MySqlConnection,
    config_id: u64,
    key: &ConfigKey,
    tags: &[String],
) -> Result<(), sqlx::Error> {
    if tags.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO config_tags_relation (id, tag_name, tag_type, data_id, group_id, tenant_id) \
         VALUES {}",
        vec!["(?, ?, '', ?, ?, ?)"; tags.len()].join(", ")
    );
    let mut query = sqlx::query(&sql);
    for tag in tags {
        query = query
            .bind(config_id)
            .bind(tag)
            .bind(&key.data_id)
            .bind(&key.group)
            .bind(&key.namespace);
    }
    query.execute(&mut *c).await?;
    Ok(())
}

pub(super) async fn delete_tags(
    c: &mut MySqlConnection,
    config_id: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM config_tags_relation WHERE id = ?")
        .bind(config_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

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

pub(super) async fn publish_tx(
    c: &mut MySqlConnection,
    p: &ConfigPublish,
) -> Result<ConfigItem, Failure> {
    let stored = select_config(c, &p.key, true).await?;
    nacos_core::check_cas(
        p.cas_md5.as_deref(),
        stored.as_ref().map(|item| item.md5.as_str()),
        &format!("config {}", p.key.describe()),
    )?;
    let now = now_ms(c).await?;
    let secs = now.div_euclid(1000);
    let operator = &p.operator;
    let md5 = md5_hex(&p.content);
    let item = match stored {
        None => {
            let mut item = ConfigItem {
                id: 0,
                key: p.key.clone(),
                content: p.content.clone(),
                md5,
                config_type: p.config_type.clone().unwrap_or_default(),
                app_name: p.app_name.clone().unwrap_or_default(),
                desc: p.desc.clone().unwrap_or_default(),
                usage: p.usage.clone().unwrap_or_default(),
                effect: p.effect.clone().unwrap_or_default(),
                schema: p.schema.clone().unwrap_or_default(),
                tags: clean_tags(p.tags.as_deref().unwrap_or_default()),
                encrypted_data_key: p.encrypted_data_key.clone().unwrap_or_default(),
                src_user: operator.user.clone(),
                src_ip: operator.ip.clone(),
                created_ms: to_second(now),
                modified_ms: to_second(now),
            };
            let inserted = sqlx::query(
                "INSERT INTO config_info (data_id, group_id, tenant_id, app_name, content, md5, \
                 src_ip, src_user, gmt_create, gmt_modified, c_desc, c_use, effect, type, \
                 c_schema, encrypted_data_key) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, FROM_UNIXTIME(?), FROM_UNIXTIME(?), ?, ?, ?, ?, \
                 ?, ?)",
            )
            .bind(&item.key.data_id)
            .bind(&item.key.group)
            .bind(&item.key.namespace)
            .bind(&item.app_name)
            .bind(&item.content)
            .bind(&item.md5)
            .bind(&item.src_ip)
            .bind(&item.src_user)
            .bind(secs)
            .bind(secs)
            .bind(&item.desc)
            .bind(&item.usage)
            .bind(&item.effect)
            .bind(&item.config_type)
            .bind(&item.schema)
            .bind(&item.encrypted_data_key)
            .execute(&mut *c)
            .await;
            item.id = match inserted {
                Ok(done) => done.last_insert_id(),
                // A concurrent publish created the key first: start over and update it.
                Err(e) if is_duplicate(&e) => return Err(Failure::Retry),
                Err(e) => return Err(e.into()),
            };
            write_tags(c, item.id, &item.key, &item.tags).await?;
            append_history(c, &item, 0, HistoryOp::Insert, operator, now).await?;
            item
        }
        Some(old) => {
            let item = ConfigItem {
                id: old.id,
                key: p.key.clone(),
                content: p.content.clone(),
                md5,
                config_type: updated_field(&p.config_type, &old.config_type),
                app_name: updated_field(&p.app_name, &old.app_name),
                desc: updated_field(&p.desc, &old.desc),
                usage: updated_field(&p.usage, &old.usage),
                effect: updated_field(&p.effect, &old.effect),
                schema: updated_field(&p.schema, &old.schema),
                tags: match &p.tags {
                    Some(tags) => clean_tags(tags),
                    None => old.tags.clone(),
                },
                encrypted_data_key: updated_field(&p.encrypted_data_key, &old.encrypted_data_key),
                src_user: operator.user.clone(),
                src_ip: operator.ip.clone(),
                created_ms: old.created_ms,
                modified_ms: to_second(now),
            };
            sqlx::query(
                "UPDATE config_info SET content = ?, md5 = ?, src_ip = ?, src_user = ?, \
                 gmt_modified = FROM_UNIXTIME(?), app_name = ?, c_desc = ?, c_use = ?, \
                 effect = ?, type = ?, c_schema = ?, encrypted_data_key = ? WHERE id = ?",
            )
            .bind(&item.content)
            .bind(&item.md5)
            .bind(&item.src_ip)
            .bind(&item.src_user)
            .bind(secs)
            .bind(&item.app_name)
            .bind(&item.desc)
            .bind(&item.usage)
            .bind(&item.effect)
            .bind(&item.config_type)
            .bind(&item.schema)
            .bind(&item.encrypted_data_key)
            .bind(item.id)
            .execute(&mut *c)
            .await?;
            if p.tags.is_some() {
                delete_tags(c, item.id).await?;
                write_tags(c, item.id, &item.key, &item.tags).await?;
            }
            append_history(c, &old, old.id, HistoryOp::Update, operator, now).await?;
            item
        }
    };
    record_change(c, &item.key, now).await?;
    Ok(item)
}

/// Delete a locked row with its tags, append history D, record the change.
pub(super) async fn delete_config(
    c: &mut MySqlConnection,
    item: &ConfigItem,
    operator: &Operator,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM config_info WHERE id = ?")
        .bind(item.id)
        .execute(&mut *c)
        .await?;
    delete_tags(c, item.id).await?;
    append_history(c, item, item.id, HistoryOp::Delete, operator, now).await?;
    record_change(c, &item.key, now).await
}
