//! The carrier's eyes end to end: the real `trunkguard` binary between SIPp as the PBX and SIPp
//! as the carrier, on loopback. A carrier answering 404 drives a caller ID over the error-rate
//! rule (suspended at the 10th call, not before; lifted after its resume time and hysteresis);
//! a burst to one callee hits admission's callee limit; operators impose and lift a step with
//! `trunkguard enforce` against the running gateway; `trunkguard report` gives the carrier the
//! counts of what was placed.
//!
//! Every process is bounded (SIPp `-timeout`, Rust-side deadlines, kill on drop) and a failure
//! prints the gateway log and the SIPp screens. Each scene places a few calls only.
//!
//! This file holds the SIPp peers, the CLI and the readers the groups share; the tests stand in
//! `sipp_enforcement/`: `rules.rs` (the error-rate rule and admission's callee limit) and
//! `operators.rs` (`trunkguard enforce` and `trunkguard report` against the running gateway).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/harness.rs"]
mod harness;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use harness::{args, pbx_local, Scenario, Scene, SippSpec, TrunkLimits, TRUNK_NUMBER};
use trunkguard::model::{Cdr, Disposition};
use trunkguard::store::{AnomalyRow, Store};

#[path = "sipp_enforcement/operators.rs"]
mod operators;
#[path = "sipp_enforcement/rules.rs"]
mod rules;

const CALLEE: &str = "8613800138000";
const TRUNK: &str = "interop";

fn caller_digits() -> &'static str {
    &TRUNK_NUMBER[1..]
}

/// The carrier at the trunk's `carrier` address: a scenario file or a built-in, ending by
/// itself after `calls` calls.
fn carrier(scene: &mut Scene, name: &str, scenario: Scenario<'_>, calls: u32) -> usize {
    let local = scene.addrs.carrier;
    scene.sipp(SippSpec {
        name,
        scenario,
        local,
        remote: None,
        args: args(&["-m", &calls.to_string()]),
        timeout_secs: 30,
    })
}

/// The PBX placing `calls` calls presenting the trunk's number to `CALLEE` at `rate` per
/// second, with the given scenario; waits for it to end and requires every call to succeed
/// (for SIPp: the scenario's expected ending).
fn pbx_calls(scene: &mut Scene, name: &str, scenario: &str, calls: u32, rate: u32) -> usize {
    let inside = scene.addrs.inside;
    let i = scene.sipp(SippSpec {
        name,
        scenario: Scenario::File(scenario),
        local: pbx_local(),
        remote: Some(inside),
        args: args(&[
            "-key",
            "caller",
            TRUNK_NUMBER,
            "-s",
            CALLEE,
            "-m",
            &calls.to_string(),
            "-r",
            &rate.to_string(),
            "-d",
            "200",
        ]),
        timeout_secs: 30,
    });
    scene.expect_exit_ok(i);
    let stats = scene.ok(scene.sipps[i].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    let failed = scene.ok(stats.get("FailedCall"));
    scene.ensure(ok == u64::from(calls) && failed == 0, || {
        format!("PBX SIPp {name}: {ok} successful, {failed} failed; expected {calls}/0")
    });
    i
}

/// How many calls of SIPp `i` got `what` (e.g. "404_Recv") at its first element expecting it.
fn count(scene: &Scene, i: usize, what: &str) -> u64 {
    let counts = scene.ok(scene.sipps[i].counts());
    scene.ok(counts.first(what))
}

/// SIPp `i` (a carrier that ended by itself) saw `expected` calls arrive.
fn carrier_reached(scene: &mut Scene, i: usize, expected: u64) {
    scene.expect_exit_ok(i);
    let stats = scene.ok(scene.sipps[i].stats());
    let reached = scene.ok(stats.get("IncomingCall"));
    scene.ensure(reached == expected, || {
        format!("{reached} calls reached the carrier, expected {expected}")
    });
}

/// `trunkguard --config <the scene's config> ARGS…`: exit success and stdout, or what failed.
fn cli(scene: &Scene, list: &[&str]) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_trunkguard"))
        .arg("--config")
        .arg(config_path(scene))
        .args(list)
        .current_dir(scene.path())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `trunkguard {}`: {e}", list.join(" ")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "`trunkguard {}` failed ({}):\n{stdout}{}",
            list.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

fn config_path(scene: &Scene) -> PathBuf {
    scene.path().join("trunkguard.toml")
}

fn today() -> String {
    Utc::now().format("%Y-%m-%d").to_string()
}

fn tomorrow() -> String {
    (Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string()
}

/// The enforcement log of today and tomorrow, via `trunkguard enforce log` (JSON lines).
fn enforcement_log(scene: &Scene) -> Vec<serde_json::Value> {
    let yesterday = (Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let out = scene.ok(cli(
        scene,
        &["enforce", "log", "--from", &yesterday, "--to", &tomorrow()],
    ));
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| scene.fail(format!("bad log line {l:?}: {e}")))
        })
        .collect()
}

fn field<'a>(row: &'a serde_json::Value, name: &str) -> &'a str {
    row.get(name).and_then(|v| v.as_str()).unwrap_or("")
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

/// SIGTERM the gateway, read every CDR, and check from the monitor's figures (logged when it
/// stops) that it saw each of them and that its last reconciliation found no drift.
fn stop_and_read_cdrs(scene: &mut Scene) -> Vec<Cdr> {
    let cdrs = scene.stop_and_read_cdrs();
    let tail = scene.gateway.log_tail(30);
    let figures = tail
        .lines()
        .find(|l| l.contains("monitor stopped"))
        .unwrap_or_else(|| scene.fail("no `monitor stopped` line in the gateway log"));
    let seen = format!("cdrs_seen: {},", cdrs.len());
    scene.ensure(
        figures.contains(&seen) && figures.contains("concurrency_drift: 0,"),
        || format!("expected `{seen}` and no drift in the monitor's figures: {figures}"),
    );
    cdrs
}

fn refused_with(c: &Cdr, status: u16, reason: &str) -> bool {
    c.outcome.disposition == Disposition::Refused
        && c.outcome.final_status == status
        && c.outcome.refusal_reason.map(|r| r.as_str()) == Some(reason)
        && c.attempt.outside_call_id.is_none()
}
