//! The one place HTTP maps error kinds onto status codes and bodies.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use nacos_core::RepoError;
use nacos_core::validate::ParamError;

use crate::config::ops::ConfigOpError;
use crate::naming::NamingError;

/// An HTTP-edge failure. v1 endpoints answer with the status and a plain-text message, as Nacos
/// does; v2 endpoints wrap the same kinds in their `{code,message,data}` envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
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

impl ApiError {
    pub fn bad(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            param: None,
            message: message.into(),
        }
    }

    pub fn param(param: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            param: Some(param),
            message: message.into(),
        }
    }

    pub fn missing(param: &'static str) -> Self {
        ApiError::param(param, format!("Required parameter '{param}' is missing"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The v2 API's detail code for this kind (Nacos's `ErrorCode`: 10000 parameter missing,
    /// 20002 parameter validate error, 20004 resource not found, ...).
    pub fn v2_code(&self) -> i32 {
        match self {
            ApiError::BadRequest { message, .. } if message.contains("is missing") => 10000,
            ApiError::BadRequest { .. } | ApiError::PayloadTooLarge(_) => 20002,
            ApiError::Forbidden(_) => 10001,
            ApiError::NotFound(_) => 20004,
            ApiError::Conflict(_) => 20005,
            ApiError::Unavailable(_) => 10002,
            ApiError::NotImplemented(_) | ApiError::Internal(_) => 30000,
        }
    }
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        ApiError::BadRequest {
            param: Some(e.param),
            message: e.message,
        }
    }
}

impl From<ConfigOpError> for ApiError {
    fn from(e: ConfigOpError) -> Self {
        match e {
            ConfigOpError::Param(p) => p.into(),
            ConfigOpError::Repo(r) => r.into(),
        }
    }
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::NotFound(m) => ApiError::NotFound(m),
            RepoError::AlreadyExists(m) => ApiError::Conflict(format!("already exists: {m}")),
            RepoError::PreconditionFailed(m) => ApiError::Conflict(m),
            RepoError::InvalidArgument(m) => ApiError::bad(m),
            RepoError::Unavailable(m) => {
                tracing::warn!(error = %m, "storage unavailable");
                ApiError::Unavailable(format!("storage unavailable: {m}"))
            }
            RepoError::Unsupported(m) => ApiError::NotImplemented(m),
            RepoError::Internal(m) => {
                tracing::error!(error = %m, "storage error");
                ApiError::Internal("internal storage error".to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<NamingError> for ApiError {
    fn from(e: NamingError) -> Self {
        match e {
            NamingError::Param(p) => p.into(),
            NamingError::Invalid(m) => ApiError::bad(m),
            NamingError::NotFound(m) => ApiError::NotFound(m),
            NamingError::Repo(r) => r.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.to_string();
        (
            self.status(),
            [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
            body,
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
