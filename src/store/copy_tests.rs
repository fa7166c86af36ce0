use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::*;
use crate::model::{sample_cdr, Cdr, Disposition, EndReason, RecordingInfo, RefusalReason};
use crate::store::testing::{self, PgTestDb};
use crate::store::{
    AnomalyRow, AuditFilter, BucketCounters, BucketKey, CdrWrite, NewApiToken, NewAudit,
    NewComplaint, NewEnforcement, NewRequest, PurgedRecording, RetentionCursor, SubjectKey,
};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Calls {
    calls: u64,
}

impl BucketCounters for Calls {
    fn merge(&mut self, other: &Self) {
        self.calls += other.calls;
    }
}

fn t0() -> DateTime<Utc> {
    sample_cdr("x").attempt.invite_at
}

fn subject(number: &str) -> SubjectKey {
    SubjectKey {
        kind: "caller_id".into(),
        trunk: "demo".into(),
        number: number.into(),
    }
}

fn impose(imposition: i64, anomaly: Option<&str>) -> NewEnforcement {
    NewEnforcement {
        at: t0() + Duration::minutes(imposition),
        action: "impose".into(),
        imposition,
        subject: subject("+861012345678"),
        step: "throttle".into(),
        until: Some(t0() + Duration::hours(2)),
        cause: if anomaly.is_some() {
            "rule"
        } else {
            "operator"
        }
        .into(),
        rule: anomaly.map(|_| "error_rate".to_string()),
        anomaly_id: anomaly.map(str::to_string),
        operator: anomaly.is_none().then(|| "alice".to_string()),
        reason: "test".into(),
        detail_json: "{\"step\":\"throttle\"}".into(),
    }
}

