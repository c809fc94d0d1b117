//! One import batch: each table's records as multi-row statements that replace the row with
//! their key (and any row holding their unique key under another id), keeping ids and times.

use nacos_core::transfer::{Record, StoredInstance};
use nacos_core::{
    ConfigItem, Gray, GrayConfig, HistoryEntry, Namespace, Permission, RepoError, RoleBinding,
    ServiceMeta, User,
};
use sqlx::MySqlConnection;

use crate::instances::encode_json;
use crate::sql::{id, now_ms, placeholders, text};
use crate::store::Failure;

use super::Boxed;

pub(super) fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

pub(super) fn import_namespaces<'a>(
    c: &'a mut MySqlConnection,
    rows: &'a [&'a Namespace],
) -> Boxed<'a, ()> {
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

pub(super) fn import_auth<'a>(
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

pub(super) fn import_configs<'a>(
    c: &'a mut MySqlConnection,
    items: &'a [&'a ConfigItem],
) -> Boxed<'a, ()> {
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

pub(super) fn import_grays<'a>(
    c: &'a mut MySqlConnection,
    grays: &'a [&'a GrayConfig],
) -> Boxed<'a, ()> {
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

pub(super) fn import_history<'a>(
    c: &'a mut MySqlConnection,
    rows: &'a [&'a HistoryEntry],
) -> Boxed<'a, ()> {
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

pub(super) fn import_naming<'a>(
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
pub(super) fn record_changes<'a>(
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

pub(super) fn import_tx<'a>(c: &'a mut MySqlConnection, batch: &'a [Record]) -> Boxed<'a, ()> {
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
