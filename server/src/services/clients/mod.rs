//! Client connections, a service of their own: the registered gRPC connections (limits,
//! ejection, the pushes sent over them), which connection listens to which config key and
//! subscribes to which service, and the push machinery that tells them of changes. The gRPC
//! edge registers connections and records listens and subscriptions here; every other edge and
//! the services' change events reach the clients through it.
//!
//! # Layout
//! - [`connection`]: connections and their transports, the manager and its limits.
//! - [`push`]: the generic subscriber index and retrying pusher.
//! - [`config_listeners`]: config listens and `ConfigChangeNotifyRequest` pushes.
//! - [`config_metrics`]: `ClientConfigMetricRequest` to the connections of one client IP, and
//!   their answers merged.
//! - [`naming_subscribers`]: service subscriptions and `NotifySubscriberRequest` pushes.
//! - [`listeners`]: who listens to a config, and what one client listens to, over both
//!   gRPC listens and v1 long polls (the console's listening query).

pub mod config_listeners;
pub mod config_metrics;
pub mod connection;
pub mod listeners;
pub mod naming_subscribers;
pub mod push;

pub use config_listeners::{ConfigListeners, ListenData};
pub use connection::{Connection, ConnectionManager, TransportState};
pub use naming_subscribers::NamingSubscribers;
