//! `Policy::admit`: the checks in their fixed order. Identity checks come first because they are
//! cheap and must never spend rate tokens; then blocks, calling hours, suspensions (`screen`),
//! then the limits that depend on other calls: the callee limit, rate and concurrency (with
//! throttled caps), taken here in memory or, for a cluster node, in the shared state
//! (`shared.rs`).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::callee::CalleeLimits;
use super::caller_id::{self, Parties};
use super::decision::{Admission, AdmissionLease, AdmissionRequest, Decision, Refusal};
use super::lease::{Busy, Caps};
use super::trunks::Trunk;
use super::Policy;
use crate::model::Step;
use crate::model::{Direction, RefusalReason};

/// A call that passed every check not depending on other calls: what the limits decide on.
pub(super) struct Screened {
    pub trunk: Arc<Trunk>,
    pub parties: Parties,
    /// The caps in force for this call (throttles applied).
    pub caps: Caps,
    pub trunk_throttled: bool,
    pub number_throttled: bool,
    /// `Some` when the callee limits apply (outbound, rule enabled).
    pub callee_limits: Option<CalleeLimits>,
    pub retry_after_secs: u32,
}

impl Screened {
    pub(super) fn refuse(&self, reason: RefusalReason) -> Refusal {
        let (caller, callee) = (
            self.parties.caller.clone(),
            Some(self.parties.callee.clone()),
        );
        Refusal::new(reason, self.retry_after_secs, caller, callee)
    }

    /// The refusal for a concurrency or rate limit reached.
    pub(super) fn busy(&self, busy: Busy) -> Refusal {
        self.refuse(match busy {
            Busy::Rate => RefusalReason::RateLimited,
            Busy::Trunk if self.trunk_throttled => RefusalReason::TrunkThrottled,
            Busy::Trunk => RefusalReason::TrunkConcurrency,
            Busy::Number if self.number_throttled => RefusalReason::CallerIdThrottled,
            Busy::Number => RefusalReason::CallerIdConcurrency,
        })
    }

    pub(super) fn admitted(self, lease: AdmissionLease) -> Admission {
        let Parties { caller, callee, .. } = self.parties;
        Admission {
            lease,
            caller,
            callee: Some(callee),
        }
    }
}

impl Policy {
    /// Judge one INVITE at `now`, every limit in this node's memory. An admission carries the
    /// lease the call must hold until it ends; a refusal takes no slot and no rate token.
    pub fn admit(&self, req: &AdmissionRequest<'_>, now: DateTime<Utc>) -> Decision {
        let admitted = self
            .screen(req, now)
            .and_then(|screened| self.limit_locally(screened, now));
        match admitted {
            Ok(a) => Decision::Admit(a),
            Err(r) => Decision::Refuse(r),
        }
    }

    /// Every check that does not depend on other calls, in order.
    pub(super) fn screen(
        &self,
        req: &AdmissionRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Screened, Refusal> {
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
        let outbound = req.direction == Direction::Outbound;
        // A caller ID's steps concern the calls presenting it, i.e. outbound ones.
        let number = outbound.then_some(parties.line.as_str());
        let steps = self.restrictions.in_force(req.trunk, number);
        let cfg = &trunk.config;
        let trunk_throttled = steps.trunk == Some(Step::Throttle);
        let number_throttled = steps.number == Some(Step::Throttle);
        let screened = Screened {
            caps: Caps {
                max_concurrent: match trunk_throttled {
                    true => cfg.throttled(cfg.max_concurrent),
                    false => cfg.max_concurrent,
                },
                max_per_number: match number_throttled {
                    true => cfg.throttled(cfg.max_concurrent_per_caller_id),
                    false => cfg.max_concurrent_per_caller_id,
                },
                max_cps: cfg.max_cps,
            },
            trunk_throttled,
            number_throttled,
            callee_limits: (outbound && trunk.callee_limits.enabled).then_some(trunk.callee_limits),
            retry_after_secs: self.retry_after_secs(),
            trunk: Arc::clone(trunk),
            parties,
        };
        if screened
            .parties
            .screened
            .iter()
            .any(|n| trunk.blocked.contains(n))
        {
            return Err(screened.refuse(RefusalReason::NumberBlocked));
        }
        if outbound && !within_hours(trunk, now) {
            return Err(screened.refuse(RefusalReason::OutsideCallingHours));
        }
        if steps.trunk == Some(Step::SuspendTrunk) {
            return Err(screened.refuse(RefusalReason::TrunkSuspended));
        }
        if steps.number >= Some(Step::SuspendNumber) {
            return Err(screened.refuse(RefusalReason::CallerIdSuspended));
        }
        if outbound && cfg.register && !self.registrations.registered(req.trunk, now) {
            return Err(screened.refuse(RefusalReason::TrunkNotRegistered));
        }
        Ok(screened)
    }

    /// The callee limit, rate and concurrency against this node's own counters, with `caps`
    /// (a cluster node's share of them while the shared state is down).
    pub(super) fn limit_locally(
        &self,
        screened: Screened,
        now: DateTime<Utc>,
    ) -> Result<Admission, Refusal> {
        let state = &screened.trunk.state;
        let callee = &screened.parties.callee;
        let counted = match screened.callee_limits {
            Some(limits) if !state.callees.reserve(callee, now, limits) => {
                return Err(screened.refuse(RefusalReason::CalleeFrequencyLimit));
            }
            Some(_) => true,
            None => false,
        };
        match state.try_lease(now, screened.caps, &screened.parties.line, &self.total) {
            Ok(lease) => Ok(screened.admitted(AdmissionLease::local(lease))),
            Err(busy) => {
                if counted {
                    state.callees.cancel(callee, now);
                }
                Err(screened.busy(busy))
            }
        }
    }
}

/// Calling hours are local wall-clock windows in the trunk's time zone (DST included).
fn within_hours(trunk: &Trunk, now: DateTime<Utc>) -> bool {
    let local = now.with_timezone(&trunk.config.timezone);
    trunk.config.calling_hours.allows(local.time())
}
