//! `Policy::admit_in_cluster`: a cluster node's admission. The checks that do not depend on
//! other calls run here as on a single node (`screen`); the callee limit, the rate and the
//! concurrency caps are then taken in the state shared by every node (`cluster::
//! SharedAdmission`, one atomic script), so that a cap of 30 is 30 across the cluster.
//!
//! The call also counts on this node (a lease without cap or token), so that the node's own
//! load, `/metrics` and the drift check see it. While the shared state is down the node applies
//! `on_shared_state_down`: `refuse` answers `503 Shared State Unavailable`; `local` admits
//! against this node's share of each cap and rate (÷ live nodes last seen, in memory) and the
//! call's slot is adopted into the shared state, which counts it once it is back.

use chrono::{DateTime, Utc};

use super::admit::Screened;
use super::decision::{AdmissionLease, AdmissionRequest, Decision, Refusal};
use super::lease::Caps;
use super::Policy;
use crate::cluster::{
    CalleeCheck, Fallback, RateLimit, Refused, SharedAdmission, SharedCaps, SharedRequest,
};
use crate::model::RefusalReason;

impl Policy {
    /// Judge one INVITE at `now` against the cluster's shared state (see the module comment).
    /// Waits for Redis at most the cluster's `op_timeout`; while it is known to be down the
    /// answer is immediate.
    pub async fn admit_in_cluster(
        &self,
        shared: &SharedAdmission,
        req: &AdmissionRequest<'_>,
        now: DateTime<Utc>,
    ) -> Decision {
        let screened = match self.screen(req, now) {
            Ok(s) => s,
            Err(r) => return Decision::Refuse(r),
        };
        let answer = shared.admit(&shared_request(&screened)).await;
        let admitted = match answer {
            Ok(shared_lease) => {
                let state = &screened.trunk.state;
                let local = state.count(&screened.parties.line, &self.total);
                Ok(screened.admitted(AdmissionLease::shared(local, shared_lease)))
            }
            Err(Refused::Limit(limit)) => {
                Err(screened
                    .refuse(limit.reason(screened.trunk_throttled, screened.number_throttled)))
            }
            Err(Refused::Unavailable(fallback)) => self.fall_back(shared, screened, fallback, now),
        };
        match admitted {
            Ok(a) => Decision::Admit(a),
            Err(r) => Decision::Refuse(r),
        }
    }

    /// `on_shared_state_down`, the shared state unreachable.
    fn fall_back(
        &self,
        shared: &SharedAdmission,
        mut screened: Screened,
        fallback: Fallback,
        now: DateTime<Utc>,
    ) -> Result<super::Admission, Refusal> {
        let share = |cap| fallback.local_cap(cap);
        let (Some(trunk), Some(number), Some(max_cps)) = (
            share(screened.caps.max_concurrent),
            share(screened.caps.max_per_number),
            fallback.local_rate(screened.caps.max_cps),
        ) else {
            return Err(screened.refuse(RefusalReason::SharedStateUnavailable));
        };
        screened.caps = Caps {
            max_concurrent: trunk,
            max_per_number: number,
            max_cps,
        };
        let mut admission = self.limit_locally(screened, now)?;
        // The call runs: the shared state counts it as soon as it is back (reconciliation).
        let adopted = shared.adopt(admission.lease.trunk(), admission.lease.number());
        admission.lease.adopt(adopted);
        Ok(admission)
    }
}

/// The shared limits of a screened call, as the admit script takes them.
fn shared_request(s: &Screened) -> SharedRequest<'_> {
    SharedRequest {
        trunk: &s.trunk.config.name,
        line: &s.parties.line,
        caps: SharedCaps {
            max_concurrent: s.caps.max_concurrent,
            max_per_number: s.caps.max_per_number,
        },
        rate: RateLimit::from_max_cps(s.caps.max_cps),
        callee: s.callee_limits.map(|limits| CalleeCheck {
            number: &s.parties.callee,
            window: limits.window.to_std().unwrap_or_default(),
            per_window: limits.per_window,
            daily: limits.daily,
        }),
    }
}
