//! The config service: one implementation of config reads, writes and change notification,
//! shared by every edge (HTTP v1, v2, gRPC).

pub mod archive;
pub mod hub;
pub mod listen;
pub mod ops;
pub mod service;
pub mod warm;

pub use hub::{ListenerHub, Subscription};
pub use service::{ConfigService, KeyState, Selected};
