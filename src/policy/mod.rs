//! Admission decisions: trunk peer, caller-ID authorization, concurrency leases, rate limits,
//! calling hours, blocks. A refusal is a value carrying its reason and SIP response.
//!
//! Pure logic: no I/O, no clock (every time-dependent call takes `now`).
//!
//! Rules and the choices behind them (see `admit` for the order of checks):
//! - **Outbound caller ID.** The From number must be one of the trunk's `numbers`, and so must
//!   the P-Asserted-Identity when present → `403 Caller ID Not Authorized`. A presented number
//!   that is not ours is refused even if privacy is asked for: that is spoofing, not anonymity.
//! - **Anonymous outbound.** Anonymous means: From is `anonymous@…`, `…@anonymous.invalid` or no
//!   phone number, or the Privacy header carries `id`, `user` or `header` (each withholds the
//!   caller's identity; `session`, `none`, `critical` do not) → `403 Anonymous Caller ID Not
//!   Allowed` unless `allow_anonymous`. With `allow_anonymous` an authorized P-Asserted-Identity
//!   is still required (the carrier must know which line calls) → else `403 Caller ID Not
//!   Authorized`.
//! - **Line.** The number a call's per-number slot counts on: outbound the From number (or the
//!   P-Asserted-Identity when From is anonymous), inbound the called trunk number. Both
//!   directions share one per-number map and one trunk count: they use the same lines.
//! - **Callee not a number** → `invalid_number`: `484 Address Incomplete` when the user part is
//!   a digit string too short to be a number (RFC 3261 §21.4.22, overlap dialling: more digits
//!   may follow), `404 Not Found` otherwise (§21.4.4: the number definitely does not exist).
//! - **Inbound.** The called number must be the trunk's → else `404 Not Found`
//!   (`unknown_number`). The remote caller is a customer, not authorized against the list, and
//!   may be anonymous; blocked numbers still apply to it.
//! - **Calling hours** restrict outbound calls only: they exist so the call center does not call
//!   people at night; refusing an inbound call would only drop a customer who chose to call.
//! - **Rate.** One token bucket per trunk shared by both directions: the carrier counts call
//!   attempts on the trunk, and an inbound surge loads the same PBX lines. Only admitted calls
//!   take a token, so a burst of refused attempts cannot starve admissible ones.
//! - **503 Retry-After**: 1 s for rate (the bucket refills within it), `retry_after_secs` for
//!   concurrency (default 5; set from `sip.retry_after_secs`).
//! - **Enforcement** (`restrictions.rs`): a suspended trunk refuses every call `403 Trunk
//!   Suspended`; a suspended caller ID refuses outbound calls presenting it `403 Caller ID
//!   Suspended`; a throttle cuts the trunk's or the caller ID's concurrency cap to
//!   `throttle_share` (≥ 1) with their own 503 reasons. Checked after calling hours, before the
//!   callee limit and the lease.
//! - **Callee frequency** (`callee.rs`): outbound calls to one number are limited per trunk by
//!   the `over_frequent_callee` rule's limits → `480 Callee Frequency Limit`. Only admitted
//!   calls count; the reservation is undone when the lease is then refused.
//! - **Registration** (`registrations.rs`): a trunk with `register = true` refuses outbound
//!   calls `503 Trunk Not Registered` while it holds no unexpired binding with its registrar.
//!   Inbound calls are not refused: the carrier reaching us proves the path works, and dropping
//!   a customer who called gains nothing. Checked last among the screens.
//! - **Live edits.** `replace_trunks` keeps each remaining trunk's counters and rate bucket;
//!   lowered caps refuse new calls until the live ones end. Leases of a removed trunk release
//!   into its retired counters, which a trunk re-added under that name picks up again.

mod admit;
mod callee;
mod caller_id;
mod decision;
mod lease;
mod number;
mod rate;
mod registrations;
mod restrictions;
mod shared;
mod trunks;

#[cfg(test)]
pub(crate) mod tests;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::config::TrunkConfig;

pub use callee::MAX_CALLEES;
pub use decision::{Admission, AdmissionLease, AdmissionRequest, Decision, Refusal};
pub use lease::{Lease, TrunkLoad};
pub use number::number_owners;
pub use registrations::{RegistrationState, Registrations};
pub use restrictions::{InForce, Restrictions};
pub use trunks::TrunkRef;

use trunks::Snapshot;

/// Default Retry-After, in seconds, on concurrency refusals.
pub const DEFAULT_RETRY_AFTER_SECS: u32 = 5;

/// The admission policy for all trunks. `Send + Sync`; share it as `Arc<Policy>`.
///
/// Reads take a short read lock to clone the current trunk table (an `Arc`); admissions then
/// lock only their own trunk's counters, briefly, never across a call.
#[derive(Debug)]
pub struct Policy {
    table: RwLock<Arc<Snapshot>>,
    /// Live leases on all trunks, including trunks removed while their calls go on.
    total: Arc<AtomicU64>,
    retry_after_secs: AtomicU32,
    /// Suspensions and throttles in force, applied from the monitor's enforcement actions.
    restrictions: Arc<Restrictions>,
    /// Trunks' registrations with their carriers, kept by `trunks::registration`.
    registrations: Arc<Registrations>,
}

impl Policy {
    pub fn new(trunks: &[TrunkConfig]) -> Policy {
        Policy {
            table: RwLock::new(Arc::new(Snapshot::build(trunks, &Snapshot::default()))),
            total: Arc::new(AtomicU64::new(0)),
            retry_after_secs: AtomicU32::new(DEFAULT_RETRY_AFTER_SECS),
            restrictions: Arc::new(Restrictions::new()),
            registrations: Arc::default(),
        }
    }

    /// The trunks' registrations: written by the registration client, read by admission (a
    /// trunk with `register = true` and no binding refuses outbound calls).
    pub fn registrations(&self) -> &Arc<Registrations> {
        &self.registrations
    }

    /// The steps in force that admission applies; the monitor's task applies its
    /// `EnforcementAction`s here (`Restrictions::apply`), effective from the next call.
    pub fn restrictions(&self) -> &Arc<Restrictions> {
        &self.restrictions
    }

    /// Called numbers evicted from a trunk's callee-frequency memory (its count restarted).
    pub fn callees_evicted(&self, trunk: &str) -> Option<u64> {
        self.snapshot()
            .get(trunk)
            .map(|t| t.state.callees.evicted())
    }

    /// Swap in a new trunk list (live edit). Trunks that stay (same name) keep their live
    /// counters and rate bucket; their new caps apply to calls admitted from now on.
    pub fn replace_trunks(&self, trunks: &[TrunkConfig]) {
        // The write lock serializes concurrent replaces, so none loses another's counters.
        let mut table = self.table.write();
        let next = Snapshot::build(trunks, &table);
        *table = Arc::new(next);
    }

    /// Retry-After seconds on concurrency refusals (`sip.retry_after_secs`).
    pub fn set_retry_after_secs(&self, secs: u32) {
        self.retry_after_secs.store(secs, Ordering::Relaxed);
    }

    pub fn retry_after_secs(&self) -> u32 {
        self.retry_after_secs.load(Ordering::Relaxed)
    }

    /// Live load of a current trunk, for reconciliation and the API.
    pub fn live(&self, trunk: &str) -> Option<TrunkLoad> {
        self.snapshot().get(trunk).map(|t| t.state.load())
    }

    /// Leases alive on all trunks; reconciliation compares it with the live-call registry.
    pub fn total_active(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.table.read())
    }
}
