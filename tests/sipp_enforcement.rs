//! The carrier's eyes end to end: the real `trunkguard` binary between SIPp as the PBX and SIPp
//! as the carrier, on loopback. A carrier answering 404 drives a caller ID over the error-rate
//! rule (suspended at the 10th call, not before; lifted after its resume time and hysteresis);
//! a burst to one callee hits admission's callee limit; operators impose and lift a step with
//! `trunkguard enforce` against the running gateway; `trunkguard report` gives the carrier the
//! counts of what was placed.
//!
//! Every process is bounded (SIPp `-timeout`, Rust-side deadlines, kill on drop) and a failure
//! prints the gateway log and the SIPp screens. Each scene places a few calls only.
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

const CALLEE: &str = "8613800138000";
const TRUNK: &str = "interop";

/// The error-rate rule made quick to cross and quick to clear: half the calls offered to the
/// carrier being invalid numbers, over at least 10 in 60 s, suspends the number for 5 s (and
/// until the rule has stayed clear for its 60 s window).
const ERROR_RATE_RULE: &str = r#"
[trunks.rules.error_rate]
threshold = 0.5
min_sample = 10
window = "60s"
step = "suspend_number"
resume_after = "5s"
"#;

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

/// Poll the log (every 250 ms, at most `limit`) until a row satisfies `pred`.
fn wait_for_log_row(
    scene: &Scene,
    limit: Duration,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let log = enforcement_log(scene);
        if let Some(row) = log.iter().find(|r| pred(r)) {
            return row.clone();
        }
        if Instant::now() >= deadline {
            scene.fail(format!(
                "no {what} in the enforcement log within {limit:?}; the log:\n{}",
                log.iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
        sleep(Duration::from_millis(250));
    }
}

fn field<'a>(row: &'a serde_json::Value, name: &str) -> &'a str {
    row.get(name).and_then(|v| v.as_str()).unwrap_or("")
}

fn time_field(scene: &Scene, row: &serde_json::Value, name: &str) -> DateTime<Utc> {
    let v = field(row, name);
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| scene.fail(format!("log field {name} = {v:?}: {e}")))
}

