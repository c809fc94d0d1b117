//! Config operations shared by every edge (HTTP v1/v2, gRPC): the same validation, the same
//! namespace rule and the same mapping of a publish onto formal, beta or tag writes. Edges only
//! collect their inputs and shape the answer.

use nacos_core::validate::{self, ParamError};
use nacos_core::{
    ConfigKey, ConfigPublish, DEFAULT_CONFIG_TYPE, Gray, GrayPublish, Operator, RepoError,
};

use nacos_core::rules::{CONFIG_TYPES, normalise_namespace};

use super::ConfigService;
use crate::foundation::error::ServiceError;

/// A failed config operation: a rejected parameter or a storage outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigOpError {
    #[error(transparent)]
    Param(#[from] ParamError),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

pub type ConfigOpResult<T = ()> = Result<T, ConfigOpError>;

/// A validated config namespace (`param` names the parameter in messages).
pub fn namespace(param: &'static str, raw: &str) -> Result<String, ParamError> {
    let ns = normalise_namespace(raw);
    validate::tenant(param, ns)?;
    Ok(ns.to_string())
}

/// dataId + group + tenant, validated in that order.
pub fn config_key(tenant: &str, group: &str, data_id: &str) -> Result<ConfigKey, ParamError> {
    validate::data_id(data_id)?;
    validate::group(group)?;
    Ok(ConfigKey::new(namespace("tenant", tenant)?, group, data_id))
}

/// An optional config tag: blank counts as absent.
pub fn optional_tag(tag: Option<&str>) -> Result<Option<String>, ParamError> {
    match tag.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => {
            validate::tag(t)?;
            Ok(Some(t.to_string()))
        }
    }
}

pub use nacos_core::rules::split_list;

/// Everything a publish can carry, whichever edge it came through. `None` means "not sent";
/// edges map blank values to `None` where Nacos treats them as absent.
#[derive(Debug, Clone, Default)]
pub struct PublishInput {
    /// Already validated with [`config_key`].
    pub key: ConfigKey,
    pub content: String,
    /// Publish the tag variant of this name instead of the formal config.
    pub tag: Option<String>,
    /// Comma-separated client IPs: publish the beta variant instead of the formal config.
    pub beta_ips: Option<String>,
    pub cas_md5: Option<String>,
    pub app_name: Option<String>,
    pub encrypted_data_key: Option<String>,
    /// Comma-separated config tags (`config_tags`).
    pub config_tags: Option<String>,
    pub desc: Option<String>,
    pub usage: Option<String>,
    pub effect: Option<String>,
    pub schema: Option<String>,
    /// Config type; unknown types are stored as `text`.
    pub config_type: Option<String>,
    pub operator: Operator,
}

fn limited(
    name: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, ParamError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ParamError::new(
            name,
            format!("invalid {name}, length exceeds {max}"),
        )),
        other => Ok(other),
    }
}

/// Validate and apply a publish: the beta when `beta_ips` is set, else the tag variant when
/// `tag` is set, else the formal config.
pub async fn publish(
    config: &ConfigService,
    max_content: usize,
    input: PublishInput,
) -> ConfigOpResult {
    validate::content(&input.content, max_content)?;
    let tag = optional_tag(input.tag.as_deref())?;
    let PublishInput {
        key,
        content,
        beta_ips,
        cas_md5,
        app_name,
        encrypted_data_key,
        config_tags,
        desc,
        usage,
        effect,
        schema,
        config_type,
        operator,
        ..
    } = input;

    // A beta (betaIps) or tag publish writes that variant only; the formal config is untouched.
    let gray = match (beta_ips, tag) {
        (Some(ips), _) => Some((Gray::Beta, split_list(Some(&ips)))),
        (None, Some(tag)) => Some((Gray::Tag(tag), Vec::new())),
        (None, None) => None,
    };
    if let Some((gray, beta_ips)) = gray {
        let variant = GrayPublish {
            key,
            content,
            beta_ips,
            app_name,
            encrypted_data_key,
            cas_md5,
            operator,
        };
        config.publish_gray(gray, variant).await?;
        return Ok(());
    }

    let tags = match config_tags {
        None => None,
        Some(raw) => {
            let tags = split_list(Some(&raw));
            if tags.len() > 5 {
                return Err(
                    ParamError::new("config_tags", "at most 5 config_tags are allowed").into(),
                );
            }
            if let Some(long) = tags.iter().find(|t| t.chars().count() > 64) {
                return Err(ParamError::new(
                    "config_tags",
                    format!("config tag '{long}' is longer than 64"),
                )
                .into());
            }
            Some(tags)
        }
    };
    let desc = limited("desc", desc, 128)?;
    let usage = limited("use", usage, 32)?;
    let effect = limited("effect", effect, 32)?;
    let config_type = config_type
        .filter(|t| CONFIG_TYPES.contains(&t.as_str()))
        .unwrap_or_else(|| DEFAULT_CONFIG_TYPE.to_string());
    config
        .publish(ConfigPublish {
            key,
            content,
            config_type: Some(config_type),
            app_name,
            desc,
            usage,
            effect,
            schema,
            tags,
            encrypted_data_key,
            cas_md5,
            operator,
        })
        .await?;
    Ok(())
}

/// Remove the formal config, or the tag variant when `tag` is given. Removing what does not
/// exist succeeds.
pub async fn remove(
    config: &ConfigService,
    key: &ConfigKey,
    tag: Option<&str>,
    operator: &Operator,
) -> ConfigOpResult {
    match optional_tag(tag)? {
        Some(tag) => {
            config.remove_gray(key, &Gray::Tag(tag)).await?;
        }
        None => {
            config.remove(key, operator).await?;
        }
    }
    Ok(())
}

impl From<ConfigOpError> for ServiceError {
    fn from(e: ConfigOpError) -> Self {
        match e {
            ConfigOpError::Param(p) => p.into(),
            ConfigOpError::Repo(r) => r.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalise_their_namespace() {
        let key = config_key("public", "G", "d").expect("valid");
        assert_eq!(key, ConfigKey::new("", "G", "d"));
        assert_eq!(config_key("", "G", "").expect_err("blank").param, "dataId");
        assert_eq!(
            config_key("a b", "G", "d").expect_err("tenant").param,
            "tenant"
        );
        assert_eq!(optional_tag(Some(" ")).expect("blank"), None);
        assert!(optional_tag(Some("a b")).is_err());
    }
}
