//! [`TransferRepo`] on the redb file: exports read one read transaction (redb's snapshot: a
//! writer committing meanwhile is invisible to it), imports are [`Command::Import`] like every
//! write, so in a cluster they go through Raft and every node applies the same batch.

use std::collections::BTreeMap;

use async_trait::async_trait;
use nacos_core::transfer::{ExportSink, Record, StoredInstance, Table, TransferRepo};
use nacos_core::{ConfigItem, RepoError, RoleBinding, ServiceKey, now_millis};
use redb::{ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::command::{Command, CommandOutput};
use crate::error::{join_error, storage};
use crate::store::EmbeddedStore;
use crate::tables::{
    self, CONFIG_ID, GRAY_ID, HISTORY_NID, WriteTables, config_key, decode, encode, gray_key,
    instance_key, key_from_parts, read_config, read_config_key, read_history, service_key,
};

/// `limit` records of `table` from position `offset` of its export order.
fn read_page(
    txn: &ReadTransaction,
    table: Table,
    offset: usize,
    limit: usize,
) -> Result<Vec<Record>, RepoError> {
    let mut out = Vec::new();
    match table {
        Table::Namespaces => {
            let t = txn.open_table(tables::NAMESPACES).map_err(storage)?;
            for row in t.iter().map_err(storage)?.skip(offset).take(limit) {
                let (_, v) = row.map_err(storage)?;
                out.push(Record::Namespace(decode(v.value(), "namespaces")?));
            }
        }
        Table::Users => {
            let t = txn.open_table(tables::USERS).map_err(storage)?;
            for row in t.iter().map_err(storage)?.skip(offset).take(limit) {
                let (_, v) = row.map_err(storage)?;
                out.push(Record::User(decode(v.value(), "users")?));
            }
        }
        Table::Roles => {
            let t = txn.open_table(tables::ROLES).map_err(storage)?;
            for row in t.iter().map_err(storage)?.skip(offset).take(limit) {
                let (k, _) = row.map_err(storage)?;
                let (role, username) = k.value();
                out.push(Record::Role(RoleBinding {
                    role: role.to_string(),
                    username: username.to_string(),
                }));
            }
        }
        Table::Permissions => {
            let t = txn.open_table(tables::PERMISSIONS).map_err(storage)?;
            for row in t.iter().map_err(storage)?.skip(offset).take(limit) {
                let (k, _) = row.map_err(storage)?;
                let (role, resource, action) = k.value();
                out.push(Record::Permission(nacos_core::Permission {
                    role: role.to_string(),
                    resource: resource.to_string(),
                    action: action.to_string(),
                }));
            }
        }
        Table::Configs => {
            // By id: the id index, then the row under its key.
            let ids = txn.open_table(tables::CONFIG_IDS).map_err(storage)?;
            let configs = txn.open_table(tables::CONFIGS).map_err(storage)?;
            for row in ids.iter().map_err(storage)?.skip(offset).take(limit) {
                let (id, key) = row.map_err(storage)?;
                let key = key_from_parts(key.value());
                let item = read_config(&configs, &key)?.ok_or_else(|| {
                    RepoError::Internal(
                        format!("config id {} points at missing {}", id.value(), key.describe())
                            .into(),
                    )
                })?;
                out.push(Record::Config(item));
            }
        }
        Table::Grays => {
            let t = txn.open_table(tables::GRAYS).map_err(storage)?;
            for row in t.iter().map_err(storage)?.skip(offset).take(limit) {
                let (_, v) = row.map_err(storage)?;
                out.push(Record::Gray(decode(v.value(), "grays")?));
            }
        }
        Table::History => {
            let t = txn.open_table(tables::HISTORY).map_err(storage)?;
            for row in t.iter().map_err(storage)?.skip(offset).take(limit) {
                let (_, v) = row.map_err(storage)?;
                out.push(Record::History(decode(v.value(), "history")?));
            }
        }
        Table::Services => {
            let t = txn.open_table(tables::SERVICES).map_err(storage)?;
            for row in t.iter().map_err(storage)?.skip(offset).take(limit) {
                let (_, v) = row.map_err(storage)?;
                out.push(Record::Service(decode(v.value(), "services")?));
            }
        }
        Table::Instances => {
            let t = txn.open_table(tables::INSTANCES).map_err(storage)?;
            for row in t.iter().map_err(storage)?.skip(offset).take(limit) {
                let (k, v) = row.map_err(storage)?;
                let (ns, group, name, ..) = k.value();
                out.push(Record::Instance(StoredInstance {
                    service: ServiceKey::new(ns, group, name),
                    instance: decode(v.value(), "instances")?,
                }));
            }
        }
    }
    Ok(out)
}

fn count(txn: &ReadTransaction, table: Table) -> Result<u64, RepoError> {
    let n = match table {
        Table::Namespaces => txn.open_table(tables::NAMESPACES).map_err(storage)?.len(),
        Table::Users => txn.open_table(tables::USERS).map_err(storage)?.len(),
        Table::Roles => txn.open_table(tables::ROLES).map_err(storage)?.len(),
        Table::Permissions => txn.open_table(tables::PERMISSIONS).map_err(storage)?.len(),
        Table::Configs => txn.open_table(tables::CONFIG_IDS).map_err(storage)?.len(),
        Table::Grays => txn.open_table(tables::GRAYS).map_err(storage)?.len(),
        Table::History => txn.open_table(tables::HISTORY).map_err(storage)?.len(),
        Table::Services => txn.open_table(tables::SERVICES).map_err(storage)?.len(),
        Table::Instances => txn.open_table(tables::INSTANCES).map_err(storage)?.len(),
    };
    n.map_err(storage)
}

/// Raise a counter to at least `value`, so ids handed out later stay above imported ones.
fn raise_counter(t: &mut WriteTables<'_>, counter: &str, value: u64) -> Result<(), RepoError> {
    let current = t
        .counters
        .get(counter)
        .map_err(storage)?
        .map_or(0, |g| g.value());
    if value > current {
        t.counters.insert(counter, value).map_err(storage)?;
    }
    Ok(())
}

/// Replace whatever holds `item`'s id or key with `item`.
fn put_config(t: &mut WriteTables<'_>, item: &ConfigItem) -> Result<(), RepoError> {
    if let Some(old_key) = read_config_key(&t.config_ids, item.id)? {
        t.configs.remove(config_key(&old_key)).map_err(storage)?;
    }
    if let Some(old) = read_config(&t.configs, &item.key)? {
        t.config_ids.remove(old.id).map_err(storage)?;
    }
    let bytes = encode(item, "configs")?;
    t.configs
        .insert(config_key(&item.key), bytes.as_slice())
        .map_err(storage)?;
    t.config_ids
        .insert(item.id, config_key(&item.key))
        .map_err(storage)?;
    raise_counter(t, CONFIG_ID, item.id)
}

/// [`Command::Import`]: the import rule of [`TransferRepo`] inside the command's transaction.
pub(crate) fn apply_import(
    t: &mut WriteTables<'_>,
    records: &[Record],
    now_ms: i64,
) -> Result<(), RepoError> {
    let mut ordered: Vec<&Record> = records.iter().collect();
    ordered.sort_by_key(|r| r.table());
    for record in ordered {
        match record {
            Record::Namespace(ns) => {
                let bytes = encode(ns, "namespaces")?;
                t.namespaces
                    .insert(ns.id.as_str(), bytes.as_slice())
                    .map_err(storage)?;
            }
            Record::User(user) => {
                let bytes = encode(user, "users")?;
                t.users
                    .insert(user.username.as_str(), bytes.as_slice())
                    .map_err(storage)?;
            }
            Record::Role(b) => {
                t.roles
                    .insert((b.role.as_str(), b.username.as_str()), ())
                    .map_err(storage)?;
            }
            Record::Permission(p) => {
                t.permissions
                    .insert((p.role.as_str(), p.resource.as_str(), p.action.as_str()), ())
                    .map_err(storage)?;
            }
            Record::Config(item) => {
                put_config(t, item)?;
                crate::command::record_change(t, &item.key, now_ms)?;
            }
            Record::Gray(g) => {
                let bytes = encode(g, "grays")?;
                t.grays
                    .insert(gray_key(&g.key, &g.gray), bytes.as_slice())
                    .map_err(storage)?;
                raise_counter(t, GRAY_ID, g.id)?;
                crate::command::record_change(t, &g.key, now_ms)?;
            }
            Record::History(h) => {
                if let Some(old) = read_history(&t.history, h.nid)? {
                    let (ns, group, data_id) = config_key(&old.key);
                    t.history_by_key
                        .remove((ns, group, data_id, old.nid))
                        .map_err(storage)?;
                    t.history_by_config
                        .remove((old.config_id, old.nid))
                        .map_err(storage)?;
                }
                let bytes = encode(h, "history")?;
                t.history.insert(h.nid, bytes.as_slice()).map_err(storage)?;
                let (ns, group, data_id) = config_key(&h.key);
                t.history_by_key
                    .insert((ns, group, data_id, h.nid), ())
                    .map_err(storage)?;
                t.history_by_config
                    .insert((h.config_id, h.nid), ())
                    .map_err(storage)?;
                raise_counter(t, HISTORY_NID, h.nid)?;
            }
            Record::Service(meta) => {
                let bytes = encode(meta, "services")?;
                t.services
                    .insert(service_key(&meta.key), bytes.as_slice())
                    .map_err(storage)?;
            }
            Record::Instance(si) => {
                if tables::read_service(&t.services, &si.service)?.is_none() {
                    return Err(RepoError::InvalidArgument(format!(
                        "instance {}:{} of {} that is not stored",
                        si.instance.ip,
                        si.instance.port,
                        si.service.describe()
                    )));
                }
                let bytes = encode(&si.instance, "instances")?;
                let key = instance_key(
                    &si.service,
                    &si.instance.ip,
                    si.instance.port,
                    &si.instance.cluster,
                );
                t.instances.insert(key, bytes.as_slice()).map_err(storage)?;
            }
        }
    }
    Ok(())
}

#[async_trait]
impl TransferRepo for EmbeddedStore {
    async fn export(&self, page_size: u32, sink: &mut dyn ExportSink) -> Result<(), RepoError> {
        let limit = page_size.max(1) as usize;
        let db = self.db.clone();
        let mut txn = tokio::task::spawn_blocking(move || db.begin_read().map_err(storage))
            .await
            .map_err(join_error)??;
        for table in Table::ALL {
            let mut offset = 0;
            loop {
                let (back, page) = tokio::task::spawn_blocking(move || {
                    let page = read_page(&txn, table, offset, limit);
                    (txn, page)
                })
                .await
                .map_err(join_error)?;
                txn = back;
                let page = page?;
                let full = page.len() == limit;
                offset += page.len();
                if !page.is_empty() {
                    sink.page(table, page).await?;
                }
                if !full {
                    break;
                }
            }
        }
        Ok(())
    }

    async fn import(&self, batch: Vec<Record>) -> Result<(), RepoError> {
        match self
            .execute(Command::Import {
                records: batch,
                now_ms: now_millis(),
            })
            .await?
        {
            CommandOutput::Done => Ok(()),
            other => Err(RepoError::Internal(
                format!("embedded store: unexpected import output {other:?}").into(),
            )),
        }
    }

    async fn counts(&self) -> Result<BTreeMap<Table, u64>, RepoError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(storage)?;
            let mut out = BTreeMap::new();
            for table in Table::ALL {
                out.insert(table, count(&txn, table)?);
            }
            Ok(out)
        })
        .await
        .map_err(join_error)?
    }
}
