//! [`TransferRepo`] on Nacos's tables: exports read one `REPEATABLE READ` transaction started
//! `WITH CONSISTENT SNAPSHOT` on the primary (InnoDB's snapshot: every page sees the same
//! moment); each import batch is one write transaction of multi-row statements.
//!
//! `datetime` columns keep whole seconds, and `config_info_tag` has no `encrypted_data_key`:
//! [`TransferRepo::stored_form`] says so, so a verification compares like with like.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use nacos_core::transfer::{ExportSink, Record, StoredInstance, Table, TransferRepo, gray_order};
use nacos_core::{
    ConfigItem, Gray, GrayConfig, HistoryEntry, Namespace, Permission, RepoError, RepoResult,
    RoleBinding, ServiceKey, ServiceMeta, User,
};
use sqlx::MySqlConnection;
use sqlx::mysql::MySqlRow;

use crate::configs::rows;
use crate::error;
use crate::instances::{
    INSTANCE_COLUMNS, SERVICE_COLUMNS, encode_json, instance_from_row, service_from_row,
};
use crate::sql::{id, int, now_ms, placeholders, text};
use crate::store::{Failure, MysqlStore};

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, Failure>> + Send + 'a>>;

/// Rows of `sql` (which ends in `LIMIT ? OFFSET ?`, after a `> ?` key condition when `after`
/// is given), mapped by `map`.
fn page<'a, T: Send + 'a>(
    c: &'a mut MySqlConnection,
    sql: String,
    (after, offset, limit): (Option<u64>, usize, usize),
    map: fn(&MySqlRow) -> Result<T, sqlx::Error>,
) -> Boxed<'a, Vec<T>> {
    Box::pin(async move {
        let mut query = sqlx::query(&sql);
        if let Some(after) = after {
            query = query.bind(after);
        }
        let rows = query
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&mut *c)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(map(row)?);
        }
        Ok(out)
    })
}

fn role_row(row: &MySqlRow) -> Result<RoleBinding, sqlx::Error> {
    Ok(RoleBinding {
        role: text(row, "role")?,
        username: text(row, "username")?,
    })
}

fn permission_row(row: &MySqlRow) -> Result<Permission, sqlx::Error> {
    Ok(Permission {
        role: text(row, "role")?,
        resource: text(row, "resource")?,
        action: text(row, "action")?,
    })
}

fn stored_instance_row(row: &MySqlRow) -> Result<StoredInstance, sqlx::Error> {
    Ok(StoredInstance {
        service: ServiceKey::new(
            text(row, "namespace_id")?,
            text(row, "group_name")?,
            text(row, "service_name")?,
        ),
        instance: instance_from_row(row)?,
    })
}

/// The paged `SELECT` of a table, in its export order (strings compared as bytes).
fn select_sql(table: Table) -> String {
    let bin = |c: &str| format!("CAST({c} AS BINARY)");
    let body = match table {
        Table::Namespaces => format!(
            "SELECT {} FROM tenant_info WHERE kp = '1' ORDER BY {}",
            crate::namespaces::COLUMNS,
            bin("tenant_id")
        ),
        Table::Users => format!(
            "SELECT username, password, CAST(enabled AS SIGNED) AS enabled FROM users \
             ORDER BY {}",
            bin("username")
        ),
        Table::Roles => format!(
            "SELECT role, username FROM roles ORDER BY {}, {}",
            bin("role"),
            bin("username")
        ),
        Table::Permissions => format!(
            "SELECT role, resource, action FROM permissions ORDER BY {}, {}, {}",
            bin("role"),
            bin("resource"),
            bin("action")
        ),
        // The big tables page by key (`> last id`), not by offset; see `keyset_page`.
        Table::Configs => format!(
            "SELECT {} FROM config_info c WHERE c.id > ? ORDER BY c.id",
            *rows::CONFIG_COLUMNS
        ),
        Table::History => format!(
            "SELECT {} FROM his_config_info h WHERE h.nid > ? ORDER BY h.nid",
            *rows::HISTORY_COLUMNS
        ),
        Table::Services => format!(
            "SELECT {SERVICE_COLUMNS} FROM ext_service ORDER BY {}, {}, {}",
            bin("namespace_id"),
            bin("group_name"),
            bin("service_name")
        ),
        Table::Instances => format!(
            "SELECT s.namespace_id, s.group_name, s.service_name, {INSTANCE_COLUMNS} \
             FROM ext_instance i JOIN ext_service s ON s.id = i.service_id \
             ORDER BY {}, {}, {}, {}, i.port, {}",
            bin("s.namespace_id"),
            bin("s.group_name"),
            bin("s.service_name"),
            bin("i.ip"),
            bin("i.cluster_name")
        ),
        // Two tables merged in one order: read whole (variants are few), see `all_grays`.
        Table::Grays => String::new(),
    };
    format!("{body} LIMIT ? OFFSET ?")
}

