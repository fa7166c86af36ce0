//! Outbound and inbound calls that get answered: setup, relays of provisional and final
//! responses, ACK, in-dialog requests (re-INVITE, INFO, UPDATE) both ways, and BYE from either
//! side. Each test ends with the counters at zero and the CDR of its call.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use common::*;
use trunkguard::model::EndReason;
use trunkguard::model::{Direction, Disposition, HangupSide};

#[tokio::test]
async fn answered_call_bye_from_pbx() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    assert_eq!(h.gw.registry().len(), 1);
    assert_eq!(h.gw.policy().total_active(), 1);

    h.pbx.bye(&mut call.pbx).await;
    h.pbx.expect_response_to("BYE", 200).await;
    let bye = h.carrier.expect_request("BYE").await;
    assert_eq!(bye.call_id(), call.c_invite.call_id());
    // The BYE belongs to the carrier's dialog: its tags, our From, its To.
    assert_eq!(
        bye.to_tag().as_deref(),
        Some(call.carrier.local_tag().as_str())
    );
    assert_eq!(bye.from_tag(), call.c_invite.from_tag());
    h.carrier.reply(&bye, 200, None).await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    assert_eq!(cdr.outcome.final_status, 200);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Inside));
    assert_eq!(cdr.outcome.end_reason, EndReason::NormalClearing);
    assert_eq!(cdr.attempt.direction, Direction::Outbound);
    assert_eq!(cdr.attempt.trunk.as_deref(), Some(TRUNK));
    assert_eq!(cdr.attempt.caller.as_deref(), Some(&CALLER[1..]));
    assert_eq!(cdr.attempt.callee.as_deref(), Some(&CALLEE[1..]));
    assert_eq!(
        cdr.attempt.inside_call_id.as_deref(),
        Some(call.invite.call_id.as_str())
    );
    assert_eq!(
        cdr.attempt.outside_call_id.as_deref(),
        Some(call.c_invite.call_id())
    );
    assert!(cdr.attempt.ringing_at.is_some() && cdr.attempt.answer_at.is_some());
    assert!(cdr.outcome.refusal_reason.is_none());
    assert_eq!(cdr.outcome.q850_cause, Some(16));
}

#[tokio::test]
async fn answered_call_bye_from_carrier() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;

    h.carrier.bye(&mut call.carrier).await;
    h.carrier.expect_response_to("BYE", 200).await;
    let bye = h.pbx.expect_request("BYE").await;
    assert_eq!(bye.call_id(), call.invite.call_id);
    // Toward the PBX we are the UAS of its dialog: From carries our tag, To the PBX's.
    assert_eq!(bye.from_tag(), call.pbx.remote_tag());
    assert_eq!(
        bye.to_tag().as_deref(),
        Some(call.invite.from_tag().as_str())
    );
    h.pbx.reply(&bye, 200, None).await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Outside));
    assert_eq!(cdr.outcome.end_reason, EndReason::NormalClearing);
}

#[tokio::test]
async fn ringing_and_early_media_are_relayed() {
    let mut h = start_gateway(&[]).await;
    let invite = h.pbx_invite().await;
    let c_invite = h.carrier_gets_invite().await;
    let tag = token("ct");

    h.carrier.reply(&c_invite, 180, Some(&tag)).await;
    let ringing = h.pbx.expect_response(180).await;
    // The PBX's dialog: its Call-ID and From tag, a To tag of ours, our Contact.
    assert_eq!(ringing.call_id(), invite.call_id);
    assert!(ringing.to_tag().is_some());
    assert_eq!(
        ringing.contact_uri().as_deref(),
        Some(format!("sip:{}", h.inside()).as_str())
    );

    let early = sdp("sendrecv").replace("40000", "41000");
    h.carrier
        .reply_with(&c_invite, 183, Some(&tag), &[], Some(&early))
        .await;
    let progress = h.pbx.expect_response(183).await;
    // Early media SDP reaches the PBX anchored on the gateway.
    assert_anchored(&progress.body, &early);
    assert_eq!(progress.header("Content-Type"), Some("application/sdp"));
    assert_eq!(
        progress.to_tag(),
        ringing.to_tag(),
        "one early dialog toward the PBX"
    );

    h.carrier
        .reply_with(&c_invite, 200, Some(&tag), &[], Some(&early))
        .await;
    let ok = h.pbx.expect_response(200).await;
    assert_eq!(ok.to_tag(), ringing.to_tag());
    assert_anchored(&ok.body, &early);
    let mut pbx = Dialog::uac(&invite, &ok);
    h.pbx.ack(&pbx, 1).await;
    let ack = h.carrier.expect_request("ACK").await;
    // ACK for the 2xx: the carrier's dialog, CSeq of its INVITE, a new transaction.
    assert_eq!(ack.call_id(), c_invite.call_id());
    assert_eq!(ack.cseq(), (c_invite.cseq().0, "ACK".to_string()));
    assert_eq!(ack.to_tag().as_deref(), Some(tag.as_str()));
    assert_ne!(ack.branch(), c_invite.branch());

    h.hang_up_from_pbx(&mut pbx).await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    let (invite_at, ringing_at, answer_at) = (
        cdr.attempt.invite_at,
        cdr.attempt.ringing_at.expect("ringing time"),
        cdr.attempt.answer_at.expect("answer time"),
    );
    assert!(invite_at <= ringing_at && ringing_at <= answer_at && answer_at <= cdr.outcome.end_at);
}

