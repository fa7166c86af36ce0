//! Counters of finished call attempts by trunk, disposition and refusal reason, since start:
//! the admissions and refusals `/metrics` shows. Counted as CDRs are submitted (every attempt
//! has exactly one final CDR), so no call path needs a counter of its own. Keys are bounded:
//! trunks come from the configuration, dispositions and reasons are codes of the gateway.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::model::Cdr;

/// One counter's labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutcomeKey {
    /// The trunk ('' when the attempt matched none).
    pub trunk: String,
    /// The CDR's disposition code (`refused`: the gateway's policy refused it).
    pub disposition: &'static str,
    /// The refusal reason code ('' unless refused).
    pub reason: &'static str,
}

#[derive(Debug, Default)]
pub struct CallOutcomes {
    counts: Mutex<HashMap<OutcomeKey, u64>>,
}

impl CallOutcomes {
    pub fn count(&self, cdr: &Cdr) {
        let key = OutcomeKey {
            trunk: cdr.attempt.trunk.clone().unwrap_or_default(),
            disposition: cdr.outcome.disposition.as_str(),
            reason: cdr.outcome.refusal_reason.map_or("", |r| r.as_str()),
        };
        let mut counts = self.counts.lock();
        *counts.entry(key).or_insert(0) += 1;
    }

    /// Every counter, sorted by its labels.
    pub fn snapshot(&self) -> Vec<(OutcomeKey, u64)> {
        let counts = self.counts.lock();
        let mut v: Vec<_> = counts.iter().map(|(k, n)| (k.clone(), *n)).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RefusalReason;
    use crate::model::{sample_cdr, Disposition};

    #[test]
    fn counts_by_trunk_disposition_and_reason() {
        let o = CallOutcomes::default();
        o.count(&sample_cdr("a"));
        o.count(&sample_cdr("b"));
        let mut refused = sample_cdr("c");
        refused.outcome.disposition = Disposition::Refused;
        refused.outcome.refusal_reason = Some(RefusalReason::TrunkSuspended);
        o.count(&refused);
        let snap = o.snapshot();
        assert_eq!(snap.len(), 2);
        let total: u64 = snap.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 3);
        assert!(snap.iter().any(|(k, n)| k.reason == "trunk_suspended"
            && k.disposition == Disposition::Refused.as_str()
            && *n == 1));
    }
}
