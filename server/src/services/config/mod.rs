//! The config service: one implementation of config reads, writes and change notification,
//! shared by every edge (HTTP v1, v2, gRPC).
//!
//! # Layout
//! - [`service`]: [`ConfigService`] — reads through a cache, writes, change events.
//! - [`ops`]: validation and the publish mapping every edge shares.
//! - [`hub`]: change fan-out to long polls and the gRPC edge.
//! - [`listen`]: the v1 long-polling wire format.
//! - [`archive`]: export and import archives.
//! - [`warm`]: the config cache loaded at start over an external database.
//! - [`retention`]: the periodic history purge (`nacos.config.retention.days`) and whose turn
//!   it is.

pub mod archive;
pub mod hub;
pub mod listen;
pub mod ops;
pub mod retention;
pub mod service;
pub mod warm;

pub use hub::{ListenerHub, Subscription};
pub use service::{ConfigService, KeyState, Selected};
