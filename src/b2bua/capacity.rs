//! How many calls the process's file descriptors allow, and the check that refuses a new call
//! beyond it (`descriptor_limit`, 503 with Retry-After) before any port, lease or file is
//! taken. The budget is computed once at start (`app::descriptors`), after the soft
//! `RLIMIT_NOFILE` was raised to the hard one.
//!
//! Why: past the limit every `socket()` and `open()` fails with EMFILE, so calls would be
//! admitted and then lose their media or their recording (at 3,000 calls under a 20,000 limit,
//! 160 refused `recording_io_error` and 218 answered with a failed recording). A refusal at the
//! door is clean; a call half set up is not.

use super::Ctx;

/// Descriptors a call holds at most: an RTP and an RTCP socket per leg, the WAV file and the
/// pcap beside it (kept when a codec cannot be decoded). The WAV is one descriptor
/// (shared by `recording::wav::WavWriter` and the recorder; it was two, one more than counted
/// here).
pub const DESCRIPTORS_PER_CALL: u64 = 4 + 2;

/// The descriptors kept for everything but calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserve {
    /// The process itself: standard streams, the runtime's and the relay threads' epoll and
    /// eventfd, the SIP UDP sockets and TCP listeners, the API listener, the health watcher's
    /// probe, the retention purge, the repair at start.
    pub base: u64,
    /// The database pool: a connection holds the database file and its WAL and shared-memory
    /// files.
    pub database: u64,
    /// API connections at most, each with a recording file it may be sending.
    pub api: u64,
    /// The CDR spool's files.
    pub spool: u64,
    /// SIP TCP connections at most (both interfaces).
    pub sip_tcp: u64,
}

impl Reserve {
    pub fn total(&self) -> u64 {
        self.base + self.database + self.api + self.spool + self.sip_tcp
    }
}

/// The calls the descriptor budget allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallCapacity {
    /// The soft `RLIMIT_NOFILE` in force (`None`: unlimited).
    pub open_files: Option<u64>,
    pub reserve: u64,
    pub per_call: u64,
    /// Calls admitted at most at once (`usize::MAX` without a limit).
    pub calls: usize,
}

impl CallCapacity {
    /// `(limit − reserve) / per call`, none when the reserve takes it all.
    pub fn for_limit(open_files: Option<u64>, reserve: &Reserve) -> CallCapacity {
        let reserve = reserve.total();
        let calls = match open_files {
            None => usize::MAX,
            Some(limit) => {
                let calls = limit.saturating_sub(reserve) / DESCRIPTORS_PER_CALL;
                usize::try_from(calls).unwrap_or(usize::MAX)
            }
        };
        CallCapacity {
            open_files,
            reserve,
            per_call: DESCRIPTORS_PER_CALL,
            calls,
        }
    }

    /// No limit at all (a gateway built without a budget, e.g. by a test).
    pub fn unlimited() -> CallCapacity {
        CallCapacity {
            open_files: None,
            reserve: 0,
            per_call: DESCRIPTORS_PER_CALL,
            calls: usize::MAX,
        }
    }
}

impl Ctx {
    /// Does the gateway carry as many calls as its descriptors allow? Read before the policy
    /// and the media: a refused call takes nothing. The registry counts every call whose task
    /// runs (until its media, recording and CDR are closed), so a call's descriptors are
    /// counted until they are given back; calls admitted on several workers at the same instant
    /// may overshoot by a few, which the reserve absorbs.
    pub(crate) fn over_capacity(&self) -> bool {
        self.registry.len() >= self.settings.capacity.calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_what_the_reserve_leaves_per_call() {
        let reserve = Reserve {
            base: 100,
            database: 24,
            api: 512,
            spool: 4,
            sip_tcp: 2048,
        };
        assert_eq!(reserve.total(), 2688);
        let c = CallCapacity::for_limit(Some(20_000), &reserve);
        assert_eq!(c.calls, (20_000 - 2688) / 6);
        assert_eq!(CallCapacity::for_limit(Some(1024), &reserve).calls, 0);
        assert_eq!(CallCapacity::for_limit(None, &reserve).calls, usize::MAX);
    }
}
