//! The start-up schema check: every table this backend uses must exist (resolved through the
//! session's `search_path`, as the queries resolve them). With `nacos.db.schema.init=true` the
//! whole of [`SCHEMA_SQL`](crate::SCHEMA_SQL) runs first (idempotent: `IF NOT EXISTS`), under
//! an advisory lock so that several nodes starting at once do not race.

use diesel::QueryableByName;
use diesel::sql_types::{Array, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use nacos_core::RepoError;

use crate::error;
use crate::schema::REQUIRED_TABLES;

/// Advisory lock key held while the schema script runs ("nacos" in ASCII).
const SCHEMA_LOCK: i64 = 0x006e_6163_6f73;

#[derive(QueryableByName)]
struct Missing {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Tables of [`REQUIRED_TABLES`] that the session cannot see.
async fn missing_tables(conn: &mut AsyncPgConnection) -> Result<Vec<String>, RepoError> {
    let names: Vec<String> = REQUIRED_TABLES.iter().map(|t| t.to_string()).collect();
    let rows: Vec<Missing> = diesel::sql_query(
        "SELECT t AS name FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) \
         WHERE to_regclass(quote_ident(t)) IS NULL ORDER BY n",
    )
    .bind::<Array<Text>, _>(names)
    .load(conn)
    .await
    .map_err(error::db)?;
    Ok(rows.into_iter().map(|m| m.name).collect())
}

/// Check the schema, creating it first when `init` is set.
///
/// Errors: `Internal` naming the missing tables (and how to create them) when `init` is false;
/// the mapped database error when the script fails.
pub(crate) async fn ensure_schema(
    conn: &mut AsyncPgConnection,
    node: &str,
    init: bool,
) -> Result<(), RepoError> {
    if init {
        // One simple-query batch is one implicit transaction: all of it or nothing, and the
        // transaction-scoped advisory lock is released at its end.
        let script = format!(
            "SELECT pg_advisory_xact_lock({SCHEMA_LOCK});\n{}",
            crate::SCHEMA_SQL
        );
        match conn.batch_execute(&script).await {
            Ok(()) => tracing::info!(node, "PostgreSQL schema checked and created where missing"),
            Err(e) => {
                let mapped = error::db(e);
                // A user without CREATE rights on a complete schema can still run the server.
                let missing = missing_tables(conn).await?;
                if !missing.is_empty() {
                    return Err(RepoError::Internal(
                        format!(
                            "creating the Nacos schema on PostgreSQL {node} failed ({mapped}); \
                         missing table(s): {}",
                            missing.join(", ")
                        )
                        .into(),
                    ));
                }
                tracing::warn!(
                    node,
                    error = %mapped,
                    "running the schema script failed, but every table exists; continuing"
                );
            }
        }
    }
    let missing = missing_tables(conn).await?;
    if missing.is_empty() {
        return Ok(());
    }
    Err(RepoError::Internal(
        format!(
            "PostgreSQL {node} is missing table(s) {}: create them with conf/postgresql-schema.sql \
         or start once with {}=true",
            missing.join(", "),
            crate::PROP_SCHEMA_INIT
        )
        .into(),
    ))
}
