//! Unit tests of the parts the conformance suite (in `nacos-tests`) cannot see: determinism of
//! [`apply`], restart persistence, and open errors.

use std::path::Path;
use std::sync::Arc;

use nacos_core::{
    ConfigKey, ConfigPublish, Gray, GrayPublish, Instance, Namespace, Operator, RepoError,
    ServiceKey, ServiceMeta,
};
use redb::{Key, ReadableDatabase, ReadableTable, TableDefinition, Value};

use crate::command::{Command, CommandOutput};
use crate::store::{EmbeddedStore, FILE_NAME};
use crate::tables;

fn operator() -> Operator {
    Operator {
        user: "nacos".to_string(),
        ip: "10.0.0.1".to_string(),
    }
}

fn publish(data_id: &str, content: &str) -> ConfigPublish {
    ConfigPublish {
        key: ConfigKey::new("", "DEFAULT_GROUP", data_id),
        content: content.to_string(),
        config_type: Some("yaml".to_string()),
        operator: operator(),
        ..ConfigPublish::default()
    }
}

/// A fixed script touching every command, with fixed timestamps, including failing commands.
pub(crate) fn script() -> Vec<Command> {
    let service = ServiceKey::new("public", "DEFAULT_GROUP", "svc");
    let mut meta = ServiceMeta::new(ServiceKey::new("public", "DEFAULT_GROUP", "other"), false);
    meta.created_ms = 5;
    meta.modified_ms = 5;
    let mut instance = Instance::new("10.0.0.9", 8080);
    instance.ephemeral = false;
    let mut cas = publish("a", "a3");
    cas.cas_md5 = Some("not-the-md5".to_string());
    vec![
        Command::PublishConfig {
            publish: publish("a", "a1"),
            now_ms: 100,
        },
        Command::PublishConfig {
            publish: publish("b", "b1"),
            now_ms: 101,
        },
        Command::PublishConfig {
            publish: publish("a", "a2"),
            now_ms: 102,
        },
        Command::PublishConfig {
            publish: cas,
            now_ms: 103,
        },
        Command::PublishGray {
            gray: Gray::Beta,
            publish: GrayPublish {
                key: ConfigKey::new("", "DEFAULT_GROUP", "a"),
                content: "beta".to_string(),
                beta_ips: vec!["1.1.1.1".to_string()],
                operator: operator(),
                ..GrayPublish::default()
            },
            now_ms: 104,
        },
        Command::PublishGray {
            gray: Gray::Tag("blue".to_string()),
            publish: GrayPublish {
                key: ConfigKey::new("", "DEFAULT_GROUP", "a"),
                content: "blue".to_string(),
                operator: operator(),
                ..GrayPublish::default()
            },
            now_ms: 105,
        },
        Command::RemoveGray {
            key: ConfigKey::new("", "DEFAULT_GROUP", "a"),
            gray: Gray::Beta,
            now_ms: 106,
        },
        Command::RemoveConfig {
            key: ConfigKey::new("", "DEFAULT_GROUP", "b"),
            operator: operator(),
            now_ms: 107,
        },
        Command::PublishConfig {
            publish: publish("b", "b2"),
            now_ms: 108,
        },
        Command::RemoveConfigsByIds {
            ids: vec![1, 99],
            operator: operator(),
            now_ms: 109,
        },
        Command::CreateNamespace {
            namespace: Namespace {
                id: "dev".to_string(),
                name: "Dev".to_string(),
                desc: "development".to_string(),
                created_ms: 1,
                modified_ms: 1,
            },
        },
        Command::UpdateNamespace {
            id: "dev".to_string(),
            name: "Development".to_string(),
            desc: String::new(),
            now_ms: 110,
        },
        Command::UpdateNamespace {
            id: "missing".to_string(),
            name: String::new(),
            desc: String::new(),
            now_ms: 111,
        },
        Command::CreateService { meta: meta.clone() },
        Command::UpdateService { meta },
        Command::RegisterInstance {
            service: service.clone(),
            instance: instance.clone(),
            now_ms: 112,
        },
        Command::DeleteService {
            key: service.clone(),
        },
        Command::DeregisterInstance {
            service: service.clone(),
            ip: instance.ip.to_string(),
            port: instance.port,
            cluster: instance.cluster.to_string(),
        },
        Command::DeleteService { key: service },
        Command::DeleteNamespace {
            id: "dev".to_string(),
        },
    ]
}

