//! The one place the gRPC edge maps error kinds onto Nacos response codes ([`GrpcError`]).

use nacos_core::RepoError;
#[cfg(test)]
use nacos_core::validate::ParamError;

use crate::foundation::error::ServiceError;
pub use crate::foundation::protocol::error::{GrpcError, GrpcResult, code};
use crate::services::config::ops::ConfigOpError;

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
        ServiceError::from(e).into()
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
