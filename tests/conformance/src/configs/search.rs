//! Formal config searches: exact and glob filters, app name, tags, types, content, order and
//! pages.

use nacos_core::{ConfigKey, ConfigPublish, ConfigQuery, MatchMode, PageRequest, Repos};

use crate::fixtures::{full_publish, key, must_publish, publish, query, search_ids};

async fn publish_search_fixture(repos: &Repos) {
    for (group, data_id, content) in [
        ("G1", "app.yaml", "alpha"),
        ("G1", "app.yml", "beta"),
        ("G2", "db.yaml", "gamma"),
        ("G2", "app.yaml", "delta"),
    ] {
        must_publish(repos, publish(&ConfigKey::new("", group, data_id), content)).await;
    }
}

fn exact(namespace: &str) -> ConfigQuery {
    query(namespace)
}

fn blur(namespace: &str) -> ConfigQuery {
    ConfigQuery {
        mode: MatchMode::Blur,
        ..query(namespace)
    }
}

/// Exact search: non-empty filters match whole values; `*` is a literal.
pub async fn search_exact_filters(repos: &Repos) {
    publish_search_fixture(repos).await;
    let all = search_ids(repos, &exact("")).await;
    assert_eq!(
        all.len(),
        4,
        "no filters: everything in the namespace, got {all:?}"
    );
    let q = ConfigQuery {
        data_id: "app.yaml".to_string(),
        ..exact("")
    };
    assert_eq!(search_ids(repos, &q).await, vec!["app.yaml", "app.yaml"]);
    let q = ConfigQuery {
        data_id: "app.yaml".to_string(),
        group: "G2".to_string(),
        ..exact("")
    };
    let page = repos.configs.search(&q).await.expect("search");
    assert_eq!(page.total_count, 1);
    assert_eq!(page.items[0].key, ConfigKey::new("", "G2", "app.yaml"));
    assert_eq!(page.items[0].content, "delta");
    let q = ConfigQuery {
        data_id: "app".to_string(),
        ..exact("")
    };
    assert!(
        search_ids(repos, &q).await.is_empty(),
        "exact does not match a prefix"
    );
    let q = ConfigQuery {
        data_id: "app*".to_string(),
        ..exact("")
    };
    assert!(
        search_ids(repos, &q).await.is_empty(),
        "exact treats * literally"
    );
    let q = ConfigQuery {
        group: "G3".to_string(),
        ..exact("")
    };
    let page = repos.configs.search(&q).await.expect("search");
    assert_eq!(page.total_count, 0);
    assert!(page.items.is_empty());
}

/// Blur search: `*` matches any run of characters; without `*` a filter matches exactly.
pub async fn search_blur_globs(repos: &Repos) {
    publish_search_fixture(repos).await;
    let q = ConfigQuery {
        data_id: "app*".to_string(),
        ..blur("")
    };
    let mut got = search_ids(repos, &q).await;
    got.sort();
    assert_eq!(got, vec!["app.yaml", "app.yaml", "app.yml"]);
    let q = ConfigQuery {
        data_id: "*.yaml".to_string(),
        ..blur("")
    };
    let mut got = search_ids(repos, &q).await;
    got.sort();
    assert_eq!(got, vec!["app.yaml", "app.yaml", "db.yaml"]);
    let q = ConfigQuery {
        data_id: "*p.y*".to_string(),
        group: "G1".to_string(),
        ..blur("")
    };
    let mut got = search_ids(repos, &q).await;
    got.sort();
    assert_eq!(got, vec!["app.yaml", "app.yml"]);
    let q = ConfigQuery {
        data_id: "*".to_string(),
        ..blur("")
    };
    assert_eq!(search_ids(repos, &q).await.len(), 4, "* matches everything");
    let q = ConfigQuery {
        group: "G*".to_string(),
        ..blur("")
    };
    assert_eq!(
        search_ids(repos, &q).await.len(),
        4,
        "globs apply to groups too"
    );
    let q = ConfigQuery {
        data_id: "app".to_string(),
        ..blur("")
    };
    assert!(
        search_ids(repos, &q).await.is_empty(),
        "without * blur matches exactly"
    );
    let q = ConfigQuery {
        data_id: "db.yaml".to_string(),
        ..blur("")
    };
    assert_eq!(search_ids(repos, &q).await, vec!["db.yaml"]);
}

/// The app name filter matches exactly, in both modes.
pub async fn search_by_app_name(repos: &Repos) {
    must_publish(repos, full_publish(&key("", "one"), "1", "x")).await;
    must_publish(repos, full_publish(&key("", "two"), "2", "y")).await;
    must_publish(repos, publish(&key("", "three"), "3")).await;
    let q = ConfigQuery {
        app_name: "app-x".to_string(),
        ..exact("")
    };
    assert_eq!(search_ids(repos, &q).await, vec!["one"]);
    let q = ConfigQuery {
        app_name: "app-y".to_string(),
        ..blur("")
    };
    assert_eq!(search_ids(repos, &q).await, vec!["two"]);
    let q = ConfigQuery {
        app_name: "app-none".to_string(),
        ..exact("")
    };
    assert!(search_ids(repos, &q).await.is_empty());
}

