//! Whole-store export and import ([`nacos_core::TransferRepo`]): every table in its stated
//! order, pages no larger than asked, one consistent snapshot; imports that keep ids and times,
//! replace by key, converge when repeated and write nothing of a refused batch. These cases
//! take the [`Backend`] (two stores: a source and a target).

use std::collections::BTreeMap;

use async_trait::async_trait;
use nacos_core::transfer::{ExportSink, Record, StoredInstance, Table, gray_order, instance_order};
use nacos_core::{
    ConfigItem, Gray, Namespace, Permission, RepoError, Repos, RoleBinding, TransferRepo, User,
};

use super::fixtures::{
    full_publish, gray_publish, instance, key, must_publish, namespace, operator, publish, service,
    service_meta,
};
use super::harness::{Requirement, supported};
use crate::Backend;

/// Collects an export, checking page sizes and table order as pages arrive.
struct Collect {
    page_size: usize,
    pages: Vec<(Table, Vec<Record>)>,
}

#[async_trait]
impl ExportSink for Collect {
    async fn page(&mut self, table: Table, records: Vec<Record>) -> Result<(), RepoError> {
        assert!(
            !records.is_empty() && records.len() <= self.page_size,
            "a page of {} {} records with page size {}",
            records.len(),
            table.name(),
            self.page_size
        );
        assert!(
            records.iter().all(|r| r.table() == table),
            "a page of {} holds records of another table",
            table.name()
        );
        if let Some((last, _)) = self.pages.last() {
            assert!(
                *last <= table,
                "{} exported after {}",
                table.name(),
                last.name()
            );
        }
        self.pages.push((table, records));
        Ok(())
    }
}

async fn export(repo: &dyn TransferRepo, page_size: u32) -> Vec<Record> {
    let mut sink = Collect {
        page_size: page_size as usize,
        pages: Vec::new(),
    };
    repo.export(page_size, &mut sink).await.expect("export");
    sink.pages.into_iter().flat_map(|(_, r)| r).collect()
}

fn of_table(records: &[Record], table: Table) -> Vec<&Record> {
    records.iter().filter(|r| r.table() == table).collect()
}

/// One of everything, through the ordinary repository calls. Returns the published configs.
async fn populate(repos: &Repos) -> Vec<ConfigItem> {
    repos
        .namespaces
        .create(namespace("ns-b", 2_000))
        .await
        .expect("namespace");
    repos
        .namespaces
        .create(namespace("ns-a", 1_000))
        .await
        .expect("namespace");
    for name in ["zed", "amy"] {
        repos
            .users
            .create_user(User {
                username: name.into(),
                password_hash: format!("$2a$10$hash-of-{name}"),
                enabled: name == "amy",
            })
            .await
            .expect("user");
    }
    for (role, user) in [("ROLE_B", "amy"), ("ROLE_A", "zed"), ("ROLE_A", "amy")] {
        repos
            .users
            .add_role(RoleBinding {
                role: role.into(),
                username: user.into(),
            })
            .await
            .expect("role");
    }
    for (resource, action) in [("ns-a:*:*", "rw"), (":*:*", "r")] {
        repos
            .users
            .add_permission(Permission {
                role: "ROLE_A".into(),
                resource: resource.into(),
                action: action.into(),
            })
            .await
            .expect("permission");
    }
    let mut configs = Vec::new();
    let k1 = key("", "b.yaml");
    configs.push(must_publish(repos, full_publish(&k1, "one", "x")).await);
    configs.push(must_publish(repos, publish(&key("ns-a", "a.txt"), "two")).await);
    let gone = must_publish(repos, publish(&key("", "gone"), "bye")).await;
    repos
        .configs
        .remove(&gone.key, &operator())
        .await
        .expect("remove")
        .expect("existed");
    configs[0] = must_publish(repos, full_publish(&k1, "one, updated", "y")).await;
    if supported(repos, Requirement::GrayConfigs, "transfer (gray part)") {
        let mut beta = gray_publish(&k1, "beta");
        beta.beta_ips = vec!["10.0.0.2".into(), "10.0.0.1".into()];
        repos
            .configs
            .publish_gray(Gray::Beta, beta)
            .await
            .expect("beta");
        for tag in ["t-b", "t-a"] {
            repos
                .configs
                .publish_gray(Gray::Tag(tag.into()), gray_publish(&k1, tag))
                .await
                .expect("tag");
        }
    }
    if supported(
        repos,
        Requirement::PersistentInstances,
        "transfer (naming part)",
    ) {
        let svc = service("svc-b");
        let mut meta = service_meta(&svc);
        meta.clusters.insert(
            "c1".into(),
            nacos_core::ClusterMeta {
                health_checker: "TCP".into(),
                check_port: 81,
                use_instance_port: false,
                metadata: BTreeMap::from([("k".to_string(), "v".to_string())]),
            },
        );
        meta.selector =
            r#"{"type":"label","expression":"CONSUMER.label.a = PROVIDER.label.a"}"#.into();
        repos.instances.create_service(meta).await.expect("service");
        repos
            .instances
            .create_service(service_meta(&service("svc-a")))
            .await
            .expect("service");
        for (ip, port, cluster) in [("10.0.0.9", 80, "c1"), ("10.0.0.1", 90, "DEFAULT")] {
            let mut i = instance(ip, port, cluster);
            i.metadata.insert("zone".into(), "z1".into());
            i.weight = 2.5;
            repos
                .instances
                .register_instance(&svc, i)
                .await
                .expect("instance");
        }
    }
    configs
}

