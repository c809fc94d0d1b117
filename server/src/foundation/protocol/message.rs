//! Requests and responses as Nacos serialises them: the JSON envelope every response carries
//! ([`ResponseBase`]), the request/response traits and the macros that define typed messages,
//! and the payload encoders for success, typed failure and `ErrorResponse`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::{GrpcError, code};
use super::transport::Payload;

/// Fields every response carries. `resultCode` 200 / 500, `errorCode` 0 on success, `success`
/// derived (Java serialises its `isSuccess()` getter).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResponseBase {
    pub result_code: i32,
    pub error_code: i32,
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A client request type: its wire name and its response type.
pub trait GrpcRequest: DeserializeOwned + Send + 'static {
    const TYPE: &'static str;
    type Response: GrpcResponse;
    fn take_request_id(&mut self) -> Option<String>;
}

/// A response type: its wire name; `Default` is the body of a typed failure.
pub trait GrpcResponse: Serialize + Default + Send + 'static {
    const TYPE: &'static str;
    fn base_mut(&mut self) -> &mut ResponseBase;
}

/// Define a request struct (camelCase JSON, every field optional, unknown fields ignored).
macro_rules! grpc_request {
    ($(#[$meta:meta])* $name:ident => $resp:ty { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(rename_all = "camelCase", default)]
        pub struct $name {
            pub request_id: Option<String>,
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $crate::foundation::protocol::message::GrpcRequest for $name {
            const TYPE: &'static str = stringify!($name);
            type Response = $resp;
            fn take_request_id(&mut self) -> Option<String> {
                self.request_id.take()
            }
        }
    };
}

/// Define a response struct carrying [`ResponseBase`] plus its own fields.
macro_rules! grpc_response {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Default, serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            #[serde(flatten)]
            pub base: $crate::foundation::protocol::message::ResponseBase,
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $crate::foundation::protocol::message::GrpcResponse for $name {
            const TYPE: &'static str = stringify!($name);
            fn base_mut(&mut self) -> &mut $crate::foundation::protocol::message::ResponseBase {
                &mut self.base
            }
        }
    };
}

pub(crate) use {grpc_request, grpc_response};

grpc_response!(
    /// The answer when no typed response applies.
    ErrorResponse {}
);

pub fn encode<T: Serialize>(type_name: &str, value: &T) -> Payload {
    match serde_json::to_vec(value) {
        Ok(json) => Payload::new(type_name, json),
        Err(e) => error_payload(
            code::SERVER_ERROR,
            code::SERVER_ERROR,
            &format!("cannot encode {type_name}: {e}"),
            None,
        ),
    }
}

/// A successful typed response.
pub fn ok_payload<R: GrpcResponse>(mut resp: R, request_id: Option<String>) -> Payload {
    let base = resp.base_mut();
    base.result_code = 200;
    base.error_code = 0;
    base.success = true;
    base.request_id = request_id;
    encode(R::TYPE, &resp)
}

/// An `ErrorResponse`.
pub fn error_payload(
    result_code: i32,
    error_code: i32,
    message: &str,
    request_id: Option<String>,
) -> Payload {
    let resp = ErrorResponse {
        base: ResponseBase {
            result_code,
            error_code,
            success: false,
            message: Some(message.to_string()),
            request_id,
        },
    };
    match serde_json::to_vec(&resp) {
        Ok(json) => Payload::new("ErrorResponse", json),
        // Serialising integers and strings cannot fail; keep a literal answer regardless.
        Err(_) => Payload::new(
            "ErrorResponse",
            br#"{"resultCode":500,"errorCode":500,"success":false}"#.to_vec(),
        ),
    }
}

/// The answer to a failed handler: typed failure or `ErrorResponse`.
pub fn failure_payload<R: GrpcResponse>(error: GrpcError, request_id: Option<String>) -> Payload {
    match error {
        GrpcError::Fail { code, message } => {
            let mut resp = R::default();
            let base = resp.base_mut();
            base.result_code = 500;
            base.error_code = code;
            base.success = false;
            base.message = Some(message);
            base.request_id = request_id;
            encode(R::TYPE, &resp)
        }
        GrpcError::Thrown { code, message } => error_payload(code, code, &message, request_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    grpc_response!(DemoResponse {
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        last_modified: i64,
    });

    fn json(p: &Payload) -> serde_json::Value {
        serde_json::from_slice(p.body_bytes()).expect("json body")
    }

    #[test]
    fn envelopes() {
        let ok = ok_payload(
            DemoResponse {
                content: Some("x".into()),
                ..Default::default()
            },
            Some("7".into()),
        );
        assert_eq!(ok.type_name(), "DemoResponse");
        let v = json(&ok);
        assert_eq!(v["resultCode"], 200);
        assert_eq!(v["errorCode"], 0);
        assert_eq!(v["success"], true);
        assert_eq!(v["requestId"], "7");
        assert_eq!(v["content"], "x");
        assert!(v.get("message").is_none());

        let fail =
            failure_payload::<DemoResponse>(GrpcError::fail(300, "config data not exist"), None);
        assert_eq!(fail.type_name(), "DemoResponse");
        let v = json(&fail);
        assert_eq!(v["resultCode"], 500);
        assert_eq!(v["errorCode"], 300);
        assert_eq!(v["lastModified"], 0);
        assert!(v.get("content").is_none());

        let thrown = failure_payload::<DemoResponse>(GrpcError::thrown(400, "bad"), None);
        assert_eq!(thrown.type_name(), "ErrorResponse");
        let v = json(&thrown);
        assert_eq!(v["resultCode"], 400);
        assert_eq!(v["errorCode"], 400);
        assert_eq!(v["success"], false);
    }
}
