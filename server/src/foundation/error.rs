//! Errors shared by every layer: [`ServiceError`], the edge-neutral kinds a request can fail
//! with (each edge maps them onto its wire in one place), and [`StartError`], why the server
//! could not start.

use nacos_core::RepoError;
use nacos_core::validate::ParamError;

/// Why a request failed, in kinds every edge understands: the services return it, the HTTP edge
/// maps it to a status and body (`http::error`), the gRPC edge to Nacos's error codes
/// (`grpc::error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// A missing or malformed parameter; the message names it.
    #[error("{message}")]
    BadRequest {
        param: Option<&'static str>,
        message: String,
    },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// CAS mismatch or a conflicting state.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Storage unavailable: retry later.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    pub fn bad(message: impl Into<String>) -> Self {
        ServiceError::BadRequest {
            param: None,
            message: message.into(),
        }
    }

    pub fn param(param: &'static str, message: impl Into<String>) -> Self {
        ServiceError::BadRequest {
            param: Some(param),
            message: message.into(),
        }
    }

    pub fn missing(param: &'static str) -> Self {
        ServiceError::param(param, format!("Required parameter '{param}' is missing"))
    }
}

impl From<ParamError> for ServiceError {
    fn from(e: ParamError) -> Self {
        ServiceError::BadRequest {
            param: Some(e.param),
            message: e.message,
        }
    }
}

impl From<RepoError> for ServiceError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::NotFound(m) => ServiceError::NotFound(m),
            RepoError::AlreadyExists(m) => ServiceError::Conflict(format!("already exists: {m}")),
            RepoError::PreconditionFailed(m) => ServiceError::Conflict(m),
            RepoError::InvalidArgument(m) => ServiceError::bad(m),
            RepoError::Unavailable(m) => {
                tracing::warn!(error = %m, "storage unavailable");
                ServiceError::Unavailable(format!("storage unavailable: {m}"))
            }
            RepoError::Unsupported(m) => ServiceError::NotImplemented(m),
            RepoError::Internal(m) => {
                tracing::error!(error = %m, "storage error");
                ServiceError::Internal("internal storage error".to_string())
            }
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] crate::foundation::settings::SettingsError),
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Auth(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}
