//! A rough cost figure (not a timed test): `cargo test --release --lib throughput -- --ignored
//! --nocapture` records many calls at once as fast as it can and prints audio seconds recorded
//! per second of wall time.

use std::time::{Duration, Instant};

use super::*;
use crate::recording::Recorder;

#[test]
#[ignore = "a measurement, run by hand in release mode"]
fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let opts = RecorderOptions {
        queue_packets: 1100,
        ..RecorderOptions::default()
    };
    let pool = pool_in(dir.path(), opts);
    let (calls, secs) = (200u64, 10u64);
    let t0 = Instant::now();
    let mut enc = G722Encoder::new();
    let a = Source {
        leg: Leg::Inside,
        freq: 440.0,
        pt: 0,
        codec: Codec::Pcmu,
        ssrc: 1,
        ts0: 0,
    };
    let b = Source {
        leg: Leg::Outside,
        freq: 1000.0,
        pt: 0,
        codec: Codec::Pcmu,
        ssrc: 2,
        ts0: 0,
    };
    // Pre-encode one call's packets; every call sends the same.
    let n_pkts = secs * 50;
    let pkts: Vec<_> = (0..n_pkts)
        .flat_map(|n| {
            let at = Duration::from_millis(n * 20);
            [a.packet(t0, n, at, &mut enc), b.packet(t0, n, at, &mut enc)]
        })
        .collect();
    let start = Instant::now();
    let recs: Vec<_> = (0..calls)
        .map(|i| {
            let rec = Recorder::open_blocking(
                &pool,
                spec(&format!("P{i}"), t0, Codec::Pcmu, PayloadMap::new()),
            )
            .unwrap();
            let tap = rec.tap();
            for p in &pkts {
                assert!(tap.push(p.clone()));
            }
            rec
        })
        .collect();
    let results: Vec<_> = recs
        .into_iter()
        .map(|r| r.finish_blocking(t0 + Duration::from_secs(secs)).unwrap())
        .collect();
    let wall = start.elapsed().as_secs_f64();
    assert!(results
        .iter()
        .all(|r| r.complete && r.duration_ms == secs * 1000));
    let audio = (calls * secs) as f64;
    println!(
        "{calls} calls x {secs} s: {wall:.2} s wall, {:.0} call-seconds per second ({} packets/s)",
        audio / wall,
        (calls * n_pkts * 2) as f64 / wall
    );
}
