//! Crash safety: the header is valid while recording, and a crashed recording is repaired.

use std::io::Write;
use std::time::{Duration, Instant};

use super::*;
use crate::recording::digest::{sha256_file, verify};
use crate::recording::repair::repair_all_blocking;
use crate::recording::Recorder;

fn sources() -> (Source, Source) {
    (
        Source::pcmu(Leg::Inside, 440.0, 1, 0),
        Source {
            leg: Leg::Outside,
            freq: 1000.0,
            pt: 8,
            codec: Codec::Pcma,
            ssrc: 2,
            ts0: 0,
        },
    )
}

/// Pushes packets `from..to` of both legs (20 ms each, arriving on time).
fn push(tap: &crate::recording::RecorderTap, t0: Instant, from: u64, to: u64) {
    let (a, b) = sources();
    let mut enc = G722Encoder::new();
    for n in from..to {
        let at = Duration::from_millis(n * 20);
        assert!(tap.push(a.packet(t0, n, at, &mut enc)));
        assert!(tap.push(b.packet(t0, n, at, &mut enc)));
    }
}

fn header_seconds(part: &std::path::Path, copy: &std::path::Path) -> f64 {
    snapshot(part, copy).map_or(0.0, |r| r.duration() as f64 / 8000.0)
}

#[test]
fn header_is_valid_while_recording() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_in(dir.path(), test_options());
    let t0 = Instant::now();
    let payloads = PayloadMap::new();
    let rec = Recorder::open_blocking(&pool, spec("LIVE", t0, Codec::Pcmu, payloads)).unwrap();
    let part = rec.part_path();
    let copy = dir.path().join("copy.wav");

    // Right after open the file is already a valid (empty) WAV.
    let r = snapshot(&part, &copy).expect("valid WAV at open");
    assert_eq!(
        (r.spec().channels, r.spec().sample_rate, r.duration()),
        (2, 8000, 0)
    );

    for (from, to, min_secs) in [(0, 500, 9.0), (500, 1000, 19.0)] {
        push(&rec.tap(), t0, from, to);
        wait_for("header flush", || header_seconds(&part, &copy) >= min_secs);
        // A player opening the file now reads every sample the header announces.
        let mut r = snapshot(&part, &copy).unwrap();
        let announced = r.len() as usize;
        let samples: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(samples.len(), announced);
        let (_, left, right) = read_wav(&copy);
        let end = left.len() as f64 / 8000.0;
        let (l, rt) = (
            span(&left, 8000.0, end - 1.0, end),
            span(&right, 8000.0, end - 1.0, end),
        );
        assert!(tone_level(l, 8000.0, 440.0) > 6000.0);
        assert!(tone_level(rt, 8000.0, 1000.0) > 6000.0);
    }
    let res = rec.finish_blocking(t0 + Duration::from_secs(20)).unwrap();
    assert_eq!(res.duration_ms, 20_000);
}

#[test]
fn crash_then_repair_keeps_audio_up_to_about_a_second_before() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_in(dir.path(), test_options());
    let t0 = Instant::now();
    let rec = Recorder::open_blocking(&pool, spec("CRASHED", t0, Codec::Pcmu, PayloadMap::new()))
        .unwrap();
    let part = rec.part_path();
    let path = rec.path().to_path_buf();
    let copy = dir.path().join("copy.wav");
    push(&rec.tap(), t0, 0, 500);
    wait_for("10 s written", || header_seconds(&part, &copy) >= 9.0);
    // Another half second reaches the worker, then the process "dies" at 10.5 s.
    push(&rec.tap(), t0, 500, 525);
    std::thread::sleep(Duration::from_millis(50));
    rec.crash();
    assert!(part.exists() && !path.exists());
    // A torn last write: a frame cut in the middle.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&part)
        .unwrap()
        .write_all(&[1, 2, 3])
        .unwrap();

    // An unrelated, properly closed recording is left alone.
    let t1 = Instant::now();
    let other =
        Recorder::open_blocking(&pool, spec("CLOSED", t1, Codec::Pcmu, PayloadMap::new())).unwrap();
    let other = other.finish_blocking(t1 + Duration::from_secs(1)).unwrap();

    let report = repair_all_blocking(dir.path());
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.repaired.len(), 1);
    let fixed = &report.repaired[0];
    assert_eq!(fixed.call_id, "CRASHED");
    assert_eq!(fixed.path, path);
    assert!(!part.exists());
    assert!(
        (9_500..=10_500).contains(&fixed.duration_ms),
        "audio up to about 1 s before the crash: {} ms",
        fixed.duration_ms
    );
    assert!(verify(&path, &fixed.sha256_hex).unwrap());
    assert_eq!(fixed.size_bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!((fixed.size_bytes - 44) % 4, 0, "whole frames");

    // It plays: every sample readable, and the tones are there to the end.
    let (wspec, left, right) = read_wav(&path);
    assert_eq!(wspec.channels, 2);
    assert_eq!(left.len() as u64, fixed.duration_ms * 8);
    let end = left.len() as f64 / 8000.0;
    assert!(tone_level(span(&left, 8000.0, end - 0.5, end), 8000.0, 440.0) > 6000.0);
    assert!(tone_level(span(&right, 8000.0, end - 0.5, end), 8000.0, 1000.0) > 6000.0);

    // Repair is idempotent and did not touch the closed recording.
    assert!(repair_all_blocking(dir.path()).repaired.is_empty());
    assert_eq!(sha256_file(&other.path).unwrap(), other.sha256_hex);
}

