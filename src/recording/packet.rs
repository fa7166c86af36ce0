//! What the media relay hands to a recording: one RTP packet of one leg.

use std::time::Instant;

use bytes::Bytes;

/// Which side of the gateway a packet came from. Inside is the left channel, outside the right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The call center's PBX (the agent): left channel.
    Inside,
    /// The carrier (the customer): right channel.
    Outside,
}

impl Leg {
    /// Stereo channel index: 0 = left, 1 = right.
    pub fn channel(self) -> usize {
        match self {
            Leg::Inside => 0,
            Leg::Outside => 1,
        }
    }
}

impl From<crate::model::Side> for Leg {
    fn from(side: crate::model::Side) -> Self {
        match side {
            crate::model::Side::Inside => Leg::Inside,
            crate::model::Side::Outside => Leg::Outside,
        }
    }
}

/// One RTP packet as received from a leg (the relay converts its tap packets into this).
///
/// `arrival` is when the relay received it; samples are placed by `timestamp` but anchored to
/// arrival so that both channels follow the wall clock. `payload` is the RTP payload only (after
/// CSRCs, header extension and padding); `Bytes` lets the relay hand over a slice of its receive
/// buffer without copying.
#[derive(Debug, Clone)]
pub struct RecPacket {
    pub leg: Leg,
    pub arrival: Instant,
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Bytes,
}

impl RecPacket {
    /// The packet as RTP on the wire, for the pcap fallback: a fixed 12-byte header (version 2,
    /// no CSRCs, no extension) and the payload. CSRCs and extensions carry no audio, so
    /// they are not kept.
    pub fn write_rtp(&self, out: &mut Vec<u8>) {
        out.push(0x80);
        out.push(((self.marker as u8) << 7) | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&self.payload);
    }
}
