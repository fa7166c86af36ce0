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
        dialogs: (n % 2 == 0).then(|| format!("{{\"n\":{n}}}")),
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
async fn a_batch_sends_the_same_statements_whatever_its_size() {
    on_each_backend(|store| async move {
        // One per table: cdrs, legs, recordings, digits, pauses, the journal rows deleted and
        // upserted, the KPI buckets read and upserted. (Row by row, ten calls took 10 × 11
        // statements and 2 per KPI bucket.)
        assert_eq!(statements(&store, 0..10).await, 9);
        assert_eq!(statements(&store, 10..80).await, 9);
        // 500 calls: 2 legs, 3 digits and 2 pauses each, a KPI bucket each and 3 for the trunk,
        // in chunks of MAX_ROWS.
        let chunks = |rows: usize| rows.div_ceil(MAX_ROWS) as u64;
        let calls = 500;
        // cdrs, recordings, journal rows deleted and upserted; legs and pauses; digits; buckets.
        let expected =
            chunks(calls) * 4 + chunks(2 * calls) * 2 + chunks(3 * calls) + chunks(calls + 3) * 2;
        assert_eq!(statements(&store, 1_000..1_000 + calls).await, expected);
        assert!(expected < 30);
    })
    .await;
}
