//! Small builders and calls shared by the cases.

use std::collections::BTreeMap;
use std::time::Duration;

use nacos_core::{
    ConfigItem, ConfigKey, ConfigPublish, ConfigQuery, DEFAULT_GROUP, GrayPublish, HistoryEntry,
    Instance, Namespace, Operator, PageRequest, Repos, ServiceKey, ServiceMeta,
};

/// The operator every case writes as, unless it checks operators.
pub fn operator() -> Operator {
    Operator {
        user: "conformance".to_string(),
        ip: "127.0.0.1".to_string(),
    }
}

/// A key in `DEFAULT_GROUP`.
pub fn key(namespace: &str, data_id: &str) -> ConfigKey {
    ConfigKey::new(namespace, DEFAULT_GROUP, data_id)
}

/// A publish of `content` with type `text` and every optional field unset.
pub fn publish(key: &ConfigKey, content: &str) -> ConfigPublish {
    ConfigPublish {
        key: key.clone(),
        content: content.to_string(),
        config_type: Some("text".to_string()),
        operator: operator(),
        ..ConfigPublish::default()
    }
}

/// A publish with every optional field set (the values derive from `tag`).
pub fn full_publish(key: &ConfigKey, content: &str, tag: &str) -> ConfigPublish {
    ConfigPublish {
        key: key.clone(),
        content: content.to_string(),
        config_type: Some("yaml".to_string()),
        app_name: Some(format!("app-{tag}")),
        desc: Some(format!("desc-{tag}")),
        usage: Some(format!("usage-{tag}")),
        effect: Some(format!("effect-{tag}")),
        schema: Some(format!("schema-{tag}")),
        tags: Some(vec![format!("t1-{tag}"), format!("t2-{tag}")]),
        encrypted_data_key: Some(format!("edk-{tag}")),
        cas_md5: None,
        operator: Operator {
            user: format!("user-{tag}"),
            ip: "10.1.1.1".to_string(),
        },
    }
}

/// A gray publish of `content`.
pub fn gray_publish(key: &ConfigKey, content: &str) -> GrayPublish {
    GrayPublish {
        key: key.clone(),
        content: content.to_string(),
        operator: operator(),
        ..GrayPublish::default()
    }
}

pub async fn must_publish(repos: &Repos, publish: ConfigPublish) -> ConfigItem {
    let what = format!("publish {:?}", publish.key);
    repos.configs.publish(publish).await.expect(&what)
}

pub async fn must_get(repos: &Repos, key: &ConfigKey) -> Option<ConfigItem> {
    repos.configs.get(key).await.expect("get config")
}

/// Every history row of a key, newest first.
pub async fn all_history(repos: &Repos, key: &ConfigKey) -> Vec<HistoryEntry> {
    repos
        .configs
        .history(key, PageRequest::new(1, 10_000))
        .await
        .expect("history")
        .items
}

/// A query of one namespace with no filters, first page of 100.
pub fn query(namespace: &str) -> ConfigQuery {
    ConfigQuery::namespace(namespace, PageRequest::new(1, 100))
}

/// Data ids of a page of search results, in order.
pub async fn search_ids(repos: &Repos, query: &ConfigQuery) -> Vec<String> {
    repos
        .configs
        .search(query)
        .await
        .expect("search")
        .items
        .into_iter()
        .map(|item| item.key.data_id)
        .collect()
}

pub fn namespace(id: &str, created_ms: i64) -> Namespace {
    Namespace {
        id: id.to_string(),
        name: format!("name of {id}"),
        desc: format!("desc of {id}"),
        created_ms,
        modified_ms: created_ms,
    }
}

pub fn service(name: &str) -> ServiceKey {
    ServiceKey::new("public", DEFAULT_GROUP, name)
}

/// A persistent service's settings with fixed timestamps.
pub fn service_meta(key: &ServiceKey) -> ServiceMeta {
    let mut meta = ServiceMeta::new(key.clone(), false);
    meta.protect_threshold = 0.5;
    meta.metadata = BTreeMap::from([("owner".to_string(), "conformance".to_string())]);
    meta.created_ms = 1_000;
    meta.modified_ms = 1_000;
    meta
}

/// A persistent instance in `cluster`.
pub fn instance(ip: &str, port: u16, cluster: &str) -> Instance {
    let mut instance = Instance::new(ip, port);
    instance.cluster = cluster.into();
    instance.ephemeral = false;
    instance
}

/// Sleep long enough that the wall clock moves past any millisecond already handed out.
pub async fn tick() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}
