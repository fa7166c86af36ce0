//! `SharedAdmission::admit`: one call checked and taken against the whole cluster in one script
//! (callee window, rate token, trunk and line leases: all or nothing), and the answer.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::lease::{Held, SharedLease};
use super::status::{ClusterCounters, Fallback};
use super::{lock, ClusterError, SharedAdmission};
use crate::model::RefusalReason;

/// The concurrency caps in force for this call (already cut by throttles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedCaps {
    pub max_concurrent: u32,
    pub max_per_number: u32,
}

/// A trunk's call-rate bucket: refilled at `per_sec`, holding at most `burst` tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_sec: f64,
    pub burst: f64,
}

impl RateLimit {
    /// The bucket of a trunk's `max_cps`, as the single node has it: `max(1, ceil(max_cps))`
    /// tokens. An invalid rate fails closed (one call, then no refill), as validation forbids it.
    pub fn from_max_cps(max_cps: f64) -> RateLimit {
        let per_sec = if max_cps.is_finite() && max_cps > 0.0 {
            max_cps
        } else {
            0.0
        };
        RateLimit {
            per_sec,
            burst: per_sec.ceil().max(1.0),
        }
    }

    /// How long the bucket's key lives after its last token was taken: once it would be full
    /// again it may as well not exist (a missing bucket is a full one).
    fn ttl(&self) -> Duration {
        if self.per_sec > 0.0 && self.per_sec.is_finite() {
            let full = (self.burst / self.per_sec).min(86_400.0);
            Duration::from_secs_f64(full) + Duration::from_secs(1)
        } else {
            Duration::from_secs(86_400)
        }
    }
}

/// The per-callee limits of an outbound call (the trunk's `over_frequent_callee` rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalleeCheck<'a> {
    /// The called number, normalized.
    pub number: &'a str,
    pub window: Duration,
    pub per_window: u32,
    pub daily: Option<u32>,
}

impl CalleeCheck<'_> {
    /// Admission times kept per number: enough for the larger limit.
    fn keep(&self) -> u32 {
        self.per_window.max(self.daily.unwrap_or(0)).max(1)
    }

    /// A number's times are forgotten once none could count any more.
    fn ttl(&self) -> Duration {
        self.window.max(Duration::from_secs(86_400))
    }
}

/// One call to admit across the cluster.
#[derive(Debug, Clone, Copy)]
pub struct SharedRequest<'a> {
    pub trunk: &'a str,
    /// The number whose per-number slot the call takes (`policy`'s line).
    pub line: &'a str,
    pub caps: SharedCaps,
    pub rate: RateLimit,
    /// `Some` for calls the callee limits apply to (outbound, rule enabled).
    pub callee: Option<CalleeCheck<'a>>,
}

/// Which shared limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Callee,
    Rate,
    Trunk,
    Number,
}

impl Limit {
    /// The refusal reason, as `Policy::admit` gives it (a throttled cap has its own reason).
    pub fn reason(self, trunk_throttled: bool, number_throttled: bool) -> RefusalReason {
        match self {
            Limit::Callee => RefusalReason::CalleeFrequencyLimit,
            Limit::Rate => RefusalReason::RateLimited,
            Limit::Trunk if trunk_throttled => RefusalReason::TrunkThrottled,
            Limit::Trunk => RefusalReason::TrunkConcurrency,
            Limit::Number if number_throttled => RefusalReason::CallerIdThrottled,
            Limit::Number => RefusalReason::CallerIdConcurrency,
        }
    }
}

/// Why `admit` gave no lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A shared limit is reached: refuse the call with its reason.
    Limit(Limit),
    /// The shared state cannot be used now: apply `on_shared_state_down`.
    Unavailable(Fallback),
}

/// What the admit script answers first.
const GRANTED: i64 = 0;
const NOT_LIVE: i64 = 5;
const ID_TAKEN: i64 = 6;

impl SharedAdmission {
    /// Judge one call against the cluster's shared state. While the state is down (or this
    /// node's heartbeat lapsed) the answer is immediate: `Refused::Unavailable` with the
    /// fallback to apply. Otherwise one script, bounded by the options' `op_timeout`.
    pub async fn admit(&self, req: &SharedRequest<'_>) -> Result<SharedLease, Refused> {
        let core = &self.core;
        if !self.is_up() {
            return Err(self.answer_down());
        }
        let id = core.next_lease_id();
        // Held until the lease is in the registry: a reconciliation never sees it in Redis
        // without it being in the registry.
        let gate = core.gate.read().await;
        let reply = match core.run_admit(&id, req).await {
            Ok(reply) => reply,
            Err(e) => return Err(self.failed(id, e)),
        };
        let [code, on_trunk, on_line] = reply[..] else {
            let e = ClusterError::Answer(format!("admit: {reply:?}"));
            return Err(self.failed(id, e));
        };
        let counts = (to_u32(on_trunk), to_u32(on_line));
        let c = &core.counters;
        let limit = match code {
            GRANTED => {
                let held = Held {
                    trunk: req.trunk.to_string(),
                    line: req.line.to_string(),
                };
                lock(&core.registry).insert(id.clone(), held.clone());
                drop(gate);
                ClusterCounters::add(&c.granted, 1);
                return Ok(SharedLease::new(core, &self.releases, id, held, counts));
            }
            1 => (Limit::Callee, &c.refused_callee),
            2 => (Limit::Rate, &c.refused_rate),
            3 => (Limit::Trunk, &c.refused_trunk),
            4 => (Limit::Number, &c.refused_number),
            NOT_LIVE => {
                core.mark_down(&ClusterError::NotLive(core.opts.node_id.clone()));
                return Err(self.answer_down());
            }
            ID_TAKEN => {
                // Not this call's lease: never release it. Not Redis's fault either.
                ClusterCounters::add(&c.redis_errors, 1);
                tracing::error!(lease = %id, "lease id already held");
                ClusterCounters::add(&c.answered_down, 1);
                return Err(Refused::Unavailable(core.fallback()));
            }
            other => {
                let e = ClusterError::Answer(format!("admit code {other}"));
                return Err(self.failed(id, e));
            }
        };
        ClusterCounters::add(limit.1, 1);
        Err(Refused::Limit(limit.0))
    }

