//! [`EmbeddedStore`]: opening the redb file, running commands durably, and the repository
//! trait impls (writes go through [`EmbeddedStore::execute`], reads through read transactions).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use nacos_core::{
    Capabilities, ConfigChange, ConfigItem, ConfigKey, ConfigPublish, ConfigQuery, ConfigRepo,
    Gray, GrayConfig, GrayPublish, HistoryEntry, Instance, InstanceAddr, InstanceRepo, MatchMode,
    Namespace, NamespaceRepo, Operator, Page, PageRequest, Permission, RepoError, Repos,
    RoleBinding, ServiceKey, ServiceMeta, User, UserRepo, rules,
};
use redb::{Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable};

use crate::command::{Command, CommandOutput};
use crate::error::{join_error, storage, with_path};
use crate::group_commit::GroupCommit;
use crate::tables::{self, SCHEMA_VERSION, SCHEMA_VERSION_KEY};

/// File name used inside a data directory.
pub const FILE_NAME: &str = "nacos.redb";

/// Where a replicated store sends its writes instead of applying them locally (the Raft node):
/// `Ok` means the command was logged by a quorum and applied here; errors are the command's
/// own or `Unavailable`.
#[async_trait::async_trait]
pub(crate) trait Replicator: Send + Sync + std::fmt::Debug {
    async fn write(&self, command: Command) -> Result<CommandOutput, RepoError>;
}

/// The embedded store: one redb file holding configs, history, gray variants, namespaces,
/// services and persistent instances. Cheap to share behind an `Arc`; every write is its own
/// redb transaction, made durable (fsynced) before it is acknowledged.
pub struct EmbeddedStore {
    pub(crate) db: Arc<Database>,
    path: PathBuf,
    /// `Some` when writes are replicated: they go through Raft, and the Raft state machine
    /// (not [`EmbeddedStore::execute`]) applies them to `db`.
    raft: Option<Arc<dyn Replicator>>,
    /// Standalone writes: batched, one fsync per batch.
    writer: Arc<GroupCommit>,
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .field("raft", &self.raft)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Open (or create) the store at `path`, the database file. When `path` is an existing
    /// directory the file is `path/nacos.redb`. Missing parent directories are created.
    ///
    /// Errors: `Unavailable` when the file cannot be created or read, or is locked by another
    /// process or handle; `Internal` when it is corrupt or not a redb file, or was written by a
    /// newer layout. The message names the file.
    pub fn open(path: &Path) -> Result<EmbeddedStore, RepoError> {
        let path = if path.is_dir() {
            path.join(FILE_NAME)
        } else {
            path.to_path_buf()
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                RepoError::Unavailable(
                    format!("cannot create data directory {}: {e}", parent.display()).into(),
                )
            })?;
        }
        // No full integrity scan at start: it reads the whole file on every start. redb checks
        // the header itself and repairs after an unclean shutdown.
        let db = Database::builder()
            .create(&path)
            .map_err(|e| with_path(&path, storage(e)))?;
        init(&db).map_err(|e| with_path(&path, e))?;
        tracing::info!(path = %path.display(), "opened embedded store");
        let db = Arc::new(db);
        Ok(EmbeddedStore {
            writer: GroupCommit::new(Arc::clone(&db)),
            db,
            path,
            raft: None,
        })
    }

    /// This store with its writes replicated through `node` (whose state machine applies
    /// them to this store's database).
    pub(crate) fn replicated(self, node: Arc<dyn Replicator>) -> Self {
        EmbeddedStore {
            raft: Some(node),
            ..self
        }
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The repositories, all backed by this store.
    pub fn repos(self: Arc<Self>) -> Repos {
        Repos::of(self, Capabilities::ALL)
    }

    /// Run one command in its own write transaction and make it durable: when this returns
    /// `Ok` the write is on disk. On `Err` nothing is written. Concurrent calls share one fsync
    /// (group commit); each still gets its own outcome.
    ///
    /// Replicated store: the command goes through Raft (to the leader, forwarded when this
    /// node follows); `Ok` means a quorum logged it durably and this node's leader applied it.
    /// Errors are the command's own (the same on every node) or `Unavailable` (no leader, or
    /// an outcome that could not be learned).
    pub async fn execute(&self, command: Command) -> Result<CommandOutput, RepoError> {
        if let Some(node) = &self.raft {
            return node.write(command).await;
        }
        self.writer.execute(command).await
    }

    /// Run a read-only closure on a fresh read transaction, off the async runtime.
    async fn read<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, RepoError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read().map_err(storage)?;
            f(&txn)
        })
        .await
        .map_err(join_error)?
    }
}

