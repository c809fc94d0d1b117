//! Snapshots: the blob format, dumping and loading every data table of the store, and the
//! latest snapshot kept on disk (`raft-snapshot.bin`).
//!
//! Blob layout (integers little-endian):
//! `MAGIC` | u32 header length | header (JSON [`SnapshotMeta`]) | u32 table count |
//! per table: u32 name length, name, u64 row count, rows of (u32 key length, key bytes,
//! u32 value length, value bytes). Keys and values are redb's own byte encodings of the typed
//! tables, so the dump is exact and needs no per-table code beyond naming the table.
//!
//! [`visit_data_tables`] is the one list of replicated tables; both dump and load walk it, and
//! a unit test compares it against the tables present in a store file.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nacos_core::RepoError;
use openraft::{BasicNode, SnapshotMeta};
use redb::{
    Key, ReadTransaction, ReadableTable, TableDefinition, TableHandle, Value, WriteTransaction,
};

use crate::error::storage;
use crate::tables;

const MAGIC: &[u8; 16] = b"NACOS-RAFT-SNAP1";

/// Tables that are NOT part of a snapshot: the schema version (local to the file) and Raft's
/// own bookkeeping (written separately from the snapshot meta).
#[cfg(test)]
pub(crate) const LOCAL_TABLES: &[&str] = &["meta", super::state_machine::RAFT_META_NAME];

/// Rows of one table as raw redb key/value bytes.
pub(crate) type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Something done to every replicated table.
pub(crate) trait TableVisitor {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        definition: TableDefinition<'static, K, V>,
    ) -> Result<(), RepoError>;
}

/// Every table of the store that a snapshot carries. Add new tables of `tables.rs` here (the
/// `snapshot_covers_every_table` test fails until you do).
pub(crate) fn visit_data_tables(v: &mut impl TableVisitor) -> Result<(), RepoError> {
    v.table(tables::CONFIGS)?;
    v.table(tables::CONFIG_IDS)?;
    v.table(tables::HISTORY)?;
    v.table(tables::HISTORY_BY_KEY)?;
    v.table(tables::HISTORY_BY_CONFIG)?;
    v.table(tables::GRAYS)?;
    v.table(tables::CHANGES)?;
    v.table(tables::CHANGE_BY_KEY)?;
    v.table(tables::NAMESPACES)?;
    v.table(tables::SERVICES)?;
    v.table(tables::INSTANCES)?;
    v.table(tables::USERS)?;
    v.table(tables::ROLES)?;
    v.table(tables::PERMISSIONS)?;
    v.table(tables::COUNTERS)
}

/// Dumps every data table visible to a read transaction.
pub(crate) struct Dumper<'a> {
    txn: &'a ReadTransaction,
    pub(crate) tables: Vec<(String, Rows)>,
}

impl<'a> Dumper<'a> {
    pub(crate) fn new(txn: &'a ReadTransaction) -> Self {
        Dumper {
            txn,
            tables: Vec::new(),
        }
    }
}

impl TableVisitor for Dumper<'_> {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        definition: TableDefinition<'static, K, V>,
    ) -> Result<(), RepoError> {
        let table = self.txn.open_table(definition).map_err(storage)?;
        let mut rows = Vec::new();
        for row in table.iter().map_err(storage)? {
            let (key, value) = row.map_err(storage)?;
            rows.push((
                K::as_bytes(&key.value()).as_ref().to_vec(),
                V::as_bytes(&value.value()).as_ref().to_vec(),
            ));
        }
        self.tables.push((definition.name().to_string(), rows));
        Ok(())
    }
}

/// Replaces every data table's content inside a write transaction.
pub(crate) struct Loader<'a> {
    txn: &'a WriteTransaction,
    tables: HashMap<String, Rows>,
}

impl<'a> Loader<'a> {
    pub(crate) fn new(txn: &'a WriteTransaction, tables: Vec<(String, Rows)>) -> Self {
        Loader {
            txn,
            tables: tables.into_iter().collect(),
        }
    }

    /// Tables in the blob that this build does not know: refuse rather than drop data.
    pub(crate) fn finish(self) -> Result<(), RepoError> {
        match self.tables.keys().next() {
            Some(name) => Err(RepoError::Internal(
                format!("snapshot carries table {name}, unknown to this build").into(),
            )),
            None => Ok(()),
        }
    }
}

