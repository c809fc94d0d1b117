//! The one place where sqlx errors become [`RepoError`] kinds.
//!
//! - A duplicate key is [`RepoError::AlreadyExists`].
//! - Anything about reaching the database is [`RepoError::Unavailable`] (retryable): I/O and
//!   TLS failures, pool timeouts, a closed pool, a server that went away or is shutting down,
//!   too many connections, refused credentials, and a server in read-only mode (a demoted
//!   primary). Deadlocks and lock-wait timeouts are retried inside a write first and are
//!   `Unavailable` only when the retries run out.
//! - A value that does not fit its column (too long, a character the column's character set
//!   cannot hold, a number out of range) is [`RepoError::InvalidArgument`].
//! - Everything else (a missing table, an undecodable column, a protocol surprise) is
//!   [`RepoError::Internal`].
//!
//! Messages name the operation and the database node, never credentials.

use nacos_core::RepoError;
use sqlx::mysql::MySqlDatabaseError;

/// MySQL / MariaDB server error numbers this backend reacts to.
pub(crate) mod code {
    pub const DUP_KEY: u16 = 1022;
    pub const DUP_ENTRY: u16 = 1062;
    pub const DUP_UNIQUE: u16 = 1169;
    pub const DUP_ENTRY_WITH_KEY_NAME: u16 = 1586;
    pub const CON_COUNT: u16 = 1040;
    pub const DBACCESS_DENIED: u16 = 1044;
    pub const ACCESS_DENIED: u16 = 1045;
    pub const SERVER_SHUTDOWN: u16 = 1053;
    pub const NO_SUCH_TABLE: u16 = 1146;
    pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
    pub const LOCK_DEADLOCK: u16 = 1213;
    pub const QUERY_INTERRUPTED: u16 = 1317;
    pub const OPTION_PREVENTS_STATEMENT: u16 = 1290;
    pub const TRUNCATED_WRONG_VALUE_FOR_FIELD: u16 = 1366;
    pub const DATA_TOO_LONG: u16 = 1406;
    pub const WARN_DATA_OUT_OF_RANGE: u16 = 1264;
    pub const CANT_EXECUTE_IN_READ_ONLY_TRANSACTION: u16 = 1792;
    pub const READ_ONLY_MODE: u16 = 1836;
    pub const CONNECTION_KILLED: u16 = 1927;
    pub const CLIENT_INTERACTION_TIMEOUT: u16 = 4031;
    pub const RECORD_CHANGED: u16 = 1020;
}

/// The server error number, when `error` is one.
pub(crate) fn number(error: &sqlx::Error) -> Option<u16> {
    match error {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(MySqlDatabaseError::number),
        _ => None,
    }
}

/// A transient conflict between concurrent transactions: retry the whole transaction.
pub(crate) fn is_retryable(error: &sqlx::Error) -> bool {
    matches!(
        number(error),
        Some(code::LOCK_DEADLOCK | code::LOCK_WAIT_TIMEOUT | code::RECORD_CHANGED)
    )
}

/// A duplicate key on insert.
pub(crate) fn is_duplicate(error: &sqlx::Error) -> bool {
    matches!(
        number(error),
        Some(code::DUP_KEY | code::DUP_ENTRY | code::DUP_UNIQUE | code::DUP_ENTRY_WITH_KEY_NAME)
    )
}

/// Map a sqlx error met while doing `what` on `node` (`host:port/db`).
pub(crate) fn map(error: sqlx::Error, what: &str, node: &str) -> RepoError {
    let at = format!("{what} on {node}");
    let mapped = match &error {
        sqlx::Error::Database(_) => match number(&error) {
            Some(
                code::DUP_KEY | code::DUP_ENTRY | code::DUP_UNIQUE | code::DUP_ENTRY_WITH_KEY_NAME,
            ) => RepoError::AlreadyExists(format!("{at}: {error}")),
            Some(
                code::OPTION_PREVENTS_STATEMENT
                | code::CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
                | code::READ_ONLY_MODE,
            ) => RepoError::Unavailable(
                format!("{at}: the database is read-only (not the primary): {error}").into(),
            ),
            Some(
                code::CON_COUNT
                | code::DBACCESS_DENIED
                | code::ACCESS_DENIED
                | code::SERVER_SHUTDOWN
                | code::LOCK_WAIT_TIMEOUT
                | code::LOCK_DEADLOCK
                | code::RECORD_CHANGED
                | code::QUERY_INTERRUPTED
                | code::CONNECTION_KILLED
                | code::CLIENT_INTERACTION_TIMEOUT,
            ) => RepoError::Unavailable(format!("{at}: {error}").into()),
            Some(
                code::DATA_TOO_LONG
                | code::TRUNCATED_WRONG_VALUE_FOR_FIELD
                | code::WARN_DATA_OUT_OF_RANGE,
            ) => RepoError::InvalidArgument(format!("{at}: value does not fit: {error}")),
            Some(code::NO_SUCH_TABLE) => RepoError::Internal(
                format!(
                    "{at}: {error} (create the schema from conf/mysql-schema.sql, or start once \
                 with nacos.db.schema.init=true)"
                )
                .into(),
            ),
            _ => RepoError::Internal(format!("{at}: {error}").into()),
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => RepoError::Unavailable(format!("{at}: {error}").into()),
        _ => RepoError::Internal(format!("{at}: {error}").into()),
    };
    mapped.caused_by(error)
}

/// Whether an error means "this node cannot serve us right now", so the monitor should look
/// again at once.
pub(crate) fn is_node_trouble(error: &RepoError) -> bool {
    matches!(error, RepoError::Unavailable(_))
}
