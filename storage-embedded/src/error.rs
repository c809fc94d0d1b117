//! The one place where redb, serde_json and task errors become [`RepoError`] kinds.
//!
//! - Lock contention, I/O failures and a closed database are [`RepoError::Unavailable`]: the
//!   write did not happen and a retry (or a restart) may succeed.
//! - A value beyond redb's size limit is [`RepoError::InvalidArgument`].
//! - Corruption, a file that is not a redb database, undecodable stored values, schema mismatches and everything else are
//!   [`RepoError::Internal`].

use nacos_core::RepoError;

/// Map any redb error (they all convert into [`redb::Error`]).
pub(crate) fn storage(error: impl Into<redb::Error>) -> RepoError {
    match error.into() {
        redb::Error::DatabaseAlreadyOpen => RepoError::Unavailable(
            "the embedded store file is locked: another process (or another handle in this \
             process) has it open"
                .to_string(),
        ),
        redb::Error::LockProtocolMismatch => RepoError::Unavailable(
            "the embedded store file is open in another process running an incompatible redb \
             version"
                .to_string(),
        ),
        redb::Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            RepoError::Internal(format!("the file is not a valid redb database: {e}"))
        }
        redb::Error::Io(e) => RepoError::Unavailable(format!("embedded store I/O error: {e}")),
        redb::Error::PreviousIo => RepoError::Unavailable(
            "an earlier I/O error left the embedded store unusable; restart the server".to_string(),
        ),
        redb::Error::DatabaseClosed => {
            RepoError::Unavailable("the embedded store is closed".to_string())
        }
        redb::Error::ValueTooLarge(len) => RepoError::InvalidArgument(format!(
            "a value of {len} bytes is too large for the embedded store"
        )),
        redb::Error::Corrupted(msg) => {
            RepoError::Internal(format!("the embedded store file is corrupt: {msg}"))
        }
        redb::Error::UpgradeRequired(version) => RepoError::Internal(format!(
            "the embedded store file uses redb file format {version}, which this build cannot \
             open without an upgrade"
        )),
        other => RepoError::Internal(format!("embedded store: {other}")),
    }
}

/// A stored value that does not decode: corruption or a layout this build does not know.
pub(crate) fn decode_error(table: &str, error: serde_json::Error) -> RepoError {
    RepoError::Internal(format!(
        "undecodable value in embedded table {table}: {error}"
    ))
}

/// A value that does not encode (a non-finite float, for example).
pub(crate) fn encode_error(table: &str, error: serde_json::Error) -> RepoError {
    RepoError::InvalidArgument(format!(
        "value for embedded table {table} cannot be stored: {error}"
    ))
}

/// A blocking storage task panicked or was cancelled.
pub(crate) fn join_error(error: tokio::task::JoinError) -> RepoError {
    RepoError::Internal(format!("embedded store task failed: {error}"))
}

/// Prefix an error with the file it concerns (for open).
pub(crate) fn with_path(path: &std::path::Path, error: RepoError) -> RepoError {
    let at = path.display();
    match error {
        RepoError::Unavailable(m) => {
            RepoError::Unavailable(format!("cannot open embedded store {at}: {m}"))
        }
        RepoError::Internal(m) => {
            RepoError::Internal(format!("cannot open embedded store {at}: {m}"))
        }
        RepoError::InvalidArgument(m) => {
            RepoError::InvalidArgument(format!("cannot open embedded store {at}: {m}"))
        }
        other => other,
    }
}