/// Every beta and tag variant, in export order.
fn all_grays(c: &mut MySqlConnection) -> Boxed<'_, Vec<GrayConfig>> {
    Box::pin(async move {
        let mut out = Vec::new();
        let beta = format!("SELECT {} FROM config_info_beta g", *rows::BETA_COLUMNS);
        for row in sqlx::query(&beta).fetch_all(&mut *c).await? {
            out.push(rows::gray(&row, true)?);
        }
        let tags = format!("SELECT {} FROM config_info_tag g", *rows::TAG_COLUMNS);
        for row in sqlx::query(&tags).fetch_all(&mut *c).await? {
            out.push(rows::gray(&row, false)?);
        }
        out.sort_by(|a, b| gray_order(a).cmp(&gray_order(b)));
        Ok(out)
    })
}

/// One page of `table` at `offset` (configs and history: after the id / nid `after`).
fn read_page(
    c: &mut MySqlConnection,
    table: Table,
    (after, offset, limit): (u64, usize, usize),
) -> Boxed<'_, Vec<Record>> {
    Box::pin(async move {
        let sql = select_sql(table);
        let keyset = matches!(table, Table::Configs | Table::History);
        let at = if keyset {
            (Some(after), 0, limit)
        } else {
            (None, offset, limit)
        };
        Ok(match table {
            Table::Namespaces => page(c, sql, at, crate::namespaces::from_row)
                .await?
                .into_iter()
                .map(Record::Namespace)
                .collect(),
            Table::Users => page(c, sql, at, crate::users::user_from_row)
                .await?
                .into_iter()
                .map(Record::User)
                .collect(),
            Table::Roles => page(c, sql, at, role_row)
                .await?
                .into_iter()
                .map(Record::Role)
                .collect(),
            Table::Permissions => page(c, sql, at, permission_row)
                .await?
                .into_iter()
                .map(Record::Permission)
                .collect(),
            Table::Configs => page(c, sql, at, rows::config)
                .await?
                .into_iter()
                .map(Record::Config)
                .collect(),
            Table::History => page(c, sql, at, rows::history)
                .await?
                .into_iter()
                .map(Record::History)
                .collect(),
            Table::Services => page(c, sql, at, |r| service_from_row(r).map(|(_, m)| m))
                .await?
                .into_iter()
                .map(Record::Service)
                .collect(),
            Table::Instances => page(c, sql, at, stored_instance_row)
                .await?
                .into_iter()
                .map(Record::Instance)
                .collect(),
            Table::Grays => Vec::new(),
        })
    })
}

fn export_all<'a>(
    c: &'a mut MySqlConnection,
    page_size: u32,
    sink: &'a mut dyn ExportSink,
) -> Boxed<'a, ()> {
    Box::pin(async move {
        let limit = page_size.max(1) as usize;
        for table in Table::ALL {
            if table == Table::Grays {
                let grays = all_grays(c).await?;
                for chunk in grays.chunks(limit) {
                    let records = chunk.iter().cloned().map(Record::Gray).collect();
                    sink.page(table, records).await?;
                }
                continue;
            }
            let (mut after, mut offset) = (0, 0);
            loop {
                let records = read_page(c, table, (after, offset, limit)).await?;
                let full = records.len() == limit;
                offset += records.len();
                after = match records.last() {
                    Some(Record::Config(item)) => item.id,
                    Some(Record::History(entry)) => entry.nid,
                    _ => after,
                };
                if !records.is_empty() {
                    sink.page(table, records).await?;
                }
                if !full {
                    break;
                }
            }
        }
        Ok(())
    })
}

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

