//! Domain rules every backend (and every edge) applies the same way, written once: what a
//! publish stores over what was stored, how tags and beta IPs are cleaned, which namespace
//! spellings mean the default namespace, which config types exist, what makes a service or an
//! instance storable, and the errors (with their wording) the repository contracts name.
//!
//! Backends only decide *how* to store: they build the row to write with [`published_config`]
//! or [`published_gray`] and check inputs with [`check_service`] / [`check_instance`].

use crate::error::{RepoError, RepoResult};
use crate::model::{
    ConfigItem, ConfigPublish, Gray, GrayConfig, GrayPublish, HistoryOp, Instance, Namespace,
    ServiceKey, ServiceMeta, md5_hex,
};

// ---------------------------------------------------------------------------------------------
// Configs

/// Config types Nacos knows; anything else is stored (and imported) as
/// [`DEFAULT_CONFIG_TYPE`](crate::DEFAULT_CONFIG_TYPE).
pub const CONFIG_TYPES: &[&str] = &["text", "json", "xml", "yaml", "html", "properties", "toml"];

/// Whether Nacos knows this config type (exact, lowercase spelling).
pub fn is_config_type(config_type: &str) -> bool {
    CONFIG_TYPES.contains(&config_type)
}

/// The config namespace as stored: `public`, `null` and blank all mean the default `""`;
/// anything else is trimmed.
pub fn normalise_namespace(raw: &str) -> &str {
    let raw = raw.trim();
    if raw == "public" || raw == "null" {
        ""
    } else {
        raw
    }
}

/// A comma-separated list: items trimmed, blanks dropped. `None` is the empty list.
pub fn split_list(value: Option<&str>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Config tags as stored: trimmed, blanks dropped, each tag once (the first time it appears),
/// in the order given.
pub fn clean_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_string());
        }
    }
    out
}

/// Beta IPs as stored: trimmed, blanks dropped, in the order given.
pub fn clean_ips(ips: &[String]) -> Vec<String> {
    ips.iter()
        .map(|ip| ip.trim())
        .filter(|ip| !ip.is_empty())
        .map(str::to_string)
        .collect()
}

/// A publish's `None` keeps the stored value; `Some` replaces it.
pub fn updated_field(new: &Option<String>, stored: &str) -> String {
    new.clone().unwrap_or_else(|| stored.to_string())
}

/// The md5 of a stored row: the stored one, or computed from the content when the row has
/// none (`NULL` or empty, as rows written by other tools may have).
pub fn stored_md5(stored: Option<String>, content: &str) -> String {
    match stored {
        Some(md5) if !md5.is_empty() => md5,
        _ => md5_hex(content),
    }
}

/// The formal config a publish stores, over `stored` (the current row, if any): a new row
/// takes the publish's fields (unset ones empty); an update keeps the id, the creation time
/// and every field the publish leaves unset (`None`). Tags are cleaned ([`clean_tags`]).
/// `id` is used for a new row (0 when the database assigns it on insert); `now_ms` is the
/// write time as the backend stores it.
pub fn published_config(
    publish: &ConfigPublish,
    stored: Option<&ConfigItem>,
    id: u64,
    now_ms: i64,
) -> ConfigItem {
    let blank = ConfigItem {
        id,
        key: publish.key.clone(),
        created_ms: now_ms,
        modified_ms: now_ms,
        ..ConfigItem::default()
    };
    let old = stored.unwrap_or(&blank);
    ConfigItem {
        id: old.id,
        key: publish.key.clone(),
        content: publish.content.clone(),
        md5: md5_hex(&publish.content),
        config_type: updated_field(&publish.config_type, &old.config_type),
        app_name: updated_field(&publish.app_name, &old.app_name),
        desc: updated_field(&publish.desc, &old.desc),
        usage: updated_field(&publish.usage, &old.usage),
        effect: updated_field(&publish.effect, &old.effect),
        schema: updated_field(&publish.schema, &old.schema),
        tags: match &publish.tags {
            Some(tags) => clean_tags(tags),
            None => old.tags.clone(),
        },
        encrypted_data_key: updated_field(&publish.encrypted_data_key, &old.encrypted_data_key),
        src_user: publish.operator.user.clone(),
        src_ip: publish.operator.ip.clone(),
        created_ms: old.created_ms,
        modified_ms: now_ms,
    }
}

