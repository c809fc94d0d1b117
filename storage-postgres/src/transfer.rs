//! [`TransferRepo`] on the PostgreSQL tables: exports read one `REPEATABLE READ READ ONLY`
//! transaction (one MVCC snapshot for every page); each import batch is one transaction whose
//! bulk statements take whole columns as arrays (`unnest`), so a batch costs a few round trips
//! whatever its size. Text orders use the `"C"` collation (bytes), as the other backends do.
//!
//! `config_info_tag` has no `encrypted_data_key` column: [`TransferRepo::stored_form`] says so.

use std::collections::BTreeMap;

use async_trait::async_trait;
use diesel::dsl::sql;
use diesel::sql_types::{Array, BigInt, Bool, Double, Float4, Integer, Nullable, Text};
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use nacos_core::transfer::{ExportSink, Record, StoredInstance, Table, TransferRepo, gray_order};
use nacos_core::{ConfigItem, ConfigKey, Gray, GrayConfig, HistoryEntry, RepoError, ServiceKey};

use crate::PgStore;
use crate::configs::formal::load_tags;
use crate::configs::rows::{BetaRow, ConfigRow, HistoryRow, TagRow};
use crate::convert::to_json;
use crate::error::Result;
use crate::namespaces::NamespaceRow;
use crate::naming::{InstanceRow, ServiceRow};
use crate::schema::{
    config_info as ci, config_info_beta as cb, config_info_tag as ct, his_config_info as h,
    naming_instance as ni, naming_service as ns, permissions as p, roles as r, tenant_info as t,
    users as u,
};
use crate::users::UserRow;

/// SQL turning a bigint of epoch milliseconds into a UTC `timestamp`, exactly.
fn ts(column: &str) -> String {
    format!("(TIMESTAMP '1970-01-01 00:00:00' + {column} * INTERVAL '1 millisecond')")
}

fn db_id(value: u64, what: &str) -> Result<i64> {
    i64::try_from(value).map_err(|_| {
        RepoError::InvalidArgument(format!("{what} {value} is too large for PostgreSQL")).into()
    })
}

