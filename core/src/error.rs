//! The error kinds of the repository boundary.

use std::fmt;
use std::sync::Arc;

/// What went wrong in a repository call. Backends map their driver errors onto these kinds in
/// one place (their `error.rs`); the HTTP and gRPC edges map kinds onto Nacos codes in one place.
///
/// [`RepoError::Unavailable`] and [`RepoError::Internal`] carry a [`Detail`]: the message, and
/// the driver error behind it when there is one, which [`std::error::Error::source`] returns.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoError {
    /// The addressed row does not exist (for calls whose contract says so; most getters
    /// return `Ok(None)` instead).
    NotFound(String),
    /// A create found the key already present.
    AlreadyExists(String),
    /// A compare-and-set (`casMd5`) or another precondition did not hold; nothing was written.
    PreconditionFailed(String),
    /// The request is malformed for this backend (too long for a column, for example).
    InvalidArgument(String),
    /// Storage cannot be reached right now (database down, no Raft leader). Retryable; nothing
    /// was written, or the write's outcome is reported as failed to the caller.
    Unavailable(Detail),
    /// The backend does not implement this operation (see [`crate::Capabilities`]).
    Unsupported(String),
    /// A bug or corrupted data: anything else.
    Internal(Detail),
}

impl RepoError {
    /// `Unavailable` caused by a driver error, kept as the [`source`](std::error::Error::source).
    pub fn unavailable_from(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        RepoError::Unavailable(Detail::with_source(message, source))
    }

    /// `Internal` caused by a driver error, kept as the [`source`](std::error::Error::source).
    pub fn internal_from(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        RepoError::Internal(Detail::with_source(message, source))
    }

    /// Keep `source` as the cause of an `Unavailable` or `Internal` error (the message stays);
    /// other kinds are returned unchanged. Backends map a driver error to a kind and message,
    /// then hand the driver error here.
    pub fn caused_by(self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        match self {
            RepoError::Unavailable(d) => RepoError::Unavailable(d.caused_by(source)),
            RepoError::Internal(d) => RepoError::Internal(d.caused_by(source)),
            other => other,
        }
    }
}

impl fmt::Display for RepoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepoError::NotFound(m) => write!(f, "not found: {m}"),
            RepoError::AlreadyExists(m) => write!(f, "already exists: {m}"),
            RepoError::PreconditionFailed(m) => write!(f, "precondition failed: {m}"),
            RepoError::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            RepoError::Unavailable(d) => write!(f, "storage unavailable: {d}"),
            RepoError::Unsupported(m) => write!(f, "unsupported: {m}"),
            RepoError::Internal(d) => write!(f, "internal storage error: {d}"),
        }
    }
}

impl std::error::Error for RepoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RepoError::Unavailable(d) | RepoError::Internal(d) => d.source(),
            _ => None,
        }
    }
}

/// The message of an [`RepoError::Unavailable`] or [`RepoError::Internal`], with the error
/// that caused it when there is one. Prints, compares and converts as its message alone.
#[derive(Clone, Debug)]
pub struct Detail {
    message: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Detail {
    pub fn new(message: impl Into<String>) -> Self {
        Detail {
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Detail {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// The same cause with another message (to add context).
    pub fn reworded(self, message: impl Into<String>) -> Self {
        Detail {
            message: message.into(),
            source: self.source,
        }
    }

    /// The same message, caused by `source`.
    pub fn caused_by(self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Detail {
            message: self.message,
            source: Some(Arc::new(source)),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error behind this one, if any.
    pub fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Reads as its message (`detail.contains(…)`, `&*detail`).
impl std::ops::Deref for Detail {
    type Target = str;

    fn deref(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl PartialEq for Detail {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for Detail {}

impl From<String> for Detail {
    fn from(message: String) -> Self {
        Detail::new(message)
    }
}

impl From<&str> for Detail {
    fn from(message: &str) -> Self {
        Detail::new(message)
    }
}

impl From<Detail> for String {
    fn from(detail: Detail) -> Self {
        detail.message
    }
}

pub type RepoResult<T> = Result<T, RepoError>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn detail_keeps_the_source_and_prints_the_message() {
        let io = std::io::Error::other("connection reset");
        let e = RepoError::unavailable_from("db down", io);
        assert_eq!(e.to_string(), "storage unavailable: db down");
        assert_eq!(
            e.source().map(ToString::to_string).as_deref(),
            Some("connection reset")
        );
        assert_eq!(e, RepoError::Unavailable("db down".into()));
        assert!(RepoError::Internal("x".into()).source().is_none());
        let kept = RepoError::Internal("x".into()).caused_by(std::io::Error::other("y"));
        assert_eq!(kept.source().map(ToString::to_string).as_deref(), Some("y"));
        let not_kept = RepoError::NotFound("x".into()).caused_by(std::io::Error::other("y"));
        assert!(not_kept.source().is_none());
        assert_eq!(RepoError::NotFound("k".into()).to_string(), "not found: k");
    }
}
