//! Repository traits. The server holds them as `Arc<dyn …>`, so they are object safe
//! (`#[async_trait]`). Every method documents its atomicity and the error kinds it returns;
//! [`RepoError::Unavailable`] and [`RepoError::Internal`] may come from any method and are not
//! repeated below. The public conformance suite in `nacos-tests` checks these contracts.
//! Whole-store export and import ([`TransferRepo`]) is documented in [`crate::transfer`].

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{RepoError, RepoResult};
use crate::model::*;
use crate::transfer::TransferRepo;

/// What a backend supports, so the conformance suite skips the rest loudly instead of silently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Beta and tag variants of configs.
    pub gray_configs: bool,
    /// Durable services and persistent instances ([`InstanceRepo`]).
    pub persistent_instances: bool,
}

impl Capabilities {
    pub const ALL: Capabilities = Capabilities {
        gray_configs: true,
        persistent_instances: true,
    };
}

/// Configs: formal rows, their history, their gray (beta / tag) variants.
#[async_trait]
pub trait ConfigRepo: Send + Sync + std::fmt::Debug {
    /// The formal config, or `None`.
    async fn get(&self, key: &ConfigKey) -> RepoResult<Option<ConfigItem>>;

    /// Why a write would fail right now, when the store knows without trying one (e.g. no
    /// database node is writable while replicas still answer reads). Cheap, no I/O: the
    /// readiness probe asks it. The default knows nothing in advance.
    fn write_problem(&self) -> Option<RepoError> {
        None
    }

    /// Multi-node SQL backends: which node takes writes and how often that changed (`None`
    /// for backends without database nodes to choose from).
    fn ha_status(&self) -> Option<crate::ha::HaStatus> {
        None
    }

    /// Insert or update a formal config and append its history row, atomically: either both are
    /// written or neither. Insert assigns a new id, writes history `I` with the new content and
    /// `config_id` 0; update keeps the id and the unspecified (`None`) fields and writes history
    /// `U` with the *previous* content. Returns the stored row.
    ///
    /// Errors: `PreconditionFailed` when `cas_md5` is set and differs from the stored md5 (or
    /// the config is missing); nothing is written then.
    async fn publish(&self, publish: ConfigPublish) -> RepoResult<ConfigItem>;

    /// Delete a formal config and its tags, appending history `D` with the deleted content,
    /// atomically. Returns the deleted row, or `None` when it did not exist (nothing written).
    async fn remove(&self, key: &ConfigKey, operator: &Operator) -> RepoResult<Option<ConfigItem>>;

    /// Delete formal configs by id, each as [`ConfigRepo::remove`]; the whole batch is one
    /// atomic write. Unknown ids are skipped. Returns the deleted rows.
    async fn remove_by_ids(&self, ids: &[u64], operator: &Operator) -> RepoResult<Vec<ConfigItem>>;

    /// One page of the formal configs matching `query`, ordered by id ascending, with the total
    /// count of matches. A page past the end is empty (not an error).
    async fn search(&self, query: &ConfigQuery) -> RepoResult<Page<ConfigItem>>;

    /// One page of the history of a key, newest first (by nid descending), including rows of
    /// earlier incarnations of the key.
    async fn history(&self, key: &ConfigKey, page: PageRequest) -> RepoResult<Page<HistoryEntry>>;

    /// One history row by nid, or `None`.
    async fn history_entry(&self, nid: u64) -> RepoResult<Option<HistoryEntry>>;

    /// The newest history row whose `config_id` is `config_id`, or `None`.
    async fn previous_history(&self, config_id: u64) -> RepoResult<Option<HistoryEntry>>;

    /// A beta or tag variant, or `None`.
    async fn get_gray(&self, key: &ConfigKey, gray: &Gray) -> RepoResult<Option<GrayConfig>>;

    /// Every gray variant of a key (beta first, then tags by name).
    async fn list_grays(&self, key: &ConfigKey) -> RepoResult<Vec<GrayConfig>>;

