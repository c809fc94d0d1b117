//! Why a naming call fails, and the messages Nacos uses for its common cases.

use nacos_core::validate::ParamError;
use nacos_core::{RepoError, ServiceKey};

use crate::foundation::error::ServiceError;

/// Why a naming call failed. Edges map these onto their codes (v1: the HTTP status).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NamingError {
    /// A parameter breaks a rule; names the parameter (400).
    #[error(transparent)]
    Param(#[from] ParamError),
    /// Nacos's `INVALID_PARAM` for a state conflict: wrong service kind, service exists, service
    /// not found, service not empty (400).
    #[error("{0}")]
    Invalid(String),
    /// Nacos's `NOT_FOUND` (404): no such instance.
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

pub type NamingResult<T> = Result<T, NamingError>;

pub(super) fn kind_mismatch(key: &ServiceKey, service_ephemeral: bool) -> NamingError {
    if service_ephemeral {
        NamingError::Invalid(format!(
            "Current service {} is ephemeral service, can't register persistent instance.",
            key.grouped_name()
        ))
    } else {
        NamingError::Invalid(format!(
            "Current service {} is persistent service, can't register ephemeral instance.",
            key.grouped_name()
        ))
    }
}

pub(super) fn service_not_found(key: &ServiceKey) -> NamingError {
    NamingError::Invalid(format!(
        "service not found, namespace: {}, service: {}",
        key.namespace,
        key.grouped_name()
    ))
}

pub(super) fn no_matched_ip() -> NamingError {
    NamingError::NotFound("no matched ip found!".to_string())
}

impl From<NamingError> for ServiceError {
    fn from(e: NamingError) -> Self {
        match e {
            NamingError::Param(p) => p.into(),
            NamingError::Invalid(m) => ServiceError::bad(m),
            NamingError::NotFound(m) => ServiceError::NotFound(m),
            NamingError::Repo(r) => r.into(),
        }
    }
}
