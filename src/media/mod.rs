//! Media anchoring: RTP/RTCP port allocation, SDP rewrite, the relay with symmetric latching,
//! per-leg quality stats and the media timeout. Knows nothing of SIP: the B2BUA feeds it the SDP
//! bodies it sees and acts on the events it reports.

pub mod dtmf;
pub mod quality;
pub mod rtp;
pub mod sdp;
pub mod stats;

#[cfg(test)]
mod stats_tests;

use serde::Serialize;

pub use sdp::{Anchor, Direction};

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
