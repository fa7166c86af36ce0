//! How long admission takes, from the INVITE's trunk found to the policy's answer: in memory
//! on one node (microseconds), one Redis round trip on a cluster node. A histogram with fixed
//! buckets (relaxed atomics, no lock), shown in `/metrics` as
//! `trunkguard_admission_duration_seconds` and read by the cluster benchmark for its p50/p99.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (`+Inf` after the last). Finer around a millisecond,
/// where a cluster node's Redis round trip lands and where its aim lies (< 1 ms p99 added):
/// a p99 interpolated in a 1–2.5 ms bucket would say 2.4 ms for admissions of 1.1 ms.
pub const BOUNDS: [f64; 19] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.000_75, 0.001, 0.001_5, 0.002,
    0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

#[derive(Debug, Default)]
pub struct AdmissionTimes {
    /// Per bucket (not cumulative), the last one `+Inf`.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

/// A read of the histogram: cumulative counts per bound (`+Inf` last), sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdmissionHistogram {
    pub cumulative: Vec<(f64, u64)>,
    pub sum_secs: f64,
    pub count: u64,
}

impl AdmissionTimes {
    pub fn record(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = BOUNDS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BOUNDS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn read(&self) -> AdmissionHistogram {
        let mut running = 0;
        let cumulative = BOUNDS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(&self.buckets)
            .map(|(bound, n)| {
                running += n.load(Ordering::Relaxed);
                (bound, running)
            })
            .collect();
        AdmissionHistogram {
            cumulative,
            sum_secs: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            // The buckets' total, not `count`: a read between two increments stays consistent.
            count: running,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounded_above() {
        let t = AdmissionTimes::default();
        t.record(Duration::from_micros(30));
        t.record(Duration::from_micros(700));
        t.record(Duration::from_millis(1));
        t.record(Duration::from_secs(3));
        let h = t.read();
        assert_eq!(h.count, 4);
        assert_eq!(h.cumulative[0], (0.000_01, 0));
        assert_eq!(h.cumulative[2], (0.000_05, 1));
        let at = |bound: f64| h.cumulative.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!(at(0.000_5), 1);
        assert_eq!(at(0.000_75), 2, "700 µs below the 750 µs bound");
        assert_eq!(at(0.001), 3, "a bound is inclusive");
        assert_eq!(at(1.0), 3);
        assert_eq!(h.cumulative.last(), Some(&(f64::INFINITY, 4)));
        assert!((h.sum_secs - 3.001_73).abs() < 1e-9, "{}", h.sum_secs);
    }
}