/// A SQLite file database with rows in every table, through the store's own writes.
async fn filled_sqlite(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}/tg.db", dir.path().display());
    let store = Store::connect(&url).await.unwrap();
    let t = t0();
    let caller = sample_cdr("x").attempt.caller.unwrap();
    let callee = sample_cdr("x").attempt.callee.unwrap();

    // CDRs: answered ones with legs, recordings and digits; a refused one; odd values.
    let mut cdrs: Vec<Cdr> = (0..5)
        .map(|i| {
            let mut c = sample_cdr(&format!("call-{i}"));
            c.attempt.invite_at += Duration::seconds(i);
            c
        })
        .collect();
    let mut refused = sample_cdr("refused");
    refused.attempt.answer_at = None;
    refused.outcome.disposition = Disposition::Refused;
    refused.outcome.end_reason = EndReason::Refused;
    refused.outcome.refusal_reason = Some(RefusalReason::CallerIdNotAuthorized);
    refused.media.clear();
    refused.recording = None;
    refused.dtmf.clear();
    cdrs.push(refused);
    let mut odd = sample_cdr("odd");
    odd.media[0].jitter_ms = f64::NAN;
    odd.media[0].packets_in = u64::MAX;
    odd.outcome.final_reason = "nul\0inside".into();
    odd.recording = Some(RecordingInfo::failed("disk"));
    cdrs.push(odd);
    let rollup = |cdr: &Cdr| {
        vec![(
            BucketKey {
                subject: SubjectKey {
                    kind: "trunk".into(),
                    trunk: cdr.attempt.trunk.clone().unwrap_or_default(),
                    number: String::new(),
                },
                hour_start: cdr.attempt.invite_at - Duration::minutes(15),
            },
            Calls { calls: 1 },
        )]
    };
    let writes: Vec<CdrWrite> = cdrs.iter().cloned().map(CdrWrite::Cdr).collect();
    store
        .apply_cdr_writes_with(&writes, Some(&rollup))
        .await
        .unwrap();
    // A call in progress: a journal row.
    let mut live = sample_cdr("live");
    live.outcome.end_reason = EndReason::InProgress;
    store
        .apply_cdr_writes(&[CdrWrite::Journal {
            cdr: live,
            recording_part: Some("live.wav.part".into()),
            dialogs: Some(String::from("{\"legs\":[]}").into()),
            at: t,
        }])
        .await
        .unwrap();

    // A complaint about call-0 and call-1.
    let complaint = NewComplaint {
        complainant: callee.clone(),
        caller_id: caller.clone(),
        trunk: Some("demo".into()),
        received_at: t + Duration::minutes(5),
        category: "harassment".into(),
        source: "carrier".into(),
        text: "twice".into(),
    };
    let stored = store
        .insert_complaint(&complaint, Duration::days(7), t + Duration::hours(1))
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.cdr_ids.is_empty());

    // An anomaly with the step it imposed, a step by hand, its lift, an order, a cursor.
    let anomaly = AnomalyRow {
        id: "17".into(),
        detected_at: t,
        rule: "error_rate".into(),
        subject: subject("+861012345678"),
        window_secs: 3600,
        observed: 0.25,
        threshold: 0.1,
        sample: 40,
        step: "throttle".into(),
        detail: "too many errors".into(),
        call_ids: vec!["call-0".into(), "still-live".into()],
    };
    store
        .record_anomaly(&anomaly, &[impose(1, Some("17"))])
        .await
        .unwrap();
    let mut lift = impose(2, None);
    store
        .append_enforcement(std::slice::from_ref(&lift))
        .await
        .unwrap();
    lift.action = "lift".into();
    lift.cause = "operator".into();
    lift.until = None;
    store.append_enforcement(&[lift]).await.unwrap();
    let request = store
        .insert_enforcement_request(&NewRequest {
            requested_at: t,
            action: "impose".into(),
            subject: subject("+861012345678"),
            step: Some("suspend_number".into()),
            duration_secs: Some(600),
            operator: "bob".into(),
            reason: "carrier ticket".into(),
        })
        .await
        .unwrap();
    store
        .finish_enforcement_request(request, "applied", "imposed 3", t)
        .await
        .unwrap();
    store.set_cursor("complaints", stored.id).await.unwrap();

    // Tokens (one revoked), audit rows.
    for (name, hash) in [("alice", "a1"), ("carrier", "c1")] {
        store
            .create_api_token(&NewApiToken {
                name: name.into(),
                role: if name == "alice" {
                    "compliance"
                } else {
                    "carrier"
                }
                .into(),
                trunks: if name == "alice" {
                    vec![]
                } else {
                    vec!["demo".into()]
                },
                token_sha256: hash.repeat(32),
                created_at: t,
            })
            .await
            .unwrap();
    }
    store.revoke_api_token("carrier", t).await.unwrap();
    for (i, status) in [200_u16, 403, 404].into_iter().enumerate() {
        store
            .append_audit(&NewAudit {
                at: t + Duration::seconds(i as i64),
                actor: "alice".into(),
                role: Some("compliance".into()),
                method: "GET".into(),
                path: "/api/v1/calls/call-0".into(),
                query: String::new(),
                action: "calls.get".into(),
                call_id: Some("call-0".into()),
                recording: None,
                client: "127.0.0.1:40000".into(),
                status,
            })
            .await
            .unwrap();
    }

    // SIP traces: compressed bytes, copied as they are.
    let traces: Vec<_> = ["call-0", "call-1"]
        .iter()
        .map(|id| crate::store::sip_trace::StoredSipTrace {
            cdr_id: id.to_string(),
            invite_at: t,
            messages: 0,
            trace: crate::model::SipTrace {
                call_id: id.to_string(),
                ..Default::default()
            }
            .encode()
            .unwrap(),
        })
        .collect();
    store.insert_sip_traces(&traces).await.unwrap();

    // Trunks, holds (one released), a purge: the retention log.
    store
        .seed_trunks(&[("demo".into(), "name = \"demo\"".into())], "config", t)
        .await
        .unwrap();
    store
        .put_trunk("other", "name = \"other\"", "alice", t)
        .await
        .unwrap();
    store
        .place_hold("call-1", "officer", "case 1", t)
        .await
        .unwrap();
    store
        .place_hold("call-2", "officer", "case 2", t)
        .await
        .unwrap();
    store
        .release_hold("call-2", "officer", Some("closed"), t + Duration::hours(1))
        .await
        .unwrap();
    let purge_at = t + Duration::days(400);
    let expired = store
        .expired_recordings(purge_at, &RetentionCursor::default(), 100)
        .await
        .unwrap();
    let purged: Vec<PurgedRecording> = expired
        .iter()
        .filter(|r| r.call_id == "call-3" || r.call_id == "call-4")
        .map(|r| PurgedRecording {
            call_id: r.call_id.clone(),
            files: r.path.iter().map(|p| (p.clone(), None)).collect(),
        })
        .collect();
    assert_eq!(
        store
            .mark_recordings_purged(&purged, purge_at)
            .await
            .unwrap(),
        2
    );
    let deleted = store
        .delete_expired_cdrs(&["call-4".into()], purge_at)
        .await
        .unwrap();
    assert_eq!(deleted, ["call-4"]);
    // A partial and a final seal of a day (signed manifests: their bodies are opaque here).
    for is_final in [false, true] {
        store
            .insert_manifest(&crate::store::NewManifest {
                day: "2026-11-27".into(),
                is_final,
                sealed_at: t + Duration::hours(if is_final { 24 } else { 2 }),
                manifest_sha256: format!("sha-{is_final}"),
                prev_sha256: crate::store::chain::GENESIS.into(),
                merkle_root: "root".into(),
                key_fingerprint: "key".into(),
                signature: "sig".into(),
                body: "{\"day\":\"2026-11-27\"}".into(),
                file: is_final.then(|| "manifests/2026-11-27.json".into()),
            })
            .await
            .unwrap()
            .unwrap();
    }
    store
}

