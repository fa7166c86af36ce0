use std::collections::HashSet;

use sqlx::Connection;

use super::*;
use crate::model::EndReason;
use crate::model::{ms_precision, sample_cdr};
use crate::store::{JournaledCall, StoreOptions};

async fn all_ids(store: &Store) -> Vec<String> {
    sqlx::query_scalar("SELECT id FROM cdrs")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn burst_larger_than_the_channel_is_written_exactly_once() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let (sink, handle) = CdrWriter::spawn(store.clone(), 8);
    let tasks: Vec<_> = (0..10)
        .map(|t| {
            let sink = sink.clone();
            // No await inside: submit must cope on its own.
            tokio::spawn(async move {
                for i in 0..500 {
                    sink.submit(sample_cdr(&format!("t{t}-{i}")));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // The sink is still alive at close: close must not wait for it.
    let stats = handle.close().await.unwrap();
    assert_eq!(store.count_cdrs().await.unwrap(), 5_000);
    let ids: HashSet<String> = all_ids(&store).await.into_iter().collect();
    assert_eq!(ids.len(), 5_000);
    assert_eq!(stats.written, 5_000);
    assert_eq!(stats.queued, 0);
    assert!(stats.overflowed > 0, "{stats:?}");
    assert_eq!(stats.late, 0);

    // After close nothing is accepted silently: it is counted and logged.
    sink.submit(sample_cdr("too-late"));
    assert_eq!(sink.stats().late, 1);
    assert_eq!(store.get_cdr("too-late").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submissions_racing_close_are_stored_or_counted_late() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let (sink, handle) = CdrWriter::spawn(store.clone(), 8);
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let sink = sink.clone();
            tokio::spawn(async move {
                for i in 0..2_000 {
                    sink.submit(sample_cdr(&format!("r{t}-{i}")));
                    if i % 100 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    let stats = handle.close().await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let late = sink.stats().late;
    assert_eq!(store.count_cdrs().await.unwrap() as u64, stats.written);
    assert_eq!(stats.written + late, 8_000, "{stats:?} late {late}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_submissions_share_a_transaction_per_spacing() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let (sink, handle) = CdrWriter::spawn(store.clone(), 64);
    let started = std::time::Instant::now();
    // One CDR every 5 ms, as calls ending steadily: without the spacing each write found the
    // writer idle or just done and became a transaction after a 10-ms linger.
    for i in 0..40 {
        sink.submit(sample_cdr(&format!("steady-{i}")));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while handle.stats().written < 40 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let stats = handle.close().await.unwrap();
    assert_eq!(store.count_cdrs().await.unwrap(), 40);
    // Transactions below BATCH_MAX begin at least COMMIT_SPACING apart, however slow the machine.
    let most = elapsed.as_millis() / COMMIT_SPACING.as_millis() + 1;
    assert!(
        u128::from(stats.transactions) <= most,
        "{} transactions in {elapsed:?}: spaced by {COMMIT_SPACING:?}, at most {most}",
        stats.transactions
    );
    assert!(stats.transactions >= 1, "{stats:?}");
}

#[tokio::test]
async fn duplicate_submission_gives_one_row() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let (sink, handle) = CdrWriter::spawn(store.clone(), 4);
    for _ in 0..3 {
        sink.submit(sample_cdr("same"));
    }
    drop(sink);
    let stats = handle.close().await.unwrap();
    assert_eq!(stats.written, 3);
    assert_eq!(all_ids(&store).await, ["same"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_locked_database_and_keeps_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cdr.db").display());
    let opts = StoreOptions {
        busy_timeout: Duration::from_millis(50),
        ..StoreOptions::default()
    };
    let store = Store::connect_with(&url, opts).await.unwrap();

    // Another process holds the write lock.
    let mut locker = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .unwrap();

    let (sink, handle) = CdrWriter::spawn(store.clone(), 16);
    for i in 0..450 {
        sink.submit(sample_cdr(&format!("locked-{i}")));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sink.stats().failed_retries < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "writer never retried"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sink.stats().written, 0);

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let stats = handle.close().await.unwrap();
    assert_eq!(stats.written, 450);
    assert!(stats.failed_retries >= 3);
    let ids: HashSet<String> = all_ids(&store).await.into_iter().collect();
    assert_eq!(ids.len(), 450);
    assert_eq!(store.count_cdrs().await.unwrap(), 450);
}

#[tokio::test]
async fn writer_ends_by_itself_when_every_sink_is_gone() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let (sink, handle) = CdrWriter::spawn(store.clone(), 1);
    sink.submit(sample_cdr("a"));
    sink.submit(sample_cdr("b"));
    drop(sink);
    let stats = handle.close().await.unwrap();
    assert_eq!((stats.written, stats.queued), (2, 0));
    assert_eq!(store.count_cdrs().await.unwrap(), 2);
}

// The journal of calls in progress.

/// What a call journals while it runs: the sample call, not yet ended.
fn provisional(id: &str, talk_ms: i64) -> Cdr {
    let mut c = sample_cdr(id);
    c.outcome.talk_ms = talk_ms;
    c.outcome.end_reason = EndReason::InProgress;
    c.recording = None;
    c
}

async fn journal_rows(store: &Store) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as("SELECT id, cdr_json, recording_part FROM call_journal ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn journal_then_cdr_leaves_the_cdr_and_no_journal_row() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let (sink, handle) = CdrWriter::spawn(store.clone(), 4);
    sink.journal(provisional("c1", 0), Some("recordings/c1.wav".into()));
    sink.submit(sample_cdr("c1"));
    let stats = handle.close().await.unwrap();
    assert_eq!((stats.written, stats.journaled, stats.queued), (1, 1, 0));
    assert_eq!(journal_rows(&store).await, []);
    assert_eq!(store.get_cdr("c1").await.unwrap(), Some(sample_cdr("c1")));
}

#[tokio::test]
async fn a_second_journal_entry_updates_the_row() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let (sink, handle) = CdrWriter::spawn(store.clone(), 4);
    sink.journal(provisional("u1", 1_000), Some("u1.part".into()));
    sink.journal(provisional("u1", 2_000), Some("u1-b.part".into()));
    let stats = handle.close().await.unwrap();
    assert_eq!((stats.written, stats.journaled), (0, 2));
    let second = serde_json::to_string(&provisional("u1", 2_000)).unwrap();
    assert_eq!(
        journal_rows(&store).await,
        [("u1".to_string(), second, Some("u1-b.part".to_string()))]
    );
}

#[tokio::test]
async fn a_journal_entry_after_the_cdr_is_ignored() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let (sink, handle) = CdrWriter::spawn(store.clone(), 4);
    sink.submit(sample_cdr("l1"));
    sink.journal(provisional("l1", 0), Some("l1.part".into()));
    // And in a later batch, once the CDR is surely committed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sink.stats().queued > 0 {
        assert!(tokio::time::Instant::now() < deadline, "writer stuck");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sink.journal(provisional("l1", 5), None);
    let stats = handle.close().await.unwrap();
    assert_eq!((stats.written, stats.journaled, stats.queued), (1, 2, 0));
    assert_eq!(journal_rows(&store).await, []);
    assert_eq!(store.get_cdr("l1").await.unwrap(), Some(sample_cdr("l1")));
}

#[tokio::test]
async fn a_call_without_a_cdr_is_found_after_a_restart_and_closed_by_its_cdr() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cdr.db").display());
    let store = Store::connect(&url).await.unwrap();
    let (sink, handle) = CdrWriter::spawn(store.clone(), 4);
    sink.journal(provisional("crash", 1_000), None);
    sink.journal(
        provisional("crash", 2_000),
        Some("recordings/crash.wav".into()),
    );
    sink.journal(provisional("ended", 0), None);
    sink.submit(sample_cdr("ended"));
    // The process dies before the call ends: nothing submits its CDR.
    handle.close().await.unwrap();
    drop(sink);
    store.close().await;

    let store = Store::connect(&url).await.unwrap();
    let calls: Vec<_> = store
        .journaled_calls()
        .await
        .unwrap()
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].cdr, provisional("crash", 2_000));
    assert_eq!(
        calls[0].recording_part.as_deref(),
        Some("recordings/crash.wav")
    );
    assert!(calls[0].updated_at <= ms_precision(Utc::now()));

    // The restart path closes it with a final CDR through the normal writer.
    let (sink, handle) = CdrWriter::spawn(store.clone(), 4);
    let mut closed = calls[0].cdr.clone();
    closed.outcome.end_reason = EndReason::GatewayRestart;
    sink.submit(closed);
    handle.close().await.unwrap();
    assert!(store.journaled_calls().await.unwrap().is_empty());
    assert_eq!(store.count_cdrs().await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn burst_of_journal_and_cdr_pairs_leaves_no_journal_row() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let (sink, handle) = CdrWriter::spawn(store.clone(), 8);
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let sink = sink.clone();
            // No await inside: the overflow list must keep each call's order on its own.
            tokio::spawn(async move {
                for i in 0..250 {
                    let id = format!("p{t}-{i}");
                    sink.journal(provisional(&id, 0), Some(format!("{id}.wav")));
                    sink.submit(sample_cdr(&id));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stats = handle.close().await.unwrap();
    assert_eq!(journal_rows(&store).await, []);
    assert_eq!(store.count_cdrs().await.unwrap(), 2_000);
    assert_eq!(
        all_ids(&store)
            .await
            .into_iter()
            .collect::<HashSet<_>>()
            .len(),
        2_000
    );
    assert_eq!((stats.written, stats.journaled), (2_000, 2_000));
    assert_eq!((stats.queued, stats.late), (0, 0));
    assert!(stats.overflowed > 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_entries_keep_their_order_through_the_overflow_list() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cdr.db").display());
    let opts = StoreOptions {
        busy_timeout: Duration::from_millis(20),
        ..StoreOptions::default()
    };
    let store = Store::connect_with(&url, opts).await.unwrap();
    let mut locker = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .unwrap();

    // The writer is stuck on its first entry; the first entries of 600 calls fill the channel
    // and pile up in the overflow list, more than one batch.
    let (sink, handle) = CdrWriter::spawn(store.clone(), 2);
    sink.journal(provisional("first", 0), None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sink.stats().failed_retries == 0 {
        assert!(tokio::time::Instant::now() < deadline, "writer never tried");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let id = |k: usize| format!("o-{k}");
    for k in 0..600 {
        sink.journal(provisional(&id(k), 1), None);
    }
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    // Second entries trickle in while the writer works through the list, last calls first: a
    // second entry that overtook a first one still in the list would leave the first stored.
    for k in (0..600).rev() {
        sink.journal(provisional(&id(k), 2), None);
        if k % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let stats = handle.close().await.unwrap();
    assert!(stats.overflowed > 0, "{stats:?}");
    assert_eq!(stats.journaled, 1_201);
    let calls: Vec<JournaledCall> = store
        .journaled_calls()
        .await
        .unwrap()
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(calls.len(), 601);
    let stale: Vec<&str> = calls
        .iter()
        .filter(|call| call.cdr.attempt.id != "first" && call.cdr.outcome.talk_ms != 2)
        .map(|call| call.cdr.attempt.id.as_str())
        .collect();
    assert!(stale.is_empty(), "older entry applied last for {stale:?}");
}

#[tokio::test]
async fn a_journal_entry_after_close_is_counted_late() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let (sink, handle) = CdrWriter::spawn(store.clone(), 4);
    handle.close().await.unwrap();
    sink.journal(provisional("late", 0), None);
    assert_eq!((sink.stats().late, sink.stats().journaled), (1, 0));
    assert_eq!(journal_rows(&store).await, []);
}

fn journal_write(cdr: Cdr) -> CdrWrite {
    CdrWrite::Journal {
        cdr,
        recording_part: None,
        dialogs: None,
        at: ms_precision(Utc::now()),
    }
}

fn shape(batch: &[CdrWrite]) -> Vec<(String, &'static str, i64)> {
    batch
        .iter()
        .map(|w| match w {
            CdrWrite::Cdr(c) => (c.attempt.id.clone(), "cdr", c.outcome.talk_ms),
            CdrWrite::Journal { cdr, .. } => {
                (cdr.attempt.id.clone(), "journal", cdr.outcome.talk_ms)
            }
        })
        .collect()
}

#[test]
fn a_batch_drops_only_the_journal_entries_it_supersedes() {
    let final_a = sample_cdr("a");
    let mut batch = vec![
        journal_write(provisional("a", 0)),
        journal_write(provisional("b", 0)),
        journal_write(provisional("a", 1)),
        CdrWrite::Cdr(final_a.clone()),
        journal_write(provisional("b", 7)),
        // After its call's CDR: kept (the store ignores it and says so).
        journal_write(provisional("a", 9)),
        journal_write(provisional("c", 3)),
    ];
    assert_eq!(drop_superseded(&mut batch), 3);
    assert_eq!(
        shape(&batch),
        [
            ("a".to_string(), "cdr", final_a.outcome.talk_ms),
            ("b".to_string(), "journal", 7),
            ("a".to_string(), "journal", 9),
            ("c".to_string(), "journal", 3),
        ]
    );
    let mut one = vec![journal_write(provisional("d", 0))];
    assert_eq!(drop_superseded(&mut one), 0);
    assert_eq!(one.len(), 1);
}