/// The gray variant a publish stores, over `stored` (the current variant, if any): content,
/// md5 and operator are the publish's; app name and encrypted data key are kept when unset;
/// beta IPs are cleaned ([`clean_ips`]) and only a beta has them; a tag variant carries no
/// encrypted data key (Nacos's `config_info_tag` has no such column). `id` is used for a new
/// variant (0 when the database assigns it).
pub fn published_gray(
    gray: &Gray,
    publish: &GrayPublish,
    stored: Option<&GrayConfig>,
    id: u64,
    now_ms: i64,
) -> GrayConfig {
    let is_beta = *gray == Gray::Beta;
    let (id, created_ms, old_app, old_edk) = match stored {
        Some(old) => (
            old.id,
            old.created_ms,
            old.app_name.as_str(),
            old.encrypted_data_key.as_str(),
        ),
        None => (id, now_ms, "", ""),
    };
    GrayConfig {
        id,
        key: publish.key.clone(),
        gray: gray.clone(),
        content: publish.content.clone(),
        md5: md5_hex(&publish.content),
        beta_ips: if is_beta {
            clean_ips(&publish.beta_ips)
        } else {
            Vec::new()
        },
        app_name: updated_field(&publish.app_name, old_app),
        encrypted_data_key: if is_beta {
            updated_field(&publish.encrypted_data_key, old_edk)
        } else {
            String::new()
        },
        src_user: publish.operator.user.clone(),
        src_ip: publish.operator.ip.clone(),
        created_ms,
        modified_ms: now_ms,
    }
}

