//! The runs: backup to a file, restore from one, migrate between stores, the online stream, and the verification each ends with.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use async_trait::async_trait;
use nacos_core::RepoError;
use nacos_core::transfer::{
    Digests, ExportSink, Record, Table, TableDigest, TransferRepo, encode_line,
};

use super::dump::*;
use super::report::*;
use super::{BATCH_BYTES, BATCH_RECORDS, PAGE_SIZE, Progress, TransferError, io};

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
