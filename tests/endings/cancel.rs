//! CANCEL: before the answer, before any provisional response, racing a 200, matching no
//! transaction; and the transaction tables drained when a carrier never finishes a cancelled
//! INVITE.

use super::*;

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
