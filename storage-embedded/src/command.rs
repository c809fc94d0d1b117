//! Every mutation as a [`Command`] value, and [`apply`], the one function that performs them.
//!
//! `apply` is deterministic: given the same command and the same database state it writes the
//! same rows and returns the same output. Everything non-deterministic (the wall clock) is taken
//! when the command is built and travels inside it; ids (config ids, history nids, gray ids,
//! change sequence numbers) are allocated inside `apply` from the `counters` table. That makes a
//! command log replayable, which is what a Raft state machine needs: it can call `apply` on each
//! committed entry inside its own write transaction.
//!
//! `apply` does no I/O besides the transaction it is handed, and never commits: the caller
//! commits on `Ok` and aborts on `Err` (an error leaves nothing written once aborted).

use nacos_core::transfer::Record;
use nacos_core::{
    ConfigItem, ConfigKey, ConfigPublish, Gray, GrayConfig, GrayPublish, HistoryEntry, HistoryOp,
    Instance, Namespace, Operator, Permission, RepoError, RoleBinding, ServiceKey, ServiceMeta,
    User, now_millis, rules,
};
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::error::storage;
use crate::tables::{
    CHANGE_SEQ, CONFIG_ID, GRAY_ID, HISTORY_NID, WriteTables, config_key, decode, encode, gray_key,
    instance_key, read_config, read_config_key, read_gray, read_history, read_instance,
    read_instances, read_namespace, read_roles, read_service, read_user, service_key,
};

/// One mutation of the store. Serializable so it can travel through a replicated log.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// [`nacos_core::ConfigRepo::publish`].
    PublishConfig { publish: ConfigPublish, now_ms: i64 },
    /// [`nacos_core::ConfigRepo::remove`].
    RemoveConfig {
        key: ConfigKey,
        operator: Operator,
        now_ms: i64,
    },
    /// [`nacos_core::ConfigRepo::remove_by_ids`].
    RemoveConfigsByIds {
        ids: Vec<u64>,
        operator: Operator,
        now_ms: i64,
    },
    /// [`nacos_core::ConfigRepo::publish_gray`].
    PublishGray {
        gray: Gray,
        publish: GrayPublish,
        now_ms: i64,
    },
    /// [`nacos_core::ConfigRepo::remove_gray`].
    RemoveGray {
        key: ConfigKey,
        gray: Gray,
        now_ms: i64,
    },
    /// [`nacos_core::NamespaceRepo::create`].
    CreateNamespace { namespace: Namespace },
    /// [`nacos_core::NamespaceRepo::update`].
    UpdateNamespace {
        id: String,
        name: String,
        desc: String,
        now_ms: i64,
    },
    /// [`nacos_core::NamespaceRepo::delete`].
    DeleteNamespace { id: String },
    /// [`nacos_core::InstanceRepo::create_service`].
    CreateService { meta: ServiceMeta },
    /// [`nacos_core::InstanceRepo::update_service`].
    UpdateService { meta: ServiceMeta },
    /// [`nacos_core::InstanceRepo::delete_service`].
    DeleteService { key: ServiceKey },
    /// [`nacos_core::InstanceRepo::register_instance`]; `now_ms` stamps a service it creates.
    RegisterInstance {
        service: ServiceKey,
        instance: Instance,
        now_ms: i64,
    },
    /// [`nacos_core::InstanceRepo::deregister_instance`].
    DeregisterInstance {
        service: ServiceKey,
        ip: String,
        port: u16,
        cluster: String,
    },
    /// [`nacos_core::UserRepo::create_user`].
    CreateUser { user: User },
    /// [`nacos_core::UserRepo::update_password`].
    UpdatePassword {
        username: String,
        password_hash: String,
    },
    /// [`nacos_core::UserRepo::delete_user`] (its role bindings go too).
    DeleteUser { username: String },
    /// [`nacos_core::UserRepo::add_role`].
    AddRole { binding: RoleBinding },
    /// [`nacos_core::UserRepo::remove_role`].
    RemoveRole {
        role: String,
        username: Option<String>,
    },
    /// [`nacos_core::UserRepo::add_permission`].
    AddPermission { permission: Permission },
    /// [`nacos_core::UserRepo::remove_permission`].
    RemovePermission { permission: Permission },
    /// [`nacos_core::ConfigRepo::purge_history`]. The cutoff is decided once, by whoever built
    /// the command, so every replica deletes exactly the same rows.
    PurgeHistory { before_ms: i64, limit: u32 },
    /// [`nacos_core::TransferRepo::import`]: one batch of a restore; `now_ms` stamps the
    /// change index of the keys it writes.
    Import { records: Vec<Record>, now_ms: i64 },
}

