//! Formal configs: publish, get, CAS, remove, isolation, content round-trips, concurrency and
//! the change index; searches in [`search`] (their cases belong to this area too).

mod search;

pub use search::*;

use std::collections::BTreeSet;

use nacos_core::{
    ConfigKey, ConfigPublish, ConfigQuery, MatchMode, Operator, RepoError, Repos, md5_hex,
    now_millis,
};

use super::fixtures::{
    all_history, full_publish, key, must_get, must_publish, operator, publish, query, search_ids,
    tick,
};

/// Insert assigns an id and stores every field as sent; `get` returns the stored row.
pub async fn publish_insert_then_get(repos: &Repos) {
    let k = key("", "insert.yaml");
    let before = now_millis();
    let item = must_publish(repos, full_publish(&k, "a: 1", "x")).await;
    assert!(item.id > 0, "insert assigns a positive id, got {}", item.id);
    assert_eq!(item.key, k);
    assert_eq!(item.content, "a: 1");
    assert_eq!(item.md5, md5_hex("a: 1"));
    assert_eq!(item.config_type, "yaml");
    assert_eq!(item.app_name, "app-x");
    assert_eq!(item.desc, "desc-x");
    assert_eq!(item.usage, "usage-x");
    assert_eq!(item.effect, "effect-x");
    assert_eq!(item.schema, "schema-x");
    assert_eq!(item.tags, vec!["t1-x".to_string(), "t2-x".to_string()]);
    assert_eq!(item.encrypted_data_key, "edk-x");
    assert_eq!(item.src_user, "user-x");
    assert_eq!(item.src_ip, "10.1.1.1");
    assert!(
        item.created_ms >= before - 1_000,
        "created_ms {} is now-ish",
        item.created_ms
    );
    assert!(
        item.modified_ms >= item.created_ms,
        "modified_ms not before created_ms"
    );

    let got = must_get(repos, &k)
        .await
        .expect("the inserted config is found");
    assert_eq!(got, item, "get returns the row publish returned");

    // Unset optional fields are empty on insert.
    let bare = must_publish(repos, publish(&key("", "bare.txt"), "plain")).await;
    assert_eq!(bare.app_name, "");
    assert_eq!(bare.desc, "");
    assert!(
        bare.tags.is_empty(),
        "no tags on a bare insert: {:?}",
        bare.tags
    );
    assert_eq!(bare.encrypted_data_key, "");
}

/// `get` of a key never published is `None`, not an error.
pub async fn get_missing_returns_none(repos: &Repos) {
    assert_eq!(must_get(repos, &key("", "never")).await, None);
    assert_eq!(
        must_get(repos, &key("no-such-namespace", "never")).await,
        None
    );
}

/// The md5 is the lowercase hex MD5 of the UTF-8 content, on insert and update.
pub async fn md5_is_lowercase_hex_of_content(repos: &Repos) {
    let k = key("", "md5");
    let item = must_publish(repos, publish(&k, "helloWorld")).await;
    assert_eq!(item.md5, "1a833da63a6b7e20098dae06d06602e1");
    let item = must_publish(repos, publish(&k, "配置中心 ✓")).await;
    assert_eq!(item.md5, md5_hex("配置中心 ✓"));
    assert_eq!(item.md5.len(), 32);
    assert!(
        item.md5
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    );
    assert_eq!(must_get(repos, &k).await.expect("exists").md5, item.md5);
}

