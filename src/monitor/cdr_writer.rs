//! The CDR path off the signalling path: `CdrSink::submit` never blocks and never drops; one
//! writer task stores CDRs in batches and retries a failed batch until the database takes it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use super::cdr::Cdr;
use crate::store::Store;

/// Rows per transaction: large enough to amortize the commit fsync, small enough to stay short.
const BATCH_MAX: usize = 200;
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Counters since start. `queued` is a gauge: submitted and not yet stored (channel, overflow
/// and the batch being written). A duplicate id counts as written: it is in the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CdrStats {
    pub queued: u64,
    pub written: u64,
    /// Submissions that found the channel full and went to the overflow list.
    pub overflowed: u64,
    /// Failed batch writes (each was retried).
    pub failed_retries: u64,
    /// Submitted after the writer had closed: logged in full at error level, not stored.
    pub late: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CdrWriterError {
    #[error("CDR writer task ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
}

#[derive(Default)]
struct Shared {
    /// Where submissions go when the channel is full; the writer drains it too.
    overflow: Mutex<VecDeque<Cdr>>,
    /// Wakes the writer when the overflow gets something.
    wake: Notify,
    /// Set (under the overflow lock) once the writer has drained everything and stopped.
    finished: AtomicBool,
    submitted: AtomicU64,
    written: AtomicU64,
    overflowed: AtomicU64,
    failed_retries: AtomicU64,
    late: AtomicU64,
}

impl Shared {
    fn overflow(&self) -> MutexGuard<'_, VecDeque<Cdr>> {
        // A panic while holding this lock cannot leave the deque inconsistent: use it anyway.
        self.overflow.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stats(&self) -> CdrStats {
        let written = self.written.load(SeqCst);
        CdrStats {
            queued: self.submitted.load(SeqCst).saturating_sub(written),
            written,
            overflowed: self.overflowed.load(Relaxed),
            failed_retries: self.failed_retries.load(Relaxed),
            late: self.late.load(Relaxed),
        }
    }
}

/// Where call code hands finished CDRs. Cheap to clone.
#[derive(Clone)]
pub struct CdrSink {
    tx: mpsc::Sender<Cdr>,
    shared: Arc<Shared>,
}

impl CdrSink {
    /// Hand a CDR to the writer. Never blocks, never awaits, never drops it: when the channel is
    /// full it goes to an unbounded overflow list that the writer drains as well.
    pub fn submit(&self, cdr: Cdr) {
        let cdr = match self.tx.try_send(cdr) {
            Ok(()) => {
                self.shared.submitted.fetch_add(1, SeqCst);
                return;
            }
            Err(TrySendError::Full(cdr)) => {
                let n = self.shared.overflowed.fetch_add(1, Relaxed) + 1;
                if n == 1 || n % 1000 == 0 {
                    tracing::warn!(overflowed = n, "CDR queue full; using the overflow list");
                }
                cdr
            }
            // The writer is closing; until it has finished, its final drain still sees overflow.
            Err(TrySendError::Closed(cdr)) => cdr,
        };
        let mut overflow = self.shared.overflow();
        if self.shared.finished.load(SeqCst) {
            drop(overflow);
            self.shared.late.fetch_add(1, Relaxed);
            tracing::error!(cdr_id = %cdr.id, cdr = ?cdr, "CDR submitted after the writer closed; not stored");
            return;
        }
        self.shared.submitted.fetch_add(1, SeqCst);
        overflow.push_back(cdr);
        drop(overflow);
        self.shared.wake.notify_one();
    }

    pub fn stats(&self) -> CdrStats {
        self.shared.stats()
    }
}

/// Starts the writer task.
pub struct CdrWriter;

impl CdrWriter {
    /// Spawn the writer on the current tokio runtime. `capacity` is `database.cdr_queue`.
    pub fn spawn(store: Store, capacity: usize) -> (CdrSink, CdrWriterHandle) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (close_tx, close_rx) = oneshot::channel();
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(run(store, rx, close_rx, Arc::clone(&shared)));
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
    /// overflow), and return once it is all in the database. Waits as long as the database is
    /// down: bound it with a timeout at the call site if shutdown must not wait.
    pub async fn close(self) -> Result<CdrStats, CdrWriterError> {
        // Err only if the task already ended (every sink dropped): nothing left to signal.
        let _ = self.close_tx.send(());
        self.task.await?;
        let stats = self.shared.stats();
        tracing::info!(
            written = stats.written,
            overflowed = stats.overflowed,
            failed_retries = stats.failed_retries,
            "CDR writer closed"
        );
        Ok(stats)
    }

    pub fn stats(&self) -> CdrStats {
        self.shared.stats()
    }
}

async fn run(
    store: Store,
    mut rx: mpsc::Receiver<Cdr>,
    mut close_rx: oneshot::Receiver<()>,
    shared: Arc<Shared>,
) {
    let mut close_armed = true;
    // True once the channel is closed (by close() or because every sender is gone) and empty.
    let mut rx_done = false;
    let mut batch = Vec::with_capacity(BATCH_MAX);
    loop {
        while !rx_done && batch.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(cdr) => batch.push(cdr),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => rx_done = true,
            }
        }
        if batch.len() < BATCH_MAX {
            let mut overflow = shared.overflow();
            let take = overflow.len().min(BATCH_MAX - batch.len());
            batch.extend(overflow.drain(..take));
        }
        if !batch.is_empty() {
            write_batch(&store, &shared, &mut batch).await;
            continue;
        }
        if rx_done {
            let overflow = shared.overflow();
            if overflow.is_empty() {
                // Under the lock: a concurrent submit either got in before (we loop) or sees this.
                shared.finished.store(true, SeqCst);
                break;
            }
            continue;
        }
        tokio::select! {
            n = rx.recv_many(&mut batch, BATCH_MAX) => {
                if n == 0 {
                    rx_done = true;
                }
            }
            _ = shared.wake.notified() => {}
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

/// Store the batch, retrying with backoff until it succeeds; the batch is never given up.
async fn write_batch(store: &Store, shared: &Shared, batch: &mut Vec<Cdr>) {
    let mut delay = RETRY_FIRST;
    let mut attempt: u32 = 0;
    loop {
        match store.insert_cdrs(batch).await {
            Ok(inserted) => {
                shared.written.fetch_add(batch.len() as u64, SeqCst);
                if attempt > 0 {
                    tracing::info!(
                        rows = batch.len(),
                        inserted,
                        attempts = attempt + 1,
                        "CDR batch stored after retries"
                    );
                } else {
                    tracing::debug!(rows = batch.len(), inserted, "CDR batch stored");
                }
                batch.clear();
                return;
            }
            Err(error) => {
                attempt += 1;
                shared.failed_retries.fetch_add(1, Relaxed);
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use sqlx::Connection;

    use super::*;
    use crate::monitor::cdr::sample_cdr;
    use crate::store::StoreOptions;

    async fn all_ids(store: &Store) -> Vec<String> {
        sqlx::query_scalar("SELECT id FROM cdrs")
            .fetch_all(store.pool())
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn burst_larger_than_the_channel_is_written_exactly_once() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let (sink, handle) = CdrWriter::spawn(store.clone(), 8);
        let tasks: Vec<_> = (0..10)
            .map(|t| {
                let sink = sink.clone();
                // No await inside: submit must cope on its own.
                tokio::spawn(async move {
                    for i in 0..500 {
                        sink.submit(sample_cdr(&format!("t{t}-{i}")));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // The sink is still alive at close: close must not wait for it.
        let stats = handle.close().await.unwrap();
        assert_eq!(store.count_cdrs().await.unwrap(), 5_000);
        let ids: HashSet<String> = all_ids(&store).await.into_iter().collect();
        assert_eq!(ids.len(), 5_000);
        assert_eq!(stats.written, 5_000);
        assert_eq!(stats.queued, 0);
        assert!(stats.overflowed > 0, "{stats:?}");
        assert_eq!(stats.late, 0);

        // After close nothing is accepted silently: it is counted and logged.
        sink.submit(sample_cdr("too-late"));
        assert_eq!(sink.stats().late, 1);
        assert_eq!(store.get_cdr("too-late").await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn submissions_racing_close_are_stored_or_counted_late() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let (sink, handle) = CdrWriter::spawn(store.clone(), 8);
        let tasks: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                tokio::spawn(async move {
                    for i in 0..2_000 {
                        sink.submit(sample_cdr(&format!("r{t}-{i}")));
                        if i % 100 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        let stats = handle.close().await.unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        let late = sink.stats().late;
        assert_eq!(store.count_cdrs().await.unwrap() as u64, stats.written);
        assert_eq!(stats.written + late, 8_000, "{stats:?} late {late}");
    }

    #[tokio::test]
    async fn duplicate_submission_gives_one_row() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let (sink, handle) = CdrWriter::spawn(store.clone(), 4);
        for _ in 0..3 {
            sink.submit(sample_cdr("same"));
        }
        drop(sink);
        let stats = handle.close().await.unwrap();
        assert_eq!(stats.written, 3);
        assert_eq!(all_ids(&store).await, ["same"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn survives_a_locked_database_and_keeps_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cdr.db").display());
        let opts = StoreOptions {
            busy_timeout: Duration::from_millis(50),
            ..StoreOptions::default()
        };
        let store = Store::connect_with(&url, opts).await.unwrap();

        // Another process holds the write lock.
        let mut locker = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut locker)
            .await
            .unwrap();

        let (sink, handle) = CdrWriter::spawn(store.clone(), 16);
        for i in 0..450 {
            sink.submit(sample_cdr(&format!("locked-{i}")));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while sink.stats().failed_retries < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "writer never retried"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(sink.stats().written, 0);

        sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
        let stats = handle.close().await.unwrap();
        assert_eq!(stats.written, 450);
        assert!(stats.failed_retries >= 3);
        let ids: HashSet<String> = all_ids(&store).await.into_iter().collect();
        assert_eq!(ids.len(), 450);
        assert_eq!(store.count_cdrs().await.unwrap(), 450);
    }

    #[tokio::test]
    async fn writer_ends_by_itself_when_every_sink_is_gone() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let (sink, handle) = CdrWriter::spawn(store.clone(), 1);
        sink.submit(sample_cdr("a"));
        sink.submit(sample_cdr("b"));
        drop(sink);
        let stats = handle.close().await.unwrap();
        assert_eq!((stats.written, stats.queued), (2, 0));
        assert_eq!(store.count_cdrs().await.unwrap(), 2);
    }
}
