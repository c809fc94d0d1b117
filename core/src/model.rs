//! Domain types. Field names follow Nacos's vocabulary; JSON wire shapes live in the server.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
pub use smol_str::SmolStr;

pub const DEFAULT_GROUP: &str = "DEFAULT_GROUP";
pub const DEFAULT_CLUSTER: &str = "DEFAULT";
/// Naming's name for the default namespace. Configs store the default namespace as `""`.
pub const PUBLIC_NAMESPACE: &str = "public";
pub const DEFAULT_CONFIG_TYPE: &str = "text";

/// Lowercase hex MD5 of the UTF-8 bytes, as Nacos stores it in `config_info.md5`.
pub fn md5_hex(content: &str) -> String {
    let digest = Md5::digest(content.as_bytes());
    let mut out = String::with_capacity(32);
    for byte in digest {
        out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(byte & 0x0f), 16).unwrap_or('0'));
    }
    out
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Configs

/// Identity of a config: namespace (`""` is the default namespace), group, dataId.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConfigKey {
    pub namespace: String,
    pub group: String,
    pub data_id: String,
}

impl ConfigKey {
    pub fn new(
        namespace: impl Into<String>,
        group: impl Into<String>,
        data_id: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            group: group.into(),
            data_id: data_id.into(),
        }
    }

    /// `(namespace "…", group "…", dataId "…")`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "(namespace {:?}, group {:?}, dataId {:?})",
            self.namespace, self.group, self.data_id
        )
    }
}

/// Who performed a write, recorded in history (`src_user`, `src_ip`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    pub user: String,
    pub ip: String,
}

/// A formal config row (`config_info`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigItem {
    /// Backend-assigned id, unique across namespaces, never reused.
    pub id: u64,
    pub key: ConfigKey,
    pub content: String,
    pub md5: String,
    pub config_type: String,
    pub app_name: String,
    pub desc: String,
    pub usage: String,
    pub effect: String,
    pub schema: String,
    pub tags: Vec<String>,
    pub encrypted_data_key: String,
    pub src_user: String,
    pub src_ip: String,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// A publish of a formal config. `None` fields keep the stored value on update (Nacos keeps the
/// old appName and tags when they are not sent) and are empty on insert.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigPublish {
    pub key: ConfigKey,
    pub content: String,
    pub config_type: Option<String>,
    pub app_name: Option<String>,
    pub desc: Option<String>,
    pub usage: Option<String>,
    pub effect: Option<String>,
    pub schema: Option<String>,
    pub tags: Option<Vec<String>>,
    pub encrypted_data_key: Option<String>,
    /// Compare-and-set: the publish succeeds only if the stored md5 equals this. A CAS against a
    /// missing config fails.
    pub cas_md5: Option<String>,
    pub operator: Operator,
}

/// The compare-and-set rule every backend applies inside its write transaction: with
/// `expected` set, the stored md5 must equal it, and a missing row fails too. `what` names the
/// row in the error ("config G/d in ns").
pub fn check_cas(
    expected: Option<&str>,
    stored_md5: Option<&str>,
    what: &str,
) -> Result<(), crate::RepoError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    match stored_md5 {
        Some(md5) if md5 == expected => Ok(()),
        Some(md5) => Err(crate::RepoError::PreconditionFailed(format!(
            "md5 of {what} is {md5}, not {expected}"
        ))),
        None => Err(crate::RepoError::PreconditionFailed(format!(
            "{what} does not exist (casMd5 {expected})"
        ))),
    }
}

/// Which variant of a config a gray row is: the beta (by client IP) or a named tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Gray {
    Beta,
    Tag(String),
}

/// A beta (`config_info_beta`) or tag (`config_info_tag`) variant of a config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrayConfig {
    pub id: u64,
    pub key: ConfigKey,
    pub gray: Gray,
    pub content: String,
    pub md5: String,
    /// Client IPs that read the beta; empty for tags.
    pub beta_ips: Vec<String>,
    pub app_name: String,
    pub encrypted_data_key: String,
    pub src_user: String,
    pub src_ip: String,
    pub created_ms: i64,
    pub modified_ms: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GrayPublish {
    pub key: ConfigKey,
    pub content: String,
    pub beta_ips: Vec<String>,
    pub app_name: Option<String>,
    pub encrypted_data_key: Option<String>,
    pub cas_md5: Option<String>,
    pub operator: Operator,
}

/// History operation, as `his_config_info.op_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryOp {
    Insert,
    Update,
    Delete,
}

impl HistoryOp {
    pub fn code(self) -> &'static str {
        match self {
            HistoryOp::Insert => "I",
            HistoryOp::Update => "U",
            HistoryOp::Delete => "D",
        }
    }
}

