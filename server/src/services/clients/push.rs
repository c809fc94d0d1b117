//! Who on which connection watches which key, and the pushes that follow a change: one
//! implementation for config listeners (`ConfigChangeNotifyRequest`) and naming subscribers
//! (`NotifySubscriberRequest`).
//!
//! Per (connection, key) at most one push task runs. A change while it runs marks it to push
//! once more after its current try, so the last state always reaches the client. Pushes are
//! debounced on the leading edge: the first change of a quiet key is pushed at once, and the
//! changes that follow within the kind's delay are merged into one push at the end of that
//! window — a burst costs at most one push per window, and the delay adds latency only to
//! bursts. Failed tries are retried per the kind's [`PushPolicy`].

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::connection::{Connection, ConnectionManager, PushError};
use crate::foundation::metrics::PushStats;

/// How one kind of push is retried.
#[derive(Debug, Clone)]
pub struct PushPolicy {
    /// Least time between two pushes of one key to one connection; changes within it are
    /// merged into the push at its end.
    pub delay: Duration,
    /// How long one try waits for the client's answer.
    pub timeout: Duration,
    /// Pause after a failed try: `retry_delay`, times the number of failures when `linear`.
    pub retry_delay: Duration,
    pub linear: bool,
    /// Failed tries before giving up.
    pub max_tries: u32,
    /// On giving up, drop the connection (config, as Nacos) instead of only this push.
    pub eject_when_exhausted: bool,
}

/// One kind of watch: its key, what a watcher registered, and the push it gets.
pub trait PushKind: Send + Sync + 'static {
    type Key: Clone + Eq + Hash + Send + Sync + std::fmt::Debug + 'static;
    type Data: Clone + Send + Sync + 'static;
    const TYPE: &'static str;
    const MODULE: &'static str;
    /// The body of the push as a JSON object, without `requestId`, `headers` and `module`
    /// (each connection's envelope adds them).
    fn body(&self, key: &Self::Key, data: &Self::Data) -> Vec<u8>;
    fn policy(&self) -> PushPolicy;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PushState {
    Idle,
    /// A push task runs; `again` asks it for one more try after the current one.
    InFlight {
        again: bool,
    },
}

struct Entry<D> {
    data: D,
    push: PushState,
    /// When the last push succeeded: the next one waits until `delay` after it.
    last_push: Option<tokio::time::Instant>,
}

impl<D> Entry<D> {
    /// Note a change; whether a push task has to start for it (none runs yet).
    fn mark_changed(&mut self) -> bool {
        match &mut self.push {
            PushState::InFlight { again } => {
                *again = true;
                false
            }
            PushState::Idle => {
                self.push = PushState::InFlight { again: false };
                true
            }
        }
    }
}

struct Index<K, D> {
    by_key: HashMap<K, HashSet<Arc<str>>>,
    by_conn: HashMap<Arc<str>, HashMap<K, Entry<D>>>,
}

impl<K, D> Default for Index<K, D> {
    fn default() -> Self {
        Self {
            by_key: HashMap::new(),
            by_conn: HashMap::new(),
        }
    }
}

/// The watchers of one kind.
pub struct Subscribers<P: PushKind> {
    kind: P,
    stats: Arc<PushStats>,
    index: Mutex<Index<P::Key, P::Data>>,
}

impl<P: PushKind> std::fmt::Debug for Subscribers<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscribers")
            .field("type", &P::TYPE)
            .field("count", &self.count())
            .finish()
    }
}

impl<P: PushKind> Subscribers<P> {
    /// Create, and drop a connection's watches when it unregisters. Every try is recorded in
    /// `stats`.
    pub fn install(kind: P, connections: &ConnectionManager, stats: Arc<PushStats>) -> Arc<Self> {
        let subs = Arc::new(Self {
            kind,
            stats,
            index: Mutex::new(Index::default()),
        });
        let weak = Arc::downgrade(&subs);
        connections.on_unregister(Arc::new(move |conn: &Connection| {
            if let Some(subs) = weak.upgrade() {
                subs.remove_connection(&conn.id);
            }
        }));
        subs
    }

