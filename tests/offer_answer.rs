//! Offer and answer past the initial INVITE (issue 15, item 4): a re-INVITE without SDP (late
//! offer) crosses with the offer in its 2xx and the answer in the ACK, both anchored; answers
//! the gateway cannot anchor — a re-INVITE whose 2xx carries one fails for its sender (502) and
//! the call stays up on the media it had; a late offer whose ACK carries one ends the call
//! (`pbx_bad_sdp`). The initial 183/200 cases run with SIPp in tests/sipp_answers.rs, the
//! initial late offer with media in tests/sipp_media.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use common::*;
use trunkguard::model::{Disposition, EndReason, HangupSide};

/// An SDP with `n` audio lines: more than the parser takes at 65.
fn many_media(n: usize) -> String {
    let mut s = sdp("sendrecv");
    for i in 0..n.saturating_sub(1) {
        s.push_str(&format!("m=audio {} RTP/AVP 0\r\n", 41000 + 2 * i));
    }
    s
}

#[tokio::test]
async fn reinvite_answered_with_unusable_sdp_fails_502_and_the_call_stays_up() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    h.pbx.reinvite(&mut call.pbx, "sendonly").await;
    let got = h.carrier.expect_request("INVITE").await;
    h.carrier
        .reply_with(&got, 200, None, &[], Some(&many_media(65)))
        .await;
    // The carrier's 2xx is ACKed (no SDP), the PBX gets 502 and nothing of the answer.
    let ack = h.carrier.expect_request("ACK").await;
    assert_eq!(ack.cseq(), (got.cseq().0, "ACK".to_string()));
    assert_eq!(ack.body, "", "the ACK carries no SDP");
    let resp = h.pbx.expect_response_to("INVITE", 502).await;
    assert_eq!(resp.body, "");
    // A retransmitted 2xx gets the same ACK again.
    h.carrier
        .reply_with(&got, 200, None, &[], Some(&many_media(65)))
        .await;
    let again = h
        .carrier
        .recv_matching(WAIT, |m| m.method() == Some("ACK"))
        .await
        .expect("the retransmitted 2xx is ACKed again");
    assert_eq!(again.cseq(), ack.cseq());
    h.carrier
        .expect_nothing_new(Duration::from_millis(300))
        .await;
    assert_eq!(h.gw.registry().len(), 1, "the call is still up");

    // A 2xx whose answer has another media count than the offer is refused the same way.
    h.carrier.reinvite(&mut call.carrier, "sendonly").await;
    let to_pbx = h.pbx.expect_request("INVITE").await;
    let two = format!("{}m=video 0 RTP/AVP 96\r\n", sdp("recvonly"));
    h.pbx.reply_with(&to_pbx, 200, None, &[], Some(&two)).await;
    h.pbx.expect_request("ACK").await;
    h.carrier.expect_response_to("INVITE", 502).await;

    h.hang_up_from_pbx(&mut call.pbx).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
    assert_eq!(only(&cdrs).outcome.end_reason, EndReason::NormalClearing);
}

#[tokio::test]
async fn late_offer_with_an_unusable_answer_in_the_ack_ends_the_call() {
    let mut h = start_gateway(&[]).await;
    let invite = h
        .pbx
        .invite(h.inside(), &InviteSpec::new(CALLER, CALLEE).no_sdp())
        .await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier
        .reply_with(&c_invite, 200, Some("late"), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response(200).await;
    let pbx = Dialog::uac(&invite, &ok);
    h.pbx
        .in_dialog_with(
            &pbx,
            "ACK",
            1,
            &[],
            Some(("application/sdp", "v=0\r\nnot sdp\r\n")),
        )
        .await;
    // The carrier gets its ACK without the answer, then a BYE; the PBX a BYE saying why.
    let ack = h.carrier.expect_request("ACK").await;
    assert_eq!(ack.body, "");
    let bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&bye, 200, None).await;
    let pbx_bye = h.pbx.expect_request("BYE").await;
    assert!(
        pbx_bye
            .header("Reason")
            .is_some_and(|r| r.contains("cause=488")),
        "the PBX's BYE says why: {pbx_bye:?}"
    );
    h.pbx.reply(&pbx_bye, 200, None).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.end_reason, EndReason::PbxBadSdp);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Gateway));
}

#[tokio::test]
async fn late_offer_reinvite_crosses_anchored_both_ways() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    h.pbx.in_dialog(&mut call.pbx, "INVITE", None).await;
    let got = h.carrier.expect_request("INVITE").await;
    assert_eq!(got.body, "", "the re-INVITE crosses without SDP");
    let offer = sdp("sendrecv").replace("40000", "43000");
    h.carrier
        .reply_with(&got, 200, None, &[], Some(&offer))
        .await;
    let ok = h.pbx.expect_response_to("INVITE", 200).await;
    assert_anchored(&ok.body, &offer);
    let answer = sdp("sendrecv").replace("40000", "44000");
    h.pbx
        .in_dialog_with(
            &call.pbx,
            "ACK",
            call.pbx.cseq,
            &[],
            Some(("application/sdp", &answer)),
        )
        .await;
    let ack = h.carrier.expect_request("ACK").await;
    assert_eq!(ack.cseq(), (got.cseq().0, "ACK".to_string()));
    assert_anchored(&ack.body, &answer);

    h.hang_up_from_pbx(&mut call.pbx).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}

/// Holds are relayed as meant: an RFC 2543 hold (`c=0.0.0.0`) keeps its unspecified address,
/// and `a=inactive` crosses; the answer comes back anchored; resume works after.
#[tokio::test]
async fn inactive_and_c0_holds_are_relayed() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    let hold = sdp("inactive").replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0");
    h.pbx
        .in_dialog(&mut call.pbx, "INVITE", Some(("application/sdp", &hold)))
        .await;
    let got = h.carrier.expect_request("INVITE").await;
    assert!(got.body.contains("c=IN IP4 0.0.0.0\r\n"), "{}", got.body);
    assert!(got.body.contains("a=inactive\r\n"), "{}", got.body);
    assert!(!got.body.contains("192.0.2.10"), "{}", got.body);
    h.carrier
        .reply_with(&got, 200, None, &[], Some(&sdp("inactive")))
        .await;
    let ok = h.pbx.expect_response_to("INVITE", 200).await;
    assert_anchored(&ok.body, &sdp("inactive"));
    h.pbx.ack(&call.pbx, call.pbx.cseq).await;
    h.carrier.expect_request("ACK").await;

    relay_offer(&mut h, &mut call, "sendrecv").await;
    h.hang_up_from_pbx(&mut call.pbx).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}

/// A re-INVITE from the PBX answered 200 by the carrier, both with `direction`, and ACKed.
async fn relay_offer(h: &mut Harness, call: &mut Call, direction: &str) {
    h.pbx.reinvite(&mut call.pbx, direction).await;
    let got = h.carrier.expect_request("INVITE").await;
    assert_anchored(&got.body, &sdp(direction));
    h.carrier
        .reply_with(&got, 200, None, &[], Some(&sdp(direction)))
        .await;
    let ok = h.pbx.expect_response_to("INVITE", 200).await;
    assert_anchored(&ok.body, &sdp(direction));
    h.pbx.ack(&call.pbx, call.pbx.cseq).await;
    h.carrier.expect_request("ACK").await;
}