#[tokio::test]
async fn ack_body_is_relayed_for_a_late_offer() {
    let mut h = start_gateway(&[]).await;
    // An INVITE without SDP: the 200 carries the offer, the ACK the answer.
    let invite = h
        .pbx
        .invite(h.inside(), &InviteSpec::new(CALLER, CALLEE).no_sdp())
        .await;
    let c_invite = h.carrier_gets_invite().await;
    assert!(c_invite.body.is_empty());
    h.carrier
        .reply_with(&c_invite, 200, Some("late"), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response(200).await;
    // The offer in the 200 reaches the PBX anchored on the gateway (media through us).
    assert_anchored(&ok.body, &sdp("sendrecv"));
    let mut pbx = Dialog::uac(&invite, &ok);
    let answer = sdp("sendrecv").replace("40000", "42000");
    h.pbx
        .in_dialog_with(&pbx, "ACK", 1, &[], Some(("application/sdp", &answer)))
        .await;
    let ack = h.carrier.expect_request("ACK").await;
    assert_anchored(&ack.body, &answer);
    assert_eq!(ack.header("Content-Type"), Some("application/sdp"));

    h.pbx.bye(&mut pbx).await;
    let bye = h.carrier.expect_request("BYE").await;
    h.carrier.reply(&bye, 200, None).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}

/// Relay one in-dialog request from one UA to the other and its 200 back; returns the request
/// as the far UA received it.
async fn relay_in_dialog(
    from: &mut Ua,
    from_dlg: &mut Dialog,
    to: &mut Ua,
    method: &str,
    body: Option<&str>,
    answer: Option<&str>,
) -> Msg {
    let sent = from
        .in_dialog(from_dlg, method, body.map(|b| ("application/sdp", b)))
        .await;
    let got = to.expect_request(method).await;
    match body {
        Some(b) => assert_anchored(&got.body, b),
        None => assert_eq!(got.body, "", "{method} without body"),
    }
    to.reply_with(&got, 200, None, &[], answer).await;
    let resp = from.expect_response_to(method, 200).await;
    assert_eq!(resp.cseq(), (sent.cseq, method.to_string()));
    assert_eq!(resp.call_id(), sent.call_id);
    match answer {
        Some(a) => assert_anchored(&resp.body, a),
        None => assert_eq!(resp.body, "", "{method} answer without body"),
    }
    got
}

/// A re-offer the gateway cannot carry (SRTP in a suite it does not serve) is answered 488 by
/// the gateway: never relayed, the call goes on with the session it had.
#[tokio::test]
async fn srtp_reoffer_is_answered_488_and_not_relayed() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    let srtp = sdp("sendrecv").replace("RTP/AVP", "RTP/SAVP")
        + "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVzWVNfX19zZW1jdGwgKCkgewkyMjA7\r\n";
    h.pbx
        .in_dialog(&mut call.pbx, "INVITE", Some(("application/sdp", &srtp)))
        .await;
    let refused = h.pbx.expect_response(488).await;
    assert_eq!(refused.cseq().1, "INVITE");
    h.carrier
        .expect_nothing_new(std::time::Duration::from_millis(300))
        .await;
    h.pbx.ack(&call.pbx, call.pbx.cseq).await;

    // The call is still up: a plain re-offer goes through.
    relay_in_dialog(
        &mut h.pbx,
        &mut call.pbx,
        &mut h.carrier,
        "INVITE",
        Some(&sdp("sendonly")),
        Some(&sdp("recvonly")),
    )
    .await;
    h.pbx.ack(&call.pbx, call.pbx.cseq).await;
    h.carrier.expect_request("ACK").await;
    h.hang_up_from_pbx(&mut call.pbx).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}

