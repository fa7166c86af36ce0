//! A called number's recent attempt times: exact counts over the callee rule's windows while
//! keeping only as many times as the largest limit needs.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

use super::Examples;

#[derive(Debug, Clone, Default)]
pub struct CalleeAttempts {
    /// Ascending.
    times: VecDeque<DateTime<Utc>>,
    pub examples: Examples,
}

impl CalleeAttempts {
    /// Record an attempt at `at`, keeping the newest `keep` times (limit + 1 is enough to know
    /// the limit was exceeded).
    pub fn record(&mut self, at: DateTime<Utc>, call_id: &str, keep: usize) {
        let pos = self
            .times
            .iter()
            .rposition(|t| *t <= at)
            .map_or(0, |p| p + 1);
        self.times.insert(pos, at);
        while self.times.len() > keep.max(1) {
            self.times.pop_front();
        }
        self.examples.push(call_id);
    }

    /// Attempts in `(at − span, at]`, up to the number of times kept.
    pub fn count(&self, at: DateTime<Utc>, span: Duration) -> u64 {
        let from = at - span;
        self.times
            .iter()
            .filter(|t| **t > from && **t <= at)
            .count() as u64
    }

    pub fn newest(&self) -> Option<DateTime<Utc>> {
        self.times.back().copied()
    }
}