impl TableVisitor for Loader<'_> {
    fn table<K: Key + 'static, V: Value + 'static>(
        &mut self,
        definition: TableDefinition<'static, K, V>,
    ) -> Result<(), RepoError> {
        let mut table = self.txn.open_table(definition).map_err(storage)?;
        table.retain(|_, _| false).map_err(storage)?;
        // A table missing from the blob (an older build's snapshot) stays empty.
        for (key, value) in self.tables.remove(definition.name()).unwrap_or_default() {
            table
                .insert(K::from_bytes(&key), V::from_bytes(&value))
                .map_err(storage)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Blob encoding

pub(crate) type Meta = SnapshotMeta<u64, BasicNode>;

pub(crate) fn encode(meta: &Meta, tables: &[(String, Rows)]) -> Result<Vec<u8>, RepoError> {
    let header = serde_json::to_vec(meta)
        .map_err(|e| RepoError::Internal(format!("cannot encode snapshot meta: {e}").into()))?;
    let mut out = Vec::with_capacity(
        64 + header.len()
            + tables
                .iter()
                .flat_map(|(_, rows)| rows.iter().map(|(k, v)| 8 + k.len() + v.len()))
                .sum::<usize>(),
    );
    out.extend_from_slice(MAGIC);
    put_bytes(&mut out, &header)?;
    put_u32(&mut out, tables.len())?;
    for (name, rows) in tables {
        put_bytes(&mut out, name.as_bytes())?;
        out.extend_from_slice(&(rows.len() as u64).to_le_bytes());
        for (key, value) in rows {
            put_bytes(&mut out, key)?;
            put_bytes(&mut out, value)?;
        }
    }
    Ok(out)
}

fn put_u32(out: &mut Vec<u8>, n: usize) -> Result<(), RepoError> {
    let n = u32::try_from(n).map_err(|_| {
        RepoError::Internal(format!("snapshot field of {n} bytes is too long").into())
    })?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), RepoError> {
    put_u32(out, bytes.len())?;
    out.extend_from_slice(bytes);
    Ok(())
}

/// A cursor over a blob; every read is bounds-checked (a truncated blob is an error).
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RepoError> {
        if self.rest.len() < n {
            return Err(RepoError::Internal(
                "snapshot blob is truncated".to_string().into(),
            ));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<usize, RepoError> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(buf) as usize)
    }

    fn u64(&mut self) -> Result<u64, RepoError> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(buf))
    }

    fn bytes(&mut self) -> Result<&'a [u8], RepoError> {
        let n = self.u32()?;
        self.take(n)
    }
}

fn open_blob(blob: &[u8]) -> Result<(Meta, Reader<'_>), RepoError> {
    let mut reader = Reader { rest: blob };
    if reader.take(MAGIC.len())? != MAGIC {
        return Err(RepoError::Internal(
            "not an embedded store snapshot (bad magic)"
                .to_string()
                .into(),
        ));
    }
    let meta = serde_json::from_slice(reader.bytes()?)
        .map_err(|e| RepoError::Internal(format!("undecodable snapshot meta: {e}").into()))?;
    Ok((meta, reader))
}

/// The meta of a blob, without decoding the tables.
pub(crate) fn decode_meta(blob: &[u8]) -> Result<Meta, RepoError> {
    open_blob(blob).map(|(meta, _)| meta)
}

pub(crate) fn decode(blob: &[u8]) -> Result<(Meta, Vec<(String, Rows)>), RepoError> {
    let (meta, mut reader) = open_blob(blob)?;
    let count = reader.u32()?;
    let mut tables = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let name = String::from_utf8(reader.bytes()?.to_vec()).map_err(|_| {
            RepoError::Internal("snapshot table name is not UTF-8".to_string().into())
        })?;
        let rows = reader.u64()?;
        let mut out = Vec::new();
        for _ in 0..rows {
            let key = reader.bytes()?.to_vec();
            let value = reader.bytes()?.to_vec();
            out.push((key, value));
        }
        tables.push((name, out));
    }
    if !reader.rest.is_empty() {
        return Err(RepoError::Internal(
            "snapshot blob has trailing bytes".to_string().into(),
        ));
    }
    Ok((meta, tables))
}

// ---------------------------------------------------------------------------------------------
// The file

/// The latest snapshot on disk. Clones share one lock, so a slow build finishing after a newer
/// install can never replace the newer file with an older snapshot.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotFile {
    path: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl SnapshotFile {
    pub(crate) fn new(path: PathBuf) -> Self {
        SnapshotFile {
            path,
            lock: Arc::new(Mutex::new(())),
        }
    }

    fn io(&self, what: &str, error: std::io::Error) -> RepoError {
        RepoError::Unavailable(
            format!(
                "cannot {what} snapshot file {}: {error}",
                self.path.display()
            )
            .into(),
        )
    }

    /// The stored blob, if any.
    pub(crate) fn read(&self) -> Result<Option<Vec<u8>>, RepoError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        match fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("read", e)),
        }
    }

    /// Store `blob` (whose meta is `meta`) unless the file already holds a snapshot at least as
    /// new. Written to a temporary file, fsynced, then renamed over the old one, so a crash
    /// leaves either the old or the new snapshot, never a torn one.
    pub(crate) fn write_if_newer(&self, meta: &Meta, blob: &[u8]) -> Result<(), RepoError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(existing) = fs::read(&self.path)
            && let Ok(existing) = decode_meta(&existing)
            && existing.last_log_id >= meta.last_log_id
            && existing.snapshot_id != meta.snapshot_id
        {
            return Ok(());
        }
        let tmp = self.path.with_extension("tmp");
        let mut file = File::create(&tmp).map_err(|e| self.io("create", e))?;
        file.write_all(blob).map_err(|e| self.io("write", e))?;
        file.sync_all().map_err(|e| self.io("sync", e))?;
        drop(file);
        fs::rename(&tmp, &self.path).map_err(|e| self.io("rename", e))?;
        sync_dir(&self.path);
        Ok(())
    }
}

/// Make the rename durable. Best effort: not every platform can open a directory.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(dir) = File::open(dir)
        && let Err(error) = dir.sync_all()
    {
        tracing::debug!(%error, "syncing the data directory after a snapshot write failed");
    }
}
