//! The housekeeping lease ([`nacos_core::ConfigRepo::housekeeping_lease`]): a named lock,
//! taken with `GET_LOCK(name, 0)` on a connection of its own that this store keeps open. The
//! server releases a named lock only when its session ends, so among the nodes sharing one
//! database exactly one holds it, and another takes it over once the holder's connection (or
//! process) is gone. Named locks are server-wide, so the name carries a digest of the
//! database name: several databases on one server do not contend.

use std::time::Duration;

use nacos_core::RepoError;
use sqlx::{Connection, MySqlConnection, Row};
use tokio::sync::Mutex;

use crate::cluster::Node;
use crate::error;

/// The lock's name, made unique per database (and at most 64 characters, MySQL's limit).
const LOCK_NAME: &str = "CONCAT('nacos-hk.', MD5(DATABASE()))";

/// How long one check of the lease may take before it counts as not held.
const CHECK_LIMIT: Duration = Duration::from_secs(5);

/// The held lock's session, and the node it is on.
#[derive(Default)]
pub(crate) struct Lease {
    held: Mutex<Option<(String, MySqlConnection)>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").finish_non_exhaustive()
    }
}

impl Lease {
    /// Whether this store holds the lock on `node` (the writable primary), taking it when
    /// free. A held session that no longer answers, or that sits on another node than the
    /// primary (after a fail-over), is dropped first.
    pub(crate) async fn hold(&self, node: &Node) -> Result<bool, RepoError> {
        let mut held = self.held.lock().await;
        if let Some((label, conn)) = held.as_mut() {
            let alive = *label == node.label
                && matches!(
                    tokio::time::timeout(CHECK_LIMIT, conn.ping()).await,
                    Ok(Ok(()))
                );
            if alive {
                return Ok(true);
            }
            tracing::info!(node = %label, "housekeeping lease lost: its session is gone");
            *held = None;
        }
        let take = async {
            // Detached: the session outlives any pool bookkeeping, and the pool does not
            // count it against its size.
            let mut conn = node.pool.acquire().await?.detach();
            let row = sqlx::query(&format!("SELECT GET_LOCK({LOCK_NAME}, 0) AS got"))
                .fetch_one(&mut conn)
                .await?;
            let got: Option<i64> = row.try_get("got")?;
            Ok::<_, sqlx::Error>((got == Some(1)).then_some(conn))
        };
        match tokio::time::timeout(CHECK_LIMIT, take).await {
            Ok(Ok(Some(conn))) => {
                tracing::info!(node = %node.label, "took the housekeeping lease");
                *held = Some((node.label.clone(), conn));
                Ok(true)
            }
            Ok(Ok(None)) => Ok(false),
            Ok(Err(e)) => Err(error::map(e, "housekeeping lease", &node.label)),
            Err(_) => Err(RepoError::Unavailable(
                format!(
                    "housekeeping lease on {}: no answer within {CHECK_LIMIT:?}",
                    node.label
                )
                .into(),
            )),
        }
    }
}
