//! `Timeline`'s placement rules, packet by packet.

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
    let mut tl = Timeline::new(t0, 8000, 60 * MS, 500 * MS, 10_000 * MS);
    let mut out = Vec::new();
    // Fed in arrival order, as the relay would; patches applied as the writer would.
    let mut pkts = pkts.to_vec();
    pkts.sort_by_key(|p| p.arrival);
    for p in &pkts {
        tl.place(p, AudioKind::Pcma);
        tl.drain_ready(&mut out);
        apply(&mut out, tl.take_patches());
    }
    tl.drain_all(t0 + Duration::from_millis(end_ms), &mut out);
    apply(&mut out, tl.take_patches());
    (out, tl.stats.clone())
}

fn apply(out: &mut [i16], patches: Vec<Patch>) {
    for p in patches {
        for (i, s) in p.samples.iter().enumerate() {
            let at = 2 * (p.pos as usize + i) + p.channel;
            assert_eq!(out[at], 0, "a patch only fills silence");
            out[at] = *s;
        }
    }
}

/// A 20 ms PCMA packet stream on one leg: (arrival ms, timestamp index) pairs.
fn stream(t0: Instant, leg: Leg, ssrc: u32, timing: &[(u64, u32)]) -> Vec<RecPacket> {
    timing
        .iter()
        .map(|&(at, i)| pkt(t0, leg, at, 5000 + i * 160, ssrc, 0xaa))
        .collect()
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
        // Late: its place (120 ms) was written long ago, but is silent: patched.
        pkt(t0, Leg::Inside, 500, c_ts.wrapping_add(160), 2, 0xaa),
        // Too late: its place (100 ms) holds audio already (a duplicate): dropped.
        pkt(t0, Leg::Inside, 510, c_ts, 2, 0xaa),
    ];
    let (out, stats) = run(t0, &p, 500);
    let left = |f: usize| out[2 * f];
    assert_eq!(out.len(), 2 * 4000);
    assert_eq!(left(320), 32256);
    assert_eq!(left(480), 0);
    assert_eq!(left(800), 32256);
    assert_eq!(left(960), 32256, "late packet put in its place");
    assert_eq!(left(1119), 32256);
    assert_eq!(left(1120), 0);
    assert_eq!(left(3200), 32256, "wrapped timestamp placed at 400 ms");
    assert_eq!(stats.reanchors, 2);
    assert_eq!(stats.late_packets, 1);
    assert_eq!(stats.patched_packets, 1);
}

#[test]
fn a_burst_after_a_stall_goes_where_its_timestamps_say() {
    let t0 = Instant::now();
    // 0..1 s on time, then the sender stalls 1.5 s and sends the 75 packets it owes within
    // 15 ms, then goes on in time.
    let mut timing: Vec<(u64, u32)> = (0..50).map(|i| (20 * i as u64, i)).collect();
    timing.extend((50..125).map(|i| (2500 + (i as u64 - 50) / 5, i)));
    timing.extend((126..150).map(|i| (20 * i as u64, i)));
    let (out, stats) = run(t0, &stream(t0, Leg::Outside, 4, &timing), 3000);
    assert_eq!(out.len(), 2 * 24_000, "as long as the call");
    let right: Vec<i16> = out.iter().skip(1).step_by(2).copied().collect();
    let silent = right[..25_000.min(right.len())]
        .iter()
        .filter(|&&s| s == 0)
        .count();
    // Every packet is in the file; only 125 (never sent) is silence: 160 frames.
    assert_eq!(silent, 160, "{stats:?}");
    assert!(right[125 * 160..126 * 160].iter().all(|&s| s == 0));
    assert_eq!(stats.reanchors, 0);
    assert_eq!(stats.late_packets, 0);
    assert!(stats.patched_packets >= 50, "{stats:?}");
}

