//! Nacos's gRPC error codes and [`GrpcError`]: the two shapes a failed request is answered in
//! (the handler's typed response with `resultCode` 500 and a detail `errorCode`, or an
//! `ErrorResponse` when the handler threw). How each service error kind maps onto them is the
//! gRPC edge's business (`grpc::error`).

use nacos_core::validate::ParamError;

/// Nacos response and exception codes.
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
    /// The `errorCode` the client sees.
    pub fn code(&self) -> i32 {
        match self {
            GrpcError::Fail { code, .. } | GrpcError::Thrown { code, .. } => *code,
        }
    }

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
