//! History retention: [`nacos_core::ConfigRepo::purge_history`] deletes history rows older
//! than a cutoff, in batches of at most `limit`, and nothing else.
//!
//! Some backends keep whole seconds (Nacos's `datetime` columns), so the cases put the cutoff
//! on a whole second that lies between the old and the new writes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nacos_core::{ConfigKey, HistoryEntry, Repos};

use super::fixtures::{all_history, key, must_get, must_publish, publish};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Wait until the wall clock is past the next whole second, and return that second (ms): a
/// cutoff every earlier write lies before, whatever its backend's time resolution.
async fn next_whole_second() -> i64 {
    let cutoff = (now_ms() / 1000 + 1) * 1000;
    while now_ms() < cutoff + 50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cutoff
}

async fn history_of(repos: &Repos, keys: &[&ConfigKey]) -> Vec<HistoryEntry> {
    let mut rows = Vec::new();
    for k in keys {
        rows.extend(all_history(repos, k).await);
    }
    rows.sort_by_key(|r| r.nid);
    rows
}

async fn purge(repos: &Repos, before_ms: i64, limit: u32) -> u64 {
    repos
        .configs
        .purge_history(before_ms, limit)
        .await
        .expect("purge history")
}

/// Rows modified before the cutoff go, across keys and namespaces; rows at or after it stay;
/// a row's own modification time as the cutoff keeps that row.
pub async fn purge_deletes_only_rows_before_the_cutoff(repos: &Repos) {
    let a = key("", "retention-a.yaml");
    let b = key("ns-retention", "retention-b.yaml");
    must_publish(repos, publish(&a, "a1")).await;
    must_publish(repos, publish(&a, "a2")).await;
    must_publish(repos, publish(&b, "b1")).await;
    let old: Vec<u64> = history_of(repos, &[&a, &b])
        .await
        .iter()
        .map(|r| r.nid)
        .collect();
    assert_eq!(old.len(), 3, "three old history rows");
    let cutoff = next_whole_second().await;
    must_publish(repos, publish(&a, "a3")).await;
    must_publish(repos, publish(&b, "b2")).await;

    let purged = purge(repos, cutoff, 100).await;
    assert_eq!(purged, 3, "every row older than the cutoff goes, no other");
    let left = history_of(repos, &[&a, &b]).await;
    assert!(
        left.iter().all(|r| !old.contains(&r.nid)),
        "old rows are gone: {left:?}"
    );
    assert_eq!(left.len(), 2, "the two new rows stay: {left:?}");
    assert!(left.iter().all(|r| r.modified_ms >= cutoff));

    assert_eq!(purge(repos, cutoff, 100).await, 0, "nothing more to purge");
    let newest = left.last().expect("a new row").clone();
    purge(repos, newest.modified_ms, 100).await;
    let after = history_of(repos, &[&a, &b]).await;
    assert!(
        after.iter().any(|r| r.nid == newest.nid),
        "a row modified exactly at the cutoff stays"
    );
    assert_eq!(
        repos.configs.history_entry(old[0]).await.expect("entry"),
        None,
        "a purged row is gone by nid too"
    );
}

/// At most `limit` rows go per call, lowest nid first; `limit` 0 deletes nothing.
pub async fn purge_honours_the_limit(repos: &Repos) {
    let k = key("", "retention-limit.yaml");
    for i in 0..5 {
        must_publish(repos, publish(&k, &format!("v{i}"))).await;
    }
    let cutoff = next_whole_second().await;
    let before: Vec<u64> = history_of(repos, &[&k])
        .await
        .iter()
        .map(|r| r.nid)
        .collect();
    assert_eq!(before.len(), 5);

    assert_eq!(purge(repos, cutoff, 0).await, 0, "limit 0 deletes nothing");
    assert_eq!(history_of(repos, &[&k]).await.len(), 5);
    assert_eq!(purge(repos, cutoff, 2).await, 2, "first batch");
    let left: Vec<u64> = history_of(repos, &[&k])
        .await
        .iter()
        .map(|r| r.nid)
        .collect();
    assert_eq!(left, before[2..].to_vec(), "the two lowest nids went first");
    assert_eq!(purge(repos, cutoff, 2).await, 2, "second batch");
    assert_eq!(purge(repos, cutoff, 2).await, 1, "the last row");
    assert_eq!(purge(repos, cutoff, 2).await, 0, "done");
    assert!(history_of(repos, &[&k]).await.is_empty());
}

/// Purging touches history only: formal configs (content, id, md5) and the change index stay.
pub async fn purge_leaves_formal_configs_untouched(repos: &Repos) {
    let k = key("", "retention-formal.yaml");
    must_publish(repos, publish(&k, "first")).await;
    let stored = must_publish(repos, publish(&k, "second")).await;
    let cutoff = next_whole_second().await;
    let changes_before = repos.configs.changed_since(0).await.expect("changes");

    assert_eq!(purge(repos, cutoff, 100).await, 2);
    assert!(all_history(repos, &k).await.is_empty());
    let after = must_get(repos, &k).await.expect("the formal config stays");
    assert_eq!(after.content, "second");
    assert_eq!(after.id, stored.id);
    assert_eq!(after.md5, stored.md5);
    assert_eq!(
        repos.configs.changed_since(0).await.expect("changes"),
        changes_before,
        "the change index is not history"
    );
    let next = must_publish(repos, publish(&k, "third")).await;
    assert_eq!(next.id, stored.id, "updates go on as before");
    let rows = all_history(repos, &k).await;
    assert_eq!(rows.len(), 1, "a new history row after the purge");
    assert_eq!(rows[0].content, "second");
}
