//! `/v1/cs`: the config OpenAPI of Nacos 1.x clients, over [`crate::services::config::ConfigService`].

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use nacos_core::{
    Action, ConfigKey, ConfigQuery, DEFAULT_CONFIG_TYPE, Gray, MatchMode, PageRequest, Resource,
};

use super::config_ops::{
    history_entry, history_page, namespace_configs, previous_history, publish, read_state, remove,
    search,
};
use super::config_params::{
    CONFIG_R, CONFIG_W, NAMESPACE_CONFIGS_R, config_key, config_namespace, coordinates,
    import_namespace, is_clone, is_import, operator, optional_tag, parse_ids, probed_configs,
    probes, publish_or_import,
};
use super::import_report;
use super::secured::{Caller, Guard, M, OPEN, Routes};
use super::wire;
use super::{Params, ServiceError, ServiceResult, rest_result, text};
use crate::app::AppState;
use crate::services::config::Selected;
use crate::services::config::listen::{self, Probe};

pub fn routes() -> Routes {
    Routes::new()
        .route(
            "/v1/cs/configs",
            get(get_configs).post(post_configs).delete(delete_configs),
            &[
                (M::Get, CONFIG_R),
                (M::Post, Guard::Config(Action::Write, publish_or_import)),
                (M::Delete, CONFIG_W),
            ],
        )
        .route(
            "/v1/cs/configs/listener",
            axum::routing::post(listener).get(super::console_api::config_listeners),
            &[
                (M::Post, Guard::Config(Action::Read, probed_configs)),
                (M::Get, CONFIG_R),
            ],
        )
        .route(
            "/v1/cs/configs/catalog",
            get(catalog),
            &[(M::Get, CONFIG_R)],
        )
        .route("/v1/cs/history", get(history), &[(M::Get, CONFIG_R)])
        .route(
            "/v1/cs/history/previous",
            get(history_previous),
            &[(M::Get, CONFIG_R)],
        )
        .route(
            "/v1/cs/history/configs",
            get(history_configs),
            &[(M::Get, NAMESPACE_CONFIGS_R)],
        )
        .route("/v1/cs/health", get(config_health), &[(M::Get, OPEN)])
}

/// `UP`, or `DOWN:` and why (Nacos's config health: its storage must be usable).
async fn config_health(State(app): State<AppState>) -> Response {
    match app.readiness_problem().await {
        None => text("UP"),
        Some(problem) => text(format!("DOWN:{problem}")),
    }
}

fn content_type_for(config_type: &str) -> &'static str {
    match config_type {
        "json" => "application/json;charset=UTF-8",
        "xml" => "application/xml;charset=UTF-8",
        "html" => "text/html;charset=UTF-8",
        _ => "text/plain;charset=UTF-8",
    }
}

fn no_cache(headers: &mut HeaderMap) {
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::EXPIRES,
        HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache,no-store"),
    );
}

fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

// ---------------------------------------------------------------------------------------------
// GET /v1/cs/configs