impl Command {
    /// A publish stamped with the current time.
    pub fn publish_config(publish: ConfigPublish) -> Self {
        Command::PublishConfig {
            publish,
            now_ms: now_millis(),
        }
    }

    pub fn remove_config(key: ConfigKey, operator: Operator) -> Self {
        Command::RemoveConfig {
            key,
            operator,
            now_ms: now_millis(),
        }
    }

    pub fn remove_configs_by_ids(ids: Vec<u64>, operator: Operator) -> Self {
        Command::RemoveConfigsByIds {
            ids,
            operator,
            now_ms: now_millis(),
        }
    }

    pub fn publish_gray(gray: Gray, publish: GrayPublish) -> Self {
        Command::PublishGray {
            gray,
            publish,
            now_ms: now_millis(),
        }
    }

    pub fn remove_gray(key: ConfigKey, gray: Gray) -> Self {
        Command::RemoveGray {
            key,
            gray,
            now_ms: now_millis(),
        }
    }

    pub fn update_namespace(id: String, name: String, desc: String) -> Self {
        Command::UpdateNamespace {
            id,
            name,
            desc,
            now_ms: now_millis(),
        }
    }

    pub fn register_instance(service: ServiceKey, instance: Instance) -> Self {
        Command::RegisterInstance {
            service,
            instance,
            now_ms: now_millis(),
        }
    }
}

/// What a command returns; each command has one variant (see [`apply`]).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CommandOutput {
    /// `PublishConfig`: the stored row.
    Config(ConfigItem),
    /// `RemoveConfig`: the deleted row, if it existed.
    RemovedConfig(Option<ConfigItem>),
    /// `RemoveConfigsByIds`: the deleted rows, in the order of the ids.
    RemovedConfigs(Vec<ConfigItem>),
    /// `PublishGray`: the stored variant.
    Gray(GrayConfig),
    /// `RemoveGray`: the deleted variant, if it existed.
    RemovedGray(Option<GrayConfig>),
    /// `DeleteNamespace`: whether it existed.
    NamespaceDeleted(bool),
    /// `DeregisterInstance`: the removed instance, if it existed.
    RemovedInstance(Option<Instance>),
    /// `DeleteUser`, `RemovePermission`: whether the row existed.
    Existed(bool),
    /// `RemoveRole`: how many bindings went; `PurgeHistory`: how many history rows went.
    Removed(u64),
    /// Every other command.
    Done,
}

