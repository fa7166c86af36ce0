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
use serde::{Deserialize, Serialize};

pub use counters::{KpiCounters, SHORT_CALL_MS};
pub use pdd::{PddHistogram, PDD_BIN_EDGES_MS};
pub use window::{granularity, SlidingWindow, Windows};

use super::cdr::{Cdr, Direction};

/// Who a figure is about. Numbers are normalized digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    Trunk { trunk: String },
    CallerId { trunk: String, number: String },
    Callee { trunk: String, number: String },
}

impl Subject {
    pub fn trunk_of(trunk: &str) -> Subject {
        Subject::Trunk {
            trunk: trunk.to_string(),
        }
    }

    pub fn caller_id(trunk: &str, number: &str) -> Subject {
        Subject::CallerId {
            trunk: trunk.to_string(),
            number: number.to_string(),
        }
    }

    pub fn callee(trunk: &str, number: &str) -> Subject {
        Subject::Callee {
            trunk: trunk.to_string(),
            number: number.to_string(),
        }
    }

    pub fn trunk(&self) -> &str {
        match self {
            Subject::Trunk { trunk }
            | Subject::CallerId { trunk, .. }
            | Subject::Callee { trunk, .. } => trunk,
        }
    }

    /// The number, for caller-ID and callee subjects.
    pub fn number(&self) -> Option<&str> {
        match self {
            Subject::Trunk { .. } => None,
            Subject::CallerId { number, .. } | Subject::Callee { number, .. } => Some(number),
        }
    }

    /// `trunk`, `caller_id` or `callee`: the kind column of stored rows.
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Trunk { .. } => "trunk",
            Subject::CallerId { .. } => "caller_id",
            Subject::Callee { .. } => "callee",
        }
    }

    /// The subjects a CDR counts on (none when it matched no trunk).
    pub fn of_cdr(cdr: &Cdr) -> Vec<Subject> {
        let Some(trunk) = cdr.trunk.as_deref() else {
            return Vec::new();
        };
        let mut out = vec![Subject::trunk_of(trunk)];
        // A caller ID refused as not ours is no number of the call center: counting it would
        // let a spoofing PBX create subjects at will. The trunk still counts the attempt.
        let foreign_caller = matches!(
            cdr.refusal_reason.as_deref(),
            Some("caller_id_not_authorized" | "anonymous_not_allowed" | "unknown_trunk")
        );
        if cdr.direction == Direction::Outbound {
            if let Some(n) = cdr.caller.as_deref().filter(|_| !foreign_caller) {
                out.push(Subject::caller_id(trunk, n));
            }
            if let Some(n) = cdr.callee.as_deref() {
                out.push(Subject::callee(trunk, n));
            }
        }
        out
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Trunk { trunk } => write!(f, "trunk {trunk}"),
            Subject::CallerId { trunk, number } => write!(f, "caller ID {number} on {trunk}"),
            Subject::Callee { trunk, number } => write!(f, "callee {number} on {trunk}"),
        }
    }
}

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
    let hour = hour_start(cdr.invite_at);
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
        Subject::Trunk { .. } => cdr.trunk_active.unwrap_or(0),
        Subject::CallerId { .. } => cdr.caller_active.unwrap_or(0),
        Subject::Callee { .. } => 0,
    };
    k
}
