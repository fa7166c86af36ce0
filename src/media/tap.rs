//! The tap: a copy of every RTP packet for the recorder, offered without ever blocking the relay.
//!
//! Each packet goes out as a `bytes::Bytes` cut from a per-leg `BytesMut` of `TAP_CHUNK` bytes:
//! the copy is a memcpy into that chunk, and `split().freeze()` hands out a reference-counted
//! view without allocating. When the chunk is used up, `reserve` takes the chunk back in place if
//! the consumer has dropped every packet cut from it, else starts a new chunk: at worst one
//! allocation per ~11 G.711 packets, never one per packet (the recorder keeps packets for its
//! jitter window, so with it that worst case is the usual one; see `TAP_CHUNK`). This beats a
//! fixed `[u8; 1500]` slot per packet, which would make every queued packet 1.5 KiB and copy it
//! again through the channel; and the recorder may keep a `Bytes` (for a pcap) without copying
//! it.
//!
//! The sink is the recorder's bounded queue (a [`TapSink`]: the recorder's own queue, or a
//! `tokio::sync::mpsc` channel); offers never block: when it is full the packet is dropped for
//! the recording (never for the call) and counted.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc::{self, error::TrySendError};

use super::rtp::RtpHeader;
use super::Leg;

/// Bytes per tap chunk (a power of two below `bytes`' 64 KiB original-capacity limit, so that
/// a new chunk after a reclaim failure is the same size; and at least `pump::MAX_DATAGRAM`, so
/// that any datagram fits a fresh one). The recorder keeps each packet for its jitter window
/// (~0.2 s), so the chunk being cut is never free to reclaim when it is used up: a leg holds
/// its current chunk plus the window's packets in older ones. With 8 KiB (about a second of
/// G.711) that was ~10 KiB a leg, 20 KiB a recorded call (issue 16's heaptrack); 2 KiB (about
/// 0.2 s) makes it ~4 KiB a leg, for one allocation about every 0.2 s per leg.
pub const TAP_CHUNK: usize = 2 * 1024;
const _: () = assert!(TAP_CHUNK >= super::pump::MAX_DATAGRAM);

/// One RTP packet as it crossed the relay.
#[derive(Debug, Clone)]
pub struct TapPacket {
    /// The leg it arrived on: `Inside` = sent by the PBX (agent, left channel), `Outside` = sent
    /// by the carrier (customer, right channel).
    pub leg: Leg,
    /// Arrival time (monotonic: align with the RTP timestamp, not the wall clock).
    pub at: Instant,
    pub header: RtpHeader,
    /// The whole datagram, header included.
    pub data: Bytes,
}

impl TapPacket {
    pub fn payload(&self) -> &[u8] {
        self.header.payload(&self.data)
    }
}

/// What an offer came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapOffer {
    Taken,
    /// The sink's queue is full: this packet is lost to the recording.
    Full,
    /// The sink is gone: stop offering.
    Closed,
}

/// Where tapped packets go. Implementations must never block: they run on the relay's task.
pub trait TapSink: Send + Sync {
    /// Whether an offer now could be taken (false: skip copying the packet at all).
    fn has_room(&self) -> bool;
    fn offer(&self, packet: TapPacket) -> TapOffer;
}

impl TapSink for mpsc::Sender<TapPacket> {
    fn has_room(&self) -> bool {
        self.capacity() > 0
    }

    fn offer(&self, packet: TapPacket) -> TapOffer {
        match self.try_send(packet) {
            Ok(()) => TapOffer::Taken,
            Err(TrySendError::Full(_)) => TapOffer::Full,
            Err(TrySendError::Closed(_)) => TapOffer::Closed,
        }
    }
}

/// A shared handle on a tap sink, as the relay's control holds it.
#[derive(Clone)]
pub struct TapSender(std::sync::Arc<dyn TapSink>);

