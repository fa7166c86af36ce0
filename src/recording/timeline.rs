//! Places each leg's samples on the call's wall-clock timeline and interleaves the two legs.
//!
//! Positions are in file frames counted from the recording's start instant `t0`. Each leg's
//! stream is anchored once: its first packet goes where it arrived, and later packets go where
//! their RTP timestamp says relative to that first packet. So lost packets and silence
//! suppression leave silence, reordered packets land in their place, and both legs follow the
//! wall clock. A new SSRC, or a timestamp ahead of the arrival time by more than `jump`,
//! re-anchors the leg on the arrival time.
//!
//! Arrival times are taken when the relay thread gets to a packet, so on a busy machine the
//! first packets of a stream may be stamped late, in a clump, and a later packet then comes
//! sooner than the anchor predicts. As long as none of the anchor's packets has been decoded
//! (the jitter window), the anchor moves back to that earlier arrival, taking its pending
//! packets with it: the leg is placed by its least delayed packet, as the other leg and the
//! wall clock (a PCI pause's interval) are, not by the first one's scheduling. After that a leg
//! is not moved back when a packet comes sooner: that would overwrite audio already placed,
//! and evidence keeps every sample rather than a few milliseconds of alignment.
//!
//! Packets wait in a per-leg jitter buffer until the timeline has moved `window` past them, are
//! then decoded in order (G.722 is stateful) and painted into a stereo buffer; frames before that
//! point are final and handed to the writer.
//!
//! A packet whose place was already handed out is not lost when that place is still silent on
//! its leg and no older than `horizon`: it becomes a `Patch` that the writer puts into the file
//! where it belongs. This is what a sender does after a stall (a CPU or network hiccup): it
//! sends the packets it owes in a burst, timestamps continuous with what came before. A packet
//! later than `jump` is taken as such a burst only while the burst lasts less than `jump`
//! and only into silence; otherwise (a timestamp that jumped back on a live stream) the leg
//! re-anchors on arrival as for any jump.

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
    /// Packets that came after their place had been written and were put there afterwards.
    pub patched_packets: u64,
}

/// Samples of one channel to put into frames already handed to the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Patch {
    /// First frame.
    pub(crate) pos: u64,
    pub(crate) channel: usize,
    pub(crate) samples: Vec<i16>,
}

/// Intervals of a leg's painted frames kept for the hole check; more (a hostile sender's
/// scattered tiny packets) forgets the oldest, which only makes fewer packets patchable.
const MAX_COVERED: usize = 4096;

/// RTP clock of every decodable codec here (G.722 too, per RFC 3551).
const RTP_CLOCK: u32 = 8_000;

/// How far the timeline moves per release step (`Timeline::release_until`): a packet's length.
const RELEASE_STEP: Duration = Duration::from_millis(20);
/// A leg's pending packets grow by this many slots at a time.
const GROW_PENDING: usize = 4;

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
    /// Its place may already be written: the part before `written` becomes a `Patch`.
    patch: bool,
}

struct LegState {
    stream: Option<Stream>,
    /// Bumped at every (re-)anchor; the decoder is reset when a new generation is decoded.
    generation: u32,
    decoded_generation: u32,
    /// Sorted by position.
    pending: Vec<Pending>,
    decoder: LegDecoder,
    /// Frames painted on this leg, as sorted disjoint `[start, end)` intervals, back to the
    /// patch horizon: a late packet may only go where this leg is still silent.
    covered: VecDeque<(i64, i64)>,
    /// Arrival position of the first packet of the current run of packets later than `jump`.
    late_run_since: Option<i64>,
    /// A packet of the current anchor's generation has been decoded: the anchor stays.
    anchor_settled: bool,
}

impl LegState {
    fn is_covered(&self, pos: i64) -> bool {
        let i = self.covered.partition_point(|&(_, end)| end <= pos);
        self.covered.get(i).is_some_and(|&(start, _)| start <= pos)
            || self.pending.iter().any(|p| p.pos == pos)
    }
}

