//! Steps in force that admission applies: suspensions and throttles of trunks and caller IDs,
//! fed by the monitor's enforcement log (`impose`, `lift`). Shared (`Arc`) and cheap to read: admission takes
//! a read lock for two map lookups, never across anything else.
//!
//! Effect at admission (the very next call after `apply`):
//! - trunk suspend_trunk → every new call, both directions, `403 Trunk Suspended`;
//! - caller ID suspend_number → new outbound calls presenting it `403 Caller ID Suspended`
//!   (inbound calls to that number go on: a customer calling in is not the number's traffic);
//! - trunk throttle → `max_concurrent` cut to `throttle_share` (≥ 1), refusals
//!   `503 Trunk Throttled` (`trunk_throttled`) while the throttle is in force;
//! - caller ID throttle → its `max_concurrent_per_caller_id` cut likewise for outbound calls,
//!   `503 Caller ID Throttled` (`caller_id_throttled`);
//! - alerts change nothing.

use std::collections::HashMap;

use parking_lot::RwLock;

use crate::model::Step;
use crate::model::Subject;

#[derive(Debug, Default)]
struct TrunkSteps {
    trunk: Vec<(u64, Step)>,
    numbers: HashMap<String, Vec<(u64, Step)>>,
}

/// The strongest steps in force per trunk and per caller ID.
#[derive(Debug, Default)]
pub struct Restrictions {
    by_trunk: RwLock<HashMap<String, TrunkSteps>>,
}

/// What admission must do for one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InForce {
    pub trunk: Option<Step>,
    pub number: Option<Step>,
}

impl Restrictions {
    pub fn new() -> Restrictions {
        Restrictions::default()
    }

    /// A step imposed on a subject (the enforcement log's impose entries, in log order).
    pub fn impose(&self, id: u64, subject: &Subject, step: Step) {
        let mut map = self.by_trunk.write();
        let entry = map.entry(subject.trunk().to_string()).or_default();
        match subject {
            Subject::Trunk { .. } => entry.trunk.push((id, step)),
            Subject::CallerId { number, .. } => entry
                .numbers
                .entry(number.clone())
                .or_default()
                .push((id, step)),
            // Callee subjects only alert; admission's callee limit is their enforcement.
            Subject::Callee { .. } => {}
        }
    }

    /// The step imposed as `id` on `subject` is lifted.
    pub fn lift(&self, id: u64, subject: &Subject) {
        let mut map = self.by_trunk.write();
        let Some(entry) = map.get_mut(subject.trunk()) else {
            return;
        };
        match subject {
            Subject::Trunk { .. } => entry.trunk.retain(|(i, _)| *i != id),
            Subject::CallerId { number, .. } => {
                if let Some(v) = entry.numbers.get_mut(number) {
                    v.retain(|(i, _)| *i != id);
                    if v.is_empty() {
                        entry.numbers.remove(number);
                    }
                }
            }
            Subject::Callee { .. } => {}
        }
        if entry.trunk.is_empty() && entry.numbers.is_empty() {
            map.remove(subject.trunk());
        }
    }

    /// The strongest steps in force on a trunk and on one of its numbers.
    pub fn in_force(&self, trunk: &str, number: Option<&str>) -> InForce {
        let map = self.by_trunk.read();
        let Some(t) = map.get(trunk) else {
            return InForce::default();
        };
        let strongest = |v: &Vec<(u64, Step)>| v.iter().map(|(_, s)| *s).max();
        InForce {
            trunk: strongest(&t.trunk),
            number: number.and_then(|n| t.numbers.get(n)).and_then(strongest),
        }
    }

    /// The strongest step in force on a subject.
    pub fn step_of(&self, subject: &Subject) -> Option<Step> {
        let f = self.in_force(subject.trunk(), subject.number());
        match subject {
            Subject::Trunk { .. } => f.trunk,
            Subject::CallerId { .. } => f.number,
            Subject::Callee { .. } => None,
        }
    }

    /// Whether any trunk or number has a step in force.
    pub fn is_empty(&self) -> bool {
        self.by_trunk.read().is_empty()
    }
}
