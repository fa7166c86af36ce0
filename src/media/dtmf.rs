//! RFC 4733 telephone-events: each digit reported once. The packets themselves are relayed
//! untouched; this only watches them.
//!
//! An event is a run of packets with the same SSRC and RTP timestamp; its last packets carry the
//! E (end) bit and are sent three times. A digit is reported on its first end packet and the
//! (SSRC, timestamp) remembered so the retransmissions and any late packet of it are ignored.
//! When all end packets are lost, the digit is reported when the next event starts or at
//! `flush` (session close), with the longest duration seen.

use chrono::{DateTime, Utc};

use super::rtp::RtpHeader;

/// One digit as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    /// `0`–`9`, `*`, `#`, `A`–`D`.
    pub digit: char,
    pub duration_ms: u32,
    /// Arrival of the event's first packet.
    pub at: DateTime<Utc>,
    /// The event's SSRC and RTP timestamp: which packets carried it (a DTMF command's digits
    /// are told apart by it, `dtmf_command`).
    pub key: (u32, u32),
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    ssrc: u32,
    timestamp: u32,
    event: u8,
    duration: u16,
    at: DateTime<Utc>,
}

/// Telephone-event watcher for one direction of one leg.
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    /// The telephone-event type of each peer's SDP: a sender should use the receiver's number,
    /// and the two are usually equal, but either one is taken.
    payload_types: [Option<u8>; 2],
    clock_rate: u32,
    pending: Option<Pending>,
    last_done: Option<(u32, u32)>,
}

pub(crate) fn digit_of(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + event - 12),
        _ => return None, // flash and tones: not digits
    })
}

impl DtmfDetector {
    pub fn new(payload_types: [Option<u8>; 2], clock_rate: u32) -> DtmfDetector {
        DtmfDetector {
            payload_types,
            clock_rate: clock_rate.max(1),
            pending: None,
            last_done: None,
        }
    }

    /// Telephone-event payload types and clock from the SDP (re-INVITEs may change them).
    pub fn configure(&mut self, payload_types: [Option<u8>; 2], clock_rate: u32) {
        self.payload_types = payload_types;
        self.clock_rate = clock_rate.max(1);
    }

    pub fn is_event(&self, header: &RtpHeader) -> bool {
        self.payload_types.contains(&Some(header.payload_type))
    }

    /// Watch one packet. At most two digits come out: an unfinished previous event and this one.
    /// `now` is called only when an event starts.
    pub fn on_packet(
        &mut self,
        header: &RtpHeader,
        payload: &[u8],
        now: impl FnOnce() -> DateTime<Utc>,
    ) -> [Option<Digit>; 2] {
        let mut out = [None, None];
        if !self.is_event(header) || payload.len() < 4 {
            return out;
        }
        let key = (header.ssrc, header.timestamp);
        if self.last_done == Some(key) {
            return out; // retransmitted end packet or late packet of a reported event
        }
        let event = payload[0];
        let end = payload[1] & 0x80 != 0;
        let duration = u16::from_be_bytes([payload[2], payload[3]]);
        let pending = match self.pending {
            Some(p) if (p.ssrc, p.timestamp) == key => p,
            previous => {
                out[0] = previous.and_then(|p| self.finish(p));
                Pending {
                    ssrc: header.ssrc,
                    timestamp: header.timestamp,
                    event,
                    duration: 0,
                    at: now(),
                }
            }
        };
        let pending = Pending {
            duration: pending.duration.max(duration),
            ..pending
        };
        if end {
            self.pending = None;
            out[1] = self.finish(pending);
        } else {
            self.pending = Some(pending);
        }
        out
    }

    /// The event under way, if its end never came (call end).
    pub fn flush(&mut self) -> Option<Digit> {
        let pending = self.pending.take()?;
        self.finish(pending)
    }

