//! The Raft state machine: the store's own redb database.
//!
//! Each committed entry is applied in its own write transaction together with the
//! `raft_meta` bookkeeping (last applied log id, last membership), so data and "how far it
//! got" can never disagree after a crash, and nothing is applied twice on restart. Those
//! commits are not fsynced one by one: one durable commit at the end of each batch makes the
//! whole batch durable before any of its responses leaves (a crash before it loses the batch
//! and its bookkeeping together, and the entries are applied again from the log). A command
//! that fails (a CAS mismatch, a duplicate create) is aborted and only the bookkeeping is
//! committed; every node reaches the same error, which becomes the entry's response.
//!
//! I/O failures while applying are not a deterministic outcome: they are reported to openraft
//! as storage errors, which stops the node instead of letting it diverge.

use std::fmt;
use std::io::Cursor;
use std::sync::Arc;

use nacos_core::RepoError;
use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StorageError, StoredMembership,
};
use redb::{
    Database, ReadTransaction, ReadableDatabase, TableDefinition, TableError, WriteTransaction,
};
use tokio::sync::broadcast;

use super::snapshot::{self, Dumper, Loader, SnapshotFile, visit_data_tables};
use super::{Applied, Response, TypeConfig, WireRepoError};
use crate::command::{Command, CommandOutput, apply};
use crate::error::{join_error, raft_storage, storage};
use crate::group_commit::{begin_durable, begin_lazy};
use crate::tables::{decode, encode};

type Entry = openraft::Entry<TypeConfig>;
type Membership = StoredMembership<u64, BasicNode>;

pub(crate) const RAFT_META_NAME: &str = "raft_meta";
const RAFT_META: TableDefinition<&str, &[u8]> = TableDefinition::new(RAFT_META_NAME);
const LAST_APPLIED: &str = "last_applied";
const MEMBERSHIP: &str = "membership";

/// The state machine handed to openraft; the snapshot builder is a clone.
#[derive(Clone)]
pub(crate) struct StateMachine {
    db: Arc<Database>,
    file: SnapshotFile,
    applied: broadcast::Sender<Applied>,
}

impl fmt::Debug for StateMachine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMachine")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// `raft_meta` as of a transaction.
fn read_meta(txn: &ReadTransaction) -> Result<(Option<LogId<u64>>, Membership), RepoError> {
    let table = match txn.open_table(RAFT_META) {
        Ok(table) => table,
        // A store that never ran under Raft.
        Err(TableError::TableDoesNotExist(_)) => return Ok((None, Membership::default())),
        Err(e) => return Err(storage(e)),
    };
    let last_applied = match table.get(LAST_APPLIED).map_err(storage)? {
        Some(guard) => decode(guard.value(), RAFT_META_NAME)?,
        None => None,
    };
    let membership = match table.get(MEMBERSHIP).map_err(storage)? {
        Some(guard) => decode(guard.value(), RAFT_META_NAME)?,
        None => Membership::default(),
    };
    Ok((last_applied, membership))
}

fn write_meta(
    txn: &WriteTransaction,
    last_applied: &Option<LogId<u64>>,
    membership: &Membership,
) -> Result<(), RepoError> {
    let mut table = txn.open_table(RAFT_META).map_err(storage)?;
    let applied = encode(last_applied, RAFT_META_NAME)?;
    let membership = encode(membership, RAFT_META_NAME)?;
    table
        .insert(LAST_APPLIED, applied.as_slice())
        .map_err(storage)?;
    table
        .insert(MEMBERSHIP, membership.as_slice())
        .map_err(storage)?;
    Ok(())
}

/// Whether an apply error is the command's deterministic outcome (the same on every node) or a
/// local I/O failure.
fn is_deterministic(error: &RepoError) -> bool {
    !matches!(error, RepoError::Unavailable(_))
}

impl StateMachine {
    pub(crate) fn new(
        db: Arc<Database>,
        file: SnapshotFile,
        applied: broadcast::Sender<Applied>,
    ) -> Self {
        StateMachine { db, file, applied }
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: FnOnce(&StateMachine) -> Result<T, RepoError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(join_error)?
    }

    /// Apply one entry in its own transaction, not yet durable (see [`StateMachine::flush`]);
    /// the response every node computes for it, and the command to announce once durable.
    fn apply_entry(
        &self,
        entry: &Entry,
        membership: &mut Membership,
    ) -> Result<(Response, Option<Arc<Command>>), RepoError> {
        let log_id = Some(entry.log_id);
        let done = Response {
            result: Ok(CommandOutput::Done),
        };
        match &entry.payload {
            EntryPayload::Blank => {
                self.record(&log_id, membership)?;
                Ok((done, None))
            }
            EntryPayload::Membership(m) => {
                *membership = StoredMembership::new(log_id, m.clone());
                self.record(&log_id, membership)?;
                Ok((done, None))
            }
            EntryPayload::Normal(command) => {
                let txn = begin_lazy(&self.db)?;
                match apply(&txn, command) {
                    Ok(output) => {
                        write_meta(&txn, &log_id, membership)?;
                        txn.commit().map_err(storage)?;
                        let applied = Some(Arc::new(command.clone()));
                        Ok((Response { result: Ok(output) }, applied))
                    }
                    Err(error) if is_deterministic(&error) => {
                        txn.abort().map_err(storage)?;
                        self.record(&log_id, membership)?;
                        let result = Err(WireRepoError::from(error));
                        Ok((Response { result }, None))
                    }
                    Err(error) => Err(error),
                }
            }
        }
    }

