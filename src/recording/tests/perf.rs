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
    let a = Source::pcmu(Leg::Inside, 440.0, 1, 0);
    let b = Source::pcmu(Leg::Outside, 1000.0, 2, 0);
    // Pre-encode one call's packets; every call sends the same.
    let n_pkts = secs * 50;
    let pkts: Vec<_> = (0..n_pkts)
        .flat_map(|n| {
            let at = Duration::from_millis(n * 20);
            [a.packet(t0, n, at, &mut enc), b.packet(t0, n, at, &mut enc)]
        })
        .collect();
    let start = Instant::now();
    let cpu0 = cpu_seconds();
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
    // Finish them all at once (each finish waits for its worker's next tick).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let results: Vec<_> = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for r in recs {
            set.spawn(r.finish(t0 + Duration::from_secs(secs)));
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            out.push(r.unwrap().unwrap());
        }
        out
    });
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    assert!(results
        .iter()
        .all(|r| r.complete && r.duration_ms == secs * 1000));
    let audio = (calls * secs) as f64;
    println!(
        "{calls} calls x {secs} s ({} packets): {wall:.2} s wall, {cpu:.2} s CPU \
         = {:.1} us CPU per call-second (open, decode, write, fsync, digest)",
        calls * n_pkts * 2,
        cpu / audio * 1e6
    );
}

/// User + system CPU time of this process so far (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}
