//! Retransmissions over UDP (RFC 3261 §17, §13.3.1.4): requests repeated by a peer are absorbed
//! and answered again without reaching the other leg twice; responses and ACKs lost on the way
//! are retransmitted by the gateway.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use common::*;
use trunkguard::model::Disposition;
use trunkguard::model::EndReason;

/// Let any message that might still come arrive (a gateway reacts in well under this).
const QUIET: Duration = Duration::from_millis(400);

#[tokio::test]
async fn repeated_invite_reaches_the_carrier_once() {
    let mut h = start_gateway(&[]).await;
    let invite = h.pbx_invite().await;
    let trying = h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;

    // The PBX repeats its INVITE: each copy is answered with the last provisional (100)…
    h.pbx.resend(&invite).await;
    let again = h
        .pbx
        .recv_matching(WAIT, |m| m.status() == Some(100))
        .await
        .expect("100 Trying again");
    assert!(again.same_as(&trying));
    // …and once the carrier rings, with the 180.
    h.carrier.reply(&c_invite, 180, Some("rx")).await;
    let ringing = h.pbx.expect_response(180).await;
    h.pbx.resend(&invite).await;
    let again = h
        .pbx
        .recv_matching(WAIT, |m| m.status() == Some(180))
        .await
        .expect("180 again");
    assert!(again.same_as(&ringing));

    h.carrier
        .reply_with(&c_invite, 200, Some("rx"), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response(200).await;
    let mut pbx = Dialog::uac(&invite, &ok);
    h.pbx.ack(&pbx, 1).await;
    h.carrier.expect_request("ACK").await;
    // A late copy of the INVITE after the answer creates nothing either.
    h.pbx.resend(&invite).await;
    // Exactly one INVITE reached the carrier: it answered 100 at once, so there was not even a
    // timer A retransmission.
    h.carrier.expect_silence(QUIET).await;
    assert_eq!(h.gw.registry().len(), 1);

    h.hang_up_from_pbx(&mut pbx).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}

#[tokio::test]
async fn carrier_retransmitting_its_200_is_acked_again() {
    let mut h = start_gateway(&[]).await;
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    let ok_text = h
        .carrier
        .reply_with(&c_invite, 200, Some("re"), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response(200).await;
    let mut pbx = Dialog::uac(&invite, &ok);
    h.pbx.ack(&pbx, 1).await;
    let ack = h.carrier.expect_request("ACK").await;

    // Our ACK was "lost": the carrier sends its 200 again and gets the same ACK again.
    h.carrier.send_raw(c_invite.src, &ok_text).await;
    let again = h
        .carrier
        .recv_matching(WAIT, |m| m.method() == Some("ACK"))
        .await
        .expect("ACK again");
    assert!(again.same_as(&ack));
    // The PBX's dialog is not disturbed by it.
    h.pbx.expect_silence(QUIET).await;

    h.hang_up_from_pbx(&mut pbx).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}

#[tokio::test]
async fn lost_ack_from_pbx_makes_the_gateway_retransmit_its_200() {
    let mut h = start_gateway(&["sip.t1_ms = 100"]).await;
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier
        .reply_with(&c_invite, 200, Some("la"), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response(200).await;
    // No ACK yet: the 200 comes again (T1, 2·T1, …) and the carrier is not ACKed before the
    // PBX's ACK (ACK for 2xx is end to end).
    for _ in 0..2 {
        let again = h
            .pbx
            .recv_matching(WAIT, |m| m.status() == Some(200))
            .await
            .expect("200 retransmitted");
        assert!(again.same_as(&ok));
    }
    h.carrier
        .expect_nothing_new(Duration::from_millis(50))
        .await;

    let mut pbx = Dialog::uac(&invite, &ok);
    h.pbx.ack(&pbx, 1).await;
    h.carrier.expect_request("ACK").await;
    // The ACK stops the retransmissions; a repeated ACK is not passed on twice.
    h.pbx.ack(&pbx, 1).await;
    h.pbx.expect_silence(QUIET).await;
    h.carrier.expect_silence(QUIET).await;

    h.hang_up_from_pbx(&mut pbx).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}

#[tokio::test]
async fn failure_response_is_retransmitted_until_acked() {
    let mut h = start_gateway(&["sip.t1_ms = 100"]).await;
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    let busy_text = h.carrier.reply(&c_invite, 486, Some("fr")).await;
    let ack = h.carrier.expect_request("ACK").await;
    // Our ACK was "lost": the carrier repeats its 486 and is ACKed again (timer D state).
    h.carrier.send_raw(c_invite.src, &busy_text).await;
    let again = h
        .carrier
        .recv_matching(WAIT, |m| m.method() == Some("ACK"))
        .await
        .expect("ACK again");
    assert!(again.same_as(&ack));

    // Timer G: the 486 to the PBX is repeated until the PBX ACKs it.
    let busy = h.pbx.expect_response(486).await;
    let again = h
        .pbx
        .recv_matching(WAIT, |m| m.status() == Some(486))
        .await
        .expect("486 retransmitted");
    assert!(again.same_as(&busy));
    h.pbx.ack_non2xx(&invite, &busy).await;
    h.pbx.expect_silence(QUIET).await;
    // The PBX's ACK of a failure is hop-by-hop: nothing reaches the carrier for it.
    h.carrier.expect_silence(QUIET).await;

    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Busy);
}

#[tokio::test]
async fn repeated_bye_is_answered_again_and_relayed_once() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    let bye = h.pbx.bye(&mut call.pbx).await;
    let ok = h.pbx.expect_response_to("BYE", 200).await;
    let c_bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&c_bye, 200, None).await;

    h.pbx.resend(&bye).await;
    let again = h
        .pbx
        .recv_matching(WAIT, |m| m.status() == Some(200))
        .await
        .expect("200 for the repeated BYE");
    assert!(again.same_as(&ok));
    h.carrier.expect_silence(QUIET).await;

    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.end_reason, EndReason::NormalClearing);
}