/// An SRTP re-offer the gateway serves (the PBX turns SRTP on mid-call): the carrier (optional,
/// the default) is offered SRTP with the gateway's own keys, never the PBX's; it answers plain
/// (which `optional` carries), and the PBX gets an SRTP answer with the gateway's key.
#[tokio::test]
async fn srtp_reoffer_is_terminated_and_its_key_never_crosses() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
    let srtp = sdp("sendrecv").replace("RTP/AVP", "RTP/SAVP")
        + &format!("a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n");
    h.pbx
        .in_dialog(&mut call.pbx, "INVITE", Some(("application/sdp", &srtp)))
        .await;
    let got = h.carrier.expect_request("INVITE").await;
    assert!(got.body.contains("RTP/SAVP"), "{}", got.body);
    assert!(
        got.body
            .contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")
            && !got.body.contains(key),
        "{}",
        got.body
    );
    h.carrier
        .reply_with(&got, 200, None, &[], Some(&sdp("sendrecv")))
        .await;
    let resp = h.pbx.expect_response_to("INVITE", 200).await;
    assert!(resp.body.contains("RTP/SAVP"), "{}", resp.body);
    assert!(
        resp.body
            .contains("a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{}",
        resp.body
    );
    assert!(!resp.body.contains(key), "{}", resp.body);
    h.pbx.ack(&call.pbx, call.pbx.cseq).await;
    h.carrier.expect_request("ACK").await;
    h.hang_up_from_pbx(&mut call.pbx).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}

#[tokio::test]
async fn reinvite_hold_from_pbx_is_relayed_and_acked() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;

    let hold = sdp("sendonly");
    let held = sdp("recvonly");
    let got = relay_in_dialog(
        &mut h.pbx,
        &mut call.pbx,
        &mut h.carrier,
        "INVITE",
        Some(&hold),
        Some(&held),
    )
    .await;
    assert!(got.body.contains("a=sendonly"));
    assert_eq!(got.call_id(), call.c_invite.call_id());
    assert_eq!(
        got.to_tag().as_deref(),
        Some(call.carrier.local_tag().as_str())
    );
    // The carrier leg's own CSeq space: after the initial INVITE (1), the next is 2.
    assert_eq!(got.cseq(), (2, "INVITE".to_string()));
    h.pbx.ack(&call.pbx, call.pbx.cseq).await;
    let ack = h.carrier.expect_request("ACK").await;
    assert_eq!(ack.cseq(), (2, "ACK".to_string()), "ACK for the re-INVITE");

    // Resume: a second re-INVITE in the same dialog works too.
    relay_in_dialog(
        &mut h.pbx,
        &mut call.pbx,
        &mut h.carrier,
        "INVITE",
        Some(&sdp("sendrecv")),
        Some(&sdp("sendrecv")),
    )
    .await;
    h.pbx.ack(&call.pbx, call.pbx.cseq).await;
    assert_eq!(h.carrier.expect_request("ACK").await.cseq().0, 3);

    let bye = h.hang_up_from_pbx(&mut call.pbx).await;
    assert_eq!(bye.cseq(), (4, "BYE".to_string()));
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}

#[tokio::test]
async fn reinvite_from_carrier_is_relayed_and_acked() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;

    let got = relay_in_dialog(
        &mut h.carrier,
        &mut call.carrier,
        &mut h.pbx,
        "INVITE",
        Some(&sdp("sendonly")),
        Some(&sdp("recvonly")),
    )
    .await;
    assert_eq!(got.call_id(), call.invite.call_id);
    assert_eq!(
        got.to_tag().as_deref(),
        Some(call.invite.from_tag().as_str())
    );
    assert_eq!(
        got.uri(),
        format!("sip:{}", h.pbx.addr()),
        "sent to the PBX's Contact"
    );
    h.carrier.ack(&call.carrier, call.carrier.cseq).await;
    let ack = h.pbx.expect_request("ACK").await;
    assert_eq!(
        ack.cseq().0,
        got.cseq().0,
        "the PBX's ACK matches its re-INVITE"
    );

    h.carrier.bye(&mut call.carrier).await;
    let bye = h.pbx.expect_request("BYE").await;
    assert!(
        bye.cseq().0 > got.cseq().0,
        "CSeq grows within the PBX dialog"
    );
    h.pbx.reply(&bye, 200, None).await;
    h.carrier.expect_response_to("BYE", 200).await;
    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Outside));
}

