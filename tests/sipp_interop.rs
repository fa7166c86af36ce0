//! Interop with SIPp: the real `trunkguard` binary between SIPp as the PBX and SIPp as the
//! carrier, on loopback. Each test asserts on SIPp's exit code, on its statistics
//! (`-trace_stat`, `-trace_counts` CSV files) and on the CDRs the gateway wrote (read back with
//! `trunkguard cdrs` after a SIGTERM stop, which drains and flushes them).
//!
//! Every process is bounded (SIPp `-timeout`, a Rust-side deadline, kill on drop) and a failure
//! prints the gateway log and the SIPp screens. No assertion is about speed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/harness.rs"]
mod harness;

use harness::{
    args, pbx_local, Scenario, Scene, SippSpec, TrunkLimits, CARRIER_IP, OTHER_TRUNK_NUMBER,
    TRUNK_NUMBER,
};
use std::net::SocketAddr;
use trunkguard::model::RefusalReason;
use trunkguard::model::{Cdr, Direction, Disposition};

const CALLEE: &str = "8613800138000";

fn carrier_local() -> SocketAddr {
    SocketAddr::new(CARRIER_IP.into(), harness::free_port(CARRIER_IP, false))
}

/// SIPp as the carrier: the built-in UAS (180, 200, waits for BYE) at the trunk's `carrier`.
/// With `calls` > 0 it ends by itself after that many calls.
fn carrier_uas(scene: &mut Scene, calls: u32, timeout_secs: u64) -> usize {
    let mut a = Vec::new();
    if calls > 0 {
        a = args(&["-m", &calls.to_string()]);
    }
    let local = scene.addrs.carrier;
    scene.sipp(SippSpec {
        name: "carrier-uas",
        scenario: Scenario::Builtin("uas"),
        local,
        remote: None,
        args: a,
        timeout_secs,
    })
}

