//! After a restart: the windows refilled from what the store holds.

use chrono::Utc;

use super::super::persist;
use super::{Monitor, MonitorError};
use crate::store::Store;

/// CDRs read per page while warming up, and at most this many in all.
const WARM_PAGE: i64 = 5_000;
const WARM_MAX: usize = 2_000_000;

/// Refills the windows after a restart from the stored CDRs and the complaints already judged,
/// as far back as the longest window: without it a number that made 250 calls before a restart
/// could make another 300 in the same 24 h. Nothing is judged again (what those calls caused is
/// in the log and was restored). A cluster's new leader passes `upto`, its feed cursor: the CDRs
/// after it are judged next, so they are left out here (counted once).
pub(super) async fn warm_up(
    engine: &mut Monitor,
    store: &Store,
    complaints_cursor: i64,
    upto: Option<i64>,
    now: chrono::DateTime<Utc>,
) -> Result<(), MonitorError> {
    let (call_span, complaint_span) = engine.warm_spans();
    let since = now - call_span;
    let mut after = None;
    let mut cdrs = 0usize;
    loop {
        let page = match upto {
            None => store.cdrs_since(since, after.clone(), WARM_PAGE).await?,
            Some(upto) => {
                store
                    .cdrs_since_upto(since, upto, after.clone(), WARM_PAGE)
                    .await?
            }
        };
        for cdr in &page {
            engine.warm(cdr);
        }
        cdrs += page.len();
        match page.last() {
            Some(last) if page.len() as i64 == WARM_PAGE && cdrs < WARM_MAX => {
                after = Some((last.attempt.invite_at, last.attempt.id.clone()));
            }
            _ => break,
        }
    }
    if cdrs >= WARM_MAX {
        tracing::warn!(
            cdrs,
            "warm-up stopped at its limit: the windows miss the newest calls"
        );
    }
    let mut complaints = 0usize;
    if complaint_span > chrono::Duration::zero() {
        for stored in store.complaints(now - complaint_span, now, None).await? {
            // Not yet judged ones are judged by the first poll.
            if stored.id > complaints_cursor {
                continue;
            }
            if let Some(c) = persist::complaint_of(&stored) {
                engine.warm_complaint(&c);
                complaints += 1;
            }
        }
    }
    tracing::info!(cdrs, complaints, since = %since, "monitor windows refilled");
    Ok(())
}
