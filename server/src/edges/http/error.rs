//! The one place HTTP maps error kinds onto status codes and bodies. v1 endpoints answer with the
//! status and a plain-text message, as Nacos does; v2 endpoints wrap the same kinds in their
//! `{code,message,data}` envelope.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

pub use crate::foundation::error::{ServiceError, ServiceResult};

impl ServiceError {
    pub fn status(&self) -> StatusCode {
        match self {
            ServiceError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The v2 API's detail code for this kind (Nacos's `ErrorCode`: 10000 parameter missing,
    /// 20002 parameter validate error, 20004 resource not found, ...).
    pub fn v2_code(&self) -> i32 {
        match self {
            ServiceError::BadRequest { message, .. } if message.contains("is missing") => 10000,
            ServiceError::BadRequest { .. } | ServiceError::PayloadTooLarge(_) => 20002,
            ServiceError::Forbidden(_) => 10001,
            ServiceError::NotFound(_) => 20004,
            ServiceError::Conflict(_) => 20005,
            ServiceError::Unavailable(_) => 10002,
            ServiceError::NotImplemented(_) | ServiceError::Internal(_) => 30000,
        }
    }
}

impl IntoResponse for ServiceError {
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
