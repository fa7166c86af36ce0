//! Places each leg's samples on the call's wall-clock timeline and interleaves the two legs.
//!
//! Positions are in file frames counted from the recording's start instant `t0`. Each leg's
//! stream is anchored once: its first packet goes where it arrived, and later packets go where
//! their RTP timestamp says relative to that first packet. So lost packets and silence
//! suppression leave silence, reordered packets land in their place, and both legs follow the
//! wall clock. A new SSRC, or a timestamp that disagrees with the arrival time by more than
//! `jump`, re-anchors the leg on the arrival time. A leg is not moved back later when a packet
//! comes sooner than its anchor predicts: that would overwrite audio already placed, and
//! evidence keeps every sample rather than a few milliseconds of alignment.
//!
//! Packets wait in a per-leg jitter buffer until the timeline has moved `window` past them, are
//! then decoded in order (G.722 is stateful) and painted into a stereo buffer; frames before that
//! point are final and handed to the writer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::codec::{AudioKind, LegDecoder};
use super::packet::RecPacket;

/// Counters that end up in the recording result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelineStats {
    /// Packets that arrived after their place had been written (dropped).
    pub late_packets: u64,
    /// Times a leg was re-anchored (new SSRC or timestamp jump), first anchors not counted.
    pub reanchors: u64,
}

/// RTP clock of every decodable codec here (G.722 too, per RFC 3551).
const RTP_CLOCK: u32 = 8_000;

struct Stream {
    ssrc: u32,
    anchor_ts: i64,
    anchor_pos: i64,
    last_raw: u32,
    last_ext: i64,
}

impl Stream {
    /// Extends a 32-bit timestamp to 64 bits across wrap-around, relative to the newest seen.
    fn extend(&mut self, ts: u32) -> i64 {
        let delta = ts.wrapping_sub(self.last_raw) as i32 as i64;
        let ext = self.last_ext + delta;
        if delta > 0 {
            self.last_raw = ts;
            self.last_ext = ext;
        }
        ext
    }
}

struct Pending {
    pos: i64,
    generation: u32,
    kind: AudioKind,
    payload: Bytes,
}

struct LegState {
    stream: Option<Stream>,
    /// Bumped at every (re-)anchor; the decoder is reset when a new generation is decoded.
    generation: u32,
    decoded_generation: u32,
    /// Sorted by position.
    pending: Vec<Pending>,
    decoder: LegDecoder,
}

impl LegState {
    fn new() -> Self {
        LegState {
            stream: None,
            generation: 0,
            decoded_generation: 0,
            pending: Vec::with_capacity(32),
            decoder: LegDecoder::new(),
        }
    }
}

pub(crate) struct Timeline {
    t0: Instant,
    rate: u32,
    /// File frames per RTP tick.
    scale: i64,
    window: i64,
    jump: i64,
    legs: [LegState; 2],
    /// Frames from `written` on, not yet handed out.
    buf: VecDeque<[i16; 2]>,
    written: i64,
    /// The newest known point in time (latest arrival, or the clock while idle).
    now_pos: i64,
    scratch: Vec<i16>,
    pub(crate) stats: TimelineStats,
}

impl Timeline {
    pub(crate) fn new(t0: Instant, rate: u32, window: Duration, jump: Duration) -> Self {
        let mut t = Timeline {
            t0,
            rate,
            scale: (rate / RTP_CLOCK) as i64,
            window: 0,
            jump: 0,
            legs: [LegState::new(), LegState::new()],
            buf: VecDeque::with_capacity(rate as usize),
            written: 0,
            now_pos: 0,
            scratch: Vec::with_capacity(640),
            stats: TimelineStats::default(),
        };
        t.window = t.frames(window);
        t.jump = t.frames(jump);
        t
    }

    fn frames(&self, d: Duration) -> i64 {
        (d.as_nanos() * self.rate as u128 / 1_000_000_000) as i64
    }

    fn pos_of(&self, t: Instant) -> i64 {
        self.frames(t.saturating_duration_since(self.t0))
    }

    /// Frames handed out so far.
    pub(crate) fn written(&self) -> u64 {
        self.written as u64
    }

    /// Time moves on with every packet, audio or not.
    pub(crate) fn observe(&mut self, arrival: Instant) {
        self.now_pos = self.now_pos.max(self.pos_of(arrival));
    }

    /// Time also moves on with the clock when no packet comes (hold, both sides silent), held
    /// back by `grace` so that packets still queued for us are not made late by it.
    pub(crate) fn observe_clock(&mut self, now: Instant, grace: Duration) {
        let pos = self.pos_of(now) - self.frames(grace);
        self.now_pos = self.now_pos.max(pos);
    }

