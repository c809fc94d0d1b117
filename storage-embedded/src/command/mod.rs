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
//!
//! # Layout
//! - this file: [`Command`], [`CommandOutput`] and [`apply`], which dispatches each command;
//! - `writes`: the row writes commands share (configs, gray variants, history and its purge,
//!   the change index, services, id counters);
//! - `import`: [`Command::Import`], a restore batch written by the import rule.

use nacos_core::transfer::Record;
use nacos_core::{
    ConfigItem, ConfigKey, ConfigPublish, Gray, GrayConfig, GrayPublish, Instance, Namespace,
    Operator, Permission, RepoError, RoleBinding, ServiceKey, ServiceMeta, User, now_millis, rules,
};
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::error::storage;
use import::apply_import;
use writes::*;

mod import;
mod writes;
use crate::tables::{
    WriteTables, encode, gray_key, instance_key, read_config_key, read_instance, read_instances,
    read_namespace, read_roles, read_service, read_user, service_key,
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
    apply_to(&mut WriteTables::open(txn)?, command)
}

/// [`apply`] with the transaction's tables already open, for a batch of commands in one
/// transaction: opening (and closing) all of them is about a fifth of a config publish's cost,
/// so a batch pays it once rather than once per command.
pub(crate) fn apply_to(
    t: &mut WriteTables<'_>,
    command: &Command,
) -> Result<CommandOutput, RepoError> {
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
            publish_config(t, publish, *now_ms).map(CommandOutput::Config)
        }
        Command::PurgeHistory { before_ms, limit } => {
            purge_history(t, *before_ms, *limit).map(CommandOutput::Removed)
        }
        Command::RemoveConfig {
            key,
            operator,
            now_ms,
        } => remove_config(t, key, operator, *now_ms).map(CommandOutput::RemovedConfig),
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
                if let Some(item) = remove_config(t, &key, operator, *now_ms)? {
                    removed.push(item);
                }
            }
            Ok(CommandOutput::RemovedConfigs(removed))
        }
        Command::PublishGray {
            gray,
            publish,
            now_ms,
        } => publish_gray(t, gray, publish, *now_ms).map(CommandOutput::Gray),
        Command::RemoveGray { key, gray, now_ms } => {
            let removed = match t.grays.remove(gray_key(key, gray)).map_err(storage)? {
                Some(guard) => Some(crate::tables::decode::<GrayConfig>(guard.value(), "grays")?),
                None => None,
            };
            if removed.is_some() {
                record_change(t, key, *now_ms)?;
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
            write_service(t, meta)?;
            Ok(CommandOutput::Done)
        }
        Command::UpdateService { meta } => {
            rules::check_service(meta)?;
            let Some(stored) = read_service(&t.services, &meta.key)? else {
                return Err(rules::service_not_found(&meta.key));
            };
            let mut meta = meta.clone();
            meta.created_ms = stored.created_ms;
            write_service(t, &meta)?;
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
                    write_service(t, &meta)?;
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
            apply_import(t, records, *now_ms)?;
            Ok(CommandOutput::Done)
        }
    }
}
