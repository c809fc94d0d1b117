//! Group commit for the standalone store: every write waiting at the moment the disk is free
//! shares one fsync.
//!
//! A write joins a queue. When no batch is being written, the write that found the queue idle
//! starts a blocking task that takes everything queued, applies the commands in one durable
//! transaction, and only then answers each caller with its own result. A failed command (a
//! CAS mismatch, a duplicate) fails only its caller: the batch is then redone command by
//! command (see [`write_batch`]). Writes that
//! arrive meanwhile form the next batch. Nothing is acknowledged before it is on disk: a crash
//! before the durable commit loses the batch's non-durable commits (redb reverts to the last
//! durable commit), and none of them was acknowledged.
//!
//! A lone write costs what it did before (one transaction, one fsync); under concurrency the
//! number of fsyncs per second stays that of the disk while the writes per fsync grow.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use nacos_core::RepoError;
use redb::{Database, Durability, WriteTransaction};
use tokio::sync::oneshot;

use crate::command::{Command, CommandOutput, apply, apply_to};
use crate::error::storage;
use crate::tables::WriteTables;

/// Most commands in one batch: bounds the latency of the batch's first caller.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<CommandOutput, RepoError>>;

/// The queue of one database's writers.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    db: Arc<Database>,
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<(Command, Reply)>,
    /// Whether a blocking task is writing batches (and will take what is queued).
    writing: bool,
}

impl GroupCommit {
    pub(crate) fn new(db: Arc<Database>) -> Arc<Self> {
        Arc::new(GroupCommit {
            db,
            queue: Mutex::new(Queue::default()),
        })
    }

