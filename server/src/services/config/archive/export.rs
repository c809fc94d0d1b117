//! Writing an export archive: one `group/dataId` entry per config and the metadata entry of
//! the chosen flavour.

use std::io::{Cursor, Write};

use nacos_core::{ConfigItem, DEFAULT_CONFIG_TYPE};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::{META_V1, META_V2};

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

pub(super) fn entry_name(group: &str, data_id: &str) -> String {
    format!("{group}/{data_id}")
}

/// `.meta.yml` key: `group.<dataId, last dot replaced by ~>.app`.
pub(super) fn app_meta_key(group: &str, data_id: &str) -> String {
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
pub(super) fn yaml_scalar(value: &str) -> String {
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
pub(super) fn zip_time(epoch_ms: i64) -> DateTime {
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
pub(super) fn civil_date(days: i64) -> (i64, i64, i64) {
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
