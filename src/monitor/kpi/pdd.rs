//! Post-dial delay (INVITE → first 18x) as a fixed-bin histogram: bins of every bucket line up,
//! so hourly and daily buckets merge by adding counts.
//!
//! The mean is exact (sum and count are kept). The p95 is the upper edge of the bin holding the
//! 95th percentile, so its resolution is that bin's width: 250 ms up to 1 s, 500 ms up to 3 s,
//! 1 s up to 6 s, 2 s up to 10 s, 5 s up to 20 s, 10 s up to 30 s, 30 s up to 60 s. Beyond 60 s
//! the largest delay seen is reported.

use serde::{Deserialize, Serialize};

/// Upper edges (inclusive) of the bins, in ms; one more bin holds everything above the last.
pub const PDD_BIN_EDGES_MS: [u64; 17] = [
    250, 500, 750, 1_000, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000, 6_000, 8_000, 10_000, 15_000,
    20_000, 30_000, 60_000,
];
const BINS: usize = PDD_BIN_EDGES_MS.len() + 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PddHistogram {
    pub count: u64,
    pub sum_ms: u64,
    pub max_ms: u64,
    /// Counts per bin; `bins[i]` holds delays ≤ `PDD_BIN_EDGES_MS[i]` (and above the previous
    /// edge); the last bin holds delays above 60 s.
    pub bins: [u64; BINS],
}

impl PddHistogram {
    pub fn record(&mut self, ms: u64) {
        let i = PDD_BIN_EDGES_MS
            .iter()
            .position(|&edge| ms <= edge)
            .unwrap_or(BINS - 1);
        self.bins[i] += 1;
        self.count += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
        self.max_ms = self.max_ms.max(ms);
    }

    pub fn merge(&mut self, other: &PddHistogram) {
        for (a, b) in self.bins.iter_mut().zip(other.bins.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum_ms = self.sum_ms.saturating_add(other.sum_ms);
        self.max_ms = self.max_ms.max(other.max_ms);
    }

    pub fn mean_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_ms as f64 / self.count as f64)
    }

    /// Upper edge of the bin holding the 95th percentile (nearest-rank), capped by the largest
    /// delay seen.
    pub fn p95_ms(&self) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        // Nearest rank: the smallest value with at least 95 % of samples at or below it.
        let rank = (self.count * 95).div_ceil(100);
        let mut seen = 0;
        for (i, n) in self.bins.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let edge = PDD_BIN_EDGES_MS.get(i).copied().unwrap_or(self.max_ms);
                return Some(edge.min(self.max_ms));
            }
        }
        Some(self.max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_is_exact_and_p95_is_the_bin_edge() {
        let mut h = PddHistogram::default();
        for _ in 0..95 {
            h.record(1_200);
        }
        for _ in 0..5 {
            h.record(9_000);
        }
        assert_eq!(h.mean_ms(), Some((95.0 * 1_200.0 + 5.0 * 9_000.0) / 100.0));
        assert_eq!(h.p95_ms(), Some(1_500));
        h.record(9_000);
        // 101 samples: rank 96 falls in the 8–10 s bin, reported as the largest seen (9 s).
        assert_eq!(h.p95_ms(), Some(9_000));
    }

    #[test]
    fn merge_adds_bins() {
        let (mut a, mut b) = (PddHistogram::default(), PddHistogram::default());
        a.record(100);
        b.record(70_000);
        a.merge(&b);
        assert_eq!(
            (a.count, a.max_ms, a.bins[0], a.bins[BINS - 1]),
            (2, 70_000, 1, 1)
        );
        assert_eq!(a.p95_ms(), Some(70_000));
        assert_eq!(PddHistogram::default().p95_ms(), None);
    }
}