/// Update keeps the id and created time and every field sent as `None`.
pub async fn update_keeps_id_created_and_unspecified_fields(repos: &Repos) {
    let k = key("", "update.yaml");
    let first = must_publish(repos, full_publish(&k, "v1", "x")).await;
    tick().await;
    let update = ConfigPublish {
        operator: Operator {
            user: "second".to_string(),
            ip: "10.2.2.2".to_string(),
        },
        config_type: None,
        ..publish(&k, "v2")
    };
    let second = must_publish(repos, update).await;
    assert_eq!(second.id, first.id, "update keeps the id");
    assert_eq!(
        second.created_ms, first.created_ms,
        "update keeps created_ms"
    );
    assert!(
        second.modified_ms >= first.modified_ms,
        "modified_ms does not go back"
    );
    assert_eq!(second.content, "v2");
    assert_eq!(second.md5, md5_hex("v2"));
    assert_eq!(second.config_type, "yaml", "None keeps the type");
    assert_eq!(second.app_name, "app-x", "None keeps app_name");
    assert_eq!(second.desc, "desc-x", "None keeps desc");
    assert_eq!(second.usage, "usage-x", "None keeps usage");
    assert_eq!(second.effect, "effect-x", "None keeps effect");
    assert_eq!(second.schema, "schema-x", "None keeps schema");
    assert_eq!(second.tags, first.tags, "None keeps tags");
    assert_eq!(
        second.encrypted_data_key, "edk-x",
        "None keeps encrypted_data_key"
    );
    assert_eq!(
        second.src_user, "second",
        "the operator of the update is recorded"
    );
    assert_eq!(second.src_ip, "10.2.2.2");
    assert_eq!(must_get(repos, &k).await, Some(second));
}

/// Update replaces fields that are sent, including with empty values.
pub async fn update_overwrites_specified_fields(repos: &Repos) {
    let k = key("", "overwrite.yaml");
    let first = must_publish(repos, full_publish(&k, "v1", "x")).await;
    let second = must_publish(repos, full_publish(&k, "v2", "y")).await;
    assert_eq!(second.id, first.id);
    assert_eq!(second.app_name, "app-y");
    assert_eq!(second.desc, "desc-y");
    assert_eq!(second.tags, vec!["t1-y".to_string(), "t2-y".to_string()]);
    assert_eq!(second.encrypted_data_key, "edk-y");
    let cleared = ConfigPublish {
        app_name: Some(String::new()),
        tags: Some(Vec::new()),
        config_type: Some("json".to_string()),
        ..publish(&k, "v3")
    };
    let third = must_publish(repos, cleared).await;
    assert_eq!(third.app_name, "", "Some(\"\") clears app_name");
    assert!(
        third.tags.is_empty(),
        "Some(vec![]) clears tags: {:?}",
        third.tags
    );
    assert_eq!(third.config_type, "json");
    assert_eq!(third.desc, "desc-y", "None still keeps desc");
    assert_eq!(must_get(repos, &k).await, Some(third));
}

/// Ids are unique across keys and namespaces and are not reused after a delete.
pub async fn ids_are_unique_and_never_reused(repos: &Repos) {
    let a = must_publish(repos, publish(&key("", "same"), "a")).await;
    let b = must_publish(repos, publish(&key("ns-ids", "same"), "b")).await;
    let c = must_publish(repos, publish(&key("", "other"), "c")).await;
    let mut seen = BTreeSet::from([a.id, b.id, c.id]);
    assert_eq!(seen.len(), 3, "three configs, three ids: {seen:?}");
    repos
        .configs
        .remove(&a.key, &operator())
        .await
        .expect("remove a")
        .expect("a existed");
    let again = must_publish(repos, publish(&key("", "same"), "a again")).await;
    assert!(
        seen.insert(again.id),
        "id {} was reused after a delete",
        again.id
    );
}

/// CAS with the stored md5 succeeds.
pub async fn cas_match_succeeds(repos: &Repos) {
    let k = key("", "cas-ok");
    let first = must_publish(repos, publish(&k, "v1")).await;
    let cas = ConfigPublish {
        cas_md5: Some(first.md5.clone()),
        ..publish(&k, "v2")
    };
    let second = must_publish(repos, cas).await;
    assert_eq!(second.content, "v2");
    assert_eq!(second.id, first.id);
    assert_eq!(must_get(repos, &k).await.expect("exists").content, "v2");
    assert_eq!(
        all_history(repos, &k).await.len(),
        2,
        "insert and update are in history"
    );
}