#[tokio::test]
async fn info_and_update_are_relayed_both_ways() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;

    let info = h
        .pbx
        .in_dialog(
            &mut call.pbx,
            "INFO",
            Some(("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n")),
        )
        .await;
    let got = h.carrier.expect_request("INFO").await;
    assert_eq!(got.body, "Signal=5\r\nDuration=160\r\n");
    assert_eq!(got.header("Content-Type"), Some("application/dtmf-relay"));
    assert_eq!(got.call_id(), call.c_invite.call_id());
    h.carrier.reply(&got, 200, None).await;
    let resp = h.pbx.expect_response_to("INFO", 200).await;
    assert_eq!(resp.cseq().0, info.cseq);

    relay_in_dialog(
        &mut h.carrier,
        &mut call.carrier,
        &mut h.pbx,
        "INFO",
        None,
        None,
    )
    .await;
    let upd = relay_in_dialog(
        &mut h.pbx,
        &mut call.pbx,
        &mut h.carrier,
        "UPDATE",
        Some(&sdp("sendonly")),
        Some(&sdp("recvonly")),
    )
    .await;
    assert_eq!(upd.call_id(), call.c_invite.call_id());
    let upd = relay_in_dialog(
        &mut h.carrier,
        &mut call.carrier,
        &mut h.pbx,
        "UPDATE",
        Some(&sdp("sendrecv")),
        Some(&sdp("sendrecv")),
    )
    .await;
    assert_eq!(upd.call_id(), call.invite.call_id);

    // A failure answer to an in-dialog request goes back as it is, the call goes on.
    h.pbx
        .in_dialog(&mut call.pbx, "INFO", Some(("application/x-foo", "x")))
        .await;
    let got = h.carrier.expect_request("INFO").await;
    h.carrier.reply(&got, 415, None).await;
    h.pbx.expect_response_to("INFO", 415).await;
    assert_eq!(h.gw.registry().len(), 1);

    h.hang_up_from_pbx(&mut call.pbx).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}

#[tokio::test]
async fn inbound_call_reaches_the_pbx_and_completes() {
    let mut h = start_gateway(&[]).await;
    // The customer calls one of the trunk's numbers.
    let invite = h
        .carrier
        .invite(h.outside(), &InviteSpec::new(CALLEE, CALLER))
        .await;
    h.carrier.expect_response(100).await;
    let p_invite = h.pbx.expect_request("INVITE").await;
    assert_eq!(p_invite.src, h.inside(), "sent from the inside interface");
    assert_eq!(p_invite.user_of("To").as_deref(), Some(CALLER));
    assert_eq!(p_invite.user_of("From").as_deref(), Some(CALLEE));
    assert!(p_invite.uri().starts_with(&format!("sip:{CALLER}@")));
    assert_ne!(p_invite.call_id(), invite.call_id);
    assert_anchored(&p_invite.body, &sdp("sendrecv"));
    h.pbx.reply(&p_invite, 100, None).await;
    let tag = token("pt");
    h.pbx.reply(&p_invite, 180, Some(&tag)).await;
    h.carrier.expect_response(180).await;
    h.pbx
        .reply_with(&p_invite, 200, Some(&tag), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = h.carrier.expect_response(200).await;
    assert_eq!(ok.call_id(), invite.call_id);
    let mut carrier = Dialog::uac(&invite, &ok);
    h.carrier.ack(&carrier, 1).await;
    let ack = h.pbx.expect_request("ACK").await;
    assert_eq!(ack.call_id(), p_invite.call_id());

    h.carrier.bye(&mut carrier).await;
    let bye = h.pbx.expect_request("BYE").await;
    h.pbx.reply(&bye, 200, None).await;
    h.carrier.expect_response_to("BYE", 200).await;

    let cdrs = h.finish().await;
    let cdr = only(&cdrs);
    assert_eq!(cdr.attempt.direction, Direction::Inbound);
    assert_eq!(cdr.outcome.disposition, Disposition::Answered);
    assert_eq!(cdr.outcome.hangup_side, Some(HangupSide::Outside));
    assert_eq!(cdr.attempt.caller.as_deref(), Some(&CALLEE[1..]));
    assert_eq!(cdr.attempt.callee.as_deref(), Some(&CALLER[1..]));
    assert_eq!(
        cdr.attempt.outside_call_id.as_deref(),
        Some(invite.call_id.as_str())
    );
    assert_eq!(
        cdr.attempt.inside_call_id.as_deref(),
        Some(p_invite.call_id())
    );
}

#[tokio::test]
async fn reinvite_refused_by_the_far_end_leaves_the_call_up() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    let reinvite = h
        .pbx
        .in_dialog(
            &mut call.pbx,
            "INVITE",
            Some(("application/sdp", &sdp("sendonly"))),
        )
        .await;
    let got = h.carrier.expect_request("INVITE").await;
    h.carrier.reply(&got, 488, None).await;
    // The carrier's 488 is ACKed by the gateway's transaction, the PBX gets the 488 and ACKs
    // it to the gateway's.
    let ack = h.carrier.expect_request("ACK").await;
    assert_eq!(ack.branch(), got.branch());
    let resp = h.pbx.expect_response_to("INVITE", 488).await;
    h.pbx.ack_non2xx(&reinvite, &resp).await;
    h.carrier
        .expect_nothing_new(Duration::from_millis(300))
        .await;
    assert_eq!(h.gw.registry().len(), 1);

    // The call goes on: a later re-INVITE works.
    relay_in_dialog(
        &mut h.pbx,
        &mut call.pbx,
        &mut h.carrier,
        "INVITE",
        Some(&sdp("sendonly")),
        Some(&sdp("recvonly")),
    )
    .await;
    h.pbx.ack(&call.pbx, call.pbx.cseq).await;
    h.carrier.expect_request("ACK").await;
    h.hang_up_from_pbx(&mut call.pbx).await;
    h.finish().await;
}

