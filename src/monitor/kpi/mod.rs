//! KPIs: what each call attempt adds to its subjects (`KpiCounters`), sliding windows in memory
//! for decisions (`Windows`), and the keys of the hourly/daily buckets that are persisted.
//!
//! Subjects of a CDR (see [`Subject::of_cdr`]): its trunk always; for outbound calls also its
//! caller ID (the call center's number the carrier watches; not when refused as unauthorized or
//! anonymous) and its called number. Inbound calls count on the trunk only: their caller is a
//! customer, their callee our own line.
//!
//! In memory, trunk and caller-ID subjects keep full `KpiCounters` windows; a called number keeps
//! only its recent attempt times (all its rule needs), so that millions of callees stay cheap.
//! Per-callee KPIs over any period come from the persisted hourly buckets (`bucket_rows`).

mod counters;
mod pdd;
mod window;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};

pub use counters::{KpiCounters, SHORT_CALL_MS};
pub use pdd::{PddHistogram, PDD_BIN_EDGES_MS};
pub use window::{granularity, SlidingWindow, Windows};

use crate::model::Cdr;
pub use crate::model::Subject;

/// Start of the UTC hour holding `t`.
pub fn hour_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp().div_euclid(3_600) * 3_600;
    Utc.timestamp_opt(secs, 0).single().unwrap_or(t)
}

/// Start of the UTC day holding `t`.
pub fn day_start(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(t.year(), t.month(), t.day(), 0, 0, 0)
        .single()
        .unwrap_or_else(|| t - chrono::Duration::seconds(i64::from(t.num_seconds_from_midnight())))
}

/// The persisted-bucket rows one CDR adds to: (subject, start of the hour of its INVITE,
/// counters). Daily buckets are the sums of their hours (`day_start` of the hour).
pub fn bucket_rows(cdr: &Cdr, over_long_secs: u64) -> Vec<(Subject, DateTime<Utc>, KpiCounters)> {
    let k = KpiCounters::from_cdr(cdr, over_long_secs);
    let hour = hour_start(cdr.attempt.invite_at);
    Subject::of_cdr(cdr)
        .into_iter()
        .map(|s| {
            let k = with_peak(&s, cdr, k.clone());
            (s, hour, k)
        })
        .collect()
}

/// The counters of one subject of a CDR: its own concurrency at admission is its peak (the
/// trunk's for the trunk, the caller ID's for the caller ID; none for a called number).
pub fn with_peak(subject: &Subject, cdr: &Cdr, mut k: KpiCounters) -> KpiCounters {
    k.peak_concurrency = match subject {
        Subject::Trunk { .. } => cdr.attempt.trunk_active.unwrap_or(0),
        Subject::CallerId { .. } => cdr.attempt.caller_active.unwrap_or(0),
        Subject::Callee { .. } => 0,
    };
    k
}
