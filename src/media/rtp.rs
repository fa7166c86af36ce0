//! The RTP fixed header, read with rtp-rs (zero-copy: it borrows the datagram, no allocation).
//! Used for stats, DTMF and the tap only; the relay forwards datagrams untouched.

use rtp_rs::RtpReader;

/// Header fields of one RTP packet, and where its payload lies in the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Payload start in the datagram (after CSRCs and header extension).
    pub payload_offset: usize,
    /// Payload length, padding excluded.
    pub payload_len: usize,
}

impl RtpHeader {
    /// `None` for anything that is not a well-formed RTP v2 packet, and for RTCP sent on the RTP
    /// port (rtcp-mux, RFC 5761 §4: packet types 192–223 read as RTP payload types 64–95).
    pub fn parse(datagram: &[u8]) -> Option<RtpHeader> {
        let reader = RtpReader::new(datagram).ok()?;
        let payload_type = reader.payload_type();
        if (64..=95).contains(&payload_type) {
            return None;
        }
        let payload = reader.payload();
        Some(RtpHeader {
            payload_type,
            marker: reader.mark(),
            sequence: reader.sequence_number().into(),
            timestamp: reader.timestamp(),
            ssrc: reader.ssrc(),
            payload_offset: reader.payload_offset(),
            payload_len: payload.len(),
        })
    }

    /// The payload within `datagram` (the one this header was parsed from).
    pub fn payload<'a>(&self, datagram: &'a [u8]) -> &'a [u8] {
        datagram
            .get(self.payload_offset..self.payload_offset + self.payload_len)
            .unwrap_or(&[])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal RTP packet for tests.
    pub(crate) fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt & 0x7f];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn header_fields() {
        let mut p = packet(8, 0xfffe, 160_000, 0xdead_beef, &[0xd5; 160]);
        p[1] |= 0x80;
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!(
            (h.payload_type, h.marker, h.sequence, h.timestamp, h.ssrc),
            (8, true, 0xfffe, 160_000, 0xdead_beef)
        );
        assert_eq!(h.payload(&p).len(), 160);
    }

    #[test]
    fn rejects_non_rtp() {
        assert!(RtpHeader::parse(&[]).is_none());
        assert!(RtpHeader::parse(&[0x80; 11]).is_none());
        assert!(RtpHeader::parse(&packet(0, 1, 1, 1, &[])[..]).is_some());
        // Version 1.
        let mut p = packet(0, 1, 1, 1, &[1, 2]);
        p[0] = 0x40;
        assert!(RtpHeader::parse(&p).is_none());
        // RTCP sender report on the RTP port (PT 200 → 72).
        assert!(RtpHeader::parse(&[0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0]).is_none());
        // CSRC count and extension past the end, padding longer than the packet.
        let mut p = packet(0, 1, 1, 1, &[]);
        p[0] = 0x8f;
        assert!(RtpHeader::parse(&p).is_none());
        let mut p = packet(0, 1, 1, 1, &[0, 0]);
        p[0] = 0x90;
        assert!(RtpHeader::parse(&p).is_none());
        let mut p = packet(0, 1, 1, 1, &[0, 0, 9]);
        p[0] = 0xa0;
        assert!(RtpHeader::parse(&p).is_none());
    }

    #[test]
    fn random_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..50_000 {
            let len = rng.gen_range(0..64);
            let mut buf: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if !buf.is_empty() {
                buf[0] = (buf[0] & 0x3f) | 0x80; // mostly v2, to reach the deeper checks
            }
            if let Some(h) = RtpHeader::parse(&buf) {
                assert!(h.payload(&buf).len() <= buf.len());
            }
        }
    }
}
