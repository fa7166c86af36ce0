//! Gateway-wide media counters for `/metrics`: datagrams relayed per direction, dropped by
//! reason, not RTP, and packets lost (by sequence gaps) in sessions that have ended.
//!
//! The relay threads count every datagram, so the counters are sharded by relay thread: each
//! thread adds to its own cache line only (relaxed atomics, no lock, no line shared between
//! threads), and a read sums the shards. One `MediaCounters` belongs to one gateway; the relay
//! threads serve sessions of any gateway in the process and count into the session's own.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Kind;
use super::Leg;

/// Shards: one per relay thread (`engine` starts at most this many).
pub(crate) const SHARDS: usize = 4;

/// Why a datagram the relay received was not sent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// From a source other than the leg's latched or signalled one.
    StraySource,
    /// No destination known on the other leg yet (no SDP, hold, port 0).
    NoDestination,
    /// The other leg's socket refused the datagram (buffer full, unreachable).
    SendFailed,
    /// Neither RTP nor RTCP (on the RTP port) or not RTCP (on the RTCP port).
    Malformed,
    /// An SRTP/SRTCP leg's packet that failed authentication (or was not SRTP), or could not be
    /// encrypted for an SRTP leg: never relayed nor recorded as if it were clear.
    Srtp,
}

impl DropReason {
    pub const ALL: [DropReason; 5] = [
        DropReason::StraySource,
        DropReason::NoDestination,
        DropReason::SendFailed,
        DropReason::Malformed,
        DropReason::Srtp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::StraySource => "stray_source",
            DropReason::NoDestination => "no_destination",
            DropReason::SendFailed => "send_failed",
            DropReason::Malformed => "malformed",
            DropReason::Srtp => "srtp",
        }
    }

    fn index(self) -> usize {
        match self {
            DropReason::StraySource => 0,
            DropReason::NoDestination => 1,
            DropReason::SendFailed => 2,
            DropReason::Malformed => 3,
            DropReason::Srtp => 4,
        }
    }
}

/// What became of one received datagram (the pump's verdict, counted by the relay thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Sent on to the other leg: `bytes` long; `rtp`: it parsed as RTP (only on RTP sockets).
    Relayed {
        bytes: usize,
        rtp: bool,
    },
    Dropped(DropReason),
    /// Not relayed now: a possible DTMF command's packet held back (sent later, uncounted here)
    /// or a command's (never sent; the leg's `dtmf_withheld` counts it). Not a drop.
    Withheld,
}

/// One relay thread's counters, on a cache line (or two) of their own. Index order:
/// `[kind][from leg]` (kind: RTP 0, RTCP 1; leg: inside 0, outside 1).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    packets: [[AtomicU64; 2]; 2],
    bytes: [[AtomicU64; 2]; 2],
    /// RTP sockets only: relayed datagrams that were not RTP.
    not_rtp: [AtomicU64; 2],
    /// `[kind][reason]`.
    dropped: [[AtomicU64; 5]; 2],
    /// RTP lost per receiving leg, added when a session ends.
    lost: [AtomicU64; 2],
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// See the module docs. Shared (`Arc`) by the gateway's sessions and the metrics handler.
#[derive(Debug, Default)]
pub struct MediaCounters {
    shards: [Shard; SHARDS],
}

/// A direction of relayed media, named by where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub from: Leg,
}

impl Flow {
    /// `inside_to_outside` (PBX to carrier) or `outside_to_inside`.
    pub fn as_str(self) -> &'static str {
        match self.from {
            Leg::Inside => "inside_to_outside",
            Leg::Outside => "outside_to_inside",
        }
    }
}

/// Sums over the shards, for rendering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaTotals {
    /// `[kind][from leg]`.
    pub packets: [[u64; 2]; 2],
    pub bytes: [[u64; 2]; 2],
    pub not_rtp: [u64; 2],
    /// `[kind][DropReason index]`.
    pub dropped: [[u64; 5]; 2],
    /// RTP lost, by the leg that received the stream (from leg).
    pub lost: [u64; 2],
}

impl MediaTotals {
    pub fn rtp_packets(&self, from: Leg) -> u64 {
        self.packets[0][from.index()]
    }

    pub fn rtp_bytes(&self, from: Leg) -> u64 {
        self.bytes[0][from.index()]
    }

