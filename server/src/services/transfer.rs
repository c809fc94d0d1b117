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

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use nacos_core::RepoError;
use nacos_core::transfer::{
    Digests, ExportSink, FORMAT_NAME, FORMAT_VERSION, Record, Table, TableDifference, TableDigest,
    TransferRepo, compare, encode_line,
};
use serde::{Deserialize, Serialize};

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

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    end: BTreeMap<Table, TableDigest>,
}

const TRAILER_PREFIX: &[u8] = b"{\"end\":";

/// Writes a dump: header first, [`DumpWriter::finish`] writes the trailer.
#[derive(Debug)]
pub struct DumpWriter<W: Write> {
    gz: GzEncoder<W>,
    digests: Digests,
}

impl<W: Write> DumpWriter<W> {
    pub fn new(inner: W) -> Result<Self, TransferError> {
        let mut gz = GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(inner, Compression::fast());
        let header = serde_json::to_vec(&Header {
            format: FORMAT_NAME.to_string(),
            version: FORMAT_VERSION,
        })
        .map_err(|e| TransferError::BadDump(e.to_string()))?;
        gz.write_all(&header).map_err(io("writing the dump"))?;
        gz.write_all(b"\n").map_err(io("writing the dump"))?;
        Ok(DumpWriter {
            gz,
            digests: Digests::new(),
        })
    }

    pub fn write(&mut self, record: &Record) -> Result<(), TransferError> {
        let line = encode_line(record)?;
        self.gz.write_all(&line).map_err(io("writing the dump"))?;
        self.gz.write_all(b"\n").map_err(io("writing the dump"))?;
        self.digests.add_line(record.table(), &line);
        Ok(())
    }

    /// The sink the compressed bytes go to (to drain a `Vec` while streaming).
    pub fn inner_mut(&mut self) -> &mut W {
        self.gz.get_mut()
    }

    /// Write the trailer and end the gzip stream; the sink and the per-table digests.
    pub fn finish(mut self) -> Result<(W, BTreeMap<Table, TableDigest>), TransferError> {
        let digests = self.digests.finish();
        let trailer = serde_json::to_vec(&Trailer {
            end: digests.clone(),
        })
        .map_err(|e| TransferError::BadDump(e.to_string()))?;
        self.gz
            .write_all(&trailer)
            .map_err(io("writing the dump"))?;
        self.gz.write_all(b"\n").map_err(io("writing the dump"))?;
        let inner = self.gz.finish().map_err(io("writing the dump"))?;
        Ok((inner, digests))
    }
}

/// Reads a dump, checking its header, and at the end its trailer against the lines read.
#[derive(Debug)]
pub struct DumpReader<R: Read> {
    lines: BufReader<GzDecoder<R>>,
    digests: Digests,
    line: Vec<u8>,
    line_no: u64,
    checked: Option<BTreeMap<Table, TableDigest>>,
}

impl<R: Read> DumpReader<R> {
    pub fn new(inner: R) -> Result<Self, TransferError> {
        let mut reader = DumpReader {
            lines: BufReader::new(GzDecoder::new(inner)),
            digests: Digests::new(),
            line: Vec::new(),
            line_no: 0,
            checked: None,
        };
        if !reader.read_line()? {
            return Err(TransferError::BadDump("the file is empty".into()));
        }
        let header: Header = serde_json::from_slice(&reader.line).map_err(|_| {
            TransferError::BadDump(format!("the first line is not a {FORMAT_NAME} header"))
        })?;
        if header.format != FORMAT_NAME || header.version != FORMAT_VERSION {
            return Err(TransferError::BadDump(format!(
                "format {} version {}; this build reads {FORMAT_NAME} version {FORMAT_VERSION}",
                header.format, header.version
            )));
        }
        Ok(reader)
    }

