//! Synthetic sequences for `StreamMeter`.

use std::time::{Duration, Instant};

use super::rtp::RtpHeader;
use super::stats::StreamMeter;

fn hdr(seq: u16, ts: u32, ssrc: u32) -> RtpHeader {
    RtpHeader {
        payload_type: 0,
        marker: false,
        sequence: seq,
        timestamp: ts,
        ssrc,
        payload_offset: 12,
        payload_len: 160,
    }
}

/// Feeds (seq, ts, arrival ms) triples of one SSRC.
fn feed(meter: &mut StreamMeter, t0: Instant, packets: impl IntoIterator<Item = (u16, u32, u64)>) {
    for (seq, ts, ms) in packets {
        meter.on_packet(
            t0 + Duration::from_millis(ms),
            &hdr(seq, ts, 0xabc),
            172,
            false,
        );
    }
}

/// A perfectly paced G.711 stream: seq from `first`, 20 ms apart, 160 samples each.
fn paced(first: u16, n: u16, skip: &[u16]) -> Vec<(u16, u32, u64)> {
    (0..n)
        .filter(|i| !skip.contains(i))
        .map(|i| (first.wrapping_add(i), 160 * u32::from(i), 20 * u64::from(i)))
        .collect()
}

#[test]
fn clean_stream() {
    let mut m = StreamMeter::new(8000);
    feed(&mut m, Instant::now(), paced(1000, 100, &[]));
    let s = m.snapshot();
    assert_eq!(
        (s.packets, s.bytes, s.expected, s.lost),
        (100, 17_200, 100, 0)
    );
    assert_eq!((s.duplicates, s.reordered, s.ssrc_changes), (0, 0, 0));
    assert!(s.jitter_ms < 0.01);
    assert_eq!(s.longest_gap_ms, 20);
    assert!((s.mos().unwrap() - 4.39).abs() < 0.01);
}

#[test]
fn loss_counted() {
    let mut m = StreamMeter::new(8000);
    feed(&mut m, Instant::now(), paced(0, 100, &[10, 11, 50]));
    let s = m.snapshot();
    assert_eq!((s.packets, s.expected, s.lost), (97, 100, 3));
    assert!((s.loss_ratio() - 0.03).abs() < 1e-9);
    assert_eq!(s.longest_gap_ms, 60);
}

#[test]
fn wrap_at_65535() {
    let mut m = StreamMeter::new(8000);
    // 65500 … 65535, 0 … 63: the 36th and 37th packets (65535 and 0) lost.
    feed(&mut m, Instant::now(), paced(65_500, 100, &[35, 36]));
    let s = m.snapshot();
    assert_eq!((s.expected, s.lost, s.seq_restarts), (100, 2, 0));
    // Several full cycles.
    let mut m = StreamMeter::new(8000);
    let t0 = Instant::now();
    feed(
        &mut m,
        t0,
        (0..200_000u32).map(|i| (i as u16, 160 * i, 20 * u64::from(i))),
    );
    let s = m.snapshot();
    assert_eq!((s.expected, s.lost), (200_000, 0));
}

#[test]
fn reordering_is_not_loss() {
    let mut order = paced(500, 100, &[]);
    for pair in order.chunks_mut(2).skip(1).step_by(5) {
        pair.swap(0, 1); // arrival times swap with them: the later packet comes first
    }
    let mut m = StreamMeter::new(8000);
    feed(&mut m, Instant::now(), order);
    let s = m.snapshot();
    assert_eq!((s.expected, s.lost, s.reordered), (100, 0, 10));
}

#[test]
fn late_packet_before_the_first() {
    let mut m = StreamMeter::new(8000);
    feed(
        &mut m,
        Instant::now(),
        [(5, 800, 0), (3, 480, 5), (6, 960, 20)],
    );
    let s = m.snapshot();
    // 3..=6 expected, 4 missing.
    assert_eq!((s.expected, s.lost, s.reordered), (4, 1, 1));
    feed(&mut m, Instant::now(), [(4, 640, 30)]);
    assert_eq!(m.snapshot().lost, 0);
}

#[test]
fn duplicates_do_not_hide_loss() {
    let mut packets = Vec::new();
    for p in paced(7, 100, &[20, 21]) {
        packets.push(p);
        if p.0 % 10 == 0 {
            packets.push(p); // duplicated in the network
        }
    }
    packets.push((7 + 50, 8000, 2000)); // a stale copy, late
    let mut m = StreamMeter::new(8000);
    feed(&mut m, Instant::now(), packets);
    let s = m.snapshot();
    assert_eq!((s.packets, s.expected, s.lost), (98 + 10 + 1, 100, 2));
    assert_eq!(s.duplicates, 11);
}

#[test]
fn ssrc_change_keeps_each_sources_accounting() {
    let mut m = StreamMeter::new(8000);
    let t0 = Instant::now();
    for (seq, ts, ms) in paced(100, 50, &[5, 6]) {
        m.on_packet(t0 + Duration::from_millis(ms), &hdr(seq, ts, 1), 172, false);
    }
    // Re-INVITE to another media server: new SSRC, unrelated seq and timestamp.
    for (seq, ts, ms) in paced(40_000, 50, &[30]) {
        let h = hdr(seq, ts.wrapping_add(3_000_000_000), 2);
        m.on_packet(t0 + Duration::from_millis(1000 + ms), &h, 172, false);
    }
    let s = m.snapshot();
    assert_eq!(
        (s.ssrc_changes, s.expected, s.lost, s.seq_restarts),
        (1, 100, 3, 0)
    );
    assert!(s.jitter_ms < 0.01, "no jitter spike from the switch");

    // More SSRCs than tracked slots: retired ones keep their counts.
    let mut m = StreamMeter::new(8000);
    for ssrc in 0..10u32 {
        for (seq, ts, ms) in paced(0, 10, &[3]) {
            let at = t0 + Duration::from_millis(200 * u64::from(ssrc) + ms);
            m.on_packet(at, &hdr(seq, ts, ssrc), 172, false);
        }
    }
    let s = m.snapshot();
    assert_eq!((s.ssrc_changes, s.expected, s.lost), (9, 100, 10));
}

