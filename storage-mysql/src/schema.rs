//! The embedded schema (`conf/mysql-schema.sql`, the one source of truth), the start-up check
//! that every table exists, and the optional creation of what is missing.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use nacos_core::RepoError;
use sqlx::MySqlConnection;

use crate::error;
use crate::sql::text;

/// `conf/mysql-schema.sql`, compiled in.
pub const SCHEMA: &str = include_str!("../../conf/mysql-schema.sql");

/// The statements of [`SCHEMA`], comments removed, in order.
pub fn statements() -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in SCHEMA.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("--") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let statement = current.trim().trim_end_matches(';').trim().to_string();
            out.push(statement);
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// The first back-quoted name after `prefix` in `statement`, if it starts with `prefix`.
fn quoted_after<'a>(statement: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = statement.strip_prefix(prefix)?.trim_start();
    let rest = rest.strip_prefix('`')?;
    rest.split_once('`').map(|(name, _)| name)
}

/// Every table the schema creates (Nacos's and this server's).
pub fn tables() -> Vec<String> {
    statements()
        .iter()
        .filter_map(|s| quoted_after(s, "CREATE TABLE IF NOT EXISTS").map(str::to_string))
        .collect()
}

/// `(index, table)` of the `CREATE INDEX` statements (speed-ups, not required).
fn indexes(statement: &str) -> Option<(&str, &str)> {
    let index = quoted_after(statement, "CREATE INDEX")?;
    let (_, rest) = statement.split_once(" ON ")?;
    let table = quoted_after(rest.trim_start(), "")?;
    Some((index, table))
}

/// A boxed `Send` future (see [`crate::store::MysqlStore::open`] for why).
type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

fn present_tables(conn: &mut MySqlConnection) -> Boxed<'_, Result<BTreeSet<String>, sqlx::Error>> {
    Box::pin(async move {
        let rows = sqlx::query(
            "SELECT CAST(TABLE_NAME AS CHAR) AS table_name FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE()",
        )
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(|r| text(r, "table_name")).collect()
    })
}

fn index_exists<'a>(
    conn: &'a mut MySqlConnection,
    table: &'a str,
    index: &'a str,
) -> Boxed<'a, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        let rows = sqlx::query(
            "SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME = ? AND INDEX_NAME = ? LIMIT 1",
        )
        .bind(table)
        .bind(index)
        .fetch_all(&mut *conn)
        .await?;
        Ok(!rows.is_empty())
    })
}

fn create_missing<'a>(
    conn: &'a mut MySqlConnection,
    node: &'a str,
) -> Boxed<'a, Result<(), RepoError>> {
    Box::pin(async move {
        let map = |e| error::map(e, "checking the schema", node);
        for statement in statements() {
            if let Some((index, table)) = indexes(&statement)
                && index_exists(conn, table, index).await.map_err(map)?
            {
                continue;
            }
            sqlx::query(&statement)
                .persistent(false)
                .execute(&mut *conn)
                .await
                .map_err(|e| error::map(e, "creating the schema", node))?;
        }
        Ok(())
    })
}

/// Check that every table exists; with `init`, first create what is missing (tables and
/// indexes). `node` names the database in errors.
///
/// Errors: `Internal` naming the missing tables (without `init`); `Unavailable` when the
/// database cannot be reached; other kinds as [`error::map`].
pub(crate) fn ensure<'a>(
    conn: &'a mut MySqlConnection,
    init: bool,
    node: &'a str,
) -> Boxed<'a, Result<(), RepoError>> {
    Box::pin(async move {
        let map = |e| error::map(e, "checking the schema", node);
        if init {
            // Cluster nodes often start together: a named lock makes them create the schema
            // one after the other (DDL is not transactional in MySQL, and "does the index
            // exist" then "create it" would race).
            sqlx::query("SELECT GET_LOCK('nacos_schema_init', 60)")
                .execute(&mut *conn)
                .await
                .map_err(map)?;
            let created = create_missing(conn, node).await;
            let released = sqlx::query("SELECT RELEASE_LOCK('nacos_schema_init')")
                .execute(&mut *conn)
                .await
                .map_err(map);
            created?;
            released?;
        }
        let present = present_tables(conn).await.map_err(map)?;
        let missing: Vec<String> = tables()
            .into_iter()
            .filter(|t| !present.contains(t))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(RepoError::Internal(format!(
                "database {node} lacks table{} {}: create the schema with conf/mysql-schema.sql, \
             or start once with nacos.db.schema.init=true to create what is missing",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            ).into()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_lists_nacos_and_extension_tables() {
        let tables = tables();
        for t in [
            "config_info",
            "config_info_aggr",
            "config_info_beta",
            "config_info_tag",
            "config_tags_relation",
            "group_capacity",
            "his_config_info",
            "tenant_capacity",
            "tenant_info",
            "users",
            "roles",
            "permissions",
            "ext_config_change",
            "ext_service",
            "ext_instance",
        ] {
            assert!(tables.iter().any(|x| x == t), "{t} in {tables:?}");
        }
        assert_eq!(tables.len(), 15);
        let idx: Vec<(String, String)> = statements()
            .iter()
            .filter_map(|s| indexes(s).map(|(i, t)| (i.to_string(), t.to_string())))
            .collect();
        assert_eq!(
            idx,
            vec![(
                "idx_ext_his_config_id".to_string(),
                "his_config_info".to_string()
            )]
        );
        assert!(statements().iter().all(|s| !s.contains(';')));
    }
}
