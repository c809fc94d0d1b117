//! The one place where diesel, tokio-postgres and pool errors become [`RepoError`] kinds.
//!
//! - A unique-key violation is [`RepoError::AlreadyExists`].
//! - Anything about reaching the database is [`RepoError::Unavailable`] (retryable; the
//!   transaction was rolled back): connection and pool errors, time-outs, a closed connection,
//!   a server shutting down, a read-only (standby) server, deadlocks and serialization
//!   failures.
//! - A value the column cannot hold (too long, a NUL byte, out of range) is
//!   [`RepoError::InvalidArgument`].
//! - Everything else (undecodable rows, unexpected SQL errors) is [`RepoError::Internal`].
//!
//! diesel-async reports most SQLSTATEs as [`DatabaseErrorKind::Unknown`] with the server's
//! message, so those few classes are recognised by PostgreSQL's (English) message text.
//!
//! Messages never contain passwords: they name nodes by `host:port/database` only.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError;
use nacos_core::RepoError;

/// The error type inside this crate: a diesel error (mapped on the way out) or an already
/// classified [`RepoError`] (a failed precondition inside a transaction, for example). Both
/// convert from diesel errors, so `?` works inside `transaction` closures, and an `Err`
/// returned from one rolls the transaction back.
#[derive(Debug)]
pub(crate) enum Error {
    Db(DieselError),
    Repo(RepoError),
}

impl From<DieselError> for Error {
    fn from(error: DieselError) -> Self {
        Error::Db(error)
    }
}

impl From<RepoError> for Error {
    fn from(error: RepoError) -> Self {
        Error::Repo(error)
    }
}