/// CAS with another md5 fails with `PreconditionFailed` and writes nothing: the row and its
/// history are unchanged.
pub async fn cas_mismatch_fails_and_changes_nothing(repos: &Repos) {
    let k = key("", "cas-bad");
    must_publish(repos, full_publish(&k, "v1", "x")).await;
    let before = must_get(repos, &k).await;
    let history_before = all_history(repos, &k).await;
    let cas = ConfigPublish {
        cas_md5: Some(md5_hex("something else")),
        ..publish(&k, "v2")
    };
    assert_err!(
        repos.configs.publish(cas).await,
        RepoError::PreconditionFailed(_),
        "CAS with a stale md5"
    );
    assert_eq!(must_get(repos, &k).await, before, "the row is unchanged");
    assert_eq!(
        all_history(repos, &k).await,
        history_before,
        "no history was written"
    );
}

/// CAS against a missing config fails and creates nothing.
pub async fn cas_on_missing_config_fails(repos: &Repos) {
    let k = key("", "cas-missing");
    let cas = ConfigPublish {
        cas_md5: Some(md5_hex("v0")),
        ..publish(&k, "v1")
    };
    assert_err!(
        repos.configs.publish(cas).await,
        RepoError::PreconditionFailed(_),
        "CAS on a missing config"
    );
    assert_eq!(must_get(repos, &k).await, None, "nothing was created");
    assert!(
        all_history(repos, &k).await.is_empty(),
        "no history was written"
    );
}

/// Remove returns the deleted row; a second remove returns `None` and writes nothing.
pub async fn remove_returns_row_then_none(repos: &Repos) {
    let k = key("", "remove");
    let item = must_publish(repos, full_publish(&k, "bye", "x")).await;
    let removed = repos.configs.remove(&k, &operator()).await.expect("remove");
    assert_eq!(removed, Some(item), "remove returns the stored row");
    assert_eq!(must_get(repos, &k).await, None, "removed config is gone");
    let again = repos
        .configs
        .remove(&k, &operator())
        .await
        .expect("second remove");
    assert_eq!(again, None, "second remove finds nothing");
    assert_eq!(
        all_history(repos, &k).await.len(),
        2,
        "only I and D rows, no second D"
    );
}

/// `remove_by_ids` removes the known ids, skips unknown ones, and returns the deleted rows.
pub async fn remove_by_ids_removes_known_and_skips_unknown(repos: &Repos) {
    let a = must_publish(repos, publish(&key("", "batch-a"), "a")).await;
    let b = must_publish(repos, publish(&key("", "batch-b"), "b")).await;
    let c = must_publish(repos, publish(&key("other-ns", "batch-c"), "c")).await;
    let unknown = a.id.max(b.id).max(c.id) + 1_000_000;
    let removed = repos
        .configs
        .remove_by_ids(&[a.id, unknown, c.id], &operator())
        .await
        .expect("batch");
    let mut removed_ids: Vec<u64> = removed.iter().map(|item| item.id).collect();
    removed_ids.sort_unstable();
    let mut expected = vec![a.id, c.id];
    expected.sort_unstable();
    assert_eq!(
        removed_ids, expected,
        "the known ids are removed, the unknown one skipped"
    );
    assert!(
        removed.contains(&a) && removed.contains(&c),
        "the deleted rows are returned whole"
    );
    assert_eq!(must_get(repos, &a.key).await, None);
    assert_eq!(must_get(repos, &c.key).await, None);
    assert_eq!(
        must_get(repos, &b.key).await,
        Some(b.clone()),
        "b is untouched"
    );
    for item in [&a, &c] {
        let history = all_history(repos, &item.key).await;
        assert_eq!(
            history.first().map(|h| h.op),
            Some(nacos_core::HistoryOp::Delete)
        );
    }
    let none = repos
        .configs
        .remove_by_ids(&[], &operator())
        .await
        .expect("empty batch");
    assert!(none.is_empty());
    let none = repos
        .configs
        .remove_by_ids(&[unknown], &operator())
        .await
        .expect("unknown");
    assert!(none.is_empty());
}

