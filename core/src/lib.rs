//! Domain model and repository traits shared by every storage backend and by the server.
//!
//! # Layout
//! - [`model`]: configs (formal, gray variants, history), namespaces, services and instances.
//! - [`datasource`]: the `db.*` properties and JDBC URLs that SQL backends share.
//! - [`ha`]: which of several database nodes takes writes ([`ha::Topology`]), the probe
//!   trait the SQL backends implement and the monitor task they share, and [`ha::HaStatus`],
//!   what a backend reports of its nodes for metrics.
//! - [`error`]: [`RepoError`], the one error enum of kinds every backend maps its driver errors onto.
//! - [`repo`]: the object-safe repository traits ([`ConfigRepo`], [`NamespaceRepo`],
//!   [`InstanceRepo`], [`UserRepo`]) and [`Capabilities`], the contract the conformance suite checks.
//! - [`rules`]: the domain rules every backend applies alike (what a publish stores, tag and
//!   beta-IP cleaning, namespace spellings, config types, storable services and instances).
//! - [`validate`]: Nacos's parameter rules (allowed characters and lengths), shared by every edge.
//! - [`transfer`]: whole-store backup, restore and migration: the dump model ([`transfer::Record`]
//!   by [`transfer::Table`]), the [`TransferRepo`] contract and per-table digests.
//!
//! - [`auth`]: the [`AuthPlugin`] contract (identity, resources, actions, Nacos's refusals).
//!
//! Nothing here knows about HTTP, gRPC or SQL.

pub mod auth;
pub mod datasource;
pub mod error;
pub mod ha;
pub mod model;
pub mod repo;
pub mod rules;
pub mod transfer;
pub mod validate;

pub use auth::{Action, AuthError, AuthPlugin, IdentityContext, LoginResult, Principal, Resource};
pub use error::{Detail, RepoError, RepoResult};
pub use model::*;
pub use repo::{Capabilities, ConfigRepo, InstanceRepo, NamespaceRepo, Repos, UserRepo};
pub use transfer::TransferRepo;
