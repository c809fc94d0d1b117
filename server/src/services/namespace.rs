//! Namespaces: validation and the public-namespace rules, over the namespace repository (and
//! the config repository for counts), shared by the v1 console and v2 edges.

use nacos_core::validate::{self, ParamError};
use nacos_core::{ConfigQuery, Namespace, PageRequest, Repos, now_millis};

use crate::foundation::error::ServiceError;

/// Namespace as the console shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceView {
    pub namespace: String,
    pub namespace_show_name: String,
    pub namespace_desc: String,
    pub quota: u32,
    pub config_count: u64,
    /// 0 global (public), 2 custom.
    #[serde(rename = "type")]
    pub kind: u8,
}

const QUOTA: u32 = 200;

async fn config_count(repos: &Repos, id: &str) -> Result<u64, ServiceError> {
    let page = repos
        .configs
        .search(&ConfigQuery::namespace(id, PageRequest::new(1, 0)))
        .await?;
    Ok(page.total_count)
}

fn view(ns: Namespace, count: u64) -> NamespaceView {
    NamespaceView {
        namespace: ns.id,
        namespace_show_name: ns.name,
        namespace_desc: ns.desc,
        quota: QUOTA,
        config_count: count,
        kind: 2,
    }
}

/// Public first, then the custom namespaces.
pub async fn list(repos: &Repos) -> Result<Vec<NamespaceView>, ServiceError> {
    let mut out = vec![NamespaceView {
        namespace: String::new(),
        namespace_show_name: "public".to_string(),
        namespace_desc: "Public Namespace".to_string(),
        quota: QUOTA,
        config_count: config_count(repos, "").await?,
        kind: 0,
    }];
    for ns in repos.namespaces.list().await? {
        let count = config_count(repos, &ns.id).await?;
        out.push(view(ns, count));
    }
    Ok(out)
}

pub async fn get(repos: &Repos, id: &str) -> Result<NamespaceView, ServiceError> {
    if id.is_empty() || id == "public" {
        return Ok(NamespaceView {
            namespace: String::new(),
            namespace_show_name: "Public".to_string(),
            namespace_desc: "Public Namespace".to_string(),
            quota: QUOTA,
            config_count: config_count(repos, "").await?,
            kind: 0,
        });
    }
    match repos.namespaces.get(id).await? {
        Some(ns) => {
            let count = config_count(repos, id).await?;
            Ok(view(ns, count))
        }
        None => Err(ServiceError::NotFound(format!(
            "namespace '{id}' does not exist"
        ))),
    }
}

pub async fn exists(repos: &Repos, id: &str) -> Result<bool, ServiceError> {
    Ok(id.is_empty() || id == "public" || repos.namespaces.get(id).await?.is_some())
}

/// Create; a blank id gets a random UUID. Returns the id.
pub async fn create(
    repos: &Repos,
    id: Option<&str>,
    name: &str,
    desc: &str,
) -> Result<String, ServiceError> {
    let id = match id {
        Some(id) => {
            if id.chars().count() > 128 {
                return Err(ServiceError::param(
                    "customNamespaceId",
                    "customNamespaceId is longer than 128",
                ));
            }
            if !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(ServiceError::param(
                    "customNamespaceId",
                    format!("illegal customNamespaceId '{id}': only [\\w-] is allowed"),
                ));
            }
            if id == "public" {
                return Err(ServiceError::param(
                    "customNamespaceId",
                    "'public' is reserved",
                ));
            }
            id.to_string()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    validate::namespace_show_name(name)
        .map_err(|e: ParamError| ServiceError::param("namespaceName", e.message))?;
    if desc.chars().count() > 256 {
        return Err(ServiceError::param(
            "namespaceDesc",
            "namespaceDesc is longer than 256",
        ));
    }
    let now = now_millis();
    repos
        .namespaces
        .create(Namespace {
            id: id.clone(),
            name: name.to_string(),
            desc: desc.to_string(),
            created_ms: now,
            modified_ms: now,
        })
        .await
        .map_err(|e| match e {
            nacos_core::RepoError::AlreadyExists(_) => {
                ServiceError::Conflict(format!("namespace '{id}' already exists"))
            }
            other => other.into(),
        })?;
    Ok(id)
}

pub async fn update(repos: &Repos, id: &str, name: &str, desc: &str) -> Result<(), ServiceError> {
    validate::namespace_show_name(name)
        .map_err(|e| ServiceError::param("namespaceShowName", e.message))?;
    if desc.chars().count() > 256 {
        return Err(ServiceError::param(
            "namespaceDesc",
            "namespaceDesc is longer than 256",
        ));
    }
    repos
        .namespaces
        .update(id, name, desc)
        .await
        .map_err(|e| match e {
            nacos_core::RepoError::NotFound(_) => {
                ServiceError::NotFound(format!("namespace '{id}' does not exist"))
            }
            other => other.into(),
        })
}

pub async fn delete(repos: &Repos, id: &str) -> Result<bool, ServiceError> {
    Ok(repos.namespaces.delete(id).await?)
}
