//! Answered calls ending otherwise than by a plain BYE: a PBX that never ACKs, the maximum
//! duration, a BYE crossing a re-INVITE, an operator's hangup, a BYE whose ACK was lost.

use super::*;

#[tokio::test]
async fn pbx_never_acks_the_200() {
    let mut h = start_gateway(&["sip.t1_ms = 50"]).await;
    let invite = h.pbx_invite().await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier
        .reply_with(&c_invite, 200, Some("na"), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response(200).await;
    // §13.3.1.4: the 2xx is retransmitted while no ACK comes…
    let again = h
        .pbx
        .recv_matching(Duration::from_secs(1), |m| m.status() == Some(200))
        .await
        .expect("200 retransmitted");
    assert!(again.same_as(&ok));
    // …and after 64·T1 the dialog is confirmed toward the carrier and ended on both legs.
    let wait = h.timeout() + Duration::from_secs(2);
    let ack = h.carrier.expect_request_within("ACK", wait).await;
    assert_eq!(ack.call_id(), c_invite.call_id());
    let c_bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&c_bye, 200, None).await;
    let p_bye = h.pbx.expect_request("BYE").await;
    assert_eq!(p_bye.call_id(), invite.call_id);
    h.pbx.reply(&p_bye, 200, None).await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    assert_eq!(cdr.outcome.end_reason, EndReason::AckTimeout);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Gateway));
}

#[tokio::test]
async fn max_call_duration_ends_both_legs() {
    let mut h = start_gateway(&["trunk.max_call_secs = 1"]).await;
    let call = h.establish().await;
    // Nothing happens before the limit…
    h.pbx.expect_nothing_new(Duration::from_millis(700)).await;
    // …then both legs get BYE.
    let c_bye = h.carrier.expect_request("BYE").await;
    assert_eq!(c_bye.call_id(), call.c_invite.call_id());
    h.carrier.reply(&c_bye, 200, None).await;
    let p_bye = h.pbx.expect_request("BYE").await;
    assert_eq!(p_bye.call_id(), call.invite.call_id);
    h.pbx.reply(&p_bye, 200, None).await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    assert_eq!(cdr.outcome.end_reason, EndReason::MaxDuration);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Gateway));
    assert!(
        (1000..2500).contains(&cdr.outcome.talk_ms),
        "talk time {} ms for a 1 s limit",
        cdr.outcome.talk_ms
    );
}

#[tokio::test]
async fn bye_crossing_a_pending_reinvite_answers_it_487() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    // The carrier re-INVITEs; the gateway passes it to the PBX, which hangs up instead of
    // answering it.
    let reinvite = h.carrier.reinvite(&mut call.carrier, "sendonly").await;
    h.carrier.expect_response_to("INVITE", 100).await;
    let got = h.pbx.expect_request("INVITE").await;
    h.pbx.bye(&mut call.pbx).await;
    h.pbx.expect_response_to("BYE", 200).await;
    // §15.1.2: a dialog's pending requests get a final response when it ends — 487 —
    // so the carrier's re-INVITE does not hang until its own timeout.
    let resp = h.carrier.expect_response_to("INVITE", 487).await;
    assert_eq!(resp.cseq().0, reinvite.cseq);
    h.carrier.ack_non2xx(&reinvite, &resp).await;
    let bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&bye, 200, None).await;
    // The PBX answers the relayed re-INVITE late: nothing more happens.
    h.pbx.reply(&got, 487, None).await;
    h.pbx.expect_request("ACK").await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.end_reason, EndReason::NormalClearing);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Inside));
}

#[tokio::test]
async fn operator_hangup_ends_both_legs() {
    let mut h = start_gateway(&[]).await;
    let call = h.establish().await;
    let live = h.gw.registry().list();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].trunk, TRUNK);
    assert_eq!(live[0].inside_call_id, call.invite.call_id);
    assert_eq!(live[0].outside_call_id, call.c_invite.call_id());
    assert!(h
        .gw
        .registry()
        .hangup(&live[0].id, EndReason::OperatorHangup));
    let c_bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&c_bye, 200, None).await;
    let p_bye = h.pbx.expect_request("BYE").await;
    h.pbx.reply(&p_bye, 200, None).await;
    assert!(
        !h.gw
            .registry()
            .hangup(&live[0].id, EndReason::OperatorHangup),
        "gone"
    );

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.attempt.id, live[0].id);
    assert_eq!(cdr.outcome.end_reason, EndReason::OperatorHangup);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Gateway));
}

#[tokio::test]
async fn bye_from_pbx_whose_ack_was_lost_confirms_the_carrier_leg_first() {
    let mut h = start_gateway(&[]).await;
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier
        .reply_with(&c_invite, 200, Some("lb"), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response(200).await;
    // The PBX's ACK is lost; it hangs up at once.
    let mut pbx = Dialog::uac(&invite, &ok);
    h.pbx.bye(&mut pbx).await;
    h.pbx.expect_response_to("BYE", 200).await;
    // The carrier's 2xx still gets its ACK (or it would retransmit it), then the BYE.
    let ack = h.carrier.expect_request("ACK").await;
    assert_eq!(ack.cseq().0, c_invite.cseq().0);
    let bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&bye, 200, None).await;
    // And the gateway stops retransmitting its 200 to the PBX.
    h.pbx.expect_nothing_new(Duration::from_secs(1)).await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Inside));
}
