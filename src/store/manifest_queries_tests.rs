use chrono::Duration;

use super::*;
use crate::model::{sample_cdr, RecordingInfo};
use crate::store::testing::{self, on_each_backend};
use crate::store::{NewAudit, PurgedRecording};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn manifest(day: &str, is_final: bool, sha: &str) -> NewManifest {
    NewManifest {
        day: day.into(),
        is_final,
        sealed_at: t("2026-12-06T00:10:00.000Z"),
        manifest_sha256: sha.into(),
        prev_sha256: GENESIS.into(),
        merkle_root: "r".into(),
        key_fingerprint: "k".into(),
        signature: "s".into(),
        body: "{}".into(),
        file: Some(format!("manifests/{day}.json")),
    }
}

fn cdr_at(id: &str, at: &str) -> Cdr {
    let mut c = sample_cdr(id);
    let shift = t(at) - c.attempt.invite_at;
    c.attempt.invite_at += shift;
    c.attempt.ringing_at = c.attempt.ringing_at.map(|x| x + shift);
    c.attempt.answer_at = c.attempt.answer_at.map(|x| x + shift);
    c.outcome.end_at += shift;
    c.recording = Some(RecordingInfo {
        path: Some(format!("{id}.wav")),
        sha256: Some(format!("sha-{id}")),
        ..RecordingInfo::failed("x")
    });
    c
}

#[tokio::test]
async fn one_final_seal_per_day_partial_ones_kept_and_the_previous_final_found() {
    on_each_backend(|store| async move {
        assert_eq!(store.final_manifest_before(None).await.unwrap(), None);
        let p = store
            .insert_manifest(&manifest("2026-12-05", false, "p1"))
            .await
            .unwrap();
        assert!(p.is_some());
        let f = store
            .insert_manifest(&manifest("2026-12-05", true, "f1"))
            .await
            .unwrap();
        assert!(f.is_some());
        assert_eq!(
            store
                .insert_manifest(&manifest("2026-12-05", true, "f2"))
                .await
                .unwrap(),
            None,
            "a day is sealed once"
        );
        store
            .insert_manifest(&manifest("2026-12-03", true, "f0"))
            .await
            .unwrap()
            .unwrap();
        store
            .insert_manifest(&manifest("2026-12-06", false, "p2"))
            .await
            .unwrap()
            .unwrap();
        let of_day = store.manifests_of_day("2026-12-05").await.unwrap();
        assert_eq!(
            of_day
                .iter()
                .map(|m| (m.manifest.is_final, m.manifest.manifest_sha256.as_str()))
                .collect::<Vec<_>>(),
            [(false, "p1"), (true, "f1")]
        );
        assert_eq!(of_day[1].manifest, manifest("2026-12-05", true, "f1"));
        let prev = |d: Option<&'static str>| {
            let store = store.clone();
            async move {
                store
                    .final_manifest_before(d)
                    .await
                    .unwrap()
                    .map(|m| m.manifest.manifest_sha256)
            }
        };
        assert_eq!(prev(Some("2026-12-06")).await.as_deref(), Some("f1"));
        assert_eq!(prev(Some("2026-12-05")).await.as_deref(), Some("f0"));
        assert_eq!(prev(Some("2026-12-03")).await, None);
        assert_eq!(
            prev(None).await.as_deref(),
            Some("f1"),
            "partial seals are no link"
        );
        let between = store
            .final_manifests_between("2026-12-01", "2026-12-05")
            .await
            .unwrap();
        assert_eq!(between.len(), 2);
        assert_eq!(between[0].manifest.day, "2026-12-03");

        // Append-only.
        assert!(
            testing::execute(&store, "DELETE FROM evidence_manifests", &[])
                .await
                .is_err()
        );
    })
    .await;
}

