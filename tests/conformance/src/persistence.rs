//! Restart persistence: what was acknowledged is there after the storage is reopened. These
//! cases take the [`Backend`] and are skipped when [`Backend::reopen`] returns `None`.

use std::collections::BTreeSet;

use nacos_core::{Gray, PageRequest};

use super::fixtures::{
    full_publish, gray_publish, instance, key, must_get, must_publish, namespace, operator,
    publish, service, service_meta,
};
use super::harness::{Requirement, supported};
use crate::Backend;

/// Configs, history, gray variants, namespaces, services and instances survive a reopen, and
/// ids handed out before it are not handed out again.
pub async fn reopen_keeps_everything<B: Backend>(backend: &B) {
    let (repos, guard) = backend.build().await;
    let k = key("", "durable.yaml");
    let first = must_publish(&repos, full_publish(&k, "v1", "x")).await;
    let updated = must_publish(&repos, publish(&k, "v2")).await;
    let gone = must_publish(&repos, publish(&key("ns-p", "gone"), "bye")).await;
    repos
        .configs
        .remove(&gone.key, &operator())
        .await
        .expect("remove")
        .expect("existed");
    let history = repos
        .configs
        .history(&k, PageRequest::new(1, 100))
        .await
        .expect("history");
    let gray = supported(&repos, Requirement::GrayConfigs, "persistence (gray part)");
    let beta = if gray {
        Some(
            repos
                .configs
                .publish_gray(Gray::Beta, gray_publish(&k, "beta"))
                .await
                .expect("beta"),
        )
    } else {
        None
    };
    repos
        .namespaces
        .create(namespace("durable-ns", 1_000))
        .await
        .expect("namespace");
    let naming = supported(
        &repos,
        Requirement::PersistentInstances,
        "persistence (naming part)",
    );
    let svc = service("durable-svc");
    let inst = instance("10.0.0.1", 80, "DEFAULT");
    if naming {
        repos
            .instances
            .create_service(service_meta(&svc))
            .await
            .expect("service");
        repos
            .instances
            .register_instance(&svc, inst.clone())
            .await
            .expect("instance");
    }
    let changes = repos.configs.changed_since(0).await.expect("changed_since");
    drop(repos);

    let Some(repos) = backend.reopen(&guard).await else {
        eprintln!("SKIPPED persistence::reopen_keeps_everything: backend does not support reopen");
        return;
    };
    assert_eq!(
        must_get(&repos, &k).await,
        Some(updated),
        "the config survives"
    );
    assert_eq!(
        must_get(&repos, &gone.key).await,
        None,
        "the remove survives"
    );
    let after = repos
        .configs
        .history(&k, PageRequest::new(1, 100))
        .await
        .expect("history");
    assert_eq!(after, history, "history survives");
    assert_eq!(
        repos.configs.changed_since(0).await.expect("changes"),
        changes
    );
    if let Some(beta) = beta {
        let got = repos
            .configs
            .get_gray(&k, &Gray::Beta)
            .await
            .expect("get beta");
        assert_eq!(got, Some(beta), "the beta survives");
    }
    let ns = repos.namespaces.get("durable-ns").await.expect("namespace");
    assert_eq!(
        ns,
        Some(namespace("durable-ns", 1_000)),
        "the namespace survives"
    );
    if naming {
        let meta = repos.instances.get_service(&svc).await.expect("service");
        assert_eq!(meta, Some(service_meta(&svc)), "the service survives");
        let instances = repos
            .instances
            .list_instances(&svc)
            .await
            .expect("instances");
        assert_eq!(instances, vec![inst], "the instance survives");
    }

    let used = BTreeSet::from([first.id, gone.id]);
    let fresh = must_publish(&repos, publish(&key("", "after-reopen"), "new")).await;
    assert!(
        !used.contains(&fresh.id),
        "id {} handed out again after reopen",
        fresh.id
    );
    let nids: BTreeSet<u64> = history.items.iter().map(|h| h.nid).collect();
    let fresh_history = repos
        .configs
        .history(&fresh.key, PageRequest::new(1, 10))
        .await
        .expect("history of the new config");
    assert!(
        fresh_history.items.iter().all(|h| !nids.contains(&h.nid)),
        "history nids are not reused after reopen"
    );
    drop(repos);
    drop(guard);
}
