//! Nothing is written before a call's first packet: a call without media leaves a WAV without
//! samples, and a late first packet gets the silence before it written in its place.

use std::time::{Duration, Instant};

use super::*;
use crate::model::RecordingStatus;
use crate::recording::digest::verify;
use crate::recording::Recorder;

/// The samples the `.part` file holds now (its size past the 44-byte header: hound writes the
/// header at creation and buffers what follows).
fn bytes_past_header(part: &Path) -> u64 {
    std::fs::metadata(part).unwrap().len().saturating_sub(44)
}

#[test]
fn a_call_without_packets_is_a_wav_without_samples() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_in(dir.path(), test_options());
    // Answered three seconds ago: the worker's ticks (5 ms) have a call of that length to keep.
    let t0 = Instant::now() - Duration::from_secs(3);
    let rec =
        Recorder::open_blocking(&pool, spec("QUIET", t0, Codec::Pcmu, PayloadMap::new())).unwrap();
    let part = rec.part_path();
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(
        bytes_past_header(&part),
        0,
        "silence written before any packet"
    );

    let res = rec.finish_blocking(Instant::now()).unwrap();
    assert_eq!(res.packets, [0, 0]);
    assert_eq!(
        RecordingStatus::of_closed(res.packets),
        RecordingStatus::NoMedia
    );
    assert!(res.complete, "closed normally: {res:?}");
    assert_eq!(res.duration_ms, 0);
    let (wspec, left, right) = read_wav(&res.path);
    assert_eq!((wspec.channels, wspec.sample_rate), (2, 8000));
    assert!(left.is_empty() && right.is_empty());
    assert_eq!(res.size_bytes, std::fs::metadata(&res.path).unwrap().len());
    assert!(
        verify(&res.path, &res.sha256_hex).unwrap(),
        "digest of the file"
    );
    pool.shutdown_blocking();
}

/// The first packet comes a minute into the call (answered on hold, say): the minute of silence
/// before it is written then, a second at a time, and the audio lands at its place in the
/// call's time.
#[test]
fn the_silence_before_a_late_first_packet_is_written_in_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_in(dir.path(), test_options());
    let t0 = Instant::now() - Duration::from_secs(61);
    let rec = Recorder::open_blocking(&pool, spec("LATE1ST", t0, Codec::Pcmu, PayloadMap::new()))
        .unwrap();
    let part = rec.part_path();
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        bytes_past_header(&part),
        0,
        "silence written before any packet"
    );

    let tap = rec.tap();
    let a = Source::pcmu(Leg::Inside, 440.0, 7, 1234);
    let mut g722 = G722Encoder::new();
    // One second of audio from 60 s on.
    for n in 0..50 {
        let at = Duration::from_secs(60) + Duration::from_millis(n * 20);
        assert!(tap.push(a.packet(t0, n, at, &mut g722)));
    }
    let res = rec.finish_blocking(t0 + Duration::from_secs(61)).unwrap();
    assert_eq!(res.packets, [50, 0]);
    assert_eq!(
        RecordingStatus::of_closed(res.packets),
        RecordingStatus::OneWay
    );
    assert_eq!(res.duration_ms, 61_000);
    let (_, left, right) = read_wav(&res.path);
    let r = 8000.0;
    assert_eq!(left.len(), 61 * 8000);
    assert!(
        rms(span(&left, r, 0.0, 59.9)) < 1.0,
        "silence before the first packet"
    );
    assert!(
        tone_level(span(&left, r, 60.1, 60.9), r, 440.0) > 6000.0,
        "the audio at 60 s"
    );
    assert!(rms(&right) < 1.0);
    pool.shutdown_blocking();
}

/// A call paused before any packet was recorded (`follow_clock`) and ended paused: the file
/// keeps the call's length in silence, as a pause's interval must be in the file.
#[test]
fn a_recording_told_to_follow_the_clock_keeps_the_calls_length() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_in(dir.path(), test_options());
    let t0 = Instant::now() - Duration::from_secs(2);
    let rec =
        Recorder::open_blocking(&pool, spec("PAUSED", t0, Codec::Pcmu, PayloadMap::new())).unwrap();
    rec.follow_clock();
    let part = rec.part_path();
    wait_for("the silence up to the pause written", || {
        bytes_past_header(&part) >= 8000 * 4
    });
    let ended = Instant::now();
    let res = rec.finish_blocking(ended).unwrap();
    assert_eq!(res.packets, [0, 0]);
    let expected = ended.duration_since(t0).as_millis() as u64;
    assert!(
        res.duration_ms.abs_diff(expected) <= 1,
        "{} ms for a call of {expected} ms",
        res.duration_ms
    );
    let (_, left, right) = read_wav(&res.path);
    assert!(rms(&left) < 1.0 && rms(&right) < 1.0);
    pool.shutdown_blocking();
}