/// A history row (`his_config_info`). Content is what Nacos stores: the new content for `I`,
/// the content *before* the write for `U`, the deleted content for `D`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// `nid`: the history id, strictly increasing.
    pub nid: u64,
    /// The config id (`0` for `I` rows, as Nacos writes them).
    pub config_id: u64,
    pub key: ConfigKey,
    pub content: String,
    pub md5: String,
    pub app_name: String,
    pub src_user: String,
    pub src_ip: String,
    pub op: HistoryOp,
    pub encrypted_data_key: String,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// A key whose formal or gray content changed, for cache refresh across nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    pub key: ConfigKey,
    pub modified_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MatchMode {
    /// Non-empty filters must match exactly.
    #[default]
    Exact,
    /// Non-empty filters are globs in which `*` matches any run of characters (Nacos turns `*`
    /// into SQL `%`); without `*` they match exactly.
    Blur,
}

impl MatchMode {
    /// Whether `value` passes the list filter `filter`: an empty filter accepts everything.
    /// Backends that filter in memory use this so every backend agrees on glob semantics.
    pub fn accepts(self, filter: &str, value: &str) -> bool {
        filter.is_empty()
            || match self {
                MatchMode::Exact => filter == value,
                MatchMode::Blur => glob_match(filter, value),
            }
    }
}

/// 1-based page request. `page_size` 0 asks only for the total count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    pub page_no: u32,
    pub page_size: u32,
}

impl PageRequest {
    pub fn new(page_no: u32, page_size: u32) -> Self {
        Self {
            page_no: page_no.max(1),
            page_size,
        }
    }

    /// Index of the first item of this page, saturating.
    pub fn offset(&self) -> usize {
        (self.page_no.max(1) as usize - 1).saturating_mul(self.page_size as usize)
    }

    /// Cut one page out of a complete, ordered list.
    pub fn slice<T>(&self, all: Vec<T>) -> Page<T> {
        let total = all.len() as u64;
        let items = all
            .into_iter()
            .skip(self.offset())
            .take(self.page_size as usize)
            .collect();
        Page::new(total, *self, items)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub total_count: u64,
    pub page_number: u32,
    pub pages_available: u32,
    pub items: Vec<T>,
}

impl<T> Page<T> {
    pub fn new(total_count: u64, request: PageRequest, items: Vec<T>) -> Self {
        let pages = if request.page_size == 0 {
            0
        } else {
            total_count.div_ceil(u64::from(request.page_size))
        };
        Self {
            total_count,
            page_number: request.page_no,
            pages_available: u32::try_from(pages).unwrap_or(u32::MAX),
            items,
        }
    }
}

/// Config search (`search=accurate|blur`). Empty strings and lists mean "no filter".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigQuery {
    pub namespace: String,
    pub data_id: String,
    pub group: String,
    pub app_name: String,
    /// Matches configs carrying any of these tags.
    pub tags: Vec<String>,
    /// Matches configs of any of these types.
    pub types: Vec<String>,
    /// Content filter (glob in blur mode, substring never): empty means none.
    pub content: String,
    pub mode: MatchMode,
    pub page: PageRequest,
}

impl ConfigQuery {
    /// Every config of a namespace, one page.
    pub fn namespace(namespace: impl Into<String>, page: PageRequest) -> Self {
        Self {
            namespace: namespace.into(),
            data_id: String::new(),
            group: String::new(),
            app_name: String::new(),
            tags: Vec::new(),
            types: Vec::new(),
            content: String::new(),
            mode: MatchMode::Exact,
            page,
        }
    }

    /// Whether an item passes the filters (the namespace is checked too). Backends that filter
    /// in memory use this so every backend agrees on glob semantics.
    pub fn matches(&self, item: &ConfigItem) -> bool {
        let field = |filter: &str, value: &str| self.mode.accepts(filter, value);
        item.key.namespace == self.namespace
            && field(&self.data_id, &item.key.data_id)
            && field(&self.group, &item.key.group)
            && (self.app_name.is_empty() || self.app_name == item.app_name)
            && (self.tags.is_empty() || item.tags.iter().any(|t| self.tags.contains(t)))
            && (self.types.is_empty() || self.types.contains(&item.config_type))
            && field(&self.content, &item.content)
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, value: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == value;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = value;
    let last = parts.len() - 1;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == last {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Namespaces

/// A custom namespace (`tenant_info`). The public namespace has no row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespace {
    pub id: String,
    pub name: String,
    pub desc: String,
    pub created_ms: i64,
    pub modified_ms: i64,
}

// ---------------------------------------------------------------------------------------------
// Naming

/// Identity of a service. Naming spells the default namespace `public`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceKey {
    pub namespace: String,
    pub group: String,
    pub name: String,
}

impl ServiceKey {
    pub fn new(
        namespace: impl Into<String>,
        group: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            group: group.into(),
            name: name.into(),
        }
    }

