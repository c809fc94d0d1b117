//! What a run reports: per table the two sides, their counts and MD5s, and the verdict.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nacos_core::transfer::{Table, TableDifference, TableDigest, compare};

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

    pub(super) fn new(
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
