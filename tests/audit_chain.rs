#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `trunkguard audit verify`, the binary on a database an administrator tampered with: intact
//! logs exit 0; a deleted audit row and an edited enforcement row are each named (exit 1).

use std::process::{Command, Output};

use chrono::Utc;
use trunkguard::store::testing;
use trunkguard::store::{NewAudit, NewEnforcement, Store, SubjectKey};

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("tg.toml");
    let text = format!(
        "[sip]\ninside = \"127.0.0.1:5060\"\noutside = \"127.0.0.1:5070\"\n\
         [database]\nurl = \"sqlite://{}/tg.db?mode=rwc\"\n\
         [[trunks]]\nname = \"demo\"\npbx = [\"127.0.0.10/32\"]\ncarrier = \"127.0.0.1:5080\"\n\
         inbound_to = \"127.0.0.10:5060\"\nnumbers = [\"+861012345678\"]\n",
        dir.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn audit_verify(config: &std::path::Path) -> (Output, Vec<serde_json::Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_trunkguard"))
        .arg("--config")
        .arg(config)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let reports = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out, reports)
}

fn row(i: i64) -> NewAudit {
    NewAudit {
        at: Utc::now(),
        actor: "officer".into(),
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

fn lift(i: i64) -> NewEnforcement {
    NewEnforcement {
        at: Utc::now(),
        action: "lift".into(),
        imposition: i,
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
        operator: Some("admin".into()),
        reason: "cleared".into(),
        detail_json: "{}".into(),
    }
}

#[tokio::test]
async fn a_deleted_audit_row_and_an_edited_enforcement_row_are_named_by_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = Store::connect(&format!("sqlite://{}/tg.db?mode=rwc", dir.path().display()))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(store.append_audit(&row(i)).await.unwrap());
    }
    let lifts = store
        .append_enforcement(&[lift(1), lift(2), lift(3)])
        .await
        .unwrap();

    let (out, reports) = audit_verify(&config);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["log"], "audit_log");
    assert_eq!(reports[0]["chained"], 4);
    assert_eq!(reports[0]["findings"], serde_json::json!([]));
    assert_eq!(reports[1]["log"], "enforcement_log");
    assert_eq!(reports[1]["chained"], 3);

    // The administrator drops the triggers, deletes a download from the audit log and rewrites
    // the reason of a lift.
    for sql in [
        "DROP TRIGGER audit_log_no_delete",
        "DROP TRIGGER enforcement_log_no_update",
    ] {
        testing::execute(&store, sql, &[]).await.unwrap();
    }
    testing::execute(
        &store,
        "DELETE FROM audit_log WHERE id = CAST($1 AS BIGINT)",
        &[&ids[1].to_string()],
    )
    .await
    .unwrap();
    testing::execute(
        &store,
        "UPDATE enforcement_log SET operator = 'nobody' WHERE id = CAST($1 AS BIGINT)",
        &[&lifts[2].to_string()],
    )
    .await
    .unwrap();
    store.close().await;

    let (out, reports) = audit_verify(&config);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        reports[0]["findings"],
        serde_json::json!([{"kind": "broken", "id": ids[2], "after_id": ids[0], "missing_ids": true}])
    );
    assert_eq!(
        reports[1]["findings"],
        serde_json::json!([{"kind": "edited", "id": lifts[2]}])
    );
}
