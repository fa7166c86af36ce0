use chrono::Duration;

use super::*;
use crate::model::EndReason;
use crate::model::RefusalReason;
use crate::model::{sample_cdr, Direction, Disposition, HangupSide};
use crate::store::testing::{self, on_each_backend};
use crate::store::Backend;

async fn memory_store() -> Store {
    Store::connect("sqlite::memory:").await.unwrap()
}

#[tokio::test]
async fn round_trip_is_exact() {
    on_each_backend(|store| async move {
        let mut answered = sample_cdr("call-1");
        answered.outcome.declined_media = vec!["video".into(), "image/t38".into()];
        let refused = Cdr {
            attempt: Attempt {
                id: "call-2".into(),
                inside_call_id: None,
                outside_call_id: None,
                trunk: None,
                direction: Direction::Inbound,
                source: "[2001:db8::7]:5062".into(),
                caller: None,
                callee: Some("33987654321".into()),
                presented_from: Some("anonymous".into()),
                pai: None,
                ringing_at: None,
                answer_at: None,
                // The node that carried it (a cluster's); the answered one has none.
                node: Some("gw-b".into()),
                ..answered.attempt.clone()
            },
            outcome: Outcome {
                end_at: answered.attempt.invite_at + Duration::milliseconds(1),
                talk_ms: 0,
                final_status: 403,
                final_reason: "Forbidden — «non autorisé»".into(),
                q850_cause: Some(21),
                hangup_side: None,
                disposition: Disposition::Refused,
                end_reason: EndReason::Refused,
                refusal_reason: Some(RefusalReason::CallerIdNotAuthorized),
                declined_media: Vec::new(),
            },
            media: Vec::new(),
            recording: None,
            dtmf: Vec::new(),
            recording_pauses: Vec::new(),
        };
        assert!(!answered.media.is_empty() && answered.recording.is_some());
        assert_eq!(
            store
                .insert_cdrs(&[answered.clone(), refused.clone()])
                .await
                .unwrap(),
            2
        );
        assert_eq!(store.get_cdr("call-1").await.unwrap(), Some(answered));
        assert_eq!(store.get_cdr("call-2").await.unwrap(), Some(refused));
        assert_eq!(store.get_cdr("nope").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn times_are_stored_as_timestamptz_on_postgres() {
    let Some(db) = testing::PgTestDb::create().await else {
        return;
    };
    let store = db.store().await;
    store.insert_cdrs(&[sample_cdr("t")]).await.unwrap();
    let kinds = testing::fetch_text(
        &store,
        "SELECT data_type::text FROM information_schema.columns \
         WHERE table_name = 'cdrs' AND column_name IN ('invite_at', 'end_at')",
        &[],
    )
    .await
    .unwrap();
    let want = Some("timestamp with time zone".to_string());
    assert_eq!(kinds, [want.clone(), want]);
    let text = testing::fetch_text(
        &store,
        "SELECT to_char(invite_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') \
         FROM cdrs WHERE id = $1",
        &["t"],
    )
    .await
    .unwrap();
    assert_eq!(text, [Some("2026-11-27T09:15:30.250Z".to_string())]);
    store.close().await;
}

#[tokio::test]
async fn a_hand_edited_bad_code_is_an_error_not_a_panic() {
    on_each_backend(|store| async move {
        store.insert_cdrs(&[sample_cdr("bad")]).await.unwrap();
        testing::execute(
            &store,
            "UPDATE cdrs SET end_reason = 'exploded' WHERE id = $1",
            &["bad"],
        )
        .await
        .unwrap();
        let err = store.get_cdr("bad").await.unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::Corrupt { id, column: "end_reason", value } if id == "bad" && value == "exploded"
            ),
            "{err}"
        );
    })
    .await;
}

#[tokio::test]
async fn times_are_stored_as_readable_utc_text() {
    let store = memory_store().await;
    store.insert_cdrs(&[sample_cdr("t")]).await.unwrap();
    let (invite, end): (String, String) =
        sqlx::query_as("SELECT invite_at, end_at FROM cdrs WHERE id = $1")
            .bind("t")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(invite, "2026-11-27T09:15:30.250Z");
    assert_eq!(end, "2026-11-27T09:17:13.253Z");
}

#[tokio::test]
async fn sub_millisecond_input_is_truncated_not_rounded() {
    on_each_backend(|store| async move {
        let mut cdr = sample_cdr("ns");
        cdr.attempt.invite_at += Duration::nanoseconds(999_999);
        store.insert_cdrs(&[cdr.clone()]).await.unwrap();
        let back = store.get_cdr("ns").await.unwrap().unwrap();
        assert_eq!(
            back.attempt.invite_at,
            crate::model::ms_precision(cdr.attempt.invite_at)
        );
        assert_eq!(back.attempt.invite_at, sample_cdr("ns").attempt.invite_at);
    })
    .await;
}

#[tokio::test]
async fn duplicate_id_keeps_one_row_first_write_wins() {
    on_each_backend(|store| async move {
        let first = sample_cdr("dup");
        let mut second = first.clone();
        second.outcome.end_reason = EndReason::Shutdown;
        assert_eq!(
            store
                .insert_cdrs(std::slice::from_ref(&first))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store.insert_cdrs(&[second.clone(), second]).await.unwrap(),
            0
        );
        assert_eq!(store.count_cdrs().await.unwrap(), 1);
        assert_eq!(store.get_cdr("dup").await.unwrap(), Some(first));
    })
    .await;
}

#[tokio::test]
async fn recent_is_newest_first_with_stable_ties() {
    on_each_backend(|store| async move {
        let base = sample_cdr("x");
        let mut cdrs = Vec::new();
        for (id, offset_ms) in [("a", 0), ("b", 5), ("c", 5), ("d", 10), ("e", -3)] {
            let mut c = sample_cdr(id);
            c.attempt.invite_at = base.attempt.invite_at + Duration::milliseconds(offset_ms);
            cdrs.push(c);
        }
        store.insert_cdrs(&cdrs).await.unwrap();
        let ids = |v: Vec<Cdr>| v.into_iter().map(|c| c.attempt.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.recent_cdrs(10).await.unwrap()),
            ["d", "c", "b", "a", "e"]
        );
        assert_eq!(ids(store.recent_cdrs(2).await.unwrap()), ["d", "c"]);
        assert!(store.recent_cdrs(0).await.unwrap().is_empty());
        assert!(store.recent_cdrs(-1).await.unwrap().is_empty());
        assert_eq!(store.count_cdrs().await.unwrap(), 5);
    })
    .await;
}

#[tokio::test]
async fn any_value_the_type_allows_is_storable() {
    on_each_backend(|store| async move {
        // The writer retries forever, so no valid Cdr may ever be refused by the schema.
        let mut c = sample_cdr("");
        c.outcome.final_status = u16::MAX;
        c.outcome.q850_cause = Some(u8::MAX);
        c.outcome.talk_ms = i64::MIN;
        c.attempt.source = String::new();
        c.outcome.final_reason = "nul\0inside".into();
        c.outcome.hangup_side = Some(HangupSide::Gateway);
        c.outcome.disposition = Disposition::NoAnswer;
        assert_eq!(store.insert_cdrs(&[c.clone()]).await.unwrap(), 1);
        if store.backend() == Backend::Postgres {
            // PostgreSQL's text cannot hold NUL: stored as U+FFFD rather than refused.
            c.outcome.final_reason = "nul\u{FFFD}inside".into();
        }
        assert_eq!(store.get_cdr("").await.unwrap(), Some(c));
    })
    .await;
}

#[tokio::test]
async fn a_hand_edited_bad_row_is_an_error_not_a_panic() {
    let store = memory_store().await;
    store.insert_cdrs(&[sample_cdr("bad")]).await.unwrap();
    sqlx::query("UPDATE cdrs SET answer_at = $1 WHERE id = $2")
        .bind("yesterday")
        .bind("bad")
        .execute(store.pool())
        .await
        .unwrap();
    let err = store.get_cdr("bad").await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                column: "answer_at",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn cdrs_since_pages_forward_from_a_time() {
    on_each_backend(|store| async move {
        let base = sample_cdr("x").attempt.invite_at;
        let mut cdrs = Vec::new();
        for (id, offset_ms) in [("a", -1), ("b", 0), ("c", 0), ("d", 7), ("e", 9)] {
            let mut c = sample_cdr(id);
            c.attempt.invite_at = base + Duration::milliseconds(offset_ms);
            cdrs.push(c);
        }
        store.insert_cdrs(&cdrs).await.unwrap();
        let ids = |v: Vec<Cdr>| v.into_iter().map(|c| c.attempt.id).collect::<Vec<_>>();
        // From `base` on: a is before it; b and c share its time, the id orders them.
        assert_eq!(
            ids(store.cdrs_since(base, None, 10).await.unwrap()),
            ["b", "c", "d", "e"]
        );
        let first = store.cdrs_since(base, None, 2).await.unwrap();
        assert_eq!(ids(first.clone()), ["b", "c"]);
        let last = first.last().unwrap();
        let after = Some((last.attempt.invite_at, last.attempt.id.clone()));
        assert_eq!(
            ids(store.cdrs_since(base, after, 10).await.unwrap()),
            ["d", "e"]
        );
        assert!(store.cdrs_since(base, None, 0).await.unwrap().is_empty());
    })
    .await;
}

#[test]
fn times_are_written_as_chrono_writes_them() {
    use chrono::{NaiveDate, TimeZone};
    let chrono = |t: DateTime<Utc>| t.format(TIME_FORMAT).to_string();
    let mut times = vec![
        Utc.with_ymd_and_hms(2026, 12, 6, 10, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap()
            + Duration::nanoseconds(999_999_999),
        Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(-1, 6, 15, 12, 30, 45).unwrap(),
        // A leap second: chrono writes second 60.
        NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc(),
    ];
    // Every field's digits, milliseconds truncated as chrono does.
    let mut t = Utc.with_ymd_and_hms(1999, 1, 1, 0, 0, 0).unwrap();
    for step in 0..2_000 {
        t += Duration::nanoseconds(7_919_999_983 * 1_000 + step * 1_234_567);
        times.push(t);
    }
    for t in times {
        assert_eq!(format_time(t), chrono(t));
    }
    assert_eq!(
        format_time(
            Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap() + Duration::milliseconds(89)
        ),
        "2026-03-04T05:06:07.089Z"
    );
}
