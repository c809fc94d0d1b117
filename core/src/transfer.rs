//! Whole-store transfer: the dump model every backend exports and imports ([`Record`], one
//! per stored row, grouped by [`Table`]), the [`TransferRepo`] contract, and the per-table
//! digests a backup, restore or migration is verified with.
//!
//! A dump lists the tables in [`Table::ALL`] order (namespaces and auth first, then configs,
//! gray variants, history, services, then the instances that need their services), each in
//! the stable order [`Table::order`] states, so the same store always yields the same records
//! and, encoded with [`encode_line`], the same bytes.
//!
//! What is not carried: surrogate row ids no other row or API exposes (`tenant_info.id`, the
//! naming tables' ids, `config_tags_relation.nid`), the change index (rebuilt by an import:
//! every imported key counts as changed at import time), the Raft log, capacity and aggregate
//! tables (unused by this server).

use std::collections::BTreeMap;

use async_trait::async_trait;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::error::{RepoError, RepoResult};
use crate::model::*;

/// The name in a dump's header line.
pub const FORMAT_NAME: &str = "nacos-rs-dump";
/// The layout of [`Record`] a dump holds; a reader refuses other versions.
pub const FORMAT_VERSION: u32 = 1;

/// One kind of stored data, in dump order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    Namespaces,
    Users,
    Roles,
    Permissions,
    Configs,
    Grays,
    History,
    Services,
    Instances,
}

impl Table {
    /// Every table, in the order a dump lists them and an import must apply them.
    pub const ALL: [Table; 9] = [
        Table::Namespaces,
        Table::Users,
        Table::Roles,
        Table::Permissions,
        Table::Configs,
        Table::Grays,
        Table::History,
        Table::Services,
        Table::Instances,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Namespaces => "namespaces",
            Table::Users => "users",
            Table::Roles => "roles",
            Table::Permissions => "permissions",
            Table::Configs => "configs",
            Table::Grays => "grays",
            Table::History => "history",
            Table::Services => "services",
            Table::Instances => "instances",
        }
    }

    /// The order of a table's records in an export (strings compare by bytes).
    pub fn order(self) -> &'static str {
        match self {
            Table::Namespaces => "namespace id",
            Table::Users => "username",
            Table::Roles => "role, username",
            Table::Permissions => "role, resource, action",
            Table::Configs => "config id",
            Table::Grays => "namespace, group, dataId, then the beta before tags by name",
            Table::History => "nid",
            Table::Services => "namespace, group, service name",
            Table::Instances => "namespace, group, service name, ip, port, cluster",
        }
    }
}

/// A persistent instance with the service it belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredInstance {
    pub service: ServiceKey,
    pub instance: Instance,
}

/// One stored row, with every field a backend keeps (ids, nids, times, md5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub enum Record {
    Namespace(Namespace),
    User(User),
    Role(RoleBinding),
    Permission(Permission),
    Config(ConfigItem),
    Gray(GrayConfig),
    History(HistoryEntry),
    Service(ServiceMeta),
    Instance(StoredInstance),
}

impl Record {
    pub fn table(&self) -> Table {
        match self {
            Record::Namespace(_) => Table::Namespaces,
            Record::User(_) => Table::Users,
            Record::Role(_) => Table::Roles,
            Record::Permission(_) => Table::Permissions,
            Record::Config(_) => Table::Configs,
            Record::Gray(_) => Table::Grays,
            Record::History(_) => Table::History,
            Record::Service(_) => Table::Services,
            Record::Instance(_) => Table::Instances,
        }
    }

    /// Every time of the record rounded down to whole seconds (what a `datetime` column keeps).
    /// Namespace and service times are epoch-ms integers in every backend and stay as they are.
    pub fn truncate_times_to_seconds(&mut self) {
        let second = |ms: &mut i64| *ms = ms.div_euclid(1000) * 1000;
        match self {
            Record::Config(c) => {
                second(&mut c.created_ms);
                second(&mut c.modified_ms);
            }
            Record::Gray(g) => {
                second(&mut g.created_ms);
                second(&mut g.modified_ms);
            }
            Record::History(h) => {
                second(&mut h.created_ms);
                second(&mut h.modified_ms);
            }
            _ => {}
        }
    }

