//! Services: the rules of a Nacos server, one implementation behind every edge. Each takes the
//! repositories and settings values it needs, not the whole application.
//!
//! # Layout
//! - [`config`]: config reads through a cache, writes, change events, import and export,
//!   history retention.
//! - [`naming`]: the ephemeral registry, beats and expiry, persistent instances through the
//!   repository, server-side health checks of persistent instances, UDP push to v1
//!   subscribers, copies of other nodes' clients.
//! - [`namespace`]: namespace rules over the namespace repository.
//! - [`auth`]: the selected auth plugin and the server identity; edges enforce through it.
//! - [`clients`]: client connections, their listens and subscriptions, and pushes to them.
//! - [`transfer`]: whole-store backup, restore and migration: the dump file format, the runs
//!   and their per-table verification.

pub mod auth;
pub mod clients;
pub mod config;
pub mod namespace;
pub mod naming;
pub mod transfer;
