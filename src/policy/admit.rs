//! `Policy::admit`: the checks in their fixed order. Identity checks come first because they are
//! cheap and must never spend rate tokens; then blocks, calling hours, suspensions, the callee
//! limit, rate and concurrency (with throttled caps).

use chrono::{DateTime, Utc};

use super::caller_id::{self, Parties};
use super::decision::{Admission, AdmissionRequest, Decision, Refusal};
use super::lease::{Busy, Caps};
use super::trunks::Trunk;
use super::Policy;
use crate::model::Step;
use crate::model::{Direction, RefusalReason};

impl Policy {
    /// Judge one INVITE at `now`. An admission carries the lease the call must hold until it
    /// ends; a refusal takes no slot and no rate token.
    pub fn admit(&self, req: &AdmissionRequest<'_>, now: DateTime<Utc>) -> Decision {
        match self.try_admit(req, now) {
            Ok(a) => Decision::Admit(a),
            Err(r) => Decision::Refuse(r),
        }
    }

    fn try_admit(
        &self,
        req: &AdmissionRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Admission, Refusal> {
        let snap = self.snapshot();
        let Some(trunk) = snap.get(req.trunk) else {
            let caller = caller_id::presented_number(req.from_uri);
            let callee = caller_id::presented_number(req.callee_uri);
            return Err(Refusal::new(RefusalReason::UnknownTrunk, 0, caller, callee));
        };
        let parties = match req.direction {
            Direction::Outbound => caller_id::outbound(trunk, req)?,
            Direction::Inbound => caller_id::inbound(trunk, req)?,
        };
        let refuse = |reason| {
            let retry = self.retry_after_secs();
            let (caller, callee) = (parties.caller.clone(), Some(parties.callee.clone()));
            Refusal::new(reason, retry, caller, callee)
        };

        if parties.screened.iter().any(|n| trunk.blocked.contains(n)) {
            return Err(refuse(RefusalReason::NumberBlocked));
        }
        if req.direction == Direction::Outbound && !within_hours(trunk, now) {
            return Err(refuse(RefusalReason::OutsideCallingHours));
        }
        let outbound = req.direction == Direction::Outbound;
        // A caller ID's steps concern the calls presenting it, i.e. outbound ones.
        let number = outbound.then_some(parties.line.as_str());
        let steps = self.restrictions.in_force(req.trunk, number);
        if steps.trunk == Some(Step::SuspendTrunk) {
            return Err(refuse(RefusalReason::TrunkSuspended));
        }
        if steps.number >= Some(Step::SuspendNumber) {
            return Err(refuse(RefusalReason::CallerIdSuspended));
        }
        let trunk_throttled = steps.trunk == Some(Step::Throttle);
        let number_throttled = steps.number == Some(Step::Throttle);
        let cfg = &trunk.config;
        let caps = Caps {
            max_concurrent: match trunk_throttled {
                true => cfg.throttled(cfg.max_concurrent),
                false => cfg.max_concurrent,
            },
            max_per_number: match number_throttled {
                true => cfg.throttled(cfg.max_concurrent_per_caller_id),
                false => cfg.max_concurrent_per_caller_id,
            },
        };
        let limited = outbound && trunk.callee_limits.enabled;
        let counted = limited
            && trunk
                .state
                .callees
                .reserve(&parties.callee, now, trunk.callee_limits);
        if limited && !counted {
            return Err(refuse(RefusalReason::CalleeFrequencyLimit));
        }
        let leased = trunk.state.try_lease(now, caps, &parties.line, &self.total);
        if leased.is_err() && counted {
            trunk.state.callees.cancel(&parties.callee, now);
        }
        match leased {
            Ok(lease) => {
                let Parties { caller, callee, .. } = parties;
                Ok(Admission {
                    lease,
                    caller,
                    callee: Some(callee),
                })
            }
            Err(Busy::Rate) => Err(refuse(RefusalReason::RateLimited)),
            Err(Busy::Trunk) if trunk_throttled => Err(refuse(RefusalReason::TrunkThrottled)),
            Err(Busy::Trunk) => Err(refuse(RefusalReason::TrunkConcurrency)),
            Err(Busy::Number) if number_throttled => Err(refuse(RefusalReason::CallerIdThrottled)),
            Err(Busy::Number) => Err(refuse(RefusalReason::CallerIdConcurrency)),
        }
    }
}

/// Calling hours are local wall-clock windows in the trunk's time zone (DST included).
fn within_hours(trunk: &Trunk, now: DateTime<Utc>) -> bool {
    let local = now.with_timezone(&trunk.config.timezone);
    trunk.config.calling_hours.allows(local.time())
}