/// The tags filter matches configs carrying any of the tags.
pub async fn search_by_tags(repos: &Repos) {
    let tagged = |data_id: &str, tags: &[&str]| ConfigPublish {
        tags: Some(tags.iter().map(|t| t.to_string()).collect()),
        ..publish(&key("", data_id), data_id)
    };
    must_publish(repos, tagged("red", &["red", "warm"])).await;
    must_publish(repos, tagged("blue", &["blue", "cold"])).await;
    must_publish(repos, tagged("plain", &[])).await;
    let q = ConfigQuery {
        tags: vec!["warm".to_string()],
        ..exact("")
    };
    assert_eq!(search_ids(repos, &q).await, vec!["red"]);
    let q = ConfigQuery {
        tags: vec!["cold".to_string(), "red".to_string()],
        ..exact("")
    };
    let mut got = search_ids(repos, &q).await;
    got.sort();
    assert_eq!(got, vec!["blue", "red"], "any of the tags matches");
    let q = ConfigQuery {
        tags: vec!["green".to_string()],
        ..exact("")
    };
    assert!(search_ids(repos, &q).await.is_empty());
}

/// The types filter matches configs of any of the types.
pub async fn search_by_types(repos: &Repos) {
    let typed = |data_id: &str, config_type: &str| ConfigPublish {
        config_type: Some(config_type.to_string()),
        ..publish(&key("", data_id), data_id)
    };
    must_publish(repos, typed("a", "yaml")).await;
    must_publish(repos, typed("b", "json")).await;
    must_publish(repos, typed("c", "properties")).await;
    let q = ConfigQuery {
        types: vec!["json".to_string()],
        ..exact("")
    };
    assert_eq!(search_ids(repos, &q).await, vec!["b"]);
    let q = ConfigQuery {
        types: vec!["yaml".to_string(), "properties".to_string()],
        ..exact("")
    };
    let mut got = search_ids(repos, &q).await;
    got.sort();
    assert_eq!(got, vec!["a", "c"]);
    let q = ConfigQuery {
        types: vec!["xml".to_string()],
        ..exact("")
    };
    assert!(search_ids(repos, &q).await.is_empty());
}

/// The content filter is a glob in blur mode and a whole-value match in exact mode.
pub async fn search_content_filter(repos: &Repos) {
    must_publish(
        repos,
        publish(&key("", "hay"), "a haystack with a needle inside"),
    )
    .await;
    must_publish(repos, publish(&key("", "straw"), "only straw")).await;
    let q = ConfigQuery {
        content: "*needle*".to_string(),
        ..blur("")
    };
    assert_eq!(search_ids(repos, &q).await, vec!["hay"]);
    let q = ConfigQuery {
        content: "only*".to_string(),
        ..blur("")
    };
    assert_eq!(search_ids(repos, &q).await, vec!["straw"]);
    let q = ConfigQuery {
        content: "needle".to_string(),
        ..blur("")
    };
    assert!(
        search_ids(repos, &q).await.is_empty(),
        "never a plain substring match"
    );
    let q = ConfigQuery {
        content: "only straw".to_string(),
        ..exact("")
    };
    assert_eq!(search_ids(repos, &q).await, vec!["straw"]);
}

/// Results are ordered by id; pages are cut with a total count; a page past the end is empty;
/// page size 0 returns only the count.
pub async fn search_orders_by_id_and_pages(repos: &Repos) {
    let mut ids = Vec::new();
    for data_id in ["e", "a", "d", "b", "c"] {
        ids.push(
            must_publish(repos, publish(&key("ns-page", data_id), data_id))
                .await
                .id,
        );
    }
    let mut by_id: Vec<(u64, &str)> = ids.iter().copied().zip(["e", "a", "d", "b", "c"]).collect();
    by_id.sort_unstable();
    let in_id_order: Vec<String> = by_id.iter().map(|(_, d)| d.to_string()).collect();

    let page = |no, size| ConfigQuery::namespace("ns-page", PageRequest::new(no, size));
    let all = repos.configs.search(&page(1, 100)).await.expect("search");
    let all_ids: Vec<String> = all.items.iter().map(|i| i.key.data_id.clone()).collect();
    assert_eq!(all_ids, in_id_order, "ordered by id ascending");
    assert_eq!(all.total_count, 5);
    assert_eq!(all.pages_available, 1);

    let first = repos.configs.search(&page(1, 2)).await.expect("page 1");
    assert_eq!(first.total_count, 5);
    assert_eq!(first.page_number, 1);
    assert_eq!(first.pages_available, 3);
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.items[0].key.data_id, in_id_order[0]);
    assert_eq!(first.items[1].key.data_id, in_id_order[1]);
    let second = repos.configs.search(&page(2, 2)).await.expect("page 2");
    assert_eq!(second.items[0].key.data_id, in_id_order[2]);
    let last = repos.configs.search(&page(3, 2)).await.expect("page 3");
    assert_eq!(last.items.len(), 1);
    assert_eq!(last.items[0].key.data_id, in_id_order[4]);
    let beyond = repos
        .configs
        .search(&page(4, 2))
        .await
        .expect("page past the end");
    assert!(beyond.items.is_empty(), "a page past the end is empty");
    assert_eq!(beyond.total_count, 5, "and still counts");
    let count_only = repos
        .configs
        .search(&page(1, 0))
        .await
        .expect("page size 0");
    assert!(count_only.items.is_empty());
    assert_eq!(count_only.total_count, 5);
    assert_eq!(count_only.pages_available, 0);
}
