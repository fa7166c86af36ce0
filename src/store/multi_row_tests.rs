use chrono::{Duration, DurationRound};

use super::*;
use crate::model::{sample_cdr, Cdr, EndReason};
use crate::store::kpi_queries::tests::Calls;
use crate::store::testing::{on_each_backend, PgTestDb};
use crate::store::{
    table_digests, AppliedWrites, Backend, BucketKey, CdrWrite, Rollup, Store, SubjectKey,
};

const PAIRS: MultiRow = MultiRow {
    head: "INSERT INTO t (a, b) ",
    columns: 2,
    tail: " ON CONFLICT (a) DO NOTHING",
    op: "insert pairs",
};

#[test]
fn the_parameters_are_numbered_across_rows() {
    assert_eq!(
        PAIRS.sql(3, Placeholders::Numbered),
        "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6) ON CONFLICT (a) DO NOTHING"
    );
    assert_eq!(
        PAIRS.sql(2, Placeholders::Anonymous),
        "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT (a) DO NOTHING"
    );
}

#[test]
fn a_chunk_stays_under_the_parameter_limit() {
    assert_eq!(PAIRS.rows_per_statement(), MAX_ROWS);
    let wide = MultiRow {
        columns: 1_000,
        ..PAIRS
    };
    assert_eq!(wide.rows_per_statement(), 32);
    assert!(wide.rows_per_statement() * wide.columns <= MAX_PARAMETERS);
    // 32,766 / 3,000 = 10 rows allowed: the power of two below.
    let wider = MultiRow {
        columns: 3_000,
        ..PAIRS
    };
    assert_eq!(wider.chunks(21).collect::<Vec<_>>(), [8, 8, 4, 1]);
}

#[test]
fn rows_go_in_chunks_of_a_few_sizes_in_order() {
    assert_eq!(PAIRS.chunks(0).count(), 0);
    assert_eq!(PAIRS.chunks(1).collect::<Vec<_>>(), [1]);
    assert_eq!(PAIRS.chunks(13).collect::<Vec<_>>(), [8, 4, 1]);
    assert_eq!(PAIRS.chunks(64).collect::<Vec<_>>(), [64]);
    assert_eq!(PAIRS.chunks(200).collect::<Vec<_>>(), [64, 64, 64, 8]);
    let mut sizes = std::collections::BTreeSet::new();
    for rows in 0..2_000 {
        let chunks: Vec<usize> = PAIRS.chunks(rows).collect();
        assert_eq!(chunks.iter().sum::<usize>(), rows);
        assert!(chunks.windows(2).all(|w| w[0] >= w[1]), "{chunks:?}");
        assert!(chunks.len() <= rows / MAX_ROWS + MAX_ROWS.ilog2() as usize + 1);
        sizes.extend(chunks);
    }
    // So a statement has at most seven texts, each prepared once per connection.
    assert_eq!(
        sizes.into_iter().collect::<Vec<_>>(),
        [1, 2, 4, 8, 16, 32, 64]
    );
}

/// Each call counts for its trunk and its caller, in its INVITE's hour.
fn rollup(cdr: &Cdr) -> Vec<(BucketKey, Calls)> {
    let hour_start = cdr
        .attempt
        .invite_at
        .duration_trunc(Duration::hours(1))
        .unwrap();
    let calls = Calls {
        calls: 1,
        talk_ms: cdr.outcome.talk_ms,
    };
    ["trunk", "caller_id"]
        .into_iter()
        .map(|kind| {
            let number = match kind {
                "trunk" => String::new(),
                _ => cdr.attempt.caller.clone().unwrap_or_default(),
            };
            let subject = SubjectKey {
                kind: kind.into(),
                trunk: "demo".into(),
                number,
            };
            (
                BucketKey {
                    subject,
                    hour_start,
                },
                calls.clone(),
            )
        })
        .collect()
}