#[tokio::test]
async fn reinvite_glare_is_answered_491() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    // The carrier's re-INVITE is on its way to the PBX…
    let c_re = h
        .carrier
        .in_dialog(
            &mut call.carrier,
            "INVITE",
            Some(("application/sdp", &sdp("sendonly"))),
        )
        .await;
    h.carrier.expect_response_to("INVITE", 100).await;
    let got = h.pbx.expect_request("INVITE").await;
    // …when the PBX sends its own: §14.1, 491 Request Pending.
    let p_re = h
        .pbx
        .in_dialog(
            &mut call.pbx,
            "INVITE",
            Some(("application/sdp", &sdp("sendonly"))),
        )
        .await;
    let pending = h
        .pbx
        .next_new(WAIT, |m| m.status() == Some(491))
        .await
        .expect("491");
    assert_eq!(pending.cseq().0, p_re.cseq);
    h.pbx.ack_non2xx(&p_re, &pending).await;
    // The first one completes normally.
    h.pbx
        .reply_with(&got, 200, None, &[], Some(&sdp("recvonly")))
        .await;
    h.carrier.expect_response_to("INVITE", 200).await;
    h.carrier.ack(&call.carrier, c_re.cseq).await;
    h.pbx.expect_request("ACK").await;
    // The carrier never saw the PBX's re-INVITE.
    h.carrier
        .expect_nothing_new(Duration::from_millis(300))
        .await;

    h.hang_up_from_pbx(&mut call.pbx).await;
    h.finish().await;
}

#[tokio::test]
async fn update_in_the_early_dialog_is_relayed_both_ways() {
    let mut h = start_gateway(&[]).await;
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    let tag = token("eu");
    h.carrier
        .reply_with(&c_invite, 183, Some(&tag), &[], Some(&sdp("sendrecv")))
        .await;
    let progress = h.pbx.expect_response(183).await;
    // RFC 3311: UPDATE changes the session before the answer, in the early dialog.
    let mut pbx = Dialog::uac(&invite, &progress);
    let mut carrier = Dialog::uas(&c_invite, &tag);
    let got = relay_in_dialog(
        &mut h.carrier,
        &mut carrier,
        &mut h.pbx,
        "UPDATE",
        Some(&sdp("sendonly")),
        Some(&sdp("recvonly")),
    )
    .await;
    assert_eq!(got.call_id(), invite.call_id);
    let got = relay_in_dialog(
        &mut h.pbx,
        &mut pbx,
        &mut h.carrier,
        "UPDATE",
        Some(&sdp("sendrecv")),
        Some(&sdp("sendrecv")),
    )
    .await;
    assert_eq!(got.call_id(), c_invite.call_id());

    h.carrier
        .reply_with(&c_invite, 200, Some(&tag), &[], Some(&sdp("sendrecv")))
        .await;
    h.pbx.expect_response_to("INVITE", 200).await;
    h.pbx.ack(&pbx, invite.cseq).await;
    h.carrier.expect_request("ACK").await;
    h.hang_up_from_pbx(&mut pbx).await;
    let cdrs = h.finish().await;
    assert_eq!(only(&cdrs).outcome.disposition, Disposition::Answered);
}
