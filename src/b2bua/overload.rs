//! Overload control: while the SIP queue is late, new INVITEs are refused at once — `503` with
//! `Retry-After`, reason `overload` on the CDR — before any policy, lease, port or recording is
//! taken; requests within dialogs (ACK, BYE, re-INVITE, CANCEL) and responses are never refused,
//! so calls in progress keep working and end cleanly.
//!
//! Why the queue's delay, read from the kernel's receive time of each datagram
//! (`sip::transport::udp`), and not the CPU: on a box shared with other work a busy CPU says
//! nothing about the gateway, while a datagram that waited says exactly that the gateway reads
//! slower than its peers send (the CoDel idea: judge by sojourn time, not by queue length).
//! Why a limit well under T1 (200 ms against 500 ms): a PBX retransmits an INVITE it has no
//! answer to after T1, so an INVITE read later than that has a copy already queued behind it;
//! refusing before then keeps retransmissions from snowballing, and a refusal costs a fraction
//! of a call (one response and a CDR, nothing else).
//! When the queue drains, the next INVITE is read young and admitted: recovery is immediate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Default for `[sip] max_queue_delay_ms`.
pub const DEFAULT_MAX_QUEUE_DELAY: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub struct Overload {
    /// `None`: overload control is off (`max_queue_delay_ms = 0`).
    max_queued: Option<Duration>,
    /// The longest any message waited since the last `read` (µs).
    worst_us: AtomicU64,
    /// Messages (of any kind) that waited longer than the limit.
    late_messages: AtomicU64,
    /// New INVITEs refused `overload`.
    refused: AtomicU64,
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
}

impl Overload {
    pub fn new(max_queued: Option<Duration>) -> Overload {
        Overload {
            max_queued: max_queued.filter(|d| !d.is_zero()),
            worst_us: AtomicU64::new(0),
            late_messages: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// One message read after waiting `queued`: whether the queue is late (past the limit).
    pub fn observe(&self, queued: Duration) -> bool {
        let us = u64::try_from(queued.as_micros()).unwrap_or(u64::MAX);
        self.worst_us.fetch_max(us, Ordering::Relaxed);
        let late = self.max_queued.is_some_and(|max| queued > max);
        if late {
            self.late_messages.fetch_add(1, Ordering::Relaxed);
        }
        late
    }

    /// A new INVITE refused because the queue was late.
    pub fn count_refusal(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The figures; the worst delay starts again from zero (each scrape sees its own interval).
    pub fn read(&self) -> OverloadFigures {
        OverloadFigures {
            max_queued: self.max_queued,
            worst_queued: Duration::from_micros(self.worst_us.swap(0, Ordering::Relaxed)),
            late_messages: self.late_messages.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

impl Default for Overload {
    fn default() -> Overload {
        Overload::new(Some(DEFAULT_MAX_QUEUE_DELAY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_only_past_the_limit_and_never_when_off() {
        let o = Overload::new(Some(Duration::from_millis(200)));
        assert!(!o.observe(Duration::from_millis(200)));
        assert!(o.observe(Duration::from_millis(201)));
        assert!(!o.observe(Duration::ZERO));
        let off = Overload::new(Some(Duration::ZERO));
        assert!(!off.observe(Duration::from_secs(30)));
        assert_eq!(off.read().max_queued, None);
        assert_eq!(off.read().late_messages, 0);
    }

    #[test]
    fn the_worst_delay_is_per_read_and_the_counts_add_up() {
        let o = Overload::new(Some(Duration::from_millis(100)));
        o.observe(Duration::from_millis(30));
        o.observe(Duration::from_millis(150));
        o.observe(Duration::from_millis(20));
        o.count_refusal();
        let first = o.read();
        assert_eq!(first.worst_queued, Duration::from_millis(150));
        assert_eq!((first.late_messages, first.refused), (1, 1));
        o.observe(Duration::from_millis(5));
        let second = o.read();
        assert_eq!(second.worst_queued, Duration::from_millis(5));
        assert_eq!((second.late_messages, second.refused), (1, 1));
    }
}
