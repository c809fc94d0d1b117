//! The one integration test binary of the workspace: each module is one area.

mod config_v1;
mod conformance_embedded;
mod support;
