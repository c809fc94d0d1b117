//! Table definitions, key encoding and the typed reads shared by the write path ([`apply`]) and
//! the read path (the trait impls in [`crate::store`]).
//!
//! Values are serde_json bytes (simple and debuggable with any redb dump tool); keys are redb
//! tuples, so a table's natural order is the order the contracts ask for:
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `configs` | (namespace, group, dataId) | [`ConfigItem`] |
//! | `config_ids` | config id | (namespace, group, dataId) |
//! | `history` | nid | [`HistoryEntry`] |
//! | `history_by_key` | (namespace, group, dataId, nid) | `()` |
//! | `history_by_config` | (config id, nid) | `()` |
//! | `grays` | (namespace, group, dataId, kind, tag) | [`GrayConfig`] |
//! | `changes` | (modified_ms, seq) | (namespace, group, dataId) |
//! | `change_by_key` | (namespace, group, dataId) | (modified_ms, seq) |
//! | `namespaces` | namespace id | [`Namespace`] |
//! | `services` | (namespace, group, name) | [`ServiceMeta`] |
//! | `instances` | (namespace, group, name, ip, port, cluster) | [`Instance`] |
//! | `users` | username | [`User`](nacos_core::User) |
//! | `roles` | (role, username) | `()` |
//! | `permissions` | (role, resource, action) | `()` |
//! | `counters` | counter name | last value handed out |
//! | `meta` | setting name | value (the schema version) |
//!
//! `grays` encodes [`Gray::Beta`] as kind 0 with an empty tag and [`Gray::Tag`] as kind 1 with
//! the tag name, so a key's variants list beta first, then tags by name. `changes` keeps one
//! entry per key (its latest change; `change_by_key` points at it), so it stays as large as the
//! set of keys ever written while `changed_since` remains a range scan.
//!
//! [`apply`]: crate::command::apply

use nacos_core::{
    ConfigItem, ConfigKey, Gray, GrayConfig, HistoryEntry, Instance, Namespace, RepoError,
    ServiceKey, ServiceMeta,
};
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{decode_error, encode_error, storage};

/// (namespace, group, dataId) or (namespace, group, service name).
pub(crate) type Key3 = (&'static str, &'static str, &'static str);
type Key4 = (&'static str, &'static str, &'static str, u64);
type GrayKey = (&'static str, &'static str, &'static str, u8, &'static str);
type InstanceKey = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    u16,
    &'static str,
);
type Bytes = &'static [u8];

pub(crate) const CONFIGS: TableDefinition<Key3, Bytes> = TableDefinition::new("configs");
pub(crate) const CONFIG_IDS: TableDefinition<u64, Key3> = TableDefinition::new("config_ids");
pub(crate) const HISTORY: TableDefinition<u64, Bytes> = TableDefinition::new("history");
pub(crate) const HISTORY_BY_KEY: TableDefinition<Key4, ()> = TableDefinition::new("history_by_key");
pub(crate) const HISTORY_BY_CONFIG: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("history_by_config");
pub(crate) const GRAYS: TableDefinition<GrayKey, Bytes> = TableDefinition::new("grays");
pub(crate) const CHANGES: TableDefinition<(i64, u64), Key3> = TableDefinition::new("changes");
pub(crate) const CHANGE_BY_KEY: TableDefinition<Key3, (i64, u64)> =
    TableDefinition::new("change_by_key");
pub(crate) const NAMESPACES: TableDefinition<&'static str, Bytes> =
    TableDefinition::new("namespaces");
pub(crate) const SERVICES: TableDefinition<Key3, Bytes> = TableDefinition::new("services");
pub(crate) const INSTANCES: TableDefinition<InstanceKey, Bytes> = TableDefinition::new("instances");
pub(crate) const USERS: TableDefinition<&'static str, Bytes> = TableDefinition::new("users");
pub(crate) const ROLES: TableDefinition<(&'static str, &'static str), ()> =
    TableDefinition::new("roles");
pub(crate) const PERMISSIONS: TableDefinition<Key3, ()> = TableDefinition::new("permissions");
pub(crate) const COUNTERS: TableDefinition<&'static str, u64> = TableDefinition::new("counters");
pub(crate) const META: TableDefinition<&'static str, u64> = TableDefinition::new("meta");

/// Counter names in `counters`.
pub(crate) const CONFIG_ID: &str = "config_id";
pub(crate) const HISTORY_NID: &str = "history_nid";
pub(crate) const GRAY_ID: &str = "gray_id";
pub(crate) const CHANGE_SEQ: &str = "change_seq";

/// `meta` entry holding the on-disk layout version, and the version this code writes.
pub(crate) const SCHEMA_VERSION_KEY: &str = "schema_version";
pub(crate) const SCHEMA_VERSION: u64 = 1;

// ---------------------------------------------------------------------------------------------
// Key encoding

pub(crate) fn config_key(key: &ConfigKey) -> (&str, &str, &str) {
    (&key.namespace, &key.group, &key.data_id)
}

pub(crate) fn key_from_parts(parts: (&str, &str, &str)) -> ConfigKey {
    ConfigKey::new(parts.0, parts.1, parts.2)
}

pub(crate) fn service_key(key: &ServiceKey) -> (&str, &str, &str) {
    (&key.namespace, &key.group, &key.name)
}

pub(crate) fn gray_key<'a>(
    key: &'a ConfigKey,
    gray: &'a Gray,
) -> (&'a str, &'a str, &'a str, u8, &'a str) {
    match gray {
        Gray::Beta => (&key.namespace, &key.group, &key.data_id, 0, ""),
        Gray::Tag(tag) => (&key.namespace, &key.group, &key.data_id, 1, tag),
    }
}

