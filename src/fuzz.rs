//! What each fuzz target does with its bytes. The targets under fuzz/ are one-line wrappers
//! around these, and tests/fuzz_regressions.rs runs every saved crash input through the same
//! functions, so a regression stays a plain `cargo test` without the fuzzer.
//!
//! Each harness feeds hostile bytes to a parser the way the gateway does, then uses what came
//! out the way the gateway would (validation, responses, SDP rewrite, RTP stats, DTMF, the
//! recording's decode and timeline), and checks the invariants the code promises. A panic, an
//! overflow (debug assertions are on) or a broken invariant is a finding.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::media::dtmf::DtmfDetector;
use crate::media::rtp::RtpHeader;
use crate::media::sdp::{self, Anchor, Origin};
use crate::media::stats::StreamMeter;
use crate::media::RemoteMedia;
use crate::recording::codec::{AudioKind, Codec, LegDecoder, PayloadMap};
use crate::recording::g711;
use crate::recording::g722::G722Decoder;
use crate::recording::packet::{Leg, RecPacket};
use crate::recording::timeline::Timeline;
use crate::sip::frontend::{parse_datagram, Limits, Parsed, StreamFramer};
use crate::sip::response::response_for;
use crate::sip::validate::check_request;

/// Tight limits, so that short fuzz inputs reach every bound as well as the default ones.
const TIGHT: Limits = Limits {
    max_message_bytes: 512,
    max_headers: 12,
    max_via: 3,
    max_body_bytes: 128,
};

fn both_limits() -> [Limits; 2] {
    [Limits::default(), TIGHT]
}

/// Uses a front-end result the way the transaction layer would.
fn consume(parsed: &Parsed) {
    match parsed {
        Parsed::Message(rsip::SipMessage::Request(req)) => {
            let _ = check_request(req);
            let _ = response_for(req, 500, "Server Internal Error", Some("t")).to_string();
            let _ = req.to_string();
        }
        Parsed::Message(rsip::SipMessage::Response(resp)) => {
            let _ = resp.to_string();
        }
        Parsed::Reject(r) => {
            assert!(
                (400..700).contains(&r.status),
                "rejection status {}",
                r.status
            );
            let _ = r.response.as_ref().map(|x| x.to_string());
        }
        Parsed::Drop(_) => {}
    }
}

/// One UDP datagram through the SIP front end, with default and tight limits.
pub fn sip_datagram(data: &[u8]) {
    for limits in both_limits() {
        let parsed = parse_datagram(data, &limits);
        if data.len() > limits.max_message_bytes {
            assert!(
                !matches!(parsed, Parsed::Message(_)),
                "a datagram over max_message_bytes was accepted"
            );
        }
        consume(&parsed);
    }
}

/// The bytes as a TCP stream through the framer: pushed at once, and in chunks of a size
/// derived from the input (so the corpus stays plain SIP), with default and tight limits.
pub fn sip_stream(data: &[u8]) {
    let chunk = 1 + data.len() % 61;
    for limits in both_limits() {
        for size in [data.len().max(1), chunk] {
            let mut framer = StreamFramer::new(limits);
            'feed: for piece in data.chunks(size) {
                framer.push(piece);
                let cap = limits.max_message_bytes.saturating_mul(2).max(1024);
                assert!(framer.buffered() <= cap, "stream buffer over its bound");
                // every message takes at least one byte out of the buffer, so more messages
                // than bytes is a framer that no longer makes progress
                let mut drained = false;
                for _ in 0..=data.len() {
                    match framer.next() {
                        Ok(Some(parsed)) => consume(&parsed),
                        Ok(None) => {
                            drained = true;
                            break;
                        }
                        Err(e) => {
                            let _ = e
                                .rejection()
                                .and_then(|r| r.response.as_ref())
                                .map(|r| r.to_string());
                            break 'feed; // the connection is closed
                        }
                    }
                }
                assert!(
                    drained,
                    "the framer yields messages without consuming bytes"
                );
            }
            let _ = framer.take_pings();
        }
    }
}

