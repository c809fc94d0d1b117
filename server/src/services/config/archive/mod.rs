//! Export and import archives (`?export=true`, `?exportV2=true`, `?import=true`).
//!
//! # Archive layout
//! Every config is one zip entry named `group/dataId` whose bytes are the content. Two
//! metadata flavours exist:
//! - **v1** (`export=true`): an optional `.meta.yml`, present only when some config has an
//!   appName. Despite the name it is not YAML: CRLF-terminated `key=value` lines, where the key is
//!   `group.<dataId>.app` with the dataId's last `.` turned into `~`.
//! - **v2** (`exportV2=true`): a `.metadata.yml` YAML document, `metadata:` followed by a list of
//!   `{dataId, group, type, desc, appName}` mappings. An archive carrying it is read as v2 and the
//!   list decides which entries are configs.
//!
//! # Reading hostile input
//! Uploaded archives are untrusted. Entries are decompressed through a hard cap (the default
//! content limit per entry, [`MAX_TOTAL_BYTES`] for the whole archive) whatever sizes the headers
//! claim, the entry count is bounded, and every failure becomes an [`ImportFailure`] rather
//! than a panic. The YAML reader understands only the shape Nacos writes (a top-level
//! `metadata:` list of flat mappings of scalars) and rejects anything else as bad metadata.

//!
//! # Layout
//! - this file: the constants and the values an import produces and reports;
//! - [`export`]: writing an archive (entries, metadata, zip timestamps);
//! - [`read`]: reading an uploaded archive within limits, both metadata flavours;
//! - [`import`]: publishing what was read under a conflict policy.
//!
//! The RestResult JSON of a report is the HTTP edge's (`http::import_report`).

mod export;
mod import;
mod read;
#[cfg(test)]
mod tests;

use nacos_core::validate::DEFAULT_MAX_CONTENT;

pub use export::export_zip;
pub use import::{Import, import_items};
pub use read::parse_import;

/// Name of the v1 metadata entry (appName only).
pub const META_V1: &str = ".meta.yml";
/// Name of the v2 metadata entry (type, desc, appName).
pub const META_V2: &str = ".metadata.yml";
/// Largest decompressed entry accepted (the default `maxContent`).
pub const MAX_ENTRY_BYTES: u64 = DEFAULT_MAX_CONTENT as u64;
/// Largest decompressed archive accepted, all entries together.
pub const MAX_TOTAL_BYTES: u64 = 100 * 1024 * 1024;
/// Most entries an uploaded archive may have.
pub const MAX_ENTRIES: usize = 100_000;

/// Nacos's import result codes (RestResult `code`).
pub const CODE_NAMESPACE_MISSING: i32 = 100_001;
pub const CODE_BAD_METADATA: i32 = 100_002;
pub const CODE_PARSE_FAILED: i32 = 100_004;
pub const CODE_EMPTY: i32 = 100_005;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportPolicy {
    /// Stop at the first config that already exists.
    Abort,
    /// Leave existing configs alone and carry on.
    Skip,
    /// Publish over existing configs.
    Overwrite,
}

/// One entry read from an archive: a config to publish or, when [`ImportItem::unrecognized`]
/// is set, an entry that is not a config and is only reported back (`unrecognizedData`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImportItem {
    pub group: String,
    pub data_id: String,
    pub content: String,
    /// The type the archive names (v2 metadata); `None` lets the import pick one.
    pub config_type: Option<String>,
    pub app_name: Option<String>,
    pub desc: Option<String>,
    /// Set for an entry that cannot be imported: the entry name and, when useful, why. The
    /// other fields are then empty and the item is never published.
    pub unrecognized: Option<String>,
}

impl ImportItem {
    pub(super) fn unrecognized(what: impl Into<String>) -> Self {
        ImportItem {
            unrecognized: Some(what.into()),
            ..ImportItem::default()
        }
    }
}

/// An archive that could not be used at all: Nacos's RestResult error codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportFailure {
    pub code: i32,
    pub message: String,
}

impl ImportFailure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        ImportFailure {
            code,
            message: message.into(),
        }
    }

    pub(super) fn parse_failed(message: impl Into<String>) -> Self {
        Self::new(CODE_PARSE_FAILED, message)
    }

    pub(super) fn bad_metadata(message: impl Into<String>) -> Self {
        Self::new(CODE_BAD_METADATA, message)
    }

    pub(super) fn empty(message: impl Into<String>) -> Self {
        Self::new(CODE_EMPTY, message)
    }
}

/// A config named in an import report (`failData`, `skipData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedKey {
    pub data_id: String,
    pub group: String,
}

impl ImportedKey {
    pub(super) fn of(item: &ImportItem) -> Self {
        ImportedKey {
            data_id: item.data_id.clone(),
            group: item.group.clone(),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub succ_count: usize,
    pub skip_count: usize,
    /// Configs not written: the one that stopped an `ABORT` import, or one the store refused.
    pub fail_data: Vec<ImportedKey>,
    /// Configs left alone: existing ones under `SKIP`, the rest of the archive after an abort.
    pub skip_data: Vec<ImportedKey>,
    /// Entries that were not configs (`itemName` in the report).
    pub unrecognized: Vec<String>,
    /// Set when nothing was attempted (the target namespace does not exist).
    pub failure: Option<ImportFailure>,
}