/// Call `i`: the sample's legs, recording, digits and pauses, its own caller (a KPI bucket of its
/// own) and one of three hours.
fn call(i: usize) -> Cdr {
    let mut cdr = sample_cdr(&format!("call-{i:04}"));
    cdr.attempt.caller = Some(format!("3312{i:07}"));
    cdr.attempt.invite_at += Duration::minutes((i % 3) as i64 * 60);
    cdr.outcome.talk_ms += i as i64;
    cdr
}

fn journal(i: usize, n: i64) -> CdrWrite {
    let mut cdr = call(i);
    cdr.outcome.end_reason = EndReason::InProgress;
    cdr.outcome.talk_ms = n;
    cdr.recording = None;
    CdrWrite::Journal {
        cdr,
        recording_part: Some(format!("call-{i:04}-{n}.wav.part")),
        dialogs: (n % 2 == 0).then(|| format!("{{\"n\":{n}}}").into()),
        at: call(0).attempt.invite_at + Duration::milliseconds(n),
    }
}

/// Calls stored before the batch: those with `i % 6` 4 or 5.
fn stored_before(calls: usize) -> Vec<CdrWrite> {
    (0..calls)
        .filter(|i| i % 6 >= 4)
        .map(|i| CdrWrite::Cdr(call(i)))
        .collect()
}

/// A batch with every case of a call's writes, by `i % 6`: an entry then the CDR (the row
/// superseded in the batch); the CDR then a late entry (ignored); two entries and no CDR (the
/// second wins); the CDR twice, the second different (the first wins); an entry then the CDR of
/// a call stored before the batch (both change nothing); an entry of a call stored before.
fn batch(calls: usize) -> Vec<CdrWrite> {
    let mut writes = Vec::new();
    for i in 0..calls {
        match i % 6 {
            0 => writes.extend([journal(i, 10), CdrWrite::Cdr(call(i))]),
            1 => writes.extend([CdrWrite::Cdr(call(i)), journal(i, 20)]),
            2 => writes.extend([journal(i, 30), journal(i, 31)]),
            3 => {
                let mut other = call(i);
                other.outcome.talk_ms = 7;
                other.media.pop();
                writes.extend([CdrWrite::Cdr(call(i)), CdrWrite::Cdr(other)]);
            }
            4 => writes.extend([journal(i, 40), CdrWrite::Cdr(call(i))]),
            _ => writes.push(journal(i, 50)),
        }
    }
    writes
}

/// An empty store on `store`'s backend, and the database it lives in on PostgreSQL.
async fn twin(store: &Store) -> (Store, Option<PgTestDb>) {
    match store.backend() {
        Backend::Sqlite => (Store::connect("sqlite::memory:").await.unwrap(), None),
        Backend::Postgres => {
            let db = PgTestDb::create().await.unwrap();
            (db.store().await, Some(db))
        }
    }
}

fn sum(a: AppliedWrites, b: AppliedWrites) -> AppliedWrites {
    AppliedWrites {
        cdrs_inserted: a.cdrs_inserted + b.cdrs_inserted,
        journal_upserts: a.journal_upserts + b.journal_upserts,
        journal_ignored: a.journal_ignored + b.journal_ignored,
    }
}

#[tokio::test]
async fn a_large_batch_stores_what_its_writes_one_by_one_store() {
    on_each_backend(|store| async move {
        let r: Rollup<'_, Calls> = &rollup;
        let calls = 600;
        let (one_by_one, db) = twin(&store).await;
        for s in [&store, &one_by_one] {
            s.apply_cdr_writes_with(&stored_before(calls), Some(r))
                .await
                .unwrap();
        }
        let writes = batch(calls);

        let applied = store.apply_cdr_writes_with(&writes, Some(r)).await.unwrap();
        let mut expected = AppliedWrites::default();
        for write in &writes {
            let single = one_by_one
                .apply_cdr_writes_with(std::slice::from_ref(write), Some(r))
                .await
                .unwrap();
            expected = sum(expected, single);
        }
        assert_eq!(applied, expected);
        assert_eq!(
            applied,
            AppliedWrites {
                cdrs_inserted: 300,
                journal_upserts: 300,
                journal_ignored: 300,
            }
        );
        // Every table, cdr_feed's order and the KPI buckets included.
        let digests = table_digests(&store).await.unwrap();
        assert_eq!(
            crate::store::differences(&table_digests(&one_by_one).await.unwrap(), &digests),
            Vec::<String>::new()
        );
        assert_eq!(store.get_cdr("call-0003").await.unwrap(), Some(call(3)));
        let journaled = store.journaled_calls().await.unwrap();
        assert_eq!(journaled.len(), 100);

        // Replayed (a commit that looked failed): nothing new, nothing changed.
        let again = store.apply_cdr_writes_with(&writes, Some(r)).await.unwrap();
        assert_eq!(
            again,
            AppliedWrites {
                cdrs_inserted: 0,
                journal_upserts: 200,
                journal_ignored: 400,
            }
        );
        assert_eq!(table_digests(&store).await.unwrap(), digests);
        one_by_one.close().await;
        drop(db);
    })
    .await;
}

