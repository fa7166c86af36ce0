//! Media anchoring: RTP/RTCP port allocation, SDP rewrite, the relay with symmetric latching,
//! per-leg quality stats and the media timeout. Knows nothing of SIP: the B2BUA feeds it the SDP
//! bodies it sees and acts on the events it reports.

pub mod sdp;

use serde::Serialize;

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
}