    /// `group@@name`, the form Nacos puts on the wire.
    pub fn grouped_name(&self) -> String {
        format!("{}@@{}", self.group, self.name)
    }

    /// `service group@@name in namespace ns`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "service {} in namespace {}",
            self.grouped_name(),
            self.namespace
        )
    }
}

/// Per-cluster settings of a service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterMeta {
    pub health_checker: String,
    pub check_port: u16,
    pub use_instance_port: bool,
    pub metadata: BTreeMap<String, String>,
}

/// Durable service settings (Nacos's `ServiceMetadata`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceMeta {
    pub key: ServiceKey,
    /// Whether the service holds ephemeral instances. A service created through
    /// `POST /v1/ns/service` is persistent, as in Nacos.
    pub ephemeral: bool,
    pub protect_threshold: f32,
    pub metadata: BTreeMap<String, String>,
    /// Selector as Nacos's JSON (`{"type":"none"}` by default).
    pub selector: String,
    pub clusters: BTreeMap<String, ClusterMeta>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

impl ServiceMeta {
    pub fn new(key: ServiceKey, ephemeral: bool) -> Self {
        let now = now_millis();
        Self {
            key,
            ephemeral,
            protect_threshold: 0.0,
            metadata: BTreeMap::new(),
            selector: r#"{"type":"none"}"#.to_string(),
            clusters: BTreeMap::new(),
            created_ms: now,
            modified_ms: now,
        }
    }
}

/// One instance of a service. Identity within a service: `(ip, port, cluster)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Inline up to 23 bytes (every IP address, most cluster names): a registry holds one
    /// instance per registration, and these two strings were its only allocations.
    pub ip: SmolStr,
    pub port: u16,
    pub cluster: SmolStr,
    pub weight: f64,
    pub healthy: bool,
    pub enabled: bool,
    pub ephemeral: bool,
    pub metadata: BTreeMap<String, String>,
    /// Client-supplied instance id; `None` means "generate" (`ip#port#cluster#group@@service`).
    pub instance_id: Option<String>,
}

impl Instance {
    pub fn new(ip: impl Into<SmolStr>, port: u16) -> Self {
        Self {
            ip: ip.into(),
            port,
            cluster: SmolStr::new_static(DEFAULT_CLUSTER),
            weight: 1.0,
            healthy: true,
            enabled: true,
            ephemeral: true,
            metadata: BTreeMap::new(),
            instance_id: None,
        }
    }

    /// Where this instance is: its identity within its service.
    pub fn addr(&self) -> InstanceAddr {
        InstanceAddr::new(self.ip.as_str(), self.port, self.cluster.as_str())
    }

    pub fn is_at(&self, addr: &InstanceAddr) -> bool {
        self.ip == addr.ip && self.port == addr.port && self.cluster == addr.cluster
    }
}

/// An instance's identity within a service: `(ip, port, cluster)`, ordered in that order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstanceAddr {
    pub ip: String,
    pub port: u16,
    pub cluster: String,
}

impl InstanceAddr {
    pub fn new(ip: impl Into<String>, port: u16, cluster: impl Into<String>) -> Self {
        Self {
            ip: ip.into(),
            port,
            cluster: cluster.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Users (default auth plugin)

/// A user row. `password_hash` is a BCrypt hash (`$2a$10$...`), never a plain password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub password_hash: String,
    pub enabled: bool,
}

impl std::fmt::Debug for User {
    // The hash stays out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// A role granted to a user (`roles` table).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoleBinding {
    pub role: String,
    pub username: String,
}

/// A permission of a role (`permissions` table): `action` is `r`, `w` or `rw`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Permission {
    pub role: String,
    pub resource: String,
    pub action: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_known_vector() {
        assert_eq!(md5_hex("helloWorld"), "1a833da63a6b7e20098dae06d06602e1");
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn glob_semantics() {
        assert!(glob_match("abc", "abc"));
        assert!(!glob_match("abc", "abcd"));
        assert!(glob_match("*bc*", "abcd"));
        assert!(glob_match("a*", "abcd"));
        assert!(!glob_match("b*", "abcd"));
        assert!(glob_match("*d", "abcd"));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(!glob_match("a*c*e", "abcd"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn page_math() {
        let page = PageRequest::new(2, 2).slice(vec![1, 2, 3, 4, 5]);
        assert_eq!(page.items, vec![3, 4]);
        assert_eq!(page.total_count, 5);
        assert_eq!(page.pages_available, 3);
        let beyond = PageRequest::new(9, 2).slice(vec![1, 2, 3]);
        assert!(beyond.items.is_empty());
    }
}