/// Statements a batch of `calls` calls sends, each journaled and then ended in the batch.
async fn statements(store: &Store, calls: std::ops::Range<usize>) -> u64 {
    let r: Rollup<'_, Calls> = &rollup;
    let mut writes = Vec::new();
    for i in calls {
        writes.extend([
            journal(i, 1),
            CdrWrite::Cdr(call(i)),
            journal(i + 100_000, 2),
        ]);
    }
    let before = sent::so_far();
    store.apply_cdr_writes_with(&writes, Some(r)).await.unwrap();
    sent::so_far() - before
}

#[tokio::test]
async fn a_batch_sends_a_few_statements_whatever_its_size() {
    on_each_backend(|store| async move {
        // Per table, one statement a chunk (`MultiRow::chunks`: powers of two): cdrs, legs,
        // recordings, digits, pauses, the journal rows deleted and upserted, the KPI buckets
        // read and upserted. A call has 2 legs, 3 digits and 2 pauses, a KPI bucket of its own,
        // and the calls fall in 3 hours, 3 buckets for the trunk. (Row by row, a call took 11
        // statements and 2 per KPI bucket.)
        let chunks = |rows: usize| PAIRS.chunks(rows).count() as u64;
        let expected = |calls: usize| {
            // cdrs, recordings, journal rows deleted and upserted; legs and pauses; digits;
            // buckets read and upserted.
            chunks(calls) * 4 + chunks(2 * calls) * 2 + chunks(3 * calls) + chunks(calls + 3) * 2
        };
        // 4 calls: 4, 8, 12 (8 + 4) and 7 (4 + 2 + 1) rows.
        assert_eq!(statements(&store, 0..4).await, 4 + 2 + 2 + 3 * 2);
        assert_eq!(expected(4), 14);
        assert_eq!(statements(&store, 10..80).await, expected(70));
        let calls = 500;
        assert_eq!(
            statements(&store, 1_000..1_000 + calls).await,
            expected(calls)
        );
        assert!(expected(calls) < calls as u64 / 3);
    })
    .await;
}

/// Statements prepared and kept by the one connection of an in-memory store.
async fn cached(store: &Store) -> usize {
    use sqlx::Connection as _;
    let crate::store::backend::Pools::Sqlite(pool) = &store.pools else {
        unreachable!("an in-memory store is SQLite");
    };
    pool.acquire().await.unwrap().cached_statements_size()
}

#[tokio::test]
async fn batches_of_every_size_reuse_a_few_prepared_statements() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let mut next = 0;
    let mut batch = |calls: usize| {
        let range = next..next + calls;
        next += calls;
        range
    };
    statements(&store, batch(1)).await;
    let after_one = cached(&store).await;
    // 2 to 70 calls: every chunk size of every statement is prepared once…
    for calls in 2..=70 {
        statements(&store, batch(calls)).await;
    }
    let warm = cached(&store).await;
    // … and batches of other sizes prepare nothing more.
    for calls in [71, 99, 130, 257] {
        statements(&store, batch(calls)).await;
    }
    assert_eq!(cached(&store).await, warm);
    // 9 statements of 7 sizes at most; a fresh text per batch size would be hundreds.
    assert!(warm - after_one <= 9 * 6, "{after_one} then {warm}");
}
