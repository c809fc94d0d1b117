//! What a naming request names, read from its parameters the way Nacos reads them, for every
//! naming route of both HTTP versions: the namespace, the service key (v1's grouping filter:
//! `group@@name` names its group, otherwise `groupName` or `DEFAULT_GROUP`), instances,
//! metadata, selectors, pages. The auth guards of the naming routes are built from the same
//! functions, so a guard checks exactly the key its handler touches.

use std::collections::BTreeMap;

use nacos_core::validate;
use nacos_core::{
    Action, DEFAULT_CLUSTER, DEFAULT_GROUP, Instance, PUBLIC_NAMESPACE, Resource, ServiceKey,
};
use serde_json::Value;

use super::secured::Guard;
use super::{Params, ServiceError, ServiceResult};
use crate::services::naming::ClientId;

/// Reads and writes of the service a v1 request names (`serviceName` through the grouping
/// filter, `groupName`, `namespaceId`).
pub const SERVICE_R: Guard = Guard::Naming(Action::Read, grouped_service);

pub const SERVICE_W: Guard = Guard::Naming(Action::Write, grouped_service);

/// Reads over every service of the namespace `namespaceId` names.
pub const NAMESPACE_SERVICES_R: Guard = Guard::Naming(Action::Read, whole_namespace);

/// Reads of every service of the group `/service/list` lists.
pub const LISTED_GROUP_R: Guard = Guard::Naming(Action::Read, listed_group);
/// Reads of the service `key` names (`/instance/statuses`).
pub const STATUSES_R: Guard = Guard::Naming(Action::Read, keyed_service);
/// Reads of the service the path of `/v2/ns/instance/statuses/{key}` names.
pub const PATH_STATUSES_R: Guard = Guard::Naming(Action::Read, path_keyed_service);
/// Reads of the service names of one namespace, or of all (`/service/names`).
pub const NAMES_R: Guard = Guard::Naming(Action::Read, named_namespaces);

/// `namespaceId`: blank means `public`.
pub fn naming_namespace(params: &Params) -> ServiceResult<String> {
    let ns = params.get("namespaceId").unwrap_or(PUBLIC_NAMESPACE);
    validate::namespace_id("namespaceId", ns)?;
    Ok(ns.to_string())
}

/// The v1 service key: namespace plus `serviceName` through the grouping filter.
pub fn grouped_service_key(params: &Params) -> ServiceResult<ServiceKey> {
    let namespace = naming_namespace(params)?;
    let raw = params.required("serviceName")?;
    let (group, name) = match raw.split_once("@@") {
        Some((group, name)) => {
            if group.trim().is_empty() {
                return Err(ServiceError::param(
                    "serviceName",
                    "Param 'serviceName' is illegal, groupName can't be empty",
                ));
            }
            if name.trim().is_empty() {
                return Err(ServiceError::param(
                    "serviceName",
                    "Param 'serviceName' is illegal, it should be format as 'groupName@@serviceName'",
                ));
            }
            (group, name)
        }
        None => (params.get("groupName").unwrap_or(DEFAULT_GROUP), raw),
    };
    validate::group_name(group)?;
    validate::service_name(name)?;
    Ok(ServiceKey::new(namespace, group, name))
}

/// Guard: the service of [`grouped_service_key`].
pub(crate) fn grouped_service(params: &Params) -> ServiceResult<Vec<Resource>> {
    Ok(vec![Resource::of_service(&grouped_service_key(params)?)])
}

/// Guard: every service of the namespace.
pub(crate) fn whole_namespace(params: &Params) -> ServiceResult<Vec<Resource>> {
    Ok(vec![Resource::naming(&naming_namespace(params)?, "", "")])
}

/// Guard of `/service/list`: every service of the listed group.
pub(crate) fn listed_group(params: &Params) -> ServiceResult<Vec<Resource>> {
    let (namespace, group) = listed_group_of(params)?;
    Ok(vec![Resource::naming(&namespace, group, "")])
}

/// Guard of `/instance/statuses`: the service of [`statuses_key`].
pub(crate) fn keyed_service(params: &Params) -> ServiceResult<Vec<Resource>> {
    Ok(vec![Resource::of_service(&statuses_key(params)?)])
}

/// Guard of `/v2/ns/instance/statuses/{key}`: the service of [`path_statuses_key`].
pub(crate) fn path_keyed_service(params: &Params) -> ServiceResult<Vec<Resource>> {
    Ok(vec![Resource::of_service(&path_statuses_key(params)?)])
}

