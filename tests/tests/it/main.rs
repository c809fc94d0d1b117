//! The one integration test binary of the workspace: each module is one area.

mod config_v1;
mod conformance_embedded;
mod grpc;
mod http_v2;
mod naming_v1;
mod support;