fn import_namespaces<'a>(c: &'a mut MySqlConnection, rows: &'a [&'a Namespace]) -> Boxed<'a, ()> {
    Box::pin(async move {
        if rows.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO tenant_info (kp, tenant_id, tenant_name, tenant_desc, create_source, \
             gmt_create, gmt_modified) VALUES {} ON DUPLICATE KEY UPDATE \
             tenant_name = VALUES(tenant_name), tenant_desc = VALUES(tenant_desc), \
             gmt_create = VALUES(gmt_create), gmt_modified = VALUES(gmt_modified)",
            vec!["('1', ?, ?, ?, 'nacos', ?, ?)"; rows.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for ns in rows {
            q = q
                .bind(&ns.id)
                .bind(&ns.name)
                .bind(&ns.desc)
                .bind(ns.created_ms)
                .bind(ns.modified_ms);
        }
        q.execute(&mut *c).await?;
        Ok(())
    })
}

fn import_auth<'a>(
    c: &'a mut MySqlConnection,
    users: &'a [&'a User],
    roles: &'a [&'a RoleBinding],
    permissions: &'a [&'a Permission],
) -> Boxed<'a, ()> {
    Box::pin(async move {
        if !users.is_empty() {
            let sql = format!(
                "INSERT INTO users (username, password, enabled) VALUES {} \
                 ON DUPLICATE KEY UPDATE password = VALUES(password), enabled = VALUES(enabled)",
                vec!["(?, ?, ?)"; users.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for u in users {
                q = q.bind(&u.username).bind(&u.password_hash).bind(u.enabled);
            }
            q.execute(&mut *c).await?;
        }
        if !roles.is_empty() {
            let sql = format!(
                "INSERT INTO roles (username, role) VALUES {} ON DUPLICATE KEY UPDATE role = role",
                vec!["(?, ?)"; roles.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for r in roles {
                q = q.bind(&r.username).bind(&r.role);
            }
            q.execute(&mut *c).await?;
        }
        if !permissions.is_empty() {
            let sql = format!(
                "INSERT INTO permissions (role, resource, action) VALUES {} \
                 ON DUPLICATE KEY UPDATE role = role",
                vec!["(?, ?, ?)"; permissions.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for p in permissions {
                q = q.bind(&p.role).bind(&p.resource).bind(&p.action);
            }
            q.execute(&mut *c).await?;
        }
        Ok(())
    })
}

fn import_configs<'a>(c: &'a mut MySqlConnection, items: &'a [&'a ConfigItem]) -> Boxed<'a, ()> {
    Box::pin(async move {
        if items.is_empty() {
            return Ok(());
        }
        // The rows being replaced: same id, or same key under another id. The key lookup
        // goes by `data_id IN (…)`, a prefix of the unique key every optimizer ranges over;
        // group and namespace are matched here.
        let sql = format!(
            "SELECT CAST(id AS SIGNED) AS id, data_id, group_id, tenant_id FROM config_info \
             WHERE id IN ({0}) OR data_id IN ({0})",
            placeholders(items.len()),
        );
        let mut q = sqlx::query(&sql);
        for item in items {
            q = q.bind(item.id);
        }
        for item in items {
            q = q.bind(&item.key.data_id);
        }
        let ids: std::collections::HashSet<u64> = items.iter().map(|i| i.id).collect();
        let keys: std::collections::HashSet<&nacos_core::ConfigKey> =
            items.iter().map(|i| &i.key).collect();
        let mut old = Vec::new();
        for row in q.fetch_all(&mut *c).await? {
            let row_id = id(&row, "id")?;
            let key = nacos_core::ConfigKey::new(
                text(&row, "tenant_id")?,
                text(&row, "group_id")?,
                text(&row, "data_id")?,
            );
            if ids.contains(&row_id) || keys.contains(&key) {
                old.push(row_id);
            }
        }
        if !old.is_empty() {
            for table in ["config_tags_relation", "config_info"] {
                let sql = format!(
                    "DELETE FROM {table} WHERE id IN ({})",
                    placeholders(old.len())
                );
                let mut q = sqlx::query(&sql);
                for id in &old {
                    q = q.bind(*id);
                }
                q.execute(&mut *c).await?;
            }
        }
        let sql = format!(
            "INSERT INTO config_info (id, data_id, group_id, tenant_id, app_name, content, md5, \
             src_ip, src_user, gmt_create, gmt_modified, c_desc, c_use, effect, type, c_schema, \
             encrypted_data_key) VALUES {}",
            vec![
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, FROM_UNIXTIME(?), FROM_UNIXTIME(?), ?, ?, ?, ?, ?, ?)";
                items.len()
            ]
            .join(", ")
        );
        let mut q = sqlx::query(&sql);
        for item in items {
            q = q
                .bind(item.id)
                .bind(&item.key.data_id)
                .bind(&item.key.group)
                .bind(&item.key.namespace)
                .bind(&item.app_name)
                .bind(&item.content)
                .bind(&item.md5)
                .bind(&item.src_ip)
                .bind(&item.src_user)
                .bind(secs(item.created_ms))
                .bind(secs(item.modified_ms))
                .bind(&item.desc)
                .bind(&item.usage)
                .bind(&item.effect)
                .bind(&item.config_type)
                .bind(&item.schema)
                .bind(&item.encrypted_data_key);
        }
        q.execute(&mut *c).await?;
        let tagged: Vec<(&ConfigItem, &String)> = items
            .iter()
            .flat_map(|item| item.tags.iter().map(move |t| (*item, t)))
            .collect();
        for chunk in tagged.chunks(1000) {
            let sql = format!(
                "INSERT INTO config_tags_relation (id, tag_name, tag_type, data_id, group_id, \
                 tenant_id) VALUES {}",
                vec!["(?, ?, '', ?, ?, ?)"; chunk.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (item, tag) in chunk {
                q = q
                    .bind(item.id)
                    .bind(*tag)
                    .bind(&item.key.data_id)
                    .bind(&item.key.group)
                    .bind(&item.key.namespace);
            }
            q.execute(&mut *c).await?;
        }
        Ok(())
    })
}

fn import_grays<'a>(c: &'a mut MySqlConnection, grays: &'a [&'a GrayConfig]) -> Boxed<'a, ()> {
    Box::pin(async move {
        for g in grays {
            let k = &g.key;
            let ips = g.beta_ips.join(",");
            match &g.gray {
                Gray::Beta => {
                    sqlx::query(
                        "DELETE FROM config_info_beta WHERE id = ? OR (data_id = ? AND \
                         group_id = ? AND tenant_id = ?)",
                    )
                    .bind(g.id)
                    .bind(&k.data_id)
                    .bind(&k.group)
                    .bind(&k.namespace)
                    .execute(&mut *c)
                    .await?;
                    sqlx::query(
                        "INSERT INTO config_info_beta (id, data_id, group_id, tenant_id, \
                         app_name, content, beta_ips, md5, src_ip, src_user, gmt_create, \
                         gmt_modified, encrypted_data_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
                         FROM_UNIXTIME(?), FROM_UNIXTIME(?), ?)",
                    )
                    .bind(g.id)
                    .bind(&k.data_id)
                    .bind(&k.group)
                    .bind(&k.namespace)
                    .bind(&g.app_name)
                    .bind(&g.content)
                    .bind(&ips)
                    .bind(&g.md5)
                    .bind(&g.src_ip)
                    .bind(&g.src_user)
                    .bind(secs(g.created_ms))
                    .bind(secs(g.modified_ms))
                    .bind(&g.encrypted_data_key)
                    .execute(&mut *c)
                    .await?;
                }
                Gray::Tag(tag) => {
                    sqlx::query(
                        "DELETE FROM config_info_tag WHERE id = ? OR (data_id = ? AND \
                         group_id = ? AND tenant_id = ? AND tag_id = ?)",
                    )
                    .bind(g.id)
                    .bind(&k.data_id)
                    .bind(&k.group)
                    .bind(&k.namespace)
                    .bind(tag)
                    .execute(&mut *c)
                    .await?;
                    sqlx::query(
                        "INSERT INTO config_info_tag (id, data_id, group_id, tenant_id, tag_id, \
                         app_name, content, md5, src_ip, src_user, gmt_create, gmt_modified) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, FROM_UNIXTIME(?), FROM_UNIXTIME(?))",
                    )
                    .bind(g.id)
                    .bind(&k.data_id)
                    .bind(&k.group)
                    .bind(&k.namespace)
                    .bind(tag)
                    .bind(&g.app_name)
                    .bind(&g.content)
                    .bind(&g.md5)
                    .bind(&g.src_ip)
                    .bind(&g.src_user)
                    .bind(secs(g.created_ms))
                    .bind(secs(g.modified_ms))
                    .execute(&mut *c)
                    .await?;
                }
            }
        }
        Ok(())
    })
}

