//! Outbound and inbound calls that get answered: setup, relays of provisional and final
//! responses, ACK, in-dialog requests (re-INVITE, INFO, UPDATE) both ways, and BYE from either
//! side. Each test ends with the counters at zero and the CDR of its call.

mod common;

use common::*;
use trunkguard::monitor::cdr::{Direction, Disposition, HangupSide};

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
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert_eq!(cdr.final_status, 200);
    assert_eq!(cdr.hangup_side, Some(HangupSide::Inside));
    assert_eq!(cdr.end_reason, "normal_clearing");
    assert_eq!(cdr.direction, Direction::Outbound);
    assert_eq!(cdr.trunk.as_deref(), Some(TRUNK));
    assert_eq!(cdr.caller.as_deref(), Some(&CALLER[1..]));
    assert_eq!(cdr.callee.as_deref(), Some(&CALLEE[1..]));
    assert_eq!(
        cdr.inside_call_id.as_deref(),
        Some(call.invite.call_id.as_str())
    );
    assert_eq!(
        cdr.outside_call_id.as_deref(),
        Some(call.c_invite.call_id())
    );
    assert!(cdr.ringing_at.is_some() && cdr.answer_at.is_some());
    assert!(cdr.refusal_reason.is_none());
    assert_eq!(cdr.q850_cause, Some(16));
}
