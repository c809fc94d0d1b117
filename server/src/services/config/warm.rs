//! Config reads that survive the database: over an external database, every config is loaded
//! into the config cache at start and re-loaded after each change, so a config is served while
//! the database (or its primary) is gone even if no client read it since start. This plays the
//! part of Nacos's local dump, without a second copy on disk.
//!
//! What does not fit the cache (`nacos.config.cache.maxBytes`) is not kept; the start-up pass
//! says so once. Embedded storage is local and never needs this.

use std::sync::Arc;
use std::time::Duration;

use nacos_core::{ConfigKey, ConfigQuery, NamespaceRepo, PageRequest, RepoResult};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ConfigService;

/// Configs read per page during the start-up pass.
const PAGE: u32 = 500;

/// Loads of one changed key before it is left to the next read.
const RELOAD_TRIES: u32 = 3;

/// Pause after a failed reload, times the attempt.
const RELOAD_PAUSE: Duration = Duration::from_millis(200);

/// Longest pause between two start-up passes while storage fails.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// Load every config into the cache now (again after a pause while storage fails), and keep
/// each changed key loaded. Stops with `shutdown`.
pub fn start(
    config: Arc<ConfigService>,
    namespaces: Arc<dyn NamespaceRepo>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let (tx, mut changed) = mpsc::unbounded_channel();
    config.reload_after_change(tx);
    let first_pass = {
        let config = Arc::clone(&config);
        async move {
            let mut pause = Duration::from_secs(1);
            loop {
                match load_all(&config, namespaces.as_ref()).await {
                    Ok((loaded, kept)) if kept < loaded => {
                        tracing::warn!(
                            loaded,
                            kept,
                            "not every config fits the config cache: configs that were evicted \
                             are not servable while the database is down; raise \
                             nacos.config.cache.maxBytes"
                        );
                        return;
                    }
                    Ok((loaded, _)) => {
                        tracing::info!(loaded, "configs loaded into the cache");
                        return;
                    }
                    // Meanwhile the cache fills as clients read and keys change.
                    Err(error) => tracing::warn!(
                        %error, retry_in = ?pause, "cannot load the configs into the cache"
                    ),
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    };
    let reloads = async move {
        while let Some(key) = changed.recv().await {
            // A busy database may time out: load again, a few times. Then the key is left to
            // the next read (which may fall back to a replica).
            for attempt in 1..=RELOAD_TRIES {
                match cache(&config, &key).await {
                    Ok(()) => break,
                    Err(error) if attempt == RELOAD_TRIES => {
                        tracing::debug!(%error, ?key, "cannot reload a changed config");
                    }
                    Err(_) => tokio::time::sleep(RELOAD_PAUSE * attempt).await,
                }
            }
        }
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = async { tokio::join!(first_pass, reloads) } => {}
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
                cache(config, key).await?;
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

/// Load `key` into the cache. A load that raced with a write of a key of the same shard is
/// not inserted (it may be stale): load again, a few times.
async fn cache(config: &ConfigService, key: &ConfigKey) -> RepoResult<()> {
    for _ in 0..RELOAD_TRIES {
        config.state(key).await?;
        if config.is_cached(key) {
            break;
        }
    }
    Ok(())
}
