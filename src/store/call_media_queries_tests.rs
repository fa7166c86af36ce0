use chrono::Duration;

use super::*;
use crate::model::{sample_cdr, Disposition, Outcome};
use crate::model::{EndReason, RefusalReason};
use crate::store::testing::{self, on_each_backend};
use crate::store::Backend;

async fn child_rows(store: &Store, cdr_id: &str) -> [i64; 4] {
    let mut counts = [0; 4];
    for (n, table) in [
        "cdr_media_legs",
        "recordings",
        "dtmf_events",
        "recording_pauses",
    ]
    .iter()
    .enumerate()
    {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE cdr_id = $1");
        counts[n] = testing::fetch_i64(store, &sql, &[cdr_id]).await.unwrap()[0];
    }
    counts
}

fn refused(id: &str) -> Cdr {
    let mut c = sample_cdr(id);
    c.attempt.answer_at = None;
    c.outcome = Outcome {
        talk_ms: 0,
        final_status: 403,
        final_reason: "Forbidden".into(),
        disposition: Disposition::Refused,
        end_reason: EndReason::Refused,
        refusal_reason: Some(RefusalReason::CallerIdNotAuthorized),
        declined_media: Vec::new(),
        ..c.outcome
    };
    c.media.clear();
    c.recording = None;
    c.dtmf.clear();
    c.recording_pauses.clear();
    c
}

fn recording(status: RecordingStatus, path: &str) -> RecordingInfo {
    RecordingInfo {
        status,
        path: Some(path.to_string()),
        pcap_path: Some(format!("{path}.pcap")),
        sha256: None,
        pcap_sha256: Some("cd".repeat(32)),
        duration_ms: 41_020,
        size_bytes: 1_312_684,
        codec: Some("PCMU".into()),
        overflowed_packets: 0,
        note: Some("repaired after restart".into()),
    }
}

#[tokio::test]
async fn legs_recording_and_digits_round_trip() {
    on_each_backend(|store| async move {
        let mut cdr = sample_cdr("m1");
        assert_eq!(cdr.media.len(), 2);
        assert!(cdr.media.iter().any(|l| l.mos.is_none()));
        assert_eq!(cdr.dtmf.len(), 3);
        // Read back in the CDR's order, not the legs' names' order.
        cdr.media.reverse();
        assert_eq!(store.insert_cdrs(&[cdr.clone()]).await.unwrap(), 1);
        assert_eq!(child_rows(&store, "m1").await, [2, 1, 3, 2]);
        assert_eq!(store.get_cdr("m1").await.unwrap(), Some(cdr.clone()));
        assert_eq!(store.recent_cdrs(5).await.unwrap(), vec![cdr.clone()]);
        assert_eq!(store.recording("m1").await.unwrap(), cdr.recording);

        if store.backend() == Backend::Sqlite {
            let at = testing::fetch_text(
                &store,
                "SELECT at FROM dtmf_events WHERE cdr_id = $1 AND seq = 0",
                &["m1"],
            )
            .await
            .unwrap();
            assert_eq!(at, [Some("2026-11-27T09:15:40.254Z".to_string())]);
        }
    })
    .await;
}