/// Every (key bytes, value bytes) pair of a table.
fn dump_table<K: Key + 'static, V: Value + 'static>(
    txn: &redb::ReadTransaction,
    definition: TableDefinition<K, V>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let table = txn.open_table(definition).expect("table exists after open");
    let mut out = Vec::new();
    for row in table.iter().expect("iterate table") {
        let (k, v) = row.expect("read row");
        out.push((
            K::as_bytes(&k.value()).as_ref().to_vec(),
            V::as_bytes(&v.value()).as_ref().to_vec(),
        ));
    }
    out
}

/// The whole database state, table by table.
fn dump(store: &EmbeddedStore) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    let txn = store.db.begin_read().expect("begin read");
    vec![
        dump_table(&txn, tables::CONFIGS),
        dump_table(&txn, tables::CONFIG_IDS),
        dump_table(&txn, tables::HISTORY),
        dump_table(&txn, tables::HISTORY_BY_KEY),
        dump_table(&txn, tables::HISTORY_BY_CONFIG),
        dump_table(&txn, tables::GRAYS),
        dump_table(&txn, tables::CHANGES),
        dump_table(&txn, tables::CHANGE_BY_KEY),
        dump_table(&txn, tables::NAMESPACES),
        dump_table(&txn, tables::SERVICES),
        dump_table(&txn, tables::INSTANCES),
        dump_table(&txn, tables::COUNTERS),
        dump_table(&txn, tables::META),
    ]
}

async fn run(store: &EmbeddedStore, commands: &[Command]) -> Vec<Result<CommandOutput, RepoError>> {
    let mut outputs = Vec::new();
    for command in commands {
        outputs.push(store.execute(command.clone()).await);
    }
    outputs
}

#[tokio::test]
async fn apply_is_deterministic_across_fresh_databases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = EmbeddedStore::open(&dir.path().join("one.redb")).expect("open first");
    let second = EmbeddedStore::open(&dir.path().join("two.redb")).expect("open second");
    let commands = script();
    // The second database replays the commands as a replicated log would carry them.
    let replayed: Vec<Command> = commands
        .iter()
        .map(|c| {
            let bytes = serde_json::to_vec(c).expect("serialize command");
            serde_json::from_slice(&bytes).expect("deserialize command")
        })
        .collect();
    assert_eq!(commands, replayed, "commands round-trip through serde");

    let out_first = run(&first, &commands).await;
    let out_second = run(&second, &replayed).await;
    assert_eq!(out_first, out_second, "same outputs, same ids");
    assert_eq!(dump(&first), dump(&second), "same state");

    // Spot-check the script did what it says, so the comparison is not vacuous.
    assert!(matches!(&out_first[0], Ok(CommandOutput::Config(item)) if item.id == 1));
    assert!(matches!(&out_first[1], Ok(CommandOutput::Config(item)) if item.id == 2));
    assert!(matches!(
        &out_first[3],
        Err(RepoError::PreconditionFailed(_))
    ));
    assert!(matches!(&out_first[8], Ok(CommandOutput::Config(item)) if item.id == 3));
    assert!(matches!(&out_first[9], Ok(CommandOutput::RemovedConfigs(items)) if items.len() == 1));
    assert!(matches!(&out_first[12], Err(RepoError::NotFound(_))));
    assert!(matches!(
        &out_first[16],
        Err(RepoError::PreconditionFailed(_))
    ));
    assert!(matches!(&out_first[18], Ok(CommandOutput::Done)));
}

#[tokio::test]
async fn failed_command_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(&dir.path().join("db.redb")).expect("open");
    store
        .execute(Command::PublishConfig {
            publish: publish("a", "1"),
            now_ms: 1,
        })
        .await
        .expect("publish");
    let before = dump(&store);
    let mut cas = publish("a", "2");
    cas.cas_md5 = Some("wrong".to_string());
    let result = store
        .execute(Command::PublishConfig {
            publish: cas,
            now_ms: 2,
        })
        .await;
    assert!(
        matches!(result, Err(RepoError::PreconditionFailed(_))),
        "{result:?}"
    );
    assert_eq!(before, dump(&store), "counters and tables unchanged");
}

