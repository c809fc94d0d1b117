//! What a config request names, read from its parameters the way Nacos reads them, for every
//! config route of both HTTP versions: `tenant` (alias `namespaceId`), `group`, `dataId`, the
//! import target, long-poll probes, search filters, pages. The auth guards of the config routes
//! are built from the same functions, so a guard checks exactly the key its handler touches.

use nacos_core::{Action, ConfigKey, ConfigQuery, MatchMode, Operator, PageRequest, Resource};

use super::secured::Guard;
use super::{Params, ServiceError, ServiceResult};
use crate::services::config::listen::{self, Probe};
use crate::services::config::ops::{self, split_list};

/// Reads and writes of the config a request names (patterns for searches and exports).
pub const CONFIG_R: Guard = Guard::Config(Action::Read, named_config);

pub const CONFIG_W: Guard = Guard::Config(Action::Write, named_config);

/// Reads over a whole namespace.
pub const NAMESPACE_CONFIGS_R: Guard = Guard::Config(Action::Read, whole_namespace);

/// The namespace, group and data id a config request names, as every config handler reads
/// them: `tenant` (alias `namespaceId`), `group`, `dataId`; blank reads as empty.
pub(crate) fn coordinates(params: &Params) -> (&str, &str, &str) {
    (
        params.get_any(&["tenant", "namespaceId"]).unwrap_or(""),
        params.get("group").unwrap_or(""),
        params.get("dataId").unwrap_or(""),
    )
}

/// Guard: the config the request names; an empty group or data id (searches, exports) asks
/// for the whole group or namespace.
pub(crate) fn named_config(params: &Params) -> ServiceResult<Vec<Resource>> {
    let (_, group, data_id) = coordinates(params);
    let namespace = config_namespace(params, &["tenant", "namespaceId"])?;
    Ok(vec![Resource::config(&namespace, group, data_id)])
}

/// Guard: the whole namespace the request names.
pub(crate) fn whole_namespace(params: &Params) -> ServiceResult<Vec<Resource>> {
    let namespace = config_namespace(params, &["tenant", "namespaceId"])?;
    Ok(vec![Resource::config(&namespace, "", "")])
}

/// Guard of `POST /v1/cs/configs`: an import writes into its target namespace (each entry is
/// checked again by the import), a publish into the config it names.
pub(crate) fn publish_or_import(params: &Params) -> ServiceResult<Vec<Resource>> {
    if is_clone(params) {
        // The target namespace; each source is checked for reading and each target key for
        // writing by the clone itself.
        let namespace = config_namespace(params, &["tenant", "namespaceId"])?;
        return Ok(vec![Resource::config(&namespace, "", "")]);
    }
    if is_import(params) {
        let namespace = import_namespace(params)?;
        return Ok(vec![Resource::config(&namespace, "", "")]);
    }
    named_config(params)
}

/// Guard of the long poll: every probed config.
pub(crate) fn probed_configs(params: &Params) -> ServiceResult<Vec<Resource>> {
    Ok(probes(params)?
        .iter()
        .map(|p| Resource::of_config(&p.key))
        .collect())
}

pub(crate) fn is_clone(params: &Params) -> bool {
    params.get("clone").is_some_and(|v| v == "true")
}

pub(crate) fn is_import(params: &Params) -> bool {
    params.get("import").is_some_and(|v| v == "true")
}

/// The namespace an import writes into: `namespace`, else `tenant`.
pub(crate) fn import_namespace(params: &Params) -> ServiceResult<String> {
    config_namespace(params, &["namespace", "tenant"])
}

pub(crate) fn probes(params: &Params) -> ServiceResult<Vec<Probe>> {
    let raw = params.raw("Listening-Configs").ok_or(ServiceError::param(
        "Listening-Configs",
        "invalid probeModify",
    ))?;
    listen::parse_probes(raw).map_err(|m| ServiceError::param("Listening-Configs", m))
}

/// The config namespace: `public`, `null` and blank all mean the default namespace `""`.
pub fn config_namespace(params: &Params, names: &[&str]) -> ServiceResult<String> {
    Ok(ops::namespace(
        "tenant",
        params.get_any(names).unwrap_or(""),
    )?)
}

/// dataId + group + tenant, validated (a missing one reads as blank and is named).
pub fn config_key(params: &Params) -> ServiceResult<ConfigKey> {
    let (tenant, group, data_id) = coordinates(params);
    Ok(ops::config_key(tenant, group, data_id)?)
}

pub fn optional_tag(params: &Params) -> ServiceResult<Option<String>> {
    Ok(ops::optional_tag(params.get("tag"))?)
}

pub(crate) fn operator(params: &Params) -> Operator {
    Operator {
        user: params
            .get_any(&["src_user", "srcUser", "username"])
            .unwrap_or("")
            .to_string(),
        ip: params.client_ip().to_string(),
    }
}

pub(crate) fn page_request(
    params: &Params,
    default_size: u32,
    max_size: u32,
) -> ServiceResult<PageRequest> {
    let page_no: u32 = params.parse_or("pageNo", 1)?;
    let page_size: u32 = params.parse_or("pageSize", default_size)?;
    if page_no == 0 {
        return Err(ServiceError::param("pageNo", "pageNo must be at least 1"));
    }
    if page_size > max_size {
        return Err(ServiceError::param(
            "pageSize",
            format!("pageSize must be at most {max_size}"),
        ));
    }
    Ok(PageRequest::new(page_no, page_size))
}

pub fn search_query(params: &Params, mode: &str) -> ServiceResult<ConfigQuery> {
    let mode = match mode {
        "accurate" => MatchMode::Exact,
        "blur" => MatchMode::Blur,
        other => {
            return Err(ServiceError::param(
                "search",
                format!("invalid search mode '{other}': accurate or blur"),
            ));
        }
    };
    let (_, group, data_id) = coordinates(params);
    Ok(ConfigQuery {
        namespace: config_namespace(params, &["tenant", "namespaceId"])?,
        data_id: data_id.to_string(),
        group: group.to_string(),
        app_name: params.get("appName").unwrap_or("").to_string(),
        tags: split_list(params.get("config_tags")),
        types: split_list(params.get("types")),
        content: params.get("config_detail").unwrap_or("").to_string(),
        mode,
        page: page_request(params, 10, 500)?,
    })
}

pub(crate) fn parse_ids(raw: &str) -> ServiceResult<Vec<u64>> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u64>()
                .map_err(|_| ServiceError::param("ids", format!("invalid id '{s}' in ids")))
        })
        .collect()
}