    /// Drop what Nacos's `config_info_tag` table has no column for (the encrypted data key of
    /// a tag variant), as both SQL backends must.
    pub fn drop_tag_data_key(&mut self) {
        if let Record::Gray(g) = self
            && matches!(g.gray, Gray::Tag(_))
        {
            g.encrypted_data_key.clear();
        }
    }
}

/// The sort key of a gray variant in an export: key, then the beta before tags by name.
pub fn gray_order(g: &GrayConfig) -> (&str, &str, &str, u8, &str) {
    let (kind, tag) = match &g.gray {
        Gray::Beta => (0, ""),
        Gray::Tag(t) => (1, t.as_str()),
    };
    (&g.key.namespace, &g.key.group, &g.key.data_id, kind, tag)
}

/// The sort key of an instance in an export.
pub fn instance_order(i: &StoredInstance) -> (&str, &str, &str, &str, u16, &str) {
    (
        &i.service.namespace,
        &i.service.group,
        &i.service.name,
        &i.instance.ip,
        i.instance.port,
        &i.instance.cluster,
    )
}

/// One record as a dump line (compact JSON, no newline). Deterministic: fields in declaration
/// order, maps sorted, floats in their shortest exact form.
pub fn encode_line(record: &Record) -> RepoResult<Vec<u8>> {
    serde_json::to_vec(record)
        .map_err(|e| RepoError::Internal(format!("cannot encode a dump record: {e}").into()))
}

/// Where [`TransferRepo::export`] delivers its pages.
#[async_trait]
pub trait ExportSink: Send {
    /// One page of `table`, in export order. An error stops the export and is returned by it.
    async fn page(&mut self, table: Table, records: Vec<Record>) -> RepoResult<()>;
}

/// Whole-store export and import, for backup, restore and migration between backends.
///
/// Import rule (idempotent, so a restore interrupted part way converges when run again):
/// every record is an upsert by its primary key — configs by id, history rows by nid, gray
/// variants by (key, beta or tag name), namespaces, users and services by their names, role
/// bindings and permissions by all their fields, instances by (service, ip, port, cluster) —
/// and a config (or a SQL backend's gray variant) also replaces the row holding its unique key
/// under another id; rows of the target that the dump does not hold are kept. Ids, nids and times are stored as given,
/// and later inserts get ids above every imported one. Each imported config key counts as
/// changed at import time (caches of running nodes refresh it). Tools refuse a non-empty
/// target unless told to merge (`--force`).
#[async_trait]
pub trait TransferRepo: Send + Sync + std::fmt::Debug {
    /// Every record, table by table in [`Table::ALL`] order, each table in its
    /// [`Table::order`], in pages of at most `page_size` records (a table may send no page),
    /// all read from ONE consistent snapshot: writes that commit during the export are either
    /// wholly in it or wholly absent.
    async fn export(&self, page_size: u32, sink: &mut dyn ExportSink) -> RepoResult<()>;

    /// Store one batch of records as the import rule says, atomically (the whole batch or
    /// nothing). Records of several tables may be mixed; they are applied in [`Table::ALL`]
    /// order, and an instance's service must be stored already or be in the batch.
    ///
    /// Errors: `InvalidArgument` for a record this backend cannot store (the message names
    /// it); nothing of the batch is written then.
    async fn import(&self, batch: Vec<Record>) -> RepoResult<()>;

    /// How many rows each table holds now (every table listed, zeros included).
    async fn counts(&self) -> RepoResult<BTreeMap<Table, u64>>;

    /// The record as this backend stores it: what an import keeps and an export would give
    /// back. The default keeps everything.
    fn stored_form(&self, record: &mut Record) {
        let _ = record;
    }
}

/// Count and MD5 of a table's dump lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDigest {
    pub count: u64,
    pub md5: String,
}

