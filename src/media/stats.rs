//! Receive-side quality of one RTP stream (one leg, one direction): packets, bytes, loss from
//! sequence numbers, RFC 3550 interarrival jitter, longest gap. Fixed-size state, no allocation
//! per packet.
//!
//! Sequence accounting follows RFC 3550 Appendix A.1, per SSRC, with two changes: duplicates are
//! recognized (a 128-packet bitmap behind the highest sequence number) so that they do not hide
//! losses, and a packet older than the first one seen lowers the base instead of counting as
//! lost. A jump of more than `MAX_DROPOUT` ahead (or `MAX_MISORDER` behind) is taken as a restart
//! of the sender's sequence once the next packet confirms it; packets lost across the jump
//! cannot be told and are not counted.
//!
//! A new SSRC starts its own accounting; up to `MAX_SOURCES` are tracked at once (some devices
//! send telephone-events under a second SSRC), the least recently heard one is retired first.

use std::time::Instant;

use serde::Serialize;

use super::quality;
use super::rtp::RtpHeader;
use super::sdp::DEFAULT_CLOCK_RATE;

pub const MAX_DROPOUT: u16 = 3000;
pub const MAX_MISORDER: u16 = 100;
const MAX_SOURCES: usize = 4;
/// A transit-time difference above this many seconds is a timestamp jump (sender reset, long
/// pause), not jitter: the jitter estimate is re-based instead of being thrown off.
const TIMESTAMP_JUMP_SECS: f64 = 3.0;

/// What one stream looked like on arrival.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StreamStats {
    /// RTP packets received (duplicates included).
    pub packets: u64,
    /// UDP payload bytes of those packets.
    pub bytes: u64,
    /// Packets the sequence numbers say were sent.
    pub expected: u64,
    pub lost: u64,
    pub duplicates: u64,
    /// Packets that arrived after a later one.
    pub reordered: u64,
    /// New SSRCs after the first.
    pub ssrc_changes: u64,
    /// Sequence number jumps taken as a sender restart.
    pub seq_restarts: u64,
    pub timestamp_jumps: u64,
    /// RFC 3550 interarrival jitter of the current source at the end, in ms.
    pub jitter_ms: f64,
    pub max_jitter_ms: f64,
    /// Longest time between two packets, in ms.
    pub longest_gap_ms: u64,
    /// Datagrams on the RTP port that were not RTP.
    pub not_rtp: u64,
}

impl StreamStats {
    /// Lost / expected, 0 when nothing was expected.
    pub fn loss_ratio(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.lost as f64 / self.expected as f64
        }
    }

    /// Estimated MOS (see `quality`); `None` when no RTP arrived.
    pub fn mos(&self) -> Option<f64> {
        (self.expected > 0).then(|| quality::estimate_mos(self.loss_ratio(), self.jitter_ms))
    }
}

/// Send-side (or RTCP) counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    /// Not sent: no destination known yet, on hold, or the socket refused.
    pub dropped: u64,
}

#[derive(Debug, Clone, Copy)]
enum SeqOutcome {
    /// In order, possibly after a gap.
    New,
    Late,
    Duplicate,
    Restart,
    /// A jump not (yet) confirmed by the next packet: left out of the accounting.
    Ignored,
}

#[derive(Debug, Clone, Copy)]
struct Source {
    ssrc: u32,
    /// Extended sequence numbers (cycles folded in); i64 so a late packet may go below the first.
    base: i64,
    max: i64,
    received: u64,
    /// Bit k set: sequence `max - k` seen.
    window: u128,
    bad_seq: Option<u16>,
    /// Expected and lost before the last restart.
    expected_before: u64,
    lost_before: u64,
    /// Arrival (in clock units since the meter's epoch) minus RTP timestamp of the last packet.
    transit: Option<f64>,
    jitter: f64,
    last_heard: u64,
}