#[tokio::test]
async fn repeated_reinvite_reaches_the_carrier_once() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    let reinvite = h.pbx.reinvite(&mut call.pbx, "sendonly").await;
    let got = h.carrier.expect_request("INVITE").await;
    h.carrier.reply(&got, 100, None).await;
    h.pbx.resend(&reinvite).await;
    h.carrier.expect_silence(QUIET).await;
    h.carrier
        .reply_with(&got, 200, None, &[], Some(&sdp("recvonly")))
        .await;
    h.pbx.expect_response_to("INVITE", 200).await;
    h.pbx.ack(&call.pbx, reinvite.cseq).await;
    h.carrier.expect_request("ACK").await;

    h.hang_up_from_pbx(&mut call.pbx).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}

#[tokio::test]
async fn bye_to_a_silent_carrier_is_retransmitted_and_the_call_still_ends() {
    let mut h = start_gateway(&["sip.t1_ms = 50"]).await;
    let mut call = h.establish().await;
    h.pbx.bye(&mut call.pbx).await;
    h.pbx.expect_response_to("BYE", 200).await;
    let bye = h.carrier.expect_request("BYE").await;
    // Timer E: the BYE comes again while the carrier says nothing.
    let again = h
        .carrier
        .recv_matching(WAIT, |m| m.method() == Some("BYE"))
        .await
        .expect("BYE retransmitted");
    assert!(again.same_as(&bye));
    // The call ended when the PBX hung up, whatever the carrier does.
    h.assert_idle().await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.end_reason, EndReason::NormalClearing);
}

#[tokio::test]
async fn carrier_retransmitting_its_200_to_a_reinvite_is_acked_again() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    let reinvite = h.pbx.reinvite(&mut call.pbx, "sendonly").await;
    let got = h.carrier.expect_request("INVITE").await;
    let ok_text = h
        .carrier
        .reply_with(&got, 200, None, &[], Some(&sdp("recvonly")))
        .await;
    h.pbx.expect_response_to("INVITE", 100).await;
    h.pbx.expect_response_to("INVITE", 200).await;
    h.pbx.ack(&call.pbx, reinvite.cseq).await;
    let ack = h.carrier.expect_request("ACK").await;
    assert_eq!(ack.cseq(), (got.cseq().0, "ACK".to_string()));

    // The ACK was "lost": the carrier repeats its 200 (§13.3.1.4) and must get the ACK again,
    // or it ends the call after 64·T1.
    h.carrier.send_raw(got.src, &ok_text).await;
    let again = h
        .carrier
        .recv_matching(WAIT, |m| m.method() == Some("ACK"))
        .await
        .expect("ACK for the re-INVITE's 200 again");
    assert_eq!(again.cseq(), ack.cseq());
    assert_eq!(again.call_id(), ack.call_id());
    h.pbx.expect_silence(QUIET).await;

    h.hang_up_from_pbx(&mut call.pbx).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}

#[tokio::test]
async fn pbx_retransmitting_its_200_to_a_carrier_reinvite_is_acked_again() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    let reinvite = h.carrier.reinvite(&mut call.carrier, "sendonly").await;
    let got = h.pbx.expect_request("INVITE").await;
    let ok_text = h
        .pbx
        .reply_with(&got, 200, None, &[], Some(&sdp("recvonly")))
        .await;
    h.carrier.expect_response_to("INVITE", 100).await;
    h.carrier.expect_response_to("INVITE", 200).await;
    h.carrier.ack(&call.carrier, reinvite.cseq).await;
    let ack = h.pbx.expect_request("ACK").await;

    h.pbx.send_raw(got.src, &ok_text).await;
    let again = h
        .pbx
        .recv_matching(WAIT, |m| m.method() == Some("ACK"))
        .await
        .expect("ACK for the re-INVITE's 200 again");
    assert_eq!(again.cseq(), ack.cseq());
    h.carrier.expect_silence(QUIET).await;

    h.hang_up_from_pbx(&mut call.pbx).await;
    h.finish().await;
}