/// Per-table counts and MD5s over encoded dump lines (each line hashed with its `\n`).
#[derive(Clone, Debug, Default)]
pub struct Digests {
    tables: BTreeMap<Table, (u64, Md5)>,
}

impl Digests {
    pub fn new() -> Self {
        let mut tables = BTreeMap::new();
        for table in Table::ALL {
            tables.insert(table, (0, Md5::new()));
        }
        Digests { tables }
    }

    /// Add one encoded line of `table`.
    pub fn add_line(&mut self, table: Table, line: &[u8]) {
        let entry = self.tables.entry(table).or_insert_with(|| (0, Md5::new()));
        entry.0 += 1;
        entry.1.update(line);
        entry.1.update(b"\n");
    }

    pub fn add(&mut self, record: &Record) -> RepoResult<()> {
        let line = encode_line(record)?;
        self.add_line(record.table(), &line);
        Ok(())
    }

    pub fn finish(self) -> BTreeMap<Table, TableDigest> {
        self.tables
            .into_iter()
            .map(|(table, (count, md5))| {
                let digest = md5.finalize();
                let mut hex = String::with_capacity(32);
                for byte in digest {
                    hex.push_str(&format!("{byte:02x}"));
                }
                (table, TableDigest { count, md5: hex })
            })
            .collect()
    }
}

/// One table whose two sides differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDifference {
    pub table: Table,
    pub expected: TableDigest,
    pub actual: TableDigest,
}

/// The tables whose counts or MD5s differ between `expected` and `actual`.
pub fn compare(
    expected: &BTreeMap<Table, TableDigest>,
    actual: &BTreeMap<Table, TableDigest>,
) -> Vec<TableDifference> {
    Table::ALL
        .iter()
        .filter_map(|table| {
            let e = expected.get(table).cloned().unwrap_or_default();
            let a = actual.get(table).cloned().unwrap_or_default();
            (e != a).then_some(TableDifference {
                table: *table,
                expected: e,
                actual: a,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_deterministic_and_tagged() {
        let mut meta = ServiceMeta::new(ServiceKey::new("public", "G", "s"), false);
        meta.created_ms = 1;
        meta.modified_ms = 2;
        meta.metadata.insert("b".into(), "2".into());
        meta.metadata.insert("a".into(), "1".into());
        let line =
            String::from_utf8(encode_line(&Record::Service(meta.clone())).unwrap_or_default())
                .unwrap_or_default();
        assert!(line.starts_with(r#"{"t":"service","v":{"key":"#), "{line}");
        assert!(line.contains(r#""metadata":{"a":"1","b":"2"}"#), "{line}");
        let back: Record = serde_json::from_str(&line).expect("decodes");
        assert_eq!(back, Record::Service(meta));
    }

    #[test]
    fn digests_differ_by_table() {
        let mut a = Digests::new();
        let mut b = Digests::new();
        let user = Record::User(User {
            username: "u".into(),
            password_hash: "$2a$10$x".into(),
            enabled: true,
        });
        a.add(&user).expect("encodes");
        let (a, b_empty) = (a.finish(), {
            b.add_line(Table::Users, b"other");
            b.finish()
        });
        let diff = compare(&a, &b_empty);
        assert_eq!(diff.len(), 1);
        assert_eq!(diff[0].table, Table::Users);
        assert_eq!(a[&Table::Configs].count, 0);
        assert!(compare(&a, &a).is_empty());
    }

    #[test]
    fn seconds_truncation_floors() {
        let mut r = Record::History(HistoryEntry {
            nid: 1,
            config_id: 0,
            key: ConfigKey::new("", "G", "d"),
            content: String::new(),
            md5: String::new(),
            app_name: String::new(),
            src_user: String::new(),
            src_ip: String::new(),
            op: HistoryOp::Insert,
            encrypted_data_key: String::new(),
            created_ms: 1_999,
            modified_ms: -1,
        });
        r.truncate_times_to_seconds();
        let Record::History(h) = r else { panic!() };
        assert_eq!((h.created_ms, h.modified_ms), (1_000, -1_000));
    }
}
