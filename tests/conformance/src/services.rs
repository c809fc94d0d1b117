//! Durable services and persistent instances (`InstanceRepo`). Every case here needs
//! [`Capabilities::persistent_instances`](nacos_core::Capabilities::persistent_instances).

use std::collections::BTreeMap;

use nacos_core::{ClusterMeta, InstanceAddr, RepoError, Repos, ServiceKey, ServiceMeta};

use super::fixtures::{instance, service, service_meta};

async fn addresses(repos: &Repos, key: &ServiceKey) -> Vec<(String, u16, String)> {
    repos
        .instances
        .list_instances(key)
        .await
        .expect("list instances")
        .into_iter()
        .map(|i| (i.ip.to_string(), i.port, i.cluster.to_string()))
        .collect()
}

/// A created service is returned by `get_service` and `list_services`, ordered by key.
pub async fn service_create_get_list(repos: &Repos) {
    assert!(
        repos
            .instances
            .list_services()
            .await
            .expect("list")
            .is_empty()
    );
    let keys = [
        ServiceKey::new("public", "G2", "a"),
        ServiceKey::new("public", "G1", "b"),
        ServiceKey::new("dev", "G9", "z"),
        ServiceKey::new("public", "G1", "a"),
    ];
    for k in &keys {
        repos
            .instances
            .create_service(service_meta(k))
            .await
            .expect("create");
    }
    let got = repos.instances.get_service(&keys[0]).await.expect("get");
    assert_eq!(got, Some(service_meta(&keys[0])), "stored as created");
    let listed: Vec<ServiceKey> = repos
        .instances
        .list_services()
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key)
        .collect();
    let mut sorted = keys.to_vec();
    sorted.sort();
    assert_eq!(listed, sorted, "ordered by (namespace, group, name)");
    let missing = ServiceKey::new("public", "G1", "missing");
    assert_eq!(
        repos
            .instances
            .get_service(&missing)
            .await
            .expect("get missing"),
        None
    );
}

/// Creating an existing service fails with `AlreadyExists` and keeps the stored settings.
pub async fn service_create_duplicate_already_exists(repos: &Repos) {
    let k = service("dup");
    let original = service_meta(&k);
    repos
        .instances
        .create_service(original.clone())
        .await
        .expect("create");
    let mut other = service_meta(&k);
    other.protect_threshold = 0.9;
    assert_err!(
        repos.instances.create_service(other).await,
        RepoError::AlreadyExists(_),
        "creating an existing service"
    );
    assert_eq!(
        repos.instances.get_service(&k).await.expect("get"),
        Some(original)
    );
}

/// `update_service` replaces the settings of an existing service.
pub async fn service_update_replaces_settings(repos: &Repos) {
    let k = service("upd");
    repos
        .instances
        .create_service(service_meta(&k))
        .await
        .expect("create");
    let mut updated = service_meta(&k);
    updated.protect_threshold = 0.8;
    updated.metadata = BTreeMap::from([("version".to_string(), "2".to_string())]);
    updated.selector = r#"{"type":"label","expression":"a=b"}"#.to_string();
    updated.clusters = BTreeMap::from([(
        "DEFAULT".to_string(),
        ClusterMeta {
            health_checker: "TCP".to_string(),
            check_port: 8080,
            use_instance_port: true,
            metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
        },
    )]);
    updated.modified_ms = 2_000;
    repos
        .instances
        .update_service(updated.clone())
        .await
        .expect("update");
    let got = repos
        .instances
        .get_service(&k)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.protect_threshold, 0.8);
    assert_eq!(got.metadata, updated.metadata);
    assert_eq!(got.selector, updated.selector);
    assert_eq!(got.clusters, updated.clusters);
    assert!(!got.ephemeral);
}

/// Updating a missing service fails with `NotFound` and creates nothing.
pub async fn service_update_missing_not_found(repos: &Repos) {
    let k = service("ghost");
    assert_err!(
        repos.instances.update_service(service_meta(&k)).await,
        RepoError::NotFound(_),
        "updating a missing service"
    );
    assert_eq!(repos.instances.get_service(&k).await.expect("get"), None);
}