#[tokio::test]
async fn a_days_cdrs_recordings_retention_and_hold_changes_are_read_by_time() {
    on_each_backend(|store| async move {
        let from = t("2026-12-05T00:00:00.000Z");
        let to = t("2026-12-06T00:00:00.000Z");
        store
            .insert_cdrs(&[
                cdr_at("before", "2026-12-04T23:59:59.999Z"),
                cdr_at("b", "2026-12-05T10:00:00.000Z"),
                cdr_at("a", "2026-12-05T10:00:00.000Z"),
                cdr_at("c", "2026-12-05T23:59:59.999Z"),
                cdr_at("after", "2026-12-06T00:00:00.000Z"),
            ])
            .await
            .unwrap();
        let page = store.cdrs_between(from, to, None, 2).await.unwrap();
        let ids = |c: &[Cdr]| c.iter().map(|c| c.attempt.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&page), ["a", "b"]);
        let last = page.last().unwrap();
        let after = (last.attempt.invite_at, last.attempt.id.clone());
        let rest = store.cdrs_between(from, to, Some(&after), 2).await.unwrap();
        assert_eq!(ids(&rest), ["c"]);
        assert_eq!(rest[0], {
            let mut c = cdr_at("c", "2026-12-05T23:59:59.999Z");
            (c.media, c.recording, c.dtmf) = (vec![], None, vec![]);
            c.recording_pauses.clear();
            c
        });

        let recs = store.recordings_between(from, to, None, 10).await.unwrap();
        assert_eq!(
            recs.iter().map(|r| r.call_id.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        let sample_pauses = cdr_at("a", "2026-12-05T10:00:00.000Z").recording_pauses;
        assert!(!sample_pauses.is_empty());
        assert!(
            recs.iter().all(|r| r.pauses == sample_pauses),
            "each recording with its own pauses, in order"
        );
        assert_eq!(recs[0].sha256.as_deref(), Some("sha-a"));
        assert_eq!(recs[0].status, "failed");
        assert_eq!(recs[0].purged_at, None);

        // A purge at noon; holds placed and released.
        let noon = t("2026-12-05T12:00:00.000Z");
        store
            .mark_recordings_purged(
                &[PurgedRecording {
                    call_id: "a".into(),
                    files: vec![("a.wav".into(), None)],
                }],
                noon,
            )
            .await
            .unwrap();
        let recs = store.recordings_between(from, to, None, 10).await.unwrap();
        assert_eq!(recs[0].purged_at, Some(noon));
        let log = store.retention_between(from, to).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(
            (log[0].call_id.as_str(), log[0].kind.as_str()),
            ("a", "recording")
        );
        assert!(store
            .retention_between(to, to + Duration::days(1))
            .await
            .unwrap()
            .is_empty());

        store
            .place_hold("b", "officer", "court", t("2026-12-04T08:00:00.000Z"))
            .await
            .unwrap();
        store
            .release_hold("b", "boss", Some("done"), t("2026-12-05T08:00:00.000Z"))
            .await
            .unwrap();
        store
            .place_hold("c", "officer", "dispute", t("2026-12-05T07:00:00.000Z"))
            .await
            .unwrap();
        let events = store.hold_events_between(from, to).await.unwrap();
        assert_eq!(
            events
                .iter()
                .map(|e| (e.call_id.as_str(), e.event, e.by.as_str()))
                .collect::<Vec<_>>(),
            [("c", "placed", "officer"), ("b", "released", "boss")]
        );
        assert_eq!(events[1].reason.as_deref(), Some("done"));
    })
    .await;
}

#[tokio::test]
async fn a_chains_head_and_its_links_are_read() {
    on_each_backend(|store| async move {
        assert_eq!(
            store.chain_head(ChainedLog::Audit).await.unwrap(),
            (None, GENESIS.to_string())
        );
        let audit = |i: i64| NewAudit {
            at: t("2026-12-05T10:00:00.000Z"),
            actor: "officer".into(),
            role: Some("compliance".into()),
            method: "GET".into(),
            path: format!("/api/v1/calls/C{i}"),
            query: String::new(),
            action: "calls.get".into(),
            call_id: Some(format!("C{i}")),
            recording: None,
            client: "127.0.0.1:1".into(),
            status: 200,
        };
        store.append_audit(&audit(1)).await.unwrap();
        let id = store.append_audit(&audit(2)).await.unwrap();
        let (head_id, head) = store.chain_head(ChainedLog::Audit).await.unwrap();
        assert_eq!(head_id, Some(id));
        assert_eq!(head.len(), 64);
        assert!(store
            .chain_has_link(ChainedLog::Audit, id, &head)
            .await
            .unwrap());
        assert!(!store
            .chain_has_link(ChainedLog::Audit, id - 1, &head)
            .await
            .unwrap());
        assert!(!store
            .chain_has_link(ChainedLog::Enforcement, id, &head)
            .await
            .unwrap());
    })
    .await;
}
