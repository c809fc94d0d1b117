//! [`NamespaceRepo`] on Nacos's `tenant_info` (kp `'1'`, times in epoch milliseconds,
//! `create_source` `'nacos'`).

use async_trait::async_trait;
use diesel::pg::Pg;
use diesel::{
    ExpressionMethods, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use diesel_async::RunQueryDsl;
use nacos_core::{Namespace, NamespaceRepo, RepoError};

use crate::PgStore;
use crate::convert::{db_now, updated_row};
use crate::schema::tenant_info as t;

/// Nacos's constant `kp` for namespaces.
const KP: &str = "1";

#[derive(Queryable, Selectable)]
#[diesel(table_name = t, check_for_backend(Pg))]
pub(crate) struct NamespaceRow {
    tenant_id: Option<String>,
    tenant_name: Option<String>,
    tenant_desc: Option<String>,
    gmt_create: i64,
    gmt_modified: i64,
}

impl NamespaceRow {
    pub(crate) fn into_namespace(self) -> Namespace {
        Namespace {
            id: self.tenant_id.unwrap_or_default(),
            name: self.tenant_name.unwrap_or_default(),
            desc: self.tenant_desc.unwrap_or_default(),
            created_ms: self.gmt_create,
            modified_ms: self.gmt_modified,
        }
    }
}

#[async_trait]
impl NamespaceRepo for PgStore {
    async fn list(&self) -> Result<Vec<Namespace>, RepoError> {
        self.read(async |conn| {
            let rows: Vec<NamespaceRow> = t::table
                .filter(t::kp.eq(KP))
                .select(NamespaceRow::as_select())
                .load(conn)
                .await?;
            let mut all: Vec<Namespace> =
                rows.into_iter().map(NamespaceRow::into_namespace).collect();
            // Byte order of ids on ties, whatever the database's collation.
            nacos_core::rules::sort_namespaces(&mut all);
            Ok(all)
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<Namespace>, RepoError> {
        self.read(async |conn| {
            let row: Option<NamespaceRow> = t::table
                .filter(t::kp.eq(KP))
                .filter(t::tenant_id.eq(id))
                .select(NamespaceRow::as_select())
                .first(conn)
                .await
                .optional()?;
            Ok(row.map(NamespaceRow::into_namespace))
        })
        .await
    }

    async fn create(&self, namespace: Namespace) -> Result<(), RepoError> {
        let result = self
            .run(async |conn| {
                diesel::insert_into(t::table)
                    .values((
                        t::kp.eq(KP),
                        t::tenant_id.eq(&namespace.id),
                        t::tenant_name.eq(&namespace.name),
                        t::tenant_desc.eq(&namespace.desc),
                        t::create_source.eq("nacos"),
                        t::gmt_create.eq(namespace.created_ms),
                        t::gmt_modified.eq(namespace.modified_ms),
                    ))
                    .execute(conn)
                    .await?;
                Ok(())
            })
            .await;
        match result {
            Err(RepoError::AlreadyExists(_)) => Err(RepoError::AlreadyExists(format!(
                "namespace {}",
                namespace.id
            ))),
            other => other,
        }
    }

    async fn update(&self, id: &str, name: &str, desc: &str) -> Result<(), RepoError> {
        self.run(async |conn| {
            let now = db_now(conn).await?;
            let updated = diesel::update(t::table.filter(t::kp.eq(KP)).filter(t::tenant_id.eq(id)))
                .set((
                    t::tenant_name.eq(name),
                    t::tenant_desc.eq(desc),
                    t::gmt_modified.eq(now),
                ))
                .execute(conn)
                .await?;
            updated_row(updated, || RepoError::NotFound(format!("namespace {id}")))
        })
        .await
    }

    async fn delete(&self, id: &str) -> Result<bool, RepoError> {
        self.run(async |conn| {
            let deleted = diesel::delete(t::table.filter(t::kp.eq(KP)).filter(t::tenant_id.eq(id)))
                .execute(conn)
                .await?;
            Ok(deleted > 0)
        })
        .await
    }
}
