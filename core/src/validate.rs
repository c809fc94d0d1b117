//! Nacos's parameter rules (its "parameter checker"), shared by every edge so HTTP v1, v2 and
//! gRPC reject the same inputs with the same words.

/// A rejected parameter: its wire name and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParamError {
    pub param: &'static str,
    pub message: String,
}

impl ParamError {
    pub fn new(param: &'static str, message: impl Into<String>) -> Self {
        Self {
            param,
            message: message.into(),
        }
    }

    pub fn missing(param: &'static str) -> Self {
        Self::new(param, format!("Required parameter '{param}' is missing"))
    }
}

pub type ParamResult<T = ()> = Result<T, ParamError>;

/// Content limit when `maxContent` is not configured (10 MiB).
pub const DEFAULT_MAX_CONTENT: usize = 10 * 1024 * 1024;

fn is_config_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')
}

fn check_len(param: &'static str, value: &str, max: usize) -> ParamResult {
    if value.chars().count() > max {
        return Err(ParamError::new(
            param,
            format!("invalid {param}, length exceeds {max}"),
        ));
    }
    Ok(())
}

fn check_config_token(param: &'static str, value: &str, max: usize) -> ParamResult {
    if value.trim().is_empty() {
        return Err(ParamError::missing(param));
    }
    // Every allowed character is ASCII, so a byte test decides (a byte of a multi-byte
    // character is never allowed), and the length in characters is the length in bytes.
    if !value.bytes().all(|b| is_config_char(char::from(b))) {
        return Err(ParamError::new(
            param,
            format!("invalid {param}: only letters, digits and _ - . : are allowed"),
        ));
    }
    if value.len() > max {
        return Err(ParamError::new(
            param,
            format!("invalid {param}, length exceeds {max}"),
        ));
    }
    Ok(())
}

/// dataId: required, `[A-Za-z0-9_.:-]`, at most 256 characters.
pub fn data_id(value: &str) -> ParamResult {
    check_config_token("dataId", value, 256)
}

/// group: required, same alphabet as dataId, at most 128 characters.
pub fn group(value: &str) -> ParamResult {
    check_config_token("group", value, 128)
}

/// Config namespace (`tenant` / `namespaceId`): may be empty; same alphabet; at most 128.
pub fn tenant(param: &'static str, value: &str) -> ParamResult {
    optional_word(param, value, 128)
}

/// Empty, or letters, digits, `_` and `-` (Java's `[\w-]`) up to `max` characters.
fn optional_word(param: &'static str, value: &str, max: usize) -> ParamResult {
    if value.is_empty() {
        return Ok(());
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        return Err(ParamError::new(
            param,
            format!("invalid {param}: only letters, digits, _ and - are allowed"),
        ));
    }
    check_len(param, value, max)
}

/// Config tag (`tag`): same alphabet as dataId, at most 16 characters.
pub fn tag(value: &str) -> ParamResult {
    check_config_token("tag", value, 16)
}

/// Config content: non-blank and at most `max_bytes`.
pub fn content(value: &str, max_bytes: usize) -> ParamResult {
    if value.trim().is_empty() {
        return Err(ParamError::missing("content"));
    }
    if value.len() > max_bytes {
        return Err(ParamError::new(
            "content",
            format!("invalid content, over max content size {max_bytes} bytes"),
        ));
    }
    Ok(())
}

fn has_cjk_or_space(value: &str) -> bool {
    value.chars().any(|c| {
        c.is_whitespace()
            || matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x3000..=0x303F | 0xFF00..=0xFFEF)
    })
}

/// Naming namespace id: `[\w-]`, at most 64.
pub fn namespace_id(param: &'static str, value: &str) -> ParamResult {
    optional_word(param, value, 64)
}

/// Bare service name (group already split off): required, no leading `@`, no `@@`, no CJK or
/// whitespace, at most 512.
pub fn service_name(value: &str) -> ParamResult {
    if value.trim().is_empty() {
        return Err(ParamError::missing("serviceName"));
    }
    if value.starts_with('@') || value.contains("@@") {
        return Err(ParamError::new(
            "serviceName",
            format!("invalid serviceName format: {value}"),
        ));
    }
    if has_cjk_or_space(value) {
        return Err(ParamError::new(
            "serviceName",
            "invalid serviceName: whitespace and CJK characters are not allowed",
        ));
    }
    check_len("serviceName", value, 512)
}

/// Naming group name: no `@@`, no whitespace, at most 128.
pub fn group_name(value: &str) -> ParamResult {
    if value.trim().is_empty() {
        return Err(ParamError::missing("groupName"));
    }
    if value.contains("@@") || has_cjk_or_space(value) {
        return Err(ParamError::new(
            "groupName",
            format!("invalid groupName: {value}"),
        ));
    }
    check_len("groupName", value, 128)
}

/// Cluster name: `[0-9a-zA-Z_-]+`, at most 64.
pub fn cluster_name(param: &'static str, value: &str) -> ParamResult {
    if value.is_empty()
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        return Err(ParamError::new(
            param,
            format!("invalid {param} '{value}': only letters, digits, _ and - are allowed"),
        ));
    }
    check_len(param, value, 64)
}

/// Instance ip: required, no CJK or whitespace, at most 128.
pub fn ip(value: &str) -> ParamResult {
    if value.trim().is_empty() {
        return Err(ParamError::missing("ip"));
    }
    if has_cjk_or_space(value) {
        return Err(ParamError::new("ip", format!("invalid ip: {value}")));
    }
    check_len("ip", value, 128)
}

/// Weight: 0..=10000.
pub fn weight(value: f64) -> ParamResult {
    if !(0.0..=10000.0).contains(&value) || value.is_nan() {
        return Err(ParamError::new(
            "weight",
            "instance format invalid: weight must be in 0..10000",
        ));
    }
    Ok(())
}

/// Namespace show name: no `@#$%^&*`, 1..=256.
pub fn namespace_show_name(value: &str) -> ParamResult {
    if value.trim().is_empty() {
        return Err(ParamError::missing("namespaceName"));
    }
    if value.chars().any(|c| "@#$%^&*".contains(c)) {
        return Err(ParamError::new(
            "namespaceName",
            "namespaceName contains illegal characters",
        ));
    }
    check_len("namespaceName", value, 256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_tokens() {
        assert!(data_id("app.yaml").is_ok());
        assert!(data_id("a:b-c_d").is_ok());
        assert_eq!(data_id("").expect_err("blank").param, "dataId");
        assert!(data_id("a b").is_err());
        assert!(data_id("中文").is_err());
        assert!(data_id(&"x".repeat(257)).is_err());
        assert!(group("DEFAULT_GROUP").is_ok());
        assert!(group(&"g".repeat(129)).is_err());
    }

    #[test]
    fn naming_tokens() {
        assert!(service_name("order-service").is_ok());
        assert!(service_name("@bad").is_err());
        assert!(service_name("a@@b").is_err());
        assert!(service_name("有").is_err());
        assert!(cluster_name("clusterName", "DEFAULT").is_ok());
        assert!(cluster_name("clusterName", "a,b").is_err());
        assert!(weight(10001.0).is_err());
        assert!(weight(f64::NAN).is_err());
        assert!(content(" ", 10).is_err());
        assert!(content("12345678901", 10).is_err());
    }
}
