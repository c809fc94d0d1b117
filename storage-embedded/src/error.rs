//! The one place where redb, serde_json and task errors become [`RepoError`] kinds.
//!
//! - Lock contention, I/O failures and a closed database are [`RepoError::Unavailable`]: the
//!   write did not happen and a retry (or a restart) may succeed.
//! - A value beyond redb's size limit is [`RepoError::InvalidArgument`].
//! - Corruption, a file that is not a redb database, undecodable stored values, schema mismatches and everything else are
//!   [`RepoError::Internal`].
//! - Raft: no leader, a stopped Raft, an unreachable peer or a quorum that does not answer are
//!   [`RepoError::Unavailable`]; a malformed Raft message is [`RepoError::InvalidArgument`].
//!   Storage failures inside openraft's storage traits travel the other way, as openraft
//!   [`StorageError`]s carrying the [`RepoError`] text.

use nacos_core::RepoError;
use openraft::error::{CheckIsLeaderError, ClientWriteError, Fatal, RaftError};
use openraft::{AnyError, BasicNode, ErrorSubject, ErrorVerb, StorageError, StorageIOError};

use serde::{Deserialize, Serialize};

/// Map any redb error (they all convert into [`redb::Error`]).
pub(crate) fn storage(error: impl Into<redb::Error>) -> RepoError {
    let error = error.into();
    let mapped = match &error {
        redb::Error::DatabaseAlreadyOpen => RepoError::Unavailable(
            "the embedded store file is locked: another process (or another handle in this \
             process) has it open"
                .into(),
        ),
        redb::Error::LockProtocolMismatch => RepoError::Unavailable(
            "the embedded store file is open in another process running an incompatible redb \
             version"
                .into(),
        ),
        redb::Error::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            RepoError::Internal(format!("the file is not a valid redb database: {e}").into())
        }
        redb::Error::Io(e) => {
            RepoError::Unavailable(format!("embedded store I/O error: {e}").into())
        }
        redb::Error::PreviousIo => RepoError::Unavailable(
            "an earlier I/O error left the embedded store unusable; restart the server".into(),
        ),
        redb::Error::DatabaseClosed => {
            RepoError::Unavailable("the embedded store is closed".into())
        }
        redb::Error::ValueTooLarge(len) => RepoError::InvalidArgument(format!(
            "a value of {len} bytes is too large for the embedded store"
        )),
        redb::Error::Corrupted(msg) => {
            RepoError::Internal(format!("the embedded store file is corrupt: {msg}").into())
        }
        redb::Error::UpgradeRequired(version) => RepoError::Internal(
            format!(
                "the embedded store file uses redb file format {version}, which this build cannot \
             open without an upgrade"
            )
            .into(),
        ),
        other => RepoError::Internal(format!("embedded store: {other}").into()),
    };
    mapped.caused_by(error)
}

/// A stored value that does not decode: corruption or a layout this build does not know.
pub(crate) fn decode_error(table: &str, error: serde_json::Error) -> RepoError {
    RepoError::internal_from(
        format!("undecodable value in embedded table {table}: {error}"),
        error,
    )
}

/// A value that does not encode (a non-finite float, for example).
pub(crate) fn encode_error(table: &str, error: serde_json::Error) -> RepoError {
    RepoError::InvalidArgument(format!(
        "value for embedded table {table} cannot be stored: {error}"
    ))
}

/// A blocking storage task panicked or was cancelled.
pub(crate) fn join_error(error: tokio::task::JoinError) -> RepoError {
    RepoError::internal_from(format!("embedded store task failed: {error}"), error)
}

/// Prefix an error with the file it concerns (for open).
pub(crate) fn with_path(path: &std::path::Path, error: RepoError) -> RepoError {
    let at = path.display();
    match error {
        RepoError::Unavailable(m) => {
            let message = format!("cannot open embedded store {at}: {m}");
            RepoError::Unavailable(m.reworded(message))
        }
        RepoError::Internal(m) => {
            let message = format!("cannot open embedded store {at}: {m}");
            RepoError::Internal(m.reworded(message))
        }
        RepoError::InvalidArgument(m) => {
            RepoError::InvalidArgument(format!("cannot open embedded store {at}: {m}"))
        }
        other => other,
    }
}