impl From<Error> for RepoError {
    fn from(error: Error) -> Self {
        match error {
            Error::Db(e) => db(e),
            Error::Repo(e) => e,
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// Map a diesel query error.
pub(crate) fn db(error: DieselError) -> RepoError {
    let mapped = match &error {
        DieselError::DatabaseError(kind, info) => {
            let message = info.message().to_string();
            let detail = info
                .details()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            match kind {
                DatabaseErrorKind::UniqueViolation => RepoError::AlreadyExists(format!(
                    "{message}{detail}{}",
                    info.constraint_name()
                        .map(|c| format!(" [constraint {c}]"))
                        .unwrap_or_default()
                )),
                DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection => {
                    RepoError::Unavailable(
                        format!("PostgreSQL connection failed: {message}").into(),
                    )
                }
                DatabaseErrorKind::SerializationFailure => RepoError::Unavailable(
                    format!("PostgreSQL serialization failure, retry: {message}").into(),
                ),
                DatabaseErrorKind::ReadOnlyTransaction => RepoError::Unavailable(
                    format!("the PostgreSQL node is read-only (a standby?): {message}").into(),
                ),
                DatabaseErrorKind::NotNullViolation | DatabaseErrorKind::CheckViolation => {
                    RepoError::InvalidArgument(format!("{message}{detail}"))
                }
                _ => classify_message(message, detail),
            }
        }
        DieselError::NotFound => {
            RepoError::Internal("PostgreSQL: row not found".to_string().into())
        }
        DieselError::BrokenTransactionManager => RepoError::Unavailable(
            "PostgreSQL connection left in a broken transaction state"
                .to_string()
                .into(),
        ),
        DieselError::SerializationError(e) => {
            RepoError::InvalidArgument(format!("value cannot be sent to PostgreSQL: {e}"))
        }
        DieselError::DeserializationError(e) => {
            RepoError::Internal(format!("undecodable value from PostgreSQL: {e}").into())
        }
        other => RepoError::Internal(format!("PostgreSQL: {other}").into()),
    };
    mapped.caused_by(error)
}

/// SQLSTATEs diesel-async folds into `Unknown`, recognised by PostgreSQL's message text.
fn classify_message(message: String, detail: String) -> RepoError {
    const INVALID: &[&str] = &[
        "value too long for type",            // 22001 string_data_right_truncation
        "invalid byte sequence for encoding", // 22021 (a NUL byte in text)
        "out of range",                       // 22003 numeric_value_out_of_range
        "invalid input syntax",               // 22P02
    ];
    const UNAVAILABLE: &[&str] = &[
        "deadlock detected",            // 40P01
        "canceling statement due to",   // 57014 statement / lock timeout, user cancel
        "terminating connection",       // 57P01 admin shutdown, 57P02 crash shutdown
        "the database system is",       // 57P03 starting up / shutting down / in recovery
        "cannot execute",               // 25006 in a read-only transaction (standby)
        "could not obtain lock",        // 55P03 lock_not_available
        "too many connections",         // 53300
        "could not serialize access",   // 40001
        "recovery is in progress",      // standby
        "server closed the connection", // libpq-style wording from proxies
        "connection closed",            // tokio-postgres
        "remaining connection slots",   // 53300 (reserved slots)
    ];
    if INVALID.iter().any(|m| message.contains(m)) {
        RepoError::InvalidArgument(format!("{message}{detail}"))
    } else if UNAVAILABLE.iter().any(|m| message.contains(m)) {
        RepoError::Unavailable(format!("PostgreSQL: {message}{detail}").into())
    } else {
        RepoError::Internal(format!("PostgreSQL: {message}{detail}").into())
    }
}

/// Map a pool error (no connection within `connectionTimeout`, or establishing one failed).
pub(crate) fn pool(node: &str, error: diesel_async::pooled_connection::bb8::RunError) -> RepoError {
    match error {
        diesel_async::pooled_connection::bb8::RunError::TimedOut => RepoError::Unavailable(
            format!(
                "no PostgreSQL connection to {node} became available within the pool's connection \
             timeout"
            )
            .into(),
        ),
        diesel_async::pooled_connection::bb8::RunError::User(e) => pool_error(node, e),
    }
}

pub(crate) fn pool_error(node: &str, error: PoolError) -> RepoError {
    match error {
        PoolError::ConnectionError(e) => connection(node, &e).caused_by(e),
        PoolError::QueryError(e) => RepoError::unavailable_from(
            format!("PostgreSQL connection to {node} failed its check: {e}"),
            e,
        ),
    }
}

/// Establishing a connection failed.
pub(crate) fn connection(node: &str, error: &diesel::ConnectionError) -> RepoError {
    RepoError::Unavailable(format!("cannot connect to PostgreSQL {node}: {error}").into())
}

/// An operation ran longer than `socketTimeout`.
pub(crate) fn timed_out(node: &str, timeout: std::time::Duration) -> RepoError {
    RepoError::Unavailable(
        format!(
            "PostgreSQL {node} did not answer within socketTimeout ({} ms)",
            timeout.as_millis()
        )
        .into(),
    )
}

/// A stored value this backend wrote (or Nacos wrote) does not decode.
pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> RepoError {
    RepoError::Internal(format!("undecodable {what} in PostgreSQL: {error}").into())
}

/// A value cannot be encoded for storage.
pub(crate) fn unencodable(what: &str, error: impl std::fmt::Display) -> RepoError {
    RepoError::InvalidArgument(format!("{what} cannot be stored: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_classify() {
        assert!(matches!(
            classify_message(
                "value too long for type character varying(50)".into(),
                String::new()
            ),
            RepoError::InvalidArgument(_)
        ));
        assert!(matches!(
            classify_message("deadlock detected".into(), String::new()),
            RepoError::Unavailable(_)
        ));
        assert!(matches!(
            classify_message("syntax error at or near".into(), String::new()),
            RepoError::Internal(_)
        ));
        assert!(matches!(
            db(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                Box::new("duplicate key value violates unique constraint".to_string())
            )),
            RepoError::AlreadyExists(_)
        ));
        assert!(matches!(
            db(DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection,
                Box::new("closed".to_string())
            )),
            RepoError::Unavailable(_)
        ));
    }
}