/// Guard of `/service/names`: one namespace, or every namespace (`*`) when none is named.
pub(crate) fn named_namespaces(params: &Params) -> ServiceResult<Vec<Resource>> {
    let namespace = names_namespace(params)?;
    Ok(vec![Resource::naming(
        namespace.as_deref().unwrap_or("*"),
        "",
        "",
    )])
}

/// Metadata as Nacos accepts it: a JSON object (scalar values become strings) or
/// `k1=v1,k2=v2`. Blank is empty. Anything else is a 400 naming `metadata`.
pub fn parse_metadata(raw: &str) -> ServiceResult<BTreeMap<String, String>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(BTreeMap::new());
    }
    if raw.chars().count() > 1024 {
        return Err(ServiceError::param(
            "metadata",
            "invalid metadata, length exceeds 1024",
        ));
    }
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(raw) {
        return json_metadata(map).ok_or_else(|| {
            ServiceError::param("metadata", format!("metadata format incorrect:{raw}"))
        });
    }
    let mut out = BTreeMap::new();
    for pair in raw.split(',') {
        let kv: Vec<&str> = pair.split('=').collect();
        match kv.as_slice() {
            [k, v] if !k.trim().is_empty() => {
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => {
                return Err(ServiceError::param(
                    "metadata",
                    format!("metadata format incorrect:{raw}"),
                ));
            }
        }
    }
    Ok(out)
}

/// A JSON object as string metadata; `None` when a value is an object or an array.
pub(crate) fn json_metadata(
    map: serde_json::Map<String, Value>,
) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let v = match v {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            Value::Array(_) | Value::Object(_) => return None,
        };
        out.insert(k, v);
    }
    Some(out)
}

pub(crate) fn required_port(params: &Params) -> ServiceResult<u16> {
    params
        .parse::<u16>("port")?
        .ok_or(ServiceError::missing("port"))
}

pub(crate) fn required_ip(params: &Params) -> ServiceResult<String> {
    let ip = params.required("ip")?;
    validate::ip(ip)?;
    Ok(ip.to_string())
}

/// `clusterName` (alias `cluster`), default `DEFAULT`.
pub(crate) fn cluster_param(params: &Params) -> ServiceResult<String> {
    let cluster = params
        .get_any(&["clusterName", "cluster"])
        .unwrap_or(DEFAULT_CLUSTER);
    validate::cluster_name("clusterName", cluster)?;
    Ok(cluster.to_string())
}

/// The instance of a register or update request.
pub(crate) fn instance_from_params(params: &Params) -> ServiceResult<Instance> {
    let mut instance = Instance::new(required_ip(params)?, required_port(params)?);
    instance.cluster = cluster_param(params)?.into();
    instance.weight = params.parse_or("weight", 1.0f64)?;
    validate::weight(instance.weight)?;
    instance.healthy = params.bool("healthy")?.unwrap_or(true);
    instance.enabled = match params.bool("enabled")? {
        Some(e) => e,
        None => params.bool("enable")?.unwrap_or(true),
    };
    instance.ephemeral = params.bool("ephemeral")?.unwrap_or(true);
    instance.metadata = parse_metadata(params.get("metadata").unwrap_or(""))?;
    Ok(instance)
}

pub(crate) fn owner_of(instance: &Instance) -> ClientId {
    ClientId::ip_port(&instance.ip, instance.port, instance.ephemeral)
}