/// Adds `[start, end)` to a leg's painted intervals, merging neighbours, and forgets what is
/// older than `keep_from`.
fn cover(covered: &mut VecDeque<(i64, i64)>, start: i64, end: i64, keep_from: i64) {
    if start >= end {
        return;
    }
    let i = covered.partition_point(|&(_, e)| e < start);
    let mut j = i;
    let (mut s, mut e) = (start, end);
    while let Some(&(cs, ce)) = covered.get(j) {
        if cs > e {
            break;
        }
        s = s.min(cs);
        e = e.max(ce);
        j += 1;
    }
    covered.drain(i..j);
    covered.insert(i, (s, e));
    while covered.front().is_some_and(|&(_, e)| e <= keep_from) || covered.len() > MAX_COVERED {
        covered.pop_front();
    }
}

impl LegState {
    /// Moves the current anchor and its pending packets up to `by` frames earlier, never onto
    /// frames handed out (`written`) or audio of this leg's earlier anchors; returns how far
    /// it moved them.
    fn move_anchor_back(&mut self, by: i64, written: i64) -> i64 {
        let Some(stream) = self.stream.as_mut() else {
            return 0;
        };
        // Packets of an earlier anchor still pending: their length in frames is not known
        // before decoding, so this one stays where it is rather than risk landing on them.
        if self.pending.iter().any(|p| p.generation != self.generation) {
            return 0;
        }
        let floor = self
            .covered
            .back()
            .map_or(written, |&(_, end)| end.max(written));
        let first = self.pending.first().map_or(stream.anchor_pos, |p| p.pos);
        let by = by.min(first - floor).max(0);
        stream.anchor_pos -= by;
        for p in &mut self.pending {
            p.pos -= by;
        }
        by
    }

    fn new() -> Self {
        LegState {
            stream: None,
            generation: 0,
            decoded_generation: 0,
            // Grows with the packets that wait for their place (a few, reordered): 32 up front
            // were 5 KiB a call, most calls never holding more than two or three.
            pending: Vec::new(),
            decoder: LegDecoder::new(),
            covered: VecDeque::new(),
            late_run_since: None,
            anchor_settled: false,
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
    horizon: i64,
    /// `RELEASE_STEP` in frames; the frame buffer also grows by it.
    step: i64,
    legs: [LegState; 2],
    /// Late audio for frames already handed out, for the writer to put in place.
    patches: Vec<Patch>,
    /// Frames from `written` on, not yet handed out.
    buf: VecDeque<[i16; 2]>,
    written: i64,
    /// The newest known point in time (latest arrival, or the clock while idle).
    now_pos: i64,
    pub(crate) stats: TimelineStats,
}

impl Timeline {
    pub(crate) fn new(
        t0: Instant,
        rate: u32,
        window: Duration,
        jump: Duration,
        horizon: Duration,
    ) -> Self {
        let mut t = Timeline {
            t0,
            rate,
            scale: (rate / RTP_CLOCK) as i64,
            window: 0,
            jump: 0,
            horizon: 0,
            step: 1,
            legs: [LegState::new(), LegState::new()],
            patches: Vec::new(),
            // Holds what is painted and not yet handed out: a step of frames and the packets
            // that run past it (`release_step`), grown with use, never a second up front (32 KiB
            // a call at 8 kHz, issue 16).
            buf: VecDeque::new(),
            written: 0,
            now_pos: 0,
            stats: TimelineStats::default(),
        };
        t.window = t.frames(window);
        t.jump = t.frames(jump);
        t.horizon = t.frames(horizon);
        t.step = t.frames(RELEASE_STEP).max(1);
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
        let (scale, jump, written) = (self.scale, self.jump, self.written);
        let oldest_patchable = (written - self.horizon).max(0);
        let leg = &mut self.legs[pkt.leg.channel()];
        let fillable = |leg: &LegState, pos: i64| pos >= oldest_patchable && !leg.is_covered(pos);
        let mut placed = None;
        if let Some(s) = leg.stream.as_mut().filter(|s| s.ssrc == pkt.ssrc) {
            let ext = s.extend(pkt.timestamp);
            let pos = s.anchor_pos + (ext - s.anchor_ts) * scale;
            let lateness = arrival_pos - pos;
            if (-jump..=jump).contains(&lateness) {
                leg.late_run_since = None;
                let earlier = if lateness < 0 && !leg.anchor_settled {
                    leg.move_anchor_back(-lateness, written)
                } else {
                    0
                };
                placed = Some(pos - earlier);
            } else if lateness > jump {
                // A sender catching up after a stall sends what it owes at once: a short run.
                let since = *leg.late_run_since.get_or_insert(arrival_pos);
                if arrival_pos - since <= jump && fillable(leg, pos) {
                    placed = Some(pos);
                }
            }
        }
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
                leg.late_run_since = None;
                leg.anchor_settled = false;
                leg.generation = leg.generation.wrapping_add(1);
                arrival_pos
            }
        };
        let patch = pos < written && fillable(leg, pos);
        if leg.pending.len() == leg.pending.capacity() {
            // A few slots at a time, not doubled: a leg holds a window's packets (~12).
            leg.pending.reserve_exact(GROW_PENDING);
        }
        let at = leg.pending.partition_point(|p| p.pos <= pos);
        leg.pending.insert(
            at,
            Pending {
                pos,
                generation: leg.generation,
                kind,
                payload: pkt.payload.clone(),
                patch,
            },
        );
    }