/// A deleted service is gone.
pub async fn service_delete_then_gone(repos: &Repos) {
    let k = service("bye");
    let kept = service("kept");
    repos
        .instances
        .create_service(service_meta(&k))
        .await
        .expect("create");
    repos
        .instances
        .create_service(service_meta(&kept))
        .await
        .expect("create");
    repos.instances.delete_service(&k).await.expect("delete");
    assert_eq!(repos.instances.get_service(&k).await.expect("get"), None);
    let listed: Vec<ServiceKey> = repos
        .instances
        .list_services()
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(listed, vec![kept]);
}

/// Deleting a missing service fails with `NotFound`.
pub async fn service_delete_missing_not_found(repos: &Repos) {
    assert_err!(
        repos.instances.delete_service(&service("ghost")).await,
        RepoError::NotFound(_),
        "deleting a missing service"
    );
}

/// A service with persistent instances cannot be deleted; once they are gone it can.
pub async fn service_delete_blocked_while_instances_remain(repos: &Repos) {
    let k = service("busy");
    repos
        .instances
        .create_service(service_meta(&k))
        .await
        .expect("create");
    repos
        .instances
        .register_instance(&k, instance("10.0.0.1", 80, "DEFAULT"))
        .await
        .expect("reg");
    assert_err!(
        repos.instances.delete_service(&k).await,
        RepoError::PreconditionFailed(_),
        "deleting a service with instances"
    );
    assert!(
        repos
            .instances
            .get_service(&k)
            .await
            .expect("get")
            .is_some(),
        "service kept"
    );
    assert_eq!(addresses(repos, &k).await.len(), 1, "instance kept");
    repos
        .instances
        .deregister_instance(&k, &InstanceAddr::new("10.0.0.1", 80, "DEFAULT"))
        .await
        .expect("deregister")
        .expect("it was registered");
    repos
        .instances
        .delete_service(&k)
        .await
        .expect("delete once empty");
    assert_eq!(repos.instances.get_service(&k).await.expect("get"), None);
}

/// Register stores the instance as sent; deregister returns and removes it.
pub async fn instance_register_list_deregister(repos: &Repos) {
    let k = service("reg");
    let mut inst = instance("10.0.0.1", 8080, "DEFAULT");
    inst.weight = 2.5;
    inst.healthy = false;
    inst.enabled = false;
    inst.metadata = BTreeMap::from([("zone".to_string(), "a".to_string())]);
    inst.instance_id = Some("custom-id".to_string());
    repos
        .instances
        .register_instance(&k, inst.clone())
        .await
        .expect("register");
    let listed = repos.instances.list_instances(&k).await.expect("list");
    assert_eq!(listed, vec![inst.clone()], "stored as sent");
    let removed = repos
        .instances
        .deregister_instance(&k, &InstanceAddr::new("10.0.0.1", 8080, "DEFAULT"))
        .await
        .expect("dereg");
    assert_eq!(removed, Some(inst));
    assert!(
        repos
            .instances
            .list_instances(&k)
            .await
            .expect("list")
            .is_empty()
    );
}

/// Registering the same (ip, port, cluster) replaces; another cluster is another instance.
pub async fn instance_register_replaces_same_address(repos: &Repos) {
    let k = service("replace");
    repos
        .instances
        .register_instance(&k, instance("10.0.0.1", 80, "A"))
        .await
        .expect("first");
    let mut newer = instance("10.0.0.1", 80, "A");
    newer.weight = 7.0;
    newer.metadata = BTreeMap::from([("v".to_string(), "2".to_string())]);
    repos
        .instances
        .register_instance(&k, newer.clone())
        .await
        .expect("replace");
    let listed = repos.instances.list_instances(&k).await.expect("list");
    assert_eq!(listed, vec![newer], "replaced in place");
    repos
        .instances
        .register_instance(&k, instance("10.0.0.1", 80, "B"))
        .await
        .expect("B");
    repos
        .instances
        .register_instance(&k, instance("10.0.0.1", 81, "A"))
        .await
        .expect("81");
    assert_eq!(
        addresses(repos, &k).await.len(),
        3,
        "cluster and port are part of identity"
    );
}