    /// Puts an audio packet in its leg's jitter buffer at the place its timestamp says.
    pub(crate) fn place(&mut self, pkt: &RecPacket, kind: AudioKind) {
        self.observe(pkt.arrival);
        let arrival_pos = self.pos_of(pkt.arrival);
        let (scale, jump) = (self.scale, self.jump);
        let leg = &mut self.legs[pkt.leg.channel()];
        let placed = match leg.stream.as_mut() {
            Some(s) if s.ssrc == pkt.ssrc => {
                let ext = s.extend(pkt.timestamp);
                let pos = s.anchor_pos + (ext - s.anchor_ts) * scale;
                ((pos - arrival_pos).abs() <= jump).then_some(pos)
            }
            _ => None,
        };
        let pos = match placed {
            Some(pos) => pos,
            None => {
                if leg.stream.is_some() {
                    self.stats.reanchors += 1;
                }
                leg.stream = Some(Stream {
                    ssrc: pkt.ssrc,
                    anchor_ts: pkt.timestamp as i64,
                    anchor_pos: arrival_pos,
                    last_raw: pkt.timestamp,
                    last_ext: pkt.timestamp as i64,
                });
                leg.generation = leg.generation.wrapping_add(1);
                arrival_pos
            }
        };
        let at = leg.pending.partition_point(|p| p.pos <= pos);
        leg.pending.insert(
            at,
            Pending {
                pos,
                generation: leg.generation,
                kind,
                payload: pkt.payload.clone(),
            },
        );
    }

    /// Decodes and paints every pending packet that starts before `until`.
    fn release(&mut self, until: i64) {
        let rate = self.rate;
        for (ch, leg) in self.legs.iter_mut().enumerate() {
            let n = leg.pending.partition_point(|p| p.pos < until);
            for p in leg.pending.drain(..n) {
                if p.generation != leg.decoded_generation {
                    leg.decoder.reset();
                    leg.decoded_generation = p.generation;
                }
                leg.decoder
                    .decode(p.kind, &p.payload, rate, &mut self.scratch);
                let painted = paint(&mut self.buf, self.written, ch, p.pos, &self.scratch);
                if !painted {
                    self.stats.late_packets += 1;
                }
            }
        }
    }

    /// Appends (interleaved, left first) the frames that are final now; returns how many.
    pub(crate) fn drain_ready(&mut self, out: &mut Vec<i16>) -> usize {
        let until = self.now_pos - self.window;
        self.release(until);
        self.emit_until(until, out)
    }

    /// Releases everything and appends all frames up to `end` (or the last sample, if later).
    pub(crate) fn drain_all(&mut self, end: Instant, out: &mut Vec<i16>) -> usize {
        self.release(i64::MAX);
        let until = self.pos_of(end).max(self.written + self.buf.len() as i64);
        self.emit_until(until, out)
    }

    fn emit_until(&mut self, until: i64, out: &mut Vec<i16>) -> usize {
        let n = (until - self.written).max(0) as usize;
        out.reserve(n * 2);
        for _ in 0..n {
            let [l, r] = self.buf.pop_front().unwrap_or([0, 0]);
            out.push(l);
            out.push(r);
        }
        self.written += n as i64;
        n
    }
}

