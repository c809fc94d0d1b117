//! [`TransferRepo`] on the redb file: exports read one read transaction (redb's snapshot: a
//! writer committing meanwhile is invisible to it), imports are [`Command::Import`] like every
//! write (applied in [`crate::command`]), so in a cluster they go through Raft and every node
//! applies the same batch.

use std::collections::BTreeMap;

use async_trait::async_trait;
use nacos_core::transfer::{ExportSink, Record, StoredInstance, Table, TransferRepo};
use nacos_core::{RepoError, RoleBinding, ServiceKey, now_millis};
use redb::{ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::command::{Command, CommandOutput};
use crate::error::{join_error, storage};
use crate::store::EmbeddedStore;
use crate::tables::{self, decode, key_from_parts, read_config};

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
                        format!(
                            "config id {} points at missing {}",
                            id.value(),
                            key.describe()
                        )
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