/// `selector`: JSON `{"type":"none"|"label",…}`, possibly URL-encoded once more. Blank is none.
pub fn parse_selector(params: &Params) -> ServiceResult<String> {
    let Some(raw) = params.get("selector") else {
        return Ok(r#"{"type":"none"}"#.to_string());
    };
    let parsed = serde_json::from_str::<Value>(raw).ok().or_else(|| {
        let decoded = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()?;
        serde_json::from_str::<Value>(&decoded).ok()
    });
    let bad = || ServiceError::param("selector", format!("invalid selector: {raw}"));
    let value = parsed.ok_or_else(bad)?;
    match value.get("type").and_then(Value::as_str) {
        Some("none") => Ok(value.to_string()),
        Some("label") => {
            let expression = value
                .get("expression")
                .and_then(Value::as_str)
                .unwrap_or_default();
            selected_labels(expression).map_err(|why| {
                ServiceError::param(
                    "selector",
                    format!("label selector expression '{expression}': {why}"),
                )
            })?;
            Ok(value.to_string())
        }
        _ => Err(ServiceError::param(
            "selector",
            format!("selector type is illegal: {raw}"),
        )),
    }
}

/// The labels a label selector compares, from its expression, with Nacos's grammar:
/// `CONSUMER.label.K = PROVIDER.label.K` terms joined by `&`, the same label on both sides,
/// whitespace ignored; a blank expression names none.
///
/// Nacos takes a consumer's and a provider's label values from a CMDB. Without one (this
/// server has none, nor has Nacos unless a CMDB plugin is installed) no provider has labels,
/// and Nacos then returns every provider: so a label selector here selects every instance,
/// and only its expression is checked, at write time.
pub fn selected_labels(expression: &str) -> Result<Vec<String>, &'static str> {
    let expression: String = expression.chars().filter(|c| !c.is_whitespace()).collect();
    if expression.is_empty() {
        return Ok(Vec::new());
    }
    let mut labels = Vec::new();
    for term in expression.split('&') {
        let (consumer, provider) = term
            .split_once('=')
            .ok_or("each term is CONSUMER.label.<name> = PROVIDER.label.<name>, joined by &")?;
        let consumer = consumer
            .strip_prefix("CONSUMER.label.")
            .ok_or("the left side of a term is CONSUMER.label.<name>")?;
        let provider = provider
            .strip_prefix("PROVIDER.label.")
            .ok_or("the right side of a term is PROVIDER.label.<name>")?;
        if consumer.is_empty() || consumer != provider {
            return Err("both sides of a term name the same label");
        }
        labels.push(consumer.to_string());
    }
    Ok(labels)
}

pub fn protect_threshold(params: &Params) -> ServiceResult<Option<f32>> {
    let value = params.parse::<f32>("protectThreshold")?;
    if value.is_some_and(|v| !v.is_finite()) {
        return Err(ServiceError::param(
            "protectThreshold",
            "protectThreshold must be a number",
        ));
    }
    Ok(value)
}

/// The namespace and group `/service/list` lists (`groupName` defaults to `DEFAULT_GROUP`).
pub(super) fn listed_group_of(params: &Params) -> ServiceResult<(String, &str)> {
    let namespace = naming_namespace(params)?;
    let group = params.get("groupName").unwrap_or(DEFAULT_GROUP);
    validate::group_name(group)?;
    Ok((namespace, group))
}

/// The service `/instance/statuses` names in `key` = `[namespace##]group@@service` (no `@@`:
/// `DEFAULT_GROUP`); the other naming parameters are not read.
pub(crate) fn statuses_key(params: &Params) -> ServiceResult<ServiceKey> {
    parse_statuses_key(params.required("key")?)
}

/// The service `/v2/ns/instance/statuses/{key}` names in its last path segment, read as
/// [`statuses_key`] reads `key`.
pub(crate) fn path_statuses_key(params: &Params) -> ServiceResult<ServiceKey> {
    let raw = params
        .last_path_segment()
        .ok_or(ServiceError::missing("key"))?;
    parse_statuses_key(&raw)
}

fn parse_statuses_key(raw: &str) -> ServiceResult<ServiceKey> {
    let (namespace, grouped) = match raw.split_once("##") {
        Some((ns, rest)) if !ns.trim().is_empty() => (ns, rest),
        Some((_, rest)) => (PUBLIC_NAMESPACE, rest),
        None => (PUBLIC_NAMESPACE, raw),
    };
    let (group, name) = grouped.split_once("@@").unwrap_or((DEFAULT_GROUP, grouped));
    if name.trim().is_empty() || group.trim().is_empty() {
        return Err(ServiceError::param(
            "key",
            "Param 'key' is illegal, it should be format as '[namespace##]groupName@@serviceName'",
        ));
    }
    validate::namespace_id("key", namespace)?;
    Ok(ServiceKey::new(namespace, group, name))
}

/// The namespace `/service/names` lists, `None` for all of them.
pub(crate) fn names_namespace(params: &Params) -> ServiceResult<Option<String>> {
    match params.get("namespaceId") {
        None => Ok(None),
        Some(_) => Ok(Some(naming_namespace(params)?)),
    }
}

pub(crate) fn page_of<T>(items: Vec<T>, page_no: usize, page_size: usize) -> Vec<T> {
    let start = page_no.max(1).saturating_sub(1).saturating_mul(page_size);
    items.into_iter().skip(start).take(page_size).collect()
}

