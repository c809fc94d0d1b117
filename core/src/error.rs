//! The error kinds of the repository boundary.

/// What went wrong in a repository call. Backends map their driver errors onto these kinds in
/// one place (their `error.rs`); the HTTP and gRPC edges map kinds onto Nacos codes in one place.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    /// The addressed row does not exist (for calls whose contract says so; most getters
    /// return `Ok(None)` instead).
    #[error("not found: {0}")]
    NotFound(String),
    /// A create found the key already present.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A compare-and-set (`casMd5`) or another precondition did not hold; nothing was written.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// The request is malformed for this backend (too long for a column, for example).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Storage cannot be reached right now (database down, no Raft leader). Retryable; nothing
    /// was written, or the write's outcome is reported as failed to the caller.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The backend does not implement this operation (see [`crate::Capabilities`]).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A bug or corrupted data: anything else.
    #[error("internal storage error: {0}")]
    Internal(String),
}

pub type RepoResult<T> = Result<T, RepoError>;
