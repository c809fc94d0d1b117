//! The Nacos 2.x gRPC protocol, shared by the client edge and the node-to-node edges:
//!
//! # Layout
//! - [`transport`]: `Payload` / `Metadata` and the unary `Request` service glue.
//! - [`message`]: the response envelope, request/response traits and macros, payload encoders.
//! - [`error`]: Nacos's error codes and the two failure shapes.

pub mod error;
pub mod message;
pub mod transport;

pub use transport::{Metadata, Payload};