impl TapSender {
    pub fn new(sink: impl TapSink + 'static) -> TapSender {
        TapSender(std::sync::Arc::new(sink))
    }

    fn same(&self, other: &TapSender) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl From<mpsc::Sender<TapPacket>> for TapSender {
    fn from(tx: mpsc::Sender<TapPacket>) -> TapSender {
        TapSender::new(tx)
    }
}

impl std::fmt::Debug for TapSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TapSender")
    }
}

/// The relay side of the tap, one per leg.
#[derive(Debug)]
pub(crate) struct TapWriter {
    sender: Option<TapSender>,
    chunk: BytesMut,
    dropped: u64,
}

impl TapWriter {
    pub(crate) fn new(sender: Option<TapSender>) -> TapWriter {
        TapWriter {
            sender,
            chunk: BytesMut::new(),
            dropped: 0,
        }
    }

    pub(crate) fn set(&mut self, sender: Option<TapSender>) {
        let same = match (&self.sender, &sender) {
            (Some(a), Some(b)) => a.same(b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            self.sender = sender;
        }
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    pub(crate) fn offer(&mut self, leg: Leg, at: Instant, header: RtpHeader, datagram: &[u8]) {
        let Some(sender) = &self.sender else {
            return;
        };
        if !sender.0.has_room() {
            self.dropped += 1; // full: do not even copy
            return;
        }
        if self.chunk.capacity() < datagram.len() {
            if self.chunk.capacity() == 0 && self.chunk.is_empty() {
                self.chunk = BytesMut::with_capacity(TAP_CHUNK);
            }
            self.chunk.reserve(datagram.len());
        }
        self.chunk.extend_from_slice(datagram);
        let packet = TapPacket {
            leg,
            at,
            header,
            data: self.chunk.split().freeze(),
        };
        match sender.0.offer(packet) {
            TapOffer::Taken => {}
            TapOffer::Full => self.dropped += 1,
            TapOffer::Closed => {
                tracing::debug!(leg = leg.as_str(), "tap closed by the recorder");
                self.sender = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::tests::packet;

    #[tokio::test]
    async fn delivers_copies_and_reuses_the_chunk() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut tap = TapWriter::new(Some(tx.into()));
        let mut chunks = std::collections::BTreeSet::new();
        for i in 0..2000u16 {
            let p = packet(0, i, 160 * u32::from(i), 1, &[i as u8; 160]);
            let h = RtpHeader::parse(&p).unwrap();
            tap.offer(Leg::Inside, Instant::now(), h, &p);
            let got = rx.recv().await.unwrap();
            assert_eq!(&got.data[..], &p[..]);
            assert_eq!(got.payload(), &[i as u8; 160]);
            assert_eq!(got.header.sequence, i);
            // Which chunk the packet lives in: the recorder dropped the previous one, so the
            // same chunk keeps being reclaimed.
            chunks.insert(got.data.as_ptr() as usize / TAP_CHUNK);
        }
        assert!(
            chunks.len() <= 3,
            "{} chunks for 2000 packets",
            chunks.len()
        );
        assert_eq!(tap.dropped(), 0);
    }

    #[tokio::test]
    async fn full_channel_drops_and_counts_never_blocks() {
        let (tx, mut rx) = mpsc::channel(4);
        let mut tap = TapWriter::new(Some(tx.into()));
        let p = packet(0, 1, 1, 1, &[0; 160]);
        let h = RtpHeader::parse(&p).unwrap();
        for _ in 0..10 {
            tap.offer(Leg::Outside, Instant::now(), h, &p);
        }
        assert_eq!(tap.dropped(), 6);
        assert_eq!(rx.recv().await.unwrap().leg, Leg::Outside);
        drop(rx);
        tap.offer(Leg::Outside, Instant::now(), h, &p);
        assert!(tap.sender.is_none(), "closed tap is let go");
        assert_eq!(tap.dropped(), 6);
    }
}