/// Create every table and check or stamp the layout version, so that read transactions always
/// find the tables.
fn init(db: &Database) -> Result<(), RepoError> {
    let mut txn = db.begin_write().map_err(storage)?;
    txn.set_durability(Durability::Immediate).map_err(storage)?;
    {
        tables::WriteTables::open(&txn)?;
        let mut meta = txn.open_table(tables::META).map_err(storage)?;
        let version = meta
            .get(SCHEMA_VERSION_KEY)
            .map_err(storage)?
            .map(|g| g.value());
        match version {
            None => {
                meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)
                    .map_err(storage)?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(RepoError::Internal(
                    format!(
                        "layout version {other} is not supported by this build (it reads version \
                     {SCHEMA_VERSION})"
                    )
                    .into(),
                ));
            }
        }
    }
    txn.commit().map_err(storage)
}

/// What a repository method takes out of its command's [`CommandOutput`] variant.
trait FromOutput: Sized {
    /// The value, or a description of the output when it is another variant.
    fn from_output(output: CommandOutput) -> Result<Self, String>;
}

macro_rules! from_output {
    ($($ty:ty => $($variant:ident)|+;)*) => {$(
        impl FromOutput for $ty {
            fn from_output(output: CommandOutput) -> Result<Self, String> {
                match output {
                    $(CommandOutput::$variant(value) => Ok(value),)+
                    other => Err(format!("{other:?}")),
                }
            }
        }
    )*};
}

from_output! {
    ConfigItem => Config;
    Option<ConfigItem> => RemovedConfig;
    Vec<ConfigItem> => RemovedConfigs;
    GrayConfig => Gray;
    Option<GrayConfig> => RemovedGray;
    Option<Instance> => RemovedInstance;
    bool => NamespaceDeleted | Existed;
    u64 => Removed;
}

impl FromOutput for () {
    fn from_output(output: CommandOutput) -> Result<Self, String> {
        match output {
            CommandOutput::Done => Ok(()),
            other => Err(format!("{other:?}")),
        }
    }
}

impl EmbeddedStore {
    /// Execute `command` and take its output as the method's result type.
    async fn run<T: FromOutput>(&self, command: Command) -> Result<T, RepoError> {
        T::from_output(self.execute(command).await?).map_err(|other| {
            RepoError::Internal(
                format!("embedded store: unexpected command output {other:?}").into(),
            )
        })
    }
}

/// Open the embedded store in `data_dir` (file `data_dir/nacos.redb`) and hand out its repos.
pub fn open_repos(data_dir: &Path) -> Result<Repos, RepoError> {
    Ok(Arc::new(EmbeddedStore::open(&data_dir.join(FILE_NAME))?).repos())
}

#[async_trait]
impl ConfigRepo for EmbeddedStore {
    async fn get(&self, key: &ConfigKey) -> Result<Option<ConfigItem>, RepoError> {
        let key = key.clone();
        self.read(move |txn| {
            tables::read_config(&txn.open_table(tables::CONFIGS).map_err(storage)?, &key)
        })
        .await
    }

    async fn publish(&self, publish: ConfigPublish) -> Result<ConfigItem, RepoError> {
        self.run(Command::publish_config(publish)).await
    }

    async fn remove(
        &self,
        key: &ConfigKey,
        operator: &Operator,
    ) -> Result<Option<ConfigItem>, RepoError> {
        self.run(Command::remove_config(key.clone(), operator.clone()))
            .await
    }

    async fn remove_by_ids(
        &self,
        ids: &[u64],
        operator: &Operator,
    ) -> Result<Vec<ConfigItem>, RepoError> {
        self.run(Command::remove_configs_by_ids(
            ids.to_vec(),
            operator.clone(),
        ))
        .await
    }

    async fn search(&self, query: &ConfigQuery) -> Result<Page<ConfigItem>, RepoError> {
        let query = query.clone();
        self.read(move |txn| {
            let table = txn.open_table(tables::CONFIGS).map_err(storage)?;
            let mut items: Vec<ConfigItem> =
                tables::read_namespace_configs(&table, &query.namespace)?
                    .into_iter()
                    .filter(|item| query.matches(item))
                    .collect();
            items.sort_by_key(|item| item.id);
            Ok(query.page.slice(items))
        })
        .await
    }

    async fn history(
        &self,
        key: &ConfigKey,
        page: PageRequest,
    ) -> Result<Page<HistoryEntry>, RepoError> {
        let key = key.clone();
        self.read(move |txn| {
            let index = txn.open_table(tables::HISTORY_BY_KEY).map_err(storage)?;
            let mut nids = tables::read_history_nids(&index, &key)?;
            nids.reverse();
            let nids = page.slice(nids);
            let rows = txn.open_table(tables::HISTORY).map_err(storage)?;
            let mut items = Vec::with_capacity(nids.items.len());
            for nid in &nids.items {
                let entry = tables::read_history(&rows, *nid)?.ok_or_else(|| {
                    RepoError::Internal(format!("history index points at missing nid {nid}").into())
                })?;
                items.push(entry);
            }
            Ok(Page::new(nids.total_count, page, items))
        })
        .await
    }

