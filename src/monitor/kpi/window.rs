//! Sliding windows as sparse rings of sub-buckets: a window keeps only the sub-buckets that
//! received something, so a subject costs memory in proportion to its activity, not to the
//! window's length.
//!
//! Granularity (sub-bucket width) per window: 60 s → 5 s, 5 m → 15 s, 1 h → 1 min,
//! 24 h → 15 min, 7 d → 1 h. At `now` a window sums the sub-buckets whose start lies within the
//! last `span` counted in whole sub-buckets, the current (partial) one included: it covers
//! between `span − granularity` and `span` of history.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

use super::KpiCounters;
use crate::config::RuleWindow;

/// Sub-bucket width of a window.
pub fn granularity(w: RuleWindow) -> Duration {
    match w {
        RuleWindow::Minute => Duration::seconds(5),
        RuleWindow::FiveMinutes => Duration::seconds(15),
        RuleWindow::Hour => Duration::minutes(1),
        RuleWindow::Day => Duration::minutes(15),
        RuleWindow::Week => Duration::hours(1),
    }
}

#[derive(Debug, Clone)]
pub struct SlidingWindow {
    window: RuleWindow,
    granularity_ms: i64,
    /// Sub-buckets in the window.
    slots: i64,
    /// (sub-bucket index since the epoch, counters), ascending.
    buckets: VecDeque<(i64, KpiCounters)>,
}

impl SlidingWindow {
    pub fn new(window: RuleWindow) -> SlidingWindow {
        let g = granularity(window).num_milliseconds().max(1);
        SlidingWindow {
            window,
            granularity_ms: g,
            slots: (window.span().num_milliseconds() / g).max(1),
            buckets: VecDeque::new(),
        }
    }

    pub fn window(&self) -> RuleWindow {
        self.window
    }

    fn index(&self, t: DateTime<Utc>) -> i64 {
        t.timestamp_millis().div_euclid(self.granularity_ms)
    }

    /// Add counters at time `at`. Late events land in their own sub-bucket; events already
    /// older than the window (relative to the newest sub-bucket) are dropped.
    pub fn add(&mut self, at: DateTime<Utc>, k: &KpiCounters) {
        let idx = self.index(at);
        match self.buckets.back_mut() {
            Some((last, c)) if *last == idx => return c.merge(k),
            Some((last, _)) if *last > idx => {
                if idx <= *last - self.slots {
                    return;
                }
                // Out of order: find its place from the back (it is recent).
                let pos = self.buckets.iter().rposition(|(i, _)| *i <= idx);
                match pos {
                    Some(p) if self.buckets[p].0 == idx => self.buckets[p].1.merge(k),
                    Some(p) => self.buckets.insert(p + 1, (idx, k.clone())),
                    None => self.buckets.push_front((idx, k.clone())),
                }
                return;
            }
            _ => {}
        }
        self.buckets.push_back((idx, k.clone()));
    }

    /// Drop sub-buckets that have left the window at `now`.
    pub fn prune(&mut self, now: DateTime<Utc>) {
        let oldest = self.index(now) - self.slots;
        while self.buckets.front().is_some_and(|(i, _)| *i <= oldest) {
            self.buckets.pop_front();
        }
    }

    /// The window's total at `now`.
    pub fn sum(&self, now: DateTime<Utc>) -> KpiCounters {
        let oldest = self.index(now) - self.slots;
        let mut total = KpiCounters::default();
        for (_, c) in self.buckets.iter().filter(|(i, _)| *i > oldest) {
            total.merge(c);
        }
        total
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Sub-buckets held (for memory accounting in tests).
    pub fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// The five windows of one subject.
#[derive(Debug, Clone)]
pub struct Windows {
    windows: [SlidingWindow; 5],
}

impl Default for Windows {
    fn default() -> Self {
        Windows {
            windows: RuleWindow::ALL.map(SlidingWindow::new),
        }
    }
}

impl Windows {
    pub fn add(&mut self, at: DateTime<Utc>, k: &KpiCounters) {
        for w in &mut self.windows {
            w.prune(at);
            w.add(at, k);
        }
    }

    pub fn sum(&self, window: RuleWindow, now: DateTime<Utc>) -> KpiCounters {
        self.windows[window.index()].sum(now)
    }

    pub fn prune(&mut self, now: DateTime<Utc>) {
        for w in &mut self.windows {
            w.prune(now);
        }
    }

    /// Nothing left in any window.
    pub fn is_empty(&self) -> bool {
        self.windows.iter().all(SlidingWindow::is_empty)
    }
}
