//! Config history: op types and the stored-content rule, order, paging, lookups by nid and by
//! config id.

use nacos_core::{HistoryOp, Operator, PageRequest, Repos, md5_hex};

use super::fixtures::{all_history, full_publish, key, must_publish, operator, publish};

/// Insert writes `I` (new content, config id 0); update writes `U` holding the *previous*
/// content; remove writes `D` holding the deleted content. Nids increase.
pub async fn history_records_insert_update_delete(repos: &Repos) {
    let k = key("", "history.yaml");
    let first = must_publish(repos, full_publish(&k, "v1", "x")).await;
    must_publish(repos, publish(&k, "v2")).await;
    must_publish(repos, publish(&k, "v3")).await;
    let remover = Operator {
        user: "remover".to_string(),
        ip: "10.9.9.9".to_string(),
    };
    repos
        .configs
        .remove(&k, &remover)
        .await
        .expect("remove")
        .expect("existed");

    let rows = all_history(repos, &k).await;
    let ops: Vec<HistoryOp> = rows.iter().map(|r| r.op).collect();
    assert_eq!(
        ops,
        vec![
            HistoryOp::Delete,
            HistoryOp::Update,
            HistoryOp::Update,
            HistoryOp::Insert
        ],
        "newest first"
    );
    assert!(
        rows.windows(2).all(|w| w[0].nid > w[1].nid),
        "nids strictly decrease"
    );
    let contents: Vec<&str> = rows.iter().map(|r| r.content.as_str()).collect();
    assert_eq!(
        contents,
        vec!["v3", "v2", "v1", "v1"],
        "D: deleted, U: previous, I: new"
    );
    for row in &rows {
        assert_eq!(row.key, k);
        assert_eq!(
            row.md5,
            md5_hex(&row.content),
            "md5 describes the stored content"
        );
    }
    let (delete, insert) = (&rows[0], &rows[3]);
    assert_eq!(insert.config_id, 0, "I rows have config id 0");
    assert_eq!(rows[1].config_id, first.id, "U rows carry the config id");
    assert_eq!(rows[2].config_id, first.id);
    assert_eq!(delete.config_id, first.id, "D rows carry the config id");
    assert_eq!(insert.app_name, "app-x");
    assert_eq!(insert.src_user, "user-x", "the insert's operator");
    assert_eq!(delete.src_user, "remover", "the remove's operator");
    assert_eq!(delete.src_ip, "10.9.9.9");
    assert_eq!(delete.op.code(), "D");
}

/// History pages newest first, with a total count; past the end is empty; size 0 counts.
pub async fn history_pages_newest_first(repos: &Repos) {
    let k = key("", "paged");
    for n in 1..=5 {
        must_publish(repos, publish(&k, &format!("v{n}"))).await;
    }
    // Rows: I(v1), U(v1), U(v2), U(v3), U(v4); newest first: v4, v3, v2, v1, v1.
    let first = repos
        .configs
        .history(&k, PageRequest::new(1, 2))
        .await
        .expect("page 1");
    assert_eq!(first.total_count, 5);
    assert_eq!(first.pages_available, 3);
    let contents: Vec<&str> = first.items.iter().map(|r| r.content.as_str()).collect();
    assert_eq!(contents, vec!["v4", "v3"]);
    let second = repos
        .configs
        .history(&k, PageRequest::new(2, 2))
        .await
        .expect("page 2");
    let contents: Vec<&str> = second.items.iter().map(|r| r.content.as_str()).collect();
    assert_eq!(contents, vec!["v2", "v1"]);
    assert!(
        first.items[1].nid > second.items[0].nid,
        "pages continue in nid order"
    );
    let third = repos
        .configs
        .history(&k, PageRequest::new(3, 2))
        .await
        .expect("page 3");
    assert_eq!(third.items.len(), 1);
    assert_eq!(third.items[0].op, HistoryOp::Insert);
    let beyond = repos
        .configs
        .history(&k, PageRequest::new(4, 2))
        .await
        .expect("page 4");
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total_count, 5);
    let count = repos
        .configs
        .history(&k, PageRequest::new(1, 0))
        .await
        .expect("size 0");
    assert!(count.items.is_empty());
    assert_eq!(count.total_count, 5);
    let none = repos
        .configs
        .history(&key("", "no-history"), PageRequest::new(1, 10))
        .await;
    let none = none.expect("history of an unknown key");
    assert_eq!(none.total_count, 0);
    assert!(none.items.is_empty());
}