/// Perform one command inside `txn`. Deterministic given the command and the state `txn`
/// sees; see the module docs. On `Err` the caller must abort the transaction.
pub fn apply(txn: &WriteTransaction, command: &Command) -> Result<CommandOutput, RepoError> {
    let mut t = WriteTables::open(txn)?;
    match command {
        Command::CreateUser { user } => {
            if read_user(&t.users, &user.username)?.is_some() {
                return Err(RepoError::AlreadyExists(format!("user {}", user.username)));
            }
            let bytes = encode(user, "users")?;
            t.users
                .insert(user.username.as_str(), bytes.as_slice())
                .map_err(storage)?;
            Ok(CommandOutput::Done)
        }
        Command::UpdatePassword {
            username,
            password_hash,
        } => {
            let Some(mut user) = read_user(&t.users, username)? else {
                return Err(RepoError::NotFound(format!("user {username}")));
            };
            user.password_hash.clone_from(password_hash);
            let bytes = encode(&user, "users")?;
            t.users
                .insert(username.as_str(), bytes.as_slice())
                .map_err(storage)?;
            Ok(CommandOutput::Done)
        }
        Command::DeleteUser { username } => {
            let existed = t
                .users
                .remove(username.as_str())
                .map_err(storage)?
                .is_some();
            for binding in read_roles(&t.roles)? {
                if binding.username == *username {
                    t.roles
                        .remove((binding.role.as_str(), binding.username.as_str()))
                        .map_err(storage)?;
                }
            }
            Ok(CommandOutput::Existed(existed))
        }
        Command::AddRole { binding } => {
            let key = (binding.role.as_str(), binding.username.as_str());
            if t.roles.get(key).map_err(storage)?.is_some() {
                return Err(RepoError::AlreadyExists(format!(
                    "role {} of user {}",
                    binding.role, binding.username
                )));
            }
            t.roles.insert(key, ()).map_err(storage)?;
            Ok(CommandOutput::Done)
        }
        Command::RemoveRole { role, username } => {
            let mut removed = 0;
            for binding in read_roles(&t.roles)? {
                if binding.role == *role && username.as_ref().is_none_or(|u| *u == binding.username)
                {
                    t.roles
                        .remove((binding.role.as_str(), binding.username.as_str()))
                        .map_err(storage)?;
                    removed += 1;
                }
            }
            Ok(CommandOutput::Removed(removed))
        }
        Command::AddPermission { permission } => {
            let key = (
                permission.role.as_str(),
                permission.resource.as_str(),
                permission.action.as_str(),
            );
            if t.permissions.get(key).map_err(storage)?.is_some() {
                return Err(RepoError::AlreadyExists(format!(
                    "permission {} {} of role {}",
                    permission.resource, permission.action, permission.role
                )));
            }
            t.permissions.insert(key, ()).map_err(storage)?;
            Ok(CommandOutput::Done)
        }
        Command::RemovePermission { permission } => {
            let key = (
                permission.role.as_str(),
                permission.resource.as_str(),
                permission.action.as_str(),
            );
            let existed = t.permissions.remove(key).map_err(storage)?.is_some();
            Ok(CommandOutput::Existed(existed))
        }
        Command::PublishConfig { publish, now_ms } => {
            publish_config(&mut t, publish, *now_ms).map(CommandOutput::Config)
        }
        Command::PurgeHistory { before_ms, limit } => {
            purge_history(&mut t, *before_ms, *limit).map(CommandOutput::Removed)
        }
        Command::RemoveConfig {
            key,
            operator,
            now_ms,
        } => remove_config(&mut t, key, operator, *now_ms).map(CommandOutput::RemovedConfig),
        Command::RemoveConfigsByIds {
            ids,
            operator,
            now_ms,
        } => {
            let mut removed = Vec::new();
            for id in ids {
                let Some(key) = read_config_key(&t.config_ids, *id)? else {
                    continue;
                };
                if let Some(item) = remove_config(&mut t, &key, operator, *now_ms)? {
                    removed.push(item);
                }
            }
            Ok(CommandOutput::RemovedConfigs(removed))
        }
        Command::PublishGray {
            gray,
            publish,
            now_ms,
        } => publish_gray(&mut t, gray, publish, *now_ms).map(CommandOutput::Gray),
        Command::RemoveGray { key, gray, now_ms } => {
            let removed = match t.grays.remove(gray_key(key, gray)).map_err(storage)? {
                Some(guard) => Some(crate::tables::decode::<GrayConfig>(guard.value(), "grays")?),
                None => None,
            };
            if removed.is_some() {
                record_change(&mut t, key, *now_ms)?;
            }
            Ok(CommandOutput::RemovedGray(removed))
        }
        Command::CreateNamespace { namespace } => {
            if read_namespace(&t.namespaces, &namespace.id)?.is_some() {
                return Err(RepoError::AlreadyExists(format!(
                    "namespace {}",
                    namespace.id
                )));
            }
            let bytes = encode(namespace, "namespaces")?;
            t.namespaces
                .insert(namespace.id.as_str(), bytes.as_slice())
                .map_err(storage)?;
            Ok(CommandOutput::Done)
        }
        Command::UpdateNamespace {
            id,
            name,
            desc,
            now_ms,
        } => {
            let Some(mut namespace) = read_namespace(&t.namespaces, id)? else {
                return Err(RepoError::NotFound(format!("namespace {id}")));
            };
            namespace.name.clone_from(name);
            namespace.desc.clone_from(desc);
            namespace.modified_ms = *now_ms;
            let bytes = encode(&namespace, "namespaces")?;
            t.namespaces
                .insert(id.as_str(), bytes.as_slice())
                .map_err(storage)?;
            Ok(CommandOutput::Done)
        }
        Command::DeleteNamespace { id } => {
            let existed = t.namespaces.remove(id.as_str()).map_err(storage)?.is_some();
            Ok(CommandOutput::NamespaceDeleted(existed))
        }
        Command::CreateService { meta } => {
            rules::check_service(meta)?;
            if read_service(&t.services, &meta.key)?.is_some() {
                return Err(rules::service_exists(&meta.key));
            }
            write_service(&mut t, meta)?;
            Ok(CommandOutput::Done)
        }
        Command::UpdateService { meta } => {
            rules::check_service(meta)?;
            let Some(stored) = read_service(&t.services, &meta.key)? else {
                return Err(rules::service_not_found(&meta.key));
            };
            let mut meta = meta.clone();
            meta.created_ms = stored.created_ms;
            write_service(&mut t, &meta)?;
            Ok(CommandOutput::Done)
        }
        Command::DeleteService { key } => {
            if read_service(&t.services, key)?.is_none() {
                return Err(rules::service_not_found(key));
            }
            if !read_instances(&t.instances, key, 1)?.is_empty() {
                return Err(rules::service_in_use(key));
            }
            t.services.remove(service_key(key)).map_err(storage)?;
            Ok(CommandOutput::Done)
        }
        Command::RegisterInstance {
            service,
            instance,
            now_ms,
        } => {
            rules::check_instance(instance)?;
            match read_service(&t.services, service)? {
                Some(meta) if meta.ephemeral => {
                    return Err(rules::service_is_ephemeral(service));
                }
                Some(_) => {}
                None => {
                    let mut meta = ServiceMeta::new(service.clone(), false);
                    meta.created_ms = *now_ms;
                    meta.modified_ms = *now_ms;
                    write_service(&mut t, &meta)?;
                }
            }
            let bytes = encode(instance, "instances")?;
            let key = instance_key(service, &instance.ip, instance.port, &instance.cluster);
            t.instances.insert(key, bytes.as_slice()).map_err(storage)?;
            Ok(CommandOutput::Done)
        }
        Command::DeregisterInstance {
            service,
            ip,
            port,
            cluster,
        } => {
            let removed = read_instance(&t.instances, service, ip, *port, cluster)?;
            if removed.is_some() {
                t.instances
                    .remove(instance_key(service, ip, *port, cluster))
                    .map_err(storage)?;
            }
            Ok(CommandOutput::RemovedInstance(removed))
        }
        Command::Import { records, now_ms } => {
            apply_import(&mut t, records, *now_ms)?;
            Ok(CommandOutput::Done)
        }
    }
}

