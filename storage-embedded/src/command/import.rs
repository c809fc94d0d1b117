//! [`super::Command::Import`]: one restore batch, written by the import rule of
//! [`nacos_core::TransferRepo`].

use nacos_core::RepoError;
use nacos_core::transfer::Record;

use super::writes::*;
use crate::error::storage;
use crate::tables::{
    GRAY_ID, HISTORY_NID, WriteTables, config_key, encode, gray_key, instance_key, read_history,
    read_service, service_key,
};

/// [`Command::Import`]: the import rule of [`nacos_core::TransferRepo`] inside the command's transaction.
pub(super) fn apply_import(
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
                    .insert(
                        (p.role.as_str(), p.resource.as_str(), p.action.as_str()),
                        (),
                    )
                    .map_err(storage)?;
            }
            Record::Config(item) => {
                put_config(t, item)?;
                record_change(t, &item.key, now_ms)?;
            }
            Record::Gray(g) => {
                let bytes = encode(g, "grays")?;
                t.grays
                    .insert(gray_key(&g.key, &g.gray), bytes.as_slice())
                    .map_err(storage)?;
                raise_counter(t, GRAY_ID, g.id)?;
                record_change(t, &g.key, now_ms)?;
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
                if read_service(&t.services, &si.service)?.is_none() {
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
