#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `trunkguard audit verify`, the binary on a database an administrator tampered with: intact
//! logs exit 0; a deleted audit row and an edited enforcement row are each named (exit 1).

#[path = "common/log_rows.rs"]
mod log_rows;

use std::process::{Command, Output};

use log_rows::{audit, lift};
use trunkguard::store::testing;
use trunkguard::store::Store;

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

#[tokio::test]
async fn a_deleted_audit_row_and_an_edited_enforcement_row_are_named_by_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = Store::connect(&format!("sqlite://{}/tg.db?mode=rwc", dir.path().display()))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(store.append_audit(&audit(i)).await.unwrap());
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
