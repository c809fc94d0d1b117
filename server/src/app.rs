//! The composition: [`App`] holds every service and handle of a running server, built once at
//! start ([`App::open`]) from the settings and the storage they name. Edges read it as their
//! state; services and cluster protocols receive only the parts they need.

use std::sync::Arc;
use std::time::Instant;

use nacos_core::Repos;
use tokio_util::sync::CancellationToken;

use crate::cluster;
use crate::foundation::error::StartError;
use crate::foundation::metrics::Metrics;
use crate::foundation::settings::Settings;
use crate::foundation::timed_repo::{TimedConfigRepo, TimedInstanceRepo};
use crate::foundation::{middleware, storage};
use crate::services::clients::{ConfigListeners, ConnectionManager, NamingSubscribers};
use crate::services::config::ConfigService;
use crate::services::config::retention::{PurgeTurn, RepoLease, Retention};
use crate::services::naming::NamingService;
use crate::services::{auth, naming};

/// Shared state of a running server.
#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    pub repos: Repos,
    /// Authentication and authorization (`nacos.core.auth.*`).
    pub auth: Arc<auth::Auth>,
    pub config: Arc<ConfigService>,
    /// The config history purge (`nacos.config.retention.days`).
    pub retention: Arc<Retention>,
    pub naming: Arc<NamingService>,
    /// Registered gRPC client connections (pushes, ejection, limits).
    pub connections: Arc<ConnectionManager>,
    /// Which gRPC connection listens to which config key.
    pub config_listeners: Arc<ConfigListeners>,
    /// Which gRPC connection subscribes to which service.
    pub naming_subscribers: Arc<NamingSubscribers>,
    /// Cluster mode: members and peers (`None` when standalone).
    pub cluster: Option<Arc<cluster::Cluster>>,
    /// Cluster mode: ephemeral instances across nodes.
    pub distro: Option<Arc<cluster::distro::Distro>>,
    /// Config changes already acted on (cluster sync over a shared database).
    pub config_seen: cluster::config_sync::SeenChanges,
    /// Shared-database cluster: this node's writes of persistent naming data, for its peers.
    pub naming_writes: Option<Arc<cluster::naming_sync::AnnouncingInstanceRepo>>,
    /// Embedded cluster: this node's Raft.
    pub raft: Option<Arc<cluster::raft::RaftHandle>>,
    /// Request counters of both edges, fed by the shared middleware.
    pub traffic: middleware::Traffic,
    /// The hot-path metric handles (`/actuator/prometheus` reads them with the services).
    pub metrics: Arc<Metrics>,
    /// Cancelled when the server shuts down: long polls answer, background tasks stop.
    pub shutdown: CancellationToken,
    pub started: Instant,
}

pub type AppState = Arc<App>;

impl App {
    /// Start what cluster mode runs besides the edges (none in standalone mode): member reports
    /// and reloads, distro, and either the Raft followers (embedded cluster) or config and
    /// persistent-naming change sync (shared database). Each protocol gets the services it
    /// acts on.
    pub fn start_cluster_tasks(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let Some(cluster) = self.cluster.clone() else {
            return Vec::new();
        };
        let shutdown = self.shutdown.clone();
        let mut tasks = cluster.start(shutdown.clone());
        if let Some(distro) = &self.distro {
            tasks.extend(distro.start(shutdown.clone()));
        }
        match &self.raft {
            Some(raft) => tasks.extend(cluster::raft::start(
                Arc::clone(raft),
                cluster,
                cluster::raft::Followers {
                    config: Arc::clone(&self.config),
                    naming: Arc::clone(&self.naming),
                },
                shutdown,
            )),
            None => {
                tasks.extend(cluster::config_sync::start(
                    Arc::clone(&self.config),
                    self.config_seen.clone(),
                    Arc::clone(&cluster),
                    shutdown.clone(),
                ));
                if let Some(writes) = &self.naming_writes {
                    tasks.extend(cluster::naming_sync::start(
                        Arc::clone(&self.naming),
                        cluster,
                        writes.subscribe(),
                        shutdown,
                    ));
                }
            }
        }
        tasks
    }

    /// Start the health checks of persistent instances: in a cluster each service is checked
    /// by the one UP member distro maps it to; standalone, by this node.
    pub fn start_health_checks(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let responsible: Arc<dyn crate::services::naming::health_check::Responsibility> =
            match &self.cluster {
                Some(cluster) => Arc::new(cluster::distro::HealthCheckMapper {
                    cluster: Arc::clone(cluster),
                }),
                None => Arc::new(crate::services::naming::health_check::Everything),
            };
        self.naming
            .start_health_checks(responsible, self.shutdown.clone())
    }

    /// Run a v1 client's write (register, deregister, beat) where it belongs: on the node that
    /// owns the client when this node only holds a copy (cluster mode), else here.
    pub async fn client_write(
        &self,
        client: &naming::ClientId,
        op: cluster::forward::ClientOp,
    ) -> naming::NamingResult<Option<naming::BeatOutcome>> {
        cluster::forward::run(
            &self.naming,
            self.cluster.as_deref(),
            self.distro.as_ref(),
            client,
            op,
        )
        .await
    }

