use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::model::sample_cdr;
use crate::store::testing::{self, on_each_backend};
use crate::store::SubjectKey;

fn t0() -> DateTime<Utc> {
    sample_cdr("x").attempt.invite_at
}

pub(crate) fn audit(actor: &str, at: DateTime<Utc>) -> NewAudit {
    NewAudit {
        at,
        actor: actor.into(),
        role: Some("compliance".into()),
        method: "GET".into(),
        path: "/api/v1/calls/C1/recording".into(),
        query: String::new(),
        action: "calls.recording".into(),
        call_id: Some("C1".into()),
        recording: None,
        client: "127.0.0.1:40000".into(),
        status: 200,
    }
}

pub(crate) fn lift(imposition: i64, at: DateTime<Utc>) -> NewEnforcement {
    NewEnforcement {
        at,
        action: "lift".into(),
        imposition,
        subject: SubjectKey {
            kind: "caller_id".into(),
            trunk: "demo".into(),
            number: "+861012345678".into(),
        },
        step: "suspend_number".into(),
        until: None,
        cause: "operator".into(),
        rule: None,
        anomaly_id: None,
        operator: Some("alice".into()),
        reason: "cleared".into(),
        detail_json: "{}".into(),
    }
}

async fn all(store: &Store, log: ChainedLog) -> Vec<ChainedRow> {
    store.chained_rows(log, 0, 10_000).await.unwrap()
}

/// Each row's link follows the one before, from GENESIS, and hashes its own content.
fn assert_linear(rows: &[ChainedRow]) {
    let mut prev = GENESIS.to_string();
    for r in rows {
        let link = r.link.as_ref().expect("every row linked");
        assert_eq!(link.prev_sha256, prev, "row {}", r.id);
        assert_eq!(ChainLink::after(&prev, &r.content), *link, "row {}", r.id);
        prev = link.row_sha256.clone();
    }
}

#[tokio::test]
async fn audit_rows_form_one_chain_from_genesis_over_what_reads_back() {
    on_each_backend(|store| async move {
        // Nanoseconds in the time: hashed as stored (milliseconds), so the link still verifies.
        let t = t0() + Duration::nanoseconds(123_456_789);
        for (i, actor) in ["alice", "bob", "carol"].iter().enumerate() {
            store
                .append_audit(&audit(actor, t + Duration::seconds(i as i64)))
                .await
                .unwrap();
        }
        let rows = all(&store, ChainedLog::Audit).await;
        assert_eq!(rows.len(), 3);
        assert_linear(&rows);
        assert!(rows[0].content.contains("\"alice\""), "{}", rows[0].content);
        // A page starts after the id given.
        let rest = store
            .chained_rows(ChainedLog::Audit, rows[0].id, 1)
            .await
            .unwrap();
        assert_eq!(rest, rows[1..2].to_vec());
    })
    .await;
}

#[tokio::test]
async fn enforcement_rows_chain_across_appends_and_anomalies() {
    on_each_backend(|store| async move {
        let t = t0();
        store
            .append_enforcement(&[lift(1, t), lift(2, t + Duration::seconds(1))])
            .await
            .unwrap();
        store
            .append_enforcement(&[lift(3, t + Duration::seconds(2))])
            .await
            .unwrap();
        let rows = all(&store, ChainedLog::Enforcement).await;
        assert_eq!(rows.len(), 3);
        assert_linear(&rows);
        // The audit log is a chain of its own.
        assert!(all(&store, ChainedLog::Audit).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn rows_from_before_the_chain_stay_unlinked_and_the_chain_starts_after_them() {
    on_each_backend(|store| async move {
        let t = testing::time_param(&store, 1);
        let legacy = format!(
            "INSERT INTO audit_log (at, actor, method, path, action, client, status) \
             VALUES ({t}, 'old', 'GET', '/', 'cdrs.search', '127.0.0.1:1', 200)"
        );
        testing::execute(&store, &legacy, &["2026-01-01T00:00:00.000Z"])
            .await
            .unwrap();
        store.append_audit(&audit("new", t0())).await.unwrap();
        let rows = all(&store, ChainedLog::Audit).await;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].link, None);
        assert_linear(&rows[1..]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_racing_for_the_head_take_turns_and_never_fork() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/chain.db?mode=rwc", dir.path().display());
    let mut stores = vec![Store::connect(&url).await.unwrap()];
    let pg = testing::PgTestDb::create().await;
    if let Some(db) = &pg {
        stores.push(db.store().await);
    }
    for store in stores {
        let writes = (0..24).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append_audit(&audit(&format!("actor{i}"), t0()))
                    .await
                    .unwrap();
                store.append_enforcement(&[lift(i, t0())]).await.unwrap();
            })
        });
        for w in writes.collect::<Vec<_>>() {
            w.await.unwrap();
        }
        for log in ChainedLog::ALL {
            let rows = all(&store, log).await;
            assert_eq!(rows.len(), 24, "{log:?}");
            assert_linear(&rows);
        }
        store.close().await;
    }
}