    fn finish(&mut self, p: Pending) -> Option<Digit> {
        self.last_done = Some((p.ssrc, p.timestamp));
        Some(Digit {
            digit: digit_of(p.event)?,
            duration_ms: (u64::from(p.duration) * 1000 / u64::from(self.clock_rate)) as u32,
            at: p.at,
            key: (p.ssrc, p.timestamp),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::tests::packet;

    fn event(seq: u16, ts: u32, digit: u8, end: bool, duration: u16) -> Vec<u8> {
        let flags = if end { 0x80 | 10 } else { 10 };
        let d = duration.to_be_bytes();
        packet(101, seq, ts, 0x1234, &[digit, flags, d[0], d[1]])
    }

    fn feed(det: &mut DtmfDetector, packets: &[Vec<u8>]) -> Vec<Digit> {
        let t0 = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let mut digits = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            let h = RtpHeader::parse(p).unwrap();
            let at = t0 + chrono::Duration::milliseconds(20 * i as i64);
            digits.extend(det.on_packet(&h, h.payload(p), || at).into_iter().flatten());
        }
        digits
    }

    #[test]
    fn one_digit_from_three_end_packets() {
        let mut det = DtmfDetector::new([Some(101), None], 8000);
        let mut packets = vec![];
        for i in 0..5u16 {
            packets.push(event(100 + i, 8000, 5, false, 160 * (i + 1)));
        }
        for i in 0..3u16 {
            packets.push(event(105 + i, 8000, 5, true, 1280));
        }
        let digits = feed(&mut det, &packets);
        assert_eq!(digits.len(), 1);
        assert_eq!(digits[0].digit, '5');
        assert_eq!(digits[0].duration_ms, 160);
        assert_eq!(
            digits[0].at.timestamp_millis() % 1000,
            0,
            "time of the first packet"
        );
        assert!(det.flush().is_none());
    }

    #[test]
    fn star_hash_letters_and_repeats() {
        let mut det = DtmfDetector::new([Some(101), None], 8000);
        let mut packets = vec![];
        for (n, d) in [10u8, 11, 12, 15, 1, 1].iter().enumerate() {
            let ts = 1000 * (n as u32 + 1);
            packets.push(event(n as u16 * 10, ts, *d, false, 160));
            for k in 1..=3 {
                packets.push(event(n as u16 * 10 + k, ts, *d, true, 800));
            }
        }
        let digits: String = feed(&mut det, &packets).iter().map(|d| d.digit).collect();
        assert_eq!(
            digits, "*#AD11",
            "the same digit twice is two events (new timestamp)"
        );
    }

    #[test]
    fn lost_end_packets_reported_on_next_event_or_flush() {
        let mut det = DtmfDetector::new([Some(101), None], 8000);
        let packets = vec![
            event(1, 100, 7, false, 160),
            event(2, 100, 7, false, 320),
            // end of 7 lost; 8 starts and ends
            event(5, 900, 8, true, 400),
            event(6, 900, 8, true, 400),
            event(7, 1800, 9, false, 160),
        ];
        let digits = feed(&mut det, &packets);
        let got: Vec<(char, u32)> = digits.iter().map(|d| (d.digit, d.duration_ms)).collect();
        assert_eq!(got, [('7', 40), ('8', 50)]);
        assert_eq!(det.flush().map(|d| d.digit), Some('9'));
        assert!(det.flush().is_none());
    }

    #[test]
    fn ignores_other_payloads_short_payloads_and_non_digits() {
        let mut det = DtmfDetector::new([Some(101), None], 8000);
        let audio = packet(0, 1, 160, 1, &[0xff; 160]);
        let short = packet(101, 2, 320, 1, &[1, 0x80]);
        let flash = event(3, 480, 16, true, 160);
        assert!(feed(&mut det, &[audio, short, flash]).is_empty());
        let mut none = DtmfDetector::new([None, None], 8000);
        assert!(feed(&mut none, &[event(1, 1, 1, true, 1)]).is_empty());
    }

    #[test]
    fn clock_rate_scales_duration() {
        let mut det = DtmfDetector::new([Some(101), None], 16000);
        let d = feed(&mut det, &[event(1, 1, 0, true, 1600)]);
        assert_eq!(d[0].duration_ms, 100);
        det.configure([None, Some(101)], 0); // nonsense clock from SDP: no division by zero
        let d = feed(&mut det, &[event(2, 2, 0, true, 1)]);
        assert_eq!(d[0].duration_ms, 1000);
    }
}