    /// The members as `/v1/core/cluster/nodes` lists them (standalone: this node alone).
    pub fn member_view(&self) -> Vec<serde_json::Value> {
        match &self.cluster {
            Some(cluster) => {
                let self_address = cluster.self_address().to_string();
                let raft = self
                    .raft
                    .as_ref()
                    .map(|r| serde_json::to_value(r.status()).unwrap_or_default());
                cluster
                    .members
                    .all()
                    .into_iter()
                    .map(|m| {
                        let is_self = m.address() == self_address;
                        let mut json = if is_self {
                            cluster.self_member().to_json()
                        } else {
                            m.to_json()
                        };
                        if let (true, Some(raft)) = (is_self, &raft) {
                            json["extendInfo"]["raftMetaData"] = raft.clone();
                        }
                        json
                    })
                    .collect()
            }
            None => {
                let ip = self
                    .settings
                    .cluster
                    .self_ip
                    .clone()
                    .unwrap_or_else(cluster::detect_local_ip);
                let raft_port = crate::foundation::settings::raft_port_of(self.settings.port);
                let me = cluster::members::Member::this_node(ip, self.settings.port, raft_port);
                vec![me.to_json()]
            }
        }
    }

    /// This node's `Member` JSON.
    pub fn self_view(&self) -> serde_json::Value {
        let self_address = self.cluster.as_ref().map(|c| c.self_address().to_string());
        let all = self.member_view();
        match self_address {
            Some(addr) => all
                .into_iter()
                .find(|m| m["address"].as_str() == Some(addr.as_str()))
                .unwrap_or_default(),
            None => all.into_iter().next().unwrap_or_default(),
        }
    }

    /// The config listens of clients connected to this node that `query` selects.
    pub fn local_config_listeners(
        &self,
        query: &crate::services::clients::listeners::ListenerQuery,
    ) -> Vec<crate::services::clients::listeners::ConfigListener> {
        let node = self
            .cluster
            .as_ref()
            .map(|c| c.self_address().to_string())
            .unwrap_or_default();
        crate::services::clients::listeners::local(
            &self.config,
            &self.config_listeners,
            &self.connections,
            query,
            &node,
        )
    }

    /// The config listens that `query` selects on every node (cluster mode asks each peer),
    /// and the peers that did not answer.
    pub async fn config_listeners(
        &self,
        query: &crate::services::clients::listeners::ListenerQuery,
    ) -> (
        Vec<crate::services::clients::listeners::ConfigListener>,
        Vec<String>,
    ) {
        let local = self.local_config_listeners(query);
        cluster::listeners::gather(self.cluster.as_deref(), local, query).await
    }

    /// What the client connections of `query.ip` on this node answer to
    /// `ClientConfigMetricRequest`, merged.
    pub async fn local_client_metrics(
        &self,
        query: &crate::services::clients::config_metrics::MetricsQuery,
    ) -> serde_json::Map<String, serde_json::Value> {
        crate::services::clients::config_metrics::local(
            &self.connections,
            query,
            crate::services::clients::config_metrics::ANSWER_TIMEOUT,
        )
        .await
    }

    /// The client metrics of `query.ip` from every node (cluster mode asks each peer), and the
    /// peers that did not answer in time.
    pub async fn client_metrics(
        &self,
        query: &crate::services::clients::config_metrics::MetricsQuery,
    ) -> (serde_json::Map<String, serde_json::Value>, Vec<String>) {
        // This node's clients and the peers are asked at the same time.
        let (mut metrics, (peers, unreachable)) = tokio::join!(
            self.local_client_metrics(query),
            cluster::client_metrics::gather(self.cluster.as_ref(), query)
        );
        metrics.extend(peers);
        (metrics, unreachable)
    }

    /// Members leave through the API (see [`Cluster::leave`]); standalone has none to remove.
    pub fn leave(&self, addresses: &[String]) -> Result<Vec<String>, String> {
        match &self.cluster {
            Some(cluster) => cluster.leave(addresses),
            None => Err("this node is standalone: it has no cluster members".to_string()),
        }
    }

    /// Why this node should not take traffic, if it should not: storage does not take writes
    /// or does not answer a read, or (embedded cluster) there is no Raft leader.
    pub async fn readiness_problem(&self) -> Option<String> {
        if let Some(raft) = &self.raft
            && !raft.has_quorum(std::time::Duration::from_secs(1)).await
        {
            return Some(format!(
                "no Raft leader: the embedded cluster has no quorum ({})",
                serde_json::to_value(raft.status()).unwrap_or_default()
            ));
        }
        if let Some(e) = self.repos.configs.write_problem() {
            return Some(format!("storage does not take writes: {e}"));
        }
        match self.repos.namespaces.list().await {
            Ok(_) => None,
            Err(e) => Some(format!("storage is not ready: {e}")),
        }
    }

