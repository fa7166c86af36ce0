//! Failure policy, overflow accounting, the pcap fallback, and the async API.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use super::*;
use crate::model::RefusalReason;
use crate::recording::digest::verify;
use crate::recording::{Recorder, RecordingError};

#[test]
fn unwritable_directory_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the recording directory should be: fails even for root.
    let blocker = dir.path().join("recordings");
    std::fs::write(&blocker, b"").unwrap();
    let pool = pool_in(&blocker, test_options());
    let err = Recorder::open_blocking(
        &pool,
        spec("X", Instant::now(), Codec::Pcmu, PayloadMap::new()),
    )
    .unwrap_err();
    assert!(matches!(err, RecordingError::NotWritable { .. }), "{err:?}");
    assert_eq!(err.reason(), RefusalReason::RecordingNotWritable);
    assert_eq!(pool.active_calls(), 0);

    // A read-only directory, where permissions apply (not as root).
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
    if std::fs::write(ro.join("probe"), b"").is_err() {
        let pool = pool_in(&ro, test_options());
        let err = Recorder::open_blocking(
            &pool,
            spec("Y", Instant::now(), Codec::Pcmu, PayloadMap::new()),
        )
        .unwrap_err();
        assert!(matches!(err, RecordingError::NotWritable { .. }), "{err:?}");
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn never_overwrites_and_rejects_bad_call_ids() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_in(dir.path(), test_options());
    let t0 = Instant::now();
    let first =
        Recorder::open_blocking(&pool, spec("SAME", t0, Codec::Pcmu, PayloadMap::new())).unwrap();
    let again = Recorder::open_blocking(&pool, spec("SAME", t0, Codec::Pcmu, PayloadMap::new()));
    assert!(matches!(again, Err(RecordingError::AlreadyExists { .. })));
    let res = first
        .finish_blocking(t0 + Duration::from_millis(500))
        .unwrap();
    let again = Recorder::open_blocking(&pool, spec("SAME", t0, Codec::Pcmu, PayloadMap::new()));
    assert!(matches!(again, Err(RecordingError::AlreadyExists { .. })));
    assert!(
        verify(&res.path, &res.sha256_hex).unwrap(),
        "first recording intact"
    );
    let bad = Recorder::open_blocking(&pool, spec("../etc", t0, Codec::Pcmu, PayloadMap::new()));
    assert!(matches!(bad, Err(RecordingError::InvalidCallId(_))));
}

#[test]
fn overflow_is_counted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let opts = RecorderOptions {
        queue_packets: 8,
        tick: Duration::from_millis(50),
        ..test_options()
    };
    let pool = pool_in(dir.path(), opts);
    let t0 = Instant::now();
    let rec =
        Recorder::open_blocking(&pool, spec("OVF", t0, Codec::Pcmu, PayloadMap::new())).unwrap();
    let tap = rec.tap();
    let src = Source::pcmu(Leg::Inside, 440.0, 1, 0);
    let mut enc = G722Encoder::new();
    let queued = (0..200)
        .filter(|&n| tap.push(src.packet(t0, n, Duration::from_millis(n * 20), &mut enc)))
        .count() as u64;
    assert!(tap.overflowed() > 0);
    assert_eq!(queued + tap.overflowed(), 200);
    let res = rec.finish_blocking(t0 + Duration::from_secs(4)).unwrap();
    assert_eq!(res.overflowed_packets, tap.overflowed());
    assert_eq!(res.packets[0], queued);
    assert!(!res.complete, "an overflow makes the recording incomplete");
    assert_eq!(
        res.duration_ms, 4000,
        "still aligned with the call's length"
    );
    // After close the tap drops packets without counting them as overflow.
    assert!(!tap.push(src.packet(t0, 300, Duration::from_secs(6), &mut enc)));
    assert_eq!(tap.overflowed(), res.overflowed_packets);
}

