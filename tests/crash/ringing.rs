//! Calls being set up at the SIGKILL: after the restart the PBX's pending INVITE gets a final 500
//! and the carrier's a CANCEL (with the ACK of its 487), or ACK and BYE for a 2xx that came while
//! the gateway was down.

use super::*;

/// A call ringing at the carrier when the gateway is killed (and, with `answer_while_down`,
/// answered by the carrier while the gateway is down). Returns what the peers saw of it.
struct Ringing {
    dir: tempfile::TempDir,
    config: String,
    addrs: harness::Addrs,
    pbx: Ua,
    carrier: Ua,
    invite: common::Sent,
    ringing: common::Msg,
    c_invite: common::Msg,
}

async fn ringing_then_killed() -> Ringing {
    let Setup {
        dir,
        mut pbx,
        mut carrier,
        addrs,
        config,
        mut gw,
    } = Setup::start_with(harness::TrunkLimits {
        // One call at a time: a slot the crash leaked would refuse the next call.
        max_concurrent: 1,
        max_concurrent_per_caller_id: 1,
        ..harness::TrunkLimits::default()
    })
    .await;
    let invite = pbx
        .invite(addrs.inside, &InviteSpec::new(CALLER, CALLEE))
        .await;
    pbx.expect_response(100).await;
    let c_invite = carrier.expect_request("INVITE").await;
    carrier.reply(&c_invite, 180, Some("ring")).await;
    let ringing = pbx.expect_response(180).await;
    wait_journaled(&dir.path().join("tg.db"), r#""state":"inviting""#).await;
    gw.kill();
    Ringing {
        dir,
        config,
        addrs,
        pbx,
        carrier,
        invite,
        ringing,
        c_invite,
    }
}

/// After the restart: the PBX's INVITE gets a final 500 (same transaction, the To tag of the
/// 180), which the PBX acknowledges; the carrier gets a CANCEL of its INVITE.
async fn pbx_fails_and_carrier_is_cancelled(r: &mut Ringing) -> common::Msg {
    let fail = r.pbx.expect_response(500).await;
    assert_eq!(fail.call_id(), r.invite.call_id);
    assert_eq!(fail.cseq(), (r.invite.cseq, "INVITE".to_string()));
    assert_eq!(fail.branch(), r.invite.branch, "{}", fail.raw);
    assert_eq!(fail.to_tag(), r.ringing.to_tag(), "{}", fail.raw);
    r.pbx.ack_non2xx(&r.invite, &fail).await;
    let cancel = r.carrier.expect_request("CANCEL").await;
    assert_eq!(cancel.call_id(), r.c_invite.call_id());
    assert_eq!(cancel.branch(), r.c_invite.branch(), "{}", cancel.raw);
    assert_eq!(
        cancel.cseq(),
        (r.c_invite.cseq().0, "CANCEL".to_string()),
        "{}",
        cancel.raw
    );
    assert_eq!(cancel.to_tag(), None, "{}", cancel.raw);
    cancel
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_ringing_fails_the_pbx_invite_and_cancels_the_carrier_invite() {
    let mut r = ringing_then_killed().await;
    let mut gw = harness::Gateway::start(r.dir.path(), &r.config);
    let cancel = pbx_fails_and_carrier_is_cancelled(&mut r).await;
    r.carrier.reply(&cancel, 200, Some("ring")).await;
    r.carrier.reply(&r.c_invite, 487, Some("ring")).await;
    // The 487 is acknowledged as its transaction expects: same branch, CSeq number, To tag.
    let ack = r.carrier.expect_request("ACK").await;
    assert_eq!(ack.branch(), r.c_invite.branch(), "{}", ack.raw);
    assert_eq!(ack.cseq(), (r.c_invite.cseq().0, "ACK".to_string()));
    assert_eq!(ack.to_tag().as_deref(), Some("ring"));
    r.carrier
        .expect_nothing_new(Duration::from_millis(500))
        .await;

    // The trunk allows one call at a time: the interrupted one left no slot taken.
    let next = r
        .pbx
        .invite(r.addrs.inside, &InviteSpec::new(CALLER, CALLEE))
        .await;
    let c_next = r.carrier.expect_request("INVITE").await;
    r.carrier.reply(&c_next, 486, Some("busy")).await;
    let busy = r.pbx.expect_response(486).await;
    r.pbx.ack_non2xx(&next, &busy).await;

    gw.stop()
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail(40)));
    let mut cdrs = gw.cdrs().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cdrs.len(), 2, "{cdrs:#?}");
    cdrs.retain(|c| c.outcome.end_reason == EndReason::GatewayRestart);
    assert_eq!(cdrs.len(), 1, "{cdrs:#?}");
    assert_eq!(cdrs[0].outcome.disposition, Disposition::Failed);
    assert_eq!(cdrs[0].outcome.final_status, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_sent_while_the_gateway_was_down_is_acknowledged_and_ended() {
    let mut r = ringing_then_killed().await;
    // The carrier answers while the gateway is down: its 200 reaches nobody.
    r.carrier.reply(&r.c_invite, 200, Some("late")).await;
    let mut gw = harness::Gateway::start(r.dir.path(), &r.config);
    let cancel = pbx_fails_and_carrier_is_cancelled(&mut r).await;
    // Too late to cancel: the INVITE has its final response already (§9.2).
    r.carrier.reply(&cancel, 481, Some("late")).await;
    // The carrier retransmits its 2xx (no ACK came): now the gateway hears it.
    r.carrier.reply(&r.c_invite, 200, Some("late")).await;
    let ack = r.carrier.expect_request("ACK").await;
    assert_eq!(ack.call_id(), r.c_invite.call_id());
    assert_eq!(ack.cseq(), (r.c_invite.cseq().0, "ACK".to_string()));
    assert_eq!(ack.to_tag().as_deref(), Some("late"), "{}", ack.raw);
    assert_ne!(
        ack.branch(),
        r.c_invite.branch(),
        "a 2xx's ACK is a transaction of its own"
    );
    let bye = r.carrier.expect_request("BYE").await;
    assert_eq!(bye.call_id(), r.c_invite.call_id());
    assert_eq!(bye.from_tag(), r.c_invite.from_tag());
    assert_eq!(bye.to_tag().as_deref(), Some("late"), "{}", bye.raw);
    assert!(bye.cseq().0 > r.c_invite.cseq().0, "{}", bye.raw);
    assert!(
        bye.uri().contains(&r.carrier.addr().to_string()),
        "{}",
        bye.raw
    );
    r.carrier.reply(&bye, 200, None).await;
    // A retransmitted 2xx gets the ACK again, not a second BYE.
    r.carrier.reply(&r.c_invite, 200, Some("late")).await;
    let again = r
        .carrier
        .recv_matching(Duration::from_secs(2), |m| m.method() == Some("ACK"))
        .await
        .expect("the ACK again");
    assert_eq!(again.to_tag().as_deref(), Some("late"));
    r.carrier
        .expect_nothing_new(Duration::from_millis(500))
        .await;

    gw.stop()
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail(40)));
    let cdrs = gw.cdrs().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cdrs.len(), 1, "{cdrs:#?}");
    assert_eq!(cdrs[0].outcome.end_reason, EndReason::GatewayRestart);
}
