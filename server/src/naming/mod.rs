//! The naming service (placeholder until the naming module lands).

use std::sync::Arc;

use nacos_core::{InstanceRepo, RepoResult};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Settings;

#[derive(Debug)]
pub struct NamingService {
    repo: Arc<dyn InstanceRepo>,
}

impl NamingService {
    pub fn new(_settings: &Settings, repo: Arc<dyn InstanceRepo>) -> Arc<Self> {
        Arc::new(Self { repo })
    }

    /// Load persistent services and instances from the repository.
    pub async fn load(&self) -> RepoResult<()> {
        self.repo.list_services().await.map(|_| ())
    }

    /// Start background tasks (expiry sweep, push retries); they stop when `shutdown` fires.
    pub fn start(self: &Arc<Self>, _shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
        Vec::new()
    }
}
