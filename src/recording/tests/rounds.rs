//! What a call tells its recording is handled when it comes, not at the worker's next round:
//! a call's end (and the slot it holds until its CDR is written) never waits for a round.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;
use crate::recording::Recorder;

/// Rounds an hour apart: anything that waits for the next round waits an hour.
fn rare_rounds() -> RecorderOptions {
    RecorderOptions {
        tick: Duration::from_secs(3600),
        ..test_options()
    }
}

/// How long a test lets the worker answer before it calls the answer lost (far below the hour
/// a round would take, far above what a loaded machine needs).
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

#[test]
fn a_finish_is_answered_without_waiting_for_the_next_round() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_in(dir.path(), rare_rounds());
    let t0 = Instant::now();
    let rec =
        Recorder::open_blocking(&pool, spec("PROMPT", t0, Codec::Pcmu, PayloadMap::new())).unwrap();
    let tap = rec.tap();
    let a = Source::pcmu(Leg::Inside, 440.0, 9, 0);
    let mut g722 = G722Encoder::new();
    // Half a second of audio, queued after the worker's first round (made when the call came).
    for n in 0..25 {
        assert!(tap.push(a.packet(t0, n, Duration::from_millis(n * 20), &mut g722)));
    }
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(rec.finish_blocking(t0 + Duration::from_millis(500)));
    });
    let res = finished
        .recv_timeout(ANSWER_WITHIN)
        .expect("the finish waited for the worker's next round")
        .unwrap();
    // The packets queued since the last round are in the file: the finish drained the queue.
    assert_eq!(res.packets, [25, 0]);
    assert!(res.complete, "{res:?}");
    let (_, left, _) = read_wav(&res.path);
    assert_eq!(left.len(), 4000);
    assert!(tone_level(&left, 8000.0, 440.0) > 6000.0);
    pool.shutdown_blocking();
}

#[test]
fn a_dropped_recorder_is_closed_without_waiting_for_the_next_round() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_in(dir.path(), rare_rounds());
    let rec = Recorder::open_blocking(
        &pool,
        spec("GONE", Instant::now(), Codec::Pcmu, PayloadMap::new()),
    )
    .unwrap();
    let (path, part) = (rec.path().to_path_buf(), rec.part_path());
    drop(rec);
    // `wait_for` gives up after seconds, far below the hour a round would take.
    wait_for("the dropped recording closed", || {
        path.exists() && !part.exists() && pool.active_calls() == 0
    });
    assert!(hound::WavReader::open(&path).is_ok());
    pool.shutdown_blocking();
}