    fn answer_down(&self) -> Refused {
        ClusterCounters::add(&self.core.counters.answered_down, 1);
        self.core.wake.notify_one();
        Refused::Unavailable(self.core.fallback())
    }

    /// Redis failed or timed out: the script may still have run, so the lease id is released
    /// (idempotent, retried by the worker) and the state is down until the next beat.
    /// A command delayed past both (held in the network) is repaired by the reconciliation
    /// asked for here.
    fn failed(&self, id: String, error: ClusterError) -> Refused {
        ClusterCounters::add(&self.core.counters.redis_errors, 1);
        self.core.reconcile_due.store(true, Ordering::Relaxed);
        if self.releases.send(id).is_err() {
            ClusterCounters::add(&self.core.counters.releases_dropped, 1);
        }
        self.core.mark_down(&error);
        self.answer_down()
    }
}

fn to_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

impl super::Core {
    async fn run_admit(&self, id: &str, req: &SharedRequest<'_>) -> Result<Vec<i64>, ClusterError> {
        let k = &self.keys;
        let callee_key = k.callee(req.trunk, req.callee.map_or("-", |c| c.number));
        let mut inv = self.scripts.admit.prepare_invoke();
        inv.key(&k.nodes)
            .key(&k.leases)
            .key(&k.load)
            .key(k.rate(req.trunk))
            .key(callee_key)
            .arg(&k.base)
            .arg(&self.opts.node_id)
            .arg(millis(self.opts.node_timeout))
            .arg(millis(self.opts.keys_ttl()))
            .arg(id)
            .arg(req.trunk)
            .arg(req.line)
            .arg(req.caps.max_concurrent)
            .arg(req.caps.max_per_number)
            .arg(req.rate.per_sec)
            .arg(req.rate.burst)
            .arg(millis(req.rate.ttl()));
        match &req.callee {
            Some(c) => inv
                .arg(1)
                .arg(millis(c.window))
                .arg(c.per_window)
                .arg(c.daily.unwrap_or(0))
                .arg(c.keep())
                .arg(millis(c.ttl())),
            None => inv.arg(0).arg(0).arg(0).arg(0).arg(1).arg(1),
        };
        self.run_admission(&inv).await
    }
}

/// Milliseconds for a script argument (at least 1: a zero expiry would be an error).
pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_matches_the_single_node_bucket() {
        assert_eq!(RateLimit::from_max_cps(2.5).burst, 3.0);
        assert_eq!(RateLimit::from_max_cps(0.2).burst, 1.0);
        let bad = RateLimit::from_max_cps(f64::NAN);
        assert_eq!((bad.per_sec, bad.burst), (0.0, 1.0));
        assert_eq!(bad.ttl(), Duration::from_secs(86_400));
        assert_eq!(RateLimit::from_max_cps(10.0).ttl(), Duration::from_secs(2));
    }

    #[test]
    fn limits_map_to_the_policy_reasons() {
        assert_eq!(
            Limit::Trunk.reason(false, true),
            RefusalReason::TrunkConcurrency
        );
        assert_eq!(
            Limit::Trunk.reason(true, false),
            RefusalReason::TrunkThrottled
        );
        assert_eq!(
            Limit::Number.reason(false, true),
            RefusalReason::CallerIdThrottled
        );
        assert_eq!(Limit::Rate.reason(true, true), RefusalReason::RateLimited);
        assert_eq!(
            Limit::Callee.reason(false, false),
            RefusalReason::CalleeFrequencyLimit
        );
    }

    #[test]
    fn fallback_shares_never_add_up_beyond_the_cap() {
        let f = Fallback::Local { live_nodes: 3 };
        assert_eq!(f.local_cap(10), Some(3));
        assert_eq!(f.local_cap(2), Some(0));
        assert_eq!(f.local_rate(9.0), Some(3.0));
        assert_eq!(Fallback::Refuse.local_cap(10), None);
    }
}