    fn read_line(&mut self) -> Result<bool, TransferError> {
        self.line.clear();
        let n = self
            .lines
            .read_until(b'\n', &mut self.line)
            .map_err(|e| TransferError::BadDump(format!("cannot read the file: {e}")))?;
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
        }
        self.line_no += 1;
        Ok(n > 0)
    }

    /// The next record, or `None` after the trailer (once it matched every line).
    pub fn next_record(&mut self) -> Result<Option<Record>, TransferError> {
        if self.checked.is_some() {
            return Ok(None);
        }
        if !self.read_line()? {
            return Err(TransferError::BadDump(
                "the file ends before its trailer (truncated?)".into(),
            ));
        }
        if self.line.starts_with(TRAILER_PREFIX) {
            let trailer: Trailer = serde_json::from_slice(&self.line)
                .map_err(|e| TransferError::BadDump(format!("unreadable trailer: {e}")))?;
            let read = std::mem::replace(&mut self.digests, Digests::new()).finish();
            let differences = compare(&trailer.end, &read);
            if let Some(d) = differences.first() {
                return Err(TransferError::BadDump(format!(
                    "table {} holds {} lines (md5 {}) but its trailer says {} (md5 {}): the \
                     file is damaged",
                    d.table.name(),
                    d.actual.count,
                    d.actual.md5,
                    d.expected.count,
                    d.expected.md5
                )));
            }
            if self.read_line()? {
                return Err(TransferError::BadDump("data after the trailer".into()));
            }
            self.checked = Some(read);
            return Ok(None);
        }
        let record: Record = serde_json::from_slice(&self.line).map_err(|e| {
            TransferError::BadDump(format!("line {}: not a record: {e}", self.line_no))
        })?;
        self.digests.add_line(record.table(), &self.line);
        Ok(Some(record))
    }

    /// The per-table digests of the file, once every record was read.
    pub fn digests(&self) -> Option<&BTreeMap<Table, TableDigest>> {
        self.checked.as_ref()
    }
}

/// One table of a report: the expected side and what the target holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLine {
    pub table: Table,
    pub expected: TableDigest,
    pub actual: TableDigest,
}

/// What a run did and what its verification found.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was compared: "store → file", "file → store", "source → target".
    pub sides: (&'static str, &'static str),
    pub tables: Vec<TableLine>,
    pub differences: Vec<TableDifference>,
    /// Records copied.
    pub records: u64,
    /// Records the target stores in a coarser form (whole seconds, no tag data key).
    pub coarsened: u64,
    pub elapsed: Duration,
}

impl Report {
    /// The report of a run that compared `expected` with `actual`.
    pub fn compare(
        sides: (&'static str, &'static str),
        expected: &BTreeMap<Table, TableDigest>,
        actual: &BTreeMap<Table, TableDigest>,
        started: Instant,
    ) -> Report {
        Report::new(sides, expected, actual, started)
    }

    fn new(
        sides: (&'static str, &'static str),
        expected: &BTreeMap<Table, TableDigest>,
        actual: &BTreeMap<Table, TableDigest>,
        started: Instant,
    ) -> Report {
        let tables = Table::ALL
            .iter()
            .map(|t| TableLine {
                table: *t,
                expected: expected.get(t).cloned().unwrap_or_default(),
                actual: actual.get(t).cloned().unwrap_or_default(),
            })
            .collect();
        Report {
            sides,
            tables,
            differences: compare(expected, actual),
            records: expected.values().map(|d| d.count).sum(),
            coarsened: 0,
            elapsed: started.elapsed(),
        }
    }

    /// Whether both sides agree on every table.
    pub fn verified(&self) -> bool {
        self.differences.is_empty()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<12} {:>9} {:>9}  md5 ({} / {})",
            "table", self.sides.0, self.sides.1, self.sides.0, self.sides.1
        )?;
        for line in &self.tables {
            let mark = if line.expected == line.actual {
                "ok"
            } else {
                "DIFFERS"
            };
            writeln!(
                f,
                "{:<12} {:>9} {:>9}  {} / {}  {mark}",
                line.table.name(),
                line.expected.count,
                line.actual.count,
                line.expected.md5,
                line.actual.md5
            )?;
        }
        if self.coarsened > 0 {
            writeln!(
                f,
                "{} records are stored coarser by the target (whole-second times in MySQL's \
                 datetime columns, no data key on tag variants); compared in that form",
                self.coarsened
            )?;
        }
        let verdict = if self.verified() {
            "verified".to_string()
        } else {
            let names: Vec<&str> = self.differences.iter().map(|d| d.table.name()).collect();
            format!("DIFFERENCES in {}", names.join(", "))
        };
        write!(
            f,
            "{} records in {:.1?}: {verdict}",
            self.records, self.elapsed
        )
    }
}

