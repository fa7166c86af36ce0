//! Concurrency slots as leases: one per live call, counting on its trunk and on its line's
//! number until dropped. The counters live in a per-trunk `TrunkState` that survives
//! `replace_trunks`, so a lease taken before an edit releases into the counters seen after it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use super::callee::CalleeLimiter;
use super::rate::TokenBucket;

/// Live load of one trunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrunkLoad {
    /// Calls holding a lease on the trunk, both directions.
    pub active: u32,
    /// Calls per line number (outbound caller ID / inbound called number); no zero entries.
    pub per_number: BTreeMap<String, u32>,
}

/// Counters and rate bucket of one trunk, shared by the policy and by every lease on it.
#[derive(Debug)]
pub(super) struct TrunkState {
    name: String,
    inner: Mutex<Counts>,
    /// Recent calls per called number (its own lock: admission never holds both).
    pub(super) callees: CalleeLimiter,
}

#[derive(Debug)]
struct Counts {
    load: TrunkLoad,
    bucket: TokenBucket,
}

/// Why `try_lease` said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Busy {
    Rate,
    Trunk,
    Number,
}

/// The caps to apply, read from the trunk's current config at admission time.
#[derive(Debug, Clone, Copy)]
pub(super) struct Caps {
    pub max_concurrent: u32,
    pub max_per_number: u32,
    /// The call rate the trunk's bucket refills at (a cluster node's share while the shared
    /// state is down, the trunk's `max_cps` otherwise).
    pub max_cps: f64,
}

impl TrunkState {
    pub(super) fn new(name: &str, max_cps: f64) -> TrunkState {
        TrunkState {
            name: name.to_string(),
            inner: Mutex::new(Counts {
                load: TrunkLoad::default(),
                bucket: TokenBucket::new(max_cps),
            }),
            callees: CalleeLimiter::default(),
        }
    }

    pub(super) fn set_rate(&self, max_cps: f64) {
        self.inner.lock().bucket.set_rate(max_cps);
    }

    pub(super) fn load(&self) -> TrunkLoad {
        self.inner.lock().load.clone()
    }

    /// Rate check, then trunk cap, then number cap, all under one lock so that two racing calls
    /// cannot both take the last slot. Only a granted lease consumes a token.
    pub(super) fn try_lease(
        self: &Arc<Self>,
        now: DateTime<Utc>,
        caps: Caps,
        number: &str,
        total: &Arc<AtomicU64>,
    ) -> Result<Lease, Busy> {
        let mut c = self.inner.lock();
        c.bucket.set_rate_if_changed(caps.max_cps);
        if !c.bucket.ready(now) {
            return Err(Busy::Rate);
        }
        if c.load.active >= caps.max_concurrent {
            return Err(Busy::Trunk);
        }
        let on_number = c.load.per_number.get(number).copied().unwrap_or(0);
        if on_number >= caps.max_per_number {
            return Err(Busy::Number);
        }
        c.bucket.take();
        Ok(self.count_in(&mut c, number, total))
    }

    /// A lease that only counts the call on this node (no cap, no token): a cluster node's
    /// calls admitted by the shared state, so that its own load, `/metrics` and the drift
    /// check see them.
    pub(super) fn count(self: &Arc<Self>, number: &str, total: &Arc<AtomicU64>) -> Lease {
        let mut c = self.inner.lock();
        self.count_in(&mut c, number, total)
    }

    fn count_in(self: &Arc<Self>, c: &mut Counts, number: &str, total: &Arc<AtomicU64>) -> Lease {
        let on_number = c.load.per_number.get(number).copied().unwrap_or(0) + 1;
        c.load.active += 1;
        c.load.per_number.insert(number.to_string(), on_number);
        total.fetch_add(1, Ordering::Relaxed);
        Lease {
            state: Arc::clone(self),
            number: number.to_string(),
            total: Arc::clone(total),
            trunk_active: c.load.active,
            number_active: on_number,
        }
    }

    fn release(&self, number: &str) {
        let mut c = self.inner.lock();
        c.load.active = c.load.active.saturating_sub(1);
        if let Some(n) = c.load.per_number.get_mut(number) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                // Drop idle numbers so the map stays as small as the set of busy lines.
                c.load.per_number.remove(number);
            }
        }
    }
}

/// One concurrency slot on a trunk and on a line number, held by a live call.
///
/// Not `Clone`, and released only by `Drop`: each lease releases exactly once, whatever ends the
/// call (BYE, CANCEL, failure, timeout, panic unwinding, or the call object simply dropped).
#[must_use = "dropping the lease immediately frees the slot"]
pub struct Lease {
    state: Arc<TrunkState>,
    number: String,
    total: Arc<AtomicU64>,
    trunk_active: u32,
    number_active: u32,
}

impl Lease {
    /// Calls on the trunk right after this lease was granted (itself counted): the CDR keeps
    /// it for the peak-concurrency KPI.
    pub fn trunk_active_at_grant(&self) -> u32 {
        self.trunk_active
    }

    /// Calls on this lease's line number right after it was granted (itself counted).
    pub fn number_active_at_grant(&self) -> u32 {
        self.number_active
    }

    /// Name of the trunk the slot is on (as it was when the lease was granted).
    pub fn trunk(&self) -> &str {
        &self.state.name
    }

    /// The line number the slot counts on.
    pub fn number(&self) -> &str {
        &self.number
    }

    /// Free the slot now; the same as dropping the lease, spelled out for call sites.
    pub fn release(self) {}
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.state.release(&self.number);
        self.total.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("trunk", &self.state.name)
            .field("number", &self.number)
            .finish()
    }
}
