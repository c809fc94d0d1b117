//! Small conversions between the domain model and column values: timestamps, ids, globs,
//! pages, JSON text.

use diesel::pg::data_types::PgTimestamp;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use nacos_core::{MatchMode, Page, PageRequest, RepoError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{self, Result};

/// Milliseconds from the Unix epoch to PostgreSQL's epoch (2000-01-01 00:00:00 UTC).
const PG_EPOCH_MS: i64 = 946_684_800_000;

/// A `timestamp` column value (UTC) for epoch milliseconds.
pub(crate) fn timestamp(ms: i64) -> PgTimestamp {
    PgTimestamp(ms.saturating_sub(PG_EPOCH_MS).saturating_mul(1_000))
}

/// Epoch milliseconds of a `timestamp` column value (UTC), rounded down.
pub(crate) fn millis(ts: PgTimestamp) -> i64 {
    ts.0.div_euclid(1_000).saturating_add(PG_EPOCH_MS)
}

/// The database's clock in epoch milliseconds. Every node of a cluster stamps its writes with
/// the one clock they share, so "changed since" compares like with like.
pub(crate) async fn db_now(conn: &mut AsyncPgConnection) -> Result<i64> {
    Ok(diesel::select(diesel::dsl::sql::<BigInt>(
        "floor(extract(epoch from clock_timestamp()) * 1000)::bigint",
    ))
    .get_result(conn)
    .await?)
}

/// A stored id as the model's `u64`.
pub(crate) fn id(value: i64, what: &str) -> Result<u64> {
    u64::try_from(value).map_err(|_| {
        RepoError::Internal(format!("negative {what} {value} in PostgreSQL").into()).into()
    })
}

/// A model id as a column value; `None` when it cannot be stored (so it matches no row).
pub(crate) fn db_id(value: u64) -> Option<i64> {
    i64::try_from(value).ok()
}

/// `LIMIT` and `OFFSET` of a page.
pub(crate) fn limit_offset(page: PageRequest) -> (i64, i64) {
    let limit = i64::from(page.page_size);
    let offset = i64::try_from(page.offset()).unwrap_or(i64::MAX);
    (limit, offset)
}

/// One page of `count` matching rows. `load(limit, offset)` runs only when the page asks for
/// rows and there are some (a `pageSize` of 0 asks for the count alone).
pub(crate) async fn page_of<T, E>(
    count: i64,
    page: PageRequest,
    load: impl AsyncFnOnce(i64, i64) -> std::result::Result<Vec<T>, E>,
) -> std::result::Result<Page<T>, E> {
    let total = u64::try_from(count).unwrap_or_default();
    if page.page_size == 0 || total == 0 {
        return Ok(Page::new(total, page, Vec::new()));
    }
    let (limit, offset) = limit_offset(page);
    Ok(Page::new(total, page, load(limit, offset).await?))
}

/// An update of one row by its key: no row touched means the row is missing.
pub(crate) fn updated_row(rows: usize, missing: impl FnOnce() -> RepoError) -> Result<()> {
    if rows == 0 {
        return Err(missing().into());
    }
    Ok(())
}

/// How a non-empty text filter applies: equality, or `LIKE` with this pattern.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TextFilter {
    Equal(String),
    Like(String),
}

/// Blur mode turns `*` into `%` (escaping `LIKE`'s own `%`, `_` and `\`); a filter without
/// `*`, or any filter in exact mode, is an equality.
pub(crate) fn text_filter(filter: &str, mode: MatchMode) -> TextFilter {
    if mode == MatchMode::Exact || !filter.contains('*') {
        return TextFilter::Equal(filter.to_string());
    }
    let mut pattern = String::with_capacity(filter.len() + 4);
    for c in filter.chars() {
        match c {
            '*' => pattern.push('%'),
            '%' | '_' | '\\' => {
                pattern.push('\\');
                pattern.push(c);
            }
            _ => pattern.push(c),
        }
    }
    TextFilter::Like(pattern)
}

/// JSON text for a column.
pub(crate) fn to_json<T: Serialize>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value).map_err(|e| error::unencodable(what, e).into())
}

/// A JSON text column.
pub(crate) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| error::corrupt(what, e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for ms in [0, 1, 946_684_800_000, 1_700_000_000_123, -1, -1_500] {
            assert_eq!(millis(timestamp(ms)), ms, "{ms}");
        }
        assert_eq!(timestamp(PG_EPOCH_MS), PgTimestamp(0));
    }

    #[test]
    fn globs_become_like_patterns() {
        assert_eq!(
            text_filter("a*b", MatchMode::Blur),
            TextFilter::Like("a%b".into())
        );
        assert_eq!(
            text_filter("50%_\\*", MatchMode::Blur),
            TextFilter::Like("50\\%\\_\\\\%".into())
        );
        assert_eq!(
            text_filter("plain", MatchMode::Blur),
            TextFilter::Equal("plain".into())
        );
        assert_eq!(
            text_filter("a*", MatchMode::Exact),
            TextFilter::Equal("a*".into())
        );
    }
}
