//! What a pump hands back: its counts as packets went, and the figures of its parts (meter,
//! latch, tap, command gate), merged into the session's per-leg figures for the CDR.

use std::net::SocketAddr;

use super::pump::Kind;
use super::relay::{LegStats, SessionStats};
use super::stats::{Counters, StreamStats};
use super::Leg;

/// What a pump counts as packets go (`PumpReport` adds what its parts measured).
#[derive(Debug, Default, Clone)]
pub(crate) struct Counts {
    pub(crate) received: Counters,
    pub(crate) sent: Counters,
    pub(crate) stray: u64,
    pub(crate) dtmf_digits: u64,
    pub(crate) dtmf_dropped: u64,
    /// Payload type of the last RTP packet that was not an RFC 4733 event.
    pub(crate) payload_type: Option<u8>,
    pub(crate) paused_packets: u64,
    pub(crate) srtp_rejected: u64,
}

/// What a pump hands back when it ends (or, as a snapshot, while it runs).
#[derive(Debug, Default, Clone)]
pub(crate) struct PumpReport {
    pub(crate) stream: StreamStats,
    pub(crate) latched: Option<SocketAddr>,
    pub(crate) tap_dropped: u64,
    pub(crate) dtmf_withheld: u64,
    pub(crate) counts: Counts,
}

impl PumpReport {
    /// RTP packets missing from what this pump received (by sequence numbers).
    pub(crate) fn lost(&self) -> u64 {
        self.stream.lost
    }

    /// A pump of leg L measured what L's peer sent, and counted what it sent to the other peer.
    pub(crate) fn merge_into(self, stats: &mut SessionStats, leg: Leg, kind: Kind) {
        let counts = self.counts;
        let own = leg_mut(stats, leg);
        own.stray += counts.stray;
        match kind {
            Kind::Rtp => {
                own.rtp_in = self.stream;
                own.latched = self.latched;
                own.dtmf_digits = counts.dtmf_digits;
                own.dtmf_dropped = counts.dtmf_dropped;
                own.tap_dropped = self.tap_dropped;
                own.payload_type = counts.payload_type;
                own.dtmf_withheld = self.dtmf_withheld;
                own.paused_packets = counts.paused_packets;
                own.srtp_rejected += counts.srtp_rejected;
                leg_mut(stats, leg.other()).rtp_out = counts.sent;
            }
            Kind::Rtcp => {
                own.srtp_rejected += counts.srtp_rejected;
                own.rtcp_in = counts.received;
                leg_mut(stats, leg.other()).rtcp_out = counts.sent;
            }
        }
    }
}

fn leg_mut(stats: &mut SessionStats, leg: Leg) -> &mut LegStats {
    match leg {
        Leg::Inside => &mut stats.inside,
        Leg::Outside => &mut stats.outside,
    }
}
