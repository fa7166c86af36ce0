//! The writer with a spool, against a file database locked by another connection holding
//! `BEGIN EXCLUSIVE` (works as root, unlike a read-only file).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::TimeZone;
use sqlx::{Connection, SqliteConnection};

use super::*;
use crate::model::sample_cdr;
use crate::monitor::cdr_spool::SPOOL_FILE;
use crate::monitor::persist;
use crate::store::StoreOptions;

/// Waits are bounded by this many polls of 50 ms (a hang fails, it is not a timing assertion).
const POLLS: usize = 1_200;

struct Db {
    _dir: tempfile::TempDir,
    url: String,
    spool_dir: PathBuf,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/tg.db", dir.path().display());
    let spool_dir = dir.path().join("spool");
    Db {
        _dir: dir,
        url,
        spool_dir,
    }
}

async fn store(url: &str) -> Store {
    let opts = StoreOptions {
        busy_timeout: Duration::from_millis(100),
        max_connections: 4,
    };
    Store::connect_with(url, opts).await.unwrap()
}

/// Another connection takes the write lock and keeps it until `ROLLBACK`.
async fn lock(url: &str) -> SqliteConnection {
    let mut conn = SqliteConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

async fn unlock(mut conn: SqliteConnection) {
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

fn rollup() -> KpiRollup {
    Arc::new(|cdr: &Cdr| persist::rollup(cdr, 3_600))
}

/// A writer with a spool in `spool_dir`; the monitor's feed is the returned receiver.
async fn writer(
    store: &Store,
    spool_dir: &Path,
) -> (CdrSink, CdrWriterHandle, mpsc::Receiver<Cdr>) {
    let spool = open_spool(spool_dir.to_path_buf(), 1 << 30).await.unwrap();
    let (tx, rx) = mpsc::channel(1_000);
    let hooks = WriterHooks {
        rollup: Some(rollup()),
        stored: Some(tx),
        spool: Some(spool),
    };
    let (sink, handle) = CdrWriter::spawn_with(store.clone(), 16, hooks);
    (sink, handle, rx)
}

/// Ids handed to the monitor so far.
fn fed(rx: &mut mpsc::Receiver<Cdr>) -> Vec<String> {
    let mut ids = Vec::new();
    while let Ok(cdr) = rx.try_recv() {
        ids.push(cdr.attempt.id);
    }
    ids
}

async fn wait_for(what: &str, sink: &CdrSink, done: impl Fn(&CdrStats) -> bool) {
    for _ in 0..POLLS {
        if done(&sink.stats()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} never happened: {:?}", sink.stats());
}

fn spool_lines(spool_dir: &Path) -> usize {
    let text = std::fs::read_to_string(spool_dir.join(SPOOL_FILE)).unwrap();
    text.lines().count()
}

async fn stored_ids(store: &Store) -> Vec<String> {
    sqlx::query_scalar("SELECT id FROM cdrs")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

/// Attempts counted in the trunk's persisted KPI buckets.
async fn trunk_attempts(store: &Store) -> u64 {
    let from = Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap();
    let buckets: Vec<(BucketKey, KpiCounters)> = store
        .kpi_buckets(
            from,
            from + chrono::Duration::days(1),
            Some("trunk"),
            Some("demo"),
            None,
        )
        .await
        .unwrap();
    buckets.iter().map(|(_, k)| k.attempts).sum()
}

/// Each call journaled, then its final CDR: two writes per call, in order. The CDRs follow once
/// the journal entries are in the spool (the database being locked): in one batch with them
/// the entries would be superseded, dropped unwritten (`drop_superseded`), and this file is
/// about what the spool does with both kinds.
async fn place_calls(sink: &CdrSink, prefix: &str, n: usize) {
    let spooled = sink.stats().spooled;
    for i in 0..n {
        let cdr = sample_cdr(&format!("{prefix}{i}"));
        sink.journal(cdr, Some(format!("/rec/{prefix}{i}.wav.part")));
    }
    wait_for("the journal entries spooled", sink, |s| {
        s.spooled >= spooled + n as u64
    })
    .await;
    for i in 0..n {
        sink.submit(sample_cdr(&format!("{prefix}{i}")));
    }
}

async fn assert_each_stored_once(store: &Store, prefix: &str, n: usize) {
    let ids = stored_ids(store).await;
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), n, "rows");
    assert_eq!(unique.len(), n, "distinct ids");
    for i in 0..n {
        assert!(
            unique.contains(&format!("{prefix}{i}")),
            "{prefix}{i} missing"
        );
    }
    assert!(store.journaled_calls().await.unwrap().is_empty());
    assert_eq!(trunk_attempts(store).await, n as u64, "KPI attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_database_spools_then_stores_each_once() {
    const N: usize = 60;
    let db = db();
    let store = store(&db.url).await;
    let locker = lock(&db.url).await;
    let (sink, handle, mut monitor) = writer(&store, &db.spool_dir).await;

    place_calls(&sink, "L", N).await;
    wait_for("every write spooled", &sink, |s| s.spooled == 2 * N as u64).await;
    assert_eq!(spool_lines(&db.spool_dir), 2 * N);
    assert!(stored_ids(&store).await.is_empty());
    assert_eq!(
        sink.stats().queued,
        2 * N as u64,
        "spooled writes are queued"
    );

    unlock(locker).await;
    wait_for("the spool replayed", &sink, |s| {
        s.spooled == 0 && s.written == N as u64
    })
    .await;
    assert_each_stored_once(&store, "L", N).await;
    assert_eq!(
        std::fs::metadata(db.spool_dir.join(SPOOL_FILE))
            .unwrap()
            .len(),
        0
    );

    // The monitor (running all along) sees each spooled CDR once it is stored.
    let ids: HashSet<String> = fed(&mut monitor).into_iter().collect();
    assert_eq!(ids.len(), N);

    // Back to direct writes: a new CDR does not touch the spool.
    sink.submit(sample_cdr("after"));
    let stats = handle.close().await.unwrap();
    assert_eq!(stats.written, N as u64 + 1);
    assert_eq!(stats.spooled_total, 2 * N as u64);
    assert_eq!(stats.replayed_total, 2 * N as u64);
    assert_eq!(stats.queued, 0);
    assert_eq!(stats.spool_skipped, 0);
    assert_eq!(spool_lines(&db.spool_dir), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_left_by_a_killed_writer_is_stored_once_by_the_next() {
    const N: usize = 40;
    const ACKED_LOST: usize = 7;
    let db = db();
    let store = store(&db.url).await;
    let locker = lock(&db.url).await;
    let (sink, handle, _monitor) = writer(&store, &db.spool_dir).await;
    place_calls(&sink, "K", N).await;
    wait_for("every write spooled", &sink, |s| s.spooled == 2 * N as u64).await;

    // SIGKILL: the task is gone mid-way, nothing is flushed or closed.
    handle.task.abort();
    let _ = handle.task.await;
    drop(sink);
    // ... and it died in the middle of an append: half a line at the end of the file.
    let torn = format!("{:016x} {{\"kind\":\"cdr\",\"cdr\":{{\"id\":\"K-torn", 0);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(db.spool_dir.join(SPOOL_FILE))
        .unwrap();
    std::io::Write::write_all(&mut file, torn.as_bytes()).unwrap();
    drop(file);
    unlock(locker).await;

    // Some CDRs reached the database although their batch looked failed (the ack was lost).
    let acked: Vec<CdrWrite> = (0..ACKED_LOST)
        .map(|i| CdrWrite::Cdr(sample_cdr(&format!("K{i}"))))
        .collect();
    let r = rollup();
    store
        .apply_cdr_writes_with(&acked, Some(&*r))
        .await
        .unwrap();

    // The next start: a new writer on the same database and spool.
    let (sink, handle, mut monitor) = writer(&store, &db.spool_dir).await;
    assert_eq!(sink.stats().spooled, 2 * N as u64);
    assert!(sink.spool_replayed(Duration::from_secs(60)).await);
    // A previous run's CDRs reach the monitor through its warm-up from the database, not twice.
    assert!(fed(&mut monitor).is_empty());
    assert_each_stored_once(&store, "K", N).await;
    sink.submit(sample_cdr("new"));
    let stats = handle.close().await.unwrap();
    assert_eq!(fed(&mut monitor), ["new"]);
    assert_eq!(stats.replayed_total, 2 * N as u64);
    assert_eq!(stats.queued, 0);
    assert_eq!(spool_lines(&db.spool_dir), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_while_locked_leaves_the_rest_in_the_spool_without_waiting_for_the_database() {
    const N: usize = 25;
    let db = db();
    let store = store(&db.url).await;
    let locker = lock(&db.url).await;
    let (sink, handle, _monitor) = writer(&store, &db.spool_dir).await;
    place_calls(&sink, "C", N).await;
    // Without a spool this would wait for the database for ever.
    let stats = tokio::time::timeout(Duration::from_secs(60), handle.close())
        .await
        .expect("close waited for the locked database")
        .unwrap();
    assert_eq!(stats.written, 0);
    assert_eq!(stats.spooled, 2 * N as u64);
    assert_eq!(spool_lines(&db.spool_dir), 2 * N);
    unlock(locker).await;

    let (sink, handle, _monitor) = writer(&store, &db.spool_dir).await;
    assert!(sink.spool_replayed(Duration::from_secs(60)).await);
    handle.close().await.unwrap();
    assert_each_stored_once(&store, "C", N).await;
}

/// Make the pool's idle connection refuse writes with `SQLITE_READONLY` for its whole life, as
/// one opened while the file was read-only does (`PRAGMA query_only`: root ignores file modes).
async fn make_read_only(store: &Store) {
    let mut conn = store.pool().acquire().await.unwrap();
    sqlx::query("PRAGMA query_only = ON")
        .execute(&mut *conn)
        .await
        .unwrap();
}

async fn store_with_one_connection(url: &str) -> Store {
    let opts = StoreOptions {
        busy_timeout: Duration::from_millis(100),
        max_connections: 1,
    };
    Store::connect_with(url, opts).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_connection_costs_one_retry() {
    const N: usize = 5;
    let db = db();
    let store = store_with_one_connection(&db.url).await;
    make_read_only(&store).await;
    let (sink, handle, _monitor) = writer(&store, &db.spool_dir).await;
    // The database takes writes here: journal entries and CDRs go together.
    for i in 0..N {
        let cdr = sample_cdr(&format!("O{i}"));
        sink.journal(cdr.clone(), Some(format!("/rec/O{i}.wav.part")));
        sink.submit(cdr);
    }
    wait_for("the calls stored", &sink, |s| s.written == N as u64).await;
    let stats = handle.close().await.unwrap();
    assert_eq!(store.read_only_refusals(), 1);
    assert_eq!(stats.failed_retries, 1);
    assert_eq!(stats.spooled_total, 0, "a fresh connection took the batch");
    assert_each_stored_once(&store, "O", N).await;
}

/// The file was read-only for a while (here: locked, then its connection left read-only): the
/// spool is replayed as soon as the file takes writes, not when the pool retires the
/// connection (30 min).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_connection_does_not_hold_up_the_replay() {
    const N: usize = 20;
    let db = db();
    let store = store_with_one_connection(&db.url).await;
    let locker = lock(&db.url).await;
    let (sink, handle, mut monitor) = writer(&store, &db.spool_dir).await;
    place_calls(&sink, "R", N).await;
    wait_for("every write spooled", &sink, |s| s.spooled == 2 * N as u64).await;
    // Waits for the writer to hand the pool's only connection back between replays.
    make_read_only(&store).await;
    unlock(locker).await;

    wait_for("the spool replayed", &sink, |s| {
        s.spooled == 0 && s.written == N as u64
    })
    .await;
    assert!(store.read_only_refusals() >= 1);
    assert_each_stored_once(&store, "R", N).await;
    let stats = handle.close().await.unwrap();
    assert_eq!(stats.replayed_total, 2 * N as u64);
    assert_eq!(stats.queued, 0);
    assert_eq!(spool_lines(&db.spool_dir), 0);
    let ids: HashSet<String> = fed(&mut monitor).into_iter().collect();
    assert_eq!(ids.len(), N);
}
