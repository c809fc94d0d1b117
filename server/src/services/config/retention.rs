//! Config history retention (`nacos.config.retention.days`): a periodic task deletes history
//! rows older than the retention, in batches, so history does not grow without bound.
//!
//! Exactly one node of a cluster purges. Which one is decided by a [`PurgeTurn`] the
//! composition hands in: the Raft leader on an embedded cluster (the purge is then a
//! replicated command carrying its cutoff, so every replica deletes the same rows), else the
//! holder of the store's housekeeping lease ([`RepoLease`]: a database lock on a shared
//! database; always this node on a store of its own).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nacos_core::{ConfigRepo, RepoError, now_millis};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Rows per `purge_history` call (Nacos deletes 1000 per statement too): one short write, so
/// config writes are never held up for long.
pub const BATCH: u32 = 1000;

/// Pause between two batches of one run, so a large backlog leaves room for other writes.
const BATCH_PAUSE: Duration = Duration::from_millis(20);

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Whether this node is the one that purges, asked before every run.
#[async_trait]
pub trait PurgeTurn: Send + Sync + std::fmt::Debug {
    /// `Ok(true)` when this node purges now. An error means "not now" and is logged.
    async fn is_mine(&self) -> Result<bool, RepoError>;
}

/// The turn of the node holding the store's housekeeping lease
/// ([`ConfigRepo::housekeeping_lease`]).
#[derive(Debug)]
pub struct RepoLease(pub Arc<dyn ConfigRepo>);

#[async_trait]
impl PurgeTurn for RepoLease {
    async fn is_mine(&self) -> Result<bool, RepoError> {
        self.0.housekeeping_lease().await
    }
}

/// What one run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeReport {
    /// Whether this node purged (it had the turn and retention is on).
    pub ran: bool,
    /// Rows modified before this (epoch ms) were purged.
    pub cutoff_ms: i64,
    /// How many rows went.
    pub purged: u64,
}

/// Totals since start, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionStats {
    /// Runs in which this node purged.
    pub runs: u64,
    pub purged: u64,
    pub last: Option<PurgeReport>,
}

/// The history purge of one node.
#[derive(Debug)]
pub struct Retention {
    repo: Arc<dyn ConfigRepo>,
    /// `0`: keep every row.
    days: u32,
    turn: Arc<dyn PurgeTurn>,
    stats: Mutex<RetentionStats>,
    /// One run at a time (the timer and a caller of [`Retention::run_at`]).
    running: tokio::sync::Mutex<()>,
}

impl Retention {
    pub fn new(repo: Arc<dyn ConfigRepo>, days: u32, turn: Arc<dyn PurgeTurn>) -> Self {
        Self {
            repo,
            days,
            turn,
            stats: Mutex::default(),
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Retention in days; `0` keeps everything.
    pub fn days(&self) -> u32 {
        self.days
    }

    pub fn stats(&self) -> RetentionStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// One run as if the clock read `now_ms`: when retention is on and this node has the
    /// turn, purge every history row older than `now_ms - days` in batches of [`BATCH`]. The
    /// timer calls this with the real clock; tests call it with a later one.
    ///
    /// Errors: the store's, after the batches already done (they stay done).
    pub async fn run_at(&self, now_ms: i64) -> Result<PurgeReport, RepoError> {
        let _one_run = self.running.lock().await;
        let cutoff_ms = now_ms.saturating_sub(i64::from(self.days).saturating_mul(DAY_MS));
        let mut report = PurgeReport {
            ran: false,
            cutoff_ms,
            purged: 0,
        };
        if self.days == 0 {
            return Ok(report);
        }
        match self.turn.is_mine().await {
            Ok(true) => {}
            Ok(false) => return Ok(report),
            Err(e) => {
                tracing::warn!("config history purge skipped: cannot tell whose turn it is: {e}");
                return Ok(report);
            }
        }
        report.ran = true;
        let outcome = loop {
            match self.repo.purge_history(cutoff_ms, BATCH).await {
                Ok(n) => {
                    report.purged += n;
                    if n < u64::from(BATCH) {
                        break Ok(());
                    }
                    tokio::time::sleep(BATCH_PAUSE).await;
                }
                Err(e) => break Err(e),
            }
        };
        if let Ok(mut stats) = self.stats.lock() {
            stats.runs += 1;
            stats.purged += report.purged;
            stats.last = Some(report);
        }
        tracing::info!(
            purged = report.purged,
            cutoff_ms,
            retention_days = self.days,
            "config history purge"
        );
        outcome.map(|()| report)
    }
}

/// Run the purge every `interval` (the first run one interval after start, as Nacos), until
/// `shutdown`. Retention `0` starts nothing.
pub fn start(
    retention: Arc<Retention>,
    interval: Duration,
    shutdown: CancellationToken,
) -> Option<JoinHandle<()>> {
    if retention.days() == 0 {
        tracing::info!("nacos.config.retention.days=0: config history is kept forever");
        return None;
    }
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            let run = retention.run_at(now_millis());
            tokio::select! {
                _ = shutdown.cancelled() => return,
                result = run => if let Err(e) = result {
                    tracing::warn!("config history purge failed: {e}");
                },
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Never;

    #[async_trait]
    impl PurgeTurn for Never {
        async fn is_mine(&self) -> Result<bool, RepoError> {
            Ok(false)
        }
    }

    #[tokio::test]
    async fn zero_days_and_another_nodes_turn_purge_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let repos = nacos_storage_embedded::open_repos(dir.path()).expect("open");
        let key = nacos_core::ConfigKey::new("", "DEFAULT_GROUP", "r.yaml");
        repos
            .configs
            .publish(nacos_core::ConfigPublish {
                key: key.clone(),
                content: "v1".to_string(),
                ..Default::default()
            })
            .await
            .expect("publish");
        let later = now_millis() + 400 * DAY_MS;
        let keep_all = Retention::new(
            Arc::clone(&repos.configs),
            0,
            Arc::new(RepoLease(Arc::clone(&repos.configs))),
        );
        assert!(!keep_all.run_at(later).await.expect("run").ran);
        let not_mine = Retention::new(Arc::clone(&repos.configs), 1, Arc::new(Never));
        assert!(!not_mine.run_at(later).await.expect("run").ran);
        let page = nacos_core::PageRequest::new(1, 10);
        assert_eq!(
            repos
                .configs
                .history(&key, page)
                .await
                .expect("h")
                .total_count,
            1
        );
        let mine = Retention::new(
            Arc::clone(&repos.configs),
            1,
            Arc::new(RepoLease(Arc::clone(&repos.configs))),
        );
        let report = mine.run_at(later).await.expect("run");
        assert_eq!((report.ran, report.purged), (true, 1));
        assert_eq!(mine.stats().runs, 1);
        assert_eq!(
            repos
                .configs
                .history(&key, page)
                .await
                .expect("h")
                .total_count,
            0
        );
    }
}