impl Source {
    fn new(ssrc: u32, seq: u16, packet_no: u64) -> Source {
        Source {
            ssrc,
            base: i64::from(seq),
            max: i64::from(seq),
            received: 1,
            window: 1,
            bad_seq: None,
            expected_before: 0,
            lost_before: 0,
            transit: None,
            jitter: 0.0,
            last_heard: packet_no,
        }
    }

    fn segment(&self) -> (u64, u64) {
        let expected = (self.max - self.base + 1).max(0) as u64;
        (expected, expected.saturating_sub(self.received))
    }

    fn totals(&self) -> (u64, u64) {
        let (expected, lost) = self.segment();
        (self.expected_before + expected, self.lost_before + lost)
    }

    fn update_seq(&mut self, seq: u16) -> SeqOutcome {
        let delta = seq.wrapping_sub(self.max as u16);
        if delta == 0 {
            SeqOutcome::Duplicate
        } else if delta < MAX_DROPOUT {
            self.max += i64::from(delta);
            self.window = if delta >= 128 {
                0
            } else {
                self.window << delta
            } | 1;
            self.received += 1;
            self.bad_seq = None;
            SeqOutcome::New
        } else if delta > u16::MAX - MAX_MISORDER {
            let back = u32::from(u16::MAX - delta) + 1; // 1..=MAX_MISORDER, inside the window
            let bit = 1u128 << back;
            if self.window & bit != 0 {
                return SeqOutcome::Duplicate;
            }
            self.window |= bit;
            self.base = self.base.min(self.max - i64::from(back));
            self.received += 1;
            SeqOutcome::Late
        } else if self.bad_seq == Some(seq) {
            let (expected, lost) = self.segment();
            self.expected_before += expected;
            self.lost_before += lost;
            (self.base, self.max) = (i64::from(seq), i64::from(seq));
            (self.received, self.window, self.bad_seq) = (1, 1, None);
            self.transit = None;
            SeqOutcome::Restart
        } else {
            self.bad_seq = Some(seq.wrapping_add(1));
            SeqOutcome::Ignored
        }
    }
}

/// The running state behind `StreamStats`.
#[derive(Debug, Clone)]
pub struct StreamMeter {
    stats: StreamStats,
    clock_rate: u32,
    epoch: Option<Instant>,
    last_arrival: Option<Instant>,
    sources: [Option<Source>; MAX_SOURCES],
    current: Option<usize>,
    retired_expected: u64,
    retired_lost: u64,
}

impl Default for StreamMeter {
    fn default() -> Self {
        StreamMeter::new(DEFAULT_CLOCK_RATE)
    }
}

impl StreamMeter {
    pub fn new(clock_rate: u32) -> StreamMeter {
        StreamMeter {
            stats: StreamStats::default(),
            clock_rate: clock_rate.max(1),
            epoch: None,
            last_arrival: None,
            sources: [None; MAX_SOURCES],
            current: None,
            retired_expected: 0,
            retired_lost: 0,
        }
    }

    /// The RTP clock of the negotiated codec (8000 for G.711 and G.722).
    pub fn set_clock_rate(&mut self, clock_rate: u32) {
        let clock_rate = clock_rate.max(1);
        if clock_rate != self.clock_rate {
            self.clock_rate = clock_rate;
            for s in self.sources.iter_mut().flatten() {
                (s.transit, s.jitter) = (None, 0.0); // jitter in the old clock's units is moot
            }
        }
    }

    /// A datagram on the RTP port that did not parse as RTP.
    pub fn on_not_rtp(&mut self) {
        self.stats.not_rtp += 1;
    }