async fn get_configs(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    if let Some(mode) = params.get("search") {
        return search(&app, &params, mode).await;
    }
    if params.get("export").is_some_and(|v| v == "true") {
        return export(&app, &params, false).await;
    }
    if params.get("exportV2").is_some_and(|v| v == "true") {
        return export(&app, &params, true).await;
    }
    let key = config_key(&params)?;
    // Nacos counts every read of one config (formal, beta or tag).
    app.metrics.config.get_config.inc();
    if params.get("show") == Some("all") {
        let state = app.config.state(&key).await?;
        return Ok(match &state.formal {
            Some(item) => axum::Json(wire::config_all_info(item)).into_response(),
            None => text(""),
        });
    }
    if params.get("beta") == Some("true") {
        let state = app.config.state(&key).await?;
        let data = match (state.beta(), &state.formal) {
            (Some(beta), formal) => wire::config_beta_info(
                beta,
                formal
                    .as_ref()
                    .map_or(DEFAULT_CONFIG_TYPE, |f| f.config_type.as_str()),
            ),
            (None, _) => serde_json::Value::Null,
        };
        return Ok(rest_result(data, Some("query beta ok")));
    }
    let tag = optional_tag(&params)?;
    let auto_tag = params.header("Vipserver-Tag").map(str::to_string);
    let state = read_state(&app, &params, &key).await?;
    // The client address matters only when a beta exists.
    let client_ip = if state.beta().is_some() {
        params.client_ip()
    } else {
        ""
    };
    let Some(selected) = state.select(client_ip, tag.as_deref(), auto_tag.as_deref()) else {
        return Ok((
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
            "config data not exist\n",
        )
            .into_response());
    };
    if let Selected::Formal(item) = selected {
        return Ok(
            match state
                .formal_rendered
                .get_or_init(|| RenderedConfig::new(item))
            {
                Some(rendered) => rendered.response(),
                None => RenderedConfig::new(item).response(),
            },
        );
    }
    let config_type = state
        .formal
        .as_ref()
        .map_or(DEFAULT_CONFIG_TYPE, |f| f.config_type.as_str());
    let mut response = selected.content().to_string().into_response();
    let headers = response.headers_mut();
    put_config_headers(
        headers,
        config_type,
        selected.md5(),
        selected.modified_ms(),
        selected.encrypted_data_key(),
    );
    if matches!(selected, Selected::Beta(_)) {
        headers.insert(
            HeaderName::from_static("isbeta"),
            HeaderValue::from_static("true"),
        );
    }
    if let Selected::Tag(_) = selected
        && let Some(t) = tag.or(auto_tag)
    {
        headers.insert(HeaderName::from_static("tag"), header_value(&t));
    }
    Ok(response)
}

/// The headers of a v1 GET answer that every variant (formal, beta, tag) carries.
fn put_config_headers(
    headers: &mut HeaderMap,
    config_type: &str,
    md5: &str,
    modified_ms: i64,
    encrypted_data_key: &str,
) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type_for(config_type)),
    );
    headers.insert(
        HeaderName::from_static("config-type"),
        header_value(config_type),
    );
    headers.insert(HeaderName::from_static("content-md5"), header_value(md5));
    headers.insert(
        header::LAST_MODIFIED,
        header_value(&wire::http_date(modified_ms)),
    );
    no_cache(headers);
    if !encrypted_data_key.is_empty() {
        headers.insert(
            HeaderName::from_static("encrypted-data-key"),
            header_value(encrypted_data_key),
        );
    }
}

/// The v1 GET answer of a formal config, rendered once per cached version.
#[derive(Debug, Clone)]
pub struct RenderedConfig {
    body: Bytes,
    /// Every header of the answer: a clone per request copies them without hashing a name.
    headers: HeaderMap,
}

impl RenderedConfig {
    fn new(item: &nacos_core::ConfigItem) -> Self {
        let mut headers = HeaderMap::with_capacity(8);
        put_config_headers(
            &mut headers,
            &item.config_type,
            &item.md5,
            item.modified_ms,
            &item.encrypted_data_key,
        );
        RenderedConfig {
            body: Bytes::copy_from_slice(item.content.as_bytes()),
            headers,
        }
    }

    fn response(&self) -> Response {
        let mut response = Response::new(axum::body::Body::from(self.body.clone()));
        *response.headers_mut() = self.headers.clone();
        response
    }
}

async fn export(app: &AppState, params: &Params, v2: bool) -> ServiceResult<Response> {
    let namespace = config_namespace(params, &["tenant", "namespaceId"])?;
    let ids: Vec<u64> = parse_ids(params.get("ids").unwrap_or(""))?;
    let (_, group, data_id) = coordinates(params);
    let mut query = ConfigQuery::namespace(namespace, PageRequest::new(1, u32::MAX));
    query.mode = MatchMode::Blur;
    query.data_id = data_id.to_string();
    query.group = group.to_string();
    query.app_name = params.get("appName").unwrap_or("").to_string();
    let mut items = app.config.repo().search(&query).await?.items;
    if !ids.is_empty() {
        items.retain(|c| ids.contains(&c.id));
    }
    let now = nacos_core::now_millis();
    let zip = crate::services::config::archive::export_zip(&items, v2)
        .map_err(|e| ServiceError::Internal(format!("cannot build export archive: {e}")))?;
    let name = format!("nacos_config_export_{}.zip", wire::compact_timestamp(now));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment;filename={name}"),
            ),
        ],
        zip,
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// POST /v1/cs/configs

