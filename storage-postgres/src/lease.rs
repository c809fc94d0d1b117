//! The housekeeping lease ([`nacos_core::ConfigRepo::housekeeping_lease`]): a session-level
//! advisory lock, taken with `pg_try_advisory_lock` on a connection of its own that this store
//! keeps open. PostgreSQL releases the lock only when that session ends, so among the nodes
//! sharing one database exactly one holds it, and another takes it over once the holder's
//! connection (or process) is gone. Advisory locks are scoped to the database, so several
//! databases on one server do not contend.

use std::time::Duration;

use diesel::sql_types::{BigInt, Bool};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use nacos_core::RepoError;
use tokio::sync::Mutex;

use crate::cluster::Node;
use crate::error;

/// The advisory lock key: the bytes of "nacos-hk" as a number, so it is recognisable in
/// `pg_locks` and unlikely to meet another application's key.
const LOCK_KEY: i64 = 0x6e61_636f_732d_686b;

/// How long one check of the lease may take before it counts as not held.
const CHECK_LIMIT: Duration = Duration::from_secs(5);

/// The held lock's session, and the node it is on.
#[derive(Default)]
pub(crate) struct Lease {
    held: Mutex<Option<(String, AsyncPgConnection)>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").finish_non_exhaustive()
    }
}

impl Lease {
    /// Whether this store holds the lock on `node` (the writable node in use), taking it when
    /// free. A held session that no longer answers, or that sits on another node than the one
    /// in use (after a fail-over), is dropped first.
    pub(crate) async fn hold(&self, node: &Node) -> Result<bool, RepoError> {
        let mut held = self.held.lock().await;
        if let Some((label, conn)) = held.as_mut() {
            let alive = *label == node.label
                && matches!(
                    tokio::time::timeout(CHECK_LIMIT, ping(conn)).await,
                    Ok(Ok(()))
                );
            if alive {
                return Ok(true);
            }
            tracing::info!(node = %label, "housekeeping lease lost: its session is gone");
            *held = None;
        }
        let take = async {
            let mut conn = node
                .pool
                .dedicated_connection()
                .await
                .map_err(|e| error::pool_error(&node.label, e))?;
            let got: bool = diesel::select(
                diesel::dsl::sql::<Bool>("pg_try_advisory_lock(")
                    .bind::<BigInt, _>(LOCK_KEY)
                    .sql(")"),
            )
            .get_result(&mut conn)
            .await
            .map_err(error::db)?;
            Ok::<_, RepoError>(got.then_some(conn))
        };
        match tokio::time::timeout(CHECK_LIMIT, take).await {
            Ok(Ok(Some(conn))) => {
                tracing::info!(node = %node.label, "took the housekeeping lease");
                *held = Some((node.label.clone(), conn));
                Ok(true)
            }
            Ok(Ok(None)) => Ok(false),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(error::timed_out(&node.label, CHECK_LIMIT)),
        }
    }
}

async fn ping(conn: &mut AsyncPgConnection) -> Result<(), diesel::result::Error> {
    diesel::select(diesel::dsl::sql::<Bool>("true"))
        .get_result::<bool>(conn)
        .await
        .map(|_| ())
}
