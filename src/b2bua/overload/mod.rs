//! Overload control: past capacity the gateway refuses only the excess of new INVITEs, cheaply,
//! and keeps carrying what it admitted — `503` with `Retry-After`, reason `overload` on the
//! CDR, before any policy, lease, port or recording is taken; requests within dialogs (ACK,
//! BYE, re-INVITE, CANCEL) and responses are never refused, so calls in progress end cleanly.
//!
//! The signal is the SIP queue's delay, read from the kernel's receive time of each datagram
//! (`sip::transport::udp`), not the CPU: on a box shared with other work a busy CPU says
//! nothing about the gateway, while a datagram that waited says exactly that the gateway reads
//! slower than its peers send (the CoDel idea: judge by sojourn time, not by queue length).
//! Two rules act on it:
//! - `controller`: while the queue stands later than a target (`[sip] target_queue_delay_ms`,
//!   50 ms), new calls are admitted at a rate that keeps it there and the rest are refused;
//!   the limit goes once the load does. Refusing everything while the queue is late instead
//!   makes the gateway swing between admitting a burst and refusing all (half the capacity
//!   at 4× the load, bench/README.md, session 10).
//! - a hard limit (`[sip] max_queue_delay_ms`, 200 ms, under T1): an INVITE read later than
//!   that is always refused. A PBX retransmits an INVITE it has no answer to after T1 (500 ms),
//!   so one read later has a copy already queued behind it: refusing before then keeps
//!   retransmissions from snowballing.
//!
//! The refusal itself (`b2bua::shed`) is made from the datagram before it is parsed, sent
//! without a transaction (`recent` answers its retransmissions, its ACK is known by its tag),
//! and its CDR goes through the batched writer; no per-refusal log line, no SIP trace.

mod controller;
mod recent;

pub use controller::{Controller, Judged, INTERVAL};
pub use recent::{Recent, Verdict};

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::model::Side;

/// Default for `[sip] max_queue_delay_ms`.
pub const DEFAULT_MAX_QUEUE_DELAY: Duration = Duration::from_millis(200);
/// Default for `[sip] target_queue_delay_ms`.
pub const DEFAULT_TARGET_QUEUE_DELAY: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct Overload {
    /// `None`: overload control is off (`max_queue_delay_ms = 0`).
    max_queued: Option<Duration>,
    /// The rate controller and the recent verdicts; `controller` is `None` when
    /// `target_queue_delay_ms = 0` (the hard limit alone).
    state: Mutex<State>,
    /// Keys `recent` and the refusals' To tags (a peer cannot aim at a collision).
    keys: RandomState,
    /// The longest any message waited since the last `read` (µs).
    worst_us: AtomicU64,
    /// Messages (of any kind) that waited longer than the limit.
    late_messages: AtomicU64,
    /// New INVITEs refused `overload`.
    refused: AtomicU64,
    /// Refusals sent again to a retransmitted INVITE (no new attempt).
    repeated: AtomicU64,
}

#[derive(Debug)]
struct State {
    controller: Option<Controller>,
    recent: Recent,
}

/// What to do with a new INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screened {
    /// On to the front end and the transaction layer (admitted now or before).
    Pass,
    /// Refuse it: a new attempt, with its CDR.
    Refuse,
    /// A retransmission of one refused already: the same answer, nothing else.
    RefuseAgain,
}

/// What `/metrics` shows of overload control.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OverloadFigures {
    /// The limit in force (`None`: off).
    pub max_queued: Option<Duration>,
    /// The longest a SIP message waited in the kernel's queue since the previous read.
    pub worst_queued: Duration,
    pub late_messages: u64,
    pub refused: u64,
    /// New calls per second admitted at most now (`None`: no limit).
    pub admit_limit: Option<f64>,
    /// Refusals answered again to retransmissions.
    pub repeated: u64,
}