async fn post_configs(
    State(app): State<AppState>,
    caller: Caller,
    params: Params,
) -> ServiceResult<Response> {
    if is_clone(&params) {
        return clone_configs(&app, &caller, &params).await;
    }
    if is_import(&params) {
        return import(&app, &caller, &params).await;
    }
    publish(&app, &params).await?;
    Ok(text("true"))
}

/// One entry of a clone's JSON body: the source config's id and the key to write it under.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CloneEntry {
    cfg_id: serde_json::Value,
    data_id: String,
    group: String,
}

fn import_policy(params: &Params) -> ServiceResult<crate::services::config::archive::ImportPolicy> {
    use crate::services::config::archive::ImportPolicy;
    match params.get("policy").unwrap_or("ABORT") {
        "ABORT" => Ok(ImportPolicy::Abort),
        "SKIP" => Ok(ImportPolicy::Skip),
        "OVERWRITE" => Ok(ImportPolicy::Overwrite),
        other => Err(ServiceError::param(
            "policy",
            format!("invalid policy '{other}': ABORT, SKIP or OVERWRITE"),
        )),
    }
}

/// `POST /v1/cs/configs?clone=true&tenant=<target>&policy=`: copy configs (by id, from any
/// namespace the caller may read) into the target namespace under the `dataId` and `group`
/// each entry names. The JSON body is `[{cfgId, dataId, group}]`; the answer is an import
/// report.
async fn clone_configs(
    app: &AppState,
    caller: &Caller,
    params: &Params,
) -> ServiceResult<Response> {
    use crate::services::config::archive::{self, Import, ImportItem};
    let target = config_namespace(params, &["tenant", "namespaceId"])?;
    let policy = import_policy(params)?;
    let entries: Vec<CloneEntry> = serde_json::from_slice(&params.body).map_err(|e| {
        ServiceError::bad(format!(
            "the body must be a JSON array of {{cfgId, dataId, group}}: {e}"
        ))
    })?;
    if entries.is_empty() {
        return Ok(import_report::failure_response(
            archive::ImportFailure::new(100006, "no config selected"),
        ));
    }
    let mut ids = Vec::with_capacity(entries.len());
    for entry in &entries {
        let id = match &entry.cfg_id {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| ServiceError::bad(format!("invalid cfgId {} in the body", entry.cfg_id)))?;
        ids.push(id);
    }
    // Sources: configs of any namespace, found by id.
    let mut namespaces: Vec<String> = vec![String::new()];
    namespaces.extend(
        app.repos
            .namespaces
            .list()
            .await?
            .into_iter()
            .map(|n| n.id)
            .filter(|id| !id.is_empty()),
    );
    let mut sources = std::collections::HashMap::new();
    for namespace in namespaces {
        let page = app
            .config
            .repo()
            .search(&ConfigQuery::namespace(
                namespace,
                PageRequest::new(1, u32::MAX),
            ))
            .await?;
        for item in page.items.into_iter().filter(|c| ids.contains(&c.id)) {
            sources.insert(item.id, item);
        }
    }
    let mut items = Vec::with_capacity(entries.len());
    for (entry, id) in entries.iter().zip(&ids) {
        let Some(source) = sources.get(id) else {
            return Err(ServiceError::NotFound(format!("config id {id} not found")));
        };
        caller
            .check(app, &Resource::of_config(&source.key), Action::Read)
            .await?;
        let key = crate::services::config::ops::config_key(&target, &entry.group, &entry.data_id)?;
        caller
            .check(app, &Resource::of_config(&key), Action::Write)
            .await?;
        items.push(ImportItem {
            group: key.group,
            data_id: key.data_id,
            content: source.content.clone(),
            config_type: Some(source.config_type.clone()),
            app_name: Some(source.app_name.clone()).filter(|a| !a.is_empty()),
            desc: Some(source.desc.clone()).filter(|d| !d.is_empty()),
            unrecognized: None,
        });
    }
    let operator = operator(params);
    let report = archive::import_items(
        &app.config,
        app.repos.namespaces.as_ref(),
        app.settings.max_content,
        Import {
            namespace: &target,
            items,
            policy,
            operator: &operator,
        },
    )
    .await?;
    Ok(import_report::report_response(report))
}

