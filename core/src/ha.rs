//! Which configured database node takes writes: the policy the SQL backends share, apart from
//! how each asks a node ([`NodeProbe`]).
//!
//! - [`probe_all`] asks every node at once whether it is writable.
//! - [`Topology::next`] turns the answers into the new topology: the current primary stays
//!   primary while it stays writable (no flapping when two nodes are writable); otherwise the
//!   writable node with the lowest index wins; other writable nodes serve as replicas.
//! - [`HaStatus`] is what a backend reports of it for metrics.
//! - [`spawn_monitor`] re-checks every interval, and soon after [`Monitor::suspect`] (a query
//!   failed in a way that says its node may be gone or demoted), until its owner is dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;

/// What a multi-node SQL backend reports about its nodes, for metrics: which node takes
/// writes now and how often that changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HaStatus {
    /// Configured nodes (`db.num`).
    pub nodes: usize,
    /// Index of the node that takes writes, if any is writable.
    pub primary: Option<usize>,
    /// Times writes moved from one node to another since start.
    pub failovers: u64,
}

/// Asks one database node whether it takes writes.
#[async_trait]
pub trait NodeProbe: Send + Sync {
    /// `Ok(true)` when the node answers and is writable, `Ok(false)` when it answers and is
    /// read-only (a replica, a standby), `Err(why)` when it does not answer.
    async fn is_writable(&self) -> Result<bool, String>;
}

/// What the last probe found. Indexes are positions in the configured node list (N of
/// `db.url.N`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    /// The writable node that takes writes, if any node is writable.
    pub primary: Option<usize>,
    /// Reachable read-only nodes, and writable nodes other than the primary (reads only).
    pub replicas: Vec<usize>,
    /// Nodes that did not answer, with why.
    pub down: Vec<(usize, String)>,
}

impl Topology {
    /// The topology after a probe of every node: `previous` stays primary while it answers
    /// writable; else the writable node with the lowest index is primary.
    pub fn next(
        previous: Option<usize>,
        answers: impl IntoIterator<Item = (usize, Result<bool, String>)>,
    ) -> Topology {
        let mut writable = Vec::new();
        let mut replicas = Vec::new();
        let mut down = Vec::new();
        for (index, answer) in answers {
            match answer {
                Ok(true) => writable.push(index),
                Ok(false) => replicas.push(index),
                Err(why) => down.push((index, why)),
            }
        }
        writable.sort_unstable();
        down.sort();
        let primary = match previous {
            Some(current) if writable.contains(&current) => Some(current),
            _ => writable.first().copied(),
        };
        // A second writable node is served as a replica: reads only, never writes.
        replicas.extend(writable.iter().filter(|i| Some(**i) != primary));
        replicas.sort_unstable();
        Topology {
            primary,
            replicas,
            down,
        }
    }
}

