//! Media anchoring: RTP/RTCP port allocation, SDP rewrite, the relay with symmetric latching,
//! per-leg quality stats, DTMF reports and the media timeout. Knows nothing of SIP: the B2BUA
//! feeds it the SDP bodies it sees and acts on the events it reports.
//!
//! Legs: `Inside` faces the PBX (bound on `[media] inside_address`), `Outside` the carrier
//! (`outside_address`). Which one is the B2BUA's leg A depends on the call's direction.
//!
//! How a call uses it:
//! 1. At the INVITE: `PortAllocator::allocate` a pair per leg (failure → 503), then
//!    `MediaSession::start(inside, outside, config)`; keep one `sdp::Origin` per leg.
//! 2. For every SDP a peer sends (offer or answer, INVITE, 18x, 200, ACK, re-INVITE, UPDATE):
//!    `sdp::parse`, then `session.update_remote(leg_of_that_peer,
//!    RemoteMedia::from_sdp(&sdp.audio()?))`, and forward
//!    `sdp.anchor(&session.anchor(other_leg), &mut origin_of_other_leg).sdp.to_bytes()` to the
//!    other peer.
//! 3. On answer: `set_timeout` (if it was started without one, since ringing has no RTP) and
//!    `set_tap` for the recorder.
//! 4. Act on `MediaEvent`s (`Timeout` → BYE both legs, `media_timeout`; `Dtmf` → log against
//!    the call; `DtmfCommand` → pause or resume the recording, `set_dtmf_commands` having named
//!    the trunk's sequences; `set_recording_paused` stops the tap's copies while paused).
//! 5. At the end, whatever it is: `close().await` for the CDR figures (dropping the session also
//!    stops it and frees its ports).

pub mod counters;
pub mod dtmf;
pub mod dtmf_command;
mod egress;
mod engine;
pub mod latch;
pub mod live;
mod peer_dest;
pub mod ports;
mod pump;
mod pump_report;
pub mod quality;
pub mod relay;
pub mod rtp;
pub mod sdes;
pub mod sdp;
pub mod srtp;
pub mod stats;
mod supervisor;
pub mod tap;

#[cfg(test)]
mod relay_tests;
#[cfg(test)]
mod stats_tests;

use std::net::IpAddr;

use serde::Serialize;

pub use counters::{DropReason, MediaCounters, MediaTotals};
pub use dtmf_command::{DtmfCommand, DtmfCommands};
pub use engine::{start_relay, MediaEngine};
pub use live::{LiveLeg, LiveMedia, MediaProbe};
pub use ports::{PortAllocator, PortPair};
pub(crate) use pump::Kind;
pub use relay::{LegStats, MediaEvent, MediaSession, RemoteMedia, SessionConfig, SessionStats};
pub use sdp::{Anchor, Direction};
pub use tap::{TapOffer, TapPacket, TapSender, TapSink};

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("[media] port_range {start}-{end} holds no RTP/RTCP port pair")]
    EmptyRange { start: u16, end: u16 },
    #[error("no free RTP/RTCP port pair in {start}-{end} on {ip}")]
    PortsExhausted { ip: IpAddr, start: u16, end: u16 },
    #[error("cannot bind RTP sockets on {ip}: {source}")]
    Bind { ip: IpAddr, source: std::io::Error },
    #[error("cannot hand RTP sockets to the media relay: {0}")]
    Runtime(std::io::Error),
}

/// The two sides of a call's media. Inside: toward the PBX. Outside: toward the carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Leg {
    Inside,
    Outside,
}

impl Leg {
    pub const BOTH: [Leg; 2] = [Leg::Inside, Leg::Outside];

    pub fn other(self) -> Leg {
        match self {
            Leg::Inside => Leg::Outside,
            Leg::Outside => Leg::Inside,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Leg::Inside => "inside",
            Leg::Outside => "outside",
        }
    }

    /// 0 for inside, 1 for outside: index of per-leg arrays.
    pub fn index(self) -> usize {
        match self {
            Leg::Inside => 0,
            Leg::Outside => 1,
        }
    }
}
