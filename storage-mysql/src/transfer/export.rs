//! The export: one page of a table at a time, every table in order, inside the snapshot
//! transaction the caller opened.

use nacos_core::transfer::{ExportSink, Record, StoredInstance, Table, gray_order};
use nacos_core::{GrayConfig, Permission, RoleBinding, ServiceKey};
use sqlx::MySqlConnection;
use sqlx::mysql::MySqlRow;

use crate::configs::rows;
use crate::instances::{INSTANCE_COLUMNS, SERVICE_COLUMNS, instance_from_row, service_from_row};
use crate::sql::text;

use super::Boxed;

/// Rows of `sql` (which ends in `LIMIT ? OFFSET ?`, after a `> ?` key condition when `after`
/// is given), mapped by `map`.
pub(super) fn page<'a, T: Send + 'a>(
    c: &'a mut MySqlConnection,
    sql: String,
    (after, offset, limit): (Option<u64>, usize, usize),
    map: fn(&MySqlRow) -> Result<T, sqlx::Error>,
) -> Boxed<'a, Vec<T>> {
    Box::pin(async move {
        let mut query = sqlx::query(&sql);
        if let Some(after) = after {
            query = query.bind(after);
        }
        let rows = query
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&mut *c)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(map(row)?);
        }
        Ok(out)
    })
}

pub(super) fn role_row(row: &MySqlRow) -> Result<RoleBinding, sqlx::Error> {
    Ok(RoleBinding {
        role: text(row, "role")?,
        username: text(row, "username")?,
    })
}

pub(super) fn permission_row(row: &MySqlRow) -> Result<Permission, sqlx::Error> {
    Ok(Permission {
        role: text(row, "role")?,
        resource: text(row, "resource")?,
        action: text(row, "action")?,
    })
}

pub(super) fn stored_instance_row(row: &MySqlRow) -> Result<StoredInstance, sqlx::Error> {
    Ok(StoredInstance {
        service: ServiceKey::new(
            text(row, "namespace_id")?,
            text(row, "group_name")?,
            text(row, "service_name")?,
        ),
        instance: instance_from_row(row)?,
    })
}

/// The paged `SELECT` of a table, in its export order (strings compared as bytes).
pub(super) fn select_sql(table: Table) -> String {
    let bin = |c: &str| format!("CAST({c} AS BINARY)");
    let body = match table {
        Table::Namespaces => format!(
            "SELECT {} FROM tenant_info WHERE kp = '1' ORDER BY {}",
            crate::namespaces::COLUMNS,
            bin("tenant_id")
        ),
        Table::Users => format!(
            "SELECT username, password, CAST(enabled AS SIGNED) AS enabled FROM users \
             ORDER BY {}",
            bin("username")
        ),
        Table::Roles => format!(
            "SELECT role, username FROM roles ORDER BY {}, {}",
            bin("role"),
            bin("username")
        ),
        Table::Permissions => format!(
            "SELECT role, resource, action FROM permissions ORDER BY {}, {}, {}",
            bin("role"),
            bin("resource"),
            bin("action")
        ),
        // The big tables page by key (`> last id`), not by offset; see `keyset_page`.
        Table::Configs => format!(
            "SELECT {} FROM config_info c WHERE c.id > ? ORDER BY c.id",
            *rows::CONFIG_COLUMNS
        ),
        Table::History => format!(
            "SELECT {} FROM his_config_info h WHERE h.nid > ? ORDER BY h.nid",
            *rows::HISTORY_COLUMNS
        ),
        Table::Services => format!(
            "SELECT {SERVICE_COLUMNS} FROM ext_service ORDER BY {}, {}, {}",
            bin("namespace_id"),
            bin("group_name"),
            bin("service_name")
        ),
        Table::Instances => format!(
            "SELECT s.namespace_id, s.group_name, s.service_name, {INSTANCE_COLUMNS} \
             FROM ext_instance i JOIN ext_service s ON s.id = i.service_id \
             ORDER BY {}, {}, {}, {}, i.port, {}",
            bin("s.namespace_id"),
            bin("s.group_name"),
            bin("s.service_name"),
            bin("i.ip"),
            bin("i.cluster_name")
        ),
        // Two tables merged in one order: read whole (variants are few), see `all_grays`.
        Table::Grays => String::new(),
    };
    format!("{body} LIMIT ? OFFSET ?")
}