fn publish_config(
    t: &mut WriteTables<'_>,
    publish: &ConfigPublish,
    now_ms: i64,
) -> Result<ConfigItem, RepoError> {
    let stored = read_config(&t.configs, &publish.key)?;
    nacos_core::check_cas(
        publish.cas_md5.as_deref(),
        stored.as_ref().map(|item| item.md5.as_str()),
        &format!("config {}", publish.key.describe()),
    )?;
    let operator = &publish.operator;
    let (item, history) = match stored {
        None => {
            let id = t.next_id(CONFIG_ID)?;
            let item = rules::published_config(publish, None, id, now_ms);
            let history = history_row(&item, 0, HistoryOp::Insert, operator, now_ms);
            t.config_ids
                .insert(item.id, config_key(&item.key))
                .map_err(storage)?;
            (item, history)
        }
        Some(old) => {
            let item = rules::published_config(publish, Some(&old), old.id, now_ms);
            let history = history_row(&old, old.id, HistoryOp::Update, operator, now_ms);
            (item, history)
        }
    };
    let bytes = encode(&item, "configs")?;
    t.configs
        .insert(config_key(&item.key), bytes.as_slice())
        .map_err(storage)?;
    append_history(t, history)?;
    record_change(t, &item.key, now_ms)?;
    Ok(item)
}

fn remove_config(
    t: &mut WriteTables<'_>,
    key: &ConfigKey,
    operator: &Operator,
    now_ms: i64,
) -> Result<Option<ConfigItem>, RepoError> {
    let Some(item) = read_config(&t.configs, key)? else {
        return Ok(None);
    };
    t.configs.remove(config_key(key)).map_err(storage)?;
    t.config_ids.remove(item.id).map_err(storage)?;
    append_history(
        t,
        history_row(&item, item.id, HistoryOp::Delete, operator, now_ms),
    )?;
    record_change(t, key, now_ms)?;
    Ok(Some(item))
}