#[test]
fn unrepairable_part_is_reported_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let day = dir.path().join("2026/01/02");
    std::fs::create_dir_all(&day).unwrap();
    let junk = day.join("JUNK.wav.part");
    std::fs::write(&junk, b"not a wav").unwrap();
    let report = repair_all_blocking(dir.path());
    assert!(report.repaired.is_empty());
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, junk);
    assert!(junk.exists());
}

const CHILD_ENV: &str = "TRUNKGUARD_REC_SIGKILL_DIR";

/// Kills the child when the test ends, however it ends.
struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real process death: this test binary runs `sigkill_child` in a child process, which records
/// in real time, and kills it with SIGKILL mid-call. Repair must give back a playable file with
/// the audio up to about one second before the kill.
#[test]
fn sigkill_mid_recording_then_repair() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let child = std::process::Command::new(exe)
        .args([
            "--exact",
            "recording::tests::crash::sigkill_child",
            "--ignored",
            "--nocapture",
        ])
        .args(["--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let started = loop {
        let line = lines.next().expect("child ended early").unwrap();
        if line.contains("REC-STARTED") {
            break Instant::now();
        }
    };
    std::thread::sleep(Duration::from_millis(2500));
    child.0.kill().unwrap(); // SIGKILL
    let killed_after = started.elapsed().as_millis() as u64;
    let _ = child.0.wait();

    let report = repair_all_blocking(dir.path());
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.repaired.len(), 1);
    let fixed = &report.repaired[0];
    assert_eq!(fixed.call_id, "KILLED");
    assert!(
        fixed.duration_ms + 1000 >= killed_after && fixed.duration_ms <= killed_after + 500,
        "{} ms of audio for a kill after {} ms",
        fixed.duration_ms,
        killed_after
    );
    let (_, left, right) = read_wav(&fixed.path);
    let end = left.len() as f64 / 8000.0;
    assert!(tone_level(span(&left, 8000.0, end - 0.5, end - 0.1), 8000.0, 440.0) > 6000.0);
    assert!(tone_level(span(&right, 8000.0, end - 0.5, end - 0.1), 8000.0, 1000.0) > 6000.0);
}

/// The child of `sigkill_mid_recording_then_repair` (does nothing when run on its own).
#[test]
#[ignore = "run by sigkill_mid_recording_then_repair in a child process"]
fn sigkill_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let pool = pool_in(std::path::Path::new(&dir), RecorderOptions::default());
    let t0 = Instant::now();
    let rec =
        Recorder::open_blocking(&pool, spec("KILLED", t0, Codec::Pcmu, PayloadMap::new())).unwrap();
    println!("REC-STARTED");
    let tap = rec.tap();
    let (a, b) = sources();
    let mut enc = G722Encoder::new();
    // Real time, 20 ms packets, until killed (or 20 s, so it never outlives a broken parent).
    for n in 0..1000u64 {
        let due = t0 + Duration::from_millis(n * 20);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let now = Instant::now().duration_since(t0);
        tap.push(a.packet(t0, n, now, &mut enc));
        tap.push(b.packet(t0, n, now, &mut enc));
    }
}
