//! A live call's media as the live-call listing sees it: the relay's figures per leg while the
//! call runs (through the session's `MediaProbe`), and the codec in use, named from the audio
//! formats each peer's latest SDP declared.

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use crate::media::sdp::PayloadInfo;
use crate::media::{Leg, LiveLeg, MediaProbe};

/// Shared by the call (which updates the formats as SDP crosses it) and the registry.
#[derive(Debug)]
pub struct LiveCallMedia {
    probe: MediaProbe,
    /// The audio formats of each leg's peer's latest SDP (index: `Leg::index`).
    formats: Mutex<[Vec<PayloadInfo>; 2]>,
}

/// One leg's figures at this moment.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveLegMedia {
    pub leg: Leg,
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    /// RTP packets missing from what the peer sent (sequence gaps so far).
    pub lost: u64,
    pub jitter_ms: f64,
    /// Encoding name (`PCMU`…) of the RTP the peer sends, else of its SDP's first format.
    pub codec: Option<String>,
    /// Where the peer's RTP actually comes from (latched), else where its SDP says.
    pub remote: Option<SocketAddr>,
    pub last_packet_age: Option<Duration>,
}

impl LiveCallMedia {
    pub(crate) fn new(probe: MediaProbe) -> Arc<LiveCallMedia> {
        Arc::new(LiveCallMedia {
            probe,
            formats: Mutex::new([Vec::new(), Vec::new()]),
        })
    }

    /// `leg`'s peer sent SDP with these audio formats.
    pub(crate) fn set_formats(&self, leg: Leg, payloads: &[PayloadInfo]) {
        let mut formats = self.formats.lock();
        formats[leg.index()] = payloads.to_vec();
    }

    /// Both legs' figures now (inside first); `None` once the media has closed.
    pub async fn snapshot(&self) -> Option<[LiveLegMedia; 2]> {
        let live = self.probe.snapshot().await?;
        let formats = self.formats.lock().clone();
        Some(Leg::BOTH.map(|leg| figures(leg, live.leg(leg), &formats)))
    }
}

fn figures(leg: Leg, live: &LiveLeg, formats: &[Vec<PayloadInfo>; 2]) -> LiveLegMedia {
    let s = &live.stats;
    LiveLegMedia {
        leg,
        packets_in: s.rtp_in.packets,
        bytes_in: s.rtp_in.bytes,
        packets_out: s.rtp_out.packets,
        bytes_out: s.rtp_out.bytes,
        lost: s.rtp_in.lost,
        jitter_ms: s.rtp_in.jitter_ms,
        codec: codec_name(s.payload_type, leg, formats),
        remote: s.latched.or(live.remote),
        last_packet_age: live.last_packet_age,
    }
}

/// The payload type seen, named by this leg's SDP (or the other's: a B2BUA passes the same
/// formats both ways); without RTP yet, the first audio format this leg's peer declared.
fn codec_name(pt: Option<u8>, leg: Leg, formats: &[Vec<PayloadInfo>; 2]) -> Option<String> {
    let own = &formats[leg.index()];
    let other = &formats[leg.other().index()];
    let named = |p: &&PayloadInfo| !p.encoding.is_empty();
    match pt {
        Some(pt) => own
            .iter()
            .chain(other)
            .filter(named)
            .find(|p| p.pt == pt)
            .map(|p| p.encoding.clone())
            .or_else(|| Some(format!("pt{pt}"))),
        None => own
            .iter()
            .filter(named)
            .find(|p| !p.is_telephone_event())
            .map(|p| p.encoding.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(pt: u8, encoding: &str) -> PayloadInfo {
        PayloadInfo {
            pt,
            encoding: encoding.into(),
            clock_rate: 8000,
        }
    }

    #[test]
    fn codec_is_named_from_the_rtp_seen_then_the_sdp() {
        let formats = [
            vec![fmt(101, "telephone-event"), fmt(8, "PCMA"), fmt(0, "PCMU")],
            vec![fmt(96, "opus")],
        ];
        assert_eq!(
            codec_name(None, Leg::Inside, &formats).as_deref(),
            Some("PCMA")
        );
        assert_eq!(
            codec_name(Some(0), Leg::Inside, &formats).as_deref(),
            Some("PCMU")
        );
        assert_eq!(
            codec_name(Some(96), Leg::Inside, &formats).as_deref(),
            Some("opus"),
            "named by the other leg's SDP"
        );
        assert_eq!(
            codec_name(Some(99), Leg::Outside, &formats).as_deref(),
            Some("pt99")
        );
        assert_eq!(codec_name(None, Leg::Outside, &[vec![], vec![]]), None);
    }
}
