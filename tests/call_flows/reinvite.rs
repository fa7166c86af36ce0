//! re-INVITEs: a hold from the PBX and one from the carrier relayed and acknowledged, one refused
//! by the far end leaving the call up, glare answered 491; an SRTP re-offer answered 488 or ended
//! at the gateway, its key never crossing.

use super::*;

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
async fn reinvite_refused_by_the_far_end_leaves_the_call_up() {
    let mut h = start_gateway(&[]).await;
    let mut call = h.establish().await;
    let reinvite = h.pbx.reinvite(&mut call.pbx, "sendonly").await;
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
    let c_re = h.carrier.reinvite(&mut call.carrier, "sendonly").await;
    h.carrier.expect_response_to("INVITE", 100).await;
    let got = h.pbx.expect_request("INVITE").await;
    // …when the PBX sends its own: §14.1, 491 Request Pending.
    let p_re = h.pbx.reinvite(&mut call.pbx, "sendonly").await;
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
