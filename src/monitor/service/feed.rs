//! The cluster leader's CDR feed: every node's stored CDRs, read from the database by their
//! position in `cdr_feed` (the order they were stored) past a cursor kept in `monitor_cursor`,
//! so a new leader continues where the last one stopped: nothing judged twice, nothing skipped.
//!
//! Why positions and not INVITE times: a CDR is stored when its call ends (an hour after its
//! INVITE for a long call) or, after a database outage, when its node's spool is replayed; read
//! by INVITE time it would need an overlap as long as the longest call and a memory of every id
//! in it. A position is given in the inserting transaction. On SQLite (one writer at a time)
//! positions become visible in order; on a database with concurrent writers a lower position
//! can commit after a higher one, so a gap (a position not visible yet) holds the feed back
//! until it fills or `SETTLE` has passed (a rolled-back insert leaves a gap that never fills):
//! a CDR committed more than `SETTLE` after its position was taken would be skipped, and the
//! skip is logged.

use std::time::Duration;

use tokio::time::Instant;

use super::MonitorService;
use crate::store::Store;

/// The cursor's name in `monitor_cursor`: the last position judged.
pub(super) const FEED_CURSOR: &str = "cdr_feed";
/// How often the leader reads the feed.
pub(super) const FEED_EVERY: Duration = Duration::from_millis(200);
/// CDRs per read, and reads per round at most (a backlog is caught up over several rounds).
const FEED_BATCH: i64 = 1_000;
const FEED_PAGES: usize = 5;
/// How long a gap in the positions holds the feed back.
const SETTLE: Duration = Duration::from_secs(3);

/// Where the leader is in the feed.
#[derive(Debug)]
pub(super) struct Feed {
    cursor: i64,
    /// The first missing position and when it was first seen missing.
    gap: Option<(i64, Instant)>,
    /// How long a gap holds the feed back (`SETTLE`).
    settle: Duration,
}

impl Feed {
    pub(super) fn at(cursor: i64) -> Feed {
        Feed {
            cursor,
            gap: None,
            settle: SETTLE,
        }
    }

    /// Whether the feed may go on past the missing position `missing`.
    fn past_gap(&mut self, missing: i64, next: i64) -> bool {
        match self.gap {
            Some((m, since)) if m == missing => {
                if since.elapsed() < self.settle {
                    return false;
                }
                tracing::warn!(
                    from = missing,
                    to = next - 1,
                    "feed positions never became visible (rolled back, or committed too late): skipped"
                );
                self.gap = None;
                true
            }
            _ => {
                self.gap = Some((missing, Instant::now()));
                false
            }
        }
    }
}

/// The position a new leader judges from: the cursor the last one left. Never set (the cluster's
/// first leader): the end of the feed, everything before it being history to warm up from.
pub(super) async fn start_cursor(store: &Store) -> Result<i64, crate::store::StoreError> {
    let cursor = store.cursor(FEED_CURSOR).await?;
    if cursor > 0 {
        return Ok(cursor);
    }
    let last = store.cdr_feed_last().await?;
    store.set_cursor(FEED_CURSOR, last).await?;
    Ok(last)
}

/// A single node judges what it stores in process: at its start and stop it moves the cursor to
/// the end of the feed, so that a cluster leader later started on this database does not judge
/// those CDRs again.
pub(super) async fn mark_seen(store: Store) {
    let marked = async {
        let last = store.cdr_feed_last().await?;
        store.set_cursor(FEED_CURSOR, last).await
    };
    if let Err(e) = marked.await {
        tracing::warn!(error = %e, "cannot move the cdr feed cursor");
    }
}

impl MonitorService {
    /// Judges the CDRs stored since the last round, in order, and saves the cursor after each
    /// read (what it judged is applied and stored by then).
    pub(super) async fn feed(&mut self) {
        for _ in 0..FEED_PAGES {
            let Some(cursor) = self.cluster.as_ref().map(|c| c.feed.cursor) else {
                return;
            };
            let rows = match self.store.cdr_feed_after(cursor, FEED_BATCH).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the cdr feed; retrying");
                    return;
                }
            };
            let full = rows.len() as i64 == FEED_BATCH;
            let mut at = cursor;
            let mut held = false;
            for (seq, cdr) in rows {
                if seq > at + 1 {
                    let Some(c) = self.cluster.as_mut() else {
                        return;
                    };
                    if !c.feed.past_gap(at + 1, seq) {
                        held = true;
                        break;
                    }
                }
                self.on_cdr(&cdr).await;
                at = seq;
                if let Some(c) = self.cluster.as_mut() {
                    c.feed.cursor = at;
                    c.feed.gap = None;
                }
            }
            if at != cursor {
                if let Err(e) = self.store.set_cursor(FEED_CURSOR, at).await {
                    tracing::warn!(error = %e, "cannot save the cdr feed cursor; a new leader would judge these again");
                }
            }
            if held || !full {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Feed;

    #[tokio::test]
    async fn a_gap_holds_the_feed_back_until_it_settles() {
        let settle = Duration::from_secs(1);
        let mut feed = Feed {
            settle,
            ..Feed::at(10)
        };
        // Position 11 is not visible, 12 is: held back, from now on.
        assert!(!feed.past_gap(11, 12));
        tokio::time::sleep(settle / 2).await;
        assert!(!feed.past_gap(11, 12));
        // Another gap (11 filled meanwhile, 13 missing) starts its own wait.
        assert!(!feed.past_gap(13, 14));
        tokio::time::sleep(settle / 2 + Duration::from_millis(100)).await;
        assert!(!feed.past_gap(13, 14), "13's wait began later");
        tokio::time::sleep(settle / 2).await;
        // Settled: skipped once, and forgotten.
        assert!(feed.past_gap(13, 14));
        assert!(feed.gap.is_none());
    }
}
