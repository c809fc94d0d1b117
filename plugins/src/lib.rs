//! Auth plugins of the Nacos-compatible server.
//!
//! # Layout
//! Empty for now: the `AuthPlugin` trait and the default `nacos` plugin arrive with the
//! authentication issue. The crate exists so the workspace layout is stable.
