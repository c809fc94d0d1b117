//! The v1 long-polling wire format (`Listening-Configs` and the changed-keys answer).

use nacos_core::ConfigKey;

const WORD: char = '\u{2}';
const LINE: char = '\u{1}';
/// Nacos refuses more entries than this in one poll.
pub const MAX_ENTRIES: usize = 10_000;

/// One watched key and the md5 of the client's copy (`""` when it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub key: ConfigKey,
    pub md5: String,
}

/// Parse the already form-decoded `Listening-Configs` value. Nacos URL-decodes it once more,
/// so a literal `+` reads as a space; we do the same for compatibility.
pub fn parse_probes(raw: &str) -> Result<Vec<Probe>, String> {
    let decoded: String = form_urlencoded::parse(format!("x={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut probes = Vec::new();
    for entry in decoded.split(LINE) {
        if entry.is_empty() {
            continue;
        }
        let fields: Vec<&str> = entry.split(WORD).collect();
        let probe = match fields.as_slice() {
            [data_id, group, md5] => Probe {
                key: ConfigKey::new("", *group, *data_id),
                md5: (*md5).to_string(),
            },
            [data_id, group, md5, tenant] => Probe {
                key: ConfigKey::new(*tenant, *group, *data_id),
                md5: (*md5).to_string(),
            },
            _ => return Err("invalid probeModify".to_string()),
        };
        if probe.key.data_id.is_empty() || probe.key.group.is_empty() {
            return Err("invalid probeModify".to_string());
        }
        probes.push(probe);
        if probes.len() > MAX_ENTRIES {
            return Err("invalid probeModify".to_string());
        }
    }
    Ok(probes)
}

/// `dataId ␂ group [␂ tenant] ␁` per changed key, form-URL-encoded as a whole, plus a newline.
pub fn encode_changed(keys: &[ConfigKey]) -> String {
    let mut raw = String::new();
    for key in keys {
        raw.push_str(&key.data_id);
        raw.push(WORD);
        raw.push_str(&key.group);
        if !key.namespace.is_empty() {
            raw.push(WORD);
            raw.push_str(&key.namespace);
        }
        raw.push(LINE);
    }
    if raw.is_empty() {
        return String::new();
    }
    let mut encoded: String = form_urlencoded::byte_serialize(raw.as_bytes()).collect();
    encoded.push('\n');
    encoded
}

/// Nacos's group key (the keys of listener-status maps): `dataId+group[+tenant]`, each part
/// with `%` and `+` escaped.
pub fn group_key(data_id: &str, group: &str, tenant: &str) -> String {
    let enc = |s: &str| s.replace('%', "%25").replace('+', "%2B");
    let mut key = format!("{}+{}", enc(data_id), enc(group));
    if !tenant.is_empty() {
        key.push('+');
        key.push_str(&enc(tenant));
    }
    key
}

/// The pre-2.0.4 short-poll header `Probe-Modify-Response`: `dataId:group;` per key.
pub fn legacy_probe_header(keys: &[ConfigKey]) -> String {
    keys.iter()
        .map(|k| format!("{}:{};", k.data_id, k.group))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_three_and_four_field_entries() {
        let raw = "a\u{2}G\u{2}m1\u{1}b\u{2}G\u{2}\u{2}ns1\u{1}c\u{2}G\u{2}m3\u{2}\u{1}";
        let probes = parse_probes(raw).expect("valid");
        assert_eq!(probes.len(), 3);
        assert_eq!(probes[0].key, ConfigKey::new("", "G", "a"));
        assert_eq!(probes[0].md5, "m1");
        assert_eq!(probes[1].key, ConfigKey::new("ns1", "G", "b"));
        assert_eq!(probes[1].md5, "");
        assert_eq!(probes[2].key.namespace, "");
    }

    #[test]
    fn rejects_malformed_entries() {
        assert!(parse_probes("a\u{2}b\u{1}").is_err());
        assert!(parse_probes("a\u{2}b\u{2}c\u{2}d\u{2}e\u{1}").is_err());
    }

    #[test]
    fn encodes_changed_keys() {
        let out = encode_changed(&[ConfigKey::new("", "G", "a"), ConfigKey::new("ns", "G", "b")]);
        assert_eq!(out, "a%02G%01b%02G%02ns%01\n");
        assert_eq!(encode_changed(&[]), "");
    }
}
