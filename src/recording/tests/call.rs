//! A whole synthetic call through a recorder: alignment, loss, reordering, jumps, SSRC change.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use super::*;
use crate::recording::digest::verify;
use crate::recording::Recorder;

const MS: u64 = 1;

/// Deterministic network jitter of packet `n`: 0–14 ms.
fn jitter(n: u64) -> u64 {
    (n * 7919 + 13) % 15
}

#[test]
fn sixty_second_call_with_loss_reordering_jump_and_ssrc_change() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_in(dir.path(), test_options());
    let t0 = Instant::now();
    let payloads = PayloadMap::new().with_rtpmap(101, "telephone-event/8000");
    let rec = Recorder::open_blocking(&pool, spec("CALL-60", t0, Codec::Pcmu, payloads)).unwrap();
    assert!(rec.part_path().exists());
    let tap = rec.tap();

    let inside = Source::pcmu(Leg::Inside, 440.0, 0xA, 12_345);
    let mut outside = Source::pcmu(Leg::Outside, 1000.0, 0xB, u32::MAX - 40_000);
    let mut enc = G722Encoder::new();
    let mut pkts: Vec<RecPacket> = Vec::new();
    for n in 0..3000u64 {
        let nominal = n * 20 * MS;
        // Inside: packets 100..105 lost; 200 arrives after 201; from packet 1000 on the
        // timestamps jump 100 s ahead; RFC 4733 events at 10 s that must not be recorded.
        if !(100..105).contains(&n) {
            let late = if n == 200 { 30 } else { 0 };
            let at = if n == 0 {
                0
            } else {
                nominal + jitter(n) + late
            };
            let mut p = inside.packet(t0, n, Duration::from_millis(at), &mut enc);
            if n >= 1000 {
                p.timestamp = p.timestamp.wrapping_add(800_000);
            }
            pkts.push(p);
        }
        if n == 500 {
            let mut ev = inside.packet(t0, n, Duration::from_millis(nominal + 5), &mut enc);
            ev.payload_type = 101;
            ev.payload = Bytes::from_static(&[1, 0x80, 0, 160]);
            pkts.push(ev);
        }
        // Outside: starts 1 s late (early media off); SSRC change at 30 s; 40.00–40.22 s lost;
        // silence suppression 50–51 s (no packets, timestamps go on).
        if n >= 50 && !(2000..2011).contains(&n) && !(2500..2550).contains(&n) {
            if n == 1500 {
                outside.ssrc = 0xC;
                outside.ts0 = 777u32.wrapping_sub(1500 * 160);
            }
            let at = if n == 50 {
                nominal
            } else {
                nominal + jitter(n + 1)
            };
            pkts.push(outside.packet(t0, n, Duration::from_millis(at), &mut enc));
        }
    }
    pkts.sort_by_key(|p| p.arrival);
    let sent = pkts.len() as u64;
    for p in pkts {
        assert!(tap.push(p));
    }
    let path = rec.path().to_path_buf();
    let result = rec.finish_blocking(t0 + Duration::from_secs(60)).unwrap();

    assert!(result.complete, "{result:?}");
    assert_eq!(result.path, path);
    assert!(path.starts_with(dir.path().join("2026/05/06")));
    assert!(!crate::recording::writer::part_path(&path).exists());
    assert_eq!(result.packets[0] + result.packets[1], sent);
    assert_eq!(result.overflowed_packets, 0);
    assert_eq!(result.late_packets, 0);
    assert_eq!(result.reanchors, 2, "timestamp jump + SSRC change");
    assert_eq!(result.pcap_path, None);
    assert_eq!(result.sample_rate, 8000);
    assert!(
        result.duration_ms.abs_diff(60_000) <= 20,
        "{} ms",
        result.duration_ms
    );
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), result.size_bytes);
    assert!(verify(&path, &result.sha256_hex).unwrap());

    let (wspec, left, right) = read_wav(&path);
    assert_eq!(
        (wspec.channels, wspec.sample_rate, wspec.bits_per_sample),
        (2, 8000, 16)
    );
    let frames = left.len() as i64;
    assert!((frames - 480_000).abs() <= 160, "{frames} frames");
    let r = 8000.0;

    // Each channel carries its own tone, every second of the call where it has audio.
    for s in 0..59 {
        let (a, b) = (s as f64 + 0.3, s as f64 + 0.7);
        let l = span(&left, r, a, b);
        assert!(tone_level(l, r, 440.0) > 6000.0, "left 440 Hz at {s} s");
        assert!(
            tone_level(l, r, 1000.0) < 200.0,
            "no 1 kHz on the left at {s} s"
        );
        if s >= 1 && s != 40 && s != 50 {
            let rt = span(&right, r, a, b);
            assert!(tone_level(rt, r, 1000.0) > 6000.0, "right 1 kHz at {s} s");
            assert!(
                tone_level(rt, r, 440.0) < 200.0,
                "no 440 Hz on the right at {s} s"
            );
        }
    }
    // Silence where nothing was sent, and only there.
    assert_eq!(
        rms(span(&right, r, 0.0, 0.99)),
        0.0,
        "outside silent before it starts"
    );
    assert!(
        rms(span(&right, r, 1.0, 1.1)) > 4000.0,
        "outside starts at 1 s"
    );
    assert_eq!(rms(span(&left, r, 2.0, 2.1)), 0.0, "inside lost packets");
    assert!(rms(span(&right, r, 2.0, 2.1)) > 4000.0);
    assert!(rms(span(&left, r, 1.95, 2.0)) > 4000.0);
    assert!(rms(span(&left, r, 2.1, 2.15)) > 4000.0);
    assert!(
        rms(span(&left, r, 3.98, 4.06)) > 4000.0,
        "reordered packets in place"
    );
    assert!(
        rms(span(&left, r, 9.9, 10.2)) > 4000.0,
        "DTMF event not painted over audio"
    );
    // (The outside leg was re-anchored at 30 s on a packet that came 12 ms late.)
    assert_eq!(
        rms(span(&right, r, 40.015, 40.22)),
        0.0,
        "outside lost packets"
    );
    assert_eq!(
        rms(span(&right, r, 50.015, 51.0)),
        0.0,
        "silence suppression"
    );
    assert!(rms(span(&right, r, 51.05, 51.3)) > 4000.0);
    // After the jump and the SSRC change the legs go on near their wall-clock place (the
    // re-anchor is on arrival, so off by that packet's jitter at most).
    assert!(rms(span(&left, r, 20.02, 21.0)) > 4000.0);
    assert!(rms(span(&right, r, 30.02, 31.0)) > 4000.0);
    assert!(
        rms(span(&left, r, 59.5, 59.98)) > 4000.0,
        "audio to the end"
    );
    assert_eq!(pool.active_calls(), 0);
}

