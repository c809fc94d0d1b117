//! Config operations shared by the v1 and v2 HTTP edges: each reads its parameters, calls the
//! config service and returns a plain value that each edge wraps in its own envelope.

use axum::response::{IntoResponse, Response};
use nacos_core::{ConfigKey, ConfigQuery, PageRequest};

use super::config_params::{config_key, config_namespace, operator, page_request, search_query};
use super::wire::{self, ConfigInfoJson, PageJson};
use super::{Params, ServiceError, ServiceResult};
use crate::app::AppState;
use crate::services::config::ops::{self, PublishInput};

/// A config read as the caller asks for it. `consistency=linearizable` (ours; Nacos has no
/// such parameter) first makes sure this node has applied every write committed before the
/// read began (embedded cluster: a Raft read barrier through the leader), then reads storage
/// instead of the cache. Without it reads are local and may trail a write made on another
/// node by the replication delay.
pub async fn read_state(
    app: &AppState,
    params: &Params,
    key: &nacos_core::ConfigKey,
) -> ServiceResult<std::sync::Arc<crate::services::config::KeyState>> {
    match params.get("consistency").unwrap_or("") {
        "" | "default" => Ok(app.config.state(key).await?),
        "linearizable" => {
            if let Some(raft) = &app.raft {
                raft.linearizable_barrier().await?;
            }
            Ok(app.config.state_uncached(key).await?)
        }
        other => Err(ServiceError::bad(format!(
            "consistency must be 'default' or 'linearizable', not '{other}'"
        ))),
    }
}

pub async fn search(app: &AppState, params: &Params, mode: &str) -> ServiceResult<Response> {
    let query = search_query(params, mode)?;
    let page = app.config.repo().search(&query).await?;
    Ok(axum::Json(PageJson::from_page(page, ConfigInfoJson::from)).into_response())
}

/// Validate and apply a publish (formal, beta or tag). Shared with the v2 edge.
pub async fn publish(app: &AppState, params: &Params) -> ServiceResult<()> {
    let key = config_key(params)?;
    let content = params
        .raw("content")
        .ok_or(ServiceError::missing("content"))?;
    let owned = |v: Option<&str>| v.map(str::to_string);
    let input = PublishInput {
        key,
        content: content.to_string(),
        tag: owned(params.get("tag")),
        beta_ips: owned(params.header("betaIps")),
        cas_md5: owned(params.header("casMd5")),
        app_name: owned(params.get("appName")),
        encrypted_data_key: owned(params.get("encryptedDataKey")),
        config_tags: owned(params.get_any(&["config_tags", "configTags"])),
        desc: owned(params.get("desc")),
        usage: owned(params.get("use")),
        effect: owned(params.get("effect")),
        schema: owned(params.get("schema")),
        config_type: owned(params.get("type")),
        operator: operator(params),
    };
    ops::publish(&app.config, app.settings.max_content, input).await?;
    app.metrics.config.publish.inc();
    Ok(())
}

/// Remove the formal config, or the tag variant when `tag` is given. Shared with v2.
pub async fn remove(app: &AppState, params: &Params, key: ConfigKey) -> ServiceResult<()> {
    ops::remove(&app.config, &key, params.get("tag"), &operator(params)).await?;
    Ok(())
}

/// One page of a key's history, newest first, without content.
pub async fn history_page(app: &AppState, params: &Params) -> ServiceResult<serde_json::Value> {
    let key = config_key(params)?;
    let page = page_request(params, 100, 500)?;
    let page = app.config.repo().history(&key, page).await?;
    Ok(
        serde_json::to_value(PageJson::from_page(page, |h| wire::history_info(&h, false)))
            .unwrap_or_default(),
    )
}

/// One history row by `nid`; it must belong to the given key.
pub async fn history_entry(app: &AppState, params: &Params) -> ServiceResult<serde_json::Value> {
    let nid: u64 = params.parse("nid")?.ok_or(ServiceError::missing("nid"))?;
    let key = config_key(params)?;
    match app.config.repo().history_entry(nid).await? {
        Some(entry) if entry.key == key => Ok(wire::history_info(&entry, true)),
        Some(_) => Err(ServiceError::param(
            "nid",
            "the history entry does not belong to this dataId, group and tenant",
        )),
        None => Err(ServiceError::NotFound(format!(
            "history entry {nid} not found"
        ))),
    }
}

/// The newest history row of a config id; the config must be the one the request names
/// (`dataId`, `group`, `tenant`), as Nacos 2.2+ requires, so an id cannot reach another key.
pub async fn previous_history(app: &AppState, params: &Params) -> ServiceResult<serde_json::Value> {
    let id: u64 = params.parse("id")?.ok_or(ServiceError::missing("id"))?;
    let key = config_key(params)?;
    match app.config.repo().previous_history(id).await? {
        Some(entry) if entry.key == key => Ok(wire::history_info(&entry, true)),
        Some(_) => Err(ServiceError::param(
            "id",
            "the config id does not belong to this dataId, group and tenant",
        )),
        None => Err(ServiceError::NotFound(format!(
            "no history for config id {id}"
        ))),
    }
}

/// Every config of a namespace as `ConfigInfoWrapper` (`ConfigInfo` + `lastModified`).
pub async fn namespace_configs(
    app: &AppState,
    params: &Params,
) -> ServiceResult<serde_json::Value> {
    let namespace = config_namespace(params, &["tenant", "namespaceId"])?;
    let page = app
        .config
        .repo()
        .search(&ConfigQuery::namespace(
            namespace,
            PageRequest::new(1, u32::MAX),
        ))
        .await?;
    let items: Vec<serde_json::Value> = page
        .items
        .into_iter()
        .map(|c| {
            let modified = c.modified_ms;
            let mut v = serde_json::to_value(ConfigInfoJson::from(c)).unwrap_or_default();
            v["lastModified"] = serde_json::Value::from(modified);
            v
        })
        .collect();
    Ok(serde_json::Value::Array(items))
}
