//! Placement to the sample: a stream whose packets arrive in clumps (a sender or relay thread
//! that is scheduled late on a busy machine) is put where its RTP timestamps say, at one
//! alignment for the whole call. Arrival times only anchor a leg (its first packet) and tell a
//! real discontinuity (a new SSRC, a timestamp jump); jitter of tens or hundreds of
//! milliseconds neither moves audio nor drops it.

use std::time::{Duration, Instant};

use super::*;
use crate::recording::Recorder;

/// When packet `n` (20 ms each) of the clumped stream arrives, in ms after the start: the first
/// one 30 ms late (the anchor), then in clumps of three every 60 ms (each up to 40 ms late),
/// with a 400 ms stall at 1 s (its 20 packets then come at once, later than the recorder's
/// jitter window) and a 90 ms one at 2 s.
fn clumped_arrival(n: u64) -> u64 {
    let nominal = n * 20;
    match n {
        0 => 30,
        50..=69 => 1400,
        100..=104 => 2090,
        _ => nominal.div_ceil(60) * 60,
    }
}

#[test]
fn packets_arriving_in_clumps_land_on_their_timestamps_to_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_in(dir.path(), test_options());
    let t0 = Instant::now();
    let rec = Recorder::open_blocking(
        &pool,
        spec("CALL-CLUMPS", t0, Codec::Pcmu, PayloadMap::new()),
    )
    .unwrap();
    let tap = rec.tap();
    let inside = Source::pcmu(Leg::Inside, 440.0, 0x1, 4_000_000_000);
    let outside = Source::pcmu(Leg::Outside, 1000.0, 0x2, 77);
    let mut enc = G722Encoder::new();
    const PACKETS: u64 = 150;
    let mut pkts = Vec::new();
    for n in 0..PACKETS {
        let clumped = clumped_arrival(n);
        pkts.push(inside.packet(t0, n, Duration::from_millis(clumped), &mut enc));
        // The other leg on time: it moves the timeline on while the first one stalls.
        pkts.push(outside.packet(t0, n, Duration::from_millis(n * 20 + 5), &mut enc));
    }
    pkts.sort_by_key(|p| p.arrival);
    for p in pkts {
        assert!(tap.push(p));
    }
    let path = rec.path().to_path_buf();
    let result = rec.finish_blocking(t0 + Duration::from_secs(4)).unwrap();
    assert!(result.complete, "{result:?}");
    assert_eq!(result.reanchors, 0, "{result:?}");
    assert_eq!(result.late_packets, 0, "{result:?}");
    assert!(
        result.patched_packets > 0,
        "the stall outlasted the window: {result:?}"
    );

    let (_, left, right) = read_wav(&path);
    // Each leg's packet n is at n * 160 samples from where its least delayed packets put its
    // start (not where its late first packet came), exactly the samples sent; nothing else on
    // the channel.
    for (name, channel, source, anchor_ms) in [
        ("left", &left, &inside, 0u64),
        ("right", &right, &outside, 5),
    ] {
        let anchor = (anchor_ms * 8) as usize;
        let mut expected = vec![0.0; channel.len()];
        for n in 0..PACKETS {
            let mut pcm = Vec::new();
            g711::decode_ulaw(&source.payload(n, &mut enc), &mut pcm);
            let at = anchor + n as usize * 160;
            for (i, s) in pcm.iter().enumerate() {
                expected[at + i] = f64::from(*s);
            }
        }
        let wrong: Vec<usize> = (0..channel.len())
            .filter(|&i| channel[i] != expected[i])
            .collect();
        assert!(
            wrong.is_empty(),
            "{name}: {} samples out of place, the first at {:?} ({result:?})",
            wrong.len(),
            wrong.first()
        );
    }
}