async fn read_page(
    conn: &mut AsyncPgConnection,
    table: Table,
    offset: i64,
    limit: i64,
) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    match table {
        Table::Namespaces => {
            let rows: Vec<NamespaceRow> = t::table
                .filter(t::kp.eq("1"))
                .order(sql::<Text>(r#"tenant_id COLLATE "C""#))
                .limit(limit)
                .offset(offset)
                .select(NamespaceRow::as_select())
                .load(conn)
                .await?;
            out.extend(
                rows.into_iter()
                    .map(|r| Record::Namespace(r.into_namespace())),
            );
        }
        Table::Users => {
            let rows: Vec<UserRow> = u::table
                .order(sql::<Text>(r#"username COLLATE "C""#))
                .limit(limit)
                .offset(offset)
                .select(UserRow::as_select())
                .load(conn)
                .await?;
            out.extend(rows.into_iter().map(|r| Record::User(r.into())));
        }
        Table::Roles => {
            let rows: Vec<(String, String)> = r::table
                .order(sql::<Text>(r#"role COLLATE "C", username COLLATE "C""#))
                .limit(limit)
                .offset(offset)
                .select((r::role, r::username))
                .load(conn)
                .await?;
            out.extend(
                rows.into_iter().map(|(role, username)| {
                    Record::Role(nacos_core::RoleBinding { role, username })
                }),
            );
        }
        Table::Permissions => {
            let rows: Vec<(String, String, String)> = p::table
                .order(sql::<Text>(
                    r#"role COLLATE "C", resource COLLATE "C", action COLLATE "C""#,
                ))
                .limit(limit)
                .offset(offset)
                .select((p::role, p::resource, p::action))
                .load(conn)
                .await?;
            out.extend(rows.into_iter().map(|(role, resource, action)| {
                Record::Permission(nacos_core::Permission {
                    role,
                    resource,
                    action,
                })
            }));
        }
        Table::Configs => {
            let rows: Vec<ConfigRow> = ci::table
                .order(ci::id.asc())
                .limit(limit)
                .offset(offset)
                .select(ConfigRow::as_select())
                .load(conn)
                .await?;
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let mut tags = load_tags(conn, &ids).await?;
            for row in rows {
                let row_tags = tags.remove(&row.id).unwrap_or_default();
                out.push(Record::Config(row.into_item(row_tags)?));
            }
        }
        Table::Grays => {
            // Two tables merged in one order: read whole (variants are few) and page here.
            let mut all: Vec<GrayConfig> = Vec::new();
            let betas: Vec<BetaRow> = cb::table.select(BetaRow::as_select()).load(conn).await?;
            for row in betas {
                all.push(row.into_gray()?);
            }
            let tags: Vec<TagRow> = ct::table.select(TagRow::as_select()).load(conn).await?;
            for row in tags {
                all.push(row.into_gray()?);
            }
            all.sort_by(|a, b| gray_order(a).cmp(&gray_order(b)));
            out.extend(
                all.into_iter()
                    .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                    .take(usize::try_from(limit).unwrap_or(usize::MAX))
                    .map(Record::Gray),
            );
        }
        Table::History => {
            let rows: Vec<HistoryRow> = h::table
                .order(h::nid.asc())
                .limit(limit)
                .offset(offset)
                .select(HistoryRow::as_select())
                .load(conn)
                .await?;
            for row in rows {
                out.push(Record::History(row.into_entry()?));
            }
        }
        Table::Services => {
            let rows: Vec<ServiceRow> = ns::table
                .order(sql::<Text>(
                    r#"namespace_id COLLATE "C", group_name COLLATE "C", service_name COLLATE "C""#,
                ))
                .limit(limit)
                .offset(offset)
                .select(ServiceRow::as_select())
                .load(conn)
                .await?;
            for row in rows {
                out.push(Record::Service(row.into_meta()?));
            }
        }
        Table::Instances => {
            let rows: Vec<(String, String, String, InstanceRow)> = ni::table
                .order(sql::<Text>(
                    r#"namespace_id COLLATE "C", group_name COLLATE "C", service_name COLLATE "C", ip COLLATE "C", port, cluster_name COLLATE "C""#,
                ))
                .limit(limit)
                .offset(offset)
                .select((
                    ni::namespace_id,
                    ni::group_name,
                    ni::service_name,
                    InstanceRow::as_select(),
                ))
                .load(conn)
                .await?;
            for (namespace, group, name, row) in rows {
                out.push(Record::Instance(StoredInstance {
                    service: ServiceKey::new(namespace, group, name),
                    instance: row.into_instance()?,
                }));
            }
        }
    }
    Ok(out)
}

async fn export_all(
    conn: &mut AsyncPgConnection,
    page_size: u32,
    sink: &mut dyn ExportSink,
) -> Result<()> {
    let limit = i64::from(page_size.max(1));
    for table in Table::ALL {
        let mut offset = 0;
        loop {
            let records = read_page(conn, table, offset, limit).await?;
            let full = records.len() as i64 == limit;
            offset += records.len() as i64;
            if !records.is_empty() {
                sink.page(table, records).await?;
            }
            if !full {
                break;
            }
        }
    }
    Ok(())
}

async fn import_configs(conn: &mut AsyncPgConnection, items: &[&ConfigItem]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        ids.push(db_id(item.id, "config id")?);
    }
    let col = |f: fn(&ConfigItem) -> &str| -> Vec<String> {
        items.iter().map(|i| f(i).to_string()).collect()
    };
    // The rows being replaced (same id, or same key under another id) with their tags.
    diesel::sql_query(
        "WITH gone AS (DELETE FROM config_info WHERE id = ANY($1) OR \
         (tenant_id, group_id, data_id) IN (SELECT * FROM unnest($2::text[], $3::text[], \
         $4::text[])) RETURNING id) \
         DELETE FROM config_tags_relation WHERE id IN (SELECT id FROM gone)",
    )
    .bind::<Array<BigInt>, _>(&ids)
    .bind::<Array<Text>, _>(col(|i| &i.key.namespace))
    .bind::<Array<Text>, _>(col(|i| &i.key.group))
    .bind::<Array<Text>, _>(col(|i| &i.key.data_id))
    .execute(conn)
    .await?;
    let created: Vec<i64> = items.iter().map(|i| i.created_ms).collect();
    let modified: Vec<i64> = items.iter().map(|i| i.modified_ms).collect();
    diesel::sql_query(format!(
        "INSERT INTO config_info (id, data_id, group_id, tenant_id, app_name, content, md5, \
         src_ip, src_user, gmt_create, gmt_modified, c_desc, c_use, effect, type, c_schema, \
         encrypted_data_key) \
         SELECT u.id, u.data_id, u.group_id, u.tenant_id, u.app_name, u.content, u.md5, \
         u.src_ip, u.src_user, {}, {}, u.c_desc, u.c_use, u.effect, u.type, u.c_schema, u.edk \
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::text[], \
         $13::text[], $14::text[], $15::text[], $16::text[], $17::text[]) AS u(id, data_id, \
         group_id, tenant_id, app_name, content, md5, src_ip, src_user, created, modified, \
         c_desc, c_use, effect, type, c_schema, edk)",
        ts("u.created"),
        ts("u.modified")
    ))
    .bind::<Array<BigInt>, _>(&ids)
    .bind::<Array<Text>, _>(col(|i| &i.key.data_id))
    .bind::<Array<Text>, _>(col(|i| &i.key.group))
    .bind::<Array<Text>, _>(col(|i| &i.key.namespace))
    .bind::<Array<Text>, _>(col(|i| &i.app_name))
    .bind::<Array<Text>, _>(col(|i| &i.content))
    .bind::<Array<Text>, _>(col(|i| &i.md5))
    .bind::<Array<Text>, _>(col(|i| &i.src_ip))
    .bind::<Array<Text>, _>(col(|i| &i.src_user))
    .bind::<Array<BigInt>, _>(&created)
    .bind::<Array<BigInt>, _>(&modified)
    .bind::<Array<Text>, _>(col(|i| &i.desc))
    .bind::<Array<Text>, _>(col(|i| &i.usage))
    .bind::<Array<Text>, _>(col(|i| &i.effect))
    .bind::<Array<Text>, _>(col(|i| &i.config_type))
    .bind::<Array<Text>, _>(col(|i| &i.schema))
    .bind::<Array<Text>, _>(col(|i| &i.encrypted_data_key))
    .execute(conn)
    .await?;
    let (mut tag_ids, mut names, mut data_ids, mut groups, mut tenants) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (item, id) in items.iter().zip(&ids) {
        for tag in &item.tags {
            tag_ids.push(*id);
            names.push(tag.clone());
            data_ids.push(item.key.data_id.clone());
            groups.push(item.key.group.clone());
            tenants.push(item.key.namespace.clone());
        }
    }
    if !tag_ids.is_empty() {
        diesel::sql_query(
            "INSERT INTO config_tags_relation (id, tag_name, tag_type, data_id, group_id, \
             tenant_id) SELECT u.id, u.tag, '', u.d, u.g, u.t FROM unnest($1::bigint[], \
             $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS u(id, tag, d, g, \
             t, n) ORDER BY u.n",
        )
        .bind::<Array<BigInt>, _>(&tag_ids)
        .bind::<Array<Text>, _>(&names)
        .bind::<Array<Text>, _>(&data_ids)
        .bind::<Array<Text>, _>(&groups)
        .bind::<Array<Text>, _>(&tenants)
        .execute(conn)
        .await?;
    }
    Ok(())
}

async fn import_grays(conn: &mut AsyncPgConnection, grays: &[&GrayConfig]) -> Result<()> {
    for g in grays {
        let id = db_id(g.id, "gray variant id")?;
        let k = &g.key;
        match &g.gray {
            Gray::Beta => {
                diesel::sql_query(
                    "DELETE FROM config_info_beta WHERE id = $1 OR (tenant_id = $2 AND \
                     group_id = $3 AND data_id = $4)",
                )
                .bind::<BigInt, _>(id)
                .bind::<Text, _>(&k.namespace)
                .bind::<Text, _>(&k.group)
                .bind::<Text, _>(&k.data_id)
                .execute(conn)
                .await?;
                diesel::sql_query(format!(
                    "INSERT INTO config_info_beta (id, data_id, group_id, tenant_id, app_name, \
                     content, beta_ips, md5, src_ip, src_user, gmt_create, gmt_modified, \
                     encrypted_data_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, {}, {}, \
                     $13)",
                    ts("$11"),
                    ts("$12")
                ))
                .bind::<BigInt, _>(id)
                .bind::<Text, _>(&k.data_id)
                .bind::<Text, _>(&k.group)
                .bind::<Text, _>(&k.namespace)
                .bind::<Text, _>(&g.app_name)
                .bind::<Text, _>(&g.content)
                .bind::<Text, _>(g.beta_ips.join(","))
                .bind::<Text, _>(&g.md5)
                .bind::<Text, _>(&g.src_ip)
                .bind::<Text, _>(&g.src_user)
                .bind::<BigInt, _>(g.created_ms)
                .bind::<BigInt, _>(g.modified_ms)
                .bind::<Text, _>(&g.encrypted_data_key)
                .execute(conn)
                .await?;
            }
            Gray::Tag(tag) => {
                diesel::sql_query(
                    "DELETE FROM config_info_tag WHERE id = $1 OR (tenant_id = $2 AND \
                     group_id = $3 AND data_id = $4 AND tag_id = $5)",
                )
                .bind::<BigInt, _>(id)
                .bind::<Text, _>(&k.namespace)
                .bind::<Text, _>(&k.group)
                .bind::<Text, _>(&k.data_id)
                .bind::<Text, _>(tag)
                .execute(conn)
                .await?;
                diesel::sql_query(format!(
                    "INSERT INTO config_info_tag (id, data_id, group_id, tenant_id, tag_id, \
                     app_name, content, md5, src_ip, src_user, gmt_create, gmt_modified) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, {}, {})",
                    ts("$11"),
                    ts("$12")
                ))
                .bind::<BigInt, _>(id)
                .bind::<Text, _>(&k.data_id)
                .bind::<Text, _>(&k.group)
                .bind::<Text, _>(&k.namespace)
                .bind::<Text, _>(tag)
                .bind::<Text, _>(&g.app_name)
                .bind::<Text, _>(&g.content)
                .bind::<Text, _>(&g.md5)
                .bind::<Text, _>(&g.src_ip)
                .bind::<Text, _>(&g.src_user)
                .bind::<BigInt, _>(g.created_ms)
                .bind::<BigInt, _>(g.modified_ms)
                .execute(conn)
                .await?;
            }
        }
    }
    Ok(())
}

async fn import_history(conn: &mut AsyncPgConnection, rows: &[&HistoryEntry]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut nids = Vec::with_capacity(rows.len());
    let mut config_ids = Vec::with_capacity(rows.len());
    for row in rows {
        nids.push(db_id(row.nid, "history nid")?);
        config_ids.push(db_id(row.config_id, "history config id")?);
    }
    let col = |f: fn(&HistoryEntry) -> &str| -> Vec<String> {
        rows.iter().map(|r| f(r).to_string()).collect()
    };
    diesel::sql_query("DELETE FROM his_config_info WHERE nid = ANY($1)")
        .bind::<Array<BigInt>, _>(&nids)
        .execute(conn)
        .await?;
    let created: Vec<i64> = rows.iter().map(|r| r.created_ms).collect();
    let modified: Vec<i64> = rows.iter().map(|r| r.modified_ms).collect();
    let ops: Vec<String> = rows.iter().map(|r| r.op.code().to_string()).collect();
    diesel::sql_query(format!(
        "INSERT INTO his_config_info (id, nid, data_id, group_id, tenant_id, app_name, content, \
         md5, src_ip, src_user, gmt_create, gmt_modified, op_type, encrypted_data_key) \
         SELECT u.id, u.nid, u.data_id, u.group_id, u.tenant_id, u.app_name, u.content, u.md5, \
         u.src_ip, u.src_user, {}, {}, u.op, u.edk \
         FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
         $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[], \
         $12::bigint[], $13::text[], $14::text[]) AS u(id, nid, data_id, group_id, tenant_id, \
         app_name, content, md5, src_ip, src_user, created, modified, op, edk)",
        ts("u.created"),
        ts("u.modified")
    ))
    .bind::<Array<BigInt>, _>(&config_ids)
    .bind::<Array<BigInt>, _>(&nids)
    .bind::<Array<Text>, _>(col(|r| &r.key.data_id))
    .bind::<Array<Text>, _>(col(|r| &r.key.group))
    .bind::<Array<Text>, _>(col(|r| &r.key.namespace))
    .bind::<Array<Text>, _>(col(|r| &r.app_name))
    .bind::<Array<Text>, _>(col(|r| &r.content))
    .bind::<Array<Text>, _>(col(|r| &r.md5))
    .bind::<Array<Text>, _>(col(|r| &r.src_ip))
    .bind::<Array<Text>, _>(col(|r| &r.src_user))
    .bind::<Array<BigInt>, _>(&created)
    .bind::<Array<BigInt>, _>(&modified)
    .bind::<Array<Text>, _>(&ops)
    .bind::<Array<Text>, _>(col(|r| &r.encrypted_data_key))
    .execute(conn)
    .await?;
    Ok(())
}

async fn import_small(conn: &mut AsyncPgConnection, record: &Record) -> Result<()> {
    match record {
        Record::Namespace(n) => {
            diesel::sql_query(
                "INSERT INTO tenant_info (kp, tenant_id, tenant_name, tenant_desc, create_source, \
                 gmt_create, gmt_modified) VALUES ('1', $1, $2, $3, 'nacos', $4, $5) \
                 ON CONFLICT (kp, tenant_id) DO UPDATE SET tenant_name = EXCLUDED.tenant_name, \
                 tenant_desc = EXCLUDED.tenant_desc, gmt_create = EXCLUDED.gmt_create, \
                 gmt_modified = EXCLUDED.gmt_modified",
            )
            .bind::<Text, _>(&n.id)
            .bind::<Text, _>(&n.name)
            .bind::<Text, _>(&n.desc)
            .bind::<BigInt, _>(n.created_ms)
            .bind::<BigInt, _>(n.modified_ms)
            .execute(conn)
            .await?;
        }
        Record::User(user) => {
            diesel::sql_query(
                "INSERT INTO users (username, password, enabled) VALUES ($1, $2, $3) \
                 ON CONFLICT (username) DO UPDATE SET password = EXCLUDED.password, \
                 enabled = EXCLUDED.enabled",
            )
            .bind::<Text, _>(&user.username)
            .bind::<Text, _>(&user.password_hash)
            .bind::<Bool, _>(user.enabled)
            .execute(conn)
            .await?;
        }
        Record::Role(b) => {
            diesel::sql_query(
                "INSERT INTO roles (username, role) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind::<Text, _>(&b.username)
            .bind::<Text, _>(&b.role)
            .execute(conn)
            .await?;
        }
        Record::Permission(perm) => {
            diesel::sql_query(
                "INSERT INTO permissions (role, resource, action) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind::<Text, _>(&perm.role)
            .bind::<Text, _>(&perm.resource)
            .bind::<Text, _>(&perm.action)
            .execute(conn)
            .await?;
        }
        Record::Service(meta) => {
            diesel::sql_query(
                "INSERT INTO naming_service (namespace_id, group_name, service_name, ephemeral, \
                 protect_threshold, metadata, selector, clusters, gmt_create, gmt_modified) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (namespace_id, group_name, service_name) DO UPDATE SET \
                 ephemeral = EXCLUDED.ephemeral, protect_threshold = EXCLUDED.protect_threshold, \
                 metadata = EXCLUDED.metadata, selector = EXCLUDED.selector, \
                 clusters = EXCLUDED.clusters, gmt_create = EXCLUDED.gmt_create, \
                 gmt_modified = EXCLUDED.gmt_modified",
            )
            .bind::<Text, _>(&meta.key.namespace)
            .bind::<Text, _>(&meta.key.group)
            .bind::<Text, _>(&meta.key.name)
            .bind::<Bool, _>(meta.ephemeral)
            .bind::<Float4, _>(meta.protect_threshold)
            .bind::<Text, _>(to_json(&meta.metadata, "service metadata")?)
            .bind::<Text, _>(&meta.selector)
            .bind::<Text, _>(to_json(&meta.clusters, "service clusters")?)
            .bind::<BigInt, _>(meta.created_ms)
            .bind::<BigInt, _>(meta.modified_ms)
            .execute(conn)
            .await?;
        }
        Record::Instance(si) => {
            let (s, i) = (&si.service, &si.instance);
            diesel::sql_query(
                "DELETE FROM naming_instance WHERE namespace_id = $1 AND group_name = $2 AND \
                 service_name = $3 AND ip = $4 AND port = $5 AND cluster_name = $6",
            )
            .bind::<Text, _>(&s.namespace)
            .bind::<Text, _>(&s.group)
            .bind::<Text, _>(&s.name)
            .bind::<Text, _>(i.ip.as_str())
            .bind::<Integer, _>(i32::from(i.port))
            .bind::<Text, _>(i.cluster.as_str())
            .execute(conn)
            .await?;
            let inserted = diesel::sql_query(
                "INSERT INTO naming_instance (namespace_id, group_name, service_name, ip, port, \
                 cluster_name, weight, healthy, enabled, ephemeral, metadata, instance_id) \
                 SELECT s.namespace_id, s.group_name, s.service_name, $4, $5, $6, $7, $8, $9, \
                 $10, $11, $12 FROM naming_service s WHERE s.namespace_id = $1 AND \
                 s.group_name = $2 AND s.service_name = $3",
            )
            .bind::<Text, _>(&s.namespace)
            .bind::<Text, _>(&s.group)
            .bind::<Text, _>(&s.name)
            .bind::<Text, _>(i.ip.as_str())
            .bind::<Integer, _>(i32::from(i.port))
            .bind::<Text, _>(i.cluster.as_str())
            .bind::<Double, _>(i.weight)
            .bind::<Bool, _>(i.healthy)
            .bind::<Bool, _>(i.enabled)
            .bind::<Bool, _>(i.ephemeral)
            .bind::<Text, _>(to_json(&i.metadata, "instance metadata")?)
            .bind::<Nullable<Text>, _>(i.instance_id.as_deref())
            .execute(conn)
            .await?;
            if inserted == 0 {
                return Err(RepoError::InvalidArgument(format!(
                    "instance {}:{} of {} that is not stored",
                    i.ip,
                    i.port,
                    s.describe()
                ))
                .into());
            }
        }
        Record::Config(_) | Record::Gray(_) | Record::History(_) => {}
    }
    Ok(())
}

async fn import_batch(conn: &mut AsyncPgConnection, batch: &[Record]) -> Result<()> {
    let mut ordered: Vec<&Record> = batch.iter().collect();
    ordered.sort_by_key(|r| r.table());
    for record in &ordered {
        import_small(conn, record).await?;
    }
    let configs: Vec<&ConfigItem> = ordered
        .iter()
        .filter_map(|r| match r {
            Record::Config(c) => Some(c),
            _ => None,
        })
        .collect();
    let grays: Vec<&GrayConfig> = ordered
        .iter()
        .filter_map(|r| match r {
            Record::Gray(g) => Some(g),
            _ => None,
        })
        .collect();
    let history: Vec<&HistoryEntry> = ordered
        .iter()
        .filter_map(|r| match r {
            Record::History(h) => Some(h),
            _ => None,
        })
        .collect();
    import_configs(conn, &configs).await?;
    import_grays(conn, &grays).await?;
    import_history(conn, &history).await?;
    // Later inserts take ids above every imported one, and never below what was handed out.
    for (table, column, sequence) in [
        ("config_info", "id", "config_info_id_seq"),
        ("config_info_beta", "id", "config_info_beta_id_seq"),
        ("config_info_tag", "id", "config_info_tag_id_seq"),
        ("his_config_info", "nid", "his_config_info_nid_seq"),
    ] {
        diesel::sql_query(format!(
            "SELECT setval('{sequence}', GREATEST((SELECT COALESCE(MAX({column}), 0) FROM \
             {table}), (SELECT last_value FROM {sequence}), 1))"
        ))
        .execute(conn)
        .await?;
    }
    let mut keys: Vec<&ConfigKey> = configs
        .iter()
        .map(|c| &c.key)
        .chain(grays.iter().map(|g| &g.key))
        .collect();
    keys.sort();
    keys.dedup();
    if !keys.is_empty() {
        let col = |f: fn(&ConfigKey) -> &str| -> Vec<String> {
            keys.iter().map(|k| f(k).to_string()).collect()
        };
        // Every imported key counts as changed now: caches of running nodes reload it.
        diesel::sql_query(
            "INSERT INTO config_changes (tenant_id, group_id, data_id, gmt_modified) \
             SELECT u.t, u.g, u.d, date_trunc('milliseconds', clock_timestamp() AT TIME ZONE \
             'UTC') FROM unnest($1::text[], $2::text[], $3::text[]) AS u(t, g, d) \
             ON CONFLICT (tenant_id, group_id, data_id) DO UPDATE SET \
             gmt_modified = EXCLUDED.gmt_modified",
        )
        .bind::<Array<Text>, _>(col(|k| &k.namespace))
        .bind::<Array<Text>, _>(col(|k| &k.group))
        .bind::<Array<Text>, _>(col(|k| &k.data_id))
        .execute(conn)
        .await?;
    }
    Ok(())
}

async fn counts_of(conn: &mut AsyncPgConnection) -> Result<BTreeMap<Table, u64>> {
    let mut out = BTreeMap::new();
    let n = |v: i64| u64::try_from(v).unwrap_or_default();
    let namespaces: i64 = t::table
        .filter(t::kp.eq("1"))
        .count()
        .get_result(conn)
        .await?;
    out.insert(Table::Namespaces, n(namespaces));
    out.insert(Table::Users, n(u::table.count().get_result(conn).await?));
    out.insert(Table::Roles, n(r::table.count().get_result(conn).await?));
    out.insert(
        Table::Permissions,
        n(p::table.count().get_result(conn).await?),
    );
    out.insert(Table::Configs, n(ci::table.count().get_result(conn).await?));
    let beta: i64 = cb::table.count().get_result(conn).await?;
    let tag: i64 = ct::table.count().get_result(conn).await?;
    out.insert(Table::Grays, n(beta + tag));
    out.insert(Table::History, n(h::table.count().get_result(conn).await?));
    out.insert(
        Table::Services,
        n(ns::table.count().get_result(conn).await?),
    );
    out.insert(
        Table::Instances,
        n(ni::table.count().get_result(conn).await?),
    );
    Ok(out)
}

#[async_trait]
impl TransferRepo for PgStore {
    async fn export(
        &self,
        page_size: u32,
        sink: &mut dyn ExportSink,
    ) -> std::result::Result<(), RepoError> {
        self.run(async |conn: &mut AsyncPgConnection| {
            conn.build_transaction()
                .repeatable_read()
                .read_only()
                .run(async |conn| export_all(conn, page_size, sink).await)
                .await
        })
        .await
    }

    async fn import(&self, batch: Vec<Record>) -> std::result::Result<(), RepoError> {
        self.in_tx(async |conn: &mut AsyncPgConnection| import_batch(conn, &batch).await)
            .await
    }

    async fn counts(&self) -> std::result::Result<BTreeMap<Table, u64>, RepoError> {
        self.read(async |conn: &mut AsyncPgConnection| counts_of(conn).await)
            .await
    }

    fn stored_form(&self, record: &mut Record) {
        record.drop_tag_data_key();
    }
}
