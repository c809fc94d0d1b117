//! [`NamespaceRepo`] on Nacos's `tenant_info`: `kp` `'1'`, `create_source` `'nacos'`,
//! `gmt_*` as epoch milliseconds. Namespace reads always go to the primary: the table is small
//! and read rarely, and it makes [`NamespaceRepo::list`] an honest readiness probe (it fails
//! with `Unavailable` while no primary is reachable).

use async_trait::async_trait;
use nacos_core::{Namespace, NamespaceRepo, RepoError, RepoResult};
use sqlx::mysql::MySqlRow;

use crate::sql::{int, text};
use crate::store::{MysqlStore, Route};

pub(crate) const COLUMNS: &str = "tenant_id, tenant_name, tenant_desc, \
                       CAST(gmt_create AS SIGNED) AS gmt_create, \
                       CAST(gmt_modified AS SIGNED) AS gmt_modified";

pub(crate) fn from_row(row: &MySqlRow) -> Result<Namespace, sqlx::Error> {
    Ok(Namespace {
        id: text(row, "tenant_id")?,
        name: text(row, "tenant_name")?,
        desc: text(row, "tenant_desc")?,
        created_ms: int(row, "gmt_create")?,
        modified_ms: int(row, "gmt_modified")?,
    })
}

#[async_trait]
impl NamespaceRepo for MysqlStore {
    async fn list(&self) -> RepoResult<Vec<Namespace>> {
        self.read("list namespaces", Route::Primary, |c| {
            Box::pin(async move {
                let rows = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM tenant_info WHERE kp = '1' \
                     ORDER BY gmt_create, tenant_id"
                ))
                .fetch_all(&mut *c)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(from_row(row)?);
                }
                // Byte order of ids on ties, whatever the database's collation.
                nacos_core::rules::sort_namespaces(&mut out);
                Ok(out)
            })
        })
        .await
    }

    async fn get(&self, id: &str) -> RepoResult<Option<Namespace>> {
        let id = id.to_string();
        self.read("get namespace", Route::Primary, move |c| {
            Box::pin(async move {
                let row = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM tenant_info WHERE kp = '1' AND tenant_id = ?"
                ))
                .bind(&id)
                .fetch_optional(&mut *c)
                .await?;
                Ok(row.as_ref().map(from_row).transpose()?)
            })
        })
        .await
    }

    async fn create(&self, namespace: Namespace) -> RepoResult<()> {
        let result = self
            .write("create namespace", move |c| {
                let ns = namespace.clone();
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO tenant_info (kp, tenant_id, tenant_name, tenant_desc, \
                         create_source, gmt_create, gmt_modified) \
                         VALUES ('1', ?, ?, ?, 'nacos', ?, ?)",
                    )
                    .bind(&ns.id)
                    .bind(&ns.name)
                    .bind(&ns.desc)
                    .bind(ns.created_ms)
                    .bind(ns.modified_ms)
                    .execute(&mut *c)
                    .await?;
                    Ok(())
                })
            })
            .await;
        match result {
            Err(RepoError::AlreadyExists(_)) => Err(RepoError::AlreadyExists(
                "a namespace with this id already exists".to_string(),
            )),
            other => other,
        }
    }

    async fn update(&self, id: &str, name: &str, desc: &str) -> RepoResult<()> {
        let (id, name, desc) = (id.to_string(), name.to_string(), desc.to_string());
        self.write("update namespace", move |c| {
            let (id, name, desc) = (id.clone(), name.clone(), desc.clone());
            Box::pin(async move {
                let now = crate::sql::now_ms(c).await?;
                let done = sqlx::query(
                    "UPDATE tenant_info SET tenant_name = ?, tenant_desc = ?, gmt_modified = ? \
                     WHERE kp = '1' AND tenant_id = ?",
                )
                .bind(&name)
                .bind(&desc)
                .bind(now)
                .bind(&id)
                .execute(&mut *c)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(RepoError::NotFound(format!("namespace {id}")).into());
                }
                Ok(())
            })
        })
        .await
    }

    async fn delete(&self, id: &str) -> RepoResult<bool> {
        let id = id.to_string();
        self.write("delete namespace", move |c| {
            let id = id.clone();
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM tenant_info WHERE kp = '1' AND tenant_id = ?")
                    .bind(&id)
                    .execute(&mut *c)
                    .await?;
                Ok(done.rows_affected() > 0)
            })
        })
        .await
    }
}
