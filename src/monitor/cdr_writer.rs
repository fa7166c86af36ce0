//! The CDR path off the signalling path: `CdrSink::submit` (a final CDR) and `CdrSink::journal`
//! (a call in progress) never block and never drop; one writer task stores them in batches, in
//! submission order, and retries a failed batch until the database takes it.
//!
//! With a spool (`cdr_spool`): a batch the database refuses twice is appended to the spool file
//! (fsynced) and dropped from memory, and so is every batch after it (order) until a replay,
//! tried with backoff, has stored the whole spool and emptied it. So an outage neither grows
//! memory nor loses what it held when the process is killed; a spool left by a crash is replayed
//! when the next writer starts. When the spool refuses a batch (over its size cap, disk full),
//! the batch waits in memory as without a spool, and submissions queue behind it. That mode is
//! `cdr_writer/spool.rs`; what a batch is made of (taken from the queue, superseded journal
//! entries dropped) `cdr_writer/batch.rs`; this file is the sink, the queue and the task's loop.
//!
//! Order: whatever one task submits is applied in that order, so a call's journal entries come
//! before its final CDR, which deletes its journal row. To keep that order when the channel is
//! full, a submission goes to the overflow list while the list is not empty, and the writer takes
//! from the channel then from the list under the list's lock: everything in the channel was
//! submitted before everything in the list.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use parking_lot::{Mutex, MutexGuard};
use serde::Serialize;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::kpi::KpiCounters;
use crate::model::{ms_precision, Cdr};
use crate::store::{BucketKey, CdrWrite, Dialogs, Store};

mod batch;
mod spool;
use batch::{drop_superseded, gather};
use spool::REPLAY_FIRST;
pub use spool::{open_spool, SharedSpool};

/// Rows per transaction: large enough to amortize the commit fsync, small enough to stay short.
const BATCH_MAX: usize = 200;
/// When the first write of an idle spell arrives, the writer waits this long for more before it
/// begins the transaction. A call makes three or four writes (journal entries at the start, the
/// answer and the recording's opening, then its CDR); written as they come, at a few hundred
/// calls a second each became a transaction of its own — a commit, a dozen hand-offs to the
/// database's worker thread and back, a wake of this task per submission (bench/README.md,
/// "Where the time goes"). Gathered, they share one. What it risks is small against that: a crash
/// within it loses those entries, as a crash before a write reached the writer always could.
const LINGER: Duration = Duration::from_millis(10);
/// Under steady load the writes that came in while a transaction was being written are the
/// next batch, and without a pause they became a transaction of their own at once: at 600
/// calls a second about 70 transactions a second of a few calls each (each a commit's fsync,
/// its WAL frames, ten statements' hand-offs to the database's worker thread and back). A
/// transaction that is not full waits until this long after the previous one began, so commits
/// come at most 20 times a second (bench/README.md, session 17). The price is the crash window:
/// a write may now wait this long, instead of `LINGER`, before its transaction begins.
const COMMIT_SPACING: Duration = Duration::from_millis(50);
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Failed attempts at a batch before it goes to the spool (when there is one): a hiccup is
/// retried in memory, an outage is not.
const ATTEMPTS_BEFORE_SPOOL: u32 = 2;
/// Counters since start. `queued` is a gauge: CDRs and journal entries submitted and not yet
/// stored (channel, overflow, the batch being written and the spool, including what a previous
/// run left in it). A duplicate id counts as written: it is in the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CdrStats {
    pub queued: u64,
    /// Final CDRs stored.
    pub written: u64,
    /// Journal entries applied: stored, or ignored because their call's CDR was already stored.
    pub journaled: u64,
    /// Submissions (CDRs and journal entries) that went to the overflow list: the channel was
    /// full, or earlier submissions were waiting there.
    pub overflowed: u64,
    /// Transactions committed to the database (each a batch of CDRs and journal entries).
    pub transactions: u64,
    /// Failed batch writes (each was retried).
    pub failed_retries: u64,
    /// Submitted after the writer had closed, not stored: a CDR is logged in full at error
    /// level, a journal entry by id at warn level.
    pub late: u64,
    /// Gauge: writes in the spool file not yet stored.
    pub spooled: u64,
    /// Writes appended to the spool since start.
    pub spooled_total: u64,
    /// Writes stored from the spool since start (a previous run's included).
    pub replayed_total: u64,
    /// Spool lines that could not be read back (torn or corrupt; logged at error level).
    pub spool_skipped: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CdrWriterError {
    #[error("CDR writer task ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
}