    /// Apply `command` and make it durable; returns when it is on disk (or failed, having
    /// written nothing).
    pub(crate) async fn execute(
        self: &Arc<Self>,
        command: Command,
    ) -> Result<CommandOutput, RepoError> {
        let (reply, answer) = oneshot::channel();
        let start_writer = {
            let mut queue = self.lock();
            queue.waiting.push((command, reply));
            !std::mem::replace(&mut queue.writing, true)
        };
        if start_writer {
            let this = Arc::clone(self);
            // The writer answers through the replies; the task's own result carries nothing.
            drop(tokio::task::spawn_blocking(move || write_batches(this)));
        }
        answer.await.map_err(|_| {
            RepoError::Internal("embedded store: the writer stopped before answering".into())
        })?
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue is consistent whatever a panicking holder was doing: it only moves whole
        // entries in and out.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Up to [`MAX_BATCH`] waiting writes, or `None` (and the writer steps down) when none wait.
    fn next_batch(&self) -> Option<Vec<(Command, Reply)>> {
        let mut queue = self.lock();
        if queue.waiting.is_empty() {
            queue.writing = false;
            return None;
        }
        let take = queue.waiting.len().min(MAX_BATCH);
        Some(queue.waiting.drain(..take).collect())
    }
}

/// Write batches until the queue is empty. The writer lets go of the database before it
/// answers the last batch, so a caller that closes the store on its answer can reopen the file.
fn write_batches(this: Arc<GroupCommit>) {
    let Some(mut batch) = this.next_batch() else {
        return;
    };
    loop {
        let (commands, replies): (Vec<Command>, Vec<Reply>) = batch.into_iter().unzip();
        // A panic must not leave the queue believing a writer runs: turn it into the batch's
        // errors (the transaction that panicked was dropped, so aborted).
        let results =
            std::panic::catch_unwind(AssertUnwindSafe(|| write_batch(&this.db, &commands)))
                .unwrap_or_else(|_| {
                    commands
                        .iter()
                        .map(|_| {
                            Err(RepoError::Internal(
                                "embedded store: the writer panicked".into(),
                            ))
                        })
                        .collect()
                });
        let Some(next) = this.next_batch() else {
            drop(this);
            answer(replies, results);
            return;
        };
        answer(replies, results);
        batch = next;
    }
}

fn answer(replies: Vec<Reply>, results: Vec<Result<CommandOutput, RepoError>>) {
    for (reply, result) in replies.into_iter().zip(results) {
        // A caller that went away does not need its answer.
        let _ = reply.send(result);
    }
}

/// One result per command, in order; every `Ok` is on disk.
///
/// The batch first runs in one durable transaction (one commit, one fsync for all). Should any
/// command fail (a CAS mismatch, a duplicate), that transaction is abandoned, since a failed
/// command must leave nothing behind, and the batch runs again command by command: each in
/// its own transaction committed without fsync (a failure aborts only its own), then one
/// empty durable commit makes the successful ones durable together.
pub(crate) fn write_batch(
    db: &Database,
    commands: &[Command],
) -> Vec<Result<CommandOutput, RepoError>> {
    match apply_together(db, commands) {
        Together::Committed(outputs) => outputs.into_iter().map(Ok).collect(),
        Together::CommitFailed(error) => {
            commands.iter().map(|_| Err(not_durable(&error))).collect()
        }
        Together::OneFailed(result) if commands.len() == 1 => vec![Err(result)],
        Together::OneFailed(_) => apply_one_by_one(db, commands),
    }
}

enum Together {
    Committed(Vec<CommandOutput>),
    /// A command failed; nothing was written.
    OneFailed(RepoError),
    /// Every command applied, but the commit did not reach the disk.
    CommitFailed(RepoError),
}

fn apply_together(db: &Database, commands: &[Command]) -> Together {
    let txn = match begin_durable(db) {
        Ok(txn) => txn,
        Err(error) => return Together::OneFailed(error),
    };
    // Stops at the first failing command; the tables close before the commit, as it requires.
    let applied = WriteTables::open(&txn).and_then(|mut tables| {
        commands
            .iter()
            .map(|command| apply_to(&mut tables, command))
            .collect::<Result<Vec<_>, _>>()
    });
    let outputs = match applied {
        Ok(outputs) => outputs,
        Err(error) => {
            if let Err(abort) = txn.abort() {
                tracing::warn!(error = %abort, "aborting an embedded store transaction failed");
            }
            return Together::OneFailed(error);
        }
    };
    match txn.commit() {
        Ok(()) => Together::Committed(outputs),
        Err(error) => Together::CommitFailed(storage(error)),
    }
}

fn apply_one_by_one(db: &Database, commands: &[Command]) -> Vec<Result<CommandOutput, RepoError>> {
    let mut results: Vec<Result<CommandOutput, RepoError>> = commands
        .iter()
        .map(|command| apply_lazily(db, command))
        .collect();
    let wrote_any = results.iter().any(Result::is_ok);
    if let Err(error) = make_durable(db, wrote_any) {
        for result in results.iter_mut().filter(|r| r.is_ok()) {
            *result = Err(not_durable(&error));
        }
    }
    results
}

/// Not on disk, so not acknowledged; the message is the same for each caller.
fn not_durable(error: &RepoError) -> RepoError {
    RepoError::Unavailable(
        format!("embedded store: the write could not be made durable: {error}").into(),
    )
}

/// One empty durable commit, which fsyncs every non-durable commit before it; none when the
/// batch wrote nothing.
fn make_durable(db: &Database, wrote_any: bool) -> Result<(), RepoError> {
    if !wrote_any {
        return Ok(());
    }
    begin_durable(db)?.commit().map_err(storage)
}

/// One command in its own transaction, committed without fsync; aborted on error.
fn apply_lazily(db: &Database, command: &Command) -> Result<CommandOutput, RepoError> {
    let txn = begin_lazy(db)?;
    match apply(&txn, command) {
        Ok(output) => {
            txn.commit().map_err(storage)?;
            Ok(output)
        }
        Err(error) => {
            if let Err(abort) = txn.abort() {
                tracing::warn!(error = %abort, "aborting an embedded store transaction failed");
            }
            Err(error)
        }
    }
}

/// A write transaction whose commit is not fsynced (made durable by a later durable commit).
pub(crate) fn begin_lazy(db: &Database) -> Result<WriteTransaction, RepoError> {
    let mut txn = db.begin_write().map_err(storage)?;
    txn.set_durability(Durability::None).map_err(storage)?;
    Ok(txn)
}

/// A write transaction whose commit fsyncs it and every non-durable commit before it.
pub(crate) fn begin_durable(db: &Database) -> Result<WriteTransaction, RepoError> {
    let mut txn = db.begin_write().map_err(storage)?;
    txn.set_durability(Durability::Immediate).map_err(storage)?;
    Ok(txn)
}