    async fn history_entry(&self, nid: u64) -> Result<Option<HistoryEntry>, RepoError> {
        self.read(move |txn| {
            tables::read_history(&txn.open_table(tables::HISTORY).map_err(storage)?, nid)
        })
        .await
    }

    async fn previous_history(&self, config_id: u64) -> Result<Option<HistoryEntry>, RepoError> {
        self.read(move |txn| {
            let index = txn.open_table(tables::HISTORY_BY_CONFIG).map_err(storage)?;
            match tables::read_latest_nid_of_config(&index, config_id)? {
                Some(nid) => {
                    tables::read_history(&txn.open_table(tables::HISTORY).map_err(storage)?, nid)
                }
                None => Ok(None),
            }
        })
        .await
    }

    async fn get_gray(
        &self,
        key: &ConfigKey,
        gray: &Gray,
    ) -> Result<Option<GrayConfig>, RepoError> {
        let (key, gray) = (key.clone(), gray.clone());
        self.read(move |txn| {
            tables::read_gray(
                &txn.open_table(tables::GRAYS).map_err(storage)?,
                &key,
                &gray,
            )
        })
        .await
    }

    async fn list_grays(&self, key: &ConfigKey) -> Result<Vec<GrayConfig>, RepoError> {
        let key = key.clone();
        self.read(move |txn| {
            tables::read_grays(&txn.open_table(tables::GRAYS).map_err(storage)?, &key)
        })
        .await
    }

    async fn publish_gray(
        &self,
        gray: Gray,
        publish: GrayPublish,
    ) -> Result<GrayConfig, RepoError> {
        self.run(Command::publish_gray(gray, publish)).await
    }

    async fn remove_gray(
        &self,
        key: &ConfigKey,
        gray: &Gray,
    ) -> Result<Option<GrayConfig>, RepoError> {
        self.run(Command::remove_gray(key.clone(), gray.clone()))
            .await
    }

    async fn changed_since(&self, since_ms: i64) -> Result<Vec<ConfigChange>, RepoError> {
        self.read(move |txn| {
            let table = txn.open_table(tables::CHANGES).map_err(storage)?;
            Ok(tables::read_changes_since(&table, since_ms)?
                .into_iter()
                .map(|(modified_ms, key)| ConfigChange { key, modified_ms })
                .collect())
        })
        .await
    }

    async fn purge_history(&self, before_ms: i64, limit: u32) -> Result<u64, RepoError> {
        if limit == 0 {
            return Ok(0);
        }
        self.run(Command::PurgeHistory { before_ms, limit }).await
    }
}

