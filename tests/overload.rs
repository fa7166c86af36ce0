//! Overload control against real SIPp peers: while the gateway's SIP queue is late, new INVITEs
//! get `503` with `Retry-After` and a CDR `overload`, calls in progress still end cleanly with
//! their BYE, and the gateway admits calls again as soon as the queue has drained.
//!
//! The late queue is made deterministic by stalling the gateway (SIGSTOP for 1.5 s, as a
//! starved process would be) while SIPp sends: every datagram of the stall waited at least
//! that long in the socket when it is read, far past the test's 100 ms limit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/harness.rs"]
mod harness;

use std::thread::sleep;
use std::time::Duration;

use harness::{
    args, local, Scenario, Scene, SippSpec, TrunkLimits, CARRIER_IP, PBX_IP, TRUNK_NUMBER,
};
use trunkguard::model::{Cdr, Disposition, RefusalReason};

const CALLEE: &str = "8613800138000";
const LONG_CALLS: u32 = 5;
const BURST: u32 = 20;
const AFTER: u32 = 3;

fn pbx(scene: &mut Scene, name: &str, scenario: &'static str, extra: &[&str]) -> usize {
    let mut a = args(&["-key", "caller", TRUNK_NUMBER, "-s", CALLEE]);
    a.extend(args(extra));
    let inside = scene.addrs.inside;
    scene.sipp(SippSpec {
        name,
        scenario: Scenario::File(scenario),
        local: local(PBX_IP),
        remote: Some(inside),
        args: a,
        timeout_secs: 60,
    })
}

fn counts(scene: &Scene, i: usize) -> (u64, u64, u64) {
    let stats = scene.ok(scene.sipps[i].stats());
    (
        scene.ok(stats.get("OutgoingCall")),
        scene.ok(stats.get("SuccessfulCall")),
        scene.ok(stats.get("FailedCall")),
    )
}

fn summary(cdrs: &[Cdr]) -> String {
    cdrs.iter()
        .map(|c| {
            format!(
                "{} {} {} {} refusal={:?}",
                c.attempt.id,
                c.outcome.disposition,
                c.outcome.final_status,
                c.outcome.end_reason,
                c.outcome.refusal_reason
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_late_queue_refuses_new_invites_with_503_while_calls_in_progress_end_cleanly() {
    let mut scene = Scene::start_edited(TrunkLimits::default(), |_, config| {
        config.replacen(
            "retry_after_secs = 5\n",
            "retry_after_secs = 5\nmax_queue_delay_ms = 100\n",
            1,
        )
    });
    let carrier_local = scene.addrs.carrier;
    assert_eq!(carrier_local.ip(), std::net::IpAddr::V4(CARRIER_IP));
    let carrier = scene.sipp(SippSpec {
        name: "carrier-uas",
        scenario: Scenario::Builtin("uas"),
        local: carrier_local,
        remote: None,
        args: args(&["-m", &(LONG_CALLS + AFTER).to_string()]),
        timeout_secs: 60,
    });
    // Calls in progress: answered at once, each hung up by the PBX 3 s later — during the stall.
    let long = pbx(
        &mut scene,
        "pbx-long",
        "pbx_uac.xml",
        &["-m", &LONG_CALLS.to_string(), "-r", "50", "-d", "3000"],
    );
    sleep(Duration::from_millis(2200));
    // New calls sent while the gateway is stalled: all read late.
    let burst = pbx(
        &mut scene,
        "pbx-burst",
        "pbx_uac_overload.xml",
        &[
            "-m",
            &BURST.to_string(),
            "-r",
            "100",
            "-l",
            &BURST.to_string(),
        ],
    );
    scene.ok(scene.gateway.suspend_for(Duration::from_millis(1500)));

    scene.expect_exit_ok(burst);
    let (placed, refused, failed) = counts(&scene, burst);
    scene.ensure(
        placed == BURST as u64 && refused == BURST as u64 && failed == 0,
        || {
            format!(
            "burst SIPp: {placed} placed, {refused} got 503 with Retry-After, {failed} failed; \
             expected {BURST}/{BURST}/0"
        )
        },
    );
    scene.expect_exit_ok(long);
    let (placed, ended, failed) = counts(&scene, long);
    scene.ensure(
        placed == LONG_CALLS as u64 && ended == LONG_CALLS as u64 && failed == 0,
        || {
            format!(
                "calls in progress: {placed} placed, {ended} ended with their BYE answered, \
             {failed} failed; expected {LONG_CALLS}/{LONG_CALLS}/0"
            )
        },
    );

    // The queue has drained: new calls are admitted at once.
    let after = pbx(
        &mut scene,
        "pbx-after",
        "pbx_uac.xml",
        &["-m", &AFTER.to_string(), "-r", "10", "-d", "300"],
    );
    scene.expect_exit_ok(after);
    let (placed, ok, failed) = counts(&scene, after);
    scene.ensure(
        placed == AFTER as u64 && ok == AFTER as u64 && failed == 0,
        || format!("after the stall: {placed} placed, {ok} answered, {failed} failed"),
    );
    scene.expect_exit_ok(carrier);

    let cdrs = scene.stop_and_read_cdrs();
    let overload: Vec<&Cdr> = cdrs
        .iter()
        .filter(|c| c.outcome.refusal_reason == Some(RefusalReason::Overload))
        .collect();
    let answered = cdrs
        .iter()
        .filter(|c| c.outcome.disposition == Disposition::Answered)
        .count();
    // A refusal made from the datagram still names what the INVITE named; its retransmissions
    // (SIPp resent the INVITEs it had no answer to during the stall) made no second CDR.
    scene.ensure(
        overload.iter().all(|c| {
            c.attempt.trunk.as_deref() == Some("interop")
                && c.attempt.caller.as_deref() == Some(&TRUNK_NUMBER[1..])
                && c.attempt.callee.as_deref() == Some(CALLEE)
                && c.attempt.inside_call_id.is_some()
        }),
        || {
            format!(
                "overload CDRs without trunk, numbers or Call-ID:\n{}",
                summary(&cdrs)
            )
        },
    );
    scene.ensure(
        overload.len() == BURST as usize
            && overload.iter().all(|c| c.outcome.final_status == 503)
            && answered == (LONG_CALLS + AFTER) as usize
            && cdrs.len() == (BURST + LONG_CALLS + AFTER) as usize,
        || {
            format!(
                "expected {BURST} CDRs refused overload (503) and {} answered, one per call; \
                 found:\n{}",
                LONG_CALLS + AFTER,
                summary(&cdrs)
            )
        },
    );
}