#[test]
fn a_timestamp_jumping_back_on_a_live_stream_reanchors() {
    let t0 = Instant::now();
    // On time for 2 s, then the timestamps restart 1.5 s back and go on in time: that
    // audio is new, not owed, and must not overwrite what was recorded.
    let mut timing: Vec<(u64, u32)> = (0..100).map(|i| (20 * i as u64, i)).collect();
    timing.extend((100..150).map(|i| (20 * i as u64, i - 75)));
    let (out, stats) = run(t0, &stream(t0, Leg::Inside, 5, &timing), 3000);
    let left: Vec<i16> = out.iter().step_by(2).copied().collect();
    assert!(left[..24_000].iter().all(|&s| s == 32256), "{stats:?}");
    assert_eq!(stats.reanchors, 1);
    assert_eq!(stats.patched_packets, 0);
}

#[test]
fn a_late_run_longer_than_the_jump_reanchors() {
    let t0 = Instant::now();
    // Talk for 200 ms, silence, then from 3 s a stream 2 s behind its timestamps, in time
    // (not a catch-up burst): at most `jump` (500 ms) of it goes into the silent past.
    let mut timing: Vec<(u64, u32)> = (0..10).map(|i| (20 * i as u64, i)).collect();
    timing.extend((150..250).map(|i| (20 * i as u64, i - 100)));
    let (out, stats) = run(t0, &stream(t0, Leg::Inside, 6, &timing), 5000);
    let left: Vec<i16> = out.iter().step_by(2).copied().collect();
    assert_eq!(stats.reanchors, 1, "{stats:?}");
    assert!(stats.patched_packets <= 26, "{stats:?}");
    assert!(
        left[32_000..40_000].iter().all(|&s| s == 32256),
        "after re-anchoring"
    );
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
    let mut tl = Timeline::new(t0, 8000, 60 * MS, 500 * MS, 10_000 * MS);
    let mut out = Vec::new();
    tl.observe_clock(t0 + 2000 * MS, 1000 * MS);
    assert_eq!(tl.drain_ready(&mut out), 8000 - 480);
    assert!(out.iter().all(|&s| s == 0));
}

#[test]
fn a_late_stamped_first_clump_does_not_shift_the_leg() {
    let t0 = Instant::now();
    // Sent from 100 ms on, every 20 ms; the relay thread got to the first three only at 150 ms
    // (one clump), then on time. The leg is placed by its on-time packets: from 100 ms.
    let mut timing: Vec<(u64, u32)> = (0..3).map(|i| (150, i)).collect();
    timing.extend((3..20).map(|i| (100 + 20 * i as u64, i)));
    let (out, stats) = run(t0, &stream(t0, Leg::Inside, 8, &timing), 600);
    let left: Vec<i16> = out.iter().step_by(2).copied().collect();
    assert!(left[..800].iter().all(|&s| s == 0), "nothing before 100 ms");
    assert!(
        left[800..800 + 20 * 160].iter().all(|&s| s == 32256),
        "20 packets from 100 ms, no gap: {stats:?}"
    );
    assert!(left[800 + 20 * 160..].iter().all(|&s| s == 0));
    assert_eq!(stats, TimelineStats::default());
}

#[test]
fn an_anchor_already_decoded_is_not_moved_back() {
    let t0 = Instant::now();
    // The first packet is stamped 50 ms late and the next ones follow it in step for 400 ms
    // (its place, 50 ms, is final by then); packet 20 is lost, and from 21 on they come 50 ms
    // sooner. Moving the leg back now would shift the rest of the call into the lost packet's
    // place (and write over what was placed, were nothing lost): it stays, every packet where
    // its timestamp says.
    let mut timing: Vec<(u64, u32)> = (0..20).map(|i| (50 + 20 * i as u64, i)).collect();
    timing.extend((21..40).map(|i| (20 * i as u64, i)));
    let (out, stats) = run(t0, &stream(t0, Leg::Inside, 9, &timing), 1000);
    let left: Vec<i16> = out.iter().step_by(2).copied().collect();
    let lost = 400 + 20 * 160;
    assert!(left[..400].iter().all(|&s| s == 0));
    assert!(left[400..lost].iter().all(|&s| s == 32256), "{stats:?}");
    assert!(
        left[lost..lost + 160].iter().all(|&s| s == 0),
        "the lost packet's place stays silent: {stats:?}"
    );
    assert!(
        left[lost + 160..lost + 20 * 160]
            .iter()
            .all(|&s| s == 32256),
        "{stats:?}"
    );
    assert!(left[lost + 20 * 160..].iter().all(|&s| s == 0));
    assert_eq!(stats, TimelineStats::default());
}