/// The report of a dump file read whole: its lines agreed with the trailer its writer wrote.
pub fn report_of_file(digests: &BTreeMap<Table, TableDigest>, started: Instant) -> Report {
    Report::new(("writer", "file"), digests, digests, started)
}

/// Sums the digests of every exported record.
struct DigestSink<'a> {
    digests: Digests,
    progress: &'a dyn Progress,
}

#[async_trait]
impl ExportSink for DigestSink<'_> {
    async fn page(&mut self, _table: Table, records: Vec<Record>) -> Result<(), RepoError> {
        for record in &records {
            self.digests.add(record)?;
        }
        self.progress.advance(records.len() as u64);
        Ok(())
    }
}

/// Count and MD5 of every table of a store, from one consistent export.
pub async fn digest_store(
    repo: &dyn TransferRepo,
    progress: &dyn Progress,
) -> Result<BTreeMap<Table, TableDigest>, TransferError> {
    let mut sink = DigestSink {
        digests: Digests::new(),
        progress,
    };
    repo.export(PAGE_SIZE, &mut sink).await?;
    Ok(sink.digests.finish())
}

async fn total(repo: &dyn TransferRepo) -> Result<u64, TransferError> {
    Ok(repo.counts().await?.values().sum())
}

/// Refuse a target holding data unless `force`.
async fn check_empty(target: &dyn TransferRepo, force: bool) -> Result<(), TransferError> {
    if force {
        return Ok(());
    }
    let held: Vec<String> = target
        .counts()
        .await?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| format!("{n} {}", t.name()))
        .collect();
    if held.is_empty() {
        Ok(())
    } else {
        Err(TransferError::NotEmpty(held.join(", ")))
    }
}

/// Writes exported pages into a dump.
struct WriterSink<'a, W: Write + Send> {
    writer: DumpWriter<W>,
    progress: &'a dyn Progress,
}

#[async_trait]
impl<W: Write + Send> ExportSink for WriterSink<'_, W> {
    async fn page(&mut self, _table: Table, records: Vec<Record>) -> Result<(), RepoError> {
        for record in &records {
            self.writer
                .write(record)
                .map_err(|e| RepoError::Unavailable(e.to_string().into()))?;
        }
        self.progress.advance(records.len() as u64);
        Ok(())
    }
}

/// Write `repo` to the dump file `path` (through `path.partial`, renamed when complete), then
/// read the file back and compare it with the store's side.
pub async fn backup_to_file(
    repo: &dyn TransferRepo,
    path: &Path,
    progress: &dyn Progress,
) -> Result<Report, TransferError> {
    let started = Instant::now();
    progress.begin("backup", Some(total(repo).await?));
    let partial = partial_path(path);
    let file = std::fs::File::create(&partial)
        .map_err(io(format!("cannot create {}", partial.display())))?;
    let mut sink = WriterSink {
        writer: DumpWriter::new(std::io::BufWriter::new(file))?,
        progress,
    };
    repo.export(PAGE_SIZE, &mut sink).await?;
    let (buffered, store_side) = sink.writer.finish()?;
    let file = buffered.into_inner().map_err(|e| TransferError::Io {
        what: format!("writing {}", partial.display()),
        source: e.into_error(),
    })?;
    file.sync_all()
        .map_err(io(format!("writing {}", partial.display())))?;
    std::fs::rename(&partial, path).map_err(io(format!(
        "cannot rename {} to {}",
        partial.display(),
        path.display()
    )))?;
    progress.end();
    let file_side = digest_file(path)?;
    Ok(Report::new(
        ("store", "file"),
        &store_side,
        &file_side,
        started,
    ))
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Whether `path` opens as a dump (readable, gzip, the header of this format), before a tool
/// opens any storage for it.
pub fn check_header(path: &Path) -> Result<(), TransferError> {
    let file = std::fs::File::open(path).map_err(io(format!("cannot open {}", path.display())))?;
    DumpReader::new(file).map(|_| ())
}

/// Count and MD5 of every table of a dump file (which must be whole: trailer checked).
pub fn digest_file(path: &Path) -> Result<BTreeMap<Table, TableDigest>, TransferError> {
    let file = std::fs::File::open(path).map_err(io(format!("cannot open {}", path.display())))?;
    let mut reader = DumpReader::new(file)?;
    while reader.next_record()?.is_some() {}
    Ok(reader.digests().cloned().unwrap_or_default())
}

/// Import batches, closed by record count or bytes.
struct Batcher<'a> {
    target: &'a dyn TransferRepo,
    batch: Vec<Record>,
    bytes: usize,
    /// The expected side: every record in the target's stored form.
    expected: Digests,
    coarsened: u64,
    progress: &'a dyn Progress,
}

