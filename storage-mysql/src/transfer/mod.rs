//! [`TransferRepo`] on Nacos's tables: exports read one `REPEATABLE READ` transaction started
//! `WITH CONSISTENT SNAPSHOT` on the primary (InnoDB's snapshot: every page sees the same
//! moment); each import batch is one write transaction of multi-row statements.
//!
//! `datetime` columns keep whole seconds, and `config_info_tag` has no `encrypted_data_key`:
//! [`TransferRepo::stored_form`] says so, so a verification compares like with like.
//!
//! # Layout
//! - this file: the [`TransferRepo`] implementation and the table counts;
//! - `export`: one page of a table, read inside the snapshot transaction, and the whole export;
//! - `import`: one batch written by the import rule, a multi-row statement per table.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use nacos_core::transfer::{ExportSink, Record, Table, TransferRepo};
use nacos_core::{RepoError, RepoResult};
use sqlx::MySqlConnection;

use crate::error;
use crate::sql::int;
use crate::store::{Failure, MysqlStore};

use export::export_all;
use import::import_tx;

mod export;
mod import;

pub(super) type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, Failure>> + Send + 'a>>;

fn counts_of(c: &mut MySqlConnection) -> Boxed<'_, BTreeMap<Table, u64>> {
    Box::pin(async move {
        let row = sqlx::query(
            "SELECT \
             CAST((SELECT COUNT(*) FROM tenant_info WHERE kp = '1') AS SIGNED) AS namespaces, \
             CAST((SELECT COUNT(*) FROM users) AS SIGNED) AS users, \
             CAST((SELECT COUNT(*) FROM roles) AS SIGNED) AS roles, \
             CAST((SELECT COUNT(*) FROM permissions) AS SIGNED) AS permissions, \
             CAST((SELECT COUNT(*) FROM config_info) AS SIGNED) AS configs, \
             CAST((SELECT COUNT(*) FROM config_info_beta) + \
                  (SELECT COUNT(*) FROM config_info_tag) AS SIGNED) AS grays, \
             CAST((SELECT COUNT(*) FROM his_config_info) AS SIGNED) AS history, \
             CAST((SELECT COUNT(*) FROM ext_service) AS SIGNED) AS services, \
             CAST((SELECT COUNT(*) FROM ext_instance) AS SIGNED) AS instances",
        )
        .fetch_one(&mut *c)
        .await?;
        let mut out = BTreeMap::new();
        for table in Table::ALL {
            out.insert(
                table,
                u64::try_from(int(&row, table.name())?).unwrap_or_default(),
            );
        }
        Ok(out)
    })
}

impl MysqlStore {
    fn export_on_primary<'a>(
        &'a self,
        page_size: u32,
        sink: &'a mut dyn ExportSink,
    ) -> Pin<Box<dyn Future<Output = RepoResult<()>> + Send + 'a>> {
        Box::pin(async move {
            let what = "export";
            let node = self
                .cluster
                .primary()
                .ok_or_else(|| self.no_primary(what))?;
            let map = |e| error::map(e, what, &node.label);
            let mut conn = node.pool.acquire().await.map_err(map)?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *conn)
                .await
                .map_err(map)?;
            sqlx::query("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                .execute(&mut *conn)
                .await
                .map_err(map)?;
            let result = export_all(&mut conn, page_size, sink).await;
            // Ends the read-only snapshot before the connection goes back to the pool.
            let ended = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            match result {
                Ok(()) => ended.map(|_| ()).map_err(map),
                Err(Failure::Repo(e)) => Err(e),
                Err(Failure::Db(e)) => Err(map(e)),
                Err(Failure::Retry) => Err(RepoError::Internal(
                    "export: a read asked to be retried".into(),
                )),
            }
        })
    }
}

#[async_trait]
impl TransferRepo for MysqlStore {
    async fn export(&self, page_size: u32, sink: &mut dyn ExportSink) -> RepoResult<()> {
        self.export_on_primary(page_size, sink).await
    }

    async fn import(&self, batch: Vec<Record>) -> RepoResult<()> {
        self.write("import", move |c| {
            let batch = batch.clone();
            Box::pin(async move { import_tx(c, &batch).await })
        })
        .await
    }

    async fn counts(&self) -> RepoResult<BTreeMap<Table, u64>> {
        self.read("count rows", crate::store::Route::Primary, |c| counts_of(c))
            .await
    }

    fn stored_form(&self, record: &mut Record) {
        record.truncate_times_to_seconds();
        record.drop_tag_data_key();
    }
}
