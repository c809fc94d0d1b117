//! Foundation: what every layer may use and that uses nothing above it.
//!
//! # Layout
//! - [`cli`]: the command line, shaped like Nacos's `startup.sh` (`-m`, `-p`, `-D key=value`),
//!   and the `backup` / `restore` / `migrate` subcommands.
//! - [`settings`]: `application.properties` loading and the typed settings.
//! - [`env`]: the official container image's environment variables mapped onto properties.
//! - [`error`]: [`error::ServiceError`], the edge-neutral failure kinds, and
//!   [`error::StartError`].
//! - [`protocol`]: the Nacos 2.x gRPC wire shared by the client and peer edges.
//! - [`middleware`]: the tower layers both edges share (access log, counters) and the per-route
//!   timing of HTTP requests.
//! - [`metrics`]: the hot-path metric handles (atomic counters and histograms), per server.
//! - [`timed_repo`]: the config and instance repositories wrapped to time every storage call.
//! - [`process`]: this process's CPU time, memory, threads and file descriptors (Linux `/proc`).
//! - [`trusted_proxies`]: the proxies whose forwarding headers name the client address.
//! - [`storage`]: picks the storage backend named by the properties and opens it.

pub mod cli;
pub mod env;
pub mod error;
pub mod metrics;
pub mod middleware;
pub mod process;
pub mod protocol;
pub mod settings;
pub mod storage;
pub mod timed_repo;
pub mod trusted_proxies;