#[derive(Default)]
struct Shared {
    /// Where submissions go when the channel is full, and after them every submission until the
    /// writer has drained it (order). The writer drains it after the channel, under this lock.
    overflow: Mutex<VecDeque<CdrWrite>>,
    /// Wakes the writer when the overflow gets something.
    wake: Notify,
    /// Set (under the overflow lock) once the writer has drained everything and stopped.
    finished: AtomicBool,
    submitted: AtomicU64,
    written: AtomicU64,
    journaled: AtomicU64,
    overflowed: AtomicU64,
    transactions: AtomicU64,
    failed_retries: AtomicU64,
    late: AtomicU64,
    spooled: AtomicU64,
    spooled_total: AtomicU64,
    replayed_total: AtomicU64,
    spool_skipped: AtomicU64,
    /// Attempts by trunk, disposition and refusal reason (metrics).
    outcomes: super::outcomes::CallOutcomes,
}

impl Shared {
    fn overflow(&self) -> MutexGuard<'_, VecDeque<CdrWrite>> {
        self.overflow.lock()
    }

    fn stats(&self) -> CdrStats {
        // `submitted` is counted just after the send, so it can briefly lag: saturate.
        let written = self.written.load(SeqCst);
        let journaled = self.journaled.load(SeqCst);
        let spool_skipped = self.spool_skipped.load(SeqCst);
        CdrStats {
            queued: self
                .submitted
                .load(SeqCst)
                .saturating_sub(written)
                .saturating_sub(journaled)
                .saturating_sub(spool_skipped),
            written,
            journaled,
            overflowed: self.overflowed.load(Relaxed),
            transactions: self.transactions.load(Relaxed),
            failed_retries: self.failed_retries.load(Relaxed),
            late: self.late.load(Relaxed),
            spooled: self.spooled.load(SeqCst),
            spooled_total: self.spooled_total.load(Relaxed),
            replayed_total: self.replayed_total.load(Relaxed),
            spool_skipped,
        }
    }
}

/// Where call code hands finished CDRs and journal entries. Cheap to clone.
#[derive(Clone)]
pub struct CdrSink {
    tx: mpsc::Sender<CdrWrite>,
    shared: Arc<Shared>,
}

impl CdrSink {
    /// Hand a final CDR to the writer. Never blocks, never awaits, never drops it: when the
    /// channel is full it goes to an unbounded overflow list that the writer drains as well. Once
    /// stored, it deletes its call's journal row (in the same transaction).
    pub fn submit(&self, cdr: Cdr) {
        self.shared.outcomes.count(&cdr);
        self.push(CdrWrite::Cdr(cdr));
    }

    /// Record a call in progress: `provisional` is its CDR as it would be if the call ended now,
    /// `recording_part` the recording file being written. The writer upserts the call's journal
    /// row (stamped with the current time); a later entry replaces it, the final CDR deletes it,
    /// and an entry arriving after the final CDR is stored is ignored. Never blocks, never drops,
    /// and is ordered with `submit`, like it.
    pub fn journal(&self, provisional: Cdr, recording_part: Option<String>) {
        self.journal_with_dialogs(provisional, recording_part, None);
    }

    /// `journal`, with the call's dialog state (JSON, opaque here, encoded only if the entry is
    /// written) for a restart to end the dialogs the peers still hold.
    pub fn journal_with_dialogs(
        &self,
        provisional: Cdr,
        recording_part: Option<String>,
        dialogs: Option<Dialogs>,
    ) {
        self.push(CdrWrite::Journal {
            cdr: provisional,
            recording_part,
            dialogs,
            at: ms_precision(Utc::now()),
        });
    }