    /// Late audio for frames already handed out, oldest first; the writer must apply them.
    /// Patches made and not yet taken.
    pub(crate) fn patch_count(&self) -> usize {
        self.patches.len()
    }

    pub(crate) fn take_patches(&mut self) -> Vec<Patch> {
        std::mem::take(&mut self.patches)
    }

    /// Decodes and paints every pending packet that starts before `until`. Each packet is
    /// decoded into `scratch` past its length (the caller's buffer, shared by the recordings
    /// of a worker), which is left as it was.
    fn release(&mut self, until: i64, scratch: &mut Vec<i16>) {
        let (rate, written) = (self.rate, self.written);
        let keep_from = written - self.horizon;
        let mark = scratch.len();
        for (ch, leg) in self.legs.iter_mut().enumerate() {
            let n = leg.pending.partition_point(|p| p.pos < until);
            for p in leg.pending.drain(..n) {
                leg.anchor_settled |= p.generation == leg.generation;
                if p.generation != leg.decoded_generation {
                    leg.decoder.reset();
                    leg.decoded_generation = p.generation;
                }
                scratch.truncate(mark);
                leg.decoder.decode_append(p.kind, &p.payload, rate, scratch);
                let decoded = &scratch[mark..];
                let len = decoded.len() as i64;
                let mut from = 0;
                if p.patch && p.pos < written {
                    let past = (written - p.pos).min(len) as usize;
                    self.patches.push(Patch {
                        pos: p.pos as u64,
                        channel: ch,
                        samples: decoded[..past].to_vec(),
                    });
                    self.stats.patched_packets += 1;
                    from = past;
                }
                if from < decoded.len() {
                    let start = p.pos + from as i64;
                    let grow = self.step as usize;
                    let painted = paint(&mut self.buf, grow, written, ch, start, &decoded[from..]);
                    if !painted && from == 0 {
                        self.stats.late_packets += 1;
                        continue;
                    }
                }
                let covered_from = if from > 0 { p.pos } else { p.pos.max(written) };
                cover(&mut leg.covered, covered_from, p.pos + len, keep_from);
            }
        }
        scratch.truncate(mark);
    }

