//! Edges: presentation only. Each parses its wire, authorizes, calls the services (through
//! [`crate::app::App`]) and renders the answer; error kinds map onto its codes in one place.
//!
//! # Layout
//! - [`http`]: the axum router under the context path: v1 and v2 OpenAPI, console and core
//!   endpoints, the per-route auth guards and timings, `/actuator/prometheus`.
//! - [`grpc`]: the client edge (port + 1000): connections' bi-streams, the dispatch pipeline,
//!   config and naming handlers.
//! - [`peer`]: the node-to-node ports (cluster port + 1001, Raft port − 1000).
//! - [`tools`]: the operator's command-line tools (`backup`, `restore`, `migrate`): progress
//!   on stderr, stores opened from properties, online backups fetched over HTTP.

pub mod grpc;
pub mod http;
pub mod peer;
pub mod tools;
