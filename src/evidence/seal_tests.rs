use super::*;
use crate::evidence::manifest::check;
use crate::evidence::manifest_verify::{verify_day, Finding, VerifyContext};
use crate::model::{sample_cdr, Cdr, RecordingInfo, RecordingStatus};
use crate::store::testing::{self, on_each_backend};
use crate::store::PurgedRecording;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn dec5() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 5).unwrap()
}

fn call(id: &str, at: &str, root: &Path) -> Cdr {
    let mut c = sample_cdr(id);
    let shift = t(at) - c.attempt.invite_at;
    c.attempt.invite_at += shift;
    c.attempt.ringing_at = c.attempt.ringing_at.map(|x| x + shift);
    c.attempt.answer_at = c.attempt.answer_at.map(|x| x + shift);
    c.outcome.end_at += shift;
    let wav = format!("{id}.wav");
    std::fs::write(root.join(&wav), format!("audio of {id}")).unwrap();
    c.recording = Some(RecordingInfo {
        status: RecordingStatus::Complete,
        path: Some(wav),
        sha256: Some(canonical::sha256_hex(format!("audio of {id}").as_bytes())),
        ..RecordingInfo::failed("x")
    });
    c.recording.as_mut().unwrap().note = None;
    c
}

struct Fixture {
    _dir: tempfile::TempDir,
    seal: SealContext,
    verify: VerifyContext,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let recordings = dir.path().join("recordings");
    std::fs::create_dir_all(&recordings).unwrap();
    let key = SigningKey::from_bytes(&[9; 32]);
    Fixture {
        seal: SealContext {
            key: key.clone(),
            evidence_dir: dir.path().join("evidence"),
            recordings_dir: recordings.clone(),
        },
        verify: VerifyContext {
            recordings_dir: recordings,
            evidence_dir: dir.path().join("evidence"),
            public_key: Some(key.verifying_key()),
        },
        _dir: dir,
    }
}