    /// Insert or replace a gray variant, atomically. No history is written (as Nacos 2.4).
    ///
    /// Errors: `PreconditionFailed` when `cas_md5` is set and differs from the stored variant's md5.
    async fn publish_gray(&self, gray: Gray, publish: GrayPublish) -> RepoResult<GrayConfig>;

    /// Delete a gray variant. Returns it, or `None` when it did not exist.
    async fn remove_gray(&self, key: &ConfigKey, gray: &Gray) -> RepoResult<Option<GrayConfig>>;

    /// Keys whose formal or gray content changed (including deletes) at or after `since_ms`,
    /// oldest first. Backends answer this from an index, not a scan of every config.
    async fn changed_since(&self, since_ms: i64) -> RepoResult<Vec<ConfigChange>>;

    /// Delete at most `limit` history rows whose `modified_ms` is before `before_ms`, lowest
    /// nid first, and return how many went. A row modified at or after `before_ms` is never
    /// deleted; formal configs, gray variants and the change index are untouched. Callers purge
    /// in batches (call again while the answer equals `limit`), so one call is one short write
    /// that never holds writers up for long: each call is atomic on its own (all of its rows go
    /// or none), a run of calls is not.
    ///
    /// Backends may visit rows in nid order and stop at the first one not older than the
    /// cutoff (nids follow write time): a row written while a clock stood behind a later
    /// row's then waits until that later row ages too. `limit` 0 deletes nothing.
    ///
    /// Replicated stores delete the same rows on every replica (the cutoff travels with the
    /// command). Errors: only `Unavailable` / `Internal`; nothing is deleted then.
    async fn purge_history(&self, before_ms: i64, limit: u32) -> RepoResult<u64>;

    /// Whether this process holds the store's housekeeping lease now: of all the processes
    /// sharing one store (a shared database), at most one holds it at any moment, and the
    /// holder keeps it across calls until its session ends (its process or its database
    /// connection goes), when another caller takes it over. The history purge runs only
    /// where this says `true`, so exactly one node of a shared-database cluster purges.
    ///
    /// A store only one process opens answers `true` (the default). Errors: `Unavailable`
    /// when the store cannot be asked; callers treat that as "not held".
    async fn housekeeping_lease(&self) -> RepoResult<bool> {
        Ok(true)
    }
}

/// Custom namespaces (`tenant_info`). The public namespace is implicit and never stored.
#[async_trait]
pub trait NamespaceRepo: Send + Sync + std::fmt::Debug {
    /// Every custom namespace, ordered by creation time then id.
    async fn list(&self) -> RepoResult<Vec<Namespace>>;

    async fn get(&self, id: &str) -> RepoResult<Option<Namespace>>;

    /// Errors: `AlreadyExists` when the id is taken (nothing written).
    async fn create(&self, namespace: Namespace) -> RepoResult<()>;

    /// Change name and description. Errors: `NotFound`.
    async fn update(&self, id: &str, name: &str, desc: &str) -> RepoResult<()>;

    /// Returns whether it existed. Configs and services in it are kept, as Nacos keeps them.
    async fn delete(&self, id: &str) -> RepoResult<bool>;
}

/// Durable naming data: service settings and persistent (non-ephemeral) instances.
/// Ephemeral instances never reach a repository.
#[async_trait]
pub trait InstanceRepo: Send + Sync + std::fmt::Debug {
    /// Every stored service, ordered by key.
    async fn list_services(&self) -> RepoResult<Vec<ServiceMeta>>;

    async fn get_service(&self, key: &ServiceKey) -> RepoResult<Option<ServiceMeta>>;

    /// Errors: `AlreadyExists` (nothing written).
    async fn create_service(&self, meta: ServiceMeta) -> RepoResult<()>;

    /// Replace the settings of an existing service. Errors: `NotFound`.
    async fn update_service(&self, meta: ServiceMeta) -> RepoResult<()>;

    /// Delete a service. Errors: `NotFound`; `PreconditionFailed` while persistent instances
    /// remain (nothing written).
    async fn delete_service(&self, key: &ServiceKey) -> RepoResult<()>;

