//! The gateway stopping: live calls ended with BYE on both legs, ringing ones with 503 and
//! CANCEL; a drain lets live calls end and refuses new ones.

use super::*;

#[tokio::test]
async fn shutdown_ends_a_live_call_with_bye_on_both_legs() {
    let mut h = start_gateway(&[]).await;
    let call = h.establish().await;
    let (registry, policy, store) = (
        h.gw.registry().clone(),
        h.gw.policy().clone(),
        h.gw.store().clone(),
    );
    // No drain: live calls are ended at once. The BYEs wait in the UAs' sockets.
    h.gw.shutdown_with_drain(Duration::ZERO).await;
    assert_eq!(registry.len(), 0);
    assert_eq!(policy.total_active(), 0);
    assert_eq!(policy.live(TRUNK).map(|l| l.active), Some(0));
    let c_bye = h.carrier.expect_request("BYE").await;
    assert_eq!(c_bye.call_id(), call.c_invite.call_id());
    let p_bye = h.pbx.expect_request("BYE").await;
    assert_eq!(p_bye.call_id(), call.invite.call_id);

    let cdrs = store.recent_cdrs(10).await.expect("CDRs");
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    assert_eq!(cdr.outcome.end_reason, EndReason::Shutdown);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Gateway));
}

#[tokio::test]
async fn shutdown_ends_a_ringing_call_with_503_and_cancel() {
    let mut h = start_gateway(&[]).await;
    let invite = h.pbx_invite().await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 180, Some("sd")).await;
    h.pbx.expect_response(180).await;
    let (registry, policy, store) = (
        h.gw.registry().clone(),
        h.gw.policy().clone(),
        h.gw.store().clone(),
    );
    let Harness {
        gw,
        mut pbx,
        mut carrier,
        ..
    } = h;
    let stop = gw.shutdown_with_drain(Duration::ZERO);
    let carrier_side = async {
        // The gateway lingers for the carrier's final response to its CANCEL.
        let cancel = carrier.expect_request("CANCEL").await;
        carrier.reply(&cancel, 200, None).await;
        carrier.reply(&c_invite, 487, Some("sd")).await;
        carrier.expect_request("ACK").await;
    };
    tokio::join!(stop, carrier_side);
    assert_eq!(registry.len(), 0);
    assert_eq!(policy.total_active(), 0);
    assert_eq!(policy.live(TRUNK).map(|l| l.active), Some(0));
    let resp = pbx.expect_response(503).await;
    assert_eq!(resp.call_id(), invite.call_id);

    let cdrs = store.recent_cdrs(10).await.expect("CDRs");
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Failed);
    assert_eq!(cdr.outcome.final_status, 503);
    assert_eq!(cdr.outcome.end_reason, EndReason::Shutdown);
}

#[tokio::test]
async fn drain_lets_live_calls_end_and_refuses_new_ones() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    let (registry, policy, store) = (
        h.gw.registry().clone(),
        h.gw.policy().clone(),
        h.gw.store().clone(),
    );
    let inside = h.inside();
    let Harness {
        gw,
        mut pbx,
        mut carrier,
        ..
    } = h;
    let stop = gw.shutdown_with_drain(Duration::from_secs(5));
    let traffic = async {
        // While draining, a new call is refused with 503 and Retry-After…
        let second = pbx.invite(inside, &InviteSpec::new(CALLER2, CALLEE2)).await;
        let refused = pbx.expect_response(503).await;
        assert!(refused.header("Retry-After").is_some());
        pbx.ack_non2xx(&second, &refused).await;
        // …and the live one ends normally by the PBX's BYE.
        pbx.bye(&mut call.pbx).await;
        let bye = carrier.expect_request("BYE").await;
        carrier.reply(&bye, 200, None).await;
        pbx.expect_response_to("BYE", 200).await;
    };
    tokio::join!(stop, traffic);
    assert_eq!(registry.len(), 0);
    assert_eq!(policy.total_active(), 0);
    assert_eq!(policy.live(TRUNK).map(|l| l.active), Some(0));

    let mut cdrs = store.recent_cdrs(10).await.expect("CDRs");
    cdrs.reverse();
    assert_eq!(cdrs.len(), 2, "{cdrs:#?}");
    let refused = cdrs
        .iter()
        .find(|c| c.outcome.refusal_reason.is_some())
        .expect("refused CDR");
    assert_eq!(
        refused.outcome.refusal_reason,
        Some(RefusalReason::ShuttingDown)
    );
    assert_eq!(refused.outcome.final_status, 503);
    let answered = cdrs
        .iter()
        .find(|c| c.outcome.refusal_reason.is_none())
        .expect("answered CDR");
    assert_eq!(answered.outcome.end_reason, EndReason::NormalClearing);
    assert_eq!(answered.outcome.hangup_side, Some(HangupSide::Inside));
}
