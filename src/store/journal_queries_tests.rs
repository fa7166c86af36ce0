use chrono::Duration;

use super::*;
use crate::model::EndReason;
use crate::model::{ms_precision, sample_cdr};
use crate::store::testing::{self, on_each_backend};
use crate::store::Backend;

/// What a call in progress journals: the sample call, not yet ended.
fn provisional(id: &str, talk_ms: i64) -> Cdr {
    let mut c = sample_cdr(id);
    c.outcome.talk_ms = talk_ms;
    c.outcome.end_reason = EndReason::InProgress;
    c.recording = None;
    c
}

fn at(offset_ms: i64) -> DateTime<Utc> {
    sample_cdr("x").attempt.invite_at + Duration::milliseconds(offset_ms)
}

/// Dialog state is opaque to the store: any text round-trips.
fn dialogs_of(part: &str) -> String {
    format!(r#"{{"legs":["{part}"]}}"#)
}

fn journal(cdr: Cdr, part: Option<&str>, offset_ms: i64) -> CdrWrite {
    CdrWrite::Journal {
        cdr,
        recording_part: part.map(str::to_string),
        dialogs: part.map(|p| dialogs_of(p).into()),
        at: at(offset_ms),
    }
}

async fn journal_ids(store: &Store) -> Vec<String> {
    testing::fetch_text(store, "SELECT id FROM call_journal ORDER BY id", &[])
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .collect()
}

/// A journal row written behind the writer's back (its time as given, text on SQLite).
async fn insert_raw_journal(store: &Store, id: &str, json: &str, updated_at: &str) {
    let sql = format!(
        "INSERT INTO call_journal (id, cdr_json, recording_part, updated_at) \
         VALUES ($1, $2, NULL, {})",
        testing::time_param(store, 3)
    );
    testing::execute(store, &sql, &[id, json, updated_at])
        .await
        .unwrap();
}

async fn journaled_ok(store: &Store) -> Vec<JournaledCall> {
    store
        .journaled_calls()
        .await
        .unwrap()
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn journal_then_cdr_leaves_only_the_cdr() {
    on_each_backend(|store| async move {
        // Same batch.
        let applied = store
            .apply_cdr_writes(&[
                journal(provisional("a", 0), Some("a.part"), 1),
                CdrWrite::Cdr(sample_cdr("a")),
            ])
            .await
            .unwrap();
        assert_eq!(
            applied,
            AppliedWrites {
                cdrs_inserted: 1,
                journal_upserts: 1,
                journal_ignored: 0
            }
        );
        // Separate batches.
        store
            .apply_cdr_writes(&[journal(provisional("b", 0), None, 1)])
            .await
            .unwrap();
        assert_eq!(journal_ids(&store).await, ["b"]);
        store
            .apply_cdr_writes(&[CdrWrite::Cdr(sample_cdr("b"))])
            .await
            .unwrap();
        assert!(journal_ids(&store).await.is_empty());
        assert!(journaled_ok(&store).await.is_empty());
        assert_eq!(store.get_cdr("a").await.unwrap(), Some(sample_cdr("a")));
        assert_eq!(store.get_cdr("b").await.unwrap(), Some(sample_cdr("b")));
    })
    .await;
}

#[tokio::test]
async fn a_duplicate_cdr_still_ends_the_journal() {
    on_each_backend(|store| async move {
        store.insert_cdrs(&[sample_cdr("d")]).await.unwrap();
        // Written behind the writer's back, as a buggy older version might have left it.
        let json = serde_json::to_string(&provisional("d", 0)).unwrap();
        insert_raw_journal(
            &store,
            "d",
            &json,
            &crate::store::cdr_queries::format_time(at(0)),
        )
        .await;
        let applied = store
            .apply_cdr_writes(&[CdrWrite::Cdr(sample_cdr("d"))])
            .await
            .unwrap();
        assert_eq!(applied.cdrs_inserted, 0);
        assert!(journal_ids(&store).await.is_empty());

        // insert_cdrs ends journal entries the same way.
        store
            .apply_cdr_writes(&[journal(provisional("e", 0), None, 0)])
            .await
            .unwrap();
        assert_eq!(store.insert_cdrs(&[sample_cdr("e")]).await.unwrap(), 1);
        assert!(journal_ids(&store).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_second_entry_replaces_the_first() {
    on_each_backend(|store| async move {
        store
            .apply_cdr_writes(&[journal(provisional("u", 1_000), Some("u.part"), 1_000)])
            .await
            .unwrap();
        let applied = store
            .apply_cdr_writes(&[journal(provisional("u", 2_000), Some("u-2.part"), 2_000)])
            .await
            .unwrap();
        assert_eq!(applied.journal_upserts, 1);
        let calls = journaled_ok(&store).await;
        assert_eq!(
            calls,
            [JournaledCall {
                cdr: provisional("u", 2_000),
                recording_part: Some("u-2.part".into()),
                dialogs: Some(dialogs_of("u-2.part")),
                updated_at: at(2_000),
            }]
        );
        let json = testing::fetch_text(&store, "SELECT cdr_json FROM call_journal", &[])
            .await
            .unwrap();
        assert_eq!(
            json,
            [Some(
                serde_json::to_string(&provisional("u", 2_000)).unwrap()
            )]
        );
    })
    .await;
}

#[tokio::test]
async fn a_late_entry_does_not_bring_an_ended_call_back() {
    on_each_backend(|store| async move {
        // Same batch.
        let applied = store
            .apply_cdr_writes(&[
                CdrWrite::Cdr(sample_cdr("l1")),
                journal(provisional("l1", 0), Some("l1.part"), 5),
            ])
            .await
            .unwrap();
        assert_eq!((applied.journal_upserts, applied.journal_ignored), (0, 1));
        // A later batch.
        let applied = store
            .apply_cdr_writes(&[journal(provisional("l1", 0), None, 6)])
            .await
            .unwrap();
        assert_eq!((applied.journal_upserts, applied.journal_ignored), (0, 1));
        assert!(journal_ids(&store).await.is_empty());
        assert_eq!(store.get_cdr("l1").await.unwrap(), Some(sample_cdr("l1")));
    })
    .await;
}

#[tokio::test]
async fn journaled_calls_read_back_exactly_oldest_first() {
    on_each_backend(|store| async move {
        let mut nan = provisional("n", 0);
        nan.media[0].jitter_ms = f64::NAN;
        nan.media[1].max_jitter_ms = f64::INFINITY;
        nan.media[1].mos = Some(f64::NAN);
        nan.recording = sample_cdr("n").recording;
        // Full precision: the JSON keeps nanoseconds, unlike the cdrs table.
        let mut precise = provisional("p", 0);
        precise.outcome.end_at += Duration::nanoseconds(123_456_789);
        store
            .apply_cdr_writes(&[
                journal(nan.clone(), Some("recordings/n.wav.part"), 20),
                journal(precise.clone(), None, 10),
            ])
            .await
            .unwrap();

        let calls = journaled_ok(&store).await;
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].cdr, precise);
        assert_eq!(calls[0].recording_part, None);
        assert_eq!(calls[0].updated_at, ms_precision(at(10)));

        let got = &calls[1];
        assert_eq!(got.recording_part.as_deref(), Some("recordings/n.wav.part"));
        assert_eq!(got.updated_at, at(20));
        assert!(got.cdr.media[0].jitter_ms.is_nan());
        assert!(got.cdr.media[1].max_jitter_ms.is_nan());
        assert_eq!(got.cdr.media[1].mos, None);
        // Everything else as written.
        let mut expected = nan;
        let mut actual = got.cdr.clone();
        for cdr in [&mut expected, &mut actual] {
            cdr.media[0].jitter_ms = 0.0;
            cdr.media[1].max_jitter_ms = 0.0;
            cdr.media[1].mos = None;
        }
        assert_eq!(actual, expected);
    })
    .await;
}

#[tokio::test]
async fn a_corrupt_row_is_reported_and_the_others_still_load() {
    on_each_backend(|store| async move {
        store
            .apply_cdr_writes(&[journal(provisional("good", 0), Some("good.part"), 0)])
            .await
            .unwrap();
        let other_id = serde_json::to_string(&provisional("someone-else", 0)).unwrap();
        let mut rows = vec![
            (
                "bad-json",
                "{\"id\": \"bad-json\", \"direction\": ".to_string(),
                "2026-11-27T09:15:31.000Z",
            ),
            ("wrong-id", other_id.clone(), "2026-11-27T09:15:32.000Z"),
        ];
        let sqlite = store.backend() == Backend::Sqlite;
        if sqlite {
            // A timestamptz cannot hold anything but a time. The JSON is good: it is checked
            // first.
            rows.push((
                "bad-time",
                serde_json::to_string(&provisional("bad-time", 0)).unwrap(),
                "yesterday",
            ));
        }
        for (id, json, updated_at) in &rows {
            insert_raw_journal(&store, id, json, updated_at).await;
        }

        let calls = store.journaled_calls().await.unwrap();
        assert_eq!(calls.len(), rows.len() + 1);
        let mut good = 0;
        let mut corrupt = Vec::new();
        for call in calls {
            match call {
                Ok(call) => {
                    good += 1;
                    assert_eq!(call.cdr.attempt.id, "good");
                    assert_eq!(call.recording_part.as_deref(), Some("good.part"));
                }
                Err(StoreError::Corrupt { id, column, value }) => corrupt.push((id, column, value)),
                Err(other) => panic!("unexpected error {other}"),
            }
        }
        assert_eq!(good, 1);
        corrupt.sort();
        assert_eq!(corrupt.len(), rows.len());
        assert_eq!(
            (corrupt[0].0.as_str(), corrupt[0].1),
            ("bad-json", "call_journal.cdr_json")
        );
        assert!(corrupt[0].2.contains("EOF"), "{}", corrupt[0].2);
        if sqlite {
            assert_eq!(
                (corrupt[1].0.as_str(), corrupt[1].1, corrupt[1].2.as_str()),
                ("bad-time", "call_journal.updated_at", "yesterday")
            );
        }
        let wrong = corrupt.last().unwrap();
        assert_eq!(
            (wrong.0.as_str(), wrong.1),
            ("wrong-id", "call_journal.cdr_json")
        );
        assert!(wrong.2.contains("someone-else"), "{}", wrong.2);
    })
    .await;
}

/// Dialogs that count how often they are encoded.
struct Counted(std::sync::Arc<std::sync::atomic::AtomicU32>, &'static str);

impl crate::store::DialogsJson for Counted {
    fn json(&self) -> Option<String> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(dialogs_of(self.1))
    }
}

#[tokio::test]
async fn only_the_entries_written_have_their_dialogs_encoded() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let encoded = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let entry = |id: &str, part: &'static str, offset_ms: i64| CdrWrite::Journal {
        cdr: provisional(id, offset_ms),
        recording_part: Some(part.into()),
        dialogs: Some(crate::store::Dialogs::new(Counted(encoded.clone(), part))),
        at: at(offset_ms),
    };
    // Call a: three entries, the last one written. Call b: an entry, then its CDR.
    let writes = [
        entry("a", "a-1", 1),
        entry("b", "b-1", 2),
        entry("a", "a-2", 3),
        CdrWrite::Cdr(sample_cdr("b")),
        entry("a", "a-3", 4),
    ];
    let applied = store.apply_cdr_writes(&writes).await.unwrap();
    assert_eq!(applied.journal_upserts, 4);
    assert_eq!(encoded.load(std::sync::atomic::Ordering::SeqCst), 1);
    let calls = journaled_ok(&store).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].dialogs.as_deref(), Some(&*dialogs_of("a-3")));
    assert_eq!(calls[0].recording_part.as_deref(), Some("a-3"));
}