/// What the store's reads give: the same on both sides of a good copy.
async fn reads(store: &Store) -> String {
    let t = t0();
    let far = t + Duration::days(1000);
    let early = t - Duration::days(1000);
    let mut out = String::new();
    for id in [
        "call-0", "call-1", "call-2", "call-3", "refused", "odd", "live",
    ] {
        out += &format!("{:?}\n", store.get_cdr(id).await.unwrap());
    }
    out += &format!("{:?}\n", store.recent_cdrs(100).await.unwrap());
    out += &format!("{:?}\n", store.journaled_calls().await.unwrap());
    out += &format!(
        "{:?}\n",
        store
            .kpi_buckets::<Calls>(early, far, None, None, None)
            .await
            .unwrap()
    );
    out += &format!("{:?}\n", store.complaints(early, far, None).await.unwrap());
    out += &format!(
        "{:?}\n",
        store.anomalies(early, far, None, None).await.unwrap()
    );
    out += &format!("{:?}\n", store.enforcement_log(early, far).await.unwrap());
    out += &format!("{:?}\n", store.enforcement_in_force().await.unwrap());
    out += &format!("{:?}\n", store.enforcement_request(1).await.unwrap());
    out += &format!("{:?}\n", store.cursor("complaints").await.unwrap());
    out += &format!("{:?}\n", store.api_tokens().await.unwrap());
    out += &format!(
        "{:?}\n",
        store
            .audit_entries(&AuditFilter {
                limit: 100,
                ..AuditFilter::default()
            })
            .await
            .unwrap()
    );
    out += &format!("{:?}\n", store.trunk_definitions().await.unwrap());
    for call in ["call-1", "call-2"] {
        out += &format!("{:?}\n", store.holds_of_call(call).await.unwrap());
    }
    out += &format!("{:?}\n", store.retention_entries(None, 100).await.unwrap());
    out += &format!("{:?}\n", store.recording_purged_at("call-3").await.unwrap());
    out += &format!(
        "{:?}\n",
        store.manifests_of_day("2026-11-27").await.unwrap()
    );
    for call in ["call-0", "call-1"] {
        out += &format!(
            "{:?}\n",
            crate::store::sip_trace::read(store, call).await.unwrap()
        );
    }
    out
}