#[async_trait]
impl NamespaceRepo for EmbeddedStore {
    async fn list(&self) -> Result<Vec<Namespace>, RepoError> {
        self.read(|txn| {
            let mut all =
                tables::read_namespaces(&txn.open_table(tables::NAMESPACES).map_err(storage)?)?;
            rules::sort_namespaces(&mut all);
            Ok(all)
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<Namespace>, RepoError> {
        let id = id.to_string();
        self.read(move |txn| {
            tables::read_namespace(&txn.open_table(tables::NAMESPACES).map_err(storage)?, &id)
        })
        .await
    }

    async fn create(&self, namespace: Namespace) -> Result<(), RepoError> {
        self.run(Command::CreateNamespace { namespace }).await
    }

    async fn update(&self, id: &str, name: &str, desc: &str) -> Result<(), RepoError> {
        let command = Command::update_namespace(id.to_string(), name.to_string(), desc.to_string());
        self.run(command).await
    }

    async fn delete(&self, id: &str) -> Result<bool, RepoError> {
        self.run(Command::DeleteNamespace { id: id.to_string() })
            .await
    }
}

#[async_trait]
impl InstanceRepo for EmbeddedStore {
    async fn list_services(&self) -> Result<Vec<ServiceMeta>, RepoError> {
        self.read(|txn| tables::read_services(&txn.open_table(tables::SERVICES).map_err(storage)?))
            .await
    }

    async fn get_service(&self, key: &ServiceKey) -> Result<Option<ServiceMeta>, RepoError> {
        let key = key.clone();
        self.read(move |txn| {
            tables::read_service(&txn.open_table(tables::SERVICES).map_err(storage)?, &key)
        })
        .await
    }

    async fn create_service(&self, meta: ServiceMeta) -> Result<(), RepoError> {
        self.run(Command::CreateService { meta }).await
    }

    async fn update_service(&self, meta: ServiceMeta) -> Result<(), RepoError> {
        self.run(Command::UpdateService { meta }).await
    }

    async fn delete_service(&self, key: &ServiceKey) -> Result<(), RepoError> {
        self.run(Command::DeleteService { key: key.clone() }).await
    }

    async fn register_instance(
        &self,
        service: &ServiceKey,
        instance: Instance,
    ) -> Result<(), RepoError> {
        self.run(Command::register_instance(service.clone(), instance))
            .await
    }

    async fn deregister_instance(
        &self,
        service: &ServiceKey,
        addr: &InstanceAddr,
    ) -> Result<Option<Instance>, RepoError> {
        let command = Command::DeregisterInstance {
            service: service.clone(),
            ip: addr.ip.clone(),
            port: addr.port,
            cluster: addr.cluster.clone(),
        };
        self.run(command).await
    }

    async fn list_instances(&self, service: &ServiceKey) -> Result<Vec<Instance>, RepoError> {
        let service = service.clone();
        self.read(move |txn| {
            let table = txn.open_table(tables::INSTANCES).map_err(storage)?;
            tables::read_instances(&table, &service, usize::MAX)
        })
        .await
    }
}

#[async_trait]
impl UserRepo for EmbeddedStore {
    async fn get_user(&self, username: &str) -> Result<Option<User>, RepoError> {
        let username = username.to_string();
        self.read(move |txn| {
            tables::read_user(&txn.open_table(tables::USERS).map_err(storage)?, &username)
        })
        .await
    }

    async fn list_users(
        &self,
        username: &str,
        mode: MatchMode,
        page: PageRequest,
    ) -> Result<Page<User>, RepoError> {
        let username = username.to_string();
        self.read(move |txn| {
            let all = tables::read_users(&txn.open_table(tables::USERS).map_err(storage)?)?;
            let matching: Vec<User> = all
                .into_iter()
                .filter(|u| mode.accepts(&username, &u.username))
                .collect();
            Ok(page.slice(matching))
        })
        .await
    }

    async fn create_user(&self, user: User) -> Result<(), RepoError> {
        self.run(Command::CreateUser { user }).await
    }

    async fn update_password(&self, username: &str, password_hash: &str) -> Result<(), RepoError> {
        let command = Command::UpdatePassword {
            username: username.to_string(),
            password_hash: password_hash.to_string(),
        };
        self.run(command).await
    }

    async fn delete_user(&self, username: &str) -> Result<bool, RepoError> {
        let command = Command::DeleteUser {
            username: username.to_string(),
        };
        self.run(command).await
    }

    async fn list_roles(
        &self,
        username: &str,
        role: &str,
        mode: MatchMode,
        page: PageRequest,
    ) -> Result<Page<RoleBinding>, RepoError> {
        let (username, role) = (username.to_string(), role.to_string());
        self.read(move |txn| {
            let all = tables::read_roles(&txn.open_table(tables::ROLES).map_err(storage)?)?;
            let matching: Vec<RoleBinding> = all
                .into_iter()
                .filter(|b| mode.accepts(&username, &b.username) && mode.accepts(&role, &b.role))
                .collect();
            Ok(page.slice(matching))
        })
        .await
    }

    async fn add_role(&self, binding: RoleBinding) -> Result<(), RepoError> {
        self.run(Command::AddRole { binding }).await
    }

    async fn remove_role(&self, role: &str, username: Option<&str>) -> Result<u64, RepoError> {
        let command = Command::RemoveRole {
            role: role.to_string(),
            username: username.map(str::to_string),
        };
        self.run(command).await
    }

    async fn list_permissions(
        &self,
        role: &str,
        mode: MatchMode,
        page: PageRequest,
    ) -> Result<Page<Permission>, RepoError> {
        let role = role.to_string();
        self.read(move |txn| {
            let all =
                tables::read_permissions(&txn.open_table(tables::PERMISSIONS).map_err(storage)?)?;
            let matching: Vec<Permission> = all
                .into_iter()
                .filter(|p| mode.accepts(&role, &p.role))
                .collect();
            Ok(page.slice(matching))
        })
        .await
    }

    async fn add_permission(&self, permission: Permission) -> Result<(), RepoError> {
        self.run(Command::AddPermission { permission }).await
    }

    async fn remove_permission(&self, permission: &Permission) -> Result<bool, RepoError> {
        let command = Command::RemovePermission {
            permission: permission.clone(),
        };
        self.run(command).await
    }
}