impl<'a> Batcher<'a> {
    fn new(target: &'a dyn TransferRepo, progress: &'a dyn Progress) -> Self {
        Batcher {
            target,
            batch: Vec::new(),
            bytes: 0,
            expected: Digests::new(),
            coarsened: 0,
            progress,
        }
    }

    async fn push(&mut self, record: Record) -> Result<(), RepoError> {
        let mut stored = record.clone();
        self.target.stored_form(&mut stored);
        if stored != record {
            self.coarsened += 1;
        }
        let line = encode_line(&stored)?;
        self.bytes += line.len();
        self.expected.add_line(stored.table(), &line);
        self.batch.push(record);
        if self.batch.len() >= BATCH_RECORDS || self.bytes >= BATCH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), RepoError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let n = batch.len() as u64;
        self.bytes = 0;
        self.target.import(batch).await?;
        self.progress.advance(n);
        Ok(())
    }
}

#[async_trait]
impl ExportSink for Batcher<'_> {
    async fn page(&mut self, _table: Table, records: Vec<Record>) -> Result<(), RepoError> {
        for record in records {
            self.push(record).await?;
        }
        Ok(())
    }
}

/// Restore the dump file `path` into `target` (refused when it holds data, unless `force`),
/// then compare the file with a fresh export of the target.
pub async fn restore_from_file(
    path: &Path,
    target: &dyn TransferRepo,
    force: bool,
    progress: &dyn Progress,
) -> Result<Report, TransferError> {
    let started = Instant::now();
    check_empty(target, force).await?;
    let file = std::fs::File::open(path).map_err(io(format!("cannot open {}", path.display())))?;
    let mut reader = DumpReader::new(std::io::BufReader::new(file))?;
    progress.begin("restore", None);
    let mut batcher = Batcher::new(target, progress);
    while let Some(record) = reader.next_record()? {
        batcher.push(record).await?;
    }
    batcher.flush().await?;
    progress.end();
    verify(("file", "store"), batcher, target, progress, started).await
}

/// Records of an uploaded batch: dump record lines (no header, no trailer).
pub fn parse_lines(body: &[u8]) -> Result<Vec<Record>, TransferError> {
    let mut out = Vec::new();
    for (n, line) in body.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record: Record = serde_json::from_slice(line).map_err(|e| {
            TransferError::BadDump(format!("line {}: not a dump record: {e}", n + 1))
        })?;
        out.push(record);
    }
    Ok(out)
}

/// Import one uploaded batch into `target` (refused when it holds data, unless `force`);
/// the records as the target stores them, one dump line each, for the uploader's
/// verification.
pub async fn import_batch(
    target: &dyn TransferRepo,
    records: Vec<Record>,
    force: bool,
) -> Result<Vec<u8>, TransferError> {
    check_empty(target, force).await?;
    let mut stored = Vec::new();
    for record in &records {
        let mut kept = record.clone();
        target.stored_form(&mut kept);
        stored.extend(encode_line(&kept)?);
        stored.push(b'\n');
    }
    target.import(records).await?;
    Ok(stored)
}

