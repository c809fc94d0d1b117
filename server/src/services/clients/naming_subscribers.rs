//! Which client connection subscribes to which service, and the `NotifySubscriberRequest`
//! push to every subscriber of a service that changed — through any edge (gRPC, v1 HTTP,
//! expiry), since every change goes through the one [`NamingService`].

use std::sync::Arc;

use nacos_core::ServiceKey;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::connection::{Connection, ConnectionManager};
use super::push::{PushKind, PushPolicy, Subscribers};
use crate::foundation::settings::Settings;
use crate::services::naming::{ClientId, NamingService, Selection, WireStyle};

/// Failed tries of one subscriber push before it is given up (a later change pushes again).
const NAMING_PUSH_MAX_TRIES: u32 = 30;

/// A service as a gRPC client sees it (`ServiceInfo` in Nacos 2.x's field style).
pub fn service_info(
    naming: &NamingService,
    key: &ServiceKey,
    selection: Selection<'_>,
) -> serde_json::Value {
    let info = naming.select(key, selection);
    serde_json::to_value(info.wire(WireStyle::Grpc)).unwrap_or(serde_json::Value::Null)
}

/// `NotifySubscriberRequest {serviceInfo}` with the subscriber's cluster filter: at once for a
/// quiet service, then at most once per `pushTaskDelay` (merging changes), retried every
/// `pushTaskRetryDelay`.
#[derive(Debug)]
pub struct NamingPush {
    naming: Arc<NamingService>,
    policy: PushPolicy,
}

impl PushKind for NamingPush {
    type Key = ServiceKey;
    /// The subscribed clusters (comma-separated, empty for all).
    type Data = String;
    const TYPE: &'static str = "NotifySubscriberRequest";
    const MODULE: &'static str = "naming";

    fn body(&self, key: &ServiceKey, clusters: &String) -> Vec<u8> {
        let selection = Selection {
            clusters,
            healthy_only: false,
        };
        // The selection as `instance/list` serves it: rendered once per change and cluster
        // filter, then shared by every subscriber's push (only `lastRefTime` is written anew).
        let info = self.naming.select_json(key, selection, WireStyle::Grpc);
        let mut body = Vec::with_capacity(info.len() + 16);
        body.extend_from_slice(br#"{"serviceInfo":"#);
        body.extend_from_slice(&info);
        body.push(b'}');
        body
    }

    fn policy(&self) -> PushPolicy {
        self.policy.clone()
    }
}

/// gRPC naming subscribers, fed by every change of the one [`NamingService`].
#[derive(Debug)]
pub struct NamingSubscribers {
    subs: Arc<Subscribers<NamingPush>>,
}

impl NamingSubscribers {
    /// Create the index; when a connection unregisters, drop its subscriptions and remove its
    /// ephemeral instances (their subscribers are notified).
    pub fn install(
        naming: &Arc<NamingService>,
        settings: &Settings,
        connections: &ConnectionManager,
        stats: Arc<crate::foundation::metrics::PushStats>,
    ) -> Arc<Self> {
        let props = &settings.properties;
        let ms = |key: &str, default: u64| props.millis_or_warn(key, default);
        let kind = NamingPush {
            naming: Arc::clone(naming),
            policy: PushPolicy {
                delay: ms("nacos.naming.push.pushTaskDelay", 500),
                timeout: ms("nacos.naming.push.pushTaskTimeout", 5_000),
                retry_delay: ms("nacos.naming.push.pushTaskRetryDelay", 1_000),
                linear: false,
                max_tries: NAMING_PUSH_MAX_TRIES,
                eject_when_exhausted: false,
            },
        };
        let owner_naming = Arc::clone(naming);
        connections.on_unregister(Arc::new(move |conn: &Connection| {
            owner_naming.remove_client(&ClientId::connection(&conn.id));
        }));
        Arc::new(Self {
            subs: Subscribers::install(kind, connections, stats),
        })
    }

    /// Returns whether the subscription is new.
    pub fn subscribe(&self, conn: &Arc<str>, key: ServiceKey, clusters: String) -> bool {
        self.subs.add(conn, key, clusters)
    }

    pub fn unsubscribe(&self, conn: &str, key: &ServiceKey) -> bool {
        self.subs.remove(conn, key)
    }

    pub fn remove_connection(&self, conn: &str) {
        self.subs.remove_connection(conn);
    }

    pub fn push_to(&self, connections: &Arc<ConnectionManager>, conn: &Arc<str>, key: &ServiceKey) {
        self.subs.push_to(connections, conn, key);
    }

    /// The services `conn` subscribes to, with its cluster filter of each.
    pub fn subscriptions_of(&self, conn: &str) -> Vec<(ServiceKey, String)> {
        self.subs.watched_by(conn)
    }

    /// The connections subscribed to `key`.
    pub fn subscribers_of(&self, key: &ServiceKey) -> Vec<Arc<str>> {
        self.subs.watchers(key)
    }

    /// Every connection with at least one subscription.
    pub fn subscribing_connections(&self) -> Vec<Arc<str>> {
        self.subs.connections()
    }

    /// (connection, service) subscriptions.
    pub fn subscriber_count(&self) -> usize {
        self.subs.count()
    }

    /// Start the task that turns service changes into pushes. Stops with `shutdown`.
    pub fn start(
        self: &Arc<Self>,
        naming: &NamingService,
        connections: Arc<ConnectionManager>,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        let mut changes = naming.subscribe_changes();
        let subs = Arc::clone(&self.subs);
        tokio::spawn(async move {
            loop {
                let change = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    change = changes.recv() => change,
                };
                match change {
                    Ok(key) => subs.changed(&connections, &key),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(
                            missed,
                            "naming changes lagged; pushing every subscribed service"
                        );
                        for key in subs.keys() {
                            subs.changed(&connections, &key);
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        })
    }
}
