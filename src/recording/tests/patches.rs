//! Late audio (patches into frames already written) waits for the header's regular rewrite
//! (`flush_interval`) or the close, unless `MAX_PENDING_PATCHES` wait: applied per worker round
//! it cost an eighth of the gateway's CPU under load (`session::apply_patches`). Read from the
//! file as it is on disk during the call, the late stretch stays silent until then, and is the
//! tone after.

use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::recording::patch::MAX_PENDING_PATCHES;
use crate::recording::wav::HEADER_LEN;
use crate::recording::Recorder;

const RATE: f64 = 8000.0;
/// Frames of one 20 ms packet at 8 kHz.
const PACKET_FRAMES: u64 = 160;

fn inside() -> Source {
    Source::pcmu(Leg::Inside, 440.0, 0x11, 1000)
}

fn outside() -> Source {
    Source::pcmu(Leg::Outside, 1000.0, 0x22, 5000)
}

/// The inside (left) channel of packets `from..to` as the file on disk holds it now (the
/// header may be stale during the call; the data starts after it all the same).
fn left_on_disk(path: &Path, from: u64, to: u64) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap();
    let start = (HEADER_LEN + from * PACKET_FRAMES * 4) as usize;
    let end = (HEADER_LEN + to * PACKET_FRAMES * 4) as usize;
    assert!(
        bytes.len() >= end,
        "{} bytes on disk, frames up to packet {to} expected",
        bytes.len()
    );
    bytes[start..end]
        .chunks_exact(4)
        .map(|f| f64::from(i16::from_le_bytes([f[0], f[1]])))
        .collect()
}

fn bytes_on_disk(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// A call of `total` packets a leg: the outside leg on time, the inside leg missing packets
/// `gap` until the file is written past them, then those arriving late at once. Returns the
/// recording (not finished), the file it is writing and the time the call started.
fn call_with_late_stretch(
    dir: &Path,
    opts: RecorderOptions,
    call_id: &str,
    total: u64,
    gap: std::ops::Range<u64>,
) -> (Recorder, std::path::PathBuf, Instant) {
    let pool = pool_in(dir, opts);
    let t0 = Instant::now();
    let rec =
        Recorder::open_blocking(&pool, spec(call_id, t0, Codec::Pcmu, PayloadMap::new())).unwrap();
    let tap = rec.tap();
    let path = rec.part_path();
    let (inside, outside) = (inside(), outside());
    let mut enc = G722Encoder::new();
    let mut pkts = Vec::new();
    for n in 0..total {
        let at = Duration::from_millis(n * 20);
        pkts.push(outside.packet(t0, n, at, &mut enc));
        if !gap.contains(&n) {
            pkts.push(inside.packet(t0, n, at, &mut enc));
        }
    }
    pkts.sort_by_key(|p| p.arrival);
    for p in pkts {
        assert!(tap.push(p));
    }
    // Written past the gap (the jitter window and one write buffer short of the end).
    let past_gap = HEADER_LEN + (gap.end + 20) * PACKET_FRAMES * 4;
    wait_for("the file written past the gap", || {
        bytes_on_disk(&path) >= past_gap
    });
    let late_at = Duration::from_millis(total * 20 - 10);
    for n in gap {
        assert!(tap.push(inside.packet(t0, n, late_at, &mut enc)));
    }
    (rec, path, t0)
}

#[test]
fn late_audio_waits_for_the_regular_header_rewrite() {
    let opts = RecorderOptions {
        flush_interval: Duration::from_secs(4),
        ..test_options()
    };
    let dir = tempfile::tempdir().unwrap();
    let (rec, part, t0) = call_with_late_stretch(dir.path(), opts, "CALL-PATCH-WAIT", 150, 50..70);
    // Some rounds of the worker (5 ms ticks): the late packets are taken, and wait.
    std::thread::sleep(Duration::from_millis(300));
    let before = left_on_disk(&part, 50, 70);
    assert_eq!(
        rms(&before),
        0.0,
        "late audio written before the header's rewrite"
    );
    // The rewrite (within 4 s of the last one) puts them in.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = left_on_disk(&part, 50, 70);
        if tone_level(&now, RATE, 440.0) > 4000.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "late audio not written by the header's rewrite"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let result = rec.finish_blocking(t0 + Duration::from_secs(4)).unwrap();
    assert_eq!(result.patched_packets, 20, "{result:?}");
}

#[test]
fn many_late_packets_are_put_in_without_waiting_for_the_rewrite() {
    // A rewrite far away: only the bound on waiting patches can put them in during the call.
    let opts = RecorderOptions {
        flush_interval: Duration::from_secs(600),
        ..test_options()
    };
    let late = MAX_PENDING_PATCHES as u64 + 4;
    let total = 50 + late + 60;
    let dir = tempfile::tempdir().unwrap();
    let (rec, part, t0) =
        call_with_late_stretch(dir.path(), opts, "CALL-PATCH-BOUND", total, 50..50 + late);
    let first = 50 + MAX_PENDING_PATCHES as u64;
    wait_for("the first waiting patches put in", || {
        tone_level(&left_on_disk(&part, 50, first), RATE, 440.0) > 4000.0
    });
    let path = rec.path().to_path_buf();
    let result = rec
        .finish_blocking(t0 + Duration::from_millis(total * 20 + 500))
        .unwrap();
    assert_eq!(result.patched_packets, late, "{result:?}");
    // The rest went in at the close.
    let (_, left, _) = read_wav(&path);
    let tail = &left[(first * PACKET_FRAMES) as usize..((50 + late) * PACKET_FRAMES) as usize];
    assert!(tone_level(tail, RATE, 440.0) > 4000.0);
}
