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

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use nacos_core::rules::is_config_type;
use nacos_core::validate::{self, DEFAULT_MAX_CONTENT};
use nacos_core::{ConfigItem, ConfigKey, ConfigPublish, DEFAULT_CONFIG_TYPE, Operator, RepoError};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use crate::App;
use crate::http::{ApiError, rest_result};

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
    fn unrecognized(what: impl Into<String>) -> Self {
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

    fn parse_failed(message: impl Into<String>) -> Self {
        Self::new(CODE_PARSE_FAILED, message)
    }

    fn bad_metadata(message: impl Into<String>) -> Self {
        Self::new(CODE_BAD_METADATA, message)
    }

    fn empty(message: impl Into<String>) -> Self {
        Self::new(CODE_EMPTY, message)
    }

    /// RestResult with HTTP 200, the failure code, and `data: {succCount: 0}` as Nacos sends.
    pub fn into_rest_result(self) -> Response {
        axum::Json(serde_json::json!({
            "code": self.code,
            "message": self.message,
            "data": { "succCount": 0 },
        }))
        .into_response()
    }
}

/// A config named in an import report (`failData`, `skipData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedKey {
    pub data_id: String,
    pub group: String,
}

impl ImportedKey {
    fn of(item: &ImportItem) -> Self {
        ImportedKey {
            data_id: item.data_id.clone(),
            group: item.group.clone(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "dataId": self.data_id, "group": self.group })
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

impl ImportReport {
    /// The JSON `data` of the report: `{succCount, skipCount, failData?, skipData?,
    /// unrecognizedCount?, unrecognizedData?}`; empty lists are left out.
    pub fn data(&self) -> serde_json::Value {
        let mut data = serde_json::Map::new();
        data.insert("succCount".into(), self.succ_count.into());
        data.insert("skipCount".into(), self.skip_count.into());
        let keys = |list: &[ImportedKey]| -> serde_json::Value {
            list.iter().map(ImportedKey::to_json).collect()
        };
        if !self.fail_data.is_empty() {
            data.insert("failData".into(), keys(&self.fail_data));
        }
        if !self.skip_data.is_empty() {
            data.insert("skipData".into(), keys(&self.skip_data));
        }
        if !self.unrecognized.is_empty() {
            data.insert("unrecognizedCount".into(), self.unrecognized.len().into());
            data.insert(
                "unrecognizedData".into(),
                self.unrecognized
                    .iter()
                    .map(|name| serde_json::json!({ "itemName": name }))
                    .collect(),
            );
        }
        serde_json::Value::Object(data)
    }

    pub fn into_rest_result(self) -> Response {
        match self.failure {
            Some(failure) => failure.into_rest_result(),
            None => rest_result(self.data(), Some("import finished")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Export

/// Build an export archive: one `group/dataId` entry per config plus the metadata entry of the
/// chosen flavour (`v2`: `.metadata.yml`, always; v1: `.meta.yml` when any config has an appName).
pub fn export_zip(items: &[ConfigItem], v2: bool) -> Result<Vec<u8>, String> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let mut meta_v1 = String::new();
    let mut meta_v2 = String::new();
    for item in items {
        let name = entry_name(&item.key.group, &item.key.data_id);
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(zip_time(item.modified_ms));
        writer
            .start_file(name.as_str(), options)
            .map_err(|e| format!("cannot add '{name}' to the archive: {e}"))?;
        writer
            .write_all(item.content.as_bytes())
            .map_err(|e| format!("cannot write '{name}' to the archive: {e}"))?;
        if v2 {
            push_metadata_entry(&mut meta_v2, item);
        } else if !item.app_name.trim().is_empty() {
            let app = item.app_name.replace(['\r', '\n'], " ");
            meta_v1.push_str(&app_meta_key(&item.key.group, &item.key.data_id));
            meta_v1.push('=');
            meta_v1.push_str(&app);
            meta_v1.push_str("\r\n");
        }
    }
    let (meta_name, meta) = if v2 {
        let doc = if meta_v2.is_empty() {
            "metadata: []\n".to_string()
        } else {
            format!("metadata:\n{meta_v2}")
        };
        (META_V2, doc)
    } else {
        (META_V1, meta_v1)
    };
    if v2 || !meta.is_empty() {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(zip_time(nacos_core::now_millis()));
        writer
            .start_file(meta_name, options)
            .map_err(|e| format!("cannot add '{meta_name}' to the archive: {e}"))?;
        writer
            .write_all(meta.as_bytes())
            .map_err(|e| format!("cannot write '{meta_name}' to the archive: {e}"))?;
    }
    writer
        .finish()
        .map(Cursor::into_inner)
        .map_err(|e| format!("cannot finish the archive: {e}"))
}

fn entry_name(group: &str, data_id: &str) -> String {
    format!("{group}/{data_id}")
}

/// `.meta.yml` key: `group.<dataId, last dot replaced by ~>.app`.
fn app_meta_key(group: &str, data_id: &str) -> String {
    let data_id = match data_id.rfind('.') {
        Some(dot) => format!("{}~{}", &data_id[..dot], &data_id[dot + 1..]),
        None => data_id.to_string(),
    };
    format!("{group}.{data_id}.app")
}

fn push_metadata_entry(out: &mut String, item: &ConfigItem) {
    let config_type = if item.config_type.trim().is_empty() {
        DEFAULT_CONFIG_TYPE
    } else {
        item.config_type.as_str()
    };
    let fields = [
        ("dataId", item.key.data_id.as_str()),
        ("group", item.key.group.as_str()),
        ("type", config_type),
        ("desc", item.desc.as_str()),
        ("appName", item.app_name.as_str()),
    ];
    for (index, (key, value)) in fields.iter().enumerate() {
        out.push_str(if index == 0 { "- " } else { "  " });
        out.push_str(key);
        out.push_str(": ");
        out.push_str(&yaml_scalar(value));
        out.push('\n');
    }
}

/// A YAML scalar that reads back as exactly `value` (a string): plain when that is
/// unambiguous, single-quoted when printable, double-quoted with escapes otherwise.
fn yaml_scalar(value: &str) -> String {
    if is_plain_safe(value) {
        return value.to_string();
    }
    if !value.chars().any(needs_escape) {
        return format!("'{}'", value.replace('\'', "''"));
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let code = u32::from(c);
                if code <= 0xff {
                    out.push_str(&format!("\\x{code:02x}"));
                } else {
                    out.push_str(&format!("\\u{code:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Identifier-like text that no YAML 1.1 or 1.2 reader takes for anything but a string.
fn is_plain_safe(value: &str) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '_') {
        return false;
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    !matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null"
    )
}

/// Zip timestamps are calendar fields without a zone; this writes UTC.
fn zip_time(epoch_ms: i64) -> DateTime {
    let secs = epoch_ms.div_euclid(1000);
    let (year, month, day) = civil_date(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400);
    let fields = (
        u16::try_from(year),
        u8::try_from(month),
        u8::try_from(day),
        u8::try_from(of_day / 3600),
        u8::try_from(of_day % 3600 / 60),
        u8::try_from(of_day % 60),
    );
    match fields {
        (Ok(y), Ok(mo), Ok(d), Ok(h), Ok(mi), Ok(s)) => {
            DateTime::from_date_and_time(y, mo, d, h, mi, s).unwrap_or_default()
        }
        _ => DateTime::default(),
    }
}

/// Proleptic Gregorian (year, month, day) of a count of days since 1970-01-01.
fn civil_date(days: i64) -> (i64, i64, i64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each 400-year era.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

// ---------------------------------------------------------------------------------------------
// Multipart

/// The bytes of the part named `field` in a `multipart/form-data` body.
pub async fn multipart_file(content_type: &str, body: Bytes, field: &str) -> Result<Bytes, String> {
    if content_type.trim().is_empty() {
        return Err(format!(
            "the request has no Content-Type; send the archive as multipart/form-data with a '{field}' part"
        ));
    }
    let is_form_data = content_type
        .split(';')
        .next()
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("multipart/form-data"));
    if !is_form_data {
        return Err(format!(
            "the request is '{content_type}', not multipart/form-data; send the archive as a '{field}' part"
        ));
    }
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| format!("the multipart Content-Type has no usable boundary: {e}"))?;
    let stream = axum::body::Body::from(body).into_data_stream();
    let mut multipart = multer::Multipart::new(stream, boundary);
    loop {
        let part = multipart
            .next_field()
            .await
            .map_err(|e| format!("the multipart body is malformed: {e}"))?;
        let Some(part) = part else {
            return Err(format!(
                "the multipart body has no '{field}' part (the archive to import)"
            ));
        };
        if part.name() == Some(field) {
            return part
                .bytes()
                .await
                .map_err(|e| format!("cannot read the '{field}' part of the multipart body: {e}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Import: reading the archive

/// Read an uploaded archive of either flavour. Entries that are not configs come last, as
/// items with [`ImportItem::unrecognized`] set. A later entry for the same group and dataId
/// replaces an earlier one.
pub fn parse_import(zip: &[u8]) -> Result<Vec<ImportItem>, ImportFailure> {
    parse_import_within(zip, LIMITS)
}

fn parse_import_within(zip: &[u8], limits: Limits) -> Result<Vec<ImportItem>, ImportFailure> {
    if zip.is_empty() {
        return Err(ImportFailure::empty("the uploaded file is empty"));
    }
    let archive = read_archive(zip, limits)?;
    let (configs, unrecognized) = match &archive.meta_v2 {
        Some(meta) => configs_v2(archive.files, meta)?,
        None => configs_v1(archive.files, archive.meta_v1.as_deref())?,
    };
    let mut items: Vec<ImportItem> = Vec::with_capacity(configs.len() + unrecognized.len());
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for item in configs {
        match seen.get(&(item.group.clone(), item.data_id.clone())) {
            Some(&index) => items[index] = item,
            None => {
                seen.insert((item.group.clone(), item.data_id.clone()), items.len());
                items.push(item);
            }
        }
    }
    if items.is_empty() {
        let detail = if unrecognized.is_empty() {
            String::new()
        } else {
            format!(
                " ({} entries were not recognised: {})",
                unrecognized.len(),
                preview(&unrecognized)
            )
        };
        return Err(ImportFailure::empty(format!(
            "the archive holds no configs{detail}"
        )));
    }
    items.extend(unrecognized.into_iter().map(ImportItem::unrecognized));
    Ok(items)
}

fn preview(names: &[String]) -> String {
    let mut shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    if names.len() > shown.len() {
        shown.push("...");
    }
    shown.join(", ")
}

/// The decompressed archive: config entries in order, and the metadata entries.
#[derive(Debug, Default)]
struct RawArchive {
    files: Vec<(String, String)>,
    meta_v1: Option<String>,
    meta_v2: Option<String>,
}

/// Caps on what reading an archive may cost.
#[derive(Debug, Clone, Copy)]
struct Limits {
    entry_bytes: u64,
    total_bytes: u64,
    entries: usize,
}

const LIMITS: Limits = Limits {
    entry_bytes: MAX_ENTRY_BYTES,
    total_bytes: MAX_TOTAL_BYTES,
    entries: MAX_ENTRIES,
};

fn read_archive(bytes: &[u8], limits: Limits) -> Result<RawArchive, ImportFailure> {
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ImportFailure::parse_failed(format!("the file is not a zip archive: {e}")))?;
    if archive.len() > limits.entries {
        return Err(ImportFailure::parse_failed(format!(
            "the archive has {} entries; at most {} are accepted",
            archive.len(),
            limits.entries
        )));
    }
    let mut raw = RawArchive::default();
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| {
            ImportFailure::parse_failed(format!("cannot open archive entry #{index}: {e}"))
        })?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        if entry.is_dir() {
            continue;
        }
        // Never trust the sizes in the headers: read through a cap one byte past the limit.
        let remaining = limits.total_bytes.saturating_sub(total);
        let budget = limits.entry_bytes.min(remaining);
        let mut data = Vec::new();
        (&mut entry)
            .take(budget + 1)
            .read_to_end(&mut data)
            .map_err(|e| {
                ImportFailure::parse_failed(format!("cannot decompress entry '{name}': {e}"))
            })?;
        let read = u64::try_from(data.len()).unwrap_or(u64::MAX);
        if read > budget {
            return Err(ImportFailure::parse_failed(
                if remaining < limits.entry_bytes {
                    format!(
                        "the archive decompresses to more than {} bytes ({} MiB); import it in smaller parts",
                        limits.total_bytes,
                        limits.total_bytes / (1024 * 1024)
                    )
                } else {
                    format!(
                        "entry '{name}' decompresses to more than {} bytes, the content limit",
                        limits.entry_bytes
                    )
                },
            ));
        }
        total += read;
        let text = match String::from_utf8(data) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        match name.as_str() {
            META_V1 => raw.meta_v1 = Some(text),
            META_V2 => raw.meta_v2 = Some(text),
            _ => raw.files.push((name, text)),
        }
    }
    Ok(raw)
}

/// `group/dataId` of an entry name, when it has exactly that shape.
fn split_entry_name(name: &str) -> Option<(&str, &str)> {
    let (group, data_id) = name.split_once('/')?;
    if group.is_empty() || data_id.is_empty() || data_id.contains('/') {
        return None;
    }
    Some((group, data_id))
}

/// Why a group/dataId pair cannot be imported, if it cannot.
fn invalid_key(group: &str, data_id: &str) -> Option<String> {
    validate::group(group)
        .and_then(|()| validate::data_id(data_id))
        .err()
        .map(|e| e.message)
}

type Parsed = (Vec<ImportItem>, Vec<String>);

fn configs_v1(files: Vec<(String, String)>, meta: Option<&str>) -> Result<Parsed, ImportFailure> {
    let apps = match meta {
        Some(text) => parse_meta_v1(text)?,
        None => HashMap::new(),
    };
    let mut configs = Vec::new();
    let mut unrecognized = Vec::new();
    for (name, content) in files {
        let Some((group, data_id)) = split_entry_name(&name) else {
            unrecognized.push(name);
            continue;
        };
        if let Some(why) = invalid_key(group, data_id) {
            unrecognized.push(format!("{name} ({why})"));
            continue;
        }
        let app_name = apps
            .get(&app_meta_key(group, data_id))
            .filter(|a| !a.is_empty())
            .cloned();
        configs.push(ImportItem {
            group: group.to_string(),
            data_id: data_id.to_string(),
            content,
            config_type: None,
            app_name,
            desc: None,
            unrecognized: None,
        });
    }
    Ok((configs, unrecognized))
}

/// `.meta.yml`: `key=value` lines (CRLF in Nacos's files; LF accepted); blank lines skipped.
fn parse_meta_v1(text: &str) -> Result<HashMap<String, String>, ImportFailure> {
    let mut apps = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                apps.insert(key.trim().to_string(), value.trim().to_string());
            }
            _ => {
                return Err(ImportFailure::bad_metadata(format!(
                    "{META_V1} line {} is not 'group.dataId.app=appName': '{}'",
                    number + 1,
                    line.chars().take(80).collect::<String>()
                )));
            }
        }
    }
    Ok(apps)
}

fn configs_v2(files: Vec<(String, String)>, meta: &str) -> Result<Parsed, ImportFailure> {
    let entries = parse_metadata_v2(meta)
        .map_err(|e| ImportFailure::bad_metadata(format!("cannot read {META_V2}: {e}")))?;
    for (index, entry) in entries.iter().enumerate() {
        let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
        if blank(&entry.data_id) || blank(&entry.group) {
            return Err(ImportFailure::bad_metadata(format!(
                "{META_V2}: metadata entry {} lacks a dataId or a group",
                index + 1
            )));
        }
    }
    let listed: std::collections::HashSet<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e.group.as_deref().unwrap_or(""),
                e.data_id.as_deref().unwrap_or(""),
            )
        })
        .collect();
    let mut unrecognized = Vec::new();
    let mut contents: HashMap<(String, String), String> = HashMap::new();
    for (name, content) in files {
        let Some((group, data_id)) = split_entry_name(&name) else {
            unrecognized.push(name);
            continue;
        };
        if !listed.contains(&(group, data_id)) {
            unrecognized.push(format!("{name} (not listed in {META_V2})"));
            continue;
        }
        contents.insert((group.to_string(), data_id.to_string()), content);
    }
    let mut configs = Vec::new();
    let mut taken: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    for entry in entries {
        let group = entry.group.unwrap_or_default();
        let data_id = entry.data_id.unwrap_or_default();
        let name = entry_name(&group, &data_id);
        if let Some(why) = invalid_key(&group, &data_id) {
            unrecognized.push(format!("{name} ({why})"));
            continue;
        }
        let pair = (group.clone(), data_id.clone());
        let Some(content) = contents.remove(&pair) else {
            // A second listing of the same config finds its content already taken.
            if !taken.contains(&pair) {
                unrecognized.push(format!(
                    "{name} (listed in {META_V2} but not in the archive)"
                ));
            }
            continue;
        };
        taken.insert(pair);
        configs.push(ImportItem {
            group,
            data_id,
            content,
            config_type: entry.config_type.filter(|t| !t.trim().is_empty()),
            app_name: entry.app_name.filter(|a| !a.is_empty()),
            desc: entry.desc.filter(|d| !d.is_empty()),
            unrecognized: None,
        });
    }
    Ok((configs, unrecognized))
}

// ---------------------------------------------------------------------------------------------
// Import: the `.metadata.yml` reader

/// One mapping of the `metadata:` list.
#[derive(Debug, Clone, Default, PartialEq)]
struct MetaEntry {
    data_id: Option<String>,
    group: Option<String>,
    config_type: Option<String>,
    desc: Option<String>,
    app_name: Option<String>,
}

impl MetaEntry {
    fn slot(&mut self, key: &str) -> Option<&mut Option<String>> {
        match key {
            "dataId" => Some(&mut self.data_id),
            "group" => Some(&mut self.group),
            "type" => Some(&mut self.config_type),
            "desc" => Some(&mut self.desc),
            "appName" => Some(&mut self.app_name),
            _ => None,
        }
    }
}

/// A source line: 1-based number, indentation (spaces), and the text after the indentation.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    number: usize,
    indent: usize,
    text: &'a str,
    raw: &'a str,
}

impl Line<'_> {
    fn is_blank(&self) -> bool {
        self.text.trim().is_empty()
    }

    fn is_comment(&self) -> bool {
        self.text.starts_with('#')
    }

    fn is_item(&self) -> bool {
        self.text == "-" || self.text.starts_with("- ")
    }
}

fn split_lines(text: &str) -> Result<Vec<Line<'_>>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let text = raw.trim_start_matches(' ');
        let indent = raw.len() - text.len();
        if text.starts_with('\t') && !text.trim().is_empty() {
            return Err(format!(
                "line {}: tabs cannot indent YAML; use spaces",
                index + 1
            ));
        }
        lines.push(Line {
            number: index + 1,
            indent,
            text: text.trim_end(),
            raw,
        });
    }
    Ok(lines)
}