fn import_history<'a>(c: &'a mut MySqlConnection, rows: &'a [&'a HistoryEntry]) -> Boxed<'a, ()> {
    Box::pin(async move {
        if rows.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "DELETE FROM his_config_info WHERE nid IN ({})",
            placeholders(rows.len())
        );
        let mut q = sqlx::query(&sql);
        for h in rows {
            q = q.bind(h.nid);
        }
        q.execute(&mut *c).await?;
        let sql = format!(
            "INSERT INTO his_config_info (id, nid, data_id, group_id, tenant_id, app_name, \
             content, md5, src_ip, src_user, gmt_create, gmt_modified, op_type, \
             encrypted_data_key) VALUES {}",
            vec![
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, FROM_UNIXTIME(?), FROM_UNIXTIME(?), ?, ?)";
                rows.len()
            ]
            .join(", ")
        );
        let mut q = sqlx::query(&sql);
        for h in rows {
            q = q
                .bind(h.config_id)
                .bind(h.nid)
                .bind(&h.key.data_id)
                .bind(&h.key.group)
                .bind(&h.key.namespace)
                .bind(&h.app_name)
                .bind(&h.content)
                .bind(&h.md5)
                .bind(&h.src_ip)
                .bind(&h.src_user)
                .bind(secs(h.created_ms))
                .bind(secs(h.modified_ms))
                .bind(h.op.code())
                .bind(&h.encrypted_data_key);
        }
        q.execute(&mut *c).await?;
        Ok(())
    })
}

