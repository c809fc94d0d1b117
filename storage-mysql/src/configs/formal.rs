//! Formal configs (`config_info` with `config_tags_relation`): reads, search, and the publish
//! and remove transactions (each writes its history row and change entry too).

use nacos_core::{
    ConfigItem, ConfigKey, ConfigPublish, ConfigQuery, HistoryOp, MatchMode, Operator, Page, rules,
};
use sqlx::MySqlConnection;

use super::history::{append_history, record_change};
use super::rows;
use crate::error::is_duplicate;
use crate::sql::{filter, int, limit_offset, now_ms, placeholders, to_second};
use crate::store::Failure;

/// The formal config of a key, locked for the transaction when `lock` is set.
pub(super) async fn select_config(
    c: &mut MySqlConnection,
    key: &ConfigKey,
    lock: bool,
) -> Result<Option<ConfigItem>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM config_info c \
         WHERE c.data_id = ? AND c.group_id = ? AND c.tenant_id = ?{}",
        *rows::CONFIG_COLUMNS,
        if lock { " FOR UPDATE" } else { "" },
    );
    let row = sqlx::query(&sql)
        .bind(&key.data_id)
        .bind(&key.group)
        .bind(&key.namespace)
        .fetch_optional(&mut *c)
        .await?;
    row.as_ref().map(rows::config).transpose()
}

/// The formal config with this id, locked for the transaction.
async fn select_config_by_id(
    c: &mut MySqlConnection,
    config_id: u64,
) -> Result<Option<ConfigItem>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM config_info c WHERE c.id = ? FOR UPDATE",
        *rows::CONFIG_COLUMNS
    );
    let row = sqlx::query(&sql)
        .bind(config_id)
        .fetch_optional(&mut *c)
        .await?;
    row.as_ref().map(rows::config).transpose()
}

/// One `config_tags_relation` row per (already cleaned) tag.
async fn write_tags(
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

async fn delete_tags(c: &mut MySqlConnection, config_id: u64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM config_tags_relation WHERE id = ?")
        .bind(config_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Insert or update the formal row of a key, with its tags, history and change entry.
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
    let mut item = rules::published_config(p, stored.as_ref(), 0, to_second(now));
    match &stored {
        None => {
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
        }
        Some(old) => {
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
            append_history(c, old, old.id, HistoryOp::Update, operator, now).await?;
        }
    }
    record_change(c, &item.key, now).await?;
    Ok(item)
}

/// Delete a locked row with its tags, append history D, record the change.
async fn delete_config(
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

/// The `WHERE` clause and binds of a config search.
fn search_where(query: &ConfigQuery) -> (String, Vec<String>) {
    let mut conditions = vec!["c.tenant_id = ?".to_string()];
    let mut binds = vec![query.namespace.clone()];
    let mut add = |found: Option<(String, String)>| {
        if let Some((condition, bind)) = found {
            conditions.push(condition);
            binds.push(bind);
        }
    };
    add(filter("c.data_id", &query.data_id, query.mode));
    add(filter("c.group_id", &query.group, query.mode));
    add(filter("c.app_name", &query.app_name, MatchMode::Exact));
    add(filter("c.content", &query.content, query.mode));
    if !query.types.is_empty() {
        conditions.push(format!("c.type IN ({})", placeholders(query.types.len())));
        binds.extend(query.types.iter().cloned());
    }
    if !query.tags.is_empty() {
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM config_tags_relation t WHERE t.id = c.id AND t.tag_name IN \
             ({}))",
            placeholders(query.tags.len())
        ));
        binds.extend(query.tags.iter().cloned());
    }
    (conditions.join(" AND "), binds)
}

/// One page of the configs matching `query`, by id, with the total count.
pub(super) async fn search(
    c: &mut MySqlConnection,
    query: &ConfigQuery,
) -> Result<Page<ConfigItem>, Failure> {
    let (condition, binds) = search_where(query);
    let count_sql = format!("SELECT COUNT(*) AS total FROM config_info c WHERE {condition}");
    let mut count = sqlx::query(&count_sql);
    for bind in &binds {
        count = count.bind(bind);
    }
    let total = int(&count.fetch_one(&mut *c).await?, "total")?;
    let total = u64::try_from(total).unwrap_or_default();
    let mut items = Vec::new();
    if query.page.page_size > 0 && (query.page.offset() as u64) < total {
        let sql = format!(
            "SELECT {} FROM config_info c WHERE {condition} ORDER BY c.id LIMIT ? OFFSET ?",
            *rows::CONFIG_COLUMNS
        );
        let mut rows = sqlx::query(&sql);
        for bind in &binds {
            rows = rows.bind(bind);
        }
        let (size, offset) = limit_offset(query.page);
        for row in rows.bind(size).bind(offset).fetch_all(&mut *c).await? {
            items.push(rows::config(&row)?);
        }
    }
    Ok(Page::new(total, query.page, items))
}

/// Delete the formal config of a key (see [`delete_config`]); the deleted row, or `None`.
pub(super) async fn remove_tx(
    c: &mut MySqlConnection,
    key: &ConfigKey,
    operator: &Operator,
) -> Result<Option<ConfigItem>, Failure> {
    let Some(item) = select_config(c, key, true).await? else {
        return Ok(None);
    };
    let now = now_ms(c).await?;
    delete_config(c, &item, operator, now).await?;
    Ok(Some(item))
}

/// Delete the formal configs with these ids (unknown ids skipped); the deleted rows.
pub(super) async fn remove_by_ids_tx(
    c: &mut MySqlConnection,
    ids: &[u64],
    operator: &Operator,
) -> Result<Vec<ConfigItem>, Failure> {
    let now = now_ms(c).await?;
    let mut removed = Vec::new();
    for config_id in ids {
        if let Some(item) = select_config_by_id(c, *config_id).await? {
            delete_config(c, &item, operator, now).await?;
            removed.push(item);
        }
    }
    Ok(removed)
}
