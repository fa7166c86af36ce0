//! How many CDRs per second the store takes, with and without the KPI buckets that the CDR
//! writer updates in the same transaction (`cargo bench --bench cdr_store`). A file database in
//! WAL mode with `synchronous = FULL`, as the gateway runs it; batches of 200 as the writer
//! makes them. Each CDR adds to three buckets (trunk, caller ID, called number); the callee is
//! a new number every call, as for a dialer, which is the worst case (a new row per call).
//!
//! Knobs: `--cdrs N` (per run, default 20,000), `--callers N` (caller IDs, default 20),
//! `--postgres` (also on a fresh PostgreSQL database of the server in `TRUNKGUARD_TEST_PG`,
//! default postgres://postgres@127.0.0.1:5432, dropped after: what a cluster's nodes share).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::time::Instant;

use chrono::{Duration, Utc};
use trunkguard::model::{Attempt, Cdr, Direction, Disposition, EndReason, Outcome};
use trunkguard::monitor::cdr_writer::KpiRollup;
use trunkguard::monitor::persist;
use trunkguard::store::{CdrWrite, Store};

const BATCH: usize = 200;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cdr(i: usize, callers: usize) -> Cdr {
    let invite_at = Utc::now() - Duration::seconds(30);
    let answered = !i.is_multiple_of(3);
    Cdr {
        attempt: Attempt {
            id: format!("bench-{i:09}"),
            inside_call_id: Some(format!("in-{i}")),
            outside_call_id: Some(format!("out-{i}")),
            trunk: Some("bench".into()),
            direction: Direction::Outbound,
            source: "127.0.0.10:5060".into(),
            caller: Some(format!("86101234{:04}", i % callers)),
            callee: Some(format!("8613{i:09}")),
            presented_from: None,
            pai: None,
            invite_at,
            ringing_at: Some(invite_at + Duration::milliseconds(800)),
            answer_at: answered.then(|| invite_at + Duration::seconds(3)),
            trunk_active: Some((i % 30) as u32),
            caller_active: Some((i % 5) as u32),
            node: None,
        },
        outcome: Outcome {
            end_at: invite_at + Duration::seconds(30),
            talk_ms: if answered { 27_000 } else { 0 },
            final_status: if answered { 200 } else { 404 },
            final_reason: if answered { "OK" } else { "Not Found" }.into(),
            q850_cause: Some(if answered { 16 } else { 1 }),
            hangup_side: None,
            disposition: if answered {
                Disposition::Answered
            } else {
                Disposition::Rejected
            },
            end_reason: EndReason::NormalClearing,
            refusal_reason: None,
            declined_media: Vec::new(),
        },
        media: Vec::new(),
        recording: None,
        dtmf: Vec::new(),
        recording_pauses: Vec::new(),
    }
}

/// Where a run stores its CDRs: a fresh SQLite file, or a fresh PostgreSQL database.
enum Backend {
    Sqlite,
    Postgres,
}

async fn run(
    backend: &Backend,
    label: &str,
    rollup: Option<KpiRollup>,
    n: usize,
    callers: usize,
) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let pg = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(
            trunkguard::store::testing::PgTestDb::create()
                .await
                .expect("a PostgreSQL server (TRUNKGUARD_TEST_PG)"),
        ),
    };
    let url = match &pg {
        Some(db) => db.url(),
        None => format!("sqlite://{}/bench.db", dir.path().display()),
    };
    let store = Store::connect(&url).await.expect("database");
    let cdrs: Vec<CdrWrite> = (0..n).map(|i| CdrWrite::Cdr(cdr(i, callers))).collect();
    let started = Instant::now();
    for batch in cdrs.chunks(BATCH) {
        store
            .apply_cdr_writes_with(batch, rollup.as_deref())
            .await
            .expect("batch stored");
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = n as f64 / secs;
    println!("{label:<34} {n:>7} CDRs in {secs:>6.2} s: {rate:>8.0} CDRs/s");
    store.close().await;
    drop(pg);
    rate
}

fn main() {
    let n = arg("--cdrs", 20_000);
    let callers = arg("--callers", 20).max(1);
    let mut backends = vec![("sqlite", Backend::Sqlite)];
    if std::env::args().any(|a| a == "--postgres") {
        backends.push(("postgres", Backend::Postgres));
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        for (name, backend) in &backends {
            let plain = run(backend, &format!("{name}: CDRs only"), None, n, callers).await;
            let rollup: KpiRollup = std::sync::Arc::new(|c: &Cdr| persist::rollup(c, 3600));
            let label = format!("{name}: CDRs + KPI buckets");
            let with = run(backend, &label, Some(rollup), n, callers).await;
            println!(
                "{name}: KPI buckets cost: the store takes {:.0} % of the CDRs/s it takes without them",
                100.0 * with / plain
            );
        }
    });
}