fn import_naming<'a>(
    c: &'a mut MySqlConnection,
    services: &'a [&'a ServiceMeta],
    instances: &'a [&'a StoredInstance],
) -> Boxed<'a, ()> {
    Box::pin(async move {
        for meta in services {
            let metadata = encode_json(&meta.metadata, "service metadata")?;
            let clusters = encode_json(&meta.clusters, "service clusters")?;
            sqlx::query(
                "INSERT INTO ext_service (namespace_id, group_name, service_name, ephemeral, \
                 protect_threshold, metadata, selector, clusters, gmt_create, gmt_modified) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE \
                 ephemeral = VALUES(ephemeral), protect_threshold = VALUES(protect_threshold), \
                 metadata = VALUES(metadata), selector = VALUES(selector), \
                 clusters = VALUES(clusters), gmt_create = VALUES(gmt_create), \
                 gmt_modified = VALUES(gmt_modified)",
            )
            .bind(&meta.key.namespace)
            .bind(&meta.key.group)
            .bind(&meta.key.name)
            .bind(meta.ephemeral)
            .bind(f64::from(meta.protect_threshold))
            .bind(&metadata)
            .bind(&meta.selector)
            .bind(&clusters)
            .bind(meta.created_ms)
            .bind(meta.modified_ms)
            .execute(&mut *c)
            .await?;
        }
        for si in instances {
            let (s, i) = (&si.service, &si.instance);
            sqlx::query(
                "DELETE i FROM ext_instance i JOIN ext_service s ON s.id = i.service_id \
                 WHERE s.namespace_id = ? AND s.group_name = ? AND s.service_name = ? \
                 AND i.ip = ? AND i.port = ? AND i.cluster_name = ?",
            )
            .bind(&s.namespace)
            .bind(&s.group)
            .bind(&s.name)
            .bind(i.ip.as_str())
            .bind(i.port)
            .bind(i.cluster.as_str())
            .execute(&mut *c)
            .await?;
            let metadata = encode_json(&i.metadata, "instance metadata")?;
            let done = sqlx::query(
                "INSERT INTO ext_instance (service_id, ip, port, cluster_name, weight, healthy, \
                 enabled, ephemeral, metadata, instance_id) \
                 SELECT s.id, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM ext_service s \
                 WHERE s.namespace_id = ? AND s.group_name = ? AND s.service_name = ?",
            )
            .bind(i.ip.as_str())
            .bind(i.port)
            .bind(i.cluster.as_str())
            .bind(i.weight)
            .bind(i.healthy)
            .bind(i.enabled)
            .bind(i.ephemeral)
            .bind(&metadata)
            .bind(i.instance_id.as_deref())
            .bind(&s.namespace)
            .bind(&s.group)
            .bind(&s.name)
            .execute(&mut *c)
            .await?;
            if done.rows_affected() == 0 {
                return Err(Failure::Repo(RepoError::InvalidArgument(format!(
                    "instance {}:{} of {} that is not stored",
                    i.ip,
                    i.port,
                    s.describe()
                ))));
            }
        }
        Ok(())
    })
}