/// The same group and dataId in two namespaces are two configs; neither namespace sees the
/// other's.
pub async fn namespace_isolation(repos: &Repos) {
    let public = key("", "shared.yaml");
    let tenant = key("ns-iso", "shared.yaml");
    let a = must_publish(repos, publish(&public, "public content")).await;
    let b = must_publish(repos, publish(&tenant, "tenant content")).await;
    assert_ne!(a.id, b.id, "two configs, two ids");
    assert_eq!(
        must_get(repos, &public).await.expect("public").content,
        "public content"
    );
    assert_eq!(
        must_get(repos, &tenant).await.expect("tenant").content,
        "tenant content"
    );
    let public_page = repos
        .configs
        .search(&query(""))
        .await
        .expect("search public");
    assert_eq!(public_page.total_count, 1);
    assert_eq!(public_page.items[0].id, a.id);
    let tenant_page = repos
        .configs
        .search(&query("ns-iso"))
        .await
        .expect("search tenant");
    assert_eq!(tenant_page.total_count, 1);
    assert_eq!(tenant_page.items[0].id, b.id);
    let q = ConfigQuery {
        data_id: "*".to_string(),
        mode: MatchMode::Blur,
        ..query("ns-other")
    };
    assert!(
        search_ids(repos, &q).await.is_empty(),
        "a third namespace is empty"
    );

    repos
        .configs
        .remove(&public, &operator())
        .await
        .expect("remove")
        .expect("existed");
    assert_eq!(
        must_get(repos, &tenant).await,
        Some(b),
        "removing one keeps the other"
    );
    assert_eq!(
        all_history(repos, &tenant).await.len(),
        1,
        "history is per namespace too"
    );
}

/// Non-ASCII and awkward characters round-trip exactly.
pub async fn unicode_content_round_trips(repos: &Repos) {
    let k = key("", "unicode.txt");
    let content = "中文配置 — 日本語 — 한국어 — emoji 🚀🔥 — combining e\u{301} — \
                   quotes \"'` — backslash \\ — tab\t — newline\n— CRLF\r\n— end";
    let item = must_publish(repos, publish(&k, content)).await;
    assert_eq!(item.content, content);
    assert_eq!(item.md5, md5_hex(content));
    let got = must_get(repos, &k).await.expect("exists");
    assert_eq!(got.content, content, "content round-trips byte for byte");
    must_publish(repos, publish(&k, "after")).await;
    let history = all_history(repos, &k).await;
    assert_eq!(
        history[0].content, content,
        "history keeps the unicode content too"
    );
}

/// Content over 1 MiB round-trips, in the row and in history.
pub async fn big_content_round_trips(repos: &Repos) {
    let k = key("", "big.txt");
    let line = "0123456789abcdefghijklmnopqrstuvwxyz-配置-\n";
    let big: String = line.repeat((1024 * 1024 + 4096) / line.len() + 1);
    assert!(big.len() > 1024 * 1024);
    let item = must_publish(repos, publish(&k, &big)).await;
    assert_eq!(item.md5, md5_hex(&big));
    let got = must_get(repos, &k).await.expect("exists");
    assert_eq!(got.content.len(), big.len());
    assert!(got.content == big, "big content round-trips");
    must_publish(repos, publish(&k, "small")).await;
    let history = all_history(repos, &k).await;
    assert!(
        history[0].content == big,
        "the update's history row holds the big content"
    );
}