/// One SDP body: parsed, summarized, anchored for both address families, and the anchored
/// body (what we send to the other peer) must parse again.
pub fn sdp(data: &[u8]) {
    let Ok(parsed) = sdp::parse(data) else {
        return;
    };
    assert!(parsed.media_count() <= sdp::MAX_MEDIA);
    for m in parsed.media() {
        let _ = (m.remote_rtp(), m.remote_rtcp(), m.telephone_event());
        let _ = (m.clock_rate(), m.is_hold(), m.is_declined(), m.is_rtp());
    }
    if let Some(audio) = parsed.audio() {
        let _ = RemoteMedia::from_sdp(&audio);
    }
    let _ = parsed.to_bytes();
    let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    for address in [v4, v6] {
        let anchor = Anchor {
            address,
            rtp_port: 40_000,
            rtcp_port: 40_001,
        };
        let mut origin = Origin::with_session_id(address, 42);
        let out = parsed.anchor(&anchor, &mut origin).sdp.to_bytes();
        if out.len() <= sdp::MAX_SDP_BYTES {
            if let Err(e) = sdp::parse(&out) {
                panic!("our anchored SDP does not parse: {e}");
            }
        }
    }
}

/// RTP datagrams as the relay and the recorder see them. The whole input is one datagram;
/// then it is read as a sequence of `[length byte][datagram]` records arriving 20 ms apart
/// (plus a jitter taken from the datagram), which go through one leg's stats meter, DTMF
/// detector, payload decoders and the recording timeline, as a call's packets would.
pub fn rtp(data: &[u8]) {
    let t0 = Instant::now();
    let mut leg = RtpLeg::new(t0);
    leg.packet(data, t0);
    let mut leg = RtpLeg::new(t0);
    let mut rest = data;
    let mut at = t0;
    while let Some((&len, tail)) = rest.split_first() {
        let (datagram, next) = tail.split_at((len as usize).min(tail.len()));
        let jitter = datagram.first().copied().unwrap_or(0) as u64;
        at += Duration::from_millis(20 + jitter % 16);
        leg.packet(datagram, at);
        rest = next;
    }
    leg.finish(at + Duration::from_secs(1));
}

/// What one leg of a call keeps between its RTP packets.
struct RtpLeg {
    meter: StreamMeter,
    dtmf: DtmfDetector,
    map: PayloadMap,
    decoder: LegDecoder,
    g722: G722Decoder,
    timelines: [Timeline; 2],
    samples: Vec<i16>,
}

impl RtpLeg {
    fn new(t0: Instant) -> Self {
        let ms = Duration::from_millis;
        let timeline = |rate| Timeline::new(t0, rate, ms(60), ms(500), ms(10_000));
        RtpLeg {
            meter: StreamMeter::new(sdp::DEFAULT_CLOCK_RATE),
            dtmf: DtmfDetector::new([Some(101), Some(96)], sdp::DEFAULT_CLOCK_RATE),
            map: PayloadMap::new().with_rtpmap(101, "telephone-event/8000"),
            decoder: LegDecoder::new(),
            g722: G722Decoder::new(),
            timelines: [timeline(8000), timeline(16_000)],
            samples: Vec::new(),
        }
    }

    fn packet(&mut self, datagram: &[u8], arrival: Instant) {
        let Some(header) = RtpHeader::parse(datagram) else {
            self.meter.on_not_rtp();
            return;
        };
        let payload = header.payload(datagram);
        assert_eq!(
            payload.len(),
            header.payload_len,
            "payload outside the datagram"
        );
        let is_event = self.dtmf.is_event(&header);
        self.meter
            .on_packet(arrival, &header, datagram.len(), is_event);
        if is_event {
            let _ = self
                .dtmf
                .on_packet(&header, payload, || DateTime::<Utc>::UNIX_EPOCH);
            return;
        }
        // the raw decoders take any payload, whatever the payload type says
        g711::decode_ulaw(payload, &mut self.samples);
        g711::decode_alaw(payload, &mut self.samples);
        self.g722.decode(payload, &mut self.samples);
        self.samples.clear();
        let codec: &Codec = self.map.codec(header.payload_type);
        let Some(kind) = AudioKind::of(codec) else {
            return;
        };
        for rate in [8000, 16_000] {
            self.decoder.decode(kind, payload, rate, &mut self.samples);
        }
        let pkt = RecPacket {
            leg: Leg::Inside,
            arrival,
            payload_type: header.payload_type,
            marker: header.marker,
            sequence: header.sequence,
            timestamp: header.timestamp,
            ssrc: header.ssrc,
            payload: Bytes::copy_from_slice(payload),
        };
        for timeline in &mut self.timelines {
            timeline.place(&pkt, kind);
            timeline.drain_ready(&mut self.samples);
            let _ = timeline.take_patches();
            self.samples.clear();
        }
    }

    fn finish(mut self, end: Instant) {
        let _ = self.dtmf.flush();
        let stats = self.meter.snapshot();
        let _ = (stats.loss_ratio(), stats.mos());
        for timeline in &mut self.timelines {
            timeline.drain_all(end, &mut self.samples);
            let _ = timeline.take_patches();
            self.samples.clear();
        }
    }
}