/// Ask every node at once; the answers in node order.
pub async fn probe_all<P: NodeProbe>(nodes: &[P]) -> Vec<(usize, Result<bool, String>)> {
    type Probe<'a> = Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>>;
    let mut pending: Vec<Option<Probe<'_>>> = nodes.iter().map(|n| Some(n.is_writable())).collect();
    let mut answers: Vec<Option<Result<bool, String>>> = vec![None; nodes.len()];
    std::future::poll_fn(|cx| {
        for (slot, answer) in pending.iter_mut().zip(answers.iter_mut()) {
            if let Some(probe) = slot
                && let Poll::Ready(found) = probe.as_mut().poll(cx)
            {
                *answer = Some(found);
                *slot = None;
            }
        }
        if pending.iter().all(Option::is_none) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    answers
        .into_iter()
        .enumerate()
        .map(|(index, answer)| {
            (
                index,
                answer.unwrap_or_else(|| Err("the probe did not finish".to_string())),
            )
        })
        .collect()
}

/// The same choice as [`Topology::next`] over [`probe_all`], asking as few nodes as needed:
/// `current` while it answers writable, else the first node (in order) that does. Returns the
/// choice and the answers it got, in node order.
pub async fn first_writable<P: NodeProbe>(
    nodes: &[P],
    current: Option<usize>,
) -> (Option<usize>, Vec<(usize, Result<bool, String>)>) {
    let mut answers = Vec::new();
    if let Some(index) = current
        && let Some(node) = nodes.get(index)
    {
        let answer = node.is_writable().await;
        if answer == Ok(true) {
            return (Some(index), vec![(index, answer)]);
        }
        answers.push((index, answer));
    }
    for (index, node) in nodes.iter().enumerate() {
        if Some(index) == current {
            continue;
        }
        let answer = node.is_writable().await;
        let writable = answer == Ok(true);
        answers.push((index, answer));
        if writable {
            answers.sort_by_key(|(i, _)| *i);
            return (Some(index), answers);
        }
    }
    answers.sort_by_key(|(i, _)| *i);
    (None, answers)
}

/// The wake-up side of a monitor task: cheap to share, never keeps the owner alive.
#[derive(Debug, Default)]
pub struct Monitor {
    wake: tokio::sync::Notify,
}

impl Monitor {
    /// Something failed in a way that says a node may be gone or demoted: check soon.
    pub fn suspect(&self) {
        self.wake.notify_one();
    }
}

/// Call `check` on `owner` every `interval`, and `settle` after a [`Monitor::suspect`] (so a
/// burst of failing calls makes one check, not a busy loop), until `owner` is dropped. Must run
/// inside a tokio runtime.
pub fn spawn_monitor<T, F>(
    owner: Weak<T>,
    monitor: Arc<Monitor>,
    interval: Duration,
    settle: Duration,
    check: F,
) where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            // Wait without keeping the owner alive: a dropped owner ends the task.
            let woken = tokio::time::timeout(interval, monitor.wake.notified())
                .await
                .is_ok();
            if woken {
                tokio::time::sleep(settle.min(interval)).await;
            }
            let Some(strong) = owner.upgrade() else {
                return;
            };
            check(strong).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(writable: bool) -> Result<bool, String> {
        Ok(writable)
    }

    #[test]
    fn lowest_writable_wins_and_stays() {
        let first = Topology::next(
            None,
            [
                (0, Err("refused".to_string())),
                (1, up(true)),
                (2, up(true)),
                (3, up(false)),
            ],
        );
        assert_eq!(first.primary, Some(1));
        assert_eq!(first.replicas, vec![2, 3]);
        assert_eq!(first.down, vec![(0, "refused".to_string())]);
        // Node 0 comes back writable: the primary stays where it is.
        let again = Topology::next(
            first.primary,
            [(0, up(true)), (1, up(true)), (2, up(false))],
        );
        assert_eq!(again.primary, Some(1));
        assert_eq!(again.replicas, vec![0, 2]);
        // The primary is demoted: the lowest writable takes over.
        let moved = Topology::next(again.primary, [(0, up(true)), (1, up(false))]);
        assert_eq!(moved.primary, Some(0));
        let none = Topology::next(moved.primary, [(0, up(false)), (1, Err("x".into()))]);
        assert_eq!(none.primary, None);
    }

    struct Fixed(Result<bool, String>);

    #[async_trait]
    impl NodeProbe for Fixed {
        async fn is_writable(&self) -> Result<bool, String> {
            self.0.clone()
        }
    }

    #[tokio::test]
    async fn probes_every_node() {
        let nodes = [Fixed(up(false)), Fixed(Err("down".into())), Fixed(up(true))];
        let answers = probe_all(&nodes).await;
        assert_eq!(
            answers,
            vec![(0, up(false)), (1, Err("down".into())), (2, up(true))]
        );
        assert_eq!(Topology::next(None, answers).primary, Some(2));
        assert_eq!(first_writable(&nodes, None).await.0, Some(2));
        let (kept, asked) = first_writable(&nodes, Some(2)).await;
        assert_eq!(
            (kept, asked.len()),
            (Some(2), 1),
            "a writable current is kept"
        );
        let (none, asked) = first_writable(&nodes[..2], Some(0)).await;
        assert_eq!((none, asked.len()), (None, 2));
    }
}
