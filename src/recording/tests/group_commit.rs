//! Recordings closed at the same moment are made durable as one group (`durable`): each still
//! gets its own result, under its final name, with a digest of what is on disk.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::*;
use crate::recording::digest::verify;
use crate::recording::Recorder;

#[test]
fn many_recordings_closed_at_once_each_get_their_own_durable_result() {
    let dir = tempfile::tempdir().unwrap();
    let opts = RecorderOptions {
        workers: 2,
        ..test_options()
    };
    let pool = pool_in(dir.path(), opts);
    let t0 = Instant::now();
    let mut g722 = G722Encoder::new();
    let recorders: Vec<Recorder> = (0..64)
        .map(|i| {
            let rec = Recorder::open_blocking(
                &pool,
                spec(&format!("GROUP-{i}"), t0, Codec::Pcmu, PayloadMap::new()),
            )
            .unwrap();
            // Half a second of tone on the inside leg, a different tone per call.
            let source = Source::pcmu(Leg::Inside, 300.0 + 10.0 * i as f64, 0x100 + i, 0);
            for n in 0..25u64 {
                let at = Duration::from_millis(n * 20);
                assert!(rec.tap().push(source.packet(t0, n, at, &mut g722)));
            }
            rec
        })
        .collect();
    let ended = t0 + Duration::from_millis(500);
    // Every call finishes at the same instant, from threads of its own, as calls ending
    // together do: the committer finds them queued together.
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = recorders
            .into_iter()
            .map(|rec| s.spawn(move || rec.finish_blocking(ended)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut paths = BTreeSet::new();
    for (i, result) in results.into_iter().enumerate() {
        let r = result.unwrap_or_else(|e| panic!("recording {i}: {e}"));
        assert!(r.complete, "{r:?}");
        assert_eq!(r.duration_ms, 500, "{r:?}");
        assert_eq!(r.packets, [25, 0]);
        // Renamed before the result was given, with its own content.
        assert!(r.path.exists(), "{}", r.path.display());
        assert!(!crate::recording::writer::part_path(&r.path).exists());
        assert!(verify(&r.path, &r.sha256_hex).unwrap());
        let (spec, left, right) = read_wav(&r.path);
        assert_eq!(spec.channels, 2);
        let freq = 300.0 + 10.0 * i as f64;
        assert!(tone_level(span(&left, 8000.0, 0.1, 0.4), 8000.0, freq) > 0.3);
        assert!(rms(&right) < 1e-3);
        paths.insert(r.path);
    }
    assert_eq!(paths.len(), 64);
    pool.shutdown_blocking();
}

#[test]
fn a_recording_dropped_unfinished_is_still_closed_and_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_in(dir.path(), test_options());
    let t0 = Instant::now();
    let rec = Recorder::open_blocking(&pool, spec("DROPPED", t0, Codec::Pcmu, PayloadMap::new()))
        .unwrap();
    let (path, part) = (rec.path().to_path_buf(), rec.part_path());
    drop(rec);
    wait_for("the dropped recording renamed", || {
        path.exists() && !part.exists()
    });
    pool.shutdown_blocking();
}

/// A recording holds one descriptor for its WAV (the descriptor budget counts one), from the
/// open to the close, and none after.
#[test]
fn a_recording_holds_one_descriptor_for_its_wav() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_in(dir.path(), test_options());
    let t0 = Instant::now();
    let rec =
        Recorder::open_blocking(&pool, spec("ONE-FD", t0, Codec::Pcmu, PayloadMap::new())).unwrap();
    let part = rec.part_path();
    let path = rec.path().to_path_buf();
    let open_on = |file: &std::path::Path| {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == file))
            .count()
    };
    assert_eq!(open_on(&part), 1);
    let result = rec
        .finish_blocking(t0 + Duration::from_millis(100))
        .unwrap();
    assert_eq!(result.path, path);
    assert_eq!(open_on(&part) + open_on(&path), 0);
    pool.shutdown_blocking();
}