    /// Insert or replace the persistent instance with the same `(ip, port, cluster)`, creating
    /// the service as persistent if it is missing, atomically.
    ///
    /// Errors: `PreconditionFailed` when the service exists and is ephemeral.
    async fn register_instance(&self, service: &ServiceKey, instance: Instance) -> RepoResult<()>;

    /// Remove a persistent instance; returns it, or `None` when absent.
    async fn deregister_instance(
        &self,
        service: &ServiceKey,
        addr: &InstanceAddr,
    ) -> RepoResult<Option<Instance>>;

    /// Persistent instances of a service, ordered by `(ip, port, cluster)`.
    async fn list_instances(&self, service: &ServiceKey) -> RepoResult<Vec<Instance>>;
}

/// Users, role bindings and permissions of the default auth plugin (Nacos's `users`, `roles`,
/// `permissions` tables). Passwords are stored as given (BCrypt hashes); the repository never
/// hashes or checks them.
#[async_trait]
pub trait UserRepo: Send + Sync + std::fmt::Debug {
    async fn get_user(&self, username: &str) -> RepoResult<Option<User>>;

    /// Users whose name matches `username` (empty = all; `mode` as config search), ordered by
    /// name.
    async fn list_users(
        &self,
        username: &str,
        mode: MatchMode,
        page: PageRequest,
    ) -> RepoResult<Page<User>>;

    /// Errors: `AlreadyExists` (nothing written).
    async fn create_user(&self, user: User) -> RepoResult<()>;

    /// Replace the stored password hash. Errors: `NotFound`.
    async fn update_password(&self, username: &str, password_hash: &str) -> RepoResult<()>;

    /// Delete a user and its role bindings, atomically. Returns whether the user existed.
    async fn delete_user(&self, username: &str) -> RepoResult<bool>;

    /// Role bindings filtered by user and role (empty = any; `mode` as config search), ordered
    /// by role then user.
    async fn list_roles(
        &self,
        username: &str,
        role: &str,
        mode: MatchMode,
        page: PageRequest,
    ) -> RepoResult<Page<RoleBinding>>;

    /// Errors: `AlreadyExists` when the binding exists.
    async fn add_role(&self, binding: RoleBinding) -> RepoResult<()>;

    /// Remove a role from one user, or from everyone when `username` is `None`. Returns how many
    /// bindings went.
    async fn remove_role(&self, role: &str, username: Option<&str>) -> RepoResult<u64>;

    /// Permissions of a role (empty = every role; `mode` as config search), ordered by role,
    /// resource, action.
    async fn list_permissions(
        &self,
        role: &str,
        mode: MatchMode,
        page: PageRequest,
    ) -> RepoResult<Page<Permission>>;

    /// Errors: `AlreadyExists` when the same (role, resource, action) exists.
    async fn add_permission(&self, permission: Permission) -> RepoResult<()>;

    /// Returns whether it existed.
    async fn remove_permission(&self, permission: &Permission) -> RepoResult<bool>;
}

/// One backend's set of repositories, as a storage factory hands them to the server.
#[derive(Clone, Debug)]
pub struct Repos {
    pub configs: Arc<dyn ConfigRepo>,
    pub namespaces: Arc<dyn NamespaceRepo>,
    pub instances: Arc<dyn InstanceRepo>,
    /// Users, roles and permissions of the default auth plugin.
    pub users: Arc<dyn UserRepo>,
    /// Whole-store export and import (backup, restore, migration); see [`TransferRepo`].
    pub transfer: Arc<dyn TransferRepo>,
    pub capabilities: Capabilities,
}

impl Repos {
    /// Every repository served by one store that implements them all, with `capabilities`.
    pub fn of<S>(store: Arc<S>, capabilities: Capabilities) -> Repos
    where
        S: ConfigRepo + NamespaceRepo + InstanceRepo + UserRepo + TransferRepo + 'static,
    {
        Repos {
            configs: store.clone(),
            namespaces: store.clone(),
            instances: store.clone(),
            users: store.clone(),
            transfer: store,
            capabilities,
        }
    }
}
