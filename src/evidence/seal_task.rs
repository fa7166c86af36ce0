//! The gateway's daily seal: a task that, shortly after midnight UTC, seals the day just ended
//! (and the days before it that a stopped gateway missed, up to `CATCH_UP_DAYS`). It looks
//! every `CHECK_EVERY`; a day already sealed is not sealed again (the database keeps one final
//! seal per day, so two nodes racing cannot both seal it). In a cluster only the monitor's
//! leader seals (`leading`); a node on its own always does. A day with calls still in progress
//! waits for them, so their CDRs are not "added after the seal".

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::seal::{day_bounds, day_text, seal_day, ManifestError, SealContext};
use crate::cluster::leader::Role;
use crate::shutdown::Shutdown;
use crate::store::Store;

/// The first look after the start.
pub const FIRST_CHECK_AFTER: Duration = Duration::from_secs(60);
/// Then every five minutes.
pub const CHECK_EVERY: Duration = Duration::from_secs(300);
/// A day is sealed this long after it ended at the earliest: the CDR writer's queue and the
/// journal settle.
pub const GRACE: chrono::Duration = chrono::Duration::minutes(5);
/// How many ended days back a seal reaches when none was made for a while.
pub const CATCH_UP_DAYS: i64 = 7;

/// The days to seal at `now` after the newest final seal `newest` (oldest first).
pub fn due_days(newest: Option<NaiveDate>, now: DateTime<Utc>) -> Vec<NaiveDate> {
    let today = now.date_naive();
    let Some(yesterday) = today.pred_opt() else {
        return Vec::new();
    };
    if now < day_bounds(yesterday).1 + GRACE {
        return Vec::new();
    }
    let earliest = yesterday - chrono::Duration::days(CATCH_UP_DAYS - 1);
    let first = match newest {
        Some(d) => d.succ_opt().unwrap_or(d).max(earliest),
        // Never sealed: the day just ended only (earlier days may be long gone).
        None => yesterday,
    };
    first.iter_days().take_while(|d| *d <= yesterday).collect()
}

/// One look: seals the due days in order; stops at the first that must wait.
pub async fn seal_due(store: &Store, ctx: &SealContext, now: DateTime<Utc>) {
    let newest = match store.final_manifest_before(None).await {
        Ok(m) => m.and_then(|m| NaiveDate::parse_from_str(&m.manifest.day, "%Y-%m-%d").ok()),
        Err(e) => {
            tracing::warn!(error = %e, "manifest: cannot read the newest seal; next look later");
            return;
        }
    };
    for day in due_days(newest, now) {
        match seal_day(store, ctx, day, now).await {
            Ok(_) | Err(ManifestError::AlreadySealed { .. }) => {}
            Err(e @ ManifestError::InProgress { .. }) => {
                tracing::info!(day = %day_text(day), reason = %e, "manifest: seal postponed");
                return;
            }
            Err(e) => {
                tracing::error!(day = %day_text(day), error = %e, "manifest: seal failed; next look later");
                return;
            }
        }
    }
}

/// Starts the task. `leading`: the monitor lease's role in a cluster; `None` on a single node.
pub fn spawn(
    store: Store,
    ctx: SealContext,
    leading: Option<watch::Receiver<Role>>,
    mut shutdown: Shutdown,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = FIRST_CHECK_AFTER;
        loop {
            tokio::select! {
                _ = shutdown.recv() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = CHECK_EVERY;
            if leading.as_ref().is_some_and(|r| !r.borrow().leading) {
                continue;
            }
            tokio::select! {
                _ = shutdown.recv() => break,
                () = seal_due(&store, &ctx, Utc::now()) => {}
            }
        }
        tracing::debug!("manifest seal task stopped");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_day_just_ended_is_due_after_the_grace_and_missed_days_are_caught_up() {
        let dec6 = |hm: &str| t(&format!("2026-12-06T{hm}:00.000Z"));
        assert_eq!(due_days(None, dec6("00:04")), vec![]);
        assert_eq!(due_days(None, dec6("00:05")), vec![d("2026-12-05")]);
        assert_eq!(due_days(Some(d("2026-12-05")), dec6("13:00")), vec![]);
        assert_eq!(
            due_days(Some(d("2026-12-02")), dec6("00:30")),
            vec![d("2026-12-03"), d("2026-12-04"), d("2026-12-05")]
        );
        let long_ago = due_days(Some(d("2026-10-01")), dec6("00:30"));
        assert_eq!(long_ago.len(), CATCH_UP_DAYS as usize);
        assert_eq!(long_ago.last(), Some(&d("2026-12-05")));
    }
}