/// `POST /v1/cs/configs?import=true`: a multipart `file` holding a Nacos export zip.
async fn import(app: &AppState, caller: &Caller, params: &Params) -> ServiceResult<Response> {
    use crate::services::config::archive::{self, Import};
    let namespace = import_namespace(params)?;
    let policy = import_policy(params)?;
    let content_type = params.header("content-type").unwrap_or("");
    let file = import_report::multipart_file(content_type, params.body.clone(), "file")
        .await
        .map_err(|m| ServiceError::param("file", m))?;
    // Decompressing is CPU work on untrusted input: keep it off the async workers.
    let parsed = tokio::task::spawn_blocking(move || archive::parse_import(&file))
        .await
        .map_err(|e| ServiceError::Internal(format!("import archive reader failed: {e}")))?;
    let items = match parsed {
        Ok(items) => items,
        Err(failure) => return Ok(import_report::failure_response(failure)),
    };
    // Every entry is a write of its own key: all must be allowed before any is written.
    for item in items.iter().filter(|i| i.unrecognized.is_none()) {
        let resource = Resource::config(&namespace, &item.group, &item.data_id);
        caller.check(app, &resource, Action::Write).await?;
    }
    let operator = operator(params);
    let report = archive::import_items(
        &app.config,
        app.repos.namespaces.as_ref(),
        app.settings.max_content,
        Import {
            namespace: &namespace,
            items,
            policy,
            operator: &operator,
        },
    )
    .await?;
    Ok(import_report::report_response(report))
}

// ---------------------------------------------------------------------------------------------
// DELETE /v1/cs/configs

async fn delete_configs(
    State(app): State<AppState>,
    caller: Caller,
    params: Params,
) -> ServiceResult<Response> {
    if params.get("delType") == Some("ids") {
        let ids = parse_ids(params.get("ids").ok_or(ServiceError::missing("ids"))?)?;
        let ids = ids_in_namespace(&app, &caller, &params, &ids).await?;
        app.config.remove_by_ids(&ids, &operator(&params)).await?;
        return Ok(rest_result(serde_json::Value::Bool(true), None));
    }
    let key = config_key(&params)?;
    if params.get("beta") == Some("true") {
        app.config.remove_gray(&key, &Gray::Beta).await?;
        return Ok(rest_result(
            serde_json::Value::Bool(true),
            Some("stop beta ok"),
        ));
    }
    remove(&app, &params, key).await?;
    Ok(text("true"))
}

/// The config ids of a delete by ids, each found in the namespace the request names and
/// allowed for the caller by its stored key. An id that is not a config of that namespace is
/// refused, so a delete cannot reach another namespace by id.
async fn ids_in_namespace(
    app: &AppState,
    caller: &Caller,
    params: &Params,
    ids: &[u64],
) -> ServiceResult<Vec<u64>> {
    let namespace = config_namespace(params, &["tenant", "namespaceId"])?;
    let page = app
        .config
        .repo()
        .search(&ConfigQuery::namespace(
            namespace.clone(),
            PageRequest::new(1, u32::MAX),
        ))
        .await?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(item) = page.items.iter().find(|c| c.id == *id) else {
            return Err(ServiceError::param(
                "ids",
                format!("config id {id} is not a config of namespace '{namespace}'"),
            ));
        };
        caller
            .check(app, &Resource::of_config(&item.key), Action::Write)
            .await?;
        found.push(*id);
    }
    Ok(found)
}

// ---------------------------------------------------------------------------------------------
// Long polling

