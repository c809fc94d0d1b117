//! [`ConfigRepo`] on Nacos's config tables: `config_info`, `config_tags_relation`,
//! `his_config_info`, `config_info_beta`, `config_info_tag`, plus this server's
//! `ext_config_change` (the change index).
//!
//! Rows are written the way Nacos 2.x writes them: `tenant_id` `''` for the public namespace,
//! the lowercase hex `md5`, `gmt_*` datetimes from the database clock, one
//! `config_tags_relation` row per tag (`tag_type` `''`), history `I` rows with `id` 0 and the
//! new content, `U` rows with the previous content, `D` rows with the deleted content. A
//! `datetime` keeps whole seconds, so times read back (and returned by writes) are whole
//! seconds; the change index keeps milliseconds.

use std::sync::LazyLock;

use async_trait::async_trait;
use nacos_core::{
    ConfigChange, ConfigItem, ConfigKey, ConfigPublish, ConfigQuery, ConfigRepo, Gray, GrayConfig,
    GrayPublish, HistoryEntry, HistoryOp, MatchMode, Operator, Page, PageRequest, RepoResult,
    md5_hex,
};
use sqlx::MySqlConnection;
use sqlx::mysql::MySqlRow;

use crate::error::is_duplicate;
use crate::sql::{NOW_MS, filter, id, int, ms_of, placeholders, text, to_second};
use crate::store::{Failure, MysqlStore, Route};

// Every selected column is named, and rows are read by those names (`rows.rs`).
static CONFIG_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CAST(c.id AS SIGNED) AS id, c.data_id AS data_id, c.group_id AS group_id, \
         c.tenant_id AS tenant_id, c.content AS content, c.md5 AS md5, c.type AS type, \
         c.app_name AS app_name, c.c_desc AS c_desc, c.c_use AS c_use, c.effect AS effect, \
         c.c_schema AS c_schema, c.encrypted_data_key AS encrypted_data_key, \
         c.src_user AS src_user, c.src_ip AS src_ip, {} AS created_ms, {} AS modified_ms, \
         (SELECT GROUP_CONCAT(t.tag_name ORDER BY t.nid SEPARATOR ',') \
          FROM config_tags_relation t WHERE t.id = c.id) AS tags",
        ms_of("c.gmt_create"),
        ms_of("c.gmt_modified")
    )
});

static HISTORY_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CAST(h.nid AS SIGNED) AS nid, CAST(h.id AS SIGNED) AS id, h.data_id AS data_id, \
         h.group_id AS group_id, h.tenant_id AS tenant_id, h.content AS content, h.md5 AS md5, \
         h.app_name AS app_name, h.src_user AS src_user, h.src_ip AS src_ip, \
         h.op_type AS op_type, h.encrypted_data_key AS encrypted_data_key, \
         {} AS created_ms, {} AS modified_ms",
        ms_of("h.gmt_create"),
        ms_of("h.gmt_modified")
    )
});

/// Beta and tag rows share one shape: `gray_marker` is `beta_ips` or `tag_id`.
static BETA_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CAST(g.id AS SIGNED) AS id, g.data_id AS data_id, g.group_id AS group_id, \
         g.tenant_id AS tenant_id, g.content AS content, g.md5 AS md5, \
         g.beta_ips AS gray_marker, g.app_name AS app_name, \
         g.encrypted_data_key AS encrypted_data_key, g.src_user AS src_user, \
         g.src_ip AS src_ip, {} AS created_ms, {} AS modified_ms",
        ms_of("g.gmt_create"),
        ms_of("g.gmt_modified")
    )
});

static TAG_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CAST(g.id AS SIGNED) AS id, g.data_id AS data_id, g.group_id AS group_id, \
         g.tenant_id AS tenant_id, g.content AS content, g.md5 AS md5, \
         g.tag_id AS gray_marker, g.app_name AS app_name, '' AS encrypted_data_key, \
         g.src_user AS src_user, g.src_ip AS src_ip, {} AS created_ms, {} AS modified_ms",
        ms_of("g.gmt_create"),
        ms_of("g.gmt_modified")
    )
});

const KEY_WHERE: &str = "data_id = ? AND group_id = ? AND tenant_id = ?";

fn md5_or_compute(stored: String, content: &str) -> String {
    if stored.is_empty() {
        md5_hex(content)
    } else {
        stored
    }
}

fn key_of(row: &MySqlRow) -> Result<ConfigKey, sqlx::Error> {
    Ok(ConfigKey::new(
        text(row, "tenant_id")?,
        text(row, "group_id")?,
        text(row, "data_id")?,
    ))
}

