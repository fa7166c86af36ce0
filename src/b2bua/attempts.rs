//! Call attempts (new INVITEs) by trunk and direction, counted as they arrive, and how many
//! came in the last minute: `/metrics`' calls per second (`rate()` over the counter, or the
//! 60-second gauge). Finished attempts by outcome are `monitor::outcomes`' (counted at the CDR).
//! One short lock per new INVITE, none per in-dialog message; keys are bounded (trunks of the
//! configuration, two directions).

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

use crate::model::Direction;

/// The window of the recent rate, in seconds (one bucket each).
pub const WINDOW_SECS: u64 = 60;

#[derive(Debug)]
struct Counts {
    /// Since start, by (trunk, direction); trunk '' when the INVITE matched none.
    total: HashMap<(String, Direction), u64>,
    /// `(second, attempts)` per slot `second % WINDOW_SECS`.
    recent: [(u64, u64); WINDOW_SECS as usize],
}

#[derive(Debug)]
pub struct CallAttempts {
    epoch: Instant,
    counts: Mutex<Counts>,
}

impl Default for CallAttempts {
    fn default() -> Self {
        CallAttempts {
            epoch: Instant::now(),
            counts: Mutex::new(Counts {
                total: HashMap::new(),
                recent: [(0, 0); WINDOW_SECS as usize],
            }),
        }
    }
}

impl CallAttempts {
    /// A new INVITE arrived.
    pub fn count(&self, trunk: Option<&str>, direction: Direction) {
        self.count_at(trunk, direction, self.second());
    }

    /// Attempts per second over the last `WINDOW_SECS` seconds.
    pub fn per_second(&self) -> f64 {
        self.per_second_at(self.second())
    }

    /// Every counter since start, sorted by trunk then direction.
    pub fn totals(&self) -> Vec<(String, Direction, u64)> {
        let counts = self.counts.lock();
        let mut v: Vec<_> = counts
            .total
            .iter()
            .map(|((t, d), n)| (t.clone(), *d, *n))
            .collect();
        v.sort_by(|a, b| (&a.0, a.1.as_str()).cmp(&(&b.0, b.1.as_str())));
        v
    }

    fn second(&self) -> u64 {
        self.epoch.elapsed().as_secs()
    }

    fn count_at(&self, trunk: Option<&str>, direction: Direction, second: u64) {
        let mut counts = self.counts.lock();
        *counts
            .total
            .entry((trunk.unwrap_or_default().to_string(), direction))
            .or_insert(0) += 1;
        let slot = &mut counts.recent[(second % WINDOW_SECS) as usize];
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 += 1;
    }

    fn per_second_at(&self, now: u64) -> f64 {
        let counts = self.counts.lock();
        let recent: u64 = counts
            .recent
            .iter()
            .filter(|(second, _)| *second <= now && now - *second < WINDOW_SECS)
            .map(|(_, n)| n)
            .sum();
        recent as f64 / WINDOW_SECS as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_by_trunk_and_direction() {
        let a = CallAttempts::default();
        a.count_at(Some("t1"), Direction::Outbound, 0);
        a.count_at(Some("t1"), Direction::Outbound, 1);
        a.count_at(Some("t1"), Direction::Inbound, 1);
        a.count_at(None, Direction::Inbound, 2);
        assert_eq!(
            a.totals(),
            vec![
                (String::new(), Direction::Inbound, 1),
                ("t1".to_string(), Direction::Inbound, 1),
                ("t1".to_string(), Direction::Outbound, 2),
            ]
        );
    }

    #[test]
    fn the_rate_covers_the_last_minute_only() {
        let a = CallAttempts::default();
        for second in [10, 10, 10, 40, 69] {
            a.count_at(Some("t"), Direction::Outbound, second);
        }
        assert_eq!(a.per_second_at(69), 5.0 / 60.0);
        // Second 10 left the window at 70; its slot is reused by 130, not added to.
        assert_eq!(a.per_second_at(70), 2.0 / 60.0);
        a.count_at(Some("t"), Direction::Outbound, 130);
        assert_eq!(a.per_second_at(130), 1.0 / 60.0);
        assert_eq!(a.per_second_at(500), 0.0);
    }
}