/// Every table comes in its order, in pages no larger than asked, agreeing with the counts
/// and with what the other repository calls read.
pub async fn export_is_ordered_paged_and_complete<B: Backend>(backend: &B) {
    let (repos, _guard) = backend.build().await;
    let configs = populate(&repos).await;
    let all = export(repos.transfer.as_ref(), 2).await;
    let counts = repos.transfer.counts().await.expect("counts");
    for table in Table::ALL {
        assert_eq!(
            of_table(&all, table).len() as u64,
            counts[&table],
            "{} exported vs counted",
            table.name()
        );
    }
    let namespaces: Vec<&str> = of_table(&all, Table::Namespaces)
        .into_iter()
        .filter_map(|r| match r {
            Record::Namespace(n) => Some(n.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(namespaces, ["ns-a", "ns-b"], "namespaces by id");
    let users: Vec<&str> = of_table(&all, Table::Users)
        .into_iter()
        .filter_map(|r| match r {
            Record::User(u) => Some(u.username.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(users, ["amy", "zed"], "users by name");
    let roles: Vec<(&str, &str)> = of_table(&all, Table::Roles)
        .into_iter()
        .filter_map(|r| match r {
            Record::Role(b) => Some((b.role.as_str(), b.username.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        roles,
        [("ROLE_A", "amy"), ("ROLE_A", "zed"), ("ROLE_B", "amy")],
        "roles by role, user"
    );
    assert_eq!(of_table(&all, Table::Permissions).len(), 2);
    let exported: Vec<&ConfigItem> = of_table(&all, Table::Configs)
        .into_iter()
        .filter_map(|r| match r {
            Record::Config(c) => Some(c),
            _ => None,
        })
        .collect();
    let mut by_id = configs.clone();
    by_id.sort_by_key(|c| c.id);
    assert_eq!(
        exported,
        by_id.iter().collect::<Vec<_>>(),
        "configs by id, as published"
    );
    let history: Vec<u64> = of_table(&all, Table::History)
        .into_iter()
        .filter_map(|r| match r {
            Record::History(h) => Some(h.nid),
            _ => None,
        })
        .collect();
    assert_eq!(history.len(), 5, "I, I, I, D, U rows");
    assert!(history.windows(2).all(|w| w[0] < w[1]), "history by nid");
    for record in of_table(&all, Table::History) {
        if let Record::History(h) = record {
            let stored = repos.configs.history_entry(h.nid).await.expect("entry");
            assert_eq!(stored.as_ref(), Some(h), "history row {} as read", h.nid);
        }
    }
    let grays: Vec<&nacos_core::GrayConfig> = of_table(&all, Table::Grays)
        .into_iter()
        .filter_map(|r| match r {
            Record::Gray(g) => Some(g),
            _ => None,
        })
        .collect();
    assert!(
        grays
            .windows(2)
            .all(|w| gray_order(w[0]) < gray_order(w[1])),
        "grays by key, beta first, tags by name"
    );
    if repos.capabilities.gray_configs {
        assert_eq!(grays.len(), 3);
        assert_eq!(grays[0].gray, Gray::Beta);
    }
    let services: Vec<&str> = of_table(&all, Table::Services)
        .into_iter()
        .filter_map(|r| match r {
            Record::Service(s) => Some(s.key.name.as_str()),
            _ => None,
        })
        .collect();
    let instances: Vec<&StoredInstance> = of_table(&all, Table::Instances)
        .into_iter()
        .filter_map(|r| match r {
            Record::Instance(i) => Some(i),
            _ => None,
        })
        .collect();
    assert!(
        instances
            .windows(2)
            .all(|w| instance_order(w[0]) < instance_order(w[1])),
        "instances by service, ip, port, cluster"
    );
    if repos.capabilities.persistent_instances {
        assert_eq!(services, ["svc-a", "svc-b"], "services by key");
        assert_eq!(instances.len(), 2);
        let stored = repos
            .instances
            .get_service(&service("svc-b"))
            .await
            .expect("get")
            .expect("stored");
        assert!(
            all.contains(&Record::Service(stored)),
            "service settings (clusters, selector) as read"
        );
    }
}

/// A copy into an empty store keeps ids, nids, times, md5 and every field (in the target's
/// stored form), and the target's later writes take ids above the imported ones.
pub async fn import_preserves_ids_times_and_content<B: Backend>(backend: &B) {
    let (source, _g1) = backend.build().await;
    let (target, _g2) = backend.build().await;
    populate(&source).await;
    let records = export(source.transfer.as_ref(), 1000).await;
    for batch in records.chunks(3) {
        target
            .transfer
            .import(batch.to_vec())
            .await
            .expect("import");
    }
    let expected: Vec<Record> = records
        .iter()
        .cloned()
        .map(|mut r| {
            target.transfer.stored_form(&mut r);
            r
        })
        .collect();
    let copied = export(target.transfer.as_ref(), 1000).await;
    assert_eq!(copied, expected, "the target's export is the source's");
    let max_id = records
        .iter()
        .filter_map(|r| match r {
            Record::Config(c) => Some(c.id),
            _ => None,
        })
        .max()
        .expect("configs exported");
    let max_nid = records
        .iter()
        .filter_map(|r| match r {
            Record::History(h) => Some(h.nid),
            _ => None,
        })
        .max()
        .expect("history exported");
    let fresh = must_publish(&target, publish(&key("", "after-import"), "new")).await;
    assert!(
        fresh.id > max_id,
        "new id {} above imported {max_id}",
        fresh.id
    );
    let history = target
        .configs
        .previous_history(0)
        .await
        .expect("history")
        .expect("I rows exist");
    assert!(
        history.nid > max_nid,
        "new nid {} above {max_nid}",
        history.nid
    );
    let k1 = key("", "b.yaml");
    let read = target
        .configs
        .get(&k1)
        .await
        .expect("get")
        .expect("imported");
    assert!(
        copied.contains(&Record::Config(read)),
        "the imported config reads back as exported"
    );
}

/// Importing the same records again converges to the same store; a record replaces the target
/// rows with its id or its key; rows the dump does not hold stay.
pub async fn import_is_idempotent_and_replaces_by_key<B: Backend>(backend: &B) {
    let (source, _g1) = backend.build().await;
    let (target, _g2) = backend.build().await;
    populate(&source).await;
    // The target holds configs on the dump's ids (1, 2), the dump's key "b.yaml" under
    // another id, and configs the dump does not touch (ids above every id of the dump).
    for filler in ["f1", "f2", "f3"] {
        must_publish(&target, publish(&key("", filler), "filler")).await;
    }
    let clash = must_publish(&target, publish(&key("", "b.yaml"), "old")).await;
    must_publish(&target, publish(&key("", "unrelated"), "stays")).await;
    let records = export(source.transfer.as_ref(), 1000).await;
    let source_b = records
        .iter()
        .find_map(|r| match r {
            Record::Config(c) if c.key.data_id == "b.yaml" => Some(c.clone()),
            _ => None,
        })
        .expect("b.yaml exported");
    assert_ne!(clash.id, source_b.id, "the fixture makes the ids differ");
    target
        .transfer
        .import(records.clone())
        .await
        .expect("import");
    let once = export(target.transfer.as_ref(), 1000).await;
    target
        .transfer
        .import(records.clone())
        .await
        .expect("again");
    let twice = export(target.transfer.as_ref(), 1000).await;
    assert_eq!(once, twice, "a repeated import changes nothing");
    let b = target
        .configs
        .get(&key("", "b.yaml"))
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        b.id, source_b.id,
        "the dump's row replaced the clashing one"
    );
    assert_eq!(b.content, "one, updated");
    let ids: Vec<u64> = once
        .iter()
        .filter_map(|r| match r {
            Record::Config(c) => Some(c.id),
            _ => None,
        })
        .collect();
    assert!(!ids.contains(&clash.id), "the replaced row's id is gone");
    let kept = target
        .configs
        .get(&key("", "unrelated"))
        .await
        .expect("get");
    assert_eq!(kept.map(|c| c.content).as_deref(), Some("stays"));
    for (data_id, present) in [("f1", false), ("f2", false), ("f3", true)] {
        let found = target.configs.get(&key("", data_id)).await.expect("get");
        assert_eq!(
            found.is_some(),
            present,
            "{data_id}: replaced when the dump holds its id, else kept"
        );
    }
}

/// A batch with a record the backend cannot store is refused as a whole.
pub async fn import_refuses_orphan_instance_and_writes_nothing<B: Backend>(backend: &B) {
    let (repos, _guard) = backend.build().await;
    if !supported(&repos, Requirement::PersistentInstances, "import (orphan)") {
        return;
    }
    let batch = vec![
        Record::Namespace(Namespace {
            id: "ns-orphan".into(),
            name: "n".into(),
            desc: String::new(),
            created_ms: 5,
            modified_ms: 5,
        }),
        Record::Instance(StoredInstance {
            service: service("never-stored"),
            instance: instance("10.0.0.1", 80, "DEFAULT"),
        }),
    ];
    let outcome = repos.transfer.import(batch).await;
    assert!(
        matches!(outcome, Err(RepoError::InvalidArgument(_))),
        "orphan instance: {outcome:?}"
    );
    assert_eq!(
        repos.namespaces.get("ns-orphan").await.expect("get"),
        None,
        "nothing of the refused batch is written"
    );
}

/// Writes that land while an export runs are not in it: every page comes from one snapshot.
pub async fn export_is_a_consistent_snapshot<B: Backend>(backend: &B) {
    let (repos, _guard) = backend.build().await;
    populate(&repos).await;
    let before = export(repos.transfer.as_ref(), 1000).await;
    struct Writing<'a> {
        repos: &'a Repos,
        wrote: bool,
        records: Vec<Record>,
    }
    #[async_trait]
    impl ExportSink for Writing<'_> {
        async fn page(&mut self, _table: Table, records: Vec<Record>) -> Result<(), RepoError> {
            if !self.wrote {
                self.wrote = true;
                // Lands after the snapshot began: a new config, an update, a new user.
                must_publish(self.repos, publish(&key("", "late"), "late")).await;
                must_publish(self.repos, publish(&key("ns-a", "a.txt"), "changed")).await;
                self.repos
                    .users
                    .create_user(User {
                        username: "late-user".into(),
                        password_hash: "$2a$10$late".into(),
                        enabled: true,
                    })
                    .await
                    .expect("user");
            }
            self.records.extend(records);
            Ok(())
        }
    }
    let mut sink = Writing {
        repos: &repos,
        wrote: false,
        records: Vec::new(),
    };
    repos.transfer.export(1, &mut sink).await.expect("export");
    assert!(sink.wrote, "the export delivered pages");
    assert_eq!(
        sink.records, before,
        "the export during writes equals the one before them"
    );
    let after = export(repos.transfer.as_ref(), 1000).await;
    assert_ne!(after, before, "the writes did land");
}
