//! The writer's spool mode (`cdr_spool`): a batch the database refuses goes to the spool file,
//! and so does every batch after it (order), until a replay, tried with backoff, has stored the
//! whole spool and emptied it. The file itself (its format, size cap and reading back) is
//! `monitor::cdr_spool`; this is when the writer appends to it, replays it and empties it.

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{Writer, BATCH_MAX, RETRY_MAX};
use crate::monitor::cdr_spool::{CdrSpool, SpoolError};
use crate::store::CdrWrite;

/// First wait before replaying the spool again after the database refused it (then doubling, to
/// `RETRY_MAX`).
pub(super) const REPLAY_FIRST: Duration = Duration::from_millis(500);

/// The spool, used from blocking tasks only.
pub type SharedSpool = Arc<Mutex<CdrSpool>>;

/// Open (or create) the spool in `dir` off the runtime, capped at `max_bytes`.
pub async fn open_spool(
    dir: std::path::PathBuf,
    max_bytes: u64,
) -> Result<SharedSpool, SpoolError> {
    let path = dir.clone();
    let opened = tokio::task::spawn_blocking(move || CdrSpool::open(&dir, max_bytes)).await;
    match opened {
        Ok(spool) => Ok(Arc::new(Mutex::new(spool?))),
        Err(join) => Err(SpoolError::Io {
            path,
            source: std::io::Error::other(join.to_string()),
        }),
    }
}

/// Run `f` on the spool in a blocking task. `None` when the task panicked (logged).
async fn with_spool<T: Send + 'static>(
    spool: &SharedSpool,
    f: impl FnOnce(&mut CdrSpool) -> T + Send + 'static,
) -> Option<T> {
    let spool = Arc::clone(spool);
    let done = tokio::task::spawn_blocking(move || {
        let mut spool = spool.lock();
        f(&mut spool)
    })
    .await;
    match done {
        Ok(out) => Some(out),
        Err(error) => {
            tracing::error!(%error, "CDR spool task failed");
            None
        }
    }
}

impl Writer {
    /// Append the batch to the spool (fsynced) and empty it; false (batch kept) when the spool
    /// refuses it.
    pub(super) async fn spool_batch(&mut self, batch: &mut Vec<CdrWrite>) -> bool {
        let Some(spool) = &self.spool else {
            return false;
        };
        // A copy goes to the blocking task: a panic there must not lose the batch.
        let writes = batch.clone();
        let appended = with_spool(spool, move |s| s.append(&writes).map(|()| s.entries())).await;
        match appended {
            Some(Ok(entries)) => {
                let n = batch.len() as u64;
                self.shared.spooled_total.fetch_add(n, Relaxed);
                self.shared
                    .spooled
                    .store(entries.saturating_sub(self.replay_lines), SeqCst);
                tracing::debug!(rows = n, entries, "CDR batch spooled");
                batch.clear();
                true
            }
            Some(Err(error)) => {
                tracing::error!(%error, rows = batch.len(),
                    "CDR spool refuses the batch; it waits in memory for the database");
                false
            }
            None => false,
        }
    }

    /// Store the spool from `replay_offset` on, page by page, then empty it. False (and the
    /// next attempt scheduled) when the database or the spool fails; the pages stored so far
    /// are not read again.
    pub(super) async fn replay(&mut self) -> bool {
        let Some(spool) = self.spool.clone() else {
            self.spooling = false;
            return true;
        };
        loop {
            let offset = self.replay_offset;
            // A previous run's lines are paged apart from this run's: only the latter go on to
            // the monitor.
            let (end, forward) = if offset < self.leftover_end {
                (self.leftover_end, false)
            } else {
                (u64::MAX, true)
            };
            let read = move |s: &mut CdrSpool| s.read_page_until(offset, BATCH_MAX, end);
            let page = match with_spool(&spool, read).await {
                Some(Ok(page)) => page,
                Some(Err(error)) => {
                    tracing::error!(%error, "cannot read the CDR spool");
                    self.replay_later();
                    return false;
                }
                None => {
                    self.replay_later();
                    return false;
                }
            };
            if page.next == offset {
                return self.replayed(&spool).await;
            }
            let mut writes = page.writes;
            let n = writes.len() as u64;
            if !writes.is_empty() {
                match self
                    .store
                    .apply_cdr_writes_with(&writes, self.hooks.rollup.as_deref())
                    .await
                {
                    Ok(applied) => {
                        self.shared.transactions.fetch_add(1, Relaxed);
                        tracing::debug!(rows = n, ?applied, "spooled CDR writes stored");
                        self.stored(&mut writes, forward).await;
                    }
                    Err(error) => {
                        self.shared.failed_retries.fetch_add(1, Relaxed);
                        self.store.reconnect_after(&error).await;
                        tracing::warn!(%error, spooled = self.shared.spooled.load(SeqCst),
                            retry_in_ms = u64::try_from(self.replay_delay.as_millis()).unwrap_or(u64::MAX),
                            "database still refuses CDR writes; the spool waits");
                        self.replay_later();
                        return false;
                    }
                }
            }
            self.shared.replayed_total.fetch_add(n, Relaxed);
            self.shared.spool_skipped.fetch_add(page.skipped, SeqCst);
            self.replay_offset = page.next;
            self.replay_lines += n + page.skipped;
            let _ = self
                .shared
                .spooled
                .fetch_update(SeqCst, SeqCst, |v| Some(v.saturating_sub(n + page.skipped)));
        }
    }

    /// Every line is stored: empty the file and go back to writing directly.
    pub(super) async fn replayed(&mut self, spool: &SharedSpool) -> bool {
        match with_spool(spool, CdrSpool::clear).await {
            Some(Ok(())) => {
                tracing::info!(
                    replayed = self.replay_lines,
                    "CDR spool stored in the database and emptied"
                );
                self.spooling = false;
                self.replay_offset = 0;
                self.replay_lines = 0;
                self.leftover_end = 0;
                self.replay_delay = REPLAY_FIRST;
                self.shared.spooled.store(0, SeqCst);
                true
            }
            Some(Err(error)) => {
                // Its lines are stored; replaying them again later is harmless.
                tracing::error!(%error, "cannot empty the CDR spool");
                self.replay_later();
                false
            }
            None => {
                self.replay_later();
                false
            }
        }
    }

    pub(super) fn replay_later(&mut self) {
        self.replay_at = Instant::now() + self.replay_delay;
        self.replay_delay = (self.replay_delay * 2).min(RETRY_MAX);
    }
}
