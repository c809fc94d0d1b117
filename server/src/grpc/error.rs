//! The one place the gRPC edge maps error kinds onto Nacos response codes.
//!
//! Nacos answers a failed request in one of two shapes: the handler's own (typed) response with
//! `resultCode` 500 and a detail `errorCode` (parameter checks, "config data not exist", CAS
//! failures), or an `ErrorResponse` when the handler threw. [`GrpcError`] names which.

use nacos_core::RepoError;
use nacos_core::validate::ParamError;

use crate::config::ops::ConfigOpError;
use crate::error::ServiceError;

/// Nacos response and exception codes used on this edge.
pub mod code {
    /// `CONFIG_NOT_FOUND`, also `INVALID_SERVER_STATUS` ("server is starting").
    pub const NOT_FOUND_OR_STARTING: i32 = 300;
    pub const UN_REGISTER: i32 = 301;
    pub const NO_HANDLER: i32 = 302;
    pub const INVALID_PARAM: i32 = 400;
    pub const NO_RIGHT: i32 = 403;
    pub const NOT_FOUND: i32 = 404;
    pub const SERVER_ERROR: i32 = 500;
    pub const NOT_IMPLEMENTED: i32 = 501;
    pub const BAD_GATEWAY: i32 = 502;
    pub const OVER_THRESHOLD: i32 = 503;
}

/// A failed request, and the shape Nacos answers it in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrpcError {
    /// The handler's typed response with `resultCode` 500 and this `errorCode`.
    #[error("{message}")]
    Fail { code: i32, message: String },
    /// An `ErrorResponse` with `resultCode` = `errorCode` = `code` (the handler threw).
    #[error("{message}")]
    Thrown { code: i32, message: String },
}

pub type GrpcResult<T> = Result<T, GrpcError>;

impl GrpcError {
    pub fn fail(code: i32, message: impl Into<String>) -> Self {
        GrpcError::Fail {
            code,
            message: message.into(),
        }
    }

    pub fn thrown(code: i32, message: impl Into<String>) -> Self {
        GrpcError::Thrown {
            code,
            message: message.into(),
        }
    }

    /// A failed parameter check, worded as Nacos's parameter-check filter does.
    pub fn param(message: impl std::fmt::Display) -> Self {
        GrpcError::fail(
            code::INVALID_PARAM,
            format!("Param check invalid:{message}"),
        )
    }
}

impl From<ParamError> for GrpcError {
    fn from(e: ParamError) -> Self {
        GrpcError::param(e.message)
    }
}

impl From<ServiceError> for GrpcError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::BadRequest { message, .. } | ServiceError::PayloadTooLarge(message) => {
                GrpcError::param(message)
            }
            ServiceError::Forbidden(m) => GrpcError::fail(code::NO_RIGHT, m),
            ServiceError::NotFound(m) => GrpcError::fail(code::NOT_FOUND, m),
            ServiceError::Conflict(m) | ServiceError::Internal(m) => {
                GrpcError::fail(code::SERVER_ERROR, m)
            }
            ServiceError::Unavailable(m) => GrpcError::fail(code::OVER_THRESHOLD, m),
            ServiceError::NotImplemented(m) => GrpcError::fail(code::NOT_IMPLEMENTED, m),
        }
    }
}

/// Storage kinds go through [`ServiceError`], so both edges log and word them the same way.
impl From<RepoError> for GrpcError {
    fn from(e: RepoError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<ConfigOpError> for GrpcError {
    fn from(e: ConfigOpError) -> Self {
        match e {
            ConfigOpError::Param(p) => p.into(),
            ConfigOpError::Repo(r) => r.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_codes() {
        let e: GrpcError = ParamError::missing("dataId").into();
        assert_eq!(
            e,
            GrpcError::fail(
                400,
                "Param check invalid:Required parameter 'dataId' is missing"
            )
        );
        let e: GrpcError = RepoError::PreconditionFailed("md5 differs".into()).into();
        assert_eq!(e, GrpcError::fail(500, "md5 differs"));
        let e: GrpcError = RepoError::Unavailable("db down".into()).into();
        assert!(matches!(e, GrpcError::Fail { code: 503, .. }));
    }
}
