//! Fan-out of config change events to whoever listens to a key: v1 long-poll waiters through
//! per-key [`Subscription`]s (unregistered when dropped), and whole-edge observers (the gRPC
//! edge) that see every changed key and keep their own index of who listens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use nacos_core::ConfigKey;
use tokio::sync::mpsc;

type Waiters = HashMap<ConfigKey, HashMap<u64, mpsc::Sender<ConfigKey>>>;

/// Who waits in a long poll: the client's address and the md5 it sent for each key (the
/// console's listening query reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poller {
    pub client_ip: String,
    pub md5s: Vec<(ConfigKey, String)>,
}

type Pollers = HashMap<u64, Poller>;

/// Sees every changed key. Called synchronously from the write path, so it must not block:
/// hand the key to a queue and return.
pub type ChangeObserver = Arc<dyn Fn(&ConfigKey) + Send + Sync>;

#[derive(Default)]
struct Observers(RwLock<Vec<ChangeObserver>>);

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.read().map_or(0, |o| o.len());
        write!(f, "Observers({n})")
    }
}

#[derive(Debug, Default)]
pub struct ListenerHub {
    next_id: AtomicU64,
    waiters: Arc<Mutex<Waiters>>,
    pollers: Arc<Mutex<Pollers>>,
    observers: Observers,
}

impl ListenerHub {
    /// Listen to `keys`. Events queue up to `capacity`; a full queue drops further events for
    /// that subscriber, which is harmless because a waiter re-checks every key it holds.
    pub fn subscribe(&self, keys: Vec<ConfigKey>, capacity: usize) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        for key in &keys {
            waiters
                .entry(key.clone())
                .or_default()
                .insert(id, tx.clone());
        }
        Subscription {
            id,
            keys,
            events: rx,
            waiters: Arc::clone(&self.waiters),
            pollers: None,
        }
    }

    /// [`Self::subscribe`] for a long poll: who waits is listed (see [`Self::pollers`]) until
    /// the subscription is dropped.
    pub fn subscribe_poller(&self, poller: Poller, capacity: usize) -> Subscription {
        let keys = poller.md5s.iter().map(|(k, _)| k.clone()).collect();
        let mut sub = self.subscribe(keys, capacity);
        self.pollers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sub.id, poller);
        sub.pollers = Some(Arc::clone(&self.pollers));
        sub
    }

    /// The long polls waiting now.
    pub fn pollers(&self) -> Vec<Poller> {
        let pollers = self.pollers.lock().unwrap_or_else(|p| p.into_inner());
        pollers.values().cloned().collect()
    }

    /// Tell every subscriber of `key`, and every observer, that it changed.
    pub fn notify(&self, key: &ConfigKey) {
        {
            let waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(subs) = waiters.get(key) {
                for tx in subs.values() {
                    let _ = tx.try_send(key.clone());
                }
            }
        }
        let observers = self.observers.0.read().unwrap_or_else(|p| p.into_inner());
        for observer in observers.iter() {
            observer(key);
        }
    }

    /// Add an observer of every change, for the life of the hub.
    pub fn observe(&self, observer: ChangeObserver) {
        self.observers
            .0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(observer);
    }

    /// Number of (subscriber, key) pairs, for metrics.
    pub fn listener_count(&self) -> usize {
        let waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        waiters.values().map(HashMap::len).sum()
    }
}

#[derive(Debug)]
pub struct Subscription {
    id: u64,
    keys: Vec<ConfigKey>,
    events: mpsc::Receiver<ConfigKey>,
    waiters: Arc<Mutex<Waiters>>,
    /// Set for a long poll, whose entry is removed with the subscription.
    pollers: Option<Arc<Mutex<Pollers>>>,
}

impl Subscription {
    /// The next changed key, or `None` if the hub is gone.
    pub async fn changed(&mut self) -> Option<ConfigKey> {
        self.events.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(pollers) = &self.pollers {
            pollers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.id);
        }
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        for key in &self.keys {
            if let Some(subs) = waiters.get_mut(key) {
                subs.remove(&self.id);
                if subs.is_empty() {
                    waiters.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notifies_only_subscribers_and_cleans_up() {
        let hub = ListenerHub::default();
        let a = ConfigKey::new("", "g", "a");
        let b = ConfigKey::new("", "g", "b");
        let mut sub = hub.subscribe(vec![a.clone()], 4);
        hub.notify(&b);
        hub.notify(&a);
        assert_eq!(sub.changed().await, Some(a.clone()));
        assert_eq!(hub.listener_count(), 1);
        drop(sub);
        assert_eq!(hub.listener_count(), 0);
    }

    #[test]
    fn pollers_are_listed_while_they_wait() {
        let hub = ListenerHub::default();
        let a = ConfigKey::new("", "g", "a");
        let poller = Poller {
            client_ip: "10.0.0.9".to_string(),
            md5s: vec![(a.clone(), "abc".to_string())],
        };
        let sub = hub.subscribe_poller(poller.clone(), 4);
        assert_eq!(hub.pollers(), vec![poller]);
        assert_eq!(hub.listener_count(), 1);
        drop(sub);
        assert!(hub.pollers().is_empty());
    }

    #[test]
    fn observers_see_every_key() {
        let hub = ListenerHub::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        hub.observe(Arc::new(move |k: &ConfigKey| {
            sink.lock().expect("lock").push(k.clone());
        }));
        hub.notify(&ConfigKey::new("", "g", "a"));
        hub.notify(&ConfigKey::new("ns", "g", "b"));
        assert_eq!(seen.lock().expect("lock").len(), 2);
    }
}