impl From<RepoError> for WireRepoError {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::NotFound(m) => WireRepoError::NotFound(m),
            RepoError::AlreadyExists(m) => WireRepoError::AlreadyExists(m),
            RepoError::PreconditionFailed(m) => WireRepoError::PreconditionFailed(m),
            RepoError::InvalidArgument(m) => WireRepoError::InvalidArgument(m),
            RepoError::Unavailable(m) => WireRepoError::Unavailable(m.into()),
            RepoError::Unsupported(m) => WireRepoError::Unsupported(m),
            RepoError::Internal(m) => WireRepoError::Internal(m.into()),
            // `RepoError` is non-exhaustive: a kind added later travels as Internal.
            other => WireRepoError::Internal(other.to_string()),
        }
    }
}

impl From<WireRepoError> for RepoError {
    fn from(error: WireRepoError) -> Self {
        match error {
            WireRepoError::NotFound(m) => RepoError::NotFound(m),
            WireRepoError::AlreadyExists(m) => RepoError::AlreadyExists(m),
            WireRepoError::PreconditionFailed(m) => RepoError::PreconditionFailed(m),
            WireRepoError::InvalidArgument(m) => RepoError::InvalidArgument(m),
            WireRepoError::Unavailable(m) => RepoError::Unavailable(m.into()),
            WireRepoError::Unsupported(m) => RepoError::Unsupported(m),
            WireRepoError::Internal(m) => RepoError::Internal(m.into()),
        }
    }
}

/// A store failure inside one of openraft's storage traits. openraft treats it as fatal and
/// stops the node (fail-stop rather than diverge from the others).
pub(crate) fn raft_storage(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    error: &RepoError,
) -> StorageError<u64> {
    StorageError::from(StorageIOError::new(subject, verb, AnyError::new(error)))
}

/// The Raft core stopped (shutdown, panic or a storage failure).
pub(crate) fn raft_fatal(error: &Fatal<u64>) -> RepoError {
    RepoError::Unavailable(format!("Raft node is not running: {error}").into())
}

/// A write the local leader could not take (other than "not leader", handled by the caller).
pub(crate) fn raft_write(error: &RaftError<u64, ClientWriteError<u64, BasicNode>>) -> RepoError {
    match error {
        RaftError::Fatal(fatal) => raft_fatal(fatal),
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
            RepoError::Unavailable("this node lost Raft leadership; retry the write".into())
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            RepoError::PreconditionFailed(format!("Raft membership change refused: {e}"))
        }
    }
}

/// Leadership could not be confirmed for a linearizable read.
pub(crate) fn raft_read(error: &RaftError<u64, CheckIsLeaderError<u64, BasicNode>>) -> RepoError {
    match error {
        RaftError::Fatal(fatal) => raft_fatal(fatal),
        RaftError::APIError(e) => {
            RepoError::Unavailable(format!("cannot confirm Raft leadership: {e}").into())
        }
    }
}

/// A peer could not be asked.
pub(crate) fn transport(addr: &str, error: &TransportError) -> RepoError {
    RepoError::Unavailable(format!("Raft peer {addr}: {error}").into())
}

/// A Raft message (request or reply) that does not decode or encode.
pub(crate) fn wire(what: &str, error: &serde_json::Error) -> RepoError {
    RepoError::InvalidArgument(format!("malformed Raft message {what}: {error}"))
}

/// [`RepoError`] in a serializable form (the core type is not serde), for Raft responses and
/// forwarded writes. Conversions both ways are below.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireRepoError {
    NotFound(String),
    AlreadyExists(String),
    PreconditionFailed(String),
    InvalidArgument(String),
    Unavailable(String),
    Unsupported(String),
    Internal(String),
}

/// Why a call through the transport failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The request was certainly NOT delivered (no connection, peer not serving). Writes
    /// forwarded to the leader are retried only on this error, so an implementation must not
    /// return it once the request may have reached the peer.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The request may have been delivered, but no reply came back (peer error, broken
    /// connection, the peer's `handle` failed).
    #[error("remote error: {0}")]
    Remote(String),
}