    pub fn rtcp_packets(&self, from: Leg) -> u64 {
        self.packets[1][from.index()]
    }

    pub fn rtcp_bytes(&self, from: Leg) -> u64 {
        self.bytes[1][from.index()]
    }

    pub fn not_rtp(&self, from: Leg) -> u64 {
        self.not_rtp[from.index()]
    }

    /// `rtcp`: of the RTCP sockets, else of the RTP ones.
    pub fn dropped(&self, rtcp: bool, reason: DropReason) -> u64 {
        self.dropped[usize::from(rtcp)][reason.index()]
    }

    pub fn lost(&self, from: Leg) -> u64 {
        self.lost[from.index()]
    }
}

impl MediaCounters {
    /// One datagram received by relay thread `thread` on `leg`'s socket of `kind`.
    pub(crate) fn count(&self, thread: usize, kind: Kind, leg: Leg, fate: Fate) {
        let shard = &self.shards[thread % SHARDS];
        let k = kind.index();
        match fate {
            Fate::Relayed { bytes, rtp } => {
                add(&shard.packets[k][leg.index()], 1);
                add(&shard.bytes[k][leg.index()], bytes as u64);
                if kind == Kind::Rtp && !rtp {
                    add(&shard.not_rtp[leg.index()], 1);
                }
            }
            Fate::Dropped(reason) => add(&shard.dropped[k][reason.index()], 1),
            Fate::Withheld => {}
        }
    }

    /// A session ended: the RTP its `leg` received lacked `lost` packets.
    pub(crate) fn count_lost(&self, thread: usize, leg: Leg, lost: u64) {
        if lost > 0 {
            add(&self.shards[thread % SHARDS].lost[leg.index()], lost);
        }
    }

    pub fn totals(&self) -> MediaTotals {
        let mut t = MediaTotals::default();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for s in &self.shards {
            for k in 0..2 {
                for l in 0..2 {
                    t.packets[k][l] += get(&s.packets[k][l]);
                    t.bytes[k][l] += get(&s.bytes[k][l]);
                }
                for r in 0..DropReason::ALL.len() {
                    t.dropped[k][r] += get(&s.dropped[k][r]);
                }
            }
            for l in 0..2 {
                t.not_rtp[l] += get(&s.not_rtp[l]);
                t.lost[l] += get(&s.lost[l]);
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_sum_by_kind_direction_and_reason() {
        let c = MediaCounters::default();
        c.count(
            0,
            Kind::Rtp,
            Leg::Inside,
            Fate::Relayed {
                bytes: 172,
                rtp: true,
            },
        );
        c.count(
            3,
            Kind::Rtp,
            Leg::Inside,
            Fate::Relayed {
                bytes: 20,
                rtp: false,
            },
        );
        c.count(
            1,
            Kind::Rtcp,
            Leg::Outside,
            Fate::Relayed {
                bytes: 52,
                rtp: false,
            },
        );
        c.count(
            2,
            Kind::Rtp,
            Leg::Outside,
            Fate::Dropped(DropReason::StraySource),
        );
        c.count(
            7, // beyond the shards: folded in, not lost
            Kind::Rtcp,
            Leg::Inside,
            Fate::Dropped(DropReason::NoDestination),
        );
        c.count_lost(1, Leg::Outside, 3);
        c.count_lost(2, Leg::Outside, 0);
        let t = c.totals();
        assert_eq!(t.rtp_packets(Leg::Inside), 2);
        assert_eq!(t.rtp_bytes(Leg::Inside), 192);
        assert_eq!(t.rtp_packets(Leg::Outside), 0);
        assert_eq!(t.not_rtp(Leg::Inside), 1);
        assert_eq!(
            t.not_rtp(Leg::Outside),
            0,
            "RTCP is never counted as not RTP"
        );
        assert_eq!(t.rtcp_packets(Leg::Outside), 1);
        assert_eq!(t.rtcp_bytes(Leg::Outside), 52);
        assert_eq!(t.dropped(false, DropReason::StraySource), 1);
        assert_eq!(t.dropped(true, DropReason::NoDestination), 1);
        assert_eq!(t.dropped(false, DropReason::NoDestination), 0);
        assert_eq!(t.lost(Leg::Outside), 3);
        assert_eq!(t.lost(Leg::Inside), 0);
    }
}
