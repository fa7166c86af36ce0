//! Calls set up and answered: BYE from either side, provisional responses and early media
//! relayed, a late offer's answer in the ACK, an inbound call reaching the PBX.

use super::*;

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