async fn listener(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let probes = probes(&params)?;
    let auto_tag = params.header("Vipserver-Tag").map(str::to_string);
    let timeout_ms: Option<u64> = params
        .header("Long-Pulling-Timeout")
        .and_then(|v| v.parse().ok());
    let no_hangup = params.header("Long-Pulling-Timeout-No-Hangup") == Some("true");

    // Subscribe before comparing, so a change between the comparison and the wait is not lost.
    let mut subscription = timeout_ms.map(|_| {
        app.config
            .subscribe_poller(crate::services::config::hub::Poller {
                client_ip: params.client_ip().to_string(),
                md5s: probes
                    .iter()
                    .map(|p| (p.key.clone(), p.md5.clone()))
                    .collect(),
            })
    });
    let changed = changed_keys(&app, &probes, params.client_ip(), auto_tag.as_deref()).await?;

    let Some(timeout_ms) = timeout_ms else {
        return Ok(short_poll_response(&params, &changed));
    };
    if !changed.is_empty() || no_hangup {
        return Ok(poll_response(&changed));
    }
    // Nacos clients ask for 30 s; a larger ask is capped so a caller cannot pin connections.
    let hold = Duration::from_millis(
        timeout_ms
            .min(MAX_LONG_POLL_MS)
            .saturating_sub(500)
            .max(app.settings.long_poll_min_hold_ms),
    );
    let deadline = tokio::time::Instant::now() + hold;
    let Some(sub) = subscription.as_mut() else {
        return Ok(poll_response(&[]));
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Ok(poll_response(&[])),
            _ = app.shutdown.cancelled() => return Ok(poll_response(&[])),
            event = sub.changed() => {
                let Some(key) = event else { return Ok(poll_response(&[])) };
                let relevant: Vec<Probe> = probes.iter().filter(|p| p.key == key).cloned().collect();
                let changed = changed_keys(&app, &relevant, params.client_ip(), auto_tag.as_deref()).await?;
                if !changed.is_empty() {
                    return Ok(poll_response(&changed));
                }
            }
        }
    }
}

/// The longest a long poll is held, whatever the client asks for.
pub const MAX_LONG_POLL_MS: u64 = 120_000;

async fn changed_keys(
    app: &AppState,
    probes: &[Probe],
    client_ip: &str,
    auto_tag: Option<&str>,
) -> ServiceResult<Vec<ConfigKey>> {
    let mut changed = Vec::new();
    for probe in probes {
        let state = app.config.state(&probe.key).await?;
        if state.listen_md5(client_ip, auto_tag) != probe.md5 {
            changed.push(probe.key.clone());
        }
    }
    Ok(changed)
}

fn poll_response(changed: &[ConfigKey]) -> Response {
    let mut response = text(listen::encode_changed(changed));
    no_cache(response.headers_mut());
    response
}

/// Clients older than 2.0.4 (or that send no version) read short-poll answers from headers.
fn short_poll_response(params: &Params, changed: &[ConfigKey]) -> Response {
    let version = params.header("Client-Version").unwrap_or("2.0.0");
    if version_below(version, (2, 0, 4)) {
        let mut response = text("");
        let headers = response.headers_mut();
        headers.insert(
            HeaderName::from_static("probe-modify-response"),
            header_value(&listen::legacy_probe_header(changed)),
        );
        headers.insert(
            HeaderName::from_static("probe-modify-response-new"),
            header_value(listen::encode_changed(changed).trim_end()),
        );
        no_cache(headers);
        response
    } else {
        poll_response(changed)
    }
}

/// Compare a Nacos client version (`2.0.3`, `Nacos-Java-Client:v1.4.6`) with `min`.
fn version_below(version: &str, min: (u32, u32, u32)) -> bool {
    let digits = version.rsplit(['v', ':']).next().unwrap_or(version);
    let mut parts = digits
        .split('.')
        .map(|p| p.trim().parse::<u32>().unwrap_or(0));
    let found = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    found < min
}

// ---------------------------------------------------------------------------------------------
// Catalog and history

async fn catalog(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let key = config_key(&params)?;
    let state = app.config.state(&key).await?;
    let data = state
        .formal
        .as_ref()
        .map_or(serde_json::Value::Null, wire::config_advance_info);
    Ok(rest_result(data, None))
}

async fn history(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    let data = if params.get("search").is_some() {
        history_page(&app, &params).await?
    } else {
        history_entry(&app, &params).await?
    };
    Ok(axum::Json(data).into_response())
}

async fn history_previous(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    Ok(axum::Json(previous_history(&app, &params).await?).into_response())
}

async fn history_configs(State(app): State<AppState>, params: Params) -> ServiceResult<Response> {
    Ok(axum::Json(namespace_configs(&app, &params).await?).into_response())
}

// The history operations below are shared by the v1 and v2 edges; each edge wraps the JSON
// in its own envelope.

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_versions() {
        assert!(version_below("2.0.3", (2, 0, 4)));
        assert!(!version_below("2.0.4", (2, 0, 4)));
        assert!(version_below("Nacos-Java-Client:v1.4.6", (2, 0, 4)));
        assert!(!version_below("Nacos-Java-Client:v2.1.0", (2, 0, 4)));
    }
}
