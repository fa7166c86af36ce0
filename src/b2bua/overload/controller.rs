//! The admission-rate controller: while the SIP queue stands late, new INVITEs are admitted at
//! a rate that keeps the queue near a target delay, and only the excess is refused.
//!
//! Pure: time comes in as an argument (like `Policy::admit(now)`), so a test can drive it with
//! any delay history. The signal is the *smallest* queue delay of each 100 ms interval, per
//! side (the larger side's counts): a burst that drains within an interval leaves a small
//! minimum and is ignored, a standing queue does not (CoDel's idea). The rate:
//! - unlimited until an interval's minimum exceeds the target; then limited to the rate admitted
//!   in that interval or, if higher, the rate admitted over about the last second (what the
//!   gateway was demonstrably reading): after a stall the interval alone says little — a
//!   gateway carrying 500 calls/s that read few of them in a stalled interval started its limit
//!   at 70 calls/s and refused a tenth of its calls while it climbed back;
//! - above the target, cut in proportion (`target / delay`, 2–10 % per interval) while the
//!   delay does not fall, held while it falls (cutting while the queue already drains would
//!   overshoot: the queue takes a while to drain);
//! - at or below the target and the limit biting, raised by up to 5 % per interval, the more
//!   the emptier the queue (gently: the delay answers a raise an interval or two late, and
//!   bolder steps swing between an empty queue and the hard limit, as the tests' simulation
//!   showed);
//! - released after `RELEASE_AFTER` calm intervals (at or below the target, nothing refused):
//!   the limit stays only while the load stays.
//!
//! Admission takes a token from a bucket refilled at the rate, one interval's worth deep, so a
//! short burst within the rate passes whole.

use std::time::{Duration, Instant};

use crate::model::Side;

/// How often the rate is adjusted, and the window of each minimum.
pub const INTERVAL: Duration = Duration::from_millis(100);
/// Calm intervals in a row before the limit is dropped.
pub const RELEASE_AFTER: u32 = 5;
/// The lowest limit (calls/s): a gateway stalled for a while still admits a few calls, and
/// their fate tells the controller how far it may raise the rate again.
pub const FLOOR: f64 = 10.0;
/// Largest raise per interval (an empty queue); smallest and largest cut per interval.
const MAX_RAISE: f64 = 0.05;
/// The weight of an unlimited interval in `recent`.
const RECENT_WEIGHT: f64 = 0.25;
const MIN_CUT: f64 = 0.02;
const MAX_CUT: f64 = 0.10;

#[derive(Debug, Clone)]
pub struct Controller {
    target: Duration,
    /// The interval under way: since when, the smallest delay seen on each side, and the
    /// INVITEs admitted and refused in it.
    start: Instant,
    min: [Option<Duration>; 2],
    admitted: u32,
    refused: u32,
    /// The previous interval's signal: whether the queue is falling.
    last_delay: Duration,
    /// New calls per second; `None`: not limited.
    limit: Option<f64>,
    /// The rate admitted while unlimited, averaged over the intervals (each weighs a quarter:
    /// about the last second): where a limit starts at the least.
    recent: f64,
    tokens: f64,
    refilled: Instant,
    calm: u32,
}

/// Whether a new INVITE may go on, for this controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judged {
    Admit,
    /// Over the admitted rate: refuse it (`overload`).
    Shed,
}

impl Controller {
    /// A controller aiming at `target` queue delay, starting at `now` unlimited.
    pub fn new(target: Duration, now: Instant) -> Controller {
        Controller {
            target,
            start: now,
            min: [None, None],
            admitted: 0,
            refused: 0,
            last_delay: Duration::ZERO,
            limit: None,
            recent: 0.0,
            tokens: 0.0,
            refilled: now,
            calm: 0,
        }
    }

    /// A message of `side` read at `now` after waiting `queued` in its socket.
    pub fn observe(&mut self, side: Side, queued: Duration, now: Instant) {
        self.roll(now);
        let slot = &mut self.min[side_index(side)];
        *slot = Some(slot.map_or(queued, |m| m.min(queued)));
    }

    /// A new INVITE read at `now`: admitted within the rate, or shed.
    pub fn judge(&mut self, now: Instant) -> Judged {
        self.roll(now);
        let Some(rate) = self.limit else {
            self.admitted += 1;
            return Judged::Admit;
        };
        let since = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + since * rate).min(depth(rate));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.admitted += 1;
            Judged::Admit
        } else {
            self.refused += 1;
            Judged::Shed
        }
    }

    /// A new INVITE refused for another overload reason (read past the hard limit): it counts
    /// as the limit biting.
    pub fn count_refused(&mut self, now: Instant) {
        self.roll(now);
        self.refused += 1;
    }

    /// The admitted rate in force (`None`: not limited).
    pub fn limit(&self) -> Option<f64> {
        self.limit
    }

    /// Close the interval if it is over, and adjust the rate from what it saw.
    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed < INTERVAL {
            return;
        }
        // The larger side's minimum: either socket standing late is overload. An idle side
        // (nothing read) says nothing; nothing read at all is no queue.
        let delay = self.min.iter().flatten().max().copied().unwrap_or_default();
        let above = delay > self.target;
        let admitted_rate = f64::from(self.admitted) / elapsed.as_secs_f64();
        self.limit = match self.limit {
            None if above => {
                self.tokens = 0.0;
                self.refilled = now;
                self.calm = 0;
                Some(admitted_rate.max(self.recent).max(FLOOR))
            }
            None => {
                self.recent += RECENT_WEIGHT * (admitted_rate - self.recent);
                None
            }
            Some(rate) if above => {
                self.calm = 0;
                if delay >= self.last_delay {
                    let cut = (1.0 - self.target.as_secs_f64() / delay.as_secs_f64())
                        .clamp(MIN_CUT, MAX_CUT);
                    Some((rate * (1.0 - cut)).max(FLOOR))
                } else {
                    Some(rate)
                }
            }
            Some(rate) if self.refused == 0 => {
                // Intervals with no message at all (nothing rolled them) were calm too.
                let quiet = elapsed.as_nanos() / INTERVAL.as_nanos();
                self.calm = self
                    .calm
                    .saturating_add(u32::try_from(quiet).unwrap_or(u32::MAX));
                (self.calm < RELEASE_AFTER).then_some(rate)
            }
            Some(rate) => {
                self.calm = 0;
                let headroom = 1.0 - delay.as_secs_f64() / self.target.as_secs_f64();
                Some(rate * (1.0 + MAX_RAISE * headroom.clamp(0.0, 1.0)))
            }
        };
        self.last_delay = delay;
        self.start = now;
        self.min = [None, None];
        self.admitted = 0;
        self.refused = 0;
    }
}

/// The bucket's depth: one interval's worth of calls, at least one.
fn depth(rate: f64) -> f64 {
    (rate * INTERVAL.as_secs_f64()).max(1.0)
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Inside => 0,
        Side::Outside => 1,
    }
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