/// Registering into a missing service creates it as persistent.
pub async fn instance_register_creates_persistent_service(repos: &Repos) {
    let k = ServiceKey::new("dev", "G", "auto");
    assert_eq!(repos.instances.get_service(&k).await.expect("get"), None);
    repos
        .instances
        .register_instance(&k, instance("10.0.0.1", 80, "DEFAULT"))
        .await
        .expect("reg");
    let meta = repos
        .instances
        .get_service(&k)
        .await
        .expect("get")
        .expect("service created");
    assert_eq!(meta.key, k);
    assert!(!meta.ephemeral, "an auto-created service is persistent");
    let listed = repos.instances.list_services().await.expect("list");
    assert_eq!(listed.len(), 1);
}

/// An ephemeral service rejects persistent instances with `PreconditionFailed`.
pub async fn instance_register_on_ephemeral_service_fails(repos: &Repos) {
    let k = service("ephemeral");
    let mut meta: ServiceMeta = service_meta(&k);
    meta.ephemeral = true;
    repos
        .instances
        .create_service(meta.clone())
        .await
        .expect("create");
    assert_err!(
        repos
            .instances
            .register_instance(&k, instance("10.0.0.1", 80, "DEFAULT"))
            .await,
        RepoError::PreconditionFailed(_),
        "registering a persistent instance in an ephemeral service"
    );
    assert!(
        repos
            .instances
            .list_instances(&k)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        repos.instances.get_service(&k).await.expect("get"),
        Some(meta),
        "unchanged"
    );
}

/// Instances list by (ip, port, cluster), the port compared as a number.
pub async fn instances_ordered_by_ip_port_cluster(repos: &Repos) {
    let k = service("ordered");
    for (ip, port, cluster) in [
        ("10.0.0.2", 80, "B"),
        ("10.0.0.1", 10, "A"),
        ("10.0.0.1", 9, "B"),
        ("10.0.0.1", 9, "A"),
        ("10.0.0.10", 1, "A"),
    ] {
        repos
            .instances
            .register_instance(&k, instance(ip, port, cluster))
            .await
            .expect("reg");
    }
    let expected: Vec<(String, u16, String)> = [
        ("10.0.0.1", 9, "A"),
        ("10.0.0.1", 9, "B"),
        ("10.0.0.1", 10, "A"),
        ("10.0.0.10", 1, "A"),
        ("10.0.0.2", 80, "B"),
    ]
    .into_iter()
    .map(|(ip, port, cluster)| (ip.to_string(), port, cluster.to_string()))
    .collect();
    assert_eq!(addresses(repos, &k).await, expected);
}

/// Deregistering an absent instance returns `None`.
pub async fn instance_deregister_missing_returns_none(repos: &Repos) {
    let k = service("empty");
    let none = repos
        .instances
        .deregister_instance(&k, &InstanceAddr::new("10.0.0.1", 80, "DEFAULT"))
        .await;
    assert_eq!(none.expect("deregister from a missing service"), None);
    repos
        .instances
        .register_instance(&k, instance("10.0.0.1", 80, "DEFAULT"))
        .await
        .expect("reg");
    let none = repos
        .instances
        .deregister_instance(&k, &InstanceAddr::new("10.0.0.1", 80, "OTHER"))
        .await;
    assert_eq!(none.expect("deregister another cluster"), None);
    assert_eq!(addresses(repos, &k).await.len(), 1);
}

/// Instances belong to one service: the same address in two services is two instances.
pub async fn instances_isolated_per_service(repos: &Repos) {
    let a = service("svc-a");
    let a2 = service("svc-a2");
    let other_ns = ServiceKey::new("dev", a.group.clone(), a.name.clone());
    for k in [&a, &a2, &other_ns] {
        repos
            .instances
            .register_instance(k, instance("10.0.0.1", 80, "DEFAULT"))
            .await
            .expect("reg");
    }
    repos
        .instances
        .register_instance(&a2, instance("10.0.0.2", 80, "DEFAULT"))
        .await
        .expect("reg");
    assert_eq!(addresses(repos, &a).await.len(), 1);
    assert_eq!(addresses(repos, &a2).await.len(), 2);
    assert_eq!(addresses(repos, &other_ns).await.len(), 1);
    repos
        .instances
        .deregister_instance(&a, &InstanceAddr::new("10.0.0.1", 80, "DEFAULT"))
        .await
        .expect("dereg")
        .expect("existed");
    assert!(addresses(repos, &a).await.is_empty());
    assert_eq!(
        addresses(repos, &a2).await.len(),
        2,
        "other services keep theirs"
    );
    assert_eq!(addresses(repos, &other_ns).await.len(), 1);
}