/// Every imported key counts as changed now (caches of running nodes reload it).
fn record_changes<'a>(
    c: &'a mut MySqlConnection,
    keys: &'a [&'a nacos_core::ConfigKey],
) -> Boxed<'a, ()> {
    Box::pin(async move {
        if keys.is_empty() {
            return Ok(());
        }
        let now = now_ms(c).await?;
        let sql = format!(
            "INSERT INTO ext_config_change (data_id, group_id, tenant_id, modified_ms) \
             VALUES {} ON DUPLICATE KEY UPDATE modified_ms = VALUES(modified_ms)",
            vec!["(?, ?, ?, ?)"; keys.len()].join(", ")
        );
        let mut q = sqlx::query(&sql);
        for k in keys {
            q = q
                .bind(&k.data_id)
                .bind(&k.group)
                .bind(&k.namespace)
                .bind(now);
        }
        q.execute(&mut *c).await?;
        Ok(())
    })
}

fn import_tx<'a>(c: &'a mut MySqlConnection, batch: &'a [Record]) -> Boxed<'a, ()> {
    Box::pin(async move {
        let mut namespaces = Vec::new();
        let (mut users, mut roles, mut permissions) = (Vec::new(), Vec::new(), Vec::new());
        let (mut configs, mut grays, mut history) = (Vec::new(), Vec::new(), Vec::new());
        let (mut services, mut instances) = (Vec::new(), Vec::new());
        for record in batch {
            match record {
                Record::Namespace(r) => namespaces.push(r),
                Record::User(r) => users.push(r),
                Record::Role(r) => roles.push(r),
                Record::Permission(r) => permissions.push(r),
                Record::Config(r) => configs.push(r),
                Record::Gray(r) => grays.push(r),
                Record::History(r) => history.push(r),
                Record::Service(r) => services.push(r),
                Record::Instance(r) => instances.push(r),
            }
        }
        import_namespaces(c, &namespaces).await?;
        import_auth(c, &users, &roles, &permissions).await?;
        import_configs(c, &configs).await?;
        import_grays(c, &grays).await?;
        import_history(c, &history).await?;
        import_naming(c, &services, &instances).await?;
        let mut keys: Vec<&nacos_core::ConfigKey> = configs
            .iter()
            .map(|c| &c.key)
            .chain(grays.iter().map(|g| &g.key))
            .collect();
        keys.sort();
        keys.dedup();
        for chunk in keys.chunks(1000) {
            record_changes(c, chunk).await?;
        }
        Ok(())
    })
}