    fn push(&self, item: CdrWrite) {
        // One short lock per submission (no await, no I/O under it), so that a submission cannot
        // overtake an earlier one that went to the overflow list.
        let mut overflow = self.shared.overflow();
        if self.shared.finished.load(SeqCst) {
            drop(overflow);
            self.shared.late.fetch_add(1, Relaxed);
            match item {
                CdrWrite::Cdr(cdr) => tracing::error!(cdr_id = %cdr.attempt.id, cdr = ?cdr,
                    "CDR submitted after the writer closed; not stored"),
                CdrWrite::Journal { cdr, .. } => tracing::warn!(cdr_id = %cdr.attempt.id,
                    "journal entry submitted after the writer closed; not stored"),
            }
            return;
        }
        let item = if overflow.is_empty() {
            match self.tx.try_send(item) {
                Ok(()) => {
                    self.shared.submitted.fetch_add(1, SeqCst);
                    return;
                }
                Err(TrySendError::Full(item)) => {
                    self.count_overflow();
                    item
                }
                // The writer is closing; until it has finished, its final drain still sees overflow.
                Err(TrySendError::Closed(item)) => item,
            }
        } else {
            self.count_overflow();
            item
        };
        self.shared.submitted.fetch_add(1, SeqCst);
        overflow.push_back(item);
        drop(overflow);
        self.shared.wake.notify_one();
    }

    fn count_overflow(&self) {
        let n = self.shared.overflowed.fetch_add(1, Relaxed) + 1;
        if n == 1 || n.is_multiple_of(1000) {
            tracing::warn!(overflowed = n, "CDR queue full; using the overflow list");
        }
    }

    pub fn stats(&self) -> CdrStats {
        self.shared.stats()
    }

