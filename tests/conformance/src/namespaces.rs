//! Custom namespaces (`NamespaceRepo`).

use nacos_core::{RepoError, Repos};

use super::fixtures::{key, must_get, must_publish, namespace, publish};

/// A created namespace is returned by `get` and `list` as it was stored.
pub async fn namespace_create_get_list(repos: &Repos) {
    assert!(
        repos.namespaces.list().await.expect("list").is_empty(),
        "a fresh backend has none"
    );
    let dev = namespace("dev", 1_000);
    repos.namespaces.create(dev.clone()).await.expect("create");
    assert_eq!(
        repos.namespaces.get("dev").await.expect("get"),
        Some(dev.clone())
    );
    assert_eq!(repos.namespaces.list().await.expect("list"), vec![dev]);
    assert_eq!(
        repos.namespaces.get("prod").await.expect("get missing"),
        None
    );
}

/// Creating a taken id fails with `AlreadyExists` and leaves the stored namespace alone.
pub async fn namespace_create_duplicate_already_exists(repos: &Repos) {
    let original = namespace("dup", 1_000);
    repos
        .namespaces
        .create(original.clone())
        .await
        .expect("create");
    let imposter = nacos_core::Namespace {
        name: "imposter".to_string(),
        ..namespace("dup", 2_000)
    };
    assert_err!(
        repos.namespaces.create(imposter).await,
        RepoError::AlreadyExists(_),
        "creating a taken namespace id"
    );
    assert_eq!(
        repos.namespaces.get("dup").await.expect("get"),
        Some(original)
    );
    assert_eq!(repos.namespaces.list().await.expect("list").len(), 1);
}

/// `update` changes the name and description and keeps the id and creation time.
pub async fn namespace_update_changes_name_and_desc(repos: &Repos) {
    let ns = namespace("upd", 1_000);
    repos.namespaces.create(ns.clone()).await.expect("create");
    repos
        .namespaces
        .update("upd", "New Name", "new desc")
        .await
        .expect("update");
    let got = repos
        .namespaces
        .get("upd")
        .await
        .expect("get")
        .expect("still there");
    assert_eq!(got.id, "upd");
    assert_eq!(got.name, "New Name");
    assert_eq!(got.desc, "new desc");
    assert_eq!(got.created_ms, ns.created_ms, "update keeps created_ms");
    repos
        .namespaces
        .update("upd", "", "")
        .await
        .expect("update to empty");
    let got = repos
        .namespaces
        .get("upd")
        .await
        .expect("get")
        .expect("still there");
    assert_eq!((got.name.as_str(), got.desc.as_str()), ("", ""));
}

/// Updating an unknown namespace fails with `NotFound` and creates nothing.
pub async fn namespace_update_missing_not_found(repos: &Repos) {
    assert_err!(
        repos.namespaces.update("ghost", "name", "desc").await,
        RepoError::NotFound(_),
        "updating a missing namespace"
    );
    assert_eq!(repos.namespaces.get("ghost").await.expect("get"), None);
}

/// `delete` reports whether the namespace existed.
pub async fn namespace_delete_returns_existed(repos: &Repos) {
    repos
        .namespaces
        .create(namespace("gone", 1_000))
        .await
        .expect("create");
    repos
        .namespaces
        .create(namespace("kept", 1_001))
        .await
        .expect("create");
    assert!(
        repos.namespaces.delete("gone").await.expect("delete"),
        "it existed"
    );
    assert_eq!(repos.namespaces.get("gone").await.expect("get"), None);
    assert!(
        !repos.namespaces.delete("gone").await.expect("delete again"),
        "no longer exists"
    );
    assert!(
        !repos
            .namespaces
            .delete("never")
            .await
            .expect("delete unknown")
    );
    let ids: Vec<String> = repos
        .namespaces
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(ids, vec!["kept"]);
}

/// `list` orders by creation time, then id.
pub async fn namespace_list_ordered_by_created_then_id(repos: &Repos) {
    for (id, created) in [("c", 300), ("z", 100), ("b", 200), ("a", 100)] {
        repos
            .namespaces
            .create(namespace(id, created))
            .await
            .expect("create");
    }
    let ids: Vec<String> = repos
        .namespaces
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(ids, vec!["a", "z", "b", "c"]);
}

/// Deleting a namespace keeps the configs in it, as Nacos does.
pub async fn namespace_delete_keeps_configs(repos: &Repos) {
    repos
        .namespaces
        .create(namespace("with-configs", 1_000))
        .await
        .expect("create");
    let k = key("with-configs", "app.yaml");
    let item = must_publish(repos, publish(&k, "content")).await;
    assert!(
        repos
            .namespaces
            .delete("with-configs")
            .await
            .expect("delete")
    );
    assert_eq!(must_get(repos, &k).await, Some(item), "the config is kept");
}
