//! Ids of anomalies and impositions: unique and increasing across restarts without a lookup,
//! because they start from the event time in ms × 1000 (and never go back).

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Default)]
pub struct IdGen {
    last: u64,
}

impl IdGen {
    pub fn next(&mut self, now: DateTime<Utc>) -> u64 {
        let base = u64::try_from(now.timestamp_millis())
            .unwrap_or(0)
            .saturating_mul(1_000);
        self.last = (self.last + 1).max(base);
        self.last
    }

    /// Never hand out `id` or anything below it again (ids read back from the log).
    pub fn observe(&mut self, id: u64) {
        self.last = self.last.max(id);
    }
}