impl Overload {
    /// `max_queued`: the hard limit (`None` or zero: overload control off); `target`: the
    /// rate controller's target delay (`None` or zero: the hard limit alone).
    pub fn new(max_queued: Option<Duration>, target: Option<Duration>) -> Overload {
        let max_queued = max_queued.filter(|d| !d.is_zero());
        let now = Instant::now();
        let controller = target
            .filter(|d| !d.is_zero() && max_queued.is_some())
            .map(|t| Controller::new(t, now));
        Overload {
            max_queued,
            state: Mutex::new(State {
                controller,
                recent: Recent::new(now),
            }),
            keys: RandomState::new(),
            worst_us: AtomicU64::new(0),
            late_messages: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            repeated: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.max_queued.is_some()
    }

    /// Whether `queued` is past the hard limit (nothing counted).
    pub fn is_late(&self, queued: Duration) -> bool {
        self.max_queued.is_some_and(|max| queued > max)
    }

    /// One datagram of `side` read after waiting `queued`: whether it is past the hard limit.
    pub fn observe(&self, side: Side, queued: Duration) -> bool {
        let us = u64::try_from(queued.as_micros()).unwrap_or(u64::MAX);
        self.worst_us.fetch_max(us, Ordering::Relaxed);
        let late = self.is_late(queued);
        if late {
            self.late_messages.fetch_add(1, Ordering::Relaxed);
        }
        if self.enabled() {
            let mut state = self.state.lock();
            if let Some(c) = &mut state.controller {
                let was = c.limit();
                c.observe(side, queued, Instant::now());
                log_change(was, c.limit());
            }
        }
        late
    }

    /// The key of a new INVITE in `recent`: what stays the same when it is retransmitted.
    pub fn key(&self, side: Side, call_id: &str, cseq: &[u8], top_via: &[u8]) -> u64 {
        self.keys.hash_one((side, call_id, cseq, top_via))
    }

    /// The To tag of the refusal of the INVITE with `key` (the same for its retransmissions).
    pub fn refusal_tag(key: u64) -> String {
        format!("{}{key:016x}", crate::sip::shed::SHED_TAG_PREFIX)
    }

    /// A new UDP INVITE, before it is parsed: `late` if it was read past the hard limit.
    pub fn screen(&self, key: u64, late: bool) -> Screened {
        if !self.enabled() {
            return Screened::Pass;
        }
        let now = Instant::now();
        let mut state = self.state.lock();
        match state.recent.get(key) {
            Some(Verdict::Admitted) => return Screened::Pass,
            Some(Verdict::Refused) => {
                self.repeated.fetch_add(1, Ordering::Relaxed);
                return Screened::RefuseAgain;
            }
            None => {}
        }
        let admit = Self::judge_locked(&mut state, late, now);
        let verdict = if admit {
            Verdict::Admitted
        } else {
            Verdict::Refused
        };
        state.recent.insert(key, verdict, now);
        if admit {
            Screened::Pass
        } else {
            Screened::Refuse
        }
    }

    /// A new INVITE over a stream (TCP, TLS: no queue delay of its own, but the rate applies):
    /// whether it may go on.
    pub fn judge(&self) -> bool {
        if !self.enabled() {
            return true;
        }
        Self::judge_locked(&mut self.state.lock(), false, Instant::now())
    }

    fn judge_locked(state: &mut State, late: bool, now: Instant) -> bool {
        let Some(c) = &mut state.controller else {
            return !late;
        };
        let was = c.limit();
        let admit = if late {
            c.count_refused(now);
            false
        } else {
            c.judge(now) == Judged::Admit
        };
        log_change(was, c.limit());
        admit
    }

    /// A new INVITE refused `overload`.
    pub fn count_refusal(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The figures; the worst delay starts again from zero (each scrape sees its own interval).
    pub fn read(&self) -> OverloadFigures {
        let admit_limit = self
            .state
            .lock()
            .controller
            .as_ref()
            .and_then(Controller::limit);
        OverloadFigures {
            max_queued: self.max_queued,
            worst_queued: Duration::from_micros(self.worst_us.swap(0, Ordering::Relaxed)),
            late_messages: self.late_messages.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            admit_limit,
            repeated: self.repeated.load(Ordering::Relaxed),
        }
    }
}

/// The limit set or lifted: one log line per change of state, not per refusal.
fn log_change(was: Option<f64>, now: Option<f64>) {
    match (was, now) {
        (None, Some(rate)) => {
            tracing::warn!(
                admit_per_sec = rate.round(),
                "SIP queue standing late: new calls limited, the excess refused 503 overload"
            )
        }
        (Some(_), None) => tracing::info!("SIP queue calm: new calls no longer limited"),
        _ => {}
    }
}

impl Default for Overload {
    fn default() -> Overload {
        Overload::new(
            Some(DEFAULT_MAX_QUEUE_DELAY),
            Some(DEFAULT_TARGET_QUEUE_DELAY),
        )
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