/// The anomalies stored for the trunk's number, read from the gateway's database.
fn anomalies(scene: &Scene) -> Vec<AnomalyRow> {
    let url = format!("sqlite://{}", scene.path().join("cdrs.db").display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| scene.fail(format!("tokio runtime: {e}")));
    let r = rt.block_on(async {
        let store = Store::connect(&url).await.map_err(|e| e.to_string())?;
        let rows = store
            .anomalies(
                Utc::now() - chrono::Duration::hours(1),
                Utc::now() + chrono::Duration::minutes(1),
                Some(TRUNK),
                Some(caller_digits()),
            )
            .await
            .map_err(|e| e.to_string());
        store.close().await;
        rows
    });
    scene.ok(r)
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

/// Ten calls the carrier answers 404: the error-rate rule fires at the 10th CDR (not before:
/// all ten reach the carrier), the next call presenting the number gets 403 and the log says
/// why (the rule, its anomaly and the 404 calls that show it); once the resume time has passed
/// and the rule has stayed clear for its window, the step lifts and the number calls again.
#[test]
fn invalid_numbers_suspend_the_caller_id_until_it_resumes() {
    let mut scene = Scene::start_with(TrunkLimits::default(), |_| ERROR_RATE_RULE.to_string());
    let c404 = carrier(
        &mut scene,
        "carrier-404",
        Scenario::File("carrier_uas_404.xml"),
        10,
    );
    let uac = pbx_calls(&mut scene, "pbx-404s", "pbx_uac_any.xml", 10, 10);
    let got_404 = count(&scene, uac, "404_Recv");
    scene.ensure(got_404 == 10, || {
        format!("{got_404} of the 10 calls got the carrier's 404")
    });
    // Calls 1–10 were all admitted: the rule did not fire one call early.
    carrier_reached(&mut scene, c404, 10);

    let impose = wait_for_log_row(&scene, Duration::from_secs(5), "impose row", |r| {
        field(r, "action") == "impose"
    });
    scene.ensure(
        field(&impose, "step") == "suspend_number"
            && field(&impose, "cause") == "rule"
            && field(&impose, "rule") == "error_rate"
            && field(&impose, "subject") == "caller_id"
            && field(&impose, "number") == caller_digits(),
        || format!("impose row: {impose}"),
    );
    let anomaly_id = field(&impose, "anomaly_id").to_string();

    // The next call presenting the number is refused at admission.
    let refused = pbx_calls(&mut scene, "pbx-refused", "pbx_uac_refused.xml", 1, 10);
    let got_403 = count(&scene, refused, "403_Recv");
    scene.ensure(got_403 == 1, || format!("{got_403} calls got 403"));

    let cdrs = scene.ok(scene.gateway.cdrs());
    let invalid: HashSet<&str> = cdrs
        .iter()
        .filter(|c| c.outcome.final_status == 404 && c.outcome.refusal_reason.is_none())
        .map(|c| c.attempt.id.as_str())
        .collect();
    scene.ensure(invalid.len() == 10, || {
        format!("expected 10 CDRs of 404 calls:\n{}", summary(&cdrs))
    });
    let stored = anomalies(&scene);
    let anomaly = stored
        .iter()
        .find(|a| a.id == anomaly_id)
        .unwrap_or_else(|| scene.fail(format!("anomaly {anomaly_id} not stored: {stored:#?}")));
    scene.ensure(
        anomaly.rule == "error_rate"
            && anomaly.sample == 10
            && anomaly.window_secs == 60
            && anomaly.observed >= 0.99
            && !anomaly.call_ids.is_empty()
            && anomaly
                .call_ids
                .iter()
                .all(|id| invalid.contains(id.as_str())),
        || format!("anomaly evidence: {anomaly:#?}\n404 calls: {invalid:?}"),
    );
    // One firing, one step: the refused call did not fire the rule again.
    let fired = stored.iter().filter(|a| a.rule == "error_rate").count();
    scene.ensure(fired == 1, || format!("error_rate fired {fired} times"));

    // Lifted once 5 s have passed and the rule has stayed clear for its 60 s window (the
    // refused call's CDR still saw it hold); the tick runs every second.
    let lift = wait_for_log_row(&scene, Duration::from_secs(90), "lift row", |r| {
        field(r, "action") == "lift"
    });
    scene.ensure(
        field(&lift, "cause") == "resumed"
            && lift.get("imposition") == impose.get("imposition")
            && field(&lift, "step") == "suspend_number",
        || format!("lift row: {lift}\nimpose row: {impose}"),
    );
    let held = time_field(&scene, &lift, "at") - time_field(&scene, &impose, "at");
    scene.ensure(held >= chrono::Duration::seconds(60), || {
        format!("lifted after {held}, before the rule's 60 s window of hysteresis")
    });

    // Admitted again: the call reaches the carrier and is answered.
    let uas = carrier(&mut scene, "carrier-uas", Scenario::Builtin("uas"), 1);
    let again = pbx_calls(&mut scene, "pbx-again", "pbx_uac_any.xml", 1, 10);
    let got_200 = count(&scene, again, "200_Recv");
    scene.ensure(got_200 == 1, || {
        format!("{got_200} calls answered after the lift")
    });
    carrier_reached(&mut scene, uas, 1);

    let cdrs = stop_and_read_cdrs(&mut scene);
    let n_refused = cdrs
        .iter()
        .filter(|c| refused_with(c, 403, "caller_id_suspended"))
        .count();
    let n_answered = cdrs
        .iter()
        .filter(|c| {
            c.outcome.disposition == Disposition::Answered && c.outcome.refusal_reason.is_none()
        })
        .count();
    scene.ensure(
        cdrs.len() == 12 && n_refused == 1 && n_answered == 1,
        || {
            format!(
                "expected 12 CDRs (10 × 404, 1 refused caller_id_suspended, 1 answered):\n{}",
                summary(&cdrs)
            )
        },
    );
    let newest = &cdrs[0];
    scene.ensure(newest.outcome.disposition == Disposition::Answered, || {
        format!("the last call is not the answered one:\n{}", summary(&cdrs))
    });
}

/// Three calls to one number at 10/s with the callee limit on (by default a 2nd call within
/// 60 s is refused): the first is answered, the other two get 480 at admission.
#[test]
fn a_burst_to_one_callee_hits_the_callee_limit() {
    let mut scene = Scene::start(TrunkLimits {
        callee_limit: true,
        ..TrunkLimits::default()
    });
    let uas = carrier(&mut scene, "carrier-uas", Scenario::Builtin("uas"), 1);
    let uac = pbx_calls(&mut scene, "pbx-burst", "pbx_uac_any.xml", 3, 10);
    let answered = count(&scene, uac, "200_Recv");
    let limited = count(&scene, uac, "480_Recv");
    scene.ensure(answered == 1 && limited == 2, || {
        format!("{answered} answered, {limited} got 480; expected 1 and 2")
    });
    carrier_reached(&mut scene, uas, 1);

    let cdrs = stop_and_read_cdrs(&mut scene);
    let n_limited = cdrs
        .iter()
        .filter(|c| refused_with(c, 480, "callee_frequency_limit"))
        .count();
    let n_answered = cdrs
        .iter()
        .filter(|c| c.outcome.disposition == Disposition::Answered)
        .count();
    scene.ensure(cdrs.len() == 3 && n_limited == 2 && n_answered == 1, || {
        format!(
            "expected 1 answered and 2 refused 480 callee_frequency_limit:\n{}",
            summary(&cdrs)
        )
    });
    let first = &cdrs[2];
    scene.ensure(first.outcome.disposition == Disposition::Answered, || {
        format!(
            "the first call is not the answered one:\n{}",
            summary(&cdrs)
        )
    });
}

/// An operator suspends the trunk's number with `trunkguard enforce impose` while the gateway
/// runs: the next call presenting it gets 403, `enforce list` shows the step, `enforce lift`
/// lifts it and the next call is admitted; the log holds both rows with the operator's name.
#[test]
fn an_operator_suspends_and_lifts_a_number_with_the_cli() {
    let mut scene = Scene::start(TrunkLimits::default());
    // An order about a trunk the gateway does not have is rejected, not "applied".
    let typo = cli(
        &scene,
        &[
            "enforce",
            "impose",
            "--trunk",
            "interopp",
            "--step",
            "suspend_trunk",
            "--operator",
            "alice",
            "--reason",
            "typo",
        ],
    );
    match typo {
        Err(e) => scene.ensure(e.contains("rejected: no trunk is named `interopp`"), || {
            format!("the order about an unknown trunk failed otherwise: {e}")
        }),
        Ok(out) => scene.fail(format!("an order about an unknown trunk succeeded: {out}")),
    }
    let r = cli(
        &scene,
        &[
            "enforce",
            "impose",
            "--trunk",
            TRUNK,
            "--number",
            TRUNK_NUMBER,
            "--step",
            "suspend_number",
            "--operator",
            "alice",
            "--reason",
            "carrier request",
        ],
    );
    let out = scene.ok(r);
    scene.ensure(out.contains(" applied: imposed suspend_number"), || {
        format!("impose printed: {out}")
    });

    let refused = pbx_calls(&mut scene, "pbx-refused", "pbx_uac_refused.xml", 1, 10);
    let got_403 = count(&scene, refused, "403_Recv");
    scene.ensure(got_403 == 1, || format!("{got_403} calls got 403"));

    let list = scene.ok(cli(&scene, &["enforce", "list"]));
    scene.ensure(
        list.lines().count() == 1
            && list.contains("\tsuspend_number\t")
            && list.contains(&format!("\t{TRUNK}\t{}\t", caller_digits()))
            && list.contains("carrier request"),
        || format!("enforce list printed: {list}"),
    );

    let r = cli(
        &scene,
        &[
            "enforce",
            "lift",
            "--trunk",
            TRUNK,
            "--number",
            TRUNK_NUMBER,
            "--operator",
            "alice",
            "--reason",
            "carrier agreed",
        ],
    );
    let out = scene.ok(r);
    scene.ensure(out.contains(" applied: lifted suspend_number"), || {
        format!("lift printed: {out}")
    });
    let list = scene.ok(cli(&scene, &["enforce", "list"]));
    scene.ensure(list.trim() == "no step in force", || {
        format!("enforce list after the lift printed: {list}")
    });

    let uas = carrier(&mut scene, "carrier-uas", Scenario::Builtin("uas"), 1);
    let again = pbx_calls(&mut scene, "pbx-again", "pbx_uac_any.xml", 1, 10);
    let got_200 = count(&scene, again, "200_Recv");
    scene.ensure(got_200 == 1, || {
        format!("{got_200} calls answered after the lift")
    });
    carrier_reached(&mut scene, uas, 1);

    let log = enforcement_log(&scene);
    let rows: Vec<(&str, &str, &str, &str)> = log
        .iter()
        .map(|r| {
            (
                field(r, "action"),
                field(r, "cause"),
                field(r, "operator"),
                field(r, "step"),
            )
        })
        .collect();
    scene.ensure(
        rows == [
            ("impose", "operator", "alice", "suspend_number"),
            ("lift", "operator", "alice", "suspend_number"),
        ] && log[0].get("imposition") == log[1].get("imposition")
            && field(&log[0], "reason") == "carrier request"
            && field(&log[1], "reason") == "carrier agreed",
        || format!("log: {log:#?}"),
    );

    let cdrs = stop_and_read_cdrs(&mut scene);
    scene.ensure(
        cdrs.len() == 2
            && refused_with(&cdrs[1], 403, "caller_id_suspended")
            && cdrs[0].outcome.disposition == Disposition::Answered,
        || {
            format!(
                "expected a refused 403 caller_id_suspended, then an answered call:\n{}",
                summary(&cdrs)
            )
        },
    );
}

/// After three answered calls and two the carrier answers 404, `trunkguard report` (daily,
/// CSV) prints the stable header, a trunk row and a caller-ID row with those counts.
#[test]
fn the_report_counts_what_was_placed() {
    let mut scene = Scene::start(TrunkLimits::default());
    let uas = carrier(&mut scene, "carrier-uas", Scenario::Builtin("uas"), 3);
    pbx_calls(&mut scene, "pbx-answered", "pbx_uac.xml", 3, 10);
    carrier_reached(&mut scene, uas, 3);
    let c404 = carrier(
        &mut scene,
        "carrier-404",
        Scenario::File("carrier_uas_404.xml"),
        2,
    );
    pbx_calls(&mut scene, "pbx-404s", "pbx_uac_any.xml", 2, 10);
    carrier_reached(&mut scene, c404, 2);
    // A stop flushes every CDR (and the buckets in the same transactions).
    let cdrs = stop_and_read_cdrs(&mut scene);
    scene.ensure(cdrs.len() == 5, || format!("CDRs:\n{}", summary(&cdrs)));

    let r = cli(
        &scene,
        &[
            "report",
            "--from",
            &today(),
            "--to",
            &tomorrow(),
            "--bucket",
            "day",
            "--format",
            "csv",
        ],
    );
    let out = scene.ok(r);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    scene.ensure(header == trunkguard::monitor::report::COLUMNS, || {
        format!("report header: {header:?}")
    });
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| scene.fail(format!("no column {name}")))
    };
    let (subject, trunk, number) = (col("subject"), col("trunk"), col("number"));
    let (attempts, answered, invalid) = (col("attempts"), col("answered"), col("invalid_number"));
    let (bucket, asr) = (col("bucket_start"), col("asr"));
    let find = |kind: &str, n: &str| {
        rows.iter()
            .find(|r| r[subject] == kind && r[trunk] == TRUNK && r[number] == n)
            .unwrap_or_else(|| scene.fail(format!("no {kind} row for {n:?} in:\n{out}")))
    };
    for row in [find("trunk", ""), find("caller_id", caller_digits())] {
        scene.ensure(
            row[attempts] == "5"
                && row[answered] == "3"
                && row[invalid] == "2"
                && row[asr] == "0.6000"
                && row[bucket] == format!("{}T00:00:00Z", today()),
            || format!("row {row:?} in:\n{out}"),
        );
    }
    scene.ensure(rows.len() == 2, || {
        format!("expected a trunk row and a caller_id row:\n{out}")
    });
}
