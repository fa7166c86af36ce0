//! Inbound calls (from the carrier) that end before an answer: the PBX busy, the carrier's
//! CANCEL, the PBX's timeout.

use super::*;

/// An inbound call from the carrier that rings at the PBX.
async fn inbound_ringing(h: &mut Harness) -> (Sent, Msg) {
    let invite = h
        .carrier
        .invite(h.outside(), &InviteSpec::new(CALLEE, CALLER))
        .await;
    h.carrier.expect_response(100).await;
    let p_invite = h.pbx.expect_request("INVITE").await;
    h.pbx.reply(&p_invite, 180, Some("ib")).await;
    h.carrier.expect_response(180).await;
    (invite, p_invite)
}

#[tokio::test]
async fn inbound_busy_is_recorded_as_the_pbx_hanging_up() {
    let mut h = start_gateway(&[]).await;
    let (invite, p_invite) = inbound_ringing(&mut h).await;
    h.pbx.reply(&p_invite, 486, Some("ib")).await;
    h.pbx.expect_request("ACK").await;
    let busy = h.carrier.expect_response(486).await;
    h.carrier.ack_non2xx(&invite, &busy).await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Busy);
    // On an inbound call the called party is inside: the PBX refused it.
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Inside));
}

#[tokio::test]
async fn inbound_cancel_from_the_carrier() {
    let mut h = start_gateway(&[]).await;
    let (invite, p_invite) = inbound_ringing(&mut h).await;
    h.carrier.cancel(&invite).await;
    h.carrier.expect_response_to("CANCEL", 200).await;
    let terminated = h.carrier.expect_response_to("INVITE", 487).await;
    h.carrier.ack_non2xx(&invite, &terminated).await;
    let cancel = h.pbx.expect_request("CANCEL").await;
    assert_eq!(cancel.branch(), p_invite.branch());
    h.pbx.reply(&cancel, 200, None).await;
    h.pbx.reply(&p_invite, 487, Some("ib")).await;
    h.pbx.expect_request("ACK").await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Cancelled);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Outside));
}

#[tokio::test]
async fn inbound_pbx_timeout_is_not_a_carrier_timeout() {
    let mut h = start_gateway(&["sip.t1_ms = 50"]).await;
    let invite = h
        .carrier
        .invite(h.outside(), &InviteSpec::new(CALLEE, CALLER))
        .await;
    h.carrier.expect_response(100).await;
    h.pbx.expect_request("INVITE").await;
    // The PBX never answers: timer B.
    let resp = h
        .carrier
        .expect_response_within(408, h.timeout() + Duration::from_secs(2))
        .await;
    h.carrier.ack_non2xx(&invite, &resp).await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Failed);
    assert_eq!(cdr.outcome.final_status, 408);
    assert_eq!(cdr.outcome.end_reason, EndReason::PbxTimeout);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Gateway));
}