pub(crate) fn instance_key<'a>(
    service: &'a ServiceKey,
    ip: &'a str,
    port: u16,
    cluster: &'a str,
) -> (&'a str, &'a str, &'a str, &'a str, u16, &'a str) {
    (
        &service.namespace,
        &service.group,
        &service.name,
        ip,
        port,
        cluster,
    )
}

// ---------------------------------------------------------------------------------------------
// Value encoding

pub(crate) fn encode<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>, RepoError> {
    serde_json::to_vec(value).map_err(|e| encode_error(what, e))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, RepoError> {
    serde_json::from_slice(bytes).map_err(|e| decode_error(what, e))
}

// ---------------------------------------------------------------------------------------------
// Typed reads, generic over read-only and writable tables

pub(crate) fn read_config(
    table: &impl ReadableTable<Key3, Bytes>,
    key: &ConfigKey,
) -> Result<Option<ConfigItem>, RepoError> {
    match table.get(config_key(key)).map_err(storage)? {
        Some(guard) => decode(guard.value(), "configs").map(Some),
        None => Ok(None),
    }
}

pub(crate) fn read_config_key(
    table: &impl ReadableTable<u64, Key3>,
    id: u64,
) -> Result<Option<ConfigKey>, RepoError> {
    Ok(table
        .get(id)
        .map_err(storage)?
        .map(|guard| key_from_parts(guard.value())))
}

/// Every formal config of a namespace, in key order.
pub(crate) fn read_namespace_configs(
    table: &impl ReadableTable<Key3, Bytes>,
    namespace: &str,
) -> Result<Vec<ConfigItem>, RepoError> {
    let mut out = Vec::new();
    for row in table.range((namespace, "", "")..).map_err(storage)? {
        let (key, value) = row.map_err(storage)?;
        if key.value().0 != namespace {
            break;
        }
        out.push(decode(value.value(), "configs")?);
    }
    Ok(out)
}

pub(crate) fn read_history(
    table: &impl ReadableTable<u64, Bytes>,
    nid: u64,
) -> Result<Option<HistoryEntry>, RepoError> {
    match table.get(nid).map_err(storage)? {
        Some(guard) => decode(guard.value(), "history").map(Some),
        None => Ok(None),
    }
}

/// Nids of a key's history rows, oldest first.
pub(crate) fn read_history_nids(
    table: &impl ReadableTable<Key4, ()>,
    key: &ConfigKey,
) -> Result<Vec<u64>, RepoError> {
    let (ns, group, data_id) = config_key(key);
    let mut out = Vec::new();
    for row in table
        .range((ns, group, data_id, 0)..=(ns, group, data_id, u64::MAX))
        .map_err(storage)?
    {
        let (k, _) = row.map_err(storage)?;
        out.push(k.value().3);
    }
    Ok(out)
}

/// The newest nid recorded for a config id.
pub(crate) fn read_latest_nid_of_config(
    table: &impl ReadableTable<(u64, u64), ()>,
    config_id: u64,
) -> Result<Option<u64>, RepoError> {
    let mut range = table
        .range((config_id, 0)..=(config_id, u64::MAX))
        .map_err(storage)?;
    match range.next_back() {
        Some(row) => Ok(Some(row.map_err(storage)?.0.value().1)),
        None => Ok(None),
    }
}

pub(crate) fn read_gray(
    table: &impl ReadableTable<GrayKey, Bytes>,
    key: &ConfigKey,
    gray: &Gray,
) -> Result<Option<GrayConfig>, RepoError> {
    match table.get(gray_key(key, gray)).map_err(storage)? {
        Some(guard) => decode(guard.value(), "grays").map(Some),
        None => Ok(None),
    }
}

/// Every gray variant of a key: beta first, then tags by name.
pub(crate) fn read_grays(
    table: &impl ReadableTable<GrayKey, Bytes>,
    key: &ConfigKey,
) -> Result<Vec<GrayConfig>, RepoError> {
    let (ns, group, data_id) = config_key(key);
    let mut out = Vec::new();
    for row in table
        .range((ns, group, data_id, 0, "")..(ns, group, data_id, 2, ""))
        .map_err(storage)?
    {
        let (_, value) = row.map_err(storage)?;
        out.push(decode(value.value(), "grays")?);
    }
    Ok(out)
}

/// Latest change of every key changed at or after `since_ms`, oldest first.
pub(crate) fn read_changes_since(
    table: &impl ReadableTable<(i64, u64), Key3>,
    since_ms: i64,
) -> Result<Vec<(i64, ConfigKey)>, RepoError> {
    let mut out = Vec::new();
    for row in table.range((since_ms, 0)..).map_err(storage)? {
        let (k, v) = row.map_err(storage)?;
        out.push((k.value().0, key_from_parts(v.value())));
    }
    Ok(out)
}

pub(crate) fn read_namespace(
    table: &impl ReadableTable<&'static str, Bytes>,
    id: &str,
) -> Result<Option<Namespace>, RepoError> {
    match table.get(id).map_err(storage)? {
        Some(guard) => decode(guard.value(), "namespaces").map(Some),
        None => Ok(None),
    }
}

pub(crate) fn read_namespaces(
    table: &impl ReadableTable<&'static str, Bytes>,
) -> Result<Vec<Namespace>, RepoError> {
    let mut out = Vec::new();
    for row in table.iter().map_err(storage)? {
        let (_, value) = row.map_err(storage)?;
        out.push(decode(value.value(), "namespaces")?);
    }
    Ok(out)
}

pub(crate) fn read_service(
    table: &impl ReadableTable<Key3, Bytes>,
    key: &ServiceKey,
) -> Result<Option<ServiceMeta>, RepoError> {
    match table.get(service_key(key)).map_err(storage)? {
        Some(guard) => decode(guard.value(), "services").map(Some),
        None => Ok(None),
    }
}

pub(crate) fn read_services(
    table: &impl ReadableTable<Key3, Bytes>,
) -> Result<Vec<ServiceMeta>, RepoError> {
    let mut out = Vec::new();
    for row in table.iter().map_err(storage)? {
        let (_, value) = row.map_err(storage)?;
        out.push(decode(value.value(), "services")?);
    }
    Ok(out)
}

pub(crate) fn read_instance(
    table: &impl ReadableTable<InstanceKey, Bytes>,
    service: &ServiceKey,
    ip: &str,
    port: u16,
    cluster: &str,
) -> Result<Option<Instance>, RepoError> {
    match table
        .get(instance_key(service, ip, port, cluster))
        .map_err(storage)?
    {
        Some(guard) => decode(guard.value(), "instances").map(Some),
        None => Ok(None),
    }
}

/// Persistent instances of a service, ordered by (ip, port, cluster). With `limit` 1 this is
/// the "does any instance remain" probe.
pub(crate) fn read_instances(
    table: &impl ReadableTable<InstanceKey, Bytes>,
    service: &ServiceKey,
    limit: usize,
) -> Result<Vec<Instance>, RepoError> {
    let (ns, group, name) = service_key(service);
    let mut out = Vec::new();
    for row in table
        .range((ns, group, name, "", 0, "")..)
        .map_err(storage)?
    {
        if out.len() >= limit {
            break;
        }
        let (k, value) = row.map_err(storage)?;
        let k = k.value();
        if (k.0, k.1, k.2) != (ns, group, name) {
            break;
        }
        out.push(decode(value.value(), "instances")?);
    }
    Ok(out)
}

pub(crate) fn read_user(
    table: &impl ReadableTable<&'static str, Bytes>,
    username: &str,
) -> Result<Option<nacos_core::User>, RepoError> {
    match table.get(username).map_err(storage)? {
        Some(guard) => decode(guard.value(), "users").map(Some),
        None => Ok(None),
    }
}

pub(crate) fn read_users(
    table: &impl ReadableTable<&'static str, Bytes>,
) -> Result<Vec<nacos_core::User>, RepoError> {
    let mut out = Vec::new();
    for row in table.iter().map_err(storage)? {
        let (_, value) = row.map_err(storage)?;
        out.push(decode(value.value(), "users")?);
    }
    Ok(out)
}

/// Every role binding, ordered by (role, username).
pub(crate) fn read_roles(
    table: &impl ReadableTable<(&'static str, &'static str), ()>,
) -> Result<Vec<nacos_core::RoleBinding>, RepoError> {
    let mut out = Vec::new();
    for row in table.iter().map_err(storage)? {
        let (key, _) = row.map_err(storage)?;
        let (role, username) = key.value();
        out.push(nacos_core::RoleBinding {
            role: role.to_string(),
            username: username.to_string(),
        });
    }
    Ok(out)
}

/// Every permission, ordered by (role, resource, action).
pub(crate) fn read_permissions(
    table: &impl ReadableTable<Key3, ()>,
) -> Result<Vec<nacos_core::Permission>, RepoError> {
    let mut out = Vec::new();
    for row in table.iter().map_err(storage)? {
        let (key, _) = row.map_err(storage)?;
        let (role, resource, action) = key.value();
        out.push(nacos_core::Permission {
            role: role.to_string(),
            resource: resource.to_string(),
            action: action.to_string(),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Writable tables

/// Every table, opened for writing in one transaction. [`crate::command::apply`] opens this
/// once per command, and group commit once per batch ([`crate::command::apply_to`]), so
/// handlers never open a table twice.
pub(crate) struct WriteTables<'txn> {
    pub configs: Table<'txn, Key3, Bytes>,
    pub config_ids: Table<'txn, u64, Key3>,
    pub history: Table<'txn, u64, Bytes>,
    pub history_by_key: Table<'txn, Key4, ()>,
    pub history_by_config: Table<'txn, (u64, u64), ()>,
    pub grays: Table<'txn, GrayKey, Bytes>,
    pub changes: Table<'txn, (i64, u64), Key3>,
    pub change_by_key: Table<'txn, Key3, (i64, u64)>,
    pub namespaces: Table<'txn, &'static str, Bytes>,
    pub services: Table<'txn, Key3, Bytes>,
    pub instances: Table<'txn, InstanceKey, Bytes>,
    pub counters: Table<'txn, &'static str, u64>,
    pub users: Table<'txn, &'static str, Bytes>,
    pub roles: Table<'txn, (&'static str, &'static str), ()>,
    pub permissions: Table<'txn, Key3, ()>,
}

impl<'txn> WriteTables<'txn> {
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<Self, RepoError> {
        Ok(Self {
            configs: txn.open_table(CONFIGS).map_err(storage)?,
            config_ids: txn.open_table(CONFIG_IDS).map_err(storage)?,
            history: txn.open_table(HISTORY).map_err(storage)?,
            history_by_key: txn.open_table(HISTORY_BY_KEY).map_err(storage)?,
            history_by_config: txn.open_table(HISTORY_BY_CONFIG).map_err(storage)?,
            grays: txn.open_table(GRAYS).map_err(storage)?,
            changes: txn.open_table(CHANGES).map_err(storage)?,
            change_by_key: txn.open_table(CHANGE_BY_KEY).map_err(storage)?,
            namespaces: txn.open_table(NAMESPACES).map_err(storage)?,
            services: txn.open_table(SERVICES).map_err(storage)?,
            instances: txn.open_table(INSTANCES).map_err(storage)?,
            counters: txn.open_table(COUNTERS).map_err(storage)?,
            users: txn.open_table(USERS).map_err(storage)?,
            roles: txn.open_table(ROLES).map_err(storage)?,
            permissions: txn.open_table(PERMISSIONS).map_err(storage)?,
        })
    }

    /// Hand out the next value of a counter (1, 2, 3, …); part of the transaction, so a rolled
    /// back command hands nothing out.
    pub(crate) fn next_id(&mut self, counter: &str) -> Result<u64, RepoError> {
        let current = self
            .counters
            .get(counter)
            .map_err(storage)?
            .map_or(0, |g| g.value());
        let next = current
            .checked_add(1)
            .ok_or_else(|| RepoError::Internal(format!("counter {counter} overflowed").into()))?;
        self.counters.insert(counter, next).map_err(storage)?;
        Ok(next)
    }
}