fn counts_of(c: &mut MySqlConnection) -> Boxed<'_, BTreeMap<Table, u64>> {
    Box::pin(async move {
        let row = sqlx::query(
            "SELECT \
             CAST((SELECT COUNT(*) FROM tenant_info WHERE kp = '1') AS SIGNED) AS namespaces, \
             CAST((SELECT COUNT(*) FROM users) AS SIGNED) AS users, \
             CAST((SELECT COUNT(*) FROM roles) AS SIGNED) AS roles, \
             CAST((SELECT COUNT(*) FROM permissions) AS SIGNED) AS permissions, \
             CAST((SELECT COUNT(*) FROM config_info) AS SIGNED) AS configs, \
             CAST((SELECT COUNT(*) FROM config_info_beta) + \
                  (SELECT COUNT(*) FROM config_info_tag) AS SIGNED) AS grays, \
             CAST((SELECT COUNT(*) FROM his_config_info) AS SIGNED) AS history, \
             CAST((SELECT COUNT(*) FROM ext_service) AS SIGNED) AS services, \
             CAST((SELECT COUNT(*) FROM ext_instance) AS SIGNED) AS instances",
        )
        .fetch_one(&mut *c)
        .await?;
        let mut out = BTreeMap::new();
        for table in Table::ALL {
            out.insert(
                table,
                u64::try_from(int(&row, table.name())?).unwrap_or_default(),
            );
        }
        Ok(out)
    })
}

impl MysqlStore {
    fn export_on_primary<'a>(
        &'a self,
        page_size: u32,
        sink: &'a mut dyn ExportSink,
    ) -> Pin<Box<dyn Future<Output = RepoResult<()>> + Send + 'a>> {
        Box::pin(async move {
            let what = "export";
            let node = self
                .cluster
                .primary()
                .ok_or_else(|| self.no_primary(what))?;
            let map = |e| error::map(e, what, &node.label);
            let mut conn = node.pool.acquire().await.map_err(map)?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *conn)
                .await
                .map_err(map)?;
            sqlx::query("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                .execute(&mut *conn)
                .await
                .map_err(map)?;
            let result = export_all(&mut conn, page_size, sink).await;
            // Ends the read-only snapshot before the connection goes back to the pool.
            let ended = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            match result {
                Ok(()) => ended.map(|_| ()).map_err(map),
                Err(Failure::Repo(e)) => Err(e),
                Err(Failure::Db(e)) => Err(map(e)),
                Err(Failure::Retry) => Err(RepoError::Internal(
                    "export: a read asked to be retried".into(),
                )),
            }
        })
    }
}

#[async_trait]
impl TransferRepo for MysqlStore {
    async fn export(&self, page_size: u32, sink: &mut dyn ExportSink) -> RepoResult<()> {
        self.export_on_primary(page_size, sink).await
    }

    async fn import(&self, batch: Vec<Record>) -> RepoResult<()> {
        self.write("import", move |c| {
            let batch = batch.clone();
            Box::pin(async move { import_tx(c, &batch).await })
        })
        .await
    }

    async fn counts(&self) -> RepoResult<BTreeMap<Table, u64>> {
        self.read("count rows", crate::store::Route::Primary, |c| counts_of(c))
            .await
    }

    fn stored_form(&self, record: &mut Record) {
        record.truncate_times_to_seconds();
        record.drop_tag_data_key();
    }
}
