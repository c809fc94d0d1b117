//! Reading an uploaded archive of either flavour, within limits, into [`ImportItem`]s.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use nacos_core::validate;
use yaml_rust2::parser::Event;
use yaml_rust2::{Yaml, YamlLoader};
use zip::ZipArchive;

use super::export::{app_meta_key, entry_name};
use super::{
    ImportFailure, ImportItem, MAX_ENTRIES, MAX_ENTRY_BYTES, MAX_TOTAL_BYTES, META_V1, META_V2,
};

/// Read an uploaded archive of either flavour. Entries that are not configs come last, as
/// items with [`ImportItem::unrecognized`] set. A later entry for the same group and dataId
/// replaces an earlier one.
pub fn parse_import(zip: &[u8]) -> Result<Vec<ImportItem>, ImportFailure> {
    parse_import_within(zip, LIMITS)
}

pub(super) fn parse_import_within(
    zip: &[u8],
    limits: Limits,
) -> Result<Vec<ImportItem>, ImportFailure> {
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
pub(super) struct Limits {
    pub(super) entry_bytes: u64,
    pub(super) total_bytes: u64,
    pub(super) entries: usize,
}

pub(super) const LIMITS: Limits = Limits {
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

/// One mapping of the `metadata:` list.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct MetaEntry {
    pub(super) data_id: Option<String>,
    pub(super) group: Option<String>,
    pub(super) config_type: Option<String>,
    pub(super) desc: Option<String>,
    pub(super) app_name: Option<String>,
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

/// Refuse anchors and aliases before building any tree: the metadata Nacos writes has none,
/// and an alias multiplies whatever it names when the document is loaded.
fn refuse_aliases(text: &str) -> Result<(), String> {
    let mut parser = yaml_rust2::parser::Parser::new_from_str(text);
    loop {
        let (event, mark) = parser.next_token().map_err(|e| e.to_string())?;
        let anchored = match &event {
            Event::StreamEnd => return Ok(()),
            Event::Alias(_) => true,
            Event::Scalar(_, _, anchor, _)
            | Event::SequenceStart(anchor, _)
            | Event::MappingStart(anchor, _) => *anchor != 0,
            _ => false,
        };
        if anchored {
            return Err(format!(
                "line {}: anchors and aliases are not accepted",
                mark.line()
            ));
        }
    }
}

/// A scalar as text (`None` for null); plain numbers and booleans keep their spelling as YAML
/// reads it.
fn scalar(value: &Yaml) -> Result<Option<String>, String> {
    match value {
        Yaml::String(s) | Yaml::Real(s) => Ok(Some(s.clone())),
        Yaml::Integer(i) => Ok(Some(i.to_string())),
        Yaml::Boolean(b) => Ok(Some(b.to_string())),
        Yaml::Null => Ok(None),
        _ => Err("not a plain value".to_string()),
    }
}

/// Read the `metadata:` list of a `.metadata.yml` document.
pub(super) fn parse_metadata_v2(text: &str) -> Result<Vec<MetaEntry>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    refuse_aliases(text)?;
    let docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    let Some(doc) = docs.into_iter().next() else {
        return Err("there is no 'metadata:' list".to_string());
    };
    let Yaml::Hash(top) = doc else {
        return Err("expected a mapping with a 'metadata:' list".to_string());
    };
    let list = match top.get(&Yaml::String("metadata".to_string())) {
        None => return Err("there is no 'metadata:' list".to_string()),
        Some(Yaml::Array(list)) if list.is_empty() => return Ok(Vec::new()),
        Some(Yaml::Array(list)) => list,
        Some(Yaml::Null) => return Err("the 'metadata' list is empty".to_string()),
        Some(_) => return Err("'metadata' must be followed by a list of entries".to_string()),
    };
    let mut entries = Vec::with_capacity(list.len());
    for (index, item) in list.iter().enumerate() {
        let mut entry = MetaEntry::default();
        match item {
            Yaml::Hash(map) => {
                for (key, value) in map {
                    let Yaml::String(key) = key else {
                        return Err(format!("entry {}: keys must be text", index + 1));
                    };
                    let Some(slot) = entry.slot(key) else {
                        continue; // a key this server does not use
                    };
                    *slot = scalar(value)
                        .map_err(|e| format!("entry {}: value of '{key}': {e}", index + 1))?;
                }
            }
            Yaml::Null => {}
            _ => return Err(format!("entry {}: expected 'key: value' lines", index + 1)),
        }
        entries.push(entry);
    }
    Ok(entries)
}
