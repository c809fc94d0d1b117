//! JSON shapes of the v1 API (Jackson's camelCase, ids as strings) and time formats.

use nacos_core::{ConfigItem, GrayConfig, HistoryEntry, Page};
use serde::Serialize;

/// Nacos's `Page`: `{totalCount, pageNumber, pagesAvailable, pageItems}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageJson<T> {
    pub total_count: u64,
    pub page_number: u32,
    pub pages_available: u32,
    pub page_items: Vec<T>,
}

impl<T> PageJson<T> {
    pub fn from_page<U>(page: Page<U>, map: impl Fn(U) -> T) -> Self {
        PageJson {
            total_count: page.total_count,
            page_number: page.page_number,
            pages_available: page.pages_available,
            page_items: page.items.into_iter().map(map).collect(),
        }
    }
}

/// `ConfigInfo`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigInfoJson {
    pub id: String,
    pub data_id: String,
    pub group: String,
    pub content: String,
    pub md5: String,
    pub encrypted_data_key: String,
    pub tenant: String,
    pub app_name: String,
    #[serde(rename = "type")]
    pub config_type: String,
}

impl From<ConfigItem> for ConfigInfoJson {
    fn from(c: ConfigItem) -> Self {
        ConfigInfoJson {
            id: c.id.to_string(),
            data_id: c.key.data_id,
            group: c.key.group,
            content: c.content,
            md5: c.md5,
            encrypted_data_key: c.encrypted_data_key,
            tenant: c.key.namespace,
            app_name: c.app_name,
            config_type: c.config_type,
        }
    }
}

/// `ConfigAllInfo` (`show=all`): the advance info plus the config itself.
pub fn config_all_info(c: &ConfigItem) -> serde_json::Value {
    let mut info = config_advance_info(c);
    if let Some(fields) = info.as_object_mut() {
        for (name, value) in [
            ("id", serde_json::json!(c.id.to_string())),
            ("dataId", serde_json::json!(c.key.data_id)),
            ("group", serde_json::json!(c.key.group)),
            ("content", serde_json::json!(c.content)),
            ("md5", serde_json::json!(c.md5)),
            ("encryptedDataKey", serde_json::json!(c.encrypted_data_key)),
            ("tenant", serde_json::json!(c.key.namespace)),
            ("appName", serde_json::json!(c.app_name)),
        ] {
            fields.insert(name.to_string(), value);
        }
    }
    info
}

/// `ConfigAdvanceInfo` (catalog).
pub fn config_advance_info(c: &ConfigItem) -> serde_json::Value {
    serde_json::json!({
        "createTime": c.created_ms,
        "modifyTime": c.modified_ms,
        "createUser": c.src_user,
        "createIp": c.src_ip,
        "desc": c.desc,
        "use": c.usage,
        "effect": c.effect,
        "type": c.config_type,
        "schema": c.schema,
        "configTags": c.tags.join(","),
    })
}

/// `ConfigInfo4Beta`.
pub fn config_beta_info(g: &GrayConfig, config_type: &str) -> serde_json::Value {
    serde_json::json!({
        "id": g.id.to_string(),
        "dataId": g.key.data_id,
        "group": g.key.group,
        "content": g.content,
        "md5": g.md5,
        "encryptedDataKey": g.encrypted_data_key,
        "tenant": g.key.namespace,
        "appName": g.app_name,
        "type": config_type,
        "betaIps": g.beta_ips.join(","),
    })
}

/// `ConfigHistoryInfo`; list pages omit the content as Nacos does.
pub fn history_info(h: &HistoryEntry, with_content: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": h.nid.to_string(),
        "lastId": -1,
        "dataId": h.key.data_id,
        "group": h.key.group,
        "tenant": h.key.namespace,
        "appName": h.app_name,
        "md5": h.md5,
        "srcIp": h.src_ip,
        "srcUser": h.src_user,
        "opType": h.op.code(),
        "createdTime": iso_millis(h.created_ms),
        "lastModifiedTime": iso_millis(h.modified_ms),
        "encryptedDataKey": h.encrypted_data_key,
    });
    if with_content {
        v["content"] = serde_json::Value::String(h.content.clone());
    }
    v
}

/// `2020-12-05T01:48:03.380+0000`, the form Nacos's docs show for SQL timestamps (UTC).
pub fn iso_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}+0000",
        tod / 3600,
        (tod % 3600) / 60,
        tod % 60
    )
}

/// `yyyyMMddHHmmss` in UTC, for export file names.
pub fn compact_timestamp(ms: i64) -> String {
    let iso = iso_millis(ms);
    iso.chars().filter(char::is_ascii_digit).take(14).collect()
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// RFC 1123 date for `Last-Modified`.
pub fn http_date(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    httpdate::fmt_http_date(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_format() {
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000+0000");
        assert_eq!(
            iso_millis(1_607_132_883_380),
            "2020-12-05T01:48:03.380+0000"
        );
        assert_eq!(compact_timestamp(1_607_132_883_380), "20201205014803");
        assert_eq!(iso_millis(951_782_400_000), "2000-02-29T00:00:00.000+0000");
    }
}