#[test]
fn undecodable_codec_goes_to_a_pcap() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_in(dir.path(), test_options());
    let t0 = Instant::now();
    let payloads = PayloadMap::new().with_rtpmap(111, "opus/48000/2");
    let codec = Codec::Other("opus".into());
    let rec = Recorder::open_blocking(&pool, spec("OPUS", t0, codec, payloads)).unwrap();
    let tap = rec.tap();
    let mut enc = G722Encoder::new();
    for (leg, ssrc) in [(Leg::Inside, 1), (Leg::Outside, 2)] {
        let src = Source {
            leg,
            freq: 0.0,
            pt: 111,
            codec: Codec::Other("opus".into()),
            ssrc,
            ts0: 0,
        };
        for n in 0..50 {
            assert!(tap.push(src.packet(t0, n, Duration::from_millis(n * 20), &mut enc)));
        }
    }
    let res = rec.finish_blocking(t0 + Duration::from_secs(1)).unwrap();
    assert!(res.complete, "{res:?}");
    assert_eq!(res.undecoded_packets, 100);
    assert_eq!(
        res.duration_ms, 1000,
        "the WAV still spans the call, silent"
    );
    let pcap = res.pcap_path.clone().expect("pcap kept");
    assert_eq!(pcap, res.path.with_extension("pcap"));
    assert!(verify(&pcap, res.pcap_sha256_hex.as_deref().unwrap()).unwrap());
    let data = std::fs::read(&pcap).unwrap();
    assert_eq!(&data[0..4], &0xa1b2_c3d4u32.to_le_bytes());
    let record = 16 + 20 + 8 + 12 + 80;
    assert_eq!(data.len(), 24 + 100 * record);
    assert_eq!(
        std::fs::metadata(&pcap).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // If tshark is installed, it must read every packet as RTP of the two legs.
    if let Ok(out) = std::process::Command::new("tshark")
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-d",
            "udp.port==20000,rtp",
            "-d",
            "udp.port==20002,rtp",
        ])
        .args(["-T", "fields", "-e", "rtp.ssrc"])
        .output()
    {
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                text.lines().filter(|l| l.contains("0x00000001")).count(),
                50,
                "{text}"
            );
            assert_eq!(
                text.lines().filter(|l| l.contains("0x00000002")).count(),
                50
            );
        }
    }
}

#[test]
fn dropped_recorder_is_still_closed() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_in(dir.path(), test_options());
    let rec = Recorder::open_blocking(
        &pool,
        spec("DROP", Instant::now(), Codec::Pcmu, PayloadMap::new()),
    )
    .unwrap();
    let (path, part) = (rec.path().to_path_buf(), rec.part_path());
    drop(rec);
    wait_for("closed", || path.exists() && !part.exists());
    wait_for("released", || pool.active_calls() == 0);
    assert!(hound::WavReader::open(&path).is_ok());
    pool.shutdown_blocking();
    let late = Recorder::open_blocking(
        &pool,
        spec("LATE", Instant::now(), Codec::Pcmu, PayloadMap::new()),
    );
    assert!(matches!(late, Err(RecordingError::WorkerGone)));
    assert!(!dir.path().join("2026/05/06/LATE.wav.part").exists());
}

#[test]
fn async_api_on_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let report = crate::recording::repair::repair_all(dir.path().to_path_buf()).await;
        assert!(report.repaired.is_empty() && report.failed.is_empty());
        let pool = pool_in(dir.path(), test_options());
        let t0 = Instant::now();
        let rec = Recorder::open(&pool, spec("ASYNC", t0, Codec::Pcmu, PayloadMap::new()))
            .await
            .unwrap();
        let src = Source::pcmu(Leg::Outside, 1000.0, 5, 7);
        let mut enc = G722Encoder::new();
        for n in 0..25 {
            rec.tap()
                .push(src.packet(t0, n, Duration::from_millis(n * 20), &mut enc));
        }
        let res = rec.finish(t0 + Duration::from_millis(500)).await.unwrap();
        assert!(res.complete);
        assert_eq!(res.duration_ms, 500);
        assert_eq!(res.packets, [0, 25]);
    });
}