fn config_from_row(row: &MySqlRow) -> Result<ConfigItem, sqlx::Error> {
    let content = text(row, "content")?;
    Ok(ConfigItem {
        id: id(row, "id")?,
        key: key_of(row)?,
        md5: md5_or_compute(text(row, "md5")?, &content),
        content,
        config_type: text(row, "type")?,
        app_name: text(row, "app_name")?,
        desc: text(row, "c_desc")?,
        usage: text(row, "c_use")?,
        effect: text(row, "effect")?,
        schema: text(row, "c_schema")?,
        encrypted_data_key: text(row, "encrypted_data_key")?,
        src_user: text(row, "src_user")?,
        src_ip: text(row, "src_ip")?,
        created_ms: int(row, "created_ms")?,
        modified_ms: int(row, "modified_ms")?,
        tags: text(row, "tags")?
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

fn history_from_row(row: &MySqlRow) -> Result<HistoryEntry, sqlx::Error> {
    let content = text(row, "content")?;
    let op = text(row, "op_type")?;
    Ok(HistoryEntry {
        nid: id(row, "nid")?,
        config_id: id(row, "id")?,
        key: key_of(row)?,
        md5: md5_or_compute(text(row, "md5")?, &content),
        content,
        app_name: text(row, "app_name")?,
        src_user: text(row, "src_user")?,
        src_ip: text(row, "src_ip")?,
        op: match op.trim() {
            "I" => HistoryOp::Insert,
            "D" => HistoryOp::Delete,
            _ => HistoryOp::Update,
        },
        encrypted_data_key: text(row, "encrypted_data_key")?,
        created_ms: int(row, "created_ms")?,
        modified_ms: int(row, "modified_ms")?,
    })
}

/// A beta row (`BETA_COLUMNS`) or a tag row (`TAG_COLUMNS`).
fn gray_from_row(row: &MySqlRow, beta: bool) -> Result<GrayConfig, sqlx::Error> {
    let content = text(row, "content")?;
    let marker = text(row, "gray_marker")?;
    let (gray, beta_ips) = if beta {
        let ips = marker
            .split(',')
            .map(str::trim)
            .filter(|ip| !ip.is_empty())
            .map(str::to_string)
            .collect();
        (Gray::Beta, ips)
    } else {
        (Gray::Tag(marker), Vec::new())
    };
    Ok(GrayConfig {
        id: id(row, "id")?,
        key: key_of(row)?,
        gray,
        md5: md5_or_compute(text(row, "md5")?, &content),
        content,
        beta_ips,
        app_name: text(row, "app_name")?,
        encrypted_data_key: text(row, "encrypted_data_key")?,
        src_user: text(row, "src_user")?,
        src_ip: text(row, "src_ip")?,
        created_ms: int(row, "created_ms")?,
        modified_ms: int(row, "modified_ms")?,
    })
}

fn describe(key: &ConfigKey) -> String {
    format!(
        "(namespace {:?}, group {:?}, dataId {:?})",
        key.namespace, key.group, key.data_id
    )
}

/// The database clock, epoch ms.
pub(crate) async fn now_ms(c: &mut MySqlConnection) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(NOW_MS).fetch_one(&mut *c).await?;
    int(&row, 0)
}

async fn select_config(
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

async fn select_config_by_id(
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

/// Tags without blanks and repeats, in the order given (one row each; the unique key would
/// refuse a repeat).
fn clean_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_string());
        }
    }
    out
}

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

