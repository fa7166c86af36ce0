//! Trunks changed at run time: stored in the database and applied to admission at once, without
//! a restart; a definition that does not validate changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::*;
use trunkguard::model::RefusalReason;

const NEW_NUMBER: &str = "+861012340000";

#[tokio::test]
async fn a_number_added_at_run_time_is_admitted_on_the_next_call() {
    let mut h = start_gateway(&[]).await;
    // Not yet one of the trunk's numbers: refused.
    h.pbx
        .invite(h.inside(), &InviteSpec::new(NEW_NUMBER, CALLEE))
        .await;
    h.pbx.expect_response(100).await;
    let refused = h.pbx.expect_response(403).await;
    assert_eq!(refused.reason(), "Caller ID Not Authorized");

    // The admin adds it (the trunk's TOML table with one more number).
    let definition = h.config.trunk_sources[0].replace(
        &format!("\"{CALLER2}\""),
        &format!("\"{CALLER2}\", \"{NEW_NUMBER}\""),
    );
    assert_ne!(
        definition, h.config.trunk_sources[0],
        "the number list was found"
    );
    let trunk = h.gw.put_trunk(&definition, "alice").await.expect("stored");
    assert_eq!(trunk.numbers.len(), 3);
    let stored = h.gw.store().trunk_definitions().await.expect("read");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].definition, definition);
    assert_eq!(stored[0].updated_by, "alice");

    // The very next call with it is admitted and reaches the carrier.
    h.pbx
        .invite(h.inside(), &InviteSpec::new(NEW_NUMBER, CALLEE))
        .await;
    h.pbx.expect_response(100).await;
    let inv = h.carrier_gets_invite().await;
    h.carrier.reply(&inv, 486, None).await;
    h.pbx.expect_response(486).await;
    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 2);
    assert_eq!(
        cdrs[0].outcome.refusal_reason,
        Some(RefusalReason::CallerIdNotAuthorized)
    );
    assert_eq!(cdrs[1].outcome.refusal_reason, None);
    assert_eq!(cdrs[1].outcome.final_status, 486);
}

#[tokio::test]
async fn an_invalid_definition_changes_nothing_and_names_the_key() {
    let h = start_gateway(&[]).await;
    let bad = h.config.trunk_sources[0].replace("max_cps = 100.0", "max_cps = -1.0");
    assert_ne!(bad, h.config.trunk_sources[0], "max_cps was found");
    let err = h.gw.put_trunk(&bad, "alice").await.expect_err("refused");
    assert!(err.to_string().contains("max_cps"), "{err}");
    let stored = h.gw.store().trunk_definitions().await.expect("read");
    assert_eq!(stored[0].definition, h.config.trunk_sources[0], "unchanged");
    assert_eq!(h.gw.trunks().await[0].max_cps, 100.0);
    // Deleting an unknown trunk is a no-op; deleting ours empties the table.
    assert!(!h.gw.delete_trunk("nope", "alice").await.expect("ok"));
    assert!(h.gw.delete_trunk(TRUNK, "alice").await.expect("ok"));
    assert!(h.gw.trunks().await.is_empty());
    assert!(h
        .gw
        .store()
        .trunk_definitions()
        .await
        .expect("read")
        .is_empty());
    // (No idle check: it looks the trunk up.)
    assert!(h.shutdown().await.is_empty());
}
