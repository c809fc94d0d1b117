//! Config reads that survive the database: over an external database, every config is loaded
//! into the config cache at start and re-loaded after each change, so a config is served while
//! the database (or its primary) is gone even if no client read it since start. This plays the
//! part of Nacos's local dump, without a second copy on disk.
//!
//! What does not fit the cache (`nacos.config.cache.maxBytes`) is not kept; the start-up pass
//! says so once. Embedded storage is local and never needs this.

use std::sync::Arc;

use nacos_core::{ConfigKey, ConfigQuery, NamespaceRepo, PageRequest, RepoResult};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ConfigService;

/// Configs read per page during the start-up pass.
const PAGE: u32 = 500;

/// Loads of one changed key before it is left to the next read.
const RELOAD_TRIES: u32 = 3;

/// Load every config into the cache now, then keep each changed key loaded. Stops with
/// `shutdown`.
pub fn start(
    config: Arc<ConfigService>,
    namespaces: Arc<dyn NamespaceRepo>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let (tx, mut changed) = mpsc::unbounded_channel();
    config.reload_after_change(tx);
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            outcome = load_all(&config, namespaces.as_ref()) => match outcome {
                Ok((loaded, kept)) if kept < loaded => tracing::warn!(
                    loaded, kept,
                    "not every config fits the config cache: configs that were evicted are \
                     not servable while the database is down; raise nacos.config.cache.maxBytes"
                ),
                Ok((loaded, _)) => tracing::info!(loaded, "configs loaded into the cache"),
                // The cache fills as clients read; the next change of a key loads it too.
                Err(error) => tracing::warn!(%error, "cannot load the configs into the cache"),
            },
        }
        loop {
            let key = tokio::select! {
                _ = shutdown.cancelled() => break,
                key = changed.recv() => key,
            };
            let Some(key) = key else { break };
            // A load that raced with another write of the key is not cached: load again. A
            // failure leaves the key to the next read (which may fall back to a replica).
            for _ in 0..RELOAD_TRIES {
                match config.state(&key).await {
                    Ok(_) if config.is_cached(&key) => break,
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!(%error, ?key, "cannot reload a changed config");
                        break;
                    }
                }
            }
        }
    })
}

/// Read every config of every namespace through the cache. Returns how many were loaded and
/// how many of them the cache still holds.
async fn load_all(
    config: &ConfigService,
    namespaces: &dyn NamespaceRepo,
) -> RepoResult<(u64, u64)> {
    let mut ids = vec![String::new()];
    ids.extend(namespaces.list().await?.into_iter().map(|n| n.id));
    let mut loaded = 0u64;
    for namespace in ids {
        let mut page_no = 1;
        loop {
            let query = ConfigQuery::namespace(namespace.clone(), PageRequest::new(page_no, PAGE));
            let page = config.repo().search(&query).await?;
            let keys: Vec<ConfigKey> = page.items.into_iter().map(|c| c.key).collect();
            for key in &keys {
                config.state(key).await?;
                loaded += 1;
            }
            if keys.len() < PAGE as usize || page_no >= page.pages_available {
                break;
            }
            page_no += 1;
        }
    }
    Ok((loaded, config.cached_keys()))
}
