//! Other in-dialog requests: INFO and UPDATE relayed both ways, UPDATE also in the early dialog.

use super::*;

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