/// Read the `metadata:` list of a `.metadata.yml` document.
fn parse_metadata_v2(text: &str) -> Result<Vec<MetaEntry>, String> {
    let lines = split_lines(text)?;
    let mut at = 0;
    let mut found: Option<Vec<MetaEntry>> = None;
    while at < lines.len() {
        let line = lines[at];
        if line.is_blank()
            || line.is_comment()
            || line.text == "---"
            || line.text == "..."
            || line.text.starts_with('%')
        {
            at += 1;
            continue;
        }
        if line.indent != 0 {
            return Err(format!("line {}: unexpected indentation", line.number));
        }
        let (key, rest) = split_key(line.text)
            .ok_or_else(|| format!("line {}: expected 'metadata:'", line.number))?;
        at += 1;
        if key != "metadata" {
            // Some other top-level key: skip its block.
            while at < lines.len()
                && (lines[at].is_blank() || lines[at].indent > 0 || lines[at].is_item())
            {
                at += 1;
            }
            continue;
        }
        let rest = strip_tag(strip_comment(rest).trim());
        match rest {
            "[]" => found = Some(Vec::new()),
            "" | "~" | "null" => {
                let entries = parse_sequence(&lines, &mut at)?;
                if entries.is_empty() {
                    return Err(format!(
                        "line {}: the 'metadata' list is empty",
                        line.number
                    ));
                }
                found = Some(entries);
            }
            _ => {
                return Err(format!(
                    "line {}: 'metadata' must be followed by a list of entries",
                    line.number
                ));
            }
        }
    }
    found.ok_or_else(|| "there is no 'metadata:' list".to_string())
}