/// `history_entry` returns each row by nid, and `None` for an unknown nid.
pub async fn history_entry_by_nid(repos: &Repos) {
    let k = key("", "by-nid");
    must_publish(repos, publish(&k, "v1")).await;
    must_publish(repos, publish(&k, "v2")).await;
    let rows = all_history(repos, &k).await;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let got = repos
            .configs
            .history_entry(row.nid)
            .await
            .expect("history_entry");
        assert_eq!(
            got.as_ref(),
            Some(row),
            "history_entry({}) is the listed row",
            row.nid
        );
    }
    let unknown = rows.iter().map(|r| r.nid).max().unwrap_or(0) + 1_000_000;
    assert_eq!(
        repos
            .configs
            .history_entry(unknown)
            .await
            .expect("unknown nid"),
        None
    );
}

/// `previous_history` is the newest row carrying the config id; unknown ids give `None`.
pub async fn previous_history_is_newest_row_of_config(repos: &Repos) {
    let k = key("", "previous");
    let item = must_publish(repos, publish(&k, "v1")).await;
    must_publish(repos, publish(&k, "v2")).await;
    must_publish(repos, publish(&k, "v3")).await;
    must_publish(repos, publish(&key("", "unrelated"), "x")).await;
    let previous = repos
        .configs
        .previous_history(item.id)
        .await
        .expect("previous_history");
    let previous = previous.expect("a config with updates has a previous row");
    assert_eq!(previous.op, HistoryOp::Update);
    assert_eq!(
        previous.content, "v2",
        "the newest U row holds the content before v3"
    );
    assert_eq!(previous.config_id, item.id);
    let newest = all_history(repos, &k).await;
    assert_eq!(Some(&previous), newest.first());

    repos
        .configs
        .remove(&k, &operator())
        .await
        .expect("remove")
        .expect("existed");
    let after = repos
        .configs
        .previous_history(item.id)
        .await
        .expect("after remove");
    assert_eq!(
        after.map(|r| (r.op, r.content)),
        Some((HistoryOp::Delete, "v3".to_string()))
    );
    let unknown = repos
        .configs
        .previous_history(item.id + 1_000_000)
        .await
        .expect("unknown");
    assert_eq!(unknown, None);
}

/// History of a key includes rows of its earlier incarnations (before a delete).
pub async fn history_spans_incarnations(repos: &Repos) {
    let k = key("", "reborn");
    let first = must_publish(repos, publish(&k, "life 1")).await;
    repos
        .configs
        .remove(&k, &operator())
        .await
        .expect("remove")
        .expect("existed");
    let second = must_publish(repos, publish(&k, "life 2")).await;
    assert_ne!(first.id, second.id, "a re-created config gets a new id");
    let rows = all_history(repos, &k).await;
    let summary: Vec<(HistoryOp, &str)> = rows.iter().map(|r| (r.op, r.content.as_str())).collect();
    assert_eq!(
        summary,
        vec![
            (HistoryOp::Insert, "life 2"),
            (HistoryOp::Delete, "life 1"),
            (HistoryOp::Insert, "life 1"),
        ]
    );
}

/// History lists only the key's rows: not other keys, not the same key in other namespaces.
pub async fn history_isolated_per_key(repos: &Repos) {
    let k = key("", "mine");
    must_publish(repos, publish(&k, "mine")).await;
    must_publish(repos, publish(&key("", "mine2"), "other key")).await;
    must_publish(repos, publish(&key("", "min"), "prefix key")).await;
    must_publish(repos, publish(&key("ns-hist", "mine"), "other namespace")).await;
    let rows = all_history(repos, &k).await;
    assert_eq!(rows.len(), 1, "only the key's own row: {rows:?}");
    assert_eq!(rows[0].content, "mine");
}
