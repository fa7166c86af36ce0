//! Every way a call ends other than a plain BYE: busy, no answer, ring timeout, CANCEL (and a
//! 200 racing it), carrier timeout, a PBX that never ACKs, the maximum duration, shutdown.
//! After each: no live call, no slot held, one CDR with the right disposition and reason.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use common::*;
use trunkguard::model::{Disposition, HangupSide};
use trunkguard::model::{EndReason, RefusalReason};

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
async fn cancel_before_answer() {
    let mut h = start_gateway(&[]).await;
    let invite = h.pbx_invite().await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 180, Some("cb")).await;
    let ringing = h.pbx.expect_response(180).await;

    h.pbx.cancel(&invite).await;
    let ok = h.pbx.expect_response_to("CANCEL", 200).await;
    assert_eq!(ok.branch(), invite.branch);
    // §9.2: the To tag of the CANCEL's response should be the one of the INVITE's responses.
    assert_eq!(ok.to_tag(), ringing.to_tag());
    let terminated = h.pbx.expect_response_to("INVITE", 487).await;
    assert_eq!(terminated.to_tag(), ringing.to_tag());
    h.pbx.ack_non2xx(&invite, &terminated).await;

    let cancel = h.carrier.expect_request("CANCEL").await;
    assert_eq!(cancel.branch(), c_invite.branch());
    assert_eq!(cancel.call_id(), c_invite.call_id());
    assert_eq!(cancel.uri(), c_invite.uri());
    h.carrier.reply(&cancel, 200, None).await;
    h.carrier.reply(&c_invite, 487, Some("cb")).await;
    let ack = h.carrier.expect_request("ACK").await;
    assert_eq!(ack.branch(), c_invite.branch());
    assert_eq!(ack.to_tag().as_deref(), Some("cb"));

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Cancelled);
    assert_eq!(cdr.outcome.final_status, 487);
    assert_eq!(cdr.outcome.end_reason, EndReason::Cancelled);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Inside));
}

#[tokio::test]
async fn cancel_waits_for_a_provisional_response() {
    // §9.1: a CANCEL must not be sent before a provisional response has arrived.
    let mut h = start_gateway(&[]).await;
    let invite = h.pbx_invite().await;
    let c_invite = h.carrier.expect_request("INVITE").await;
    h.pbx.cancel(&invite).await;
    h.pbx.expect_response_to("CANCEL", 200).await;
    let terminated = h.pbx.expect_response_to("INVITE", 487).await;
    h.pbx.ack_non2xx(&invite, &terminated).await;
    // Only retransmissions of the INVITE (timer A) may reach the carrier meanwhile.
    h.carrier
        .expect_nothing_new(Duration::from_millis(300))
        .await;

    h.carrier.reply(&c_invite, 100, None).await;
    let cancel = h.carrier.expect_request("CANCEL").await;
    assert_eq!(cancel.branch(), c_invite.branch());
    h.carrier.reply(&cancel, 200, None).await;
    h.carrier.reply(&c_invite, 487, Some("cw")).await;
    h.carrier.expect_request("ACK").await;

    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Cancelled);
}

#[tokio::test]
async fn cancel_racing_a_200_ends_the_carrier_leg_with_ack_and_bye() {
    let mut h = start_gateway(&[]).await;
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 180, Some("race")).await;
    h.pbx.expect_response(180).await;

    h.pbx.cancel(&invite).await;
    h.pbx.expect_response_to("CANCEL", 200).await;
    let terminated = h.pbx.expect_response_to("INVITE", 487).await;
    h.pbx.ack_non2xx(&invite, &terminated).await;

    // The carrier answered before it saw the CANCEL: 200 for the INVITE, then 200 for the
    // CANCEL (which has no effect on an answered INVITE).
    let cancel = h.carrier.expect_request("CANCEL").await;
    h.carrier
        .reply_with(&c_invite, 200, Some("race"), &[], Some(&sdp("sendrecv")))
        .await;
    h.carrier.reply(&cancel, 200, None).await;
    let ack = h.carrier.expect_request("ACK").await;
    assert_eq!(ack.call_id(), c_invite.call_id());
    assert_ne!(
        ack.branch(),
        c_invite.branch(),
        "ACK for a 2xx is its own transaction"
    );
    let bye = h.carrier.expect_request("BYE").await;
    assert_eq!(bye.to_tag().as_deref(), Some("race"));
    h.carrier.reply(&bye, 200, None).await;
    // The PBX, which cancelled, hears nothing more.
    h.pbx.expect_nothing_new(Duration::from_millis(300)).await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Cancelled);
    assert_eq!(cdr.outcome.final_status, 487);
    assert!(
        cdr.attempt.answer_at.is_none(),
        "the PBX never had an answered call"
    );
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

#[tokio::test]
async fn bye_crossing_a_pending_reinvite_answers_it_487() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    // The carrier re-INVITEs; the gateway passes it to the PBX, which hangs up instead of
    // answering it.
    let reinvite = h
        .carrier
        .in_dialog(
            &mut call.carrier,
            "INVITE",
            Some(("application/sdp", &sdp("sendonly"))),
        )
        .await;
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

#[tokio::test]
async fn cancel_matching_no_transaction_is_answered_481_and_the_call_goes_on() {
    let mut h = start_gateway(&[]).await;
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 180, Some("wb")).await;
    h.pbx.expect_response(180).await;
    // Same Call-ID, but a branch no INVITE had: §9.2, 481.
    let mut other = invite.clone();
    other.via = other
        .via
        .replace(&invite.branch, &format!("z9hG4bK{}", token("other")));
    h.pbx.cancel(&other).await;
    h.pbx.expect_response_to("CANCEL", 481).await;
    h.carrier
        .expect_nothing_new(Duration::from_millis(300))
        .await;
    assert_eq!(h.gw.registry().len(), 1);

    // The real CANCEL still works.
    h.pbx.cancel(&invite).await;
    h.pbx.expect_response_to("CANCEL", 200).await;
    let terminated = h.pbx.expect_response_to("INVITE", 487).await;
    h.pbx.ack_non2xx(&invite, &terminated).await;
    let cancel = h.carrier.expect_request("CANCEL").await;
    h.carrier.reply(&cancel, 200, None).await;
    h.carrier.reply(&c_invite, 487, Some("wb")).await;
    h.carrier.expect_request("ACK").await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Cancelled);
}

#[tokio::test]
async fn transaction_tables_drain_even_when_a_carrier_never_finishes_a_cancelled_invite() {
    let mut h = start_gateway(&["sip.t1_ms = 50"]).await;
    // A complete call…
    let mut call = h.establish().await;
    h.hang_up_from_pbx(&mut call.pbx).await;
    // …and a cancelled one whose carrier answers the CANCEL but never the INVITE.
    let invite = h.pbx_invite().await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 180, Some("nf")).await;
    h.pbx.expect_response_to("INVITE", 180).await;
    h.pbx.cancel(&invite).await;
    let terminated = h.pbx.expect_response_to("INVITE", 487).await;
    h.pbx.ack_non2xx(&invite, &terminated).await;
    let cancel = h.carrier.expect_request("CANCEL").await;
    h.carrier.reply(&cancel, 200, None).await;

    // Every timer is at most 64·T1 (3.2 s) or T4 (5 s) here; no entry may outlive them.
    let deadline = tokio::time::Instant::now() + h.timeout() + Duration::from_secs(7);
    loop {
        let sizes = h.gw.transactions();
        if sizes == (0, 0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "transactions left (server, client): {sizes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 2);
}