fn kinds(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .map(|f| {
            serde_json::to_value(f).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn a_sealed_day_verifies_and_each_change_after_the_seal_is_named() {
    on_each_backend(|store| async move {
        let f = fixture();
        let root = &f.seal.recordings_dir;
        store
            .insert_cdrs(&[
                call("a", "2026-12-05T08:00:00.000Z", root),
                call("b", "2026-12-05T09:00:00.000Z", root),
                call("c", "2026-12-05T10:00:00.000Z", root),
                call("next-day", "2026-12-06T00:00:00.000Z", root),
            ])
            .await
            .unwrap();
        store
            .place_hold("b", "officer", "dispute", t("2026-12-05T12:00:00.000Z"))
            .await
            .unwrap();

        // Too early: the day has not ended; a partial seal then.
        let partial = seal_day(&store, &f.seal, dec5(), t("2026-12-05T11:00:00.000Z"))
            .await
            .unwrap();
        assert!(!partial.manifest.body.is_final);
        assert_eq!(partial.manifest.body.counts.cdrs, 3);
        assert_eq!(partial.manifest.body.counts.holds, 0, "the hold came later");
        let sealed = seal_day(&store, &f.seal, dec5(), t("2026-12-06T00:10:00.000Z"))
            .await
            .unwrap();
        let m = &sealed.manifest;
        assert!(m.body.is_final);
        assert_eq!(
            (m.body.counts.cdrs, m.body.counts.recordings, m.body.counts.holds),
            (3, 3, 1)
        );
        assert_eq!(m.body.prev_manifest_sha256, GENESIS);
        assert_eq!(check(m, &f.seal.key.verifying_key()), vec![]);
        assert!(sealed.file.ends_with("manifests/2026-12-05.json"));
        let file = std::fs::read_to_string(&sealed.file).unwrap();
        assert_eq!(crate::evidence::manifest::parse(&file).unwrap(), *m);
        assert!(matches!(
            seal_day(&store, &f.seal, dec5(), t("2026-12-06T01:00:00.000Z")).await,
            Err(ManifestError::AlreadySealed { .. })
        ));

        let report = verify_day(&store, &f.verify, dec5()).await.unwrap();
        assert!(report.ok, "{report:?}");
        assert!(report.is_final);
        assert_eq!(report.cdrs, 3);

        // The next day follows it in the chain; sealing the older day again is refused.
        let dec6 = dec5().succ_opt().unwrap();
        let next = seal_day(&store, &f.seal, dec6, t("2026-12-07T00:10:00.000Z"))
            .await
            .unwrap();
        assert_eq!(next.manifest.body.prev_manifest_sha256, m.manifest_sha256);
        assert_eq!(next.manifest.body.prev_day.as_deref(), Some("2026-12-05"));
        let dec4 = dec5().pred_opt().unwrap();
        assert!(matches!(
            seal_day(&store, &f.seal, dec4, t("2026-12-07T00:10:00.000Z")).await,
            Err(ManifestError::OutOfOrder { .. })
        ));

        // The retention purge deletes b's recording: logged, not tampering.
        std::fs::remove_file(root.join("b.wav")).unwrap();
        store
            .mark_recordings_purged(
                &[PurgedRecording {
                    call_id: "b".into(),
                    files: vec![("b.wav".into(), None)],
                }],
                t("2026-12-20T03:00:00.000Z"),
            )
            .await
            .unwrap();
        let report = verify_day(&store, &f.verify, dec5()).await.unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.retention.len(), 1);
        assert_eq!(report.retention[0].call_id, "b");

        // An administrator edits a's talk time and replaces c's recording.
        testing::execute(&store, "UPDATE cdrs SET talk_ms = 1 WHERE id = $1", &["a"])
            .await
            .unwrap();
        std::fs::write(root.join("c.wav"), "other audio").unwrap();
        let report = verify_day(&store, &f.verify, dec5()).await.unwrap();
        assert!(!report.ok);
        assert_eq!(
            kinds(&report.findings),
            ["cdr_altered", "recording_replaced"],
            "{report:?}"
        );
        assert!(matches!(&report.findings[0], Finding::CdrAltered { id, .. } if id == "a"));
        assert!(
            matches!(&report.findings[1], Finding::RecordingReplaced { call_id, file, .. } if call_id == "c" && file == "wav")
        );

        // The PCI pauses are sealed with the recording (where its silence is by design): one
        // moved afterwards is named.
        let sealed_a = m.body.entries.iter().find_map(|e| match e {
            Entry::Recording { call_id, pauses, .. } if call_id == "a" => Some(pauses.len()),
            _ => None,
        });
        assert_eq!(sealed_a, Some(2), "sample_cdr's two pauses are sealed");
        testing::execute(
            &store,
            "UPDATE recording_pauses SET end_ms = end_ms + 1000 WHERE cdr_id = $1",
            &["a"],
        )
        .await
        .unwrap();
        let report = verify_day(&store, &f.verify, dec5()).await.unwrap();
        assert_eq!(
            kinds(&report.findings),
            ["cdr_altered", "recording_row_edited", "recording_replaced"],
            "{report:?}"
        );
        assert!(
            matches!(&report.findings[1], Finding::RecordingRowEdited { call_id, column, .. } if call_id == "a" && column == "pauses")
        );
    })
    .await;
}

#[tokio::test]
async fn a_final_seal_waits_for_the_days_calls_in_progress() {
    on_each_backend(|store| async move {
        let f = fixture();
        let c = call("live", "2026-12-05T23:58:00.000Z", &f.seal.recordings_dir);
        store
            .apply_cdr_writes(&[crate::store::CdrWrite::Journal {
                cdr: c.clone(),
                recording_part: None,
                dialogs: None,
                at: t("2026-12-05T23:59:00.000Z"),
            }])
            .await
            .unwrap();
        assert!(matches!(
            seal_day(&store, &f.seal, dec5(), t("2026-12-06T00:10:00.000Z")).await,
            Err(ManifestError::InProgress { calls: 1, .. })
        ));
        store.insert_cdrs(&[c]).await.unwrap();
        let sealed = seal_day(&store, &f.seal, dec5(), t("2026-12-06T00:15:00.000Z"))
            .await
            .unwrap();
        assert_eq!(sealed.manifest.body.counts.cdrs, 1);
    })
    .await;
}
