//! The KPI report's rows summed for the charts and tables: per bucket over the trunks shown,
//! and per caller ID over the whole period; ASR and NER of a sum.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// One bucket of a trunk's figures, summed over the trunks shown.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Point {
    pub(super) start: String,
    pub(super) attempts: u64,
    pub(super) offered: u64,
    pub(super) answered: u64,
    pub(super) invalid: u64,
    pub(super) network_errors: u64,
}

impl Point {
    pub(super) fn asr(&self) -> Option<f64> {
        (self.offered > 0).then(|| self.answered as f64 / self.offered as f64 * 100.0)
    }

    /// NER: offered calls that did not fail in the network.
    pub(super) fn ner(&self) -> Option<f64> {
        (self.offered > 0).then(|| {
            (self.offered - self.network_errors.min(self.offered)) as f64 / self.offered as f64
                * 100.0
        })
    }
}

/// The rows of one kind of subject (`trunk`: every trunk shown; `caller_id`: the caller ID
/// asked for) summed per bucket, in time order.
pub(super) fn points(rows: &[Value], subject: &str) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    for r in rows.iter().filter(|r| r["subject"] == subject) {
        let start = r["bucket_start"].as_str().unwrap_or("").to_string();
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        let p = match out.iter_mut().find(|p| p.start == start) {
            Some(p) => p,
            None => {
                out.push(Point {
                    start,
                    ..Point::default()
                });
                let last = out.len() - 1;
                &mut out[last]
            }
        };
        p.attempts += n("attempts");
        p.offered += n("offered");
        p.answered += n("answered");
        p.invalid += n("invalid_number");
        p.network_errors += n("network_errors");
    }
    out.sort_by(|a, b| a.start.cmp(&b.start));
    out
}

/// A bucket's start as a short label (`11-27 09:00`).
pub(super) fn label(start: &str) -> String {
    DateTime::parse_from_rfc3339(start)
        .map(|t| t.with_timezone(&Utc).format("%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| start.to_string())
}

/// One caller ID's figures over the whole period.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct CallerTotal {
    pub(super) trunk: String,
    pub(super) number: String,
    pub(super) point: Point,
}

/// The caller IDs' rows summed over the period, busiest first.
pub(super) fn caller_totals(rows: &[Value]) -> Vec<CallerTotal> {
    let mut out: Vec<CallerTotal> = Vec::new();
    for r in rows.iter().filter(|r| r["subject"] == "caller_id") {
        let trunk = r["trunk"].as_str().unwrap_or("").to_string();
        let number = r["number"].as_str().unwrap_or("").to_string();
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        let i = match out
            .iter()
            .position(|c| c.trunk == trunk && c.number == number)
        {
            Some(i) => i,
            None => {
                out.push(CallerTotal {
                    trunk,
                    number,
                    point: Point::default(),
                });
                out.len() - 1
            }
        };
        let p = &mut out[i].point;
        p.attempts += n("attempts");
        p.offered += n("offered");
        p.answered += n("answered");
        p.invalid += n("invalid_number");
        p.network_errors += n("network_errors");
    }
    out.sort_by(|a, b| {
        b.point
            .attempts
            .cmp(&a.point.attempts)
            .then_with(|| a.number.cmp(&b.number))
    });
    out
}