    /// Wait until the spool holds nothing (a previous run's writes are stored), at most `limit`.
    /// Returns whether it is empty; logged when not.
    pub async fn spool_replayed(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        // Bounded by the deadline; the writer replays on its own, this only watches the gauge.
        while self.shared.spooled.load(SeqCst) > 0 {
            if Instant::now() >= deadline {
                tracing::error!(spooled = self.shared.spooled.load(SeqCst),
                    "the database still refuses the CDR spool; going on, it is stored when the database is back");
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    /// Final CDRs submitted since start, by trunk, disposition and refusal reason.
    pub fn outcomes(&self) -> Vec<(super::outcomes::OutcomeKey, u64)> {
        self.shared.outcomes.snapshot()
    }
}

/// What each stored CDR adds to the persisted KPI buckets.
pub type KpiRollup = Arc<dyn Fn(&Cdr) -> Vec<(BucketKey, KpiCounters)> + Send + Sync>;

/// What the writer does besides storing.
#[derive(Clone, Default)]
pub struct WriterHooks {
    /// KPI buckets updated in each batch's transaction.
    pub rollup: Option<KpiRollup>,
    /// Every final CDR, once stored, goes here (the monitor). A full channel holds the writer
    /// back, never the calls: their submissions wait in the writer's queue.
    pub stored: Option<mpsc::Sender<Cdr>>,
    /// Where batches go while the database refuses them (`open_spool`). Without one, a failing
    /// batch is retried in memory for ever.
    pub spool: Option<SharedSpool>,
}

/// Starts the writer task.
pub struct CdrWriter;

impl CdrWriter {
    /// Spawn the writer on the current tokio runtime. `capacity` is `database.cdr_queue`.
    pub fn spawn(store: Store, capacity: usize) -> (CdrSink, CdrWriterHandle) {
        CdrWriter::spawn_with(store, capacity, WriterHooks::default())
    }

    /// `spawn`, with KPI buckets and a feed of stored CDRs.
    pub fn spawn_with(
        store: Store,
        capacity: usize,
        hooks: WriterHooks,
    ) -> (CdrSink, CdrWriterHandle) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (close_tx, close_rx) = oneshot::channel();
        let shared = Arc::new(Shared::default());
        // What a previous run left in the spool is pending: replayed before anything new.
        let (left, leftover_end) = hooks.spool.as_ref().map_or((0, 0), |spool| {
            // No I/O: the counts were taken when the spool was opened.
            let spool = spool.lock();
            (spool.entries(), spool.len())
        });
        shared.submitted.store(left, SeqCst);
        shared.spooled.store(left, SeqCst);
        let writer = Writer {
            store,
            spool: hooks.spool.clone(),
            hooks,
            shared: Arc::clone(&shared),
            spooling: left > 0,
            replay_offset: 0,
            replay_lines: 0,
            leftover_end,
            replay_at: Instant::now(),
            replay_delay: REPLAY_FIRST,
        };
        let task = tokio::spawn(run(writer, rx, close_rx));
        let sink = CdrSink {
            tx,
            shared: Arc::clone(&shared),
        };
        let handle = CdrWriterHandle {
            close_tx,
            task,
            shared,
        };
        (sink, handle)
    }
}

/// Owns the writer task. Dropping it without `close` leaves the writer running until every
/// sink is dropped; call `close` at shutdown to know when the CDRs are stored.
#[must_use = "call close() at shutdown so that queued CDRs are known to be stored"]
pub struct CdrWriterHandle {
    close_tx: oneshot::Sender<()>,
    task: JoinHandle<()>,
    shared: Arc<Shared>,
}

impl CdrWriterHandle {
    /// Stop accepting into the channel, store everything submitted so far (channel and
    /// overflow), and return once it is all in the database or, with a spool, in the spool file
    /// (replayed at the next start). Without a spool it waits as long as the database is down:
    /// bound it with a timeout at the call site if shutdown must not wait.
    pub async fn close(self) -> Result<CdrStats, CdrWriterError> {
        // Err only if the task already ended (every sink dropped): nothing left to signal.
        let _ = self.close_tx.send(());
        self.task.await?;
        let stats = self.shared.stats();
        tracing::info!(
            written = stats.written,
            journaled = stats.journaled,
            overflowed = stats.overflowed,
            transactions = stats.transactions,
            failed_retries = stats.failed_retries,
            "CDR writer closed"
        );
        Ok(stats)
    }

    pub fn stats(&self) -> CdrStats {
        self.shared.stats()
    }
}

/// The writer task's state.
struct Writer {
    store: Store,
    shared: Arc<Shared>,
    hooks: WriterHooks,
    spool: Option<SharedSpool>,
    /// True while the spool holds writes: every batch goes after them, into the spool, until a
    /// replay has stored them all.
    spooling: bool,
    /// Where the next replay page starts: the lines before it are stored.
    replay_offset: u64,
    /// Lines before `replay_offset`.
    replay_lines: u64,
    /// The spool's bytes written by a previous run: replayed before the monitor starts, which
    /// reads them from the database as it warms up, so they are not handed to it (twice).
    leftover_end: u64,
    replay_at: Instant,
    replay_delay: Duration,
}

async fn run(mut w: Writer, mut rx: mpsc::Receiver<CdrWrite>, mut close_rx: oneshot::Receiver<()>) {
    let mut close_armed = true;
    // True once the channel is closed (by close() or because every sender is gone) and empty.
    let mut rx_done = false;
    // At the end, one more replay is tried before leaving writes in the spool.
    let mut final_replay_tried = false;
    let mut batch = Vec::with_capacity(BATCH_MAX);
    // When the next transaction that is not full may begin (`COMMIT_SPACING`).
    let mut next_commit = Instant::now();
    loop {
        // A batch the spool refused is kept (and nothing taken behind it: order).
        if batch.is_empty() {
            rx_done = gather(&w.shared, &mut rx, &mut batch, rx_done);
        }
        if !batch.is_empty() && batch.len() < BATCH_MAX && !w.spooling && !rx_done {
            let now = Instant::now();
            if now < next_commit {
                // Submissions meanwhile queue without waking this task.
                tokio::time::sleep_until(next_commit).await;
                rx_done = gather(&w.shared, &mut rx, &mut batch, rx_done);
            }
        }
        if !batch.is_empty() {
            next_commit = Instant::now() + COMMIT_SPACING;
            let superseded = drop_superseded(&mut batch);
            w.shared.journaled.fetch_add(superseded, SeqCst);
            if w.spooling {
                if w.spool_batch(&mut batch).await {
                    continue;
                }
            } else if w.write_batch(&mut batch).await {
                continue;
            } else {
                tracing::error!(
                    rows = batch.len(),
                    "database refuses CDR writes; spooling them to disk until it is back"
                );
                w.spooling = true;
                w.replay_delay = REPLAY_FIRST;
                w.replay_at = Instant::now() + REPLAY_FIRST;
                continue;
            }
        }
        if w.spooling && Instant::now() >= w.replay_at && w.replay().await {
            continue;
        }
        if rx_done && batch.is_empty() {
            if w.spooling && !final_replay_tried {
                final_replay_tried = true;
                if w.replay().await {
                    continue;
                }
            }
            let overflow = w.shared.overflow();
            if overflow.is_empty() {
                // Under the lock: a concurrent submit either got in before (we loop) or sees this.
                w.shared.finished.store(true, SeqCst);
                drop(overflow);
                if w.spooling {
                    tracing::warn!(
                        spooled = w.shared.spooled.load(SeqCst),
                        "CDR writer closing with writes in the spool: stored at the next start"
                    );
                }
                break;
            }
            continue;
        }
        tokio::select! {
            n = rx.recv_many(&mut batch, BATCH_MAX), if batch.is_empty() && !rx_done => {
                if n == 0 {
                    rx_done = true;
                } else if batch.len() < BATCH_MAX && !w.spooling {
                    // Submissions meanwhile queue without waking this task.
                    tokio::time::sleep(LINGER).await;
                    rx_done = gather(&w.shared, &mut rx, &mut batch, rx_done);
                }
            }
            _ = w.shared.wake.notified(), if batch.is_empty() => {}
            _ = tokio::time::sleep_until(w.replay_at), if w.spooling => {}
            closed = &mut close_rx, if close_armed => {
                close_armed = false;
                // A dropped handle is not a close: keep serving the sinks that remain.
                if closed.is_ok() {
                    tracing::debug!("CDR writer closing: draining the queue");
                    rx.close();
                }
            }
        }
    }
}

impl Writer {
    /// Store the batch in order, retrying with backoff. Without a spool the batch is never given
    /// up; with one, false after `ATTEMPTS_BEFORE_SPOOL` failures (the batch is kept). Replaying
    /// it after a failed commit gives the same rows.
    async fn write_batch(&self, batch: &mut Vec<CdrWrite>) -> bool {
        let give_up_after = self.spool.as_ref().map(|_| ATTEMPTS_BEFORE_SPOOL);
        let mut delay = RETRY_FIRST;
        let mut attempt: u32 = 0;
        loop {
            match self
                .store
                .apply_cdr_writes_with(batch, self.hooks.rollup.as_deref())
                .await
            {
                Ok(applied) => {
                    self.shared.transactions.fetch_add(1, Relaxed);
                    if attempt > 0 {
                        tracing::info!(
                            rows = batch.len(),
                            ?applied,
                            attempts = attempt + 1,
                            "CDR batch stored after retries"
                        );
                    } else {
                        tracing::debug!(rows = batch.len(), ?applied, "CDR batch stored");
                    }
                    self.stored(batch, true).await;
                    return true;
                }
                Err(error) => {
                    attempt += 1;
                    self.shared.failed_retries.fetch_add(1, Relaxed);
                    // A read-only connection stays so: the next attempt gets a fresh one.
                    self.store.reconnect_after(&error).await;
                    if give_up_after.is_some_and(|n| attempt >= n) {
                        tracing::warn!(%error, rows = batch.len(), attempt,
                            "CDR batch write failed; handing it to the spool");
                        return false;
                    }
                    let retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                    if attempt < 5 {
                        tracing::warn!(%error, rows = batch.len(), attempt, retry_in_ms,
                            "CDR batch write failed; keeping the batch and retrying");
                    } else {
                        tracing::error!(%error, rows = batch.len(), attempt, retry_in_ms,
                            "CDR batch write still failing; keeping the batch and retrying");
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Count a stored batch and hand its final CDRs to the monitor when `forward`; empties
    /// `batch`.
    async fn stored(&self, batch: &mut Vec<CdrWrite>, forward: bool) {
        let cdrs = batch
            .iter()
            .filter(|item| matches!(item, CdrWrite::Cdr(_)))
            .count() as u64;
        self.shared.written.fetch_add(cdrs, SeqCst);
        self.shared
            .journaled
            .fetch_add(batch.len() as u64 - cdrs, SeqCst);
        if let (Some(stored), true) = (&self.hooks.stored, forward) {
            for item in batch.drain(..) {
                if let CdrWrite::Cdr(cdr) = item {
                    // Gone only when the monitor stopped: nothing left to tell.
                    let _ = stored.send(cdr).await;
                }
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
#[path = "cdr_writer_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "cdr_writer_spool_tests.rs"]
mod spool_tests;