    /// Record how far the log is applied, alone (an entry that changes no data).
    fn record(
        &self,
        log_id: &Option<LogId<u64>>,
        membership: &Membership,
    ) -> Result<(), RepoError> {
        let txn = begin_lazy(&self.db)?;
        write_meta(&txn, log_id, membership)?;
        txn.commit().map_err(storage)
    }

    /// Make every commit so far durable: one fsync for a whole batch of applied entries
    /// (each entry commits on its own without one). Until this returns, a crash may lose
    /// those commits, and with them the recorded last-applied id, so the entries are applied
    /// again from the log at restart: nothing is lost or applied twice.
    fn flush(&self) -> Result<(), RepoError> {
        let txn = begin_durable(&self.db)?;
        txn.commit().map_err(storage)
    }

    /// A consistent dump of the store with the bookkeeping of the same transaction.
    fn build(&self) -> Result<(snapshot::Meta, Vec<u8>), RepoError> {
        let txn = self.db.begin_read().map_err(storage)?;
        // A snapshot lets the log behind it be purged, so it must hold only durable state:
        // flushing after the read began makes everything it sees durable (entries applied
        // meanwhile are not in it).
        self.flush()?;
        let (last_applied, membership) = read_meta(&txn)?;
        let mut dumper = Dumper::new(&txn);
        visit_data_tables(&mut dumper)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let meta = SnapshotMeta {
            snapshot_id: format!(
                "{}-{}-{nanos}",
                last_applied.map_or(0, |l| l.leader_id.term),
                last_applied.map_or(0, |l| l.index)
            ),
            last_log_id: last_applied,
            last_membership: membership,
        };
        let blob = snapshot::encode(&meta, &dumper.tables)?;
        self.file.write_if_newer(&meta, &blob)?;
        Ok((meta, blob))
    }

    /// Replace the whole store with a snapshot, in one durable transaction.
    fn install(&self, meta: &snapshot::Meta, blob: &[u8]) -> Result<(), RepoError> {
        let (_, tables) = snapshot::decode(blob)?;
        let txn = begin_durable(&self.db)?;
        let mut loader = Loader::new(&txn, tables);
        visit_data_tables(&mut loader)?;
        loader.finish()?;
        write_meta(&txn, &meta.last_log_id, &meta.last_membership)?;
        txn.commit().map_err(storage)?;
        self.file.write_if_newer(meta, blob)?;
        let _ = self.applied.send(Applied::Snapshot);
        Ok(())
    }

    fn current(&self) -> Result<Option<Snapshot<TypeConfig>>, RepoError> {
        match self.file.read()? {
            Some(blob) => {
                let meta = snapshot::decode_meta(&blob)?;
                Ok(Some(Snapshot {
                    meta,
                    snapshot: Box::new(Cursor::new(blob)),
                }))
            }
            None => Ok(None),
        }
    }
}

fn sm_err(verb: ErrorVerb) -> impl Fn(RepoError) -> StorageError<u64> {
    move |e| raft_storage(ErrorSubject::StateMachine, verb, &e)
}

fn snap_err(verb: ErrorVerb) -> impl Fn(RepoError) -> StorageError<u64> {
    move |e| raft_storage(ErrorSubject::Snapshot(None), verb, &e)
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let (meta, blob) = self
            .blocking(|sm| sm.build())
            .await
            .map_err(snap_err(ErrorVerb::Write))?;
        tracing::info!(snapshot = %meta, bytes = blob.len(), "built Raft snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(blob)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, Membership), StorageError<u64>> {
        self.blocking(|sm| read_meta(&sm.db.begin_read().map_err(storage)?))
            .await
            .map_err(sm_err(ErrorVerb::Read))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        self.blocking(move |sm| {
            let (_, mut membership) = read_meta(&sm.db.begin_read().map_err(storage)?)?;
            let mut out = Vec::with_capacity(entries.len());
            let mut applied = Vec::new();
            for entry in &entries {
                let (response, command) = sm.apply_entry(entry, &mut membership)?;
                out.push(response);
                applied.extend(command);
            }
            // Durable before any response leaves: an acknowledged write is applied on disk.
            sm.flush()?;
            for command in applied {
                // No receivers is fine: the server may not listen.
                let _ = sm.applied.send(Applied::Command(command));
            }
            Ok(out)
        })
        .await
        .map_err(sm_err(ErrorVerb::Write))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &snapshot::Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let meta = meta.clone();
        tracing::info!(snapshot = %meta, "installing Raft snapshot");
        self.blocking(move |sm| sm.install(&meta, snapshot.get_ref()))
            .await
            .map_err(snap_err(ErrorVerb::Write))
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        self.blocking(|sm| sm.current())
            .await
            .map_err(snap_err(ErrorVerb::Read))
    }
}

/// Create `raft_meta` so read transactions always find it.
pub(crate) fn init(db: &Database) -> Result<(), RepoError> {
    let txn = begin_durable(db)?;
    txn.open_table(RAFT_META).map_err(storage)?;
    txn.commit().map_err(storage)
}

/// Whether the store holds data written outside Raft (a standalone store): ids were handed
/// out although no entry was ever applied.
pub(crate) fn has_local_data(db: &Database) -> Result<bool, RepoError> {
    let txn = db.begin_read().map_err(storage)?;
    let counters = txn.open_table(crate::tables::COUNTERS).map_err(storage)?;
    Ok(redb::ReadableTable::first(&counters)
        .map_err(storage)?
        .is_some())
}

/// Whether the store never applied a Raft entry.
pub(crate) fn is_pristine(db: &Database) -> Result<bool, RepoError> {
    read_meta(&db.begin_read().map_err(storage)?).map(|(applied, _)| applied.is_none())
}
