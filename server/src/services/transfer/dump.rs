//! The dump file: header, record lines, trailer; written and read with their checks.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use nacos_core::transfer::{
    Digests, FORMAT_NAME, FORMAT_VERSION, Record, Table, TableDigest, compare, encode_line,
};
use serde::{Deserialize, Serialize};

use super::{TransferError, io};

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
    // Tests forge a trailer by resetting it.
    pub(super) digests: Digests,
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
