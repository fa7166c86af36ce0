//! Outbound calls that end before an answer: busy and no answer relayed, the ring timeout, the
//! carrier's timeout, the PBX's BYE on an early dialog.

use super::*;

/// The carrier answers the INVITE with 180 and then a failure; the PBX gets the failure and
/// ACKs it; the gateway ACKs the carrier's failure itself (same transaction, same branch).
async fn carrier_refuses(code: u16) -> Vec<trunkguard::model::Cdr> {
    let mut h = start_gateway(&[]).await;
    let invite = h.pbx_invite().await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 180, Some("busy")).await;
    h.pbx.expect_response(180).await;
    h.carrier.reply(&c_invite, code, Some("busy")).await;
    let ack = h.carrier.expect_request("ACK").await;
    assert_eq!(ack.branch(), c_invite.branch(), "non-2xx ACK is hop-by-hop");
    assert_eq!(ack.cseq(), (c_invite.cseq().0, "ACK".to_string()));
    let resp = h.pbx.expect_response(code).await;
    assert_eq!(resp.reason(), reason_for(code));
    assert_eq!(resp.call_id(), invite.call_id);
    h.pbx.ack_non2xx(&invite, &resp).await;
    h.finish().await
}

#[tokio::test]
async fn busy_is_relayed() {
    let cdrs = carrier_refuses(486).await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Busy);
    assert_eq!(cdr.outcome.final_status, 486);
    assert_eq!(cdr.outcome.end_reason, EndReason::Busy);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Outside));
    assert_eq!(cdr.outcome.q850_cause, Some(17));
    assert!(cdr.attempt.answer_at.is_none() && cdr.outcome.talk_ms == 0);
}

#[tokio::test]
async fn no_answer_is_relayed() {
    let cdrs = carrier_refuses(480).await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::NoAnswer);
    assert_eq!(cdr.outcome.final_status, 480);
    assert_eq!(cdr.outcome.end_reason, EndReason::NoAnswer);
}

#[tokio::test]
async fn ring_timeout_cancels_the_carrier_and_answers_408() {
    let mut h = start_gateway(&["sip.ring_timeout_secs = 1"]).await;
    let invite = h.pbx_invite().await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 180, Some("rt")).await;
    h.pbx.expect_response(180).await;

    let resp = h.pbx.expect_response(408).await;
    h.pbx.ack_non2xx(&invite, &resp).await;
    let cancel = h.carrier.expect_request("CANCEL").await;
    assert_eq!(cancel.branch(), c_invite.branch());
    assert_eq!(cancel.cseq(), (c_invite.cseq().0, "CANCEL".to_string()));
    h.carrier.reply(&cancel, 200, None).await;
    h.carrier.reply(&c_invite, 487, Some("rt")).await;
    let ack = h.carrier.expect_request("ACK").await;
    assert_eq!(ack.branch(), c_invite.branch());

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::NoAnswer);
    assert_eq!(cdr.outcome.final_status, 408);
    assert_eq!(cdr.outcome.end_reason, EndReason::RingTimeout);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Gateway));
}

#[tokio::test]
async fn carrier_timeout_answers_408() {
    let mut h = start_gateway(&["sip.t1_ms = 50"]).await;
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier.expect_request("INVITE").await;
    // The carrier says nothing: timer A retransmits the same INVITE, timer B (64·T1) gives up.
    let again = h
        .carrier
        .recv_matching(Duration::from_secs(1), |m| m.method() == Some("INVITE"))
        .await
        .expect("timer A retransmits the INVITE");
    assert!(again.same_as(&c_invite));
    let resp = h
        .pbx
        .expect_response_within(408, h.timeout() + Duration::from_secs(2))
        .await;
    h.pbx.ack_non2xx(&invite, &resp).await;
    // No CANCEL or anything else new toward a carrier that never answered.
    h.carrier
        .expect_nothing_new(Duration::from_millis(300))
        .await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Failed);
    assert_eq!(cdr.outcome.final_status, 408);
    assert_eq!(cdr.outcome.end_reason, EndReason::CarrierTimeout);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Gateway));
}

#[tokio::test]
async fn bye_from_pbx_on_an_early_dialog_abandons_the_call() {
    let mut h = start_gateway(&[]).await;
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 180, Some("eb")).await;
    let ringing = h.pbx.expect_response(180).await;
    // §15: the caller may send BYE on an early dialog.
    let mut early = Dialog::uac(&invite, &ringing);
    h.pbx.bye(&mut early).await;
    h.pbx.expect_response_to("BYE", 200).await;
    let terminated = h.pbx.expect_response_to("INVITE", 487).await;
    h.pbx.ack_non2xx(&invite, &terminated).await;
    let cancel = h.carrier.expect_request("CANCEL").await;
    h.carrier.reply(&cancel, 200, None).await;
    h.carrier.reply(&c_invite, 487, Some("eb")).await;
    h.carrier.expect_request("ACK").await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Cancelled);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Inside));
}
