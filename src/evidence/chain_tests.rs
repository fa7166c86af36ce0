//! Tampering as a database administrator would (triggers dropped, rows edited, deleted or put
//! in by hand), on both backends: the walk names each change.

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::model::sample_cdr;
use crate::store::testing::{self, on_each_backend};
use crate::store::{Backend, NewAudit};

fn t0() -> DateTime<Utc> {
    sample_cdr("x").attempt.invite_at
}

fn audit(actor: &str, i: i64) -> NewAudit {
    NewAudit {
        at: t0() + Duration::seconds(i),
        actor: actor.into(),
        role: Some("compliance".into()),
        method: "GET".into(),
        path: format!("/api/v1/calls/C{i}/recording"),
        query: String::new(),
        action: "calls.recording".into(),
        call_id: Some(format!("C{i}")),
        recording: None,
        client: "127.0.0.1:40000".into(),
        status: 200,
    }
}

/// Five audit rows (ids 1–5); returns their ids.
async fn five(store: &Store) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(store.append_audit(&audit("alice", i)).await.unwrap());
    }
    ids
}

/// What an administrator does first: the append-only triggers go.
async fn drop_triggers(store: &Store, table: &str) {
    for what in ["no_update", "no_delete"] {
        let sql = match testing::backend(store) {
            Backend::Sqlite => format!("DROP TRIGGER {table}_{what}"),
            Backend::Postgres => format!("DROP TRIGGER {table}_{what} ON {table}"),
        };
        testing::execute(store, &sql, &[]).await.unwrap();
    }
}

async fn audit_report(store: &Store, head: Option<&str>) -> ChainReport {
    verify_chain(store, ChainedLog::Audit, head).await.unwrap()
}

#[tokio::test]
async fn an_intact_log_verifies_and_names_its_head() {
    on_each_backend(|store| async move {
        let ids = five(&store).await;
        let r = audit_report(&store, None).await;
        assert!(r.ok(), "{r:?}");
        assert_eq!((r.rows, r.chained, r.before_chain), (5, 5, 0));
        assert_eq!(r.head_id, Some(ids[4]));
        // The head sealed now still verifies after more rows.
        let sealed = r.head_sha256.clone();
        store.append_audit(&audit("bob", 9)).await.unwrap();
        let later = audit_report(&store, Some(&sealed)).await;
        assert!(later.ok(), "{later:?}");
        assert_ne!(later.head_sha256, sealed);
        // An empty log is a chain of nothing.
        let e = verify_chain(&store, ChainedLog::Enforcement, None)
            .await
            .unwrap();
        assert!(e.ok() && e.rows == 0 && e.head_sha256 == GENESIS, "{e:?}");
    })
    .await;
}

#[tokio::test]
async fn an_edited_row_is_named() {
    on_each_backend(|store| async move {
        let ids = five(&store).await;
        drop_triggers(&store, "audit_log").await;
        let id = ids[2].to_string();
        testing::execute(
            &store,
            "UPDATE audit_log SET actor = 'mallory' WHERE id = CAST($1 AS BIGINT)",
            &[&id],
        )
        .await
        .unwrap();
        let r = audit_report(&store, None).await;
        assert_eq!(r.findings, vec![ChainFinding::Edited { id: ids[2] }]);
    })
    .await;
}

#[tokio::test]
async fn a_deleted_row_is_named_by_the_gap_it_leaves() {
    on_each_backend(|store| async move {
        let ids = five(&store).await;
        drop_triggers(&store, "audit_log").await;
        let id = ids[2].to_string();
        testing::execute(
            &store,
            "DELETE FROM audit_log WHERE id = CAST($1 AS BIGINT)",
            &[&id],
        )
        .await
        .unwrap();
        let r = audit_report(&store, None).await;
        assert_eq!(
            r.findings,
            vec![ChainFinding::Broken {
                id: ids[3],
                after_id: Some(ids[1]),
                missing_ids: true
            }]
        );
    })
    .await;
}

#[tokio::test]
async fn rows_deleted_at_the_end_are_found_against_the_sealed_head() {
    on_each_backend(|store| async move {
        let ids = five(&store).await;
        let sealed = audit_report(&store, None).await.head_sha256;
        drop_triggers(&store, "audit_log").await;
        let id = ids[4].to_string();
        testing::execute(
            &store,
            "DELETE FROM audit_log WHERE id = CAST($1 AS BIGINT)",
            &[&id],
        )
        .await
        .unwrap();
        // Alone, the chain still looks whole …
        assert!(audit_report(&store, None).await.ok());
        // … but the head sealed earlier is gone.
        let r = audit_report(&store, Some(&sealed)).await;
        assert!(
            matches!(&r.findings[..], [ChainFinding::HeadMismatch { expected, .. }] if *expected == sealed),
            "{r:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn rows_put_in_by_hand_are_named_with_or_without_a_link() {
    on_each_backend(|store| async move {
        let ids = five(&store).await;
        let head = audit_report(&store, None).await.head_sha256;
        let t = testing::time_param(&store, 1);
        // No link at all.
        let plain = format!(
            "INSERT INTO audit_log (at, actor, method, path, action, client, status) \
             VALUES ({t}, 'ghost', 'GET', '/', 'cdrs.search', '127.0.0.1:1', 200)"
        );
        testing::execute(&store, &plain, &["2026-01-01T00:00:00.000Z"])
            .await
            .unwrap();
        let r = audit_report(&store, None).await;
        assert_eq!(r.findings, vec![ChainFinding::Unlinked { id: ids[4] + 1 }]);
        // A forged link that claims to follow the head but hashes nothing true.
        let forged = format!(
            "INSERT INTO audit_log (at, actor, method, path, action, client, status, \
             prev_sha256, row_sha256) VALUES ({t}, 'ghost', 'GET', '/', 'cdrs.search', \
             '127.0.0.1:1', 200, $2, $3)"
        );
        testing::execute(
            &store,
            &forged,
            &["2026-01-01T00:00:01.000Z", &head, &"f".repeat(64)],
        )
        .await
        .unwrap();
        let r = audit_report(&store, None).await;
        assert!(
            r.findings
                .contains(&ChainFinding::Edited { id: ids[4] + 2 }),
            "{r:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_enforcement_log_is_checked_the_same_way() {
    on_each_backend(|store| async move {
        let t = t0();
        let rows: Vec<_> = (0..4)
            .map(|i| crate::store::chain::tests::lift(i, t))
            .collect();
        let ids = store.append_enforcement(&rows).await.unwrap();
        assert!(verify_chain(&store, ChainedLog::Enforcement, None)
            .await
            .unwrap()
            .ok());
        drop_triggers(&store, "enforcement_log").await;
        let id = ids[1].to_string();
        testing::execute(
            &store,
            "UPDATE enforcement_log SET reason = 'nothing happened' WHERE id = CAST($1 AS BIGINT)",
            &[&id],
        )
        .await
        .unwrap();
        let r = verify_chain(&store, ChainedLog::Enforcement, None)
            .await
            .unwrap();
        assert_eq!(r.findings, vec![ChainFinding::Edited { id: ids[1] }]);
    })
    .await;
}
