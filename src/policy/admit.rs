//! `Policy::admit`: the checks in their fixed order. Identity checks come first because they are
//! cheap and must never spend rate tokens; then blocks, calling hours, rate and concurrency.

use chrono::{DateTime, Utc};

use super::caller_id::{self, Parties};
use super::decision::{Admission, AdmissionRequest, Decision, Direction, Refusal, RefusalReason};
use super::lease::{Busy, Caps};
use super::trunks::Trunk;
use super::Policy;

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
        let caps = Caps {
            max_concurrent: trunk.config.max_concurrent,
            max_per_number: trunk.config.max_concurrent_per_caller_id,
        };
        match trunk.state.try_lease(now, caps, &parties.line, &self.total) {
            Ok(lease) => {
                let Parties { caller, callee, .. } = parties;
                Ok(Admission {
                    lease,
                    caller,
                    callee: Some(callee),
                })
            }
            Err(Busy::Rate) => Err(refuse(RefusalReason::RateLimited)),
            Err(Busy::Trunk) => Err(refuse(RefusalReason::TrunkConcurrency)),
            Err(Busy::Number) => Err(refuse(RefusalReason::CallerIdConcurrency)),
        }
    }
}

/// Calling hours are local wall-clock windows in the trunk's time zone (DST included).
fn within_hours(trunk: &Trunk, now: DateTime<Utc>) -> bool {
    let local = now.with_timezone(&trunk.config.timezone);
    trunk.config.calling_hours.allows(local.time())
}
