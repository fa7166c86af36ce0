//! Answers the gateway must never pass on when it cannot anchor them (issue 15, item 4), with
//! the real `trunkguard` binary between SIPp as the caller and SIPp as the called side:
//! - the called side sends a 183 with garbage for SDP, then a 200 whose answer has 65 media
//!   lines: the 183 reaches the caller without a body, the 200 never does — the caller gets
//!   `502 Bad Gateway`, the called side an ACK and a BYE with `Reason: SIP;cause=488`, and the
//!   CDR `carrier_bad_sdp` (outbound) or `pbx_bad_sdp` (inbound).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/harness.rs"]
mod harness;

use harness::{
    args, local, Scenario, Scene, SippSpec, TrunkLimits, CARRIER_IP, OTHER_TRUNK_NUMBER, PBX_IP,
    TRUNK_NUMBER,
};
use trunkguard::model::{Cdr, Disposition, EndReason};

const CALLEE: &str = "8613800138000";

fn summary(cdrs: &[Cdr]) -> String {
    cdrs.iter()
        .map(|c| {
            format!(
                "{} {} {} {} hangup={:?} answered={:?}",
                c.attempt.id,
                c.outcome.disposition,
                c.outcome.final_status,
                c.outcome.end_reason,
                c.outcome.hangup_side,
                c.attempt.answer_at,
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One call whose called side answers with unusable SDP; `inbound`: the carrier calls the PBX.
fn unusable_answer(inbound: bool, expected: EndReason) {
    let mut scene = Scene::start(TrunkLimits::default());
    let (called_at, caller_ip, gateway, caller, callee) = if inbound {
        let gw = scene.addrs.outside;
        (
            scene.addrs.pbx_uas,
            CARRIER_IP,
            gw,
            "8613912345678",
            OTHER_TRUNK_NUMBER,
        )
    } else {
        let gw = scene.addrs.inside;
        (scene.addrs.carrier, PBX_IP, gw, TRUNK_NUMBER, CALLEE)
    };
    let uas = scene.sipp(SippSpec {
        name: "called-uas",
        scenario: Scenario::File("uas_bad_answer.xml"),
        local: called_at,
        remote: None,
        args: args(&["-m", "1", "-trace_msg"]),
        timeout_secs: 30,
    });
    let uac = scene.sipp(SippSpec {
        name: "caller-uac",
        scenario: Scenario::File("uac_bad_answer.xml"),
        local: local(caller_ip),
        remote: Some(gateway),
        args: args(&[
            "-key",
            "caller",
            caller,
            "-s",
            callee,
            "-m",
            "1",
            "-trace_msg",
        ]),
        timeout_secs: 30,
    });
    scene.expect_exit_ok(uac);
    // The called side's scenario passes only with the ACK and a BYE carrying `cause=488`.
    scene.expect_exit_ok(uas);
    let stats = scene.ok(scene.sipps[uas].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    scene.ensure(ok == 1, || {
        format!("called SIPp: {ok} successful calls (ACK, then BYE with a Reason)")
    });

    // Nothing of the unusable SDP reached the caller: the 183 came without a body.
    let received = scene.ok(scene.sipps[uac].received_messages());
    let progress: Vec<&String> = received
        .iter()
        .filter(|m| m.starts_with("SIP/2.0 183"))
        .collect();
    let leaked = received
        .iter()
        .any(|m| m.contains("no SDP at all") || m.contains("m=audio") || m.contains("o=called"));
    scene.ensure(!progress.is_empty() && !leaked, || {
        format!("the caller should get a bare 183 and nothing of the SDP:\n{received:#?}")
    });
    scene.ensure(
        progress
            .iter()
            .all(|m| !m.to_ascii_lowercase().contains("content-type")),
        || format!("the bare 183 still names a Content-Type:\n{progress:#?}"),
    );

    let cdrs = scene.stop_and_read_cdrs();
    let ok = cdrs.len() == 1
        && cdrs[0].outcome.disposition == Disposition::Failed
        && cdrs[0].outcome.final_status == 502
        && cdrs[0].outcome.end_reason == expected
        && cdrs[0].attempt.answer_at.is_none();
    scene.ensure(ok, || {
        format!(
            "expected one failed CDR, 502, {expected}, never answered:\n{}",
            summary(&cdrs)
        )
    });
    let log = scene.gateway.log();
    scene.ensure(log.contains("cannot be anchored"), || {
        "the gateway did not log the unusable SDP".to_string()
    });
}

/// Outbound: the carrier's 183 and 200 carry SDP the gateway cannot anchor.
#[test]
fn carrier_answer_that_cannot_be_anchored_ends_in_502() {
    unusable_answer(false, EndReason::CarrierBadSdp);
}

/// Inbound: the PBX's 183 and 200 do.
#[test]
fn pbx_answer_that_cannot_be_anchored_ends_in_502() {
    unusable_answer(true, EndReason::PbxBadSdp);
}