/// `paint` writes through the ring's two slices: the same frames as writing one by one, wherever
/// the ring's head is and whether the samples cross its wrap, start before `written` or grow it.
#[test]
fn paint_matches_frame_by_frame_across_the_ring_wrap() {
    let mut seed = 0x2545_f491_u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for _ in 0..2000 {
        // A ring whose head sits anywhere in its storage.
        let mut ring: std::collections::VecDeque<[i16; 2]> =
            std::collections::VecDeque::with_capacity(64);
        for _ in 0..next(64) {
            ring.push_back([1, 1]);
        }
        for _ in 0..next(ring.len() as u64 + 1) {
            ring.pop_front();
        }
        for i in 0..next(40) {
            ring.push_back([i as i16, -(i as i16)]);
        }
        let mut naive = ring.clone();
        let written = next(1000) as i64;
        let pos = written - 20 + next(80) as i64;
        let ch = next(2) as usize;
        let samples: Vec<i16> = (0..next(50)).map(|i| 1000 + i as i16).collect();
        let grow = 1 + next(100) as usize;
        let painted = paint(&mut ring, grow, written, ch, pos, &samples);
        // Frame by frame.
        let skip = (written - pos).max(0) as usize;
        let expected = skip < samples.len();
        if expected {
            let start = (pos + skip as i64 - written) as usize;
            for (k, &s) in samples[skip..].iter().enumerate() {
                if naive.len() <= start + k {
                    naive.resize(start + k + 1, [0, 0]);
                }
                naive[start + k][ch] = s;
            }
        }
        assert_eq!(painted, expected);
        assert_eq!(
            ring,
            naive,
            "written {written} pos {pos} ch {ch} n {}",
            samples.len()
        );
    }
}

#[test]
fn a_backlog_is_released_a_step_at_a_time_with_the_same_frames() {
    let t0 = Instant::now();
    // Two seconds of both legs, the second leg 7 ms behind and one packet reordered.
    let mut pkts = stream(
        t0,
        Leg::Inside,
        1,
        &(0..100).map(|i| (20 * i as u64, i)).collect::<Vec<_>>(),
    );
    let mut outside: Vec<(u64, u32)> = (0..100).map(|i| (7 + 20 * i as u64, i)).collect();
    outside.swap(40, 41);
    pkts.extend(stream(t0, Leg::Outside, 2, &outside));
    let (step_by_step, _) = run(t0, &pkts, 2100);
    // A late worker: everything placed, then one drain.
    let mut tl = Timeline::new(t0, 8000, 60 * MS, 500 * MS, 10_000 * MS);
    pkts.sort_by_key(|p| p.arrival);
    for p in &pkts {
        tl.place(p, AudioKind::Pcma);
    }
    let mut out = Vec::new();
    tl.drain_ready(&mut out);
    assert!(
        out.len() > 2 * 15_000,
        "most of the two seconds: {}",
        out.len()
    );
    assert!(
        tl.buf.capacity() <= 1024,
        "the frame buffer holds a step, not the backlog: {} frames",
        tl.buf.capacity()
    );
    tl.drain_all(t0 + 2100 * MS, &mut out);
    assert_eq!(out, step_by_step);
    assert_eq!(tl.stats, TimelineStats::default());
}

#[test]
fn drain_all_writes_what_starts_past_the_end() {
    let t0 = Instant::now();
    // The last packet's timestamp puts it 100 ms after the moment the call is closed at.
    let p = stream(t0, Leg::Inside, 1, &[(0, 0), (20, 1), (40, 7)]);
    let (out, stats) = run(t0, &p, 50);
    let left: Vec<i16> = out.iter().step_by(2).copied().collect();
    assert_eq!(left.len(), 8 * 160, "up to the last sample, past the end");
    assert!(left[..320].iter().all(|&s| s == 32256));
    assert!(left[320..7 * 160].iter().all(|&s| s == 0));
    assert!(left[7 * 160..].iter().all(|&s| s == 32256));
    assert_eq!(stats.late_packets, 0);
}