/// Every beta and tag variant, in export order.
pub(super) fn all_grays(c: &mut MySqlConnection) -> Boxed<'_, Vec<GrayConfig>> {
    Box::pin(async move {
        let mut out = Vec::new();
        let beta = format!("SELECT {} FROM config_info_beta g", *rows::BETA_COLUMNS);
        for row in sqlx::query(&beta).fetch_all(&mut *c).await? {
            out.push(rows::gray(&row, true)?);
        }
        let tags = format!("SELECT {} FROM config_info_tag g", *rows::TAG_COLUMNS);
        for row in sqlx::query(&tags).fetch_all(&mut *c).await? {
            out.push(rows::gray(&row, false)?);
        }
        out.sort_by(|a, b| gray_order(a).cmp(&gray_order(b)));
        Ok(out)
    })
}

/// One page of `table` at `offset` (configs and history: after the id / nid `after`).
pub(super) fn read_page(
    c: &mut MySqlConnection,
    table: Table,
    (after, offset, limit): (u64, usize, usize),
) -> Boxed<'_, Vec<Record>> {
    Box::pin(async move {
        let sql = select_sql(table);
        let keyset = matches!(table, Table::Configs | Table::History);
        let at = if keyset {
            (Some(after), 0, limit)
        } else {
            (None, offset, limit)
        };
        Ok(match table {
            Table::Namespaces => page(c, sql, at, crate::namespaces::from_row)
                .await?
                .into_iter()
                .map(Record::Namespace)
                .collect(),
            Table::Users => page(c, sql, at, crate::users::user_from_row)
                .await?
                .into_iter()
                .map(Record::User)
                .collect(),
            Table::Roles => page(c, sql, at, role_row)
                .await?
                .into_iter()
                .map(Record::Role)
                .collect(),
            Table::Permissions => page(c, sql, at, permission_row)
                .await?
                .into_iter()
                .map(Record::Permission)
                .collect(),
            Table::Configs => page(c, sql, at, rows::config)
                .await?
                .into_iter()
                .map(Record::Config)
                .collect(),
            Table::History => page(c, sql, at, rows::history)
                .await?
                .into_iter()
                .map(Record::History)
                .collect(),
            Table::Services => page(c, sql, at, |r| service_from_row(r).map(|(_, m)| m))
                .await?
                .into_iter()
                .map(Record::Service)
                .collect(),
            Table::Instances => page(c, sql, at, stored_instance_row)
                .await?
                .into_iter()
                .map(Record::Instance)
                .collect(),
            Table::Grays => Vec::new(),
        })
    })
}

pub(super) fn export_all<'a>(
    c: &'a mut MySqlConnection,
    page_size: u32,
    sink: &'a mut dyn ExportSink,
) -> Boxed<'a, ()> {
    Box::pin(async move {
        let limit = page_size.max(1) as usize;
        for table in Table::ALL {
            if table == Table::Grays {
                let grays = all_grays(c).await?;
                for chunk in grays.chunks(limit) {
                    let records = chunk.iter().cloned().map(Record::Gray).collect();
                    sink.page(table, records).await?;
                }
                continue;
            }
            let (mut after, mut offset) = (0, 0);
            loop {
                let records = read_page(c, table, (after, offset, limit)).await?;
                let full = records.len() == limit;
                offset += records.len();
                after = match records.last() {
                    Some(Record::Config(item)) => item.id,
                    Some(Record::History(entry)) => entry.nid,
                    _ => after,
                };
                if !records.is_empty() {
                    sink.page(table, records).await?;
                }
                if !full {
                    break;
                }
            }
        }
        Ok(())
    })
}