    /// Open storage and build the services. Background tasks start with [`crate::run`].
    pub async fn open(settings: Settings) -> Result<AppState, StartError> {
        let cluster = Self::open_cluster(&settings)?;
        let (repos, raft) = match &cluster {
            Some(cluster) if settings.embedded_cluster => {
                let (repos, raft) = cluster::raft::open(&settings, cluster).await?;
                (repos, Some(raft))
            }
            Some(_) if settings.platform.is_empty() => {
                return Err(StartError::Unsupported(
                    "cluster mode needs shared storage: an external database \
                     (spring.sql.init.platform=mysql or postgresql, with db.*) or `-p embedded` \
                     (embedded storage replicated by Raft); for one node use `-m standalone`"
                        .to_string(),
                ));
            }
            _ => (storage::open(&settings).await?, None),
        };
        Self::build(settings, repos, cluster, raft).await
    }

    /// Build the services over already opened repositories (tests, other backends).
    pub async fn with_repos(settings: Settings, repos: Repos) -> Result<AppState, StartError> {
        let cluster = Self::open_cluster(&settings)?;
        Self::build(settings, repos, cluster, None).await
    }

    fn open_cluster(settings: &Settings) -> Result<Option<Arc<cluster::Cluster>>, StartError> {
        if settings.is_standalone() {
            return Ok(None);
        }
        let identity = auth::server_identity(&settings.properties);
        cluster::Cluster::open(settings, identity)
            .map(|c| Some(Arc::new(c)))
            .map_err(StartError::Unsupported)
    }

    async fn build(
        settings: Settings,
        repos: Repos,
        cluster: Option<Arc<cluster::Cluster>>,
        raft: Option<Arc<cluster::raft::RaftHandle>>,
    ) -> Result<AppState, StartError> {
        let metrics = Arc::new(Metrics::new(backend_name(&settings, raft.is_some())));
        let mut repos = repos;
        repos.configs = TimedConfigRepo::wrap(Arc::clone(&repos.configs), Arc::clone(&metrics));
        repos.instances =
            TimedInstanceRepo::wrap(Arc::clone(&repos.instances), Arc::clone(&metrics));
        let naming_writes = match (&cluster, &raft) {
            (Some(_), None) => {
                let announcing = cluster::naming_sync::AnnouncingInstanceRepo::wrap(Arc::clone(
                    &repos.instances,
                ));
                repos.instances = Arc::clone(&announcing) as Arc<dyn nacos_core::InstanceRepo>;
                Some(announcing)
            }
            _ => None,
        };
        let auth = Arc::new(
            auth::Auth::open(&settings.properties, Arc::clone(&repos.users))
                .map_err(StartError::Auth)?,
        );
        if settings.metrics_auth && !auth.enabled() {
            return Err(StartError::Unsupported(
                "nacos.metrics.auth.enabled=true needs nacos.core.auth.enabled=true: without it \
                 there is no token to ask for"
                    .to_string(),
            ));
        }
        let config = Arc::new(ConfigService::new(
            Arc::clone(&repos.configs),
            settings.config_cache_bytes,
        ));
        // One node purges: the Raft leader of an embedded cluster, else the holder of the
        // store's lease (a database lock when the database is shared).
        let turn: Arc<dyn PurgeTurn> = match &raft {
            Some(raft) => Arc::new(cluster::raft::LeaderTurn(Arc::clone(raft))),
            None => Arc::new(RepoLease(Arc::clone(&repos.configs))),
        };
        let retention = Arc::new(Retention::new(
            Arc::clone(&repos.configs),
            settings.config_retention_days,
            turn,
        ));
        let naming = NamingService::new(&settings, Arc::clone(&repos.instances));
        naming
            .load()
            .await
            .map_err(|e| StartError::Storage(format!("cannot load persistent services: {e}")))?;
        let connections = Arc::new(ConnectionManager::new(settings.grpc.clone()));
        let config_listeners =
            ConfigListeners::install(&config, &connections, Arc::clone(&metrics.config_push));
        let naming_subscribers = NamingSubscribers::install(
            &naming,
            &settings,
            &connections,
            Arc::clone(&metrics.naming_push),
        );
        let distro = cluster
            .as_ref()
            .map(|c| cluster::distro::Distro::new(Arc::clone(&naming), Arc::clone(c)));
        Ok(Arc::new(App {
            cluster,
            distro,
            config_seen: cluster::config_sync::SeenChanges::default(),
            naming_writes,
            raft,
            settings,
            repos,
            auth,
            config,
            retention,
            naming,
            connections,
            config_listeners,
            naming_subscribers,
            traffic: middleware::Traffic::default(),
            metrics,
            shutdown: CancellationToken::new(),
            started: Instant::now(),
        }))
    }
}

/// The storage backend as metrics label it.
fn backend_name(settings: &Settings, raft: bool) -> &'static str {
    match settings.platform.as_str() {
        _ if raft => "raft",
        "mysql" => "mysql",
        "postgresql" => "postgresql",
        "" => "embedded",
        _ => "other",
    }
}