async fn verify(
    sides: (&'static str, &'static str),
    batcher: Batcher<'_>,
    target: &dyn TransferRepo,
    progress: &dyn Progress,
    started: Instant,
) -> Result<Report, TransferError> {
    let coarsened = batcher.coarsened;
    let expected = batcher.expected.finish();
    progress.begin("verify", Some(expected.values().map(|d| d.count).sum()));
    let actual = digest_store(target, progress).await?;
    progress.end();
    let mut report = Report::new(sides, &expected, &actual, started);
    report.coarsened = coarsened;
    Ok(report)
}

/// Copy every record of `source` into `target` (refused when it holds data, unless `force`)
/// from one consistent export of the source, then compare both sides. The export runs ahead
/// of the import by a few pages, so reading one store overlaps writing the other.
pub async fn migrate(
    source: &dyn TransferRepo,
    target: &dyn TransferRepo,
    force: bool,
    progress: &dyn Progress,
) -> Result<Report, TransferError> {
    struct Pages(tokio::sync::mpsc::Sender<Vec<Record>>);
    #[async_trait]
    impl ExportSink for Pages {
        async fn page(&mut self, _table: Table, records: Vec<Record>) -> Result<(), RepoError> {
            self.0.send(records).await.map_err(|_| {
                RepoError::Unavailable("the import stopped before the export ended".into())
            })
        }
    }
    let started = Instant::now();
    check_empty(target, force).await?;
    progress.begin("migrate", Some(total(source).await?));
    let (pages, mut incoming) = tokio::sync::mpsc::channel(4);
    let export = async move {
        let mut sink = Pages(pages);
        source.export(PAGE_SIZE, &mut sink).await
    };
    let import = async {
        let mut batcher = Batcher::new(target, progress);
        while let Some(page) = incoming.recv().await {
            for record in page {
                batcher.push(record).await?;
            }
        }
        batcher.flush().await?;
        Ok::<_, RepoError>(batcher)
    };
    let (exported, imported) = tokio::join!(export, import);
    // An import failure also stops the export; report the cause, not the consequence.
    let batcher = imported?;
    exported?;
    progress.end();
    verify(("source", "target"), batcher, target, progress, started).await
}

/// Streams a consistent export as dump bytes (the online backup): each page's compressed
/// bytes go to `send` as soon as they are written. An error ends the stream before the
/// trailer, so a reader refuses what it got.
pub async fn stream_dump<F, Fut>(repo: &dyn TransferRepo, send: F) -> Result<(), TransferError>
where
    F: FnMut(Vec<u8>) -> Fut + Send,
    Fut: std::future::Future<Output = bool> + Send,
{
    struct StreamSink<F> {
        writer: DumpWriter<Vec<u8>>,
        send: F,
    }
    #[async_trait]
    impl<F, Fut> ExportSink for StreamSink<F>
    where
        F: FnMut(Vec<u8>) -> Fut + Send,
        Fut: std::future::Future<Output = bool> + Send,
    {
        async fn page(&mut self, _table: Table, records: Vec<Record>) -> Result<(), RepoError> {
            for record in &records {
                self.writer
                    .write(record)
                    .map_err(|e| RepoError::Internal(e.to_string().into()))?;
            }
            let bytes = std::mem::take(self.writer.inner_mut());
            if !bytes.is_empty() && !(self.send)(bytes).await {
                return Err(RepoError::Unavailable(
                    "the client went away during the backup".into(),
                ));
            }
            Ok(())
        }
    }
    let mut sink = StreamSink {
        writer: DumpWriter::new(Vec::new())?,
        send,
    };
    repo.export(PAGE_SIZE, &mut sink).await?;
    let StreamSink { writer, mut send } = sink;
    let (rest, _) = writer.finish()?;
    if !send(rest).await {
        return Err(TransferError::Storage(RepoError::Unavailable(
            "the client went away during the backup".into(),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nacos_core::User;

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