#[test]
fn sequence_restart_same_ssrc() {
    let mut m = StreamMeter::new(8000);
    let mut packets = paced(100, 50, &[]);
    // The sender restarts its sequence far away; the first packet after the jump is held back
    // until the next confirms the restart.
    packets.extend(
        paced(30_000, 50, &[])
            .into_iter()
            .map(|(s, t, ms)| (s, t + 8000, ms + 1000)),
    );
    feed(&mut m, Instant::now(), packets);
    let s = m.snapshot();
    assert_eq!((s.seq_restarts, s.lost), (1, 0));
    assert_eq!(s.expected, 99);
    // A single stray jump is ignored, and the stream goes on.
    let mut m = StreamMeter::new(8000);
    feed(
        &mut m,
        Instant::now(),
        [(1, 0, 0), (2, 160, 20), (9000, 320, 40), (3, 480, 60)],
    );
    let s = m.snapshot();
    assert_eq!((s.expected, s.lost, s.seq_restarts), (3, 0, 0));
}

#[test]
fn timestamp_jump_is_not_jitter() {
    let mut packets = paced(0, 100, &[]);
    for p in packets.iter_mut().skip(50) {
        p.1 = p.1.wrapping_add(4_000_000_000); // wraps u32 too
    }
    let mut m = StreamMeter::new(8000);
    feed(&mut m, Instant::now(), packets);
    let s = m.snapshot();
    assert_eq!(s.timestamp_jumps, 1);
    assert!(s.max_jitter_ms < 0.01, "{}", s.max_jitter_ms);
    // Silence suppression: timestamps and arrivals both skip 2 s — no jitter either.
    let mut m = StreamMeter::new(8000);
    let mut packets = paced(0, 50, &[]);
    packets.extend(
        paced(50, 50, &[])
            .into_iter()
            .map(|(s, t, ms)| (s, t + 24_000, ms + 3000)),
    );
    feed(&mut m, Instant::now(), packets);
    let s = m.snapshot();
    assert_eq!((s.timestamp_jumps, s.longest_gap_ms), (0, 2020));
    assert!(s.max_jitter_ms < 0.01);
}

#[test]
fn jitter_of_a_known_pattern() {
    // Arrivals alternate 10 ms and 30 ms apart, timestamps 20 ms apart: |D| = 10 ms = 80 units
    // every packet, so J_n = 80·(1 − (15/16)^n) units after n differences.
    let packets: Vec<(u16, u32, u64)> = (0..17u16)
        .map(|i| {
            let ms = 20 * u64::from(i) - if i % 2 == 1 { 10 } else { 0 };
            (i, 160 * u32::from(i), ms)
        })
        .collect();
    let mut m = StreamMeter::new(8000);
    feed(&mut m, Instant::now(), packets);
    let expected = 80.0 * (1.0 - (15.0f64 / 16.0).powi(16)) / 8.0;
    let got = m.snapshot().jitter_ms;
    assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    // Converges on 10 ms.
    let packets: Vec<(u16, u32, u64)> = (0..500u16)
        .map(|i| {
            (
                i,
                160 * u32::from(i),
                20 * u64::from(i) - if i % 2 == 1 { 10 } else { 0 },
            )
        })
        .collect();
    let mut m = StreamMeter::new(8000);
    feed(&mut m, Instant::now(), packets);
    let s = m.snapshot();
    assert!((s.jitter_ms - 10.0).abs() < 0.01, "{}", s.jitter_ms);
    assert!(s.mos().unwrap() < 4.39);
}

#[test]
fn telephone_events_stay_out_of_jitter() {
    let mut m = StreamMeter::new(8000);
    let t0 = Instant::now();
    for i in 0..100u16 {
        let at = t0 + Duration::from_millis(20 * u64::from(i));
        // Packets 40..60 are one DTMF event: same timestamp, 20 ms apart.
        let (ts, event) = if (40..60).contains(&i) {
            (6400, true)
        } else {
            (160 * u32::from(i), false)
        };
        m.on_packet(at, &hdr(i, ts, 9), 172, event);
    }
    let s = m.snapshot();
    assert_eq!((s.expected, s.lost), (100, 0));
    assert!(s.max_jitter_ms < 0.01, "{}", s.max_jitter_ms);
}

#[test]
fn hostile_sequences_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let mut m = StreamMeter::new(8000);
    let t0 = Instant::now();
    for i in 0..100_000u64 {
        let h = hdr(rng.gen(), rng.gen(), rng.gen_range(0..6));
        m.on_packet(
            t0 + Duration::from_micros(i * rng.gen_range(0..50)),
            &h,
            1500,
            false,
        );
        if i % 1000 == 0 {
            m.set_clock_rate(rng.gen_range(0..50_000));
        }
    }
    let s = m.snapshot();
    assert!(s.lost <= s.expected);
    assert!(s.jitter_ms.is_finite() && s.max_jitter_ms.is_finite());
    assert!(s.mos().is_some_and(|mos| (1.0..=4.5).contains(&mos)));
}
