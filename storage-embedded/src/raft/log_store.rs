//! The Raft log storage: vote, committed marker, entries by index and the last purged log id,
//! in their own redb file (`raft-log.redb`) next to the store.
//!
//! Durability: the vote, appended entries, truncations and purges commit with
//! [`Durability::Immediate`] before openraft is told they are persisted (the append callback
//! fires only after the fsync). The committed marker is an optimisation openraft can rebuild,
//! so it is written without a sync of its own (it reaches disk with the next durable commit).

use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use nacos_core::RepoError;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogId, LogState, RaftLogReader, StorageError, Vote};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::TypeConfig;
use crate::error::{join_error, raft_storage, storage, with_path};
use crate::tables::{decode, encode};

type Entry = openraft::Entry<TypeConfig>;

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_log_state");
const VOTE_KEY: &str = "vote";
const COMMITTED_KEY: &str = "committed";
const PURGED_KEY: &str = "last_purged";

/// Handle on the log file; clones share the database (the log reader is a clone).
#[derive(Clone)]
pub(crate) struct LogStore {
    db: Arc<Database>,
}

impl fmt::Debug for LogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

impl LogStore {
    /// Open (or create) the log file at `path`.
    pub(crate) fn open(path: &Path) -> Result<LogStore, RepoError> {
        let db = Database::builder()
            .create(path)
            .map_err(|e| with_path(path, storage(e)))?;
        let mut txn = db.begin_write().map_err(storage)?;
        txn.set_durability(Durability::Immediate).map_err(storage)?;
        txn.open_table(LOG).map_err(storage)?;
        txn.open_table(STATE).map_err(storage)?;
        txn.commit().map_err(storage)?;
        Ok(LogStore { db: Arc::new(db) })
    }

    /// Run `f` on the blocking pool with the database.
    async fn blocking<T, F>(&self, f: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, RepoError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(join_error)?
    }

    /// Whether nothing was ever written: no vote, no entry and nothing purged.
    pub(crate) async fn is_pristine(&self) -> Result<bool, RepoError> {
        self.blocking(|db| {
            let txn = db.begin_read().map_err(storage)?;
            let state = txn.open_table(STATE).map_err(storage)?;
            let log = txn.open_table(LOG).map_err(storage)?;
            Ok(state.get(VOTE_KEY).map_err(storage)?.is_none()
                && state.get(PURGED_KEY).map_err(storage)?.is_none()
                && log.first().map_err(storage)?.is_none())
        })
        .await
    }

    async fn read_state<T>(&self, key: &'static str) -> Result<Option<T>, RepoError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(STATE).map_err(storage)?;
            match table.get(key).map_err(storage)? {
                Some(guard) => decode(guard.value(), STATE.name()).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    async fn write_state<T: Serialize>(
        &self,
        key: &'static str,
        value: &T,
        durability: Durability,
    ) -> Result<(), RepoError> {
        let bytes = encode(value, STATE.name())?;
        self.blocking(move |db| {
            let mut txn = db.begin_write().map_err(storage)?;
            txn.set_durability(durability).map_err(storage)?;
            txn.open_table(STATE)
                .map_err(storage)?
                .insert(key, bytes.as_slice())
                .map_err(storage)?;
            txn.commit().map_err(storage)
        })
        .await
    }
}

fn read_err(error: RepoError) -> StorageError<u64> {
    raft_storage(ErrorSubject::Logs, ErrorVerb::Read, &error)
}

fn write_err(error: RepoError) -> StorageError<u64> {
    raft_storage(ErrorSubject::Logs, ErrorVerb::Write, &error)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<u64>> {
        // Owned bounds: the range type is not 'static, the blocking task needs one that is.
        let bounds: (Bound<u64>, Bound<u64>) =
            (range.start_bound().cloned(), range.end_bound().cloned());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(LOG).map_err(storage)?;
            let mut out = Vec::new();
            for row in table.range::<u64>(bounds).map_err(storage)? {
                let (_, value) = row.map_err(storage)?;
                out.push(decode::<Entry>(value.value(), LOG.name())?);
            }
            Ok(out)
        })
        .await
        .map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let purged: Option<LogId<u64>> = self.read_state(PURGED_KEY).await.map_err(read_err)?;
        let last: Option<Entry> = self
            .blocking(|db| {
                let txn = db.begin_read().map_err(storage)?;
                let table = txn.open_table(LOG).map_err(storage)?;
                match table.last().map_err(storage)? {
                    Some((_, value)) => decode(value.value(), LOG.name()).map(Some),
                    None => Ok(None),
                }
            })
            .await
            .map_err(read_err)?;
        let last_log_id = last.map(|entry| entry.log_id).or(purged);
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        self.write_state(VOTE_KEY, vote, Durability::Immediate)
            .await
            .map_err(|e| raft_storage(ErrorSubject::Vote, ErrorVerb::Write, &e))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        self.read_state(VOTE_KEY)
            .await
            .map_err(|e| raft_storage(ErrorSubject::Vote, ErrorVerb::Read, &e))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        self.write_state(COMMITTED_KEY, &committed, Durability::None)
            .await
            .map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        let committed: Option<Option<LogId<u64>>> =
            self.read_state(COMMITTED_KEY).await.map_err(read_err)?;
        Ok(committed.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut rows = Vec::new();
        for entry in entries {
            rows.push((
                entry.log_id.index,
                encode(&entry, LOG.name()).map_err(write_err)?,
            ));
        }
        let result = self
            .blocking(move |db| {
                let mut txn = db.begin_write().map_err(storage)?;
                txn.set_durability(Durability::Immediate).map_err(storage)?;
                {
                    let mut table = txn.open_table(LOG).map_err(storage)?;
                    for (index, bytes) in &rows {
                        table.insert(*index, bytes.as_slice()).map_err(storage)?;
                    }
                }
                txn.commit().map_err(storage)
            })
            .await;
        // Only now, after the fsync, may openraft count these entries as persisted.
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(error) => {
                callback.log_io_completed(Err(std::io::Error::other(error.to_string())));
                Err(write_err(error))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        self.blocking(move |db| {
            let mut txn = db.begin_write().map_err(storage)?;
            txn.set_durability(Durability::Immediate).map_err(storage)?;
            txn.open_table(LOG)
                .map_err(storage)?
                .retain_in(log_id.index.., |_, _| false)
                .map_err(storage)?;
            txn.commit().map_err(storage)
        })
        .await
        .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let marker = encode(&log_id, STATE.name()).map_err(write_err)?;
        self.blocking(move |db| {
            let mut txn = db.begin_write().map_err(storage)?;
            txn.set_durability(Durability::Immediate).map_err(storage)?;
            // The marker and the deletion commit together, so the log state is never torn.
            txn.open_table(STATE)
                .map_err(storage)?
                .insert(PURGED_KEY, marker.as_slice())
                .map_err(storage)?;
            txn.open_table(LOG)
                .map_err(storage)?
                .retain_in(..=log_id.index, |_, _| false)
                .map_err(storage)?;
            txn.commit().map_err(storage)
        })
        .await
        .map_err(write_err)
    }
}