/// Append a history row describing `source` (new row for I, previous for U, deleted for D).
async fn append_history(
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
async fn record_change(
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

fn keep(new: &Option<String>, stored: &str) -> String {
    new.clone().unwrap_or_else(|| stored.to_string())
}

async fn publish_tx(c: &mut MySqlConnection, p: &ConfigPublish) -> Result<ConfigItem, Failure> {
    let stored = select_config(c, &p.key, true).await?;
    nacos_core::check_cas(
        p.cas_md5.as_deref(),
        stored.as_ref().map(|item| item.md5.as_str()),
        &format!("config {}", describe(&p.key)),
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
                config_type: keep(&p.config_type, &old.config_type),
                app_name: keep(&p.app_name, &old.app_name),
                desc: keep(&p.desc, &old.desc),
                usage: keep(&p.usage, &old.usage),
                effect: keep(&p.effect, &old.effect),
                schema: keep(&p.schema, &old.schema),
                tags: match &p.tags {
                    Some(tags) => clean_tags(tags),
                    None => old.tags.clone(),
                },
                encrypted_data_key: keep(&p.encrypted_data_key, &old.encrypted_data_key),
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

async fn select_gray(
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

async fn publish_gray_tx(
    c: &mut MySqlConnection,
    gray: &Gray,
    p: &GrayPublish,
) -> Result<GrayConfig, Failure> {
    let stored = select_gray(c, &p.key, gray, true).await?;
    nacos_core::check_cas(
        p.cas_md5.as_deref(),
        stored.as_ref().map(|variant| variant.md5.as_str()),
        &format!("{gray:?} of config {}", describe(&p.key)),
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
        app_name: keep(&p.app_name, &old_app),
        // config_info_tag has no encrypted_data_key column (as in Nacos 2.x).
        encrypted_data_key: if is_beta {
            keep(&p.encrypted_data_key, &old_edk)
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

fn limit(page: PageRequest) -> (i64, i64) {
    (
        i64::from(page.page_size),
        i64::try_from(page.offset()).unwrap_or(i64::MAX),
    )
}

#[async_trait]
impl ConfigRepo for MysqlStore {
    async fn get(&self, key: &ConfigKey) -> RepoResult<Option<ConfigItem>> {
        // The server caches what this returns: read the primary, never a lagging replica.
        let key = key.clone();
        self.read("get config", Route::Primary, move |c| {
            Box::pin(async move { Ok(select_config(c, &key, false).await?) })
        })
        .await
    }

    async fn publish(&self, publish: ConfigPublish) -> RepoResult<ConfigItem> {
        self.write("publish config", move |c| {
            let publish = publish.clone();
            Box::pin(async move { publish_tx(c, &publish).await })
        })
        .await
    }

    async fn remove(&self, key: &ConfigKey, operator: &Operator) -> RepoResult<Option<ConfigItem>> {
        let (key, operator) = (key.clone(), operator.clone());
        self.write("remove config", move |c| {
            let (key, operator) = (key.clone(), operator.clone());
            Box::pin(async move {
                let Some(item) = select_config(c, &key, true).await? else {
                    return Ok(None);
                };
                let now = now_ms(c).await?;
                delete_config(c, &item, &operator, now).await?;
                Ok(Some(item))
            })
        })
        .await
    }

    async fn remove_by_ids(&self, ids: &[u64], operator: &Operator) -> RepoResult<Vec<ConfigItem>> {
        let (ids, operator) = (ids.to_vec(), operator.clone());
        self.write("remove configs by id", move |c| {
            let (ids, operator) = (ids.clone(), operator.clone());
            Box::pin(async move {
                let now = now_ms(c).await?;
                let mut removed = Vec::new();
                for config_id in ids {
                    if let Some(item) = select_config_by_id(c, config_id).await? {
                        delete_config(c, &item, &operator, now).await?;
                        removed.push(item);
                    }
                }
                Ok(removed)
            })
        })
        .await
    }

    async fn search(&self, query: &ConfigQuery) -> RepoResult<Page<ConfigItem>> {
        let query = query.clone();
        self.read("search configs", Route::Reader, move |c| {
            Box::pin(async move {
                let (condition, binds) = search_where(&query);
                let count_sql = format!("SELECT COUNT(*) FROM config_info c WHERE {condition}");
                let mut count = sqlx::query(&count_sql);
                for bind in &binds {
                    count = count.bind(bind);
                }
                let total = int(&count.fetch_one(&mut *c).await?, 0)?;
                let total = u64::try_from(total).unwrap_or_default();
                let mut items = Vec::new();
                if query.page.page_size > 0 && (query.page.offset() as u64) < total {
                    let sql = format!(
                        "SELECT {} FROM config_info c WHERE {condition} ORDER BY c.id \
                         LIMIT ? OFFSET ?",
                        *CONFIG_COLUMNS
                    );
                    let mut rows = sqlx::query(&sql);
                    for bind in &binds {
                        rows = rows.bind(bind);
                    }
                    let (size, offset) = limit(query.page);
                    for row in rows.bind(size).bind(offset).fetch_all(&mut *c).await? {
                        items.push(config_from_row(&row)?);
                    }
                }
                Ok(Page::new(total, query.page, items))
            })
        })
        .await
    }

    async fn history(&self, key: &ConfigKey, page: PageRequest) -> RepoResult<Page<HistoryEntry>> {
        let key = key.clone();
        self.read("config history", Route::Reader, move |c| {
            Box::pin(async move {
                let count = sqlx::query(&format!(
                    "SELECT COUNT(*) FROM his_config_info WHERE {KEY_WHERE}"
                ))
                .bind(&key.data_id)
                .bind(&key.group)
                .bind(&key.namespace)
                .fetch_one(&mut *c)
                .await?;
                let total = u64::try_from(int(&count, 0)?).unwrap_or_default();
                let mut items = Vec::new();
                if page.page_size > 0 && (page.offset() as u64) < total {
                    let sql = format!(
                        "SELECT {} FROM his_config_info h WHERE h.data_id = ? AND h.group_id = ? \
                         AND h.tenant_id = ? ORDER BY h.nid DESC LIMIT ? OFFSET ?",
                        *HISTORY_COLUMNS
                    );
                    let (size, offset) = limit(page);
                    for row in sqlx::query(&sql)
                        .bind(&key.data_id)
                        .bind(&key.group)
                        .bind(&key.namespace)
                        .bind(size)
                        .bind(offset)
                        .fetch_all(&mut *c)
                        .await?
                    {
                        items.push(history_from_row(&row)?);
                    }
                }
                Ok(Page::new(total, page, items))
            })
        })
        .await
    }

    async fn history_entry(&self, nid: u64) -> RepoResult<Option<HistoryEntry>> {
        self.read("config history entry", Route::Reader, move |c| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {} FROM his_config_info h WHERE h.nid = ?",
                    *HISTORY_COLUMNS
                );
                let row = sqlx::query(&sql).bind(nid).fetch_optional(&mut *c).await?;
                Ok(row.as_ref().map(history_from_row).transpose()?)
            })
        })
        .await
    }

    async fn previous_history(&self, config_id: u64) -> RepoResult<Option<HistoryEntry>> {
        self.read("previous config history", Route::Reader, move |c| {
            Box::pin(async move {
                let sql = format!(
                    "SELECT {} FROM his_config_info h WHERE h.id = ? ORDER BY h.nid DESC LIMIT 1",
                    *HISTORY_COLUMNS
                );
                let row = sqlx::query(&sql)
                    .bind(config_id)
                    .fetch_optional(&mut *c)
                    .await?;
                Ok(row.as_ref().map(history_from_row).transpose()?)
            })
        })
        .await
    }

    async fn get_gray(&self, key: &ConfigKey, gray: &Gray) -> RepoResult<Option<GrayConfig>> {
        let (key, gray) = (key.clone(), gray.clone());
        self.read("get gray config", Route::Primary, move |c| {
            Box::pin(async move { Ok(select_gray(c, &key, &gray, false).await?) })
        })
        .await
    }

    async fn list_grays(&self, key: &ConfigKey) -> RepoResult<Vec<GrayConfig>> {
        let key = key.clone();
        self.read("list gray configs", Route::Primary, move |c| {
            Box::pin(async move {
                let mut out = Vec::new();
                if let Some(beta) = select_gray(c, &key, &Gray::Beta, false).await? {
                    out.push(beta);
                }
                let sql = format!(
                    "SELECT {} FROM config_info_tag g WHERE g.data_id = ? AND g.group_id = ? \
                     AND g.tenant_id = ? ORDER BY g.tag_id",
                    *TAG_COLUMNS
                );
                for row in sqlx::query(&sql)
                    .bind(&key.data_id)
                    .bind(&key.group)
                    .bind(&key.namespace)
                    .fetch_all(&mut *c)
                    .await?
                {
                    out.push(gray_from_row(&row, false)?);
                }
                Ok(out)
            })
        })
        .await
    }

    async fn publish_gray(&self, gray: Gray, publish: GrayPublish) -> RepoResult<GrayConfig> {
        self.write("publish gray config", move |c| {
            let (gray, publish) = (gray.clone(), publish.clone());
            Box::pin(async move { publish_gray_tx(c, &gray, &publish).await })
        })
        .await
    }

    async fn remove_gray(&self, key: &ConfigKey, gray: &Gray) -> RepoResult<Option<GrayConfig>> {
        let (key, gray) = (key.clone(), gray.clone());
        self.write("remove gray config", move |c| {
            let (key, gray) = (key.clone(), gray.clone());
            Box::pin(async move {
                let Some(variant) = select_gray(c, &key, &gray, true).await? else {
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
                record_change(c, &key, now).await?;
                Ok(Some(variant))
            })
        })
        .await
    }

    async fn changed_since(&self, since_ms: i64) -> RepoResult<Vec<ConfigChange>> {
        // The primary: a lagging replica would hide changes from the scan for good.
        self.read("config changes", Route::Primary, move |c| {
            Box::pin(async move {
                let rows = sqlx::query(
                    "SELECT data_id, group_id, tenant_id, CAST(modified_ms AS SIGNED) AS modified_ms \
                     FROM ext_config_change WHERE modified_ms >= ? ORDER BY modified_ms, id",
                )
                .bind(since_ms)
                .fetch_all(&mut *c)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(ConfigChange {
                        key: key_of(&row)?,
                        modified_ms: int(&row, "modified_ms")?,
                    });
                }
                Ok(out)
            })
        })
        .await
    }
}
