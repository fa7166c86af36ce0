//! The pcap fallback: raw RTP of both legs in a classic libpcap file, for codecs that the
//! recorder cannot decode, so that nothing that crossed the trunk is lost.
//!
//! Link type RAW (101): each record is an IPv4 packet with a UDP header around the RTP. The
//! addresses are fixed documentation addresses (not the real peers, which the gateway hides):
//! inside 192.0.2.1:40000 → 203.0.113.1:20000, outside 198.51.100.1:40002 → 203.0.113.1:20002,
//! so a reader can tell the legs apart (`tshark -d udp.port==20000,rtp -d udp.port==20002,rtp`).

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::SystemTime;

use super::packet::{Leg, RecPacket};

const MAGIC_USEC: u32 = 0xa1b2_c3d4;
const LINKTYPE_RAW: u32 = 101;
const SNAPLEN: u32 = 65_535;
pub(crate) const GLOBAL_HEADER_LEN: u64 = 24;
const RECORD_HEADER_LEN: u64 = 16;

pub(crate) struct PcapWriter {
    out: BufWriter<File>,
    scratch: Vec<u8>,
    ip_id: u16,
}

impl PcapWriter {
    /// Writes the global header to a new, empty file.
    pub(crate) fn new(file: File) -> std::io::Result<Self> {
        let mut out = BufWriter::new(file);
        let mut h = Vec::with_capacity(GLOBAL_HEADER_LEN as usize);
        h.extend_from_slice(&MAGIC_USEC.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone: timestamps are UTC
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            scratch: Vec::with_capacity(1500),
            ip_id: 0,
        })
    }

    /// Appends one packet, stamped with its wall-clock arrival time.
    pub(crate) fn write(&mut self, pkt: &RecPacket, at: SystemTime) -> std::io::Result<()> {
        let (src, sport, dport) = match pkt.leg {
            Leg::Inside => ([192, 0, 2, 1], 40000u16, 20000u16),
            Leg::Outside => ([198, 51, 100, 1], 40002, 20002),
        };
        let dst = [203, 0, 113, 1];
        let rtp_len = 12 + pkt.payload.len();
        let udp_len = 8 + rtp_len;
        let ip_len = 20 + udp_len;
        let b = &mut self.scratch;
        b.clear();
        // IPv4 header, no options, don't-fragment, TTL 64, UDP.
        b.extend_from_slice(&[0x45, 0]);
        b.extend_from_slice(&(ip_len as u16).to_be_bytes());
        b.extend_from_slice(&self.ip_id.to_be_bytes());
        b.extend_from_slice(&[0x40, 0, 64, 17, 0, 0]);
        b.extend_from_slice(&src);
        b.extend_from_slice(&dst);
        let sum = ipv4_checksum(&b[..20]);
        b[10..12].copy_from_slice(&sum.to_be_bytes());
        // UDP header; checksum 0 means "none" in IPv4.
        b.extend_from_slice(&sport.to_be_bytes());
        b.extend_from_slice(&dport.to_be_bytes());
        b.extend_from_slice(&(udp_len as u16).to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        pkt.write_rtp(b);
        self.ip_id = self.ip_id.wrapping_add(1);

        let since = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let len = b.len() as u32;
        let mut rec = [0u8; RECORD_HEADER_LEN as usize];
        rec[0..4].copy_from_slice(&(since.as_secs() as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&since.subsec_micros().to_le_bytes());
        rec[8..12].copy_from_slice(&len.to_le_bytes());
        rec[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(b)
    }

    pub(crate) fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Flushes and hands the file back: it is made durable with the others closed at the same
    /// time (`durable`), then renamed.
    pub(crate) fn close(self) -> std::io::Result<File> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Cuts a pcap file left open by a crash after its last whole record. Returns the number of
/// records kept. A file too short for the global header is left alone and reported as 0.
pub(crate) fn truncate_to_whole_records(path: &Path) -> std::io::Result<u64> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let len = file.metadata()?.len();
    if len < GLOBAL_HEADER_LEN {
        return Ok(0);
    }
    let mut pos = GLOBAL_HEADER_LEN;
    let mut records = 0;
    let mut rec = [0u8; RECORD_HEADER_LEN as usize];
    loop {
        if pos + RECORD_HEADER_LEN > len {
            break;
        }
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut rec)?;
        let incl = u32::from_le_bytes([rec[8], rec[9], rec[10], rec[11]]) as u64;
        if incl > SNAPLEN as u64 || pos + RECORD_HEADER_LEN + incl > len {
            break;
        }
        pos += RECORD_HEADER_LEN + incl;
        records += 1;
    }
    if pos < len {
        file.set_len(pos)?;
    }
    file.sync_all()?;
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::{Duration, Instant};

    fn pkt(leg: Leg, seq: u16) -> RecPacket {
        RecPacket {
            leg,
            arrival: Instant::now(),
            payload_type: 111,
            marker: seq == 0,
            sequence: seq,
            timestamp: seq as u32 * 960,
            ssrc: 0x1234_5678,
            payload: Bytes::from(vec![seq as u8; 40]),
        }
    }

    #[test]
    fn writes_valid_records_and_repairs_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pcap");
        let mut w = PcapWriter::new(File::create(&path).unwrap()).unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        for seq in 0..3 {
            w.write(&pkt(Leg::Inside, seq), t).unwrap();
            w.write(&pkt(Leg::Outside, seq), t).unwrap();
        }
        w.close().unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(&data[0..4], &MAGIC_USEC.to_le_bytes());
        assert_eq!(&data[20..24], &LINKTYPE_RAW.to_le_bytes());
        let rec_len = 16 + 20 + 8 + 12 + 40;
        assert_eq!(data.len(), 24 + 6 * rec_len);
        let first = &data[24..24 + rec_len];
        assert_eq!(
            u32::from_le_bytes(first[0..4].try_into().unwrap()),
            1_700_000_000
        );
        assert_eq!(u32::from_le_bytes(first[4..8].try_into().unwrap()), 123_456);
        let ip = &first[16..];
        assert_eq!(ipv4_checksum(&ip[..20]), 0, "header checksum verifies");
        assert_eq!(&ip[12..16], &[192, 0, 2, 1]);
        let rtp = &ip[28..];
        assert_eq!(rtp[0], 0x80);
        assert_eq!(rtp[1], 0x80 | 111, "marker and payload type");
        assert_eq!(&rtp[8..12], &0x1234_5678u32.to_be_bytes());

        // A crash mid-record: repair keeps the whole records only.
        std::fs::write(&path, &data[..data.len() - 7]).unwrap();
        assert_eq!(truncate_to_whole_records(&path).unwrap(), 5);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            24 + 5 * rec_len as u64
        );
    }
}