/// A shorter call per codec: PCMA at 8 kHz, G.722 at 16 kHz (with content above 4 kHz).
#[test]
fn pcma_and_g722_calls() {
    for (codec, pt, rate, f_out) in [
        (Codec::Pcma, 8, 8000u32, 1000.0),
        (Codec::G722, 9, 16_000, 5000.0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool_in(dir.path(), test_options());
        let t0 = Instant::now();
        let rec = Recorder::open_blocking(&pool, spec("C2", t0, codec.clone(), PayloadMap::new()))
            .unwrap();
        let tap = rec.tap();
        let a = Source {
            leg: Leg::Inside,
            freq: 440.0,
            pt,
            codec: codec.clone(),
            ssrc: 1,
            ts0: 0,
        };
        let b = Source {
            leg: Leg::Outside,
            freq: f_out,
            pt,
            codec: codec.clone(),
            ssrc: 2,
            ts0: 99,
        };
        let (mut ea, mut eb) = (G722Encoder::new(), G722Encoder::new());
        for n in 0..100 {
            let at = Duration::from_millis(n * 20);
            assert!(tap.push(a.packet(t0, n, at, &mut ea)));
            assert!(tap.push(b.packet(t0, n, at, &mut eb)));
        }
        let res = rec.finish_blocking(t0 + Duration::from_secs(2)).unwrap();
        assert!(res.complete);
        assert_eq!(res.codec, codec);
        assert_eq!(res.sample_rate, rate);
        assert_eq!(res.duration_ms, 2000);
        let (wspec, left, right) = read_wav(&res.path);
        assert_eq!(wspec.sample_rate, rate);
        let r = rate as f64;
        let (l, rt) = (span(&left, r, 0.2, 1.8), span(&right, r, 0.2, 1.8));
        assert!(tone_level(l, r, 440.0) > 6000.0, "{codec}: left");
        assert!(tone_level(rt, r, f_out) > 6000.0, "{codec}: right");
        assert!(tone_level(l, r, f_out) < 200.0 && tone_level(rt, r, 440.0) < 200.0);
    }
}

/// A re-INVITE maps a dynamic payload type to PCMA: the recorder decodes it from then on.
#[test]
fn renegotiated_payload_types_are_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_in(dir.path(), test_options());
    let t0 = Instant::now();
    let rec =
        Recorder::open_blocking(&pool, spec("REINV", t0, Codec::Pcmu, PayloadMap::new())).unwrap();
    rec.update_payloads(PayloadMap::new().with_rtpmap(96, "PCMA/8000"));
    let src = Source {
        leg: Leg::Inside,
        freq: 440.0,
        pt: 96,
        codec: Codec::Pcma,
        ssrc: 1,
        ts0: 0,
    };
    let mut enc = G722Encoder::new();
    for n in 0..50 {
        assert!(rec
            .tap()
            .push(src.packet(t0, n, Duration::from_millis(n * 20), &mut enc)));
    }
    let res = rec.finish_blocking(t0 + Duration::from_secs(1)).unwrap();
    assert_eq!((res.undecoded_packets, res.pcap_path.clone()), (0, None));
    let (_, left, _) = read_wav(&res.path);
    assert!(tone_level(span(&left, 8000.0, 0.1, 0.9), 8000.0, 440.0) > 6000.0);
}