fn summary(cdrs: &[Cdr]) -> String {
    cdrs.iter()
        .map(|c| {
            format!(
                "{} {} {} {} {} refusal={:?}",
                c.attempt.id,
                c.attempt.direction,
                c.outcome.disposition,
                c.outcome.final_status,
                c.outcome.end_reason,
                c.outcome.refusal_reason
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// 100 calls at 10 calls/s through the gateway: all complete, one answered CDR each.
#[test]
fn hundred_calls_at_ten_per_second_all_complete() {
    const CALLS: u64 = 100;
    let mut scene = Scene::start(TrunkLimits {
        max_concurrent: 30,
        max_concurrent_per_caller_id: 30,
        max_cps: 50.0,
        ..TrunkLimits::default()
    });
    // Sockets, database connections, recording files: what the gateway holds when idle.
    let idle_fds = scene.gateway.open_fds();
    let uas = carrier_uas(&mut scene, CALLS as u32, 90);
    let inside = scene.addrs.inside;
    let uac = scene.sipp(SippSpec {
        name: "pbx-uac",
        scenario: Scenario::File("pbx_uac.xml"),
        local: pbx_local(),
        remote: Some(inside),
        args: args(&[
            "-key",
            "caller",
            TRUNK_NUMBER,
            "-s",
            CALLEE,
            "-m",
            &CALLS.to_string(),
            "-r",
            "10",
            "-l",
            "30",
            "-d",
            "1000",
        ]),
        timeout_secs: 60,
    });

    scene.expect_exit_ok(uac);
    let stats = scene.ok(scene.sipps[uac].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    let failed = scene.ok(stats.get("FailedCall"));
    let created = scene.ok(stats.get("OutgoingCall"));
    scene.ensure(created == CALLS && ok == CALLS && failed == 0, || {
        format!("PBX SIPp: {created} calls placed, {ok} successful, {failed} failed; expected {CALLS}/{CALLS}/0")
    });
    // The carrier saw every call and completed it.
    scene.expect_exit_ok(uas);
    let stats = scene.ok(scene.sipps[uas].stats());
    let carrier_ok = scene.ok(stats.get("SuccessfulCall"));
    let carrier_failed = scene.ok(stats.get("FailedCall"));
    scene.ensure(carrier_ok == CALLS && carrier_failed == 0, || {
        format!(
            "carrier SIPp: {carrier_ok} successful, {carrier_failed} failed; expected {CALLS}/0"
        )
    });

    // Every call's media sockets and recording file are closed again (calls end at once; the
    // last recordings close within a moment).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut now_fds = scene.gateway.open_fds();
    while now_fds != idle_fds && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        now_fds = scene.gateway.open_fds();
    }
    scene.ensure(idle_fds.is_some() && now_fds == idle_fds, || {
        format!("open files: {idle_fds:?} before the calls, {now_fds:?} after")
    });

    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(cdrs.len() as u64 == CALLS, || {
        format!(
            "expected exactly {CALLS} CDR rows, found {}:\n{}",
            cdrs.len(),
            summary(&cdrs)
        )
    });
    let bad: Vec<&Cdr> = cdrs
        .iter()
        .filter(|c| {
            c.outcome.disposition != Disposition::Answered
                || c.outcome.final_status != 200
                || c.attempt.direction != Direction::Outbound
                || c.attempt.trunk.as_deref() != Some("interop")
                || c.attempt.caller.as_deref() != Some(&TRUNK_NUMBER[1..])
                || c.attempt.callee.as_deref() != Some(CALLEE)
                || c.attempt.answer_at.is_none()
                || c.outcome.talk_ms <= 0
                || c.attempt.outside_call_id.is_none()
        })
        .collect();
    scene.ensure(bad.is_empty(), || {
        format!(
            "{} CDRs are not answered outbound calls from {TRUNK_NUMBER} to {CALLEE}:\n{}",
            bad.len(),
            summary(&bad.into_iter().cloned().collect::<Vec<_>>())
        )
    });
    let mut inside_ids: Vec<_> = cdrs
        .iter()
        .map(|c| c.attempt.inside_call_id.clone())
        .collect();
    inside_ids.sort();
    inside_ids.dedup();
    scene.ensure(inside_ids.len() as u64 == CALLS, || {
        format!(
            "expected {CALLS} distinct PBX Call-IDs in the CDRs, found {}",
            inside_ids.len()
        )
    });
}

/// A caller ID that is not one of the trunk's numbers gets 403 and nothing reaches the carrier.
#[test]
fn unauthorized_caller_id_gets_403() {
    const CALLS: u64 = 3;
    const ROGUE: &str = "+861099999999";
    let mut scene = Scene::start(TrunkLimits::default());
    let uas = carrier_uas(&mut scene, 0, 60);
    let inside = scene.addrs.inside;
    let uac = scene.sipp(SippSpec {
        name: "pbx-uac-refused",
        scenario: Scenario::File("pbx_uac_refused.xml"),
        local: pbx_local(),
        remote: Some(inside),
        args: args(&[
            "-key",
            "caller",
            ROGUE,
            "-s",
            CALLEE,
            "-m",
            &CALLS.to_string(),
            "-r",
            "10",
        ]),
        timeout_secs: 30,
    });

    // The scenario only succeeds on a 403 (a 200 would be an unexpected message).
    scene.expect_exit_ok(uac);
    let stats = scene.ok(scene.sipps[uac].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    let failed = scene.ok(stats.get("FailedCall"));
    let counts = scene.ok(scene.sipps[uac].counts());
    let got_403 = scene.ok(counts.first("403_Recv"));
    // A 403 retransmitted by the gateway would mean our ACK did not match its transaction.
    let again_403 = scene.ok(counts.first("403_Retrans"));
    scene.ensure(
        ok == CALLS && failed == 0 && got_403 == CALLS && again_403 == 0,
        || {
            format!(
                "PBX SIPp: {ok} successful, {failed} failed, {got_403} got 403, {again_403} 403 \
                 retransmissions; expected {CALLS}/0/{CALLS}/0"
            )
        },
    );

    let r = scene.sipps[uas].finish();
    scene.ok(r);
    let stats = scene.ok(scene.sipps[uas].stats());
    let reached = scene.ok(stats.get("IncomingCall"));
    scene.ensure(reached == 0, || {
        format!("{reached} refused calls reached the carrier")
    });

    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(cdrs.len() as u64 == CALLS, || {
        format!(
            "expected exactly {CALLS} CDR rows, found {}:\n{}",
            cdrs.len(),
            summary(&cdrs)
        )
    });
    let bad: Vec<Cdr> = cdrs
        .iter()
        .filter(|c| {
            c.outcome.disposition != Disposition::Refused
                || c.outcome.final_status != 403
                || c.outcome.refusal_reason != Some(RefusalReason::CallerIdNotAuthorized)
                || c.attempt.outside_call_id.is_some()
                || c.attempt.answer_at.is_some()
        })
        .cloned()
        .collect();
    scene.ensure(bad.is_empty(), || {
        format!(
            "CDRs not refused 403 caller_id_not_authorized without a carrier leg:\n{}",
            summary(&bad)
        )
    });
}

/// `max_concurrent = 2`, five long calls at once: two answered, three 503.
#[test]
fn trunk_concurrency_cap_admits_two_of_five() {
    const CALLS: u64 = 5;
    let mut scene = Scene::start(TrunkLimits {
        max_concurrent: 2,
        max_concurrent_per_caller_id: 10,
        max_cps: 100.0,
        ..TrunkLimits::default()
    });
    let uas = carrier_uas(&mut scene, 2, 60);
    let inside = scene.addrs.inside;
    // -r 1000: the five INVITEs leave within a few ms; -d 4000: the two admitted calls are
    // still up when the last INVITE arrives.
    let uac = scene.sipp(SippSpec {
        name: "pbx-uac-capacity",
        scenario: Scenario::File("pbx_uac_capacity.xml"),
        local: pbx_local(),
        remote: Some(inside),
        args: args(&[
            "-key",
            "caller",
            TRUNK_NUMBER,
            "-s",
            CALLEE,
            "-m",
            &CALLS.to_string(),
            "-l",
            &CALLS.to_string(),
            "-r",
            "1000",
            "-d",
            "4000",
        ]),
        timeout_secs: 40,
    });

    scene.expect_exit_ok(uac);
    let stats = scene.ok(scene.sipps[uac].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    let failed = scene.ok(stats.get("FailedCall"));
    let counts = scene.ok(scene.sipps[uac].counts());
    let answered = scene.ok(counts.first("200_Recv"));
    let refused = scene.ok(counts.first("503_Recv"));
    // A 503 retransmitted by the gateway would mean our ACK did not match its transaction.
    let again_503 = scene.ok(counts.first("503_Retrans"));
    scene.ensure(
        ok == CALLS && failed == 0 && answered == 2 && refused == 3 && again_503 == 0,
        || {
            format!(
                "PBX SIPp: {ok} successful, {failed} failed, {answered} answered, {refused} got 503, \
                 {again_503} 503 retransmissions; expected {CALLS} successful, 0 failed, 2 answered, \
                 3 refused, 0 retransmissions"
            )
        },
    );
    scene.expect_exit_ok(uas);

    let cdrs = scene.stop_and_read_cdrs();
    let n_answered = cdrs
        .iter()
        .filter(|c| c.outcome.disposition == Disposition::Answered && c.outcome.final_status == 200)
        .count();
    let n_refused = cdrs
        .iter()
        .filter(|c| {
            c.outcome.disposition == Disposition::Refused
                && c.outcome.final_status == 503
                && c.outcome.refusal_reason == Some(RefusalReason::TrunkConcurrency)
        })
        .count();
    scene.ensure(
        cdrs.len() as u64 == CALLS && n_answered == 2 && n_refused == 3,
        || {
            format!(
                "expected {CALLS} CDRs: 2 answered, 3 refused 503 trunk_concurrency; found {} \
                 ({n_answered} answered, {n_refused} refused):\n{}",
                cdrs.len(),
                summary(&cdrs)
            )
        },
    );
}

/// An inbound call: the carrier calls a trunk number on the outside interface, the gateway
/// calls the PBX at `inbound_to`, and the call completes.
#[test]
fn inbound_call_from_carrier_reaches_pbx() {
    const CALLS: u64 = 5;
    const CUSTOMER: &str = "8613912345678";
    let mut scene = Scene::start(TrunkLimits::default());
    let pbx_uas = scene.addrs.pbx_uas;
    let uas = scene.sipp(SippSpec {
        name: "pbx-uas",
        scenario: Scenario::Builtin("uas"),
        local: pbx_uas,
        remote: None,
        args: args(&["-m", &CALLS.to_string()]),
        timeout_secs: 60,
    });
    let outside = scene.addrs.outside;
    let uac = scene.sipp(SippSpec {
        name: "carrier-uac",
        scenario: Scenario::File("carrier_uac.xml"),
        local: carrier_local(),
        remote: Some(outside),
        args: args(&[
            "-key",
            "caller",
            CUSTOMER,
            "-s",
            OTHER_TRUNK_NUMBER,
            "-m",
            &CALLS.to_string(),
            "-r",
            "5",
            "-d",
            "500",
        ]),
        timeout_secs: 30,
    });

    scene.expect_exit_ok(uac);
    let stats = scene.ok(scene.sipps[uac].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    let failed = scene.ok(stats.get("FailedCall"));
    scene.ensure(ok == CALLS && failed == 0, || {
        format!("carrier SIPp: {ok} successful, {failed} failed; expected {CALLS}/0")
    });
    scene.expect_exit_ok(uas);
    let stats = scene.ok(scene.sipps[uas].stats());
    let reached = scene.ok(stats.get("SuccessfulCall"));
    scene.ensure(reached == CALLS, || {
        format!("PBX SIPp completed {reached} calls, expected {CALLS}")
    });

    let cdrs = scene.stop_and_read_cdrs();
    let bad: Vec<Cdr> = cdrs
        .iter()
        .filter(|c| {
            c.attempt.direction != Direction::Inbound
                || c.outcome.disposition != Disposition::Answered
                || c.outcome.final_status != 200
                || c.attempt.callee.as_deref() != Some(&OTHER_TRUNK_NUMBER[1..])
                || c.attempt.caller.as_deref() != Some(CUSTOMER)
        })
        .cloned()
        .collect();
    scene.ensure(cdrs.len() as u64 == CALLS && bad.is_empty(), || {
        format!(
            "expected {CALLS} answered inbound CDRs from {CUSTOMER} to {OTHER_TRUNK_NUMBER}; found {}, \
             not matching:\n{}",
            cdrs.len(),
            summary(&bad)
        )
    });
}