#[tokio::test]
async fn a_refused_call_has_no_children() {
    on_each_backend(|store| async move {
        let cdr = refused("r1");
        store.insert_cdrs(std::slice::from_ref(&cdr)).await.unwrap();
        assert_eq!(child_rows(&store, "r1").await, [0, 0, 0, 0]);
        let back = store.get_cdr("r1").await.unwrap().unwrap();
        assert!(back.media.is_empty() && back.recording.is_none() && back.dtmf.is_empty());
        assert_eq!(back, cdr);
        assert_eq!(store.recent_cdrs(1).await.unwrap(), vec![cdr]);
        assert_eq!(store.recording("r1").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn duplicate_cdr_keeps_the_first_children_without_mixing() {
    on_each_backend(|store| async move {
        let first = sample_cdr("dup");
        let mut second = first.clone();
        second.media.truncate(1);
        second.media[0].lost = 999;
        second.recording = Some(recording(RecordingStatus::Failed, "other.wav"));
        second.dtmf[0].digit = "9".into();
        second.dtmf.push(second.dtmf[0].clone());
        store
            .insert_cdrs(std::slice::from_ref(&first))
            .await
            .unwrap();
        assert_eq!(
            store
                .insert_cdrs(&[second.clone(), second.clone()])
                .await
                .unwrap(),
            0
        );
        assert_eq!(store.get_cdr("dup").await.unwrap(), Some(first));

        // A first write without a recording is not completed by a later duplicate that has one.
        let bare = refused("bare");
        store
            .insert_cdrs(std::slice::from_ref(&bare))
            .await
            .unwrap();
        let mut richer = sample_cdr("bare");
        richer.outcome.disposition = Disposition::Answered;
        assert_eq!(store.insert_cdrs(&[richer]).await.unwrap(), 0);
        assert_eq!(child_rows(&store, "bare").await, [0, 0, 0, 0]);
        assert_eq!(store.get_cdr("bare").await.unwrap(), Some(bare));
    })
    .await;
}

#[tokio::test]
async fn recent_page_gets_each_cdr_its_own_children() {
    on_each_backend(|store| async move {
        let base = sample_cdr("base");
        let mut cdrs = Vec::new();
        for i in 0..6_i64 {
            let mut cdr = if i % 2 == 0 {
                sample_cdr(&format!("p{i}"))
            } else {
                refused(&format!("p{i}"))
            };
            cdr.attempt.invite_at = base.attempt.invite_at + Duration::milliseconds(i);
            for leg in &mut cdr.media {
                leg.packets_in = i as u64;
            }
            cdr.dtmf.truncate(i as usize % 4);
            cdrs.push(cdr);
        }
        store.insert_cdrs(&cdrs).await.unwrap();
        let page = store.recent_cdrs(4).await.unwrap();
        let want: Vec<Cdr> = cdrs.iter().rev().take(4).cloned().collect();
        assert_eq!(page, want);
        assert_eq!(store.recent_cdrs(100).await.unwrap().len(), 6);
    })
    .await;
}

#[tokio::test]
async fn update_recording_inserts_then_replaces() {
    on_each_backend(|store| async move {
        store.insert_cdrs(&[refused("u1")]).await.unwrap();
        assert_eq!(store.recording("u1").await.unwrap(), None);

        let partial = recording(RecordingStatus::Incomplete, "recordings/u1.wav");
        store.update_recording("u1", &partial).await.unwrap();
        assert_eq!(store.recording("u1").await.unwrap(), Some(partial.clone()));

        let repaired = RecordingInfo {
            sha256: Some("ab".repeat(32)),
            overflowed_packets: 7,
            pcap_path: None,
            pcap_sha256: None,
            ..partial
        };
        store.update_recording("u1", &repaired).await.unwrap();
        assert_eq!(child_rows(&store, "u1").await, [0, 1, 0, 0]);
        let back = store.get_cdr("u1").await.unwrap().unwrap();
        assert_eq!(back.recording, Some(repaired.clone()));

        // An answered CDR's recording is replaced too, nothing else of it changes.
        let mut answered = sample_cdr("u2");
        store.insert_cdrs(&[answered.clone()]).await.unwrap();
        store.update_recording("u2", &repaired).await.unwrap();
        answered.recording = Some(repaired.clone());
        assert_eq!(store.get_cdr("u2").await.unwrap(), Some(answered));

        let err = store
            .update_recording("ghost", &repaired)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::UnknownCdr { id } if id == "ghost"),
            "{err}"
        );
        assert_eq!(child_rows(&store, "ghost").await, [0, 0, 0, 0]);
    })
    .await;
}

#[tokio::test]
async fn find_recording_by_path_returns_the_call() {
    on_each_backend(|store| async move {
        let a = sample_cdr("fa");
        let path = a.recording.as_ref().unwrap().path.clone().unwrap();
        store
            .insert_cdrs(&[a.clone(), refused("fb")])
            .await
            .unwrap();
        assert_eq!(
            store.find_recording_by_path(&path).await.unwrap(),
            Some(("fa".to_string(), a.recording.clone().unwrap()))
        );
        assert_eq!(
            store.find_recording_by_path("nowhere.wav").await.unwrap(),
            None
        );

        // Two calls naming one file (a bug elsewhere): the newest call's is returned.
        let mut newer = sample_cdr("fc");
        newer.attempt.invite_at += Duration::seconds(1);
        let mut info = a.recording.clone().unwrap();
        info.status = RecordingStatus::Incomplete;
        newer.recording = Some(info.clone());
        store.insert_cdrs(&[newer]).await.unwrap();
        assert_eq!(
            store.find_recording_by_path(&path).await.unwrap(),
            Some(("fc".to_string(), info))
        );
    })
    .await;
}

#[tokio::test]
async fn deleting_a_cdr_deletes_its_children() {
    on_each_backend(|store| async move {
        store
            .insert_cdrs(&[sample_cdr("gone"), sample_cdr("kept")])
            .await
            .unwrap();
        assert_eq!(child_rows(&store, "gone").await, [2, 1, 3, 2]);
        testing::execute(&store, "DELETE FROM cdrs WHERE id = $1", &["gone"])
            .await
            .unwrap();
        assert_eq!(child_rows(&store, "gone").await, [0, 0, 0, 0]);
        assert_eq!(child_rows(&store, "kept").await, [2, 1, 3, 2]);
        assert_eq!(store.recording("gone").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn any_value_the_types_allow_is_storable() {
    on_each_backend(|store| async move {
        // The writer retries a refused batch forever: odd values must be stored, not rejected.
        let mut cdr = sample_cdr("odd");
        let leg = &mut cdr.media[0];
        leg.packets_in = u64::MAX;
        leg.jitter_ms = f64::NAN;
        leg.max_jitter_ms = f64::INFINITY;
        leg.mos = Some(f64::NAN);
        leg.leg = String::new();
        // The same leg twice: the first is kept.
        cdr.media[1].leg = String::new();
        let rec = cdr.recording.as_mut().unwrap();
        rec.overflowed_packets = u64::MAX;
        rec.duration_ms = i64::MIN;
        rec.path = None;
        cdr.dtmf[0].duration_ms = u32::MAX;
        cdr.dtmf[1].digit = "nul\0".into();
        assert_eq!(store.insert_cdrs(&[cdr.clone()]).await.unwrap(), 1);

        let back = store.get_cdr("odd").await.unwrap().unwrap();
        assert_eq!(back.media.len(), 1);
        let leg = &back.media[0];
        assert_eq!(leg.packets_in, i64::MAX as u64);
        assert!(leg.jitter_ms.is_nan());
        assert_eq!(leg.max_jitter_ms, f64::INFINITY);
        assert_eq!(leg.mos, None);
        assert_eq!(leg.bytes_in, cdr.media[0].bytes_in);
        let rec = back.recording.unwrap();
        assert_eq!(rec.overflowed_packets, i64::MAX as u64);
        assert_eq!(rec.duration_ms, i64::MIN);
        if store.backend() == Backend::Postgres {
            // PostgreSQL's text cannot hold NUL: stored as U+FFFD rather than refused.
            cdr.dtmf[1].digit = "nul\u{FFFD}".into();
        }
        assert_eq!(back.dtmf, cdr.dtmf);
    })
    .await;
}

#[tokio::test]
async fn a_hand_edited_child_row_is_an_error_not_a_panic() {
    on_each_backend(|store| async move {
        let mut edits = vec![(
            "UPDATE cdr_media_legs SET lost = -1 WHERE cdr_id = $1",
            "cdr_media_legs.lost",
        )];
        if store.backend() == Backend::Sqlite {
            // A timestamptz cannot hold anything but a time.
            edits.push((
                "UPDATE dtmf_events SET at = 'soon' WHERE cdr_id = $1",
                "dtmf_events.at",
            ));
        }
        for (n, (sql, column)) in edits.into_iter().enumerate() {
            let id = format!("bad{n}");
            let mut cdr = sample_cdr(&id);
            cdr.attempt.invite_at += Duration::seconds(n as i64 + 1);
            store.insert_cdrs(&[cdr]).await.unwrap();
            testing::execute(&store, sql, &[&id]).await.unwrap();
            let err = store.get_cdr(&id).await.unwrap_err();
            assert!(
                matches!(&err, StoreError::Corrupt { id: i, column: c, .. } if *i == id && *c == column),
                "{err}"
            );
            assert!(store.recent_cdrs(1).await.is_err());
        }
        // The schema refuses a status code that is not ours.
        store.insert_cdrs(&[sample_cdr("bad")]).await.unwrap();
        let refused = testing::execute(
            &store,
            "UPDATE recordings SET status = 'lost' WHERE cdr_id = $1",
            &["bad"],
        )
        .await;
        assert!(refused.is_err());
    })
    .await;
}

#[tokio::test]
async fn every_recording_status_is_stored_and_read_back() {
    on_each_backend(|store| async move {
        for (n, status) in RecordingStatus::ALL.into_iter().enumerate() {
            let id = format!("s{n}");
            let mut cdr = sample_cdr(&id);
            cdr.recording = Some(recording(status, &format!("recordings/{id}.wav")));
            assert_eq!(store.insert_cdrs(&[cdr]).await.unwrap(), 1, "{status:?}");
            let back = store.recording(&id).await.unwrap().unwrap();
            assert_eq!(back.status, status);
        }
    })
    .await;
}