/// Writes `samples` into channel `ch` from position `pos`; the part before `written` is gone.
/// Returns false when nothing could be placed (the packet came too late).
fn paint(buf: &mut VecDeque<[i16; 2]>, written: i64, ch: usize, pos: i64, samples: &[i16]) -> bool {
    let skip = (written - pos).max(0) as usize;
    if skip >= samples.len() {
        return false;
    }
    let start = (pos + skip as i64 - written) as usize;
    let end = start + samples.len() - skip;
    if buf.len() < end {
        buf.resize(end, [0, 0]);
    }
    for (frame, &s) in buf.range_mut(start..end).zip(&samples[skip..]) {
        frame[ch] = s;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::packet::Leg;

    const MS: Duration = Duration::from_millis(1);

    /// A PCMA packet whose 160 samples all decode to `level` (0xd5 → 8, 0xaa → 32256).
    fn pkt(t0: Instant, leg: Leg, at_ms: u64, ts: u32, ssrc: u32, code: u8) -> RecPacket {
        RecPacket {
            leg,
            arrival: t0 + Duration::from_millis(at_ms),
            payload_type: 8,
            marker: false,
            sequence: 0,
            timestamp: ts,
            ssrc,
            payload: Bytes::from(vec![code; 160]),
        }
    }

    fn run(t0: Instant, pkts: &[RecPacket], end_ms: u64) -> (Vec<i16>, TimelineStats) {
        let mut tl = Timeline::new(t0, 8000, 60 * MS, 500 * MS);
        let mut out = Vec::new();
        // Fed in arrival order, as the relay would.
        let mut pkts = pkts.to_vec();
        pkts.sort_by_key(|p| p.arrival);
        for p in &pkts {
            tl.place(p, AudioKind::Pcma);
            tl.drain_ready(&mut out);
        }
        tl.drain_all(t0 + Duration::from_millis(end_ms), &mut out);
        (out, tl.stats.clone())
    }

    #[test]
    fn places_by_timestamp_with_gaps_and_reordering() {
        let t0 = Instant::now();
        let mut p = Vec::new();
        // Inside starts at 100 ms; packet 2 lost; 4 and 5 swapped (5 arrives first).
        for (i, at) in [
            (0u32, 100),
            (1, 120),
            (3, 160),
            (5, 200),
            (4, 205),
            (6, 220),
        ] {
            p.push(pkt(t0, Leg::Inside, at, 1000 + i * 160, 7, 0xaa));
        }
        p.push(pkt(t0, Leg::Outside, 150, 55, 9, 0xd5));
        let (out, stats) = run(t0, &p, 300);
        assert_eq!(out.len(), 2 * 2400, "300 ms at 8 kHz");
        let left = |f: usize| out[2 * f];
        let right = |f: usize| out[2 * f + 1];
        assert_eq!(left(799), 0);
        assert_eq!(left(800), 32256, "first packet at its arrival");
        assert_eq!(left(1119), 32256);
        assert_eq!(left(1120), 0, "lost packet is silence");
        assert_eq!(left(1279), 0);
        assert!(
            (1280..1920).all(|f| left(f) == 32256),
            "reordered packets in place"
        );
        assert_eq!(left(1920), 0);
        assert!((1200..1360).all(|f| right(f) == 8));
        assert_eq!(right(1360), 0);
        assert_eq!(stats, TimelineStats::default());
    }

    #[test]
    fn reanchors_on_jump_and_ssrc_change_and_drops_late() {
        let t0 = Instant::now();
        let c_ts = u32::MAX - 1000;
        let p = vec![
            pkt(t0, Leg::Inside, 0, 0, 1, 0xaa),
            // The timestamp jumps 10 s ahead: placed at arrival (40 ms), not at 10 s.
            pkt(t0, Leg::Inside, 40, 80_000, 1, 0xaa),
            // New SSRC with an unrelated timestamp: placed at arrival (100 ms).
            pkt(t0, Leg::Inside, 100, c_ts, 2, 0xaa),
            // Timestamps wrap around within the new stream: 300 ms later.
            pkt(t0, Leg::Inside, 400, c_ts.wrapping_add(2400), 2, 0xaa),
            // Far too late: its place (120 ms) was written long ago.
            pkt(t0, Leg::Inside, 500, c_ts.wrapping_add(160), 2, 0xaa),
        ];
        let (out, stats) = run(t0, &p, 500);
        let left = |f: usize| out[2 * f];
        assert_eq!(out.len(), 2 * 4000);
        assert_eq!(left(320), 32256);
        assert_eq!(left(480), 0);
        assert_eq!(left(800), 32256);
        assert_eq!(left(3200), 32256, "wrapped timestamp placed at 400 ms");
        assert_eq!(stats.reanchors, 2);
        assert_eq!(stats.late_packets, 1);
    }

    #[test]
    fn wrap_around_is_continuous() {
        let t0 = Instant::now();
        let start = u32::MAX - 159;
        let p = vec![
            pkt(t0, Leg::Outside, 0, start, 3, 0xaa),
            pkt(t0, Leg::Outside, 20, start.wrapping_add(160), 3, 0xaa),
            pkt(t0, Leg::Outside, 40, start.wrapping_add(320), 3, 0xaa),
        ];
        let (out, stats) = run(t0, &p, 60);
        assert!(out.chunks(2).all(|f| f[1] == 32256));
        assert_eq!(stats.reanchors, 0);
    }

    #[test]
    fn clock_advances_while_idle() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(t0, 8000, 60 * MS, 500 * MS);
        let mut out = Vec::new();
        tl.observe_clock(t0 + 2000 * MS, 1000 * MS);
        assert_eq!(tl.drain_ready(&mut out), 8000 - 480);
        assert!(out.iter().all(|&s| s == 0));
    }
}