/// Publishes to different keys from several tasks at once all land, with distinct ids.
pub async fn concurrent_publishes_all_land(repos: &Repos) {
    const TASKS: usize = 8;
    const EACH: usize = 5;
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let repos = repos.clone();
        handles.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..EACH {
                let k = key("ns-conc", &format!("task{task}-config{n}"));
                let item = repos
                    .configs
                    .publish(publish(&k, &format!("{task}/{n}")))
                    .await
                    .expect("concurrent publish");
                ids.push(item.id);
            }
            ids
        }));
    }
    let mut ids = BTreeSet::new();
    for handle in handles {
        for id in handle.await.expect("task finished") {
            assert!(ids.insert(id), "id {id} handed out twice");
        }
    }
    assert_eq!(ids.len(), TASKS * EACH);
    for task in 0..TASKS {
        for n in 0..EACH {
            let k = key("ns-conc", &format!("task{task}-config{n}"));
            let got = must_get(repos, &k).await.expect("every publish landed");
            assert_eq!(got.content, format!("{task}/{n}"));
        }
    }
    let page = repos
        .configs
        .search(&query("ns-conc"))
        .await
        .expect("search");
    assert_eq!(page.total_count, (TASKS * EACH) as u64);
}

/// `changed_since` lists publishes and removes at or after the time, oldest first, and not
/// earlier changes.
pub async fn changed_since_tracks_formal_changes(repos: &Repos) {
    let early = must_publish(repos, publish(&key("", "early"), "e")).await;
    let doomed = must_publish(repos, publish(&key("", "doomed"), "d")).await;
    tick().await;
    let since = now_millis();
    tick().await;
    let later = must_publish(repos, publish(&key("", "later"), "l")).await;
    repos
        .configs
        .remove(&doomed.key, &operator())
        .await
        .expect("remove")
        .expect("existed");

    let changes = repos
        .configs
        .changed_since(since)
        .await
        .expect("changed_since");
    let keys: Vec<&ConfigKey> = changes.iter().map(|c| &c.key).collect();
    assert!(
        keys.contains(&&later.key),
        "a publish after the time is listed: {changes:?}"
    );
    assert!(
        keys.contains(&&doomed.key),
        "a remove after the time is listed: {changes:?}"
    );
    assert!(
        !keys.contains(&&early.key),
        "a change before the time is not listed: {changes:?}"
    );
    assert!(
        changes
            .windows(2)
            .all(|w| w[0].modified_ms <= w[1].modified_ms),
        "oldest first: {changes:?}"
    );
    assert!(
        changes.iter().all(|c| c.modified_ms >= since),
        "all at or after: {changes:?}"
    );

    let at = repos
        .configs
        .changed_since(later.modified_ms)
        .await
        .expect("changed_since");
    assert!(
        at.iter().any(|c| c.key == later.key),
        "a change exactly at the time is listed"
    );
    let future = repos
        .configs
        .changed_since(now_millis() + 3_600_000)
        .await
        .expect("future");
    assert!(
        future.is_empty(),
        "nothing changed in the future: {future:?}"
    );
    let everything = repos.configs.changed_since(0).await.expect("since 0");
    assert!(
        everything.iter().any(|c| c.key == early.key),
        "since 0 lists the early change"
    );
}

/// `ha_status`: a backend that reports database nodes names a primary among them while it
/// takes writes (it just did), and counts no failover on a healthy start. A backend without
/// database nodes reports `None`, and then takes writes all the same.
pub async fn ha_status_names_the_writable_node(repos: &Repos) {
    must_publish(repos, publish(&key("", "ha.status"), "x")).await;
    let Some(status) = repos.configs.ha_status() else {
        assert!(
            repos.configs.write_problem().is_none(),
            "no HA status and a write problem after a write succeeded"
        );
        return;
    };
    assert!(status.nodes >= 1, "nodes of {status:?}");
    let primary = status.primary.expect("a primary after a write succeeded");
    assert!(primary < status.nodes, "primary index in range: {status:?}");
    assert_eq!(status.failovers, 0, "no failover on a healthy start");
}