    /// One RTP packet of `len` bytes arrived at `now`. `is_event`: an RFC 4733 packet, counted
    /// for loss but kept out of jitter (its timestamp is the event start, repeated).
    pub fn on_packet(&mut self, now: Instant, header: &RtpHeader, len: usize, is_event: bool) {
        self.stats.packets += 1;
        self.stats.bytes += len as u64;
        if let Some(last) = self.last_arrival {
            let gap = now.saturating_duration_since(last).as_millis() as u64;
            self.stats.longest_gap_ms = self.stats.longest_gap_ms.max(gap);
        }
        self.last_arrival = Some(now);
        let epoch = *self.epoch.get_or_insert(now);
        let arrival =
            now.saturating_duration_since(epoch).as_secs_f64() * f64::from(self.clock_rate);

        let packet_no = self.stats.packets;
        let (index, outcome) = match self.find(header.ssrc) {
            Some(i) => {
                let Some(source) = self.sources[i].as_mut() else {
                    return;
                };
                source.last_heard = packet_no;
                (i, source.update_seq(header.sequence))
            }
            None => {
                if self.sources.iter().any(Option::is_some) {
                    self.stats.ssrc_changes += 1;
                }
                let i = self.free_slot();
                self.sources[i] = Some(Source::new(header.ssrc, header.sequence, packet_no));
                (i, SeqOutcome::New)
            }
        };
        self.current = Some(index);
        match outcome {
            SeqOutcome::Duplicate => self.stats.duplicates += 1,
            SeqOutcome::Late => self.stats.reordered += 1,
            SeqOutcome::Restart => self.stats.seq_restarts += 1,
            SeqOutcome::New | SeqOutcome::Ignored => {}
        }
        if is_event || matches!(outcome, SeqOutcome::Duplicate | SeqOutcome::Ignored) {
            return;
        }
        let clock = f64::from(self.clock_rate);
        let Some(source) = self.sources[index].as_mut() else {
            return;
        };
        // RFC 3550 §6.4.1: D = (Rj − Sj) − (Ri − Si); J += (|D| − J) / 16, all in clock units.
        // Transit is kept relative to the previous packet's timestamp so u32 wrap never matters.
        let transit = arrival - f64::from(header.timestamp);
        if let Some(previous) = source.transit {
            let mut d = transit - previous;
            // Timestamps wrap at 2^32: bring D back to the nearest equivalent.
            let wrap = 4_294_967_296.0;
            d -= (d / wrap).round() * wrap;
            if d.abs() > TIMESTAMP_JUMP_SECS * clock {
                self.stats.timestamp_jumps += 1;
            } else {
                source.jitter += (d.abs() - source.jitter) / 16.0;
                let ms = source.jitter / clock * 1000.0;
                self.stats.max_jitter_ms = self.stats.max_jitter_ms.max(ms);
            }
        }
        source.transit = Some(transit);
    }

    fn find(&self, ssrc: u32) -> Option<usize> {
        self.sources
            .iter()
            .position(|s| s.is_some_and(|s| s.ssrc == ssrc))
    }

    /// An empty slot, or the least recently heard source's, whose counts are kept as retired.
    fn free_slot(&mut self) -> usize {
        if let Some(i) = self.sources.iter().position(Option::is_none) {
            return i;
        }
        let (i, oldest) = self
            .sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|s| (i, s)))
            .min_by_key(|(_, s)| s.last_heard)
            .unwrap_or((0, Source::new(0, 0, 0)));
        let (expected, lost) = oldest.totals();
        self.retired_expected += expected;
        self.retired_lost += lost;
        self.sources[i] = None;
        i
    }

    pub fn last_arrival(&self) -> Option<Instant> {
        self.last_arrival
    }

    /// Figures so far.
    pub fn snapshot(&self) -> StreamStats {
        let (mut expected, mut lost) = (self.retired_expected, self.retired_lost);
        for s in self.sources.iter().flatten() {
            let (e, l) = s.totals();
            expected += e;
            lost += l;
        }
        let jitter = self
            .current
            .and_then(|i| self.sources[i])
            .map_or(0.0, |s| s.jitter / f64::from(self.clock_rate) * 1000.0);
        StreamStats {
            expected,
            lost,
            jitter_ms: jitter,
            ..self.stats
        }
    }
}