#[tokio::test]
async fn reopen_sees_everything_and_keeps_counting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested").join("db.redb");
    let before = {
        let store = Arc::new(EmbeddedStore::open(&path).expect("open"));
        run(&store, &script()).await;
        let repos = store.clone().repos();
        let item = repos
            .configs
            .publish(publish("c", "c1"))
            .await
            .expect("publish c");
        drop(repos);
        (dump(&store), item.id)
    };
    let store = Arc::new(EmbeddedStore::open(&path).expect("reopen"));
    assert_eq!(before.0, dump(&store), "state survives reopen");
    let repos = store.repos();
    let key = ConfigKey::new("", "DEFAULT_GROUP", "c");
    let got = repos
        .configs
        .get(&key)
        .await
        .expect("get")
        .expect("c exists after reopen");
    assert_eq!(got.content, "c1");
    let next = repos
        .configs
        .publish(publish("d", "d1"))
        .await
        .expect("publish d");
    assert!(next.id > before.1, "ids are not reused after reopen");
}

#[tokio::test]
async fn open_reports_locked_and_corrupt_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    let store = EmbeddedStore::open(&path).expect("open");
    let second = EmbeddedStore::open(&path);
    match second {
        Err(RepoError::Unavailable(msg)) => {
            assert!(msg.contains("db.redb") && msg.contains("locked"), "{msg}");
        }
        other => panic!("second open of a locked file: {other:?}"),
    }
    drop(store);

    let garbage = dir.path().join("garbage.redb");
    std::fs::write(&garbage, vec![0x5a_u8; 64 * 1024]).expect("write garbage");
    match EmbeddedStore::open(&garbage) {
        Err(RepoError::Internal(msg)) => {
            assert!(
                msg.contains("garbage.redb") && msg.contains("not a valid redb"),
                "{msg}"
            );
        }
        other => panic!("open of a garbage file: {other:?}"),
    }
}

#[test]
fn open_accepts_a_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open dir");
    assert_eq!(store.path(), dir.path().join(FILE_NAME));
    drop(store);
    let repos = crate::open_repos(dir.path()).expect("open_repos");
    assert_eq!(repos.capabilities, nacos_core::Capabilities::ALL);
    let _ = Path::new(FILE_NAME);
}

/// Concurrent writes share fsyncs (group commit), yet each caller gets its own outcome: a CAS
/// mismatch or a duplicate among them fails alone and writes nothing, and every acknowledged
/// write is in the file when it is opened again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_commit_together_and_fail_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.redb");
    let store = Arc::new(EmbeddedStore::open(&path).expect("open"));
    store
        .execute(Command::PublishConfig {
            publish: publish("guarded", "v1"),
            now_ms: 1,
        })
        .await
        .expect("seed");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let mut item = publish(&format!("k{i}"), &format!("v{i}"));
            if i % 50 == 7 {
                item = publish("guarded", "lost");
                item.cas_md5 = Some("not-the-md5".to_string());
            }
            let result = store
                .execute(Command::PublishConfig {
                    publish: item,
                    now_ms: 2,
                })
                .await;
            (i, result)
        });
    }
    let mut acknowledged = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.expect("task");
        if i % 50 == 7 {
            assert!(
                matches!(result, Err(RepoError::PreconditionFailed(_))),
                "write {i}: {result:?}"
            );
        } else {
            result.unwrap_or_else(|e| panic!("write {i}: {e}"));
            acknowledged.push(i);
        }
    }
    assert_eq!(acknowledged.len(), 196);
    drop(store);

    let repos = Arc::new(EmbeddedStore::open(&path).expect("reopen")).repos();
    for i in acknowledged {
        let key = ConfigKey::new("", "DEFAULT_GROUP", format!("k{i}"));
        let item = repos.configs.get(&key).await.expect("get");
        assert_eq!(item.map(|c| c.content), Some(format!("v{i}")), "k{i}");
    }
    let guarded = repos
        .configs
        .get(&ConfigKey::new("", "DEFAULT_GROUP", "guarded"))
        .await
        .expect("get")
        .expect("guarded exists");
    assert_eq!(guarded.content, "v1", "failed CAS writes left nothing");
}
