//! The verdicts on recent new INVITEs, by a keyed hash of what tells a retransmission (side,
//! Call-ID, CSeq, top Via): a refused INVITE retransmitted gets the same 503 again without a
//! second CDR, an admitted one goes on to its server transaction without being judged again.
//!
//! Two generations, swapped every `GENERATION` or when the current one is full: memory stays
//! bounded under any load, and a verdict lives at least one generation — past the 32 s a UAC
//! retransmits an INVITE for (timer B), unless a flood fills the generations sooner, and then
//! an old INVITE retransmitted is merely judged afresh.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a generation lasts.
pub const GENERATION: Duration = Duration::from_secs(32);
/// Verdicts per generation, at most (two generations: about 2 × 17 bytes each, ~4.5 MB).
pub const MAX_PER_GENERATION: usize = 131_072;

/// What was decided about a new INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Admitted,
    Refused,
}

#[derive(Debug)]
pub struct Recent {
    current: HashMap<u64, Verdict>,
    previous: HashMap<u64, Verdict>,
    since: Instant,
}

impl Recent {
    pub fn new(now: Instant) -> Recent {
        Recent {
            current: HashMap::new(),
            previous: HashMap::new(),
            since: now,
        }
    }

    pub fn get(&self, key: u64) -> Option<Verdict> {
        self.current
            .get(&key)
            .or_else(|| self.previous.get(&key))
            .copied()
    }

    pub fn insert(&mut self, key: u64, verdict: Verdict, now: Instant) {
        if now.saturating_duration_since(self.since) >= GENERATION
            || self.current.len() >= MAX_PER_GENERATION
        {
            self.previous = std::mem::take(&mut self.current);
            self.since = now;
        }
        self.current.insert(key, verdict);
    }

    /// Verdicts held (both generations).
    pub fn remembered(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_outlives_one_generation_and_the_memory_is_bounded() {
        let t0 = Instant::now();
        let mut r = Recent::new(t0);
        r.insert(1, Verdict::Refused, t0);
        r.insert(2, Verdict::Admitted, t0);
        assert_eq!(r.get(1), Some(Verdict::Refused));
        r.insert(3, Verdict::Refused, t0 + GENERATION);
        assert_eq!(
            (r.get(1), r.get(2)),
            (Some(Verdict::Refused), Some(Verdict::Admitted))
        );
        r.insert(4, Verdict::Refused, t0 + GENERATION * 2);
        assert_eq!((r.get(1), r.get(3)), (None, Some(Verdict::Refused)));
        for k in 0..3 * MAX_PER_GENERATION as u64 {
            r.insert(100 + k, Verdict::Refused, t0 + GENERATION * 2);
        }
        assert!(
            r.remembered() <= 2 * MAX_PER_GENERATION,
            "{}",
            r.remembered()
        );
        assert_eq!(
            r.get(100 + 3 * MAX_PER_GENERATION as u64 - 1),
            Some(Verdict::Refused)
        );
    }
}
