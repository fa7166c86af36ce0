//! Enforcement steps on a running gateway, through the monitor's handle (what the HTTP API and
//! the CLI's requests use): a suspension with `hangup_on_suspend` ends the live calls it covers,
//! a throttle cuts the cap on the very next call, and lifting restores admission.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use common::*;
use trunkguard::model::normalize_number;
use trunkguard::model::HangupSide;
use trunkguard::model::Step;
use trunkguard::model::Subject;
use trunkguard::model::{EndReason, RefusalReason};

fn caller_subject() -> Subject {
    Subject::caller_id(TRUNK, &normalize_number(CALLER).expect("a number"))
}

#[tokio::test]
async fn suspending_the_number_with_hangup_on_suspend_ends_its_live_call() {
    let mut h = start_gateway(&["trunk.hangup_on_suspend = true"]).await;
    let call = h.establish().await;
    // The live list knows the call is answered (the over-long check needs it).
    let live = h.gw.registry().list();
    assert_eq!(live.len(), 1);
    assert!(live[0].answered_at.is_some(), "{live:?}");

    let actions =
        h.gw.monitor()
            .impose(
                caller_subject(),
                Step::SuspendNumber,
                None,
                "alice",
                "carrier ticket 4711",
            )
            .await
            .expect("imposed");
    assert_eq!(actions.len(), 1, "{actions:?}");
    // Both legs get a BYE from the gateway.
    let c_bye = h.carrier.expect_request("BYE").await;
    assert_eq!(c_bye.call_id(), call.c_invite.call_id());
    h.carrier.reply(&c_bye, 200, None).await;
    let p_bye = h.pbx.expect_request("BYE").await;
    h.pbx.reply(&p_bye, 200, None).await;

    // The next call presenting the number is refused.
    h.pbx_invite().await;
    let refused = h.pbx.expect_response(403).await;
    assert_eq!(refused.reason(), "Caller ID Suspended");

    // Lifted by hand: admitted again.
    let lifted =
        h.gw.monitor()
            .lift(caller_subject(), None, "alice", "resolved")
            .await
            .expect("lifted");
    assert_eq!(lifted.len(), 1, "{lifted:?}");
    let again = h.establish().await;
    let mut dlg = again.pbx;
    h.hang_up_from_pbx(&mut dlg).await;

    assert_eq!(h.gw.monitor().reconcile().await.expect("running"), 0);
    let store = h.gw.store().clone();
    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 3, "{cdrs:#?}");
    assert_eq!(cdrs[0].outcome.end_reason, EndReason::CallerIdSuspended);
    assert_eq!(cdrs[0].outcome.hangup_side, Some(HangupSide::Gateway));
    assert_eq!(
        cdrs[1].outcome.refusal_reason,
        Some(RefusalReason::CallerIdSuspended)
    );
    assert_eq!(cdrs[2].outcome.refusal_reason, None);
    // The log holds the step and its lift, by the operator, with the reasons.
    let log = store
        .enforcement_log(cdrs[0].attempt.invite_at, chrono::Utc::now())
        .await
        .expect("log");
    let rows: Vec<(&str, &str, Option<&str>, &str)> = log
        .iter()
        .map(|e| {
            (
                e.entry.action.as_str(),
                e.entry.cause.as_str(),
                e.entry.operator.as_deref(),
                e.entry.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("impose", "operator", Some("alice"), "carrier ticket 4711"),
            ("lift", "operator", Some("alice"), "resolved"),
        ]
    );
}

#[tokio::test]
async fn without_hangup_on_suspend_a_trunk_suspension_leaves_live_calls_alone() {
    let mut h = start_gateway(&[]).await;
    let call = h.establish().await;
    h.gw.monitor()
        .impose(
            Subject::trunk_of(TRUNK),
            Step::SuspendTrunk,
            Some(chrono::Duration::minutes(10)),
            "bob",
            "carrier maintenance",
        )
        .await
        .expect("imposed");
    // New calls are refused at once …
    let second = h
        .pbx
        .invite(h.inside(), &InviteSpec::new(CALLER2, CALLEE2))
        .await;
    let refused = h.pbx.expect_response(403).await;
    assert_eq!(refused.reason(), "Trunk Suspended");
    assert_eq!(refused.call_id(), second.call_id);
    // … the live call goes on until its parties end it.
    assert_eq!(h.gw.registry().list().len(), 1);
    let mut dlg = call.pbx;
    h.hang_up_from_pbx(&mut dlg).await;
    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 2);
    assert_eq!(
        cdrs[0].outcome.end_reason,
        EndReason::NormalClearing,
        "{:#?}",
        cdrs[0]
    );
    assert_eq!(
        cdrs[1].outcome.refusal_reason,
        Some(RefusalReason::TrunkSuspended)
    );
}

#[tokio::test]
async fn a_throttle_cuts_the_caller_id_cap_on_the_next_call() {
    // Cap 2 per caller ID; the throttle's default share (50 %) makes it 1.
    let mut h = start_gateway(&["trunk.max_concurrent_per_caller_id = 2"]).await;
    let first = h.establish().await;
    h.gw.monitor()
        .impose(caller_subject(), Step::Throttle, None, "carol", "pacing")
        .await
        .expect("imposed");
    h.pbx_invite().await;
    let refused = h.pbx.expect_response(503).await;
    assert_eq!(refused.reason(), "Caller ID Throttled");
    assert!(refused.header("Retry-After").is_some());
    let mut dlg = first.pbx;
    h.hang_up_from_pbx(&mut dlg).await;
    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 2);
    assert_eq!(
        cdrs[1].outcome.refusal_reason,
        Some(RefusalReason::CallerIdThrottled)
    );
    assert_eq!(cdrs[0].attempt.trunk_active, Some(1));
    assert_eq!(cdrs[0].attempt.caller_active, Some(1));
}