/// The block list starting at `at`: `-` items, each a flat mapping.
fn parse_sequence(lines: &[Line<'_>], at: &mut usize) -> Result<Vec<MetaEntry>, String> {
    let mut entries = Vec::new();
    let mut item_indent: Option<usize> = None;
    while *at < lines.len() {
        let line = lines[*at];
        if line.is_blank() || line.is_comment() {
            *at += 1;
            continue;
        }
        if !line.is_item() {
            if line.indent == 0 {
                break; // the next top-level key
            }
            return Err(format!("line {}: expected a '- ' list entry", line.number));
        }
        match item_indent {
            None => item_indent = Some(line.indent),
            Some(indent) if indent == line.indent => {}
            Some(indent) if line.indent < indent => break,
            Some(_) => {
                return Err(format!(
                    "line {}: list entry indented differently from the first",
                    line.number
                ));
            }
        }
        *at += 1;
        let after_dash = &line.text[1..];
        let content = after_dash.trim_start_matches(' ');
        let mut entry = MetaEntry::default();
        let key_col = if content.is_empty() || content.starts_with('#') {
            // `-` alone (or with a comment): the mapping starts on the next line, if anywhere.
            let next = lines[*at..]
                .iter()
                .find(|l| !l.is_blank() && !l.is_comment());
            match next {
                Some(next) if next.indent > line.indent && !next.is_item() => next.indent,
                _ => {
                    entries.push(entry);
                    continue;
                }
            }
        } else {
            let key_col = line.indent + 1 + (after_dash.len() - content.len());
            parse_pair(lines, at, key_col, content, line.number, &mut entry)?;
            key_col
        };
        // Further keys of this mapping, all at `key_col`.
        while *at < lines.len() {
            let next = lines[*at];
            if next.is_blank() || next.is_comment() {
                *at += 1;
                continue;
            }
            if next.indent < key_col {
                break;
            }
            if next.indent > key_col {
                return Err(format!("line {}: unexpected indentation", next.number));
            }
            *at += 1;
            parse_pair(lines, at, key_col, next.text, next.number, &mut entry)?;
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// One `key: value` of an entry whose key starts at column `key_col`; `*at` is already past
/// the key's line and moves past the value's continuation lines.
fn parse_pair(
    lines: &[Line<'_>],
    at: &mut usize,
    key_col: usize,
    text: &str,
    number: usize,
    entry: &mut MetaEntry,
) -> Result<(), String> {
    let (key, rest) =
        split_key(text).ok_or_else(|| format!("line {number}: expected 'key: value'"))?;
    let empty_value = strip_comment(rest).trim().is_empty();
    let start = *at;
    while *at < lines.len() {
        let line = lines[*at];
        let continues = line.is_blank()
            || line.indent > key_col
            || (empty_value && line.indent == key_col && line.is_item());
        if !continues {
            break;
        }
        *at += 1;
    }
    let continuation = &lines[start..*at];
    let Some(slot) = entry.slot(&key) else {
        return Ok(()); // a key this server does not use
    };
    *slot = parse_scalar(rest, continuation, key_col)
        .map_err(|e| format!("line {number}: value of '{key}': {e}"))?;
    Ok(())
}

/// Split `key: rest` (plain or quoted key); `None` when the text is not a mapping entry.
fn split_key(text: &str) -> Option<(String, &str)> {
    if text.starts_with('\'') || text.starts_with('"') {
        let (key, consumed) = parse_quoted(text).ok()?;
        let rest = text[consumed..].trim_start();
        let rest = rest.strip_prefix(':')?;
        if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            return None;
        }
        return Some((key, rest));
    }
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b':'
            && (index + 1 == bytes.len() || matches!(bytes[index + 1], b' ' | b'\t'))
        {
            let key = text[..index].trim();
            if key.is_empty() || key.starts_with('#') || key.starts_with("- ") {
                return None;
            }
            return Some((key.to_string(), &text[index + 1..]));
        }
        if bytes[index] == b'#' && (index == 0 || matches!(bytes[index - 1], b' ' | b'\t')) {
            return None;
        }
        index += 1;
    }
    None
}

/// Drop a trailing ` # comment` from plain text.
fn strip_comment(text: &str) -> &str {
    if text.starts_with('#') {
        return "";
    }
    let bytes = text.as_bytes();
    for index in 1..bytes.len() {
        if bytes[index] == b'#' && matches!(bytes[index - 1], b' ' | b'\t') {
            return &text[..index];
        }
    }
    text
}

/// Drop a leading `!!str`-style tag.
fn strip_tag(text: &str) -> &str {
    if text.starts_with("!!") {
        match text.split_once([' ', '\t']) {
            Some((_, rest)) => rest.trim_start(),
            None => "",
        }
    } else {
        text
    }
}

/// A scalar value: `first` is the text after `key:`, `continuation` the lines that belong to
/// it. `None` for YAML null.
fn parse_scalar(
    first: &str,
    continuation: &[Line<'_>],
    key_col: usize,
) -> Result<Option<String>, String> {
    let trimmed = first.trim();
    let is_null_tag = trimmed == "!!null" || trimmed.starts_with("!!null ");
    let first = strip_tag(trimmed);
    if is_null_tag {
        return Ok(None);
    }
    if first.starts_with('\'') || first.starts_with('"') {
        let mut text = first.to_string();
        for line in continuation {
            text.push('\n');
            text.push_str(line.raw);
        }
        let (value, consumed) = parse_quoted(&text)?;
        let after = text[consumed..].trim();
        if !(after.is_empty() || after.starts_with('#')) {
            return Err("unexpected text after the closing quote".to_string());
        }
        return Ok(Some(value));
    }
    if first.starts_with('|') || first.starts_with('>') {
        return parse_block(strip_comment(first).trim(), continuation, key_col).map(Some);
    }
    if first.starts_with(['{', '[', '&', '*']) {
        return Err("only plain or quoted text is accepted here".to_string());
    }
    // Plain text, possibly folded over several lines.
    let mut parts = vec![strip_comment(first).trim()];
    for line in continuation {
        if line.is_comment() {
            break;
        }
        if split_key(line.text).is_some() {
            return Err(format!(
                "line {}: a key is indented deeper than the keys before it",
                line.number
            ));
        }
        parts.push(strip_comment(line.text).trim());
    }
    let mut value = String::new();
    let mut pending_breaks = 0;
    for part in parts {
        if part.is_empty() {
            pending_breaks += 1;
            continue;
        }
        if !value.is_empty() {
            if pending_breaks == 0 {
                value.push(' ');
            } else {
                value.push_str(&"\n".repeat(pending_breaks));
            }
        }
        pending_breaks = 0;
        value.push_str(part);
    }
    if value.is_empty() || matches!(value.as_str(), "~" | "null" | "Null" | "NULL") {
        return Ok(None);
    }
    Ok(Some(value))
}

/// Parse a quoted scalar at the start of `text`; returns the value and the bytes consumed.
fn parse_quoted(text: &str) -> Result<(String, usize), String> {
    let mut chars = text.char_indices().peekable();
    let quote = match chars.next() {
        Some((_, q @ ('\'' | '"'))) => q,
        _ => return Err("expected a quote".to_string()),
    };
    let mut out = String::new();
    while let Some((index, c)) = chars.next() {
        match c {
            '\'' if quote == '\'' => {
                if matches!(chars.peek(), Some((_, '\''))) {
                    chars.next();
                    out.push('\'');
                } else {
                    return Ok((out, index + 1));
                }
            }
            '"' if quote == '"' => return Ok((out, index + 1)),
            '\\' if quote == '"' => {
                let Some((_, escape)) = chars.next() else {
                    break;
                };
                match escape {
                    '0' => out.push('\0'),
                    'a' => out.push('\u{07}'),
                    'b' => out.push('\u{08}'),
                    't' | '\t' => out.push('\t'),
                    'n' => out.push('\n'),
                    'v' => out.push('\u{0b}'),
                    'f' => out.push('\u{0c}'),
                    'r' => out.push('\r'),
                    'e' => out.push('\u{1b}'),
                    ' ' => out.push(' '),
                    '"' => out.push('"'),
                    '/' => out.push('/'),
                    '\\' => out.push('\\'),
                    'N' => out.push('\u{85}'),
                    '_' => out.push('\u{a0}'),
                    'L' => out.push('\u{2028}'),
                    'P' => out.push('\u{2029}'),
                    'x' | 'u' | 'U' => {
                        let width = match escape {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut code = 0u32;
                        for _ in 0..width {
                            let digit = chars
                                .next()
                                .and_then(|(_, d)| d.to_digit(16))
                                .ok_or("bad hexadecimal escape")?;
                            code = code * 16 + digit;
                        }
                        out.push(char::from_u32(code).ok_or("escape is not a character")?);
                    }
                    '\n' => {
                        // An escaped line break joins the lines without a space.
                        while matches!(chars.peek(), Some((_, ' ' | '\t'))) {
                            chars.next();
                        }
                    }
                    other => return Err(format!("unknown escape '\\{other}'")),
                }
            }
            '\n' => {
                // Folding: trailing blanks go, one break is a space, each empty line a newline.
                while out.ends_with([' ', '\t']) {
                    out.pop();
                }
                let mut empty_lines = 0;
                loop {
                    match chars.peek() {
                        Some((_, ' ' | '\t')) => {
                            chars.next();
                        }
                        Some((_, '\n')) => {
                            chars.next();
                            empty_lines += 1;
                        }
                        _ => break,
                    }
                }
                if empty_lines == 0 {
                    out.push(' ');
                } else {
                    out.push_str(&"\n".repeat(empty_lines));
                }
            }
            c => out.push(c),
        }
    }
    Err("the quoted text is not closed".to_string())
}

/// A `|` (literal) or `>` (folded) block scalar with optional chomping (`-`, `+`) and
/// indentation indicators.
fn parse_block(header: &str, lines: &[Line<'_>], key_col: usize) -> Result<String, String> {
    let folded = header.starts_with('>');
    let mut chomp = 'c';
    let mut explicit_indent = None;
    for c in header.chars().skip(1) {
        match c {
            '-' | '+' => chomp = c,
            '1'..='9' => explicit_indent = c.to_digit(10).map(|d| key_col + d as usize),
            _ => return Err(format!("bad block scalar header '{header}'")),
        }
    }
    let indent = explicit_indent
        .or_else(|| lines.iter().find(|l| !l.is_blank()).map(|l| l.indent))
        .unwrap_or(key_col + 1);
    let mut body: Vec<&str> = Vec::with_capacity(lines.len());
    for line in lines {
        if line.is_blank() {
            body.push("");
        } else if line.indent < indent {
            return Err(format!(
                "line {}: block text is indented less than its first line",
                line.number
            ));
        } else {
            body.push(line.raw.get(indent..).unwrap_or("").trim_end_matches('\r'));
        }
    }
    let trailing = body.iter().rev().take_while(|l| l.is_empty()).count();
    let content = &body[..body.len() - trailing];
    let mut value = String::new();
    if folded {
        let mut pending_breaks = 0;
        let mut previous: Option<&str> = None;
        for line in content {
            if line.is_empty() {
                pending_breaks += 1;
                continue;
            }
            if let Some(prev) = previous {
                let keep = prev.starts_with([' ', '\t']) || line.starts_with([' ', '\t']);
                if pending_breaks == 0 && !keep {
                    value.push(' ');
                } else {
                    value.push_str(&"\n".repeat(pending_breaks + usize::from(keep)));
                }
            } else {
                value.push_str(&"\n".repeat(pending_breaks));
            }
            pending_breaks = 0;
            value.push_str(line);
            previous = Some(line);
        }
    } else {
        value = content.join("\n");
    }
    match chomp {
        '-' => {}
        '+' => {
            value.push('\n');
            value.push_str(&"\n".repeat(trailing));
        }
        _ => {
            if !value.is_empty() {
                value.push('\n');
            }
        }
    }
    Ok(value)
}

// ---------------------------------------------------------------------------------------------
// Import: publishing

/// The type to store: the archive's when Nacos knows it, else guessed from the dataId's
/// extension, else `text`.
fn import_type(item: &ImportItem) -> String {
    if let Some(named) = item.config_type.as_deref().map(str::trim)
        && !named.is_empty()
    {
        let lower = named.to_ascii_lowercase();
        return if is_config_type(&lower) {
            lower
        } else {
            DEFAULT_CONFIG_TYPE.to_string()
        };
    }
    let extension = item
        .data_id
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "yml" => "yaml".to_string(),
        "htm" => "html".to_string(),
        ext if is_config_type(ext) => ext.to_string(),
        _ => DEFAULT_CONFIG_TYPE.to_string(),
    }
}

/// Publish the configs of an archive into `namespace` under `policy`.
///
/// As in Nacos, an `ABORT` import keeps what it wrote before the conflict, names the
/// conflicting config in `failData` and the configs it did not reach in `skipData` (those are
/// not counted in `skipCount`).
pub async fn import_items(
    app: &App,
    namespace: &str,
    items: Vec<ImportItem>,
    policy: ImportPolicy,
    operator: &Operator,
) -> Result<ImportReport, ApiError> {
    let mut report = ImportReport::default();
    if !crate::namespace::exists(app, namespace).await? {
        report.failure = Some(ImportFailure::new(
            CODE_NAMESPACE_MISSING,
            format!("namespace '{namespace}' does not exist; create it before importing"),
        ));
        return Ok(report);
    }
    let (unrecognized, configs): (Vec<ImportItem>, Vec<ImportItem>) =
        items.into_iter().partition(|i| i.unrecognized.is_some());
    report.unrecognized = unrecognized
        .into_iter()
        .filter_map(|i| i.unrecognized)
        .collect();

    let mut pending = configs.into_iter();
    while let Some(item) = pending.next() {
        let key = ConfigKey::new(namespace, item.group.as_str(), item.data_id.as_str());
        if let Err(e) = validate::content(&item.content, app.settings.max_content) {
            tracing::info!(group = %item.group, data_id = %item.data_id, "import: {e}");
            report.fail_data.push(ImportedKey::of(&item));
            continue;
        }
        if app.config.repo().get(&key).await?.is_some() {
            match policy {
                ImportPolicy::Abort => {
                    report.fail_data.push(ImportedKey::of(&item));
                    report
                        .skip_data
                        .extend(pending.by_ref().map(|rest| ImportedKey::of(&rest)));
                    break;
                }
                ImportPolicy::Skip => {
                    report.skip_count += 1;
                    report.skip_data.push(ImportedKey::of(&item));
                    continue;
                }
                ImportPolicy::Overwrite => {}
            }
        }
        let publish = ConfigPublish {
            key,
            config_type: Some(import_type(&item)),
            app_name: Some(item.app_name.clone().unwrap_or_default()),
            desc: Some(item.desc.clone().unwrap_or_default()),
            // The archive holds content as exported; no data key belongs to it.
            encrypted_data_key: Some(String::new()),
            operator: operator.clone(),
            content: item.content.clone(),
            ..ConfigPublish::default()
        };
        match app.config.publish(publish).await {
            Ok(_) => report.succ_count += 1,
            Err(
                RepoError::InvalidArgument(why)
                | RepoError::AlreadyExists(why)
                | RepoError::PreconditionFailed(why),
            ) => {
                tracing::info!(group = %item.group, data_id = %item.data_id, "import refused: {why}");
                report.fail_data.push(ImportedKey::of(&item));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nacos_core::md5_hex;

    fn config(group: &str, data_id: &str, content: &str) -> ConfigItem {
        ConfigItem {
            id: 1,
            key: ConfigKey::new("", group, data_id),
            content: content.to_string(),
            md5: md5_hex(content),
            config_type: "text".to_string(),
            app_name: String::new(),
            desc: String::new(),
            usage: String::new(),
            effect: String::new(),
            schema: String::new(),
            tags: Vec::new(),
            encrypted_data_key: String::new(),
            src_user: String::new(),
            src_ip: String::new(),
            created_ms: 1_700_000_000_000,
            modified_ms: 1_700_000_000_000,
        }
    }

    fn sample() -> Vec<ConfigItem> {
        let mut a = config("DEFAULT_GROUP", "app.yaml", "server:\n  port: 8080\n");
        a.config_type = "yaml".into();
        a.app_name = "billing".into();
        a.desc = "it's: a \"desc\"\nsecond line # not a comment".into();
        let mut b = config("g-1", "plain", "k=v");
        b.config_type = "properties".into();
        b.desc = "true".into();
        let mut c = config("DEFAULT_GROUP", "no.app.json", "{\"a\":1}");
        c.config_type = "json".into();
        c.app_name = "null".into();
        c.desc = "中文 描述\ttab".into();
        vec![a, b, c]
    }

    /// Build a zip from (name, bytes) pairs.
    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            writer
                .start_file(*name, SimpleFileOptions::default())
                .expect("start entry");
            writer.write_all(data).expect("write entry");
        }
        writer.finish().expect("finish zip").into_inner()
    }

    fn names(zip: &[u8]) -> Vec<String> {
        let archive = ZipArchive::new(Cursor::new(zip)).expect("readable zip");
        archive
            .file_names()
            .map(|n| n.expect("name").to_string())
            .collect()
    }

    fn entry(zip: &[u8], name: &str) -> String {
        let mut archive = ZipArchive::new(Cursor::new(zip)).expect("readable zip");
        let mut file = archive.by_name(name).expect("entry present");
        let mut text = String::new();
        file.read_to_string(&mut text).expect("utf-8 entry");
        text
    }

    #[test]
    fn v1_export_layout_and_round_trip() {
        let items = sample();
        let zip = export_zip(&items, false).expect("export");
        assert_eq!(
            names(&zip),
            vec![
                "DEFAULT_GROUP/app.yaml",
                "g-1/plain",
                "DEFAULT_GROUP/no.app.json",
                META_V1
            ]
        );
        assert_eq!(
            entry(&zip, META_V1),
            "DEFAULT_GROUP.app~yaml.app=billing\r\nDEFAULT_GROUP.no.app~json.app=null\r\n"
        );
        let parsed = parse_import(&zip).expect("parse");
        assert_eq!(parsed.len(), 3);
        for (got, want) in parsed.iter().zip(&items) {
            assert_eq!(got.group, want.key.group);
            assert_eq!(got.data_id, want.key.data_id);
            assert_eq!(got.content, want.content);
            assert_eq!(got.config_type, None);
            assert_eq!(got.unrecognized, None);
            let app = (!want.app_name.is_empty()).then(|| want.app_name.clone());
            assert_eq!(got.app_name, app);
        }
        // v1 carries no type: it comes from the extension.
        assert_eq!(import_type(&parsed[0]), "yaml");
        assert_eq!(import_type(&parsed[1]), "text");
        assert_eq!(import_type(&parsed[2]), "json");
    }

    #[test]
    fn v1_export_without_app_names_has_no_meta() {
        let zip = export_zip(&[config("G", "d", "x")], false).expect("export");
        assert_eq!(names(&zip), vec!["G/d"]);
    }

    #[test]
    fn v2_export_layout_and_round_trip() {
        let items = sample();
        let zip = export_zip(&items, true).expect("export");
        assert_eq!(names(&zip).last().map(String::as_str), Some(META_V2));
        let meta = entry(&zip, META_V2);
        assert!(
            meta.starts_with(
                "metadata:\n- dataId: app.yaml\n  group: DEFAULT_GROUP\n  type: yaml\n"
            ),
            "{meta}"
        );
        assert!(meta.contains("  desc: 'true'\n"), "{meta}");
        assert!(meta.contains("  appName: 'null'\n"), "{meta}");
        let parsed = parse_import(&zip).expect("parse");
        assert_eq!(parsed.len(), 3);
        for (got, want) in parsed.iter().zip(&items) {
            assert_eq!(got.group, want.key.group);
            assert_eq!(got.data_id, want.key.data_id);
            assert_eq!(got.content, want.content);
            assert_eq!(got.config_type.as_deref(), Some(want.config_type.as_str()));
            assert_eq!(got.desc.as_deref().unwrap_or(""), want.desc);
            assert_eq!(got.app_name.as_deref().unwrap_or(""), want.app_name);
        }
    }

    #[test]
    fn empty_v2_export_reads_back_as_empty() {
        let zip = export_zip(&[], true).expect("export");
        assert_eq!(entry(&zip, META_V2), "metadata: []\n");
        let failure = parse_import(&zip).expect_err("nothing to import");
        assert_eq!(failure.code, CODE_EMPTY);
    }

    #[test]
    fn yaml_scalars_read_back() {
        for value in [
            "",
            "plain",
            "true",
            "No",
            "null",
            "~",
            "1.5",
            "0x1F",
            "-x",
            "a: b",
            "#x",
            "a #b",
            "it's",
            "\"q\"",
            " lead",
            "trail ",
            "line\nbreak",
            "\ttab",
            "back\\slash",
            "中文",
            "\u{2028}",
            "bell\u{7}",
            "- item",
            "[list]",
            "{map}",
            "*alias",
            "&anchor",
            "!tag",
            "|",
            ">",
            "%",
            "@",
            "`",
        ] {
            let doc = format!(
                "metadata:\n- dataId: d\n  group: g\n  desc: {}\n",
                yaml_scalar(value)
            );
            let entries =
                parse_metadata_v2(&doc).unwrap_or_else(|e| panic!("{value:?}: {e}\n{doc}"));
            assert_eq!(entries[0].desc.as_deref(), Some(value), "{doc}");
        }
    }

    #[test]
    fn reads_nacos_style_metadata() {
        // SnakeYAML output: keys in alphabetical order, nulls spelled out, long plain text
        // folded onto an indented continuation line, quoted values, comments.
        let doc = "metadata:\r\n\
            - appName: null\r\n\
            \x20 dataId: a.yaml\r\n\
            \x20 desc: a long description that SnakeYAML\r\n\
            \x20   wrapped onto a second line\r\n\
            \x20 group: DEFAULT_GROUP\r\n\
            \x20 type: yaml # trailing comment\r\n\
            # between entries\r\n\
            -   dataId: \"b.json\"\r\n\
            \x20   group: 'G'\r\n\
            \x20   type: !!str json\r\n\
            \x20   desc: \"first \\\r\n\
            \x20     joined\"\r\n\
            \x20   configTags: [x, y]\r\n\
            \x20   appName: |-\r\n\
            \x20     line one\r\n\
            \x20     line two\r\n";
        let entries = parse_metadata_v2(doc).expect("parse");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].app_name, None);
        assert_eq!(entries[0].data_id.as_deref(), Some("a.yaml"));
        assert_eq!(
            entries[0].desc.as_deref(),
            Some("a long description that SnakeYAML wrapped onto a second line")
        );
        assert_eq!(entries[0].config_type.as_deref(), Some("yaml"));
        assert_eq!(entries[1].data_id.as_deref(), Some("b.json"));
        assert_eq!(entries[1].group.as_deref(), Some("G"));
        assert_eq!(entries[1].config_type.as_deref(), Some("json"));
        assert_eq!(entries[1].desc.as_deref(), Some("first joined"));
        assert_eq!(entries[1].app_name.as_deref(), Some("line one\nline two"));

        let indented = "metadata:\n  - dataId: x\n    group: y\n  - dataId: z\n    group: w\n";
        let entries = parse_metadata_v2(indented).expect("indented list");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].group.as_deref(), Some("w"));

        let dash_alone =
            "metadata:\n-\n  dataId: x\n  group: y\n- # note\n  dataId: z\n  group: w\n";
        let entries = parse_metadata_v2(dash_alone).expect("dash on its own line");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].data_id.as_deref(), Some("x"));
        assert_eq!(entries[1].group.as_deref(), Some("w"));

        let folded =
            "metadata:\n- dataId: x\n  group: y\n  desc: >\n    one\n    two\n\n    three\n";
        let entries = parse_metadata_v2(folded).expect("folded");
        assert_eq!(entries[0].desc.as_deref(), Some("one two\nthree\n"));
    }

    #[test]
    fn bad_metadata_is_100002() {
        for meta in [
            "nothing: here\n",
            "metadata: {dataId: x}\n",
            "metadata:\n- dataId: x\n",
            "metadata:\n- group: g\n",
            "metadata:\n- dataId: 'unclosed\n  group: g\n",
            "metadata:\n- just text\n",
            "metadata:\n- dataId: x\n     group: g\n",
            "metadata:\n\t- dataId: x\n",
        ] {
            let zip = zip_of(&[("g/x", b"content"), (META_V2, meta.as_bytes())]);
            let failure = parse_import(&zip).expect_err(meta);
            assert_eq!(
                failure.code, CODE_BAD_METADATA,
                "{meta}: {}",
                failure.message
            );
        }
        let zip = zip_of(&[
            ("g/x", b"content"),
            (META_V1, b"g.x.app=a\r\nno equals sign\r\n"),
        ]);
        assert_eq!(
            parse_import(&zip).expect_err("bad v1 meta").code,
            CODE_BAD_METADATA
        );
    }

    #[test]
    fn unrecognized_entries_are_reported() {
        let zip = zip_of(&[
            ("G/ok.txt", b"ok"),
            ("top-level.txt", b"x"),
            ("a/b/c", b"x"),
            ("G/bad name", b"x"),
            ("dir/", b""),
        ]);
        let items = parse_import(&zip).expect("parse");
        let configs: Vec<_> = items.iter().filter(|i| i.unrecognized.is_none()).collect();
        assert_eq!(configs.len(), 1);
        assert_eq!(configs[0].content, "ok");
        let odd: Vec<&str> = items
            .iter()
            .filter_map(|i| i.unrecognized.as_deref())
            .collect();
        assert_eq!(odd.len(), 3, "{odd:?}");
        assert_eq!(odd[0], "top-level.txt");
        assert_eq!(odd[1], "a/b/c");
        assert!(odd[2].starts_with("G/bad name ("), "{odd:?}");

        let meta = "metadata:\n- dataId: listed\n  group: G\n  type: text\n- dataId: missing\n  group: G\n  type: text\n";
        let zip = zip_of(&[
            ("G/listed", b"x"),
            ("G/extra", b"y"),
            (META_V2, meta.as_bytes()),
        ]);
        let items = parse_import(&zip).expect("parse v2");
        let odd: Vec<&str> = items
            .iter()
            .filter_map(|i| i.unrecognized.as_deref())
            .collect();
        assert_eq!(odd.len(), 2, "{odd:?}");
        assert!(odd[0].starts_with("G/extra"));
        assert!(odd[1].starts_with("G/missing"));
    }

    #[test]
    fn non_zip_is_100004_and_empty_is_100005() {
        let failure = parse_import(b"this is not a zip archive at all").expect_err("not a zip");
        assert_eq!(failure.code, CODE_PARSE_FAILED);
        assert_eq!(parse_import(b"").expect_err("empty").code, CODE_EMPTY);
        let empty = zip_of(&[]);
        assert_eq!(
            parse_import(&empty).expect_err("empty zip").code,
            CODE_EMPTY
        );
        let junk_only = zip_of(&[("readme", b"hello")]);
        let failure = parse_import(&junk_only).expect_err("no configs");
        assert_eq!(failure.code, CODE_EMPTY);
        assert!(failure.message.contains("readme"), "{}", failure.message);
        // A truncated archive is a parse failure, not a panic.
        let good = export_zip(&sample(), true).expect("export");
        for cut in [10, good.len() / 2, good.len() - 5] {
            let failure = parse_import(&good[..cut]).expect_err("truncated");
            assert_eq!(failure.code, CODE_PARSE_FAILED);
        }
    }

    #[test]
    fn oversized_entries_are_refused() {
        // Highly compressible: 10 MiB + 1 zero bytes deflate to a few KiB.
        let big = vec![0u8; usize::try_from(MAX_ENTRY_BYTES).expect("fits") + 1];
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        writer.start_file("G/bomb", options).expect("start");
        writer.write_all(&big).expect("write");
        let zip = writer.finish().expect("finish").into_inner();
        assert!(zip.len() < 200 * 1024, "compressed to {} bytes", zip.len());
        let failure = parse_import(&zip).expect_err("oversized entry");
        assert_eq!(failure.code, CODE_PARSE_FAILED);
        assert!(failure.message.contains("G/bomb"), "{}", failure.message);

        // Entries within the per-entry cap that add up past the archive cap (scaled down).
        let limits = Limits {
            entry_bytes: 100,
            total_bytes: 250,
            entries: 10,
        };
        let fits = zip_of(&[("G/a", &[b'a'; 100]), ("G/b", &[b'b'; 100])]);
        assert_eq!(parse_import_within(&fits, limits).expect("fits").len(), 2);
        let too_much = zip_of(&[
            ("G/a", &[b'a'; 100]),
            ("G/b", &[b'b'; 100]),
            ("G/c", &[b'c'; 100]),
        ]);
        let failure = parse_import_within(&too_much, limits).expect_err("archive too large");
        assert_eq!(failure.code, CODE_PARSE_FAILED);
        assert!(failure.message.contains("250 bytes"), "{}", failure.message);
        let one_big = zip_of(&[("G/a", &[b'a'; 101])]);
        let failure = parse_import_within(&one_big, limits).expect_err("entry too large");
        assert!(failure.message.contains("'G/a'"), "{}", failure.message);
        let names: Vec<String> = (0..11).map(|n| format!("G/d{n}")).collect();
        let many: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        let failure = parse_import_within(&zip_of(&many), limits).expect_err("too many entries");
        assert!(
            failure.message.contains("11 entries"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn corrupt_archives_never_panic() {
        let zip = export_zip(&sample(), true).expect("export");
        let mut corrupt = zip.clone();
        // Damage headers and data a little more each round: a clean failure or a parse, never
        // a panic.
        for index in (0..corrupt.len()).step_by(3) {
            corrupt[index] ^= 0x5a;
            let _ = parse_import(&corrupt);
        }
    }

    #[test]
    fn import_report_json() {
        let report = ImportReport {
            succ_count: 1,
            skip_count: 0,
            fail_data: vec![ImportedKey {
                data_id: "d".into(),
                group: "g".into(),
            }],
            skip_data: Vec::new(),
            unrecognized: vec!["x".into()],
            failure: None,
        };
        assert_eq!(
            report.data(),
            serde_json::json!({
                "succCount": 1,
                "skipCount": 0,
                "failData": [{"dataId": "d", "group": "g"}],
                "unrecognizedCount": 1,
                "unrecognizedData": [{"itemName": "x"}],
            })
        );
    }

    #[test]
    fn zip_times() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(19_723), (2024, 1, 1));
        assert_eq!(civil_date(19_782), (2024, 2, 29));
        let t = zip_time(1_709_210_096_000); // 2024-02-29T12:34:56Z
        assert_eq!((t.year(), t.month(), t.day()), (2024, 2, 29));
        assert_eq!((t.hour(), t.minute(), t.second()), (12, 34, 56));
        assert_eq!(zip_time(0), DateTime::default());
    }

    #[tokio::test]
    async fn multipart_extraction() {
        let body = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"policy\"\r\n\r\nSKIP\r\n\
              --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.zip\"\r\n\
              Content-Type: application/zip\r\n\r\nPK\x03\x04data\r\n--XyZ--\r\n",
        );
        let file = multipart_file("multipart/form-data; boundary=XyZ", body.clone(), "file")
            .await
            .expect("file part");
        assert_eq!(&file[..], b"PK\x03\x04data");
        let missing = multipart_file("multipart/form-data; boundary=XyZ", body.clone(), "other")
            .await
            .expect_err("no such part");
        assert!(missing.contains("'other'"), "{missing}");
        let wrong = multipart_file("application/zip", body.clone(), "file")
            .await
            .expect_err("not multipart");
        assert!(wrong.contains("not multipart/form-data"), "{wrong}");
        let none = multipart_file("", body, "file").await.expect_err("no type");
        assert!(none.contains("no Content-Type"), "{none}");
        let broken = multipart_file(
            "multipart/form-data; boundary=XyZ",
            Bytes::from_static(
                b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nunterminated",
            ),
            "file",
        )
        .await
        .expect_err("truncated body");
        assert!(broken.contains("multipart"), "{broken}");
    }

    async fn open_app(dir: &std::path::Path) -> crate::AppState {
        App::open(crate::Settings::standalone(dir))
            .await
            .expect("app opens")
    }

    fn import_item(group: &str, data_id: &str, content: &str) -> ImportItem {
        ImportItem {
            group: group.into(),
            data_id: data_id.into(),
            content: content.into(),
            ..ImportItem::default()
        }
    }

    #[tokio::test]
    async fn import_policies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let app = open_app(dir.path()).await;
        let op = Operator {
            user: "tester".into(),
            ip: "127.0.0.1".into(),
        };
        let first = vec![
            import_item("G", "a.yaml", "a: 1"),
            ImportItem::unrecognized("junk"),
        ];
        let report = import_items(&app, "", first, ImportPolicy::Abort, &op)
            .await
            .expect("import");
        assert_eq!(report.succ_count, 1);
        assert_eq!(report.unrecognized, vec!["junk".to_string()]);
        let stored = app
            .config
            .repo()
            .get(&ConfigKey::new("", "G", "a.yaml"))
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(stored.config_type, "yaml");
        assert_eq!(stored.content, "a: 1");

        let batch = || {
            vec![
                import_item("G", "new1", "n1"),
                import_item("G", "a.yaml", "a: 2"),
                import_item("G", "new2", "n2"),
            ]
        };
        let abort = import_items(&app, "", batch(), ImportPolicy::Abort, &op)
            .await
            .expect("abort import");
        assert_eq!(abort.succ_count, 1);
        assert_eq!(abort.skip_count, 0);
        assert_eq!(abort.fail_data.len(), 1);
        assert_eq!(abort.fail_data[0].data_id, "a.yaml");
        assert_eq!(abort.skip_data.len(), 1);
        assert_eq!(abort.skip_data[0].data_id, "new2");

        let skip = import_items(&app, "", batch(), ImportPolicy::Skip, &op)
            .await
            .expect("skip import");
        assert_eq!(skip.succ_count, 1, "new2 only");
        assert_eq!(skip.skip_count, 2);
        assert_eq!(skip.skip_data.len(), 2);

        let overwrite = import_items(&app, "", batch(), ImportPolicy::Overwrite, &op)
            .await
            .expect("overwrite import");
        assert_eq!(overwrite.succ_count, 3);
        let stored = app
            .config
            .repo()
            .get(&ConfigKey::new("", "G", "a.yaml"))
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(stored.content, "a: 2");

        let blank = import_items(
            &app,
            "",
            vec![import_item("G", "blank", "  ")],
            ImportPolicy::Overwrite,
            &op,
        )
        .await
        .expect("blank import");
        assert_eq!(blank.succ_count, 0);
        assert_eq!(blank.fail_data.len(), 1);

        let missing_ns = import_items(&app, "no-such-ns", batch(), ImportPolicy::Skip, &op)
            .await
            .expect("report");
        assert_eq!(
            missing_ns.failure.map(|f| f.code),
            Some(CODE_NAMESPACE_MISSING)
        );
    }
}