impl HistoryOp {
    /// The op of a stored `op_type` (`I`, `U`, `D`; Nacos's column is `char(10)`, so trailing
    /// blanks are ignored), or `None` for anything else.
    pub fn from_code(code: &str) -> Option<HistoryOp> {
        match code.trim() {
            "I" => Some(HistoryOp::Insert),
            "U" => Some(HistoryOp::Update),
            "D" => Some(HistoryOp::Delete),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Namespaces

/// Namespaces in the order [`NamespaceRepo::list`](crate::NamespaceRepo::list) returns them:
/// by creation time, then by id (byte order, whatever a database's collation).
pub fn sort_namespaces(namespaces: &mut [Namespace]) {
    namespaces.sort_by(|a, b| {
        a.created_ms
            .cmp(&b.created_ms)
            .then_with(|| a.id.cmp(&b.id))
    });
}

// ---------------------------------------------------------------------------------------------
// Naming

/// A service's settings can be stored: its protect threshold is a finite number.
pub fn check_service(meta: &ServiceMeta) -> RepoResult<()> {
    if meta.protect_threshold.is_finite() {
        Ok(())
    } else {
        Err(RepoError::InvalidArgument(format!(
            "protect threshold must be finite, got {}",
            meta.protect_threshold
        )))
    }
}

/// An instance can be stored: its weight is a finite number.
pub fn check_instance(instance: &Instance) -> RepoResult<()> {
    if instance.weight.is_finite() {
        Ok(())
    } else {
        Err(RepoError::InvalidArgument(format!(
            "instance weight must be finite, got {}",
            instance.weight
        )))
    }
}

/// `NotFound` for a service.
pub fn service_not_found(key: &ServiceKey) -> RepoError {
    RepoError::NotFound(key.describe())
}

/// `AlreadyExists` for a service.
pub fn service_exists(key: &ServiceKey) -> RepoError {
    RepoError::AlreadyExists(key.describe())
}

/// `PreconditionFailed`: a service cannot be deleted while persistent instances remain.
pub fn service_in_use(key: &ServiceKey) -> RepoError {
    RepoError::PreconditionFailed(format!("{} still has persistent instances", key.describe()))
}

/// `PreconditionFailed`: an ephemeral service cannot hold persistent instances.
pub fn service_is_ephemeral(key: &ServiceKey) -> RepoError {
    RepoError::PreconditionFailed(format!(
        "{} is ephemeral; it cannot hold persistent instances",
        key.describe()
    ))
}

/// Persistent instances in the order [`InstanceRepo::list_instances`] returns them: by
/// `(ip, port, cluster)`, byte order.
///
/// [`InstanceRepo::list_instances`]: crate::InstanceRepo::list_instances
pub fn sort_instances(instances: &mut [Instance]) {
    instances.sort_by(|a, b| {
        (a.ip.as_str(), a.port, a.cluster.as_str()).cmp(&(
            b.ip.as_str(),
            b.port,
            b.cluster.as_str(),
        ))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConfigKey, Operator};

    #[test]
    fn namespaces_normalise() {
        assert_eq!(normalise_namespace("public"), "");
        assert_eq!(normalise_namespace("null"), "");
        assert_eq!(normalise_namespace(" "), "");
        assert_eq!(normalise_namespace(""), "");
        assert_eq!(normalise_namespace(" dev "), "dev");
    }

    #[test]
    fn lists_and_tags_clean() {
        assert_eq!(split_list(Some("a, b,,c ")), vec!["a", "b", "c"]);
        assert!(split_list(None).is_empty());
        let tags: Vec<String> = [" x", "y", "", "x", "  "]
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(clean_tags(&tags), vec!["x", "y"]);
        assert_eq!(clean_ips(&tags), vec!["x", "y", "x"]);
        assert!(is_config_type("yaml"));
        assert!(!is_config_type("YAML"));
    }

    #[test]
    fn md5_falls_back_to_content() {
        assert_eq!(stored_md5(Some("abc".into()), "x"), "abc");
        assert_eq!(stored_md5(Some(String::new()), "x"), md5_hex("x"));
        assert_eq!(stored_md5(None, "x"), md5_hex("x"));
    }

    #[test]
    fn history_codes() {
        for op in [HistoryOp::Insert, HistoryOp::Update, HistoryOp::Delete] {
            assert_eq!(HistoryOp::from_code(&format!("{}   ", op.code())), Some(op));
        }
        assert_eq!(HistoryOp::from_code("X"), None);
    }

    fn publish(content: &str) -> ConfigPublish {
        ConfigPublish {
            key: ConfigKey::new("ns", "G", "d"),
            content: content.to_string(),
            operator: Operator {
                user: "u".into(),
                ip: "1.2.3.4".into(),
            },
            ..ConfigPublish::default()
        }
    }

    #[test]
    fn publish_inserts_then_keeps_unset_fields() {
        let first = published_config(
            &ConfigPublish {
                app_name: Some("app".into()),
                tags: Some(vec!["a".into(), " a".into(), "b".into()]),
                ..publish("one")
            },
            None,
            7,
            1_000,
        );
        assert_eq!(first.id, 7);
        assert_eq!(first.md5, md5_hex("one"));
        assert_eq!(first.app_name, "app");
        assert_eq!(first.config_type, "");
        assert_eq!(first.tags, vec!["a", "b"]);
        assert_eq!((first.created_ms, first.modified_ms), (1_000, 1_000));
        let second = published_config(&publish("two"), Some(&first), 9, 2_000);
        assert_eq!(second.id, 7, "an update keeps the id");
        assert_eq!(second.app_name, "app", "None keeps");
        assert_eq!(second.tags, vec!["a", "b"], "None keeps tags");
        assert_eq!((second.created_ms, second.modified_ms), (1_000, 2_000));
        assert_eq!(second.src_ip, "1.2.3.4");
    }

    #[test]
    fn gray_variants() {
        let publish = GrayPublish {
            key: ConfigKey::new("", "G", "d"),
            content: "c".into(),
            beta_ips: vec![" 10.0.0.1".into(), "".into()],
            app_name: None,
            encrypted_data_key: Some("edk".into()),
            cas_md5: None,
            operator: Operator::default(),
        };
        let beta = published_gray(&Gray::Beta, &publish, None, 3, 5);
        assert_eq!(beta.beta_ips, vec!["10.0.0.1"]);
        assert_eq!(beta.encrypted_data_key, "edk");
        assert_eq!((beta.id, beta.created_ms), (3, 5));
        let tag = Gray::Tag("blue".into());
        let variant = published_gray(&tag, &publish, None, 0, 5);
        assert!(variant.beta_ips.is_empty());
        assert_eq!(variant.encrypted_data_key, "");
        let again = published_gray(&Gray::Beta, &publish, Some(&beta), 0, 9);
        assert_eq!((again.id, again.created_ms, again.modified_ms), (3, 5, 9));
    }

    #[test]
    fn checks() {
        let mut meta = ServiceMeta::new(ServiceKey::new("", "G", "s"), false);
        assert!(check_service(&meta).is_ok());
        meta.protect_threshold = f32::NAN;
        assert!(matches!(
            check_service(&meta),
            Err(RepoError::InvalidArgument(_))
        ));
        let mut instance = Instance::new("1.1.1.1", 80);
        assert!(check_instance(&instance).is_ok());
        instance.weight = f64::INFINITY;
        assert!(check_instance(&instance).is_err());
        assert_eq!(
            service_in_use(&meta.key).to_string(),
            "precondition failed: service G@@s in namespace  still has persistent instances"
        );
    }
}
