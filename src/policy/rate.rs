//! Per-trunk call-rate limit: a token bucket refilled at `max_cps` tokens per second holding at
//! most `max(1, ceil(max_cps))` tokens, driven by the `now` passed in (no clock of its own).

use chrono::{DateTime, Utc};

/// Float slack so that e.g. 0.1 s at 10 cps counts as one whole token.
const EPSILON: f64 = 1e-9;

#[derive(Debug, Clone)]
pub(super) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    /// Last refill; `None` until first use, when the bucket is full.
    last: Option<DateTime<Utc>>,
}

impl TokenBucket {
    pub(super) fn new(max_cps: f64) -> TokenBucket {
        let (rate, burst) = params(max_cps);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: None,
        }
    }

    /// Apply a changed `max_cps` (live trunk edit) without forgetting recent calls.
    pub(super) fn set_rate(&mut self, max_cps: f64) {
        let (rate, burst) = params(max_cps);
        self.rate = rate;
        self.burst = burst;
        self.tokens = self.tokens.min(burst);
    }

    /// `set_rate` unless the rate is already `max_cps` (checked on every admission: a cluster
    /// node's share changes with the live nodes while the shared state is down).
    pub(super) fn set_rate_if_changed(&mut self, max_cps: f64) {
        if params(max_cps).0 != self.rate {
            self.set_rate(max_cps);
        }
    }

    /// Whether a call may start at `now`. Refills but consumes nothing: the caller calls `take`
    /// only once every other check has passed, so refused attempts never cost a token.
    pub(super) fn ready(&mut self, now: DateTime<Utc>) -> bool {
        self.refill(now);
        self.tokens + EPSILON >= 1.0
    }

    /// Consume one token; only after `ready` returned true for the same `now`.
    pub(super) fn take(&mut self) {
        self.tokens = (self.tokens - 1.0).max(0.0);
    }

    fn refill(&mut self, now: DateTime<Utc>) {
        let Some(last) = self.last else {
            self.last = Some(now);
            return;
        };
        if now <= last {
            // A clock that steps back must not mint tokens nor move `last` backwards.
            return;
        }
        // Microseconds overflow only after ~292k years; treat that as "long enough to refill".
        let secs = (now - last)
            .num_microseconds()
            .map_or(f64::INFINITY, |us| us as f64 / 1e6);
        self.tokens = (self.tokens + secs * self.rate).min(self.burst);
        self.last = Some(now);
    }
}

/// Rate and burst for a configured `max_cps`. Config validation guarantees a positive finite
/// rate; anything else fails closed (one call, then no refill) rather than opening the trunk.
fn params(max_cps: f64) -> (f64, f64) {
    let rate = if max_cps.is_finite() && max_cps > 0.0 {
        max_cps
    } else {
        0.0
    };
    (rate, rate.ceil().max(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
    }

    fn drain(b: &mut TokenBucket, now: DateTime<Utc>) -> u32 {
        let mut n = 0;
        while b.ready(now) {
            b.take();
            n += 1;
        }
        n
    }

    #[test]
    fn burst_is_ceil_of_rate_and_at_least_one() {
        assert_eq!(drain(&mut TokenBucket::new(10.0), t0()), 10);
        assert_eq!(drain(&mut TokenBucket::new(2.5), t0()), 3);
        assert_eq!(drain(&mut TokenBucket::new(0.2), t0()), 1);
    }

    #[test]
    fn refills_at_max_cps() {
        let mut b = TokenBucket::new(10.0);
        assert_eq!(drain(&mut b, t0()), 10);
        assert!(!b.ready(t0() + Duration::milliseconds(99)));
        assert_eq!(drain(&mut b, t0() + Duration::milliseconds(100)), 1);
        assert_eq!(drain(&mut b, t0() + Duration::milliseconds(600)), 5);
        // A long pause refills only up to the burst.
        assert_eq!(drain(&mut b, t0() + Duration::seconds(60)), 10);
    }

    #[test]
    fn slow_rate_refills_over_seconds() {
        let mut b = TokenBucket::new(0.5);
        assert_eq!(drain(&mut b, t0()), 1);
        assert!(!b.ready(t0() + Duration::milliseconds(1999)));
        assert!(b.ready(t0() + Duration::seconds(2)));
    }

    #[test]
    fn clock_stepping_back_mints_nothing() {
        let mut b = TokenBucket::new(1.0);
        assert_eq!(drain(&mut b, t0()), 1);
        assert!(!b.ready(t0() - Duration::seconds(10)));
        assert!(!b.ready(t0() + Duration::milliseconds(500)));
        assert!(b.ready(t0() + Duration::seconds(1)));
    }

    #[test]
    fn lowering_the_rate_clamps_tokens() {
        let mut b = TokenBucket::new(10.0);
        b.set_rate(2.0);
        assert_eq!(drain(&mut b, t0()), 2);
        assert_eq!(drain(&mut b, t0() + Duration::milliseconds(500)), 1);
    }

    #[test]
    fn invalid_rate_fails_closed() {
        let mut b = TokenBucket::new(f64::NAN);
        assert_eq!(drain(&mut b, t0()), 1);
        assert!(!b.ready(t0() + Duration::days(1)));
    }
}
