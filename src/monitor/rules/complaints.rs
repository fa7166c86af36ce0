//! The complaints about one caller ID over the longest complaint window (7 days), bounded.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

use super::{Complaint, ComplaintCategory};

/// Complaints kept per caller ID; older ones go first.
const MAX_PER_CALLER: usize = 1_000;

#[derive(Debug, Clone, Default)]
pub struct ComplaintLog {
    /// Ascending by time.
    entries: VecDeque<Complaint>,
}

impl ComplaintLog {
    pub fn add(&mut self, c: &Complaint) {
        let pos = self
            .entries
            .iter()
            .rposition(|e| e.time <= c.time)
            .map_or(0, |p| p + 1);
        self.entries.insert(pos, c.clone());
        if self.entries.len() > MAX_PER_CALLER {
            self.entries.pop_front();
        }
    }

    /// Complaints with time in `(now − span, now]`.
    pub fn within(&self, now: DateTime<Utc>, span: Duration) -> impl Iterator<Item = &Complaint> {
        let from = now - span;
        self.entries
            .iter()
            .filter(move |c| c.time > from && c.time <= now)
    }

    pub fn prune(&mut self, now: DateTime<Utc>, keep: Duration) {
        while self.entries.front().is_some_and(|c| c.time <= now - keep) {
            self.entries.pop_front();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl ComplaintCategory {
    /// Fraud and false information are what the fraud rule counts.
    pub fn is_fraud(self) -> bool {
        matches!(
            self,
            ComplaintCategory::Fraud | ComplaintCategory::FalseInformation
        )
    }
}
