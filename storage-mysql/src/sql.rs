//! Small SQL helpers: typed column reads by name that tolerate the shapes Nacos's tables come in, glob
//! filters, and the conversions between epoch milliseconds and `datetime` columns.

use nacos_core::{MatchMode, PageRequest};
use sqlx::mysql::MySqlRow;
use sqlx::{MySqlConnection, Row};

/// A text column, `NULL` read as `""`. Binary collations (`utf8mb4_bin`, Nacos's `utf8_bin`)
/// mark columns BINARY on the wire, which sqlx's checked `String` decode refuses, so this
/// decodes without the check (the bytes are still validated as UTF-8).
pub(crate) fn text(row: &MySqlRow, col: &str) -> Result<String, sqlx::Error> {
    Ok(row
        .try_get_unchecked::<Option<String>, _>(col)?
        .unwrap_or_default())
}

/// An integer column selected as `CAST(... AS SIGNED)`, `NULL` read as 0.
pub(crate) fn int(row: &MySqlRow, col: &str) -> Result<i64, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(col)?.unwrap_or_default())
}

/// An id: stored ids are positive.
pub(crate) fn id(row: &MySqlRow, col: &str) -> Result<u64, sqlx::Error> {
    Ok(u64::try_from(int(row, col)?).unwrap_or_default())
}

/// SQL for a `datetime` column as epoch milliseconds (whole seconds, in the session time zone).
pub(crate) fn ms_of(column: &str) -> String {
    format!("CAST(UNIX_TIMESTAMP({column}) AS SIGNED) * 1000")
}

/// The database clock in epoch ms: one clock for every server node.
pub(crate) async fn now_ms(c: &mut MySqlConnection) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("SELECT CAST(ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000) AS SIGNED) AS now_ms")
        .fetch_one(&mut *c)
        .await?;
    int(&row, "now_ms")
}

/// `LIMIT` and `OFFSET` of a page.
pub(crate) fn limit_offset(page: PageRequest) -> (i64, i64) {
    (
        i64::from(page.page_size),
        i64::try_from(page.offset()).unwrap_or(i64::MAX),
    )
}

/// Milliseconds rounded down to what a `datetime` column keeps (whole seconds).
pub(crate) fn to_second(ms: i64) -> i64 {
    ms.div_euclid(1000) * 1000
}

/// Escape character of the LIKE patterns built here (`!`, not `\`, so that the server's
/// `NO_BACKSLASH_ESCAPES` mode does not matter).
const ESCAPE: char = '!';

/// One `WHERE` condition on `column` for a filter as the repository traits define it: empty
/// means no condition; exact mode, or a value without `*`, compares equal; blur mode turns
/// `*` into "any run of characters". Returns the SQL and the value to bind.
pub(crate) fn filter(column: &str, value: &str, mode: MatchMode) -> Option<(String, String)> {
    if value.is_empty() {
        return None;
    }
    if mode == MatchMode::Exact || !value.contains('*') {
        return Some((format!("{column} = ?"), value.to_string()));
    }
    let mut pattern = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        match c {
            '*' => pattern.push('%'),
            '%' | '_' | ESCAPE => {
                pattern.push(ESCAPE);
                pattern.push(c);
            }
            other => pattern.push(other),
        }
    }
    Some((format!("{column} LIKE ? ESCAPE '{ESCAPE}'"), pattern))
}

/// `?, ?, ?` for `n` binds.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(filter("c", "", MatchMode::Blur), None);
        assert_eq!(
            filter("c", "a*", MatchMode::Exact),
            Some(("c = ?".to_string(), "a*".to_string()))
        );
        assert_eq!(
            filter("c", "a_b", MatchMode::Blur),
            Some(("c = ?".to_string(), "a_b".to_string()))
        );
        assert_eq!(
            filter("c", "*a_%!*", MatchMode::Blur),
            Some(("c LIKE ? ESCAPE '!'".to_string(), "%a!_!%!!%".to_string()))
        );
        assert_eq!(to_second(1_999), 1_000);
        assert_eq!(placeholders(3), "?, ?, ?");
    }
}