pub(crate) fn required_page(params: &Params) -> ServiceResult<(usize, usize)> {
    let page_no = params
        .parse::<usize>("pageNo")?
        .ok_or(ServiceError::missing("pageNo"))?;
    let page_size = params
        .parse::<usize>("pageSize")?
        .ok_or(ServiceError::missing("pageSize"))?;
    Ok((page_no, page_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selector_expressions_follow_nacos_grammar() {
        let labels = |e| selected_labels(e).expect(e);
        assert!(labels("").is_empty());
        assert!(labels("  ").is_empty());
        assert_eq!(labels("CONSUMER.label.A = PROVIDER.label.A"), ["A"]);
        assert_eq!(
            labels(
                " CONSUMER.label.zone=PROVIDER.label.zone & CONSUMER.label.b = PROVIDER.label.b"
            ),
            ["zone", "b"]
        );
        for bad in [
            "CONSUMER.label.A = PROVIDER.label.B",
            "PROVIDER.label.A = CONSUMER.label.A",
            "CONSUMER.label.A",
            "CONSUMER.label.A = PROVIDER.label.A &",
            "CONSUMER.label.A = PROVIDER.label.A && CONSUMER.label.B = PROVIDER.label.B",
            "CONSUMER.label. = PROVIDER.label.",
            "CONSUMER.label.A = PROVIDER.label.A = PROVIDER.label.A",
            "consumer.label.A = provider.label.A",
        ] {
            assert!(selected_labels(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_forms() {
        let m = parse_metadata(r#"{"a":"1","b":2,"c":true}"#).expect("json");
        assert_eq!(m.get("b").map(String::as_str), Some("2"));
        assert_eq!(m.get("c").map(String::as_str), Some("true"));
        let kv = parse_metadata("k1=v1,k2=v2").expect("kv");
        assert_eq!(kv.len(), 2);
        assert!(parse_metadata(r#"{"a":"#).is_err());
        assert!(parse_metadata(r#"{"a":{"b":1}}"#).is_err());
        assert!(parse_metadata("k1").is_err());
        assert!(parse_metadata("").expect("blank").is_empty());
        let err = parse_metadata("{bad").expect_err("bad");
        assert!(matches!(
            err,
            ServiceError::BadRequest {
                param: Some("metadata"),
                ..
            }
        ));
    }

    #[test]
    fn statuses_key_from_the_path() {
        let with_path = |path: &str| Params::from_query("").at_path(path);
        let key = path_statuses_key(&with_path(
            "/nacos/v2/ns/instance/statuses/ns1%23%23G%40%40s",
        ))
        .expect("key");
        assert_eq!(key, ServiceKey::new("ns1", "G", "s"));
        let key = path_statuses_key(&with_path("/v2/ns/instance/statuses/s")).expect("key");
        assert_eq!(key, ServiceKey::new("public", "DEFAULT_GROUP", "s"));
        // The path wins over any `key` parameter: guard and handler both read the path.
        let params = Params::from_query("key=ns2%23%23G%40%40s")
            .at_path("/v2/ns/instance/statuses/ns1%23%23G%40%40s");
        assert_eq!(path_statuses_key(&params).expect("key").namespace, "ns1");
        for bad in [
            "/statuses/",
            "/statuses/G%40%40",
            "/statuses/%40%40s",
            "/statuses/%FF",
        ] {
            assert!(path_statuses_key(&with_path(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn grouping_filter() {
        let key = grouped_service_key(&Params::from_query("serviceName=g1@@s1")).expect("key");
        assert_eq!(key, ServiceKey::new("public", "g1", "s1"));
        let key = grouped_service_key(&Params::from_query(
            "serviceName=s1&groupName=g2&namespaceId=ns",
        ))
        .expect("key");
        assert_eq!(key, ServiceKey::new("ns", "g2", "s1"));
        let key =
            grouped_service_key(&Params::from_query("serviceName=s1&namespaceId=")).expect("key");
        assert_eq!(key, ServiceKey::new("public", "DEFAULT_GROUP", "s1"));
        assert!(grouped_service_key(&Params::from_query("serviceName=@@s")).is_err());
        assert!(grouped_service_key(&Params::from_query("serviceName=g@@")).is_err());
        assert!(grouped_service_key(&Params::from_query("serviceName=a@@b@@c")).is_err());
        assert!(grouped_service_key(&Params::from_query("groupName=g")).is_err());
    }
}
