use chrono::Duration;

use super::*;
use crate::model::sample_cdr;
use crate::store::testing::{self, on_each_backend};

fn t0() -> DateTime<Utc> {
    sample_cdr("x").attempt.invite_at
}

/// A CDR started `days_ago` days before t0, with a recording file path (or none).
fn cdr(id: &str, days_ago: i64, file: bool) -> crate::model::Cdr {
    let mut c = sample_cdr(id);
    let shift = Duration::days(days_ago);
    c.attempt.invite_at -= shift;
    c.outcome.end_at -= shift;
    c.attempt.ringing_at = c.attempt.ringing_at.map(|t| t - shift);
    c.attempt.answer_at = c.attempt.answer_at.map(|t| t - shift);
    if !file {
        c.recording = Some(crate::model::RecordingInfo::failed("disk"));
    }
    c
}

async fn ids_of_expired_recordings(store: &Store, cutoff: DateTime<Utc>) -> Vec<String> {
    store
        .expired_recordings(cutoff, &RetentionCursor::default(), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.call_id)
        .collect()
}

#[tokio::test]
async fn expired_rows_skip_holds_and_page_forward() {
    on_each_backend(|store| async move {
        store
            .insert_cdrs(&[
                cdr("old1", 10, true),
                cdr("old2", 9, true),
                cdr("held", 9, true),
                cdr("fresh", 1, true),
            ])
            .await
            .unwrap();
        store
            .place_hold("held", "officer", "case", t0())
            .await
            .unwrap();
        let cutoff = t0() - Duration::days(5);
        assert_eq!(
            ids_of_expired_recordings(&store, cutoff).await,
            ["old1", "old2"]
        );
        // Paging: one at a time, after the cursor.
        let first = store
            .expired_recordings(cutoff, &RetentionCursor::default(), 1)
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        let next = store
            .expired_recordings(cutoff, &first[0].cursor, 1)
            .await
            .unwrap();
        assert_eq!(next[0].call_id, "old2");
        assert!(store
            .expired_recordings(cutoff, &next[0].cursor, 1)
            .await
            .unwrap()
            .is_empty());
        // A CDR whose recording still has its file is not offered for deletion.
        assert!(store
            .expired_cdrs(cutoff, &RetentionCursor::default(), 100)
            .await
            .unwrap()
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn purged_recordings_keep_their_row_and_cdrs_go_with_their_children() {
    on_each_backend(|store| async move {
        store
            .insert_cdrs(&[cdr("a", 10, true), cdr("b", 10, false)])
            .await
            .unwrap();
        // A complaint linked to call a.
        let sql = format!(
            "INSERT INTO complaints (id, complainant, caller_id, received_at, category, source, \
             imported_at) VALUES (1, '33987654321', '33123456789', {t}, 'other', 'carrier', {t})",
            t = testing::time_param(&store, 1)
        );
        testing::execute(
            &store,
            &sql,
            &[&crate::store::cdr_queries::format_time(t0())],
        )
        .await
        .unwrap();
        testing::execute(
            &store,
            "INSERT INTO complaint_cdrs (complaint_id, cdr_id) VALUES (1, 'a')",
            &[],
        )
        .await
        .unwrap();
        let now = t0();
        let cutoff = now - Duration::days(5);
        let wav = store.recording("a").await.unwrap().unwrap().path.unwrap();
        let marked = store
            .mark_recordings_purged(
                &[
                    PurgedRecording {
                        call_id: "a".into(),
                        files: vec![(wav.clone(), None)],
                    },
                    PurgedRecording {
                        call_id: "b".into(),
                        files: vec![],
                    },
                ],
                now,
            )
            .await
            .unwrap();
        assert_eq!(marked, 2);
        assert_eq!(store.recording_purged_at("a").await.unwrap(), Some(now));
        assert!(
            store.recording("a").await.unwrap().is_some(),
            "the row stays"
        );
        assert!(ids_of_expired_recordings(&store, cutoff).await.is_empty());
        // Marking again logs nothing more.
        let again = PurgedRecording {
            call_id: "a".into(),
            files: vec![(wav.clone(), None)],
        };
        assert_eq!(
            store.mark_recordings_purged(&[again], now).await.unwrap(),
            0
        );

        let expired: Vec<String> = store
            .expired_cdrs(cutoff, &RetentionCursor::default(), 100)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.call_id)
            .collect();
        assert_eq!(expired, ["a", "b"]);
        store
            .place_hold("b", "officer", "late hold", now)
            .await
            .unwrap();
        let deleted = store.delete_expired_cdrs(&expired, now).await.unwrap();
        assert_eq!(deleted, ["a"], "a call held since it was read is kept");
        assert!(store.get_cdr("a").await.unwrap().is_none());
        assert!(store.recording("a").await.unwrap().is_none());
        assert!(store.get_cdr("b").await.unwrap().is_some());
        let links = testing::fetch_i64(&store, "SELECT COUNT(*) FROM complaint_cdrs", &[])
            .await
            .unwrap();
        assert_eq!(links, [0]);
        let complaints = testing::fetch_i64(&store, "SELECT COUNT(*) FROM complaints", &[])
            .await
            .unwrap();
        assert_eq!(complaints, [1], "the complaint itself stays");

        let log = store.retention_entries(None, 100).await.unwrap();
        let rows: Vec<(&str, &str, Option<&str>)> = log
            .iter()
            .map(|e| (e.kind.as_str(), e.call_id.as_str(), e.file.as_deref()))
            .collect();
        assert_eq!(
            rows,
            [
                ("recording", "a", Some(wav.as_str())),
                ("recording", "b", None),
                ("cdr", "a", None)
            ]
        );
        assert_eq!(
            store.retention_entries(Some("b"), 100).await.unwrap().len(),
            1
        );
        // The log is append-only.
        assert!(testing::execute(&store, "DELETE FROM retention_log", &[])
            .await
            .is_err());
    })
    .await;
}