    /// Releases what starts before `until` and hands out the frames up to it, a step at a
    /// time: after a backlog (a late worker, a burst of packets) the frame buffer then holds a
    /// step and the packets running past it, not the whole backlog (the buffer keeps its
    /// largest size; issue 16). The same frames as one `release(until)`: a step's packets all
    /// start at or after the frames handed out by the step before.
    fn release_until(&mut self, until: i64, out: &mut Vec<i16>) -> usize {
        let mut n = 0;
        loop {
            let to = until.min(self.written.saturating_add(self.step));
            self.release(to, out);
            n += self.emit_until(to, out);
            if to >= until {
                return n;
            }
        }
    }

    /// Appends (interleaved, left first) the frames that are final now; returns how many.
    pub(crate) fn drain_ready(&mut self, out: &mut Vec<i16>) -> usize {
        self.drain_ready_at_most(out, usize::MAX)
    }

    /// `drain_ready`, at most `max` frames: call again while it returns `max`.
    pub(crate) fn drain_ready_at_most(&mut self, out: &mut Vec<i16>, max: usize) -> usize {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let until = (self.now_pos - self.window).min(self.written.saturating_add(max));
        self.release_until(until, out)
    }

    /// Releases everything and appends all frames up to `end` (or the last sample, if later).
    pub(crate) fn drain_all(&mut self, end: Instant, out: &mut Vec<i16>) -> usize {
        let end = self.pos_of(end);
        // What starts before the end a step at a time, then whatever a sender put past it.
        let mut n = self.release_until(end, out);
        self.release(i64::MAX, out);
        let until = end.max(self.written + self.buf.len() as i64);
        n += self.emit_until(until, out);
        n
    }

    fn emit_until(&mut self, until: i64, out: &mut Vec<i16>) -> usize {
        let n = (until - self.written).max(0) as usize;
        // Whole slices, not a frame at a time: most of a call's frames pass here (a second of
        // them is 8,000 to 16,000), and silence past the buffer is one resize.
        let buffered = n.min(self.buf.len());
        let (front, back) = self.buf.as_slices();
        let from_front = buffered.min(front.len());
        out.reserve(n * 2);
        out.extend_from_slice(front[..from_front].as_flattened());
        out.extend_from_slice(back[..buffered - from_front].as_flattened());
        self.buf.drain(..buffered);
        out.resize(out.len() + (n - buffered) * 2, 0);
        self.written += n as i64;
        n
    }
}

/// Writes `samples` into channel `ch` from position `pos`; the part before `written` is gone.
/// Returns false when nothing could be placed (the packet came too late).
/// The buffer grows by `grow` frames at a time.
fn paint(
    buf: &mut VecDeque<[i16; 2]>,
    grow: usize,
    written: i64,
    ch: usize,
    pos: i64,
    samples: &[i16],
) -> bool {
    let skip = (written - pos).max(0) as usize;
    if skip >= samples.len() {
        return false;
    }
    let start = (pos + skip as i64 - written) as usize;
    let end = start + samples.len() - skip;
    if buf.len() < end {
        if buf.capacity() < end {
            // A little past what is needed, not doubled: the buffer keeps its largest size.
            buf.reserve_exact(end.next_multiple_of(grow) - buf.len());
        }
        buf.resize(end, [0, 0]);
    }
    // Through the ring's two slices: a `range_mut` iterator checks which half at every frame.
    let (front, back) = buf.as_mut_slices();
    let split = front.len();
    let in_front = split.min(end);
    let first = front
        .get_mut(start.min(in_front)..in_front)
        .unwrap_or_default();
    let second = back
        .get_mut(start.saturating_sub(split)..end.saturating_sub(split))
        .unwrap_or_default();
    for (frame, &s) in first
        .iter_mut()
        .chain(second.iter_mut())
        .zip(&samples[skip..])
    {
        frame[ch] = s;
    }
    true
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
mod tests;