#[tokio::test]
async fn every_table_is_copied_with_its_ids_and_verified() {
    let Some(db) = PgTestDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = filled_sqlite(&dir).await;
    let target = db.store().await;

    // The list the copy works from is both schemas': every table, every column.
    for table in TABLES {
        let mut columns: Vec<String> = testing::fetch_text(
            &target,
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
            &[table.name],
        )
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
        columns.sort();
        let mut want: Vec<String> = table.columns.iter().map(|(c, _)| c.to_string()).collect();
        want.sort();
        assert_eq!(columns, want, "{}", table.name);
    }
    let tables = testing::fetch_i64(
        &target,
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() \
         AND table_name <> '_sqlx_migrations'",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(tables, [TABLES.len() as i64]);

    let mut told = Vec::new();
    let copied = copy_sqlite_to_postgres(&source, &target, |d| told.push(d.table))
        .await
        .unwrap();
    assert_eq!(told.len(), TABLES.len());
    // The fill reaches every table, so the test covers them all.
    for d in &copied {
        assert!(d.rows > 0, "{} is empty in the source", d.table);
    }
    assert_eq!(table_digests(&source).await.unwrap(), copied);
    assert_eq!(table_digests(&target).await.unwrap(), copied);
    assert!(differences(&copied, &table_digests(&target).await.unwrap()).is_empty());

    // The store reads the same from both, NUL aside (PostgreSQL holds it as U+FFFD).
    let from_sqlite = reads(&source)
        .await
        .replace("nul\\0inside", "nul\u{FFFD}inside");
    assert_eq!(reads(&target).await, from_sqlite);

    // Identity sequences continue after the copied ids.
    let audit = target
        .audit_entries(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let next = target
        .append_audit(&NewAudit {
            status: 201,
            ..audit[0].entry.clone()
        })
        .await
        .unwrap();
    assert_eq!(next, audit.last().unwrap().id + 1);
    let hold = target
        .place_hold("call-3", "officer", "new", t0())
        .await
        .unwrap();
    let crate::store::PlaceHold::Placed(hold) = hold else {
        panic!("{hold:?}");
    };
    assert_eq!(hold.id, 3);
    source.close().await;
    target.close().await;
}

#[tokio::test]
async fn a_non_empty_target_is_refused_and_left_alone() {
    let Some(db) = PgTestDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = filled_sqlite(&dir).await;
    let target = db.store().await;
    let first = copy_sqlite_to_postgres(&source, &target, |_| {})
        .await
        .unwrap();
    let err = copy_sqlite_to_postgres(&source, &target, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, CopyError::TargetNotEmpty { table: "cdrs", .. }),
        "{err}"
    );
    assert_eq!(table_digests(&target).await.unwrap(), first);
    source.close().await;
    target.close().await;
}

#[tokio::test]
async fn a_tampered_or_partial_copy_is_detected() {
    let Some(db) = PgTestDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = filled_sqlite(&dir).await;
    let target = db.store().await;
    let copied = copy_sqlite_to_postgres(&source, &target, |_| {})
        .await
        .unwrap();

    // One value changed: the same row count, another digest.
    testing::execute(
        &target,
        "UPDATE cdrs SET talk_ms = talk_ms + 1 WHERE id = $1",
        &["call-1"],
    )
    .await
    .unwrap();
    let found = differences(&copied, &table_digests(&target).await.unwrap());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("cdrs: "), "{found:?}");

    // A row missing: a partial copy.
    testing::execute(
        &target,
        "DELETE FROM dtmf_events WHERE cdr_id = $1 AND seq = 2",
        &["call-0"],
    )
    .await
    .unwrap();
    let found = differences(&copied, &table_digests(&target).await.unwrap());
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[1].starts_with("dtmf_events: "), "{found:?}");
    assert!(
        found[1].contains(&format!(
            "against {} rows",
            copied
                .iter()
                .find(|d| d.table == "dtmf_events")
                .unwrap()
                .rows
                - 1
        )),
        "{found:?}"
    );

    // A digest over a different order of the same rows differs too.
    let mut a = Digester::new("t");
    a.row(&[Value::Text("ab".into()), Value::Text("c".into())]);
    let mut b = Digester::new("t");
    b.row(&[Value::Text("a".into()), Value::Text("bc".into())]);
    assert_ne!(a.finish(), b.finish());
    source.close().await;
    target.close().await;
}

#[tokio::test]
async fn only_sqlite_into_postgres_and_only_known_tables() {
    let dir = tempfile::tempdir().unwrap();
    let source = filled_sqlite(&dir).await;
    let other = Store::connect("sqlite::memory:").await.unwrap();
    let err = copy_sqlite_to_postgres(&source, &other, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, CopyError::Backends { .. }), "{err}");

    let Some(db) = PgTestDb::create().await else {
        return;
    };
    let target = db.store().await;
    let err = copy_sqlite_to_postgres(&target, &source, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, CopyError::Backends { .. }), "{err}");

    // A table this version does not know (a newer schema, a hand-made table) stops the copy
    // before anything is written.
    testing::execute(&source, "CREATE TABLE notes (x TEXT)", &[])
        .await
        .unwrap();
    let err = copy_sqlite_to_postgres(&source, &target, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CopyError::UnknownTable { table } if table == "notes"),
        "{err}"
    );
    testing::execute(&source, "DROP TABLE notes", &[])
        .await
        .unwrap();
    testing::execute(&source, "ALTER TABLE trunks ADD COLUMN colour TEXT", &[])
        .await
        .unwrap();
    let err = copy_sqlite_to_postgres(&source, &target, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            CopyError::Columns {
                table: "trunks",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(target.count_cdrs().await.unwrap(), 0);
    source.close().await;
    target.close().await;
}