    pub fn kind(&self) -> &P {
        &self.kind
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index<P::Key, P::Data>> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watch `key` from `conn` (replacing its data if already watched). Returns whether the
    /// watch is new.
    pub fn add(&self, conn: &Arc<str>, key: P::Key, data: P::Data) -> bool {
        let mut index = self.lock();
        index
            .by_key
            .entry(key.clone())
            .or_default()
            .insert(Arc::clone(conn));
        let entries = index.by_conn.entry(Arc::clone(conn)).or_default();
        match entries.get_mut(&key) {
            Some(entry) => {
                entry.data = data;
                false
            }
            None => {
                entries.insert(
                    key,
                    Entry {
                        data,
                        push: PushState::Idle,
                        last_push: None,
                    },
                );
                true
            }
        }
    }

    /// Stop watching. Returns whether there was a watch.
    pub fn remove(&self, conn: &str, key: &P::Key) -> bool {
        let mut index = self.lock();
        let mut removed = false;
        if let Some(entries) = index.by_conn.get_mut(conn) {
            removed = entries.remove(key).is_some();
            if entries.is_empty() {
                index.by_conn.remove(conn);
            }
        }
        if let Some(conns) = index.by_key.get_mut(key) {
            conns.remove(conn);
            if conns.is_empty() {
                index.by_key.remove(key);
            }
        }
        removed
    }

    pub fn remove_connection(&self, conn: &str) {
        let mut index = self.lock();
        let Some(entries) = index.by_conn.remove(conn) else {
            return;
        };
        for key in entries.keys() {
            if let Some(conns) = index.by_key.get_mut(key) {
                conns.remove(conn);
                if conns.is_empty() {
                    index.by_key.remove(key);
                }
            }
        }
    }

    /// (connection, key) watches.
    pub fn count(&self) -> usize {
        self.lock().by_conn.values().map(HashMap::len).sum()
    }

    /// What `conn` watches.
    pub fn watched_by(&self, conn: &str) -> Vec<(P::Key, P::Data)> {
        self.lock()
            .by_conn
            .get(conn)
            .map(|e| e.iter().map(|(k, v)| (k.clone(), v.data.clone())).collect())
            .unwrap_or_default()
    }

    /// The connections watching `key`.
    pub fn watchers(&self, key: &P::Key) -> Vec<Arc<str>> {
        self.lock()
            .by_key
            .get(key)
            .map(|conns| conns.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every connection that watches something.
    pub fn connections(&self) -> Vec<Arc<str>> {
        self.lock().by_conn.keys().cloned().collect()
    }

    /// Every watched key.
    pub fn keys(&self) -> Vec<P::Key> {
        self.lock().by_key.keys().cloned().collect()
    }

    /// `key` changed: push to every connection watching it. One pass under the lock marks
    /// every watch; a push task starts for each that had none running.
    pub fn changed(self: &Arc<Self>, connections: &Arc<ConnectionManager>, key: &P::Key) {
        let start: Vec<Arc<str>> = {
            let mut guard = self.lock();
            let index = &mut *guard;
            let Some(conns) = index.by_key.get(key) else {
                return;
            };
            conns
                .iter()
                .filter(|conn| {
                    index
                        .by_conn
                        .get_mut(conn.as_ref())
                        .and_then(|entries| entries.get_mut(key))
                        .is_some_and(Entry::mark_changed)
                })
                .cloned()
                .collect()
        };
        let resolved = connections.get_each(&start);
        for (id, conn) in start.into_iter().zip(resolved) {
            self.spawn_push(connections, id, conn, key.clone());
        }
    }

    /// Push `key` to `conn` alone (a first subscription).
    pub fn push_to(
        self: &Arc<Self>,
        connections: &Arc<ConnectionManager>,
        conn: &Arc<str>,
        key: &P::Key,
    ) {
        let start = {
            let mut index = self.lock();
            let Some(entry) = index
                .by_conn
                .get_mut(conn)
                .and_then(|entries| entries.get_mut(key))
            else {
                return;
            };
            entry.mark_changed()
        };
        if start {
            let resolved = connections.get(conn);
            self.spawn_push(connections, Arc::clone(conn), resolved, key.clone());
        }
    }

    /// Start the push task of a watch marked in flight; a connection already gone leaves the
    /// watch idle (its hook is removing it).
    fn spawn_push(
        self: &Arc<Self>,
        connections: &Arc<ConnectionManager>,
        conn_id: Arc<str>,
        conn: Option<Arc<Connection>>,
        key: P::Key,
    ) {
        let Some(conn) = conn else {
            self.with_entry(&conn_id, &key, |e| e.push = PushState::Idle);
            return;
        };
        let me = Arc::clone(self);
        let connections = Arc::clone(connections);
        tokio::spawn(async move { me.push_task(connections, conn_id, conn, key).await });
    }

    fn with_entry<T>(
        &self,
        conn: &str,
        key: &P::Key,
        f: impl FnOnce(&mut Entry<P::Data>) -> T,
    ) -> Option<T> {
        let mut index = self.lock();
        index
            .by_conn
            .get_mut(conn)
            .and_then(|entries| entries.get_mut(key))
            .map(f)
    }

    async fn push_task(
        self: Arc<Self>,
        connections: Arc<ConnectionManager>,
        conn_id: Arc<str>,
        conn: Arc<Connection>,
        key: P::Key,
    ) {
        let policy = self.kind.policy();
        let mut tries: u32 = 0;
        loop {
            let window_ends = if policy.delay.is_zero() {
                None
            } else {
                self.with_entry(&conn_id, &key, |e| e.last_push)
                    .flatten()
                    .map(|pushed| pushed + policy.delay)
            };
            if let Some(window_ends) = window_ends.filter(|end| *end > tokio::time::Instant::now())
            {
                tokio::select! {
                    _ = conn.closed() => return,
                    _ = tokio::time::sleep_until(window_ends) => {}
                }
            }
            // Whatever changed until now is covered by this try.
            let Some(data) = self.with_entry(&conn_id, &key, |e| {
                e.push = PushState::InFlight { again: false };
                e.data.clone()
            }) else {
                return;
            };
            let body = self.kind.body(&key, &data);
            let started = std::time::Instant::now();
            let outcome = connections
                .request_rendered(&conn, P::TYPE, P::MODULE, &body, policy.timeout)
                .await;
            let error = match outcome {
                Ok(()) => {
                    self.stats.succeeded(started.elapsed());
                    let now = tokio::time::Instant::now();
                    // Record the push and learn whether a change came meanwhile, in one visit.
                    let again = self.with_entry(&conn_id, &key, |e| {
                        e.last_push = Some(now);
                        match e.push {
                            PushState::InFlight { again: true } => true,
                            _ => {
                                e.push = PushState::Idle;
                                false
                            }
                        }
                    });
                    if again != Some(true) {
                        return;
                    }
                    tries = 0;
                    continue;
                }
                Err(PushError::Closed) => return,
                Err(e) => {
                    self.stats.failed.inc();
                    e
                }
            };
            tries += 1;
            if tries >= policy.max_tries {
                if policy.eject_when_exhausted {
                    tracing::info!(
                        conn = %conn_id, r#type = P::TYPE, %error, tries,
                        "push kept failing; dropping the connection"
                    );
                    connections.eject(&conn, "push retries exhausted");
                } else {
                    tracing::info!(conn = %conn_id, r#type = P::TYPE, %error, tries, "giving up on a push");
                    self.with_entry(&conn_id, &key, |e| e.push = PushState::Idle);
                }
                return;
            }
            tracing::debug!(conn = %conn_id, r#type = P::TYPE, %error, tries, "push failed; will retry");
            let pause = if policy.linear {
                policy.retry_delay.saturating_mul(tries)
            } else {
                policy.retry_delay
            };
            tokio::select! {
                _ = conn.closed() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}