fn publish_gray(
    t: &mut WriteTables<'_>,
    gray: &Gray,
    publish: &GrayPublish,
    now_ms: i64,
) -> Result<GrayConfig, RepoError> {
    let stored = read_gray(&t.grays, &publish.key, gray)?;
    nacos_core::check_cas(
        publish.cas_md5.as_deref(),
        stored.as_ref().map(|variant| variant.md5.as_str()),
        &format!("{gray:?} of config {}", publish.key.describe()),
    )?;
    let id = match &stored {
        Some(old) => old.id,
        None => t.next_id(GRAY_ID)?,
    };
    let variant = rules::published_gray(gray, publish, stored.as_ref(), id, now_ms);
    let bytes = encode(&variant, "grays")?;
    t.grays
        .insert(gray_key(&variant.key, gray), bytes.as_slice())
        .map_err(storage)?;
    record_change(t, &variant.key, now_ms)?;
    Ok(variant)
}

/// A history row describing `source` (the new row for `I`, the previous one for `U`, the
/// deleted one for `D`), written by `operator` at `now_ms`. The nid is set on append.
fn history_row(
    source: &ConfigItem,
    config_id: u64,
    op: HistoryOp,
    operator: &Operator,
    now_ms: i64,
) -> HistoryEntry {
    HistoryEntry {
        nid: 0,
        config_id,
        key: source.key.clone(),
        content: source.content.clone(),
        md5: source.md5.clone(),
        app_name: source.app_name.clone(),
        src_user: operator.user.clone(),
        src_ip: operator.ip.clone(),
        op,
        encrypted_data_key: source.encrypted_data_key.clone(),
        created_ms: now_ms,
        modified_ms: now_ms,
    }
}

fn append_history(t: &mut WriteTables<'_>, mut entry: HistoryEntry) -> Result<(), RepoError> {
    entry.nid = t.next_id(HISTORY_NID)?;
    let bytes = encode(&entry, "history")?;
    t.history
        .insert(entry.nid, bytes.as_slice())
        .map_err(storage)?;
    let (ns, group, data_id) = config_key(&entry.key);
    t.history_by_key
        .insert((ns, group, data_id, entry.nid), ())
        .map_err(storage)?;
    t.history_by_config
        .insert((entry.config_id, entry.nid), ())
        .map_err(storage)?;
    Ok(())
}

/// Delete up to `limit` history rows older than `before_ms`, lowest nid first. Nids are handed
/// out in write order and stamped with the writer's clock, so the walk stops at the first row
/// that is not old enough: a batch reads at most `limit + 1` rows, never the whole table.
fn purge_history(t: &mut WriteTables<'_>, before_ms: i64, limit: u32) -> Result<u64, RepoError> {
    let mut doomed = Vec::new();
    for row in t.history.iter().map_err(storage)? {
        if doomed.len() >= limit as usize {
            break;
        }
        let (_, value) = row.map_err(storage)?;
        let entry: HistoryEntry = decode(value.value(), "history")?;
        if entry.modified_ms >= before_ms {
            break;
        }
        doomed.push(entry);
    }
    for entry in &doomed {
        t.history.remove(entry.nid).map_err(storage)?;
        let (ns, group, data_id) = config_key(&entry.key);
        t.history_by_key
            .remove((ns, group, data_id, entry.nid))
            .map_err(storage)?;
        t.history_by_config
            .remove((entry.config_id, entry.nid))
            .map_err(storage)?;
    }
    Ok(doomed.len() as u64)
}

/// Move the key's entry in the change log to `(now_ms, next seq)`.
fn record_change(t: &mut WriteTables<'_>, key: &ConfigKey, now_ms: i64) -> Result<(), RepoError> {
    let seq = t.next_id(CHANGE_SEQ)?;
    let previous = t
        .change_by_key
        .get(config_key(key))
        .map_err(storage)?
        .map(|g| g.value());
    if let Some(previous) = previous {
        t.changes.remove(previous).map_err(storage)?;
    }
    t.changes
        .insert((now_ms, seq), config_key(key))
        .map_err(storage)?;
    t.change_by_key
        .insert(config_key(key), (now_ms, seq))
        .map_err(storage)?;
    Ok(())
}

fn write_service(t: &mut WriteTables<'_>, meta: &ServiceMeta) -> Result<(), RepoError> {
    let bytes = encode(meta, "services")?;
    t.services
        .insert(service_key(&meta.key), bytes.as_slice())
        .map_err(storage)?;
    Ok(())
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

/// [`Command::Import`]: the import rule of [`nacos_core::TransferRepo`] inside the command's transaction.
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
