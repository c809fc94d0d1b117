//! Backup, restore and migration of a whole store over [`TransferRepo`]: the dump file format,
//! the runs, and the verification each run ends with (per table: a count and an MD5 over the
//! dump lines, on both sides).
//!
//! # File format
//! A gzip stream (fixed header: no file name, time 0) of UTF-8 lines, so the same store always
//! gives the same bytes:
//! 1. a header, `{"format":"nacos-rs-dump","version":1}`;
//! 2. one line per record, `{"t":"<kind>","v":{…}}` ([`Record`]), tables in [`Table::ALL`]
//!    order, each in its export order;
//! 3. a trailer, `{"end":{"<table>":{"count":N,"md5":"…"},…}}`: count and MD5 of each
//!    table's record lines (each with its newline). A reader refuses a file whose trailer is
//!    missing (truncated) or disagrees with the lines (damaged).
//!
//! # Verification
//! The expected side is each record in the target's stored form
//! ([`TransferRepo::stored_form`]: MySQL keeps whole seconds, SQL tag variants no data key),
//! the actual side a fresh export of the target; any table whose count or MD5 differs is
//! listed, and the run reports failure.
//!
//! # Layout
//! - this file: [`TransferError`], the batch sizes, [`Progress`];
//! - `dump`: the file format, [`DumpWriter`] and [`DumpReader`], and reading whole files;
//! - `report`: what a run tells its user ([`Report`]);
//! - `runs`: backup, restore, migration, the online stream and the verification they end with.

use nacos_core::RepoError;

mod dump;
mod report;
mod runs;

pub use dump::{DumpReader, DumpWriter, check_header, digest_file, parse_lines};
pub use report::{Report, TableLine, report_of_file};
pub use runs::{
    backup_to_file, digest_store, import_batch, migrate, restore_from_file, stream_dump,
};

/// Records per export page.
pub const PAGE_SIZE: u32 = 1000;
/// An import batch closes at this many records or bytes of dump lines, whichever comes first
/// (one transaction or Raft entry each; bytes keep it under MySQL's packet limit).
pub const BATCH_RECORDS: usize = 1000;
pub const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Why a backup, restore or migration failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("storage: {0}")]
    Storage(#[from] RepoError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not a usable dump: {0}")]
    BadDump(String),
    #[error(
        "the target store is not empty ({0}); restore into an empty store, or pass --force to \
         merge (each record replaces the row with its key; other rows stay)"
    )]
    NotEmpty(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TransferError {
    let what = what.into();
    move |source| TransferError::Io { what, source }
}

/// Where a run reports how far it got (a progress bar, log lines, a test's counter).
pub trait Progress: Send + Sync {
    /// A phase starts; `total` records when known.
    fn begin(&self, phase: &str, total: Option<u64>);
    fn advance(&self, records: u64);
    fn end(&self);
}

/// No progress reporting.
#[derive(Debug, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _phase: &str, _total: Option<u64>) {}
    fn advance(&self, _records: u64) {}
    fn end(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use nacos_core::User;
    use nacos_core::transfer::{Digests, Record, Table};

    fn user(name: &str) -> Record {
        Record::User(User {
            username: name.into(),
            password_hash: "$2a$10$abc".into(),
            enabled: true,
        })
    }

    fn dump(records: &[Record]) -> Vec<u8> {
        let mut w = DumpWriter::new(Vec::new()).expect("header");
        for r in records {
            w.write(r).expect("write");
        }
        w.finish().expect("finish").0
    }

    #[test]
    fn dumps_are_deterministic_and_read_back() {
        let records = [user("a"), user("b")];
        let bytes = dump(&records);
        assert_eq!(bytes, dump(&records), "same records, same bytes");
        let mut r = DumpReader::new(bytes.as_slice()).expect("header");
        let mut back = Vec::new();
        while let Some(rec) = r.next_record().expect("valid") {
            back.push(rec);
        }
        assert_eq!(back, records);
        assert_eq!(r.digests().expect("checked")[&Table::Users].count, 2);
    }

    #[test]
    fn truncated_and_damaged_dumps_are_refused() {
        let bytes = dump(&[user("a"), user("b")]);
        // Cut inside the compressed stream.
        let cut = &bytes[..bytes.len() / 2];
        let outcome = DumpReader::new(cut).and_then(|mut r| {
            while r.next_record()?.is_some() {}
            Ok(())
        });
        assert!(
            matches!(outcome, Err(TransferError::BadDump(_))),
            "{outcome:?}"
        );
        // A well-formed file whose trailer disagrees with its lines.
        let mut w = DumpWriter::new(Vec::new()).expect("header");
        w.write(&user("a")).expect("write");
        w.digests = Digests::new();
        let forged = w.finish().expect("finish").0;
        let mut r = DumpReader::new(forged.as_slice()).expect("header");
        assert!(r.next_record().expect("a record").is_some());
        let err = r.next_record().expect_err("trailer disagrees");
        assert!(err.to_string().contains("damaged"), "{err}");
        assert!(DumpReader::new(&b"not gzip"[..]).is_err());
    }
}
