//! The carrier's eyes, in process: the persisted KPI buckets and the steps in force survive a
//! restart on the same database; complaints imported by the CLI function feed the running
//! gateway's rules and are linked to their calls; the concurrency counters agree with the live
//! calls after calls of every ending.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use trunkguard::model::Step;
use trunkguard::model::Subject;
use trunkguard::model::{Attempt, Cdr, Disposition, Outcome};
use trunkguard::model::{EndReason, RefusalReason};
use trunkguard::monitor::enforcement::Cause;
use trunkguard::monitor::report::{kpi_report, Bucket, ReportQuery, ReportRow};
use trunkguard::store::Store;

/// A third customer (complaints need three different complainants).
const CALLEE3: &str = "+8613900000003";

/// Numbers as the gateway stores them.
fn digits(n: &str) -> String {
    n.trim_start_matches('+').to_string()
}

/// Wait (bounded) until the monitor has seen `n` stored CDRs: by then the KPI buckets that
/// count them are committed (same transaction as the CDRs).
async fn wait_cdrs_seen(h: &Harness, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let seen = h.gw.monitor().figures().cdrs_seen;
        if seen >= n {
            assert_eq!(seen, n, "the monitor saw more CDRs than calls were placed");
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("the monitor saw {seen} CDRs within 5 s, expected {n}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An answered call from `from` to `to`, hung up by the PBX.
async fn answered_call(h: &mut Harness, from: &str, to: &str) {
    let invite = h.pbx.invite(h.inside(), &InviteSpec::new(from, to)).await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    let tag = token("ct");
    h.carrier
        .reply_with(&c_invite, 200, Some(&tag), &[], Some(&sdp("sendrecv")))
        .await;
    let ok = h.pbx.expect_response_to("INVITE", 200).await;
    let mut pbx = Dialog::uac(&invite, &ok);
    h.pbx.ack(&pbx, invite.cseq).await;
    h.carrier.expect_request("ACK").await;
    h.hang_up_from_pbx(&mut pbx).await;
}

/// A call the carrier answers with `code` (a failure) before any ringing.
async fn failed_call(h: &mut Harness, from: &str, to: &str, code: u16) {
    let invite = h.pbx.invite(h.inside(), &InviteSpec::new(from, to)).await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, code, Some("fl")).await;
    h.carrier.expect_request("ACK").await;
    let resp = h.pbx.expect_response_to("INVITE", code).await;
    h.pbx.ack_non2xx(&invite, &resp).await;
}

/// A call the gateway refuses with `code`; returns the reason phrase.
async fn refused_call(h: &mut Harness, from: &str, to: &str, code: u16) -> String {
    let invite = h.pbx.invite(h.inside(), &InviteSpec::new(from, to)).await;
    h.pbx.expect_response(100).await;
    let resp = h.pbx.expect_response_to("INVITE", code).await;
    h.pbx.ack_non2xx(&invite, &resp).await;
    resp.reason().to_string()
}

/// Today's KPI rows (a period wide enough for a test running across midnight).
async fn report(store: &Store, bucket: Bucket, kind: Option<&str>) -> Vec<ReportRow> {
    let now = Utc::now();
    let q = ReportQuery {
        from: now - chrono::Duration::days(2),
        to: now + chrono::Duration::days(2),
        trunk: None,
        number: None,
        kind: kind.map(str::to_string),
        bucket,
    };
    kpi_report(store, &q).await.expect("the report reads")
}

/// Sum of a column over the rows of one subject.
fn total(rows: &[ReportRow], subject: &str, number: &str, f: fn(&ReportRow) -> u64) -> u64 {
    rows.iter()
        .filter(|r| r.subject == subject && r.number == number)
        .map(f)
        .sum()
}

/// Place calls, stop, restart on the same database file: the persisted buckets give the same
/// report (hourly and daily), one more call adds exactly one attempt, and a step imposed before
/// the restart is still in force after it (admission refuses, `Restrictions` shows it).
#[tokio::test]
async fn a_restart_keeps_the_report_and_the_steps_in_force() {
    let db_dir = tempfile::tempdir().expect("tempdir");
    let url = format!(
        "database.url = \"sqlite://{}/kept.db\"",
        db_dir.path().display()
    );
    let tweaks = [url.as_str()];
    let suspended = Subject::caller_id(TRUNK, &digits(CALLER));

    let mut h = start_gateway(&tweaks).await;
    answered_call(&mut h, CALLER, CALLEE).await;
    answered_call(&mut h, CALLER, CALLEE2).await;
    failed_call(&mut h, CALLER, CALLEE, 404).await;
    failed_call(&mut h, CALLER2, CALLEE2, 486).await;
    wait_cdrs_seen(&h, 4).await;
    let actions =
        h.gw.monitor()
            .impose(
                suspended.clone(),
                Step::SuspendNumber,
                None,
                "alice",
                "carrier request",
            )
            .await
            .expect("the step is imposed");
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(
        refused_call(&mut h, CALLER, CALLEE, 403).await,
        "Caller ID Suspended"
    );
    wait_cdrs_seen(&h, 5).await;
    let store = h.gw.store().clone();
    let old_carrier = h.carrier.addr().to_string();
    h.assert_idle().await;
    let before: Vec<Cdr> = h.shutdown().await;
    assert_eq!(before.len(), 5);
    let hours_before = report(&store, Bucket::Hour, None).await;
    let days_before = report(&store, Bucket::Day, None).await;
    let callees_before = report(&store, Bucket::Day, Some("callee")).await;
    let caller = digits(CALLER);
    assert_eq!(total(&days_before, "trunk", "", |r| r.attempts), 5);
    assert_eq!(total(&days_before, "trunk", "", |r| r.answered), 2);
    assert_eq!(total(&days_before, "trunk", "", |r| r.invalid_number), 1);
    assert_eq!(total(&days_before, "trunk", "", |r| r.busy), 1);
    assert_eq!(
        total(&days_before, "trunk", "", |r| r.refused_by_gateway),
        1
    );
    assert_eq!(total(&days_before, "caller_id", &caller, |r| r.attempts), 4);
    assert_eq!(
        total(&days_before, "caller_id", &digits(CALLER2), |r| r.attempts),
        1
    );

    // The same database, a new process's worth of state.
    let mut h = start_gateway(&tweaks).await;
    let store = h.gw.store().clone();
    // The trunks are the database's (the file's only seed an empty one): the stored trunk still
    // names the carrier's old address. The test's carrier listens on a new port, so an admin
    // updates the stored trunk, which is applied at once.
    let stored = h.gw.trunks().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].carrier[0].to_string(), old_carrier);
    assert_ne!(old_carrier, h.carrier.addr().to_string());
    let definition = h.config.trunk_sources[0].clone();
    h.gw.put_trunk(&definition, "test admin")
        .await
        .expect("the trunk is updated");
    assert_eq!(h.gw.trunks().await[0].carrier[0], h.carrier.addr());
    assert_eq!(report(&store, Bucket::Hour, None).await, hours_before);
    assert_eq!(report(&store, Bucket::Day, None).await, days_before);
    assert_eq!(
        report(&store, Bucket::Day, Some("callee")).await,
        callees_before
    );
    assert_eq!(
        h.gw.policy().restrictions().step_of(&suspended),
        Some(Step::SuspendNumber),
        "the suspension is back in admission before the first call"
    );
    let in_force = h.gw.monitor().in_force().await.expect("monitor runs");
    assert!(
        in_force.iter().any(|i| i.subject == suspended
            && i.step == Step::SuspendNumber
            && matches!(&i.cause, Cause::Operator { name, .. } if name == "alice")),
        "{in_force:?}"
    );
    assert_eq!(
        refused_call(&mut h, CALLER, CALLEE, 403).await,
        "Caller ID Suspended"
    );
    wait_cdrs_seen(&h, 1).await;
    let days_after = report(&store, Bucket::Day, None).await;
    assert_eq!(total(&days_after, "trunk", "", |r| r.attempts), 6);
    assert_eq!(total(&days_after, "caller_id", &caller, |r| r.attempts), 5);
    assert_eq!(
        total(&days_after, "caller_id", &caller, |r| r.refused_by_gateway),
        2
    );
    assert_eq!(total(&days_after, "trunk", "", |r| r.answered), 2);

    // Lifted after the restart: the number calls again.
    let lifted =
        h.gw.monitor()
            .lift(suspended.clone(), None, "alice", "carrier agreed")
            .await
            .expect("lifted");
    assert_eq!(lifted.len(), 1, "{lifted:?}");
    assert_eq!(h.gw.policy().restrictions().step_of(&suspended), None);
    answered_call(&mut h, CALLER, CALLEE).await;
    wait_cdrs_seen(&h, 2).await;
    let cdrs = h.finish().await;
    let last = cdrs.last().expect("CDRs");
    assert_eq!(last.outcome.disposition, Disposition::Answered, "{last:#?}");
    let days_end = report(&store, Bucket::Day, None).await;
    assert_eq!(total(&days_end, "trunk", "", |r| r.attempts), 7);
    assert_eq!(total(&days_end, "trunk", "", |r| r.answered), 3);

    // The log holds the operator's impose (before the restart) and lift (after it).
    let log = store
        .enforcement_log(Utc::now() - chrono::Duration::hours(1), Utc::now())
        .await
        .expect("log");
    let rows: Vec<(&str, &str, Option<&str>)> = log
        .iter()
        .map(|e| {
            (
                e.entry.action.as_str(),
                e.entry.cause.as_str(),
                e.entry.operator.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("impose", "operator", Some("alice")),
            ("lift", "operator", Some("alice"))
        ]
    );
    assert_eq!(log[0].entry.imposition, log[1].entry.imposition);
}

/// Three complaints from different complainants about one caller ID, imported with the CLI's
/// function while the gateway runs: the complaint_batch rule fires, the number is suspended,
/// the next call presenting it gets 403, and each complaint is linked to the call it is about.
#[tokio::test]
async fn imported_complaints_suspend_the_number_and_are_linked_to_the_calls() {
    let mut h = start_gateway(&[]).await;
    for callee in [CALLEE, CALLEE2, CALLEE3] {
        answered_call(&mut h, CALLER, callee).await;
    }
    // Another caller ID's call to a complainant: not linked to a complaint about CALLER.
    answered_call(&mut h, CALLER2, CALLEE).await;
    wait_cdrs_seen(&h, 4).await;
    let store = h.gw.store().clone();
    let cdrs = store.recent_cdrs(100).await.expect("CDRs");
    let call_to = |callee: &str| -> String {
        cdrs.iter()
            .find(|c| {
                c.attempt.caller.as_deref() == Some(digits(CALLER).as_str())
                    && c.attempt.callee.as_deref() == Some(digits(callee).as_str())
            })
            .map(|c| c.attempt.id.clone())
            .unwrap_or_else(|| panic!("no CDR of a call to {callee}: {cdrs:#?}"))
    };

    let now = Utc::now().to_rfc3339();
    let csv = format!(
        "complainant,caller_id,time,category,source,text\n\
         {CALLEE},{CALLER},{now},harassment,carrier,called at dinner\n\
         {CALLEE2},{CALLER},{now},harassment,regulator,\n\
         {CALLEE3},{CALLER},{now},other,carrier,\"rude, twice\"\n"
    );
    let file = h.dir.path().join("complaints.csv");
    std::fs::write(&file, csv).expect("write the CSV");
    let mut out = Vec::new();
    let done = trunkguard::cli::complaints::import(&store, &h.config.trunks, &file, 7, &mut out)
        .await
        .expect("import");
    assert_eq!(
        (done.stored, done.linked_calls, done.unmatched),
        (3, 3, 0),
        "{}",
        String::from_utf8_lossy(&out)
    );

    // The running monitor picks them up at its next poll (within a second); ask now.
    h.gw.monitor().poll().await.expect("monitor runs");
    let f = h.gw.monitor().figures();
    assert_eq!(f.complaints_seen, 3, "{f:?}");
    let suspended = Subject::caller_id(TRUNK, &digits(CALLER));
    let in_force = h.gw.monitor().in_force().await.expect("monitor runs");
    let step = in_force
        .iter()
        .find(|i| i.subject == suspended)
        .unwrap_or_else(|| panic!("nothing in force on {suspended}: {in_force:?}"));
    assert_eq!(step.step, Step::SuspendNumber);
    let Cause::Rule {
        rule, anomaly_id, ..
    } = &step.cause
    else {
        panic!("not a rule's step: {step:?}");
    };
    assert_eq!(rule.code(), "complaint_batch");
    let anomalies = store
        .anomalies(
            Utc::now() - chrono::Duration::hours(1),
            Utc::now() + chrono::Duration::minutes(1),
            Some(TRUNK),
            Some(&digits(CALLER)),
        )
        .await
        .expect("anomalies");
    let anomaly = anomalies
        .iter()
        .find(|a| a.id == anomaly_id.to_string())
        .unwrap_or_else(|| panic!("anomaly {anomaly_id} not stored: {anomalies:#?}"));
    assert_eq!(anomaly.rule, "complaint_batch");
    assert_eq!(anomaly.sample, 3, "{anomaly:#?}");

    assert_eq!(
        refused_call(&mut h, CALLER, CALLEE, 403).await,
        "Caller ID Suspended"
    );
    // The other number of the trunk still calls.
    answered_call(&mut h, CALLER2, CALLEE2).await;
    wait_cdrs_seen(&h, 6).await;

    let complaints = store
        .complaints(
            Utc::now() - chrono::Duration::hours(1),
            Utc::now() + chrono::Duration::hours(1),
            Some(&digits(CALLER)),
        )
        .await
        .expect("complaints");
    assert_eq!(complaints.len(), 3);
    for c in &complaints {
        let complainant = format!("+{}", c.complaint.complainant);
        assert_eq!(
            c.cdr_ids,
            vec![call_to(&complainant)],
            "complaint of {complainant} linked to its call only"
        );
    }
    // Importing the same file again adds nothing and fires nothing.
    let again = trunkguard::cli::complaints::import(&store, &h.config.trunks, &file, 7, &mut out)
        .await
        .expect("import");
    assert_eq!((again.stored, again.already_stored), (0, 3));
    h.gw.monitor().poll().await.expect("monitor runs");
    assert_eq!(h.gw.monitor().figures().complaints_seen, 3);

    let cdrs = h.finish().await;
    let refused = &cdrs[4];
    assert_eq!(
        refused.outcome.refusal_reason,
        Some(RefusalReason::CallerIdSuspended),
        "{refused:#?}"
    );
    let days = report(&store, Bucket::Day, None).await;
    assert_eq!(
        total(&days, "caller_id", &digits(CALLER), |r| r.complaints),
        3
    );
    assert_eq!(total(&days, "trunk", "", |r| r.complaints), 3);
}

/// The concurrency counters agree with the live calls during a call and after calls of every
/// ending: answered and hung up by either side, cancelled, failed at the carrier, refused.
#[tokio::test]
async fn reconciliation_finds_no_drift_after_calls_of_every_ending() {
    let mut h = start_gateway(&[]).await;
    let monitor = h.gw.monitor().clone();

    // Answered, the PBX hangs up.
    answered_call(&mut h, CALLER, CALLEE).await;

    // Answered, the carrier hangs up; reconciled while the call is up.
    let mut call = h.establish().await;
    assert_eq!(monitor.reconcile().await.expect("monitor runs"), 0);
    assert_eq!(h.gw.policy().live(TRUNK).expect("trunk").active, 1);
    h.carrier.bye(&mut call.carrier).await;
    let bye = h.pbx.expect_request("BYE").await;
    h.pbx.reply(&bye, 200, None).await;
    h.carrier.expect_response_to("BYE", 200).await;

    // Cancelled while ringing.
    let invite = h.pbx_invite().await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    h.carrier.reply(&c_invite, 180, Some("cx")).await;
    h.pbx.expect_response_to("INVITE", 180).await;
    assert_eq!(monitor.reconcile().await.expect("monitor runs"), 0);
    h.pbx.cancel(&invite).await;
    h.pbx.expect_response_to("CANCEL", 200).await;
    let terminated = h.pbx.expect_response_to("INVITE", 487).await;
    h.pbx.ack_non2xx(&invite, &terminated).await;
    let cancel = h.carrier.expect_request("CANCEL").await;
    h.carrier.reply(&cancel, 200, None).await;
    // The call has ended (its lease is free) but its task lingers for the carrier's final
    // response to the CANCELled INVITE: no drift either.
    assert_eq!(h.gw.policy().live(TRUNK).expect("trunk").active, 0);
    assert!(!h.gw.registry().is_empty(), "the cancelled call lingers");
    assert_eq!(monitor.reconcile().await.expect("monitor runs"), 0);
    h.carrier.reply(&c_invite, 487, Some("cx")).await;
    h.carrier.expect_request("ACK").await;

    // Failures at the carrier.
    failed_call(&mut h, CALLER, CALLEE, 404).await;
    failed_call(&mut h, CALLER2, CALLEE2, 486).await;
    failed_call(&mut h, CALLER, CALLEE2, 503).await;

    // Refused at admission.
    refused_call(&mut h, "+861099999999", CALLEE, 403).await;

    wait_cdrs_seen(&h, 7).await;
    h.assert_idle().await;
    assert_eq!(monitor.reconcile().await.expect("monitor runs"), 0);
    let f = monitor.figures();
    assert_eq!(f.concurrency_drift, 0, "{f:?}");
    assert_eq!(f.cdrs_seen, 7, "{f:?}");
    assert!(f.reconciliations >= 3, "{f:?}");
    assert_eq!(f.unsaved, 0, "{f:?}");
    let cdrs = h.finish().await;
    assert_eq!(cdrs.len(), 7);
}

/// The final CDR of an answered call on `TRUNK` from `CALLER` that ended a moment ago.
fn ended_call(id: &str, now: chrono::DateTime<Utc>) -> Cdr {
    let invite_at = now - chrono::Duration::seconds(20);
    let answer_at = invite_at + chrono::Duration::seconds(2);
    Cdr {
        attempt: Attempt {
            id: id.to_string(),
            inside_call_id: Some(format!("{id}@pbx")),
            outside_call_id: Some(format!("{id}-out")),
            trunk: Some(TRUNK.to_string()),
            direction: trunkguard::model::Direction::Outbound,
            source: format!("{PBX_IP}:5060"),
            caller: Some(digits(CALLER)),
            callee: Some(digits(CALLEE)),
            presented_from: Some(CALLER.to_string()),
            pai: None,
            invite_at,
            ringing_at: None,
            answer_at: Some(answer_at),
            trunk_active: Some(1),
            caller_active: Some(1),
            node: None,
        },
        outcome: Outcome {
            end_at: now,
            talk_ms: Cdr::talk_ms_between(Some(answer_at), now),
            final_status: 200,
            final_reason: "OK".to_string(),
            q850_cause: Some(16),
            hangup_side: Some(trunkguard::model::HangupSide::Inside),
            disposition: Disposition::Answered,
            end_reason: EndReason::NormalClearing,
            refusal_reason: None,
            declined_media: Vec::new(),
        },
        media: Vec::new(),
        recording: None,
        dtmf: Vec::new(),
        recording_pauses: Vec::new(),
    }
}

/// The monitor's figures after a start on a database with two spooled CDRs (calls that ended
/// while the database was down) and one journaled call (cut off by a crash), with at most
/// `per_hour` calls an hour allowed from `CALLER`.
async fn start_after_outage_and_crash(
    per_hour: f64,
) -> trunkguard::monitor::service::MonitorFigures {
    use trunkguard::monitor::cdr_spool::CdrSpool;
    use trunkguard::store::CdrWrite;
    let db_dir = tempfile::tempdir().expect("tempdir");
    let db_url = format!("sqlite://{}/crashed.db", db_dir.path().display());
    let now = Utc::now();
    let mut spool = CdrSpool::open(&db_dir.path().join("spool"), 1 << 20).expect("spool");
    let spooled: Vec<_> = (0..2)
        .map(|i| CdrWrite::Cdr(ended_call(&format!("spooled-{i}"), now)))
        .collect();
    spool.append(&spooled).expect("append");
    drop(spool);
    let store = Store::connect(&db_url).await.expect("store");
    let mut cut = ended_call("cut-0", now);
    cut.outcome.end_reason = EndReason::InProgress;
    let journal = CdrWrite::Journal {
        cdr: cut,
        recording_part: None,
        dialogs: None,
        at: now - chrono::Duration::seconds(1),
    };
    store.apply_cdr_writes(&[journal]).await.expect("journal");
    store.close().await;

    let url = format!("database.url = \"{db_url}\"");
    let rules = format!(
        "trunk.rules = {{ over_frequent_callee = {{ enabled = false }}, \
         over_frequent_number = {{ threshold = {per_hour:.1}, min_sample = 1, window = \"1h\", \
         daily_threshold = 1000.0 }} }}"
    );
    let h = start_gateway(&[url.as_str(), rules.as_str()]).await;
    // The spooled CDRs are stored before the monitor starts (it reads them back); the crashed
    // call's CDR is stored after, and reaches it through the writer's feed.
    wait_cdrs_seen(&h, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let figures = h.gw.monitor().figures();
    let cdrs = h.shutdown().await;
    assert_eq!(cdrs.len(), 3, "{cdrs:#?}");
    figures
}

/// CDRs stored while the gateway starts are counted once by the monitor — neither lost nor
/// counted both from the database when it refills its windows and from the CDR writer's feed.
/// Three calls: over a limit of two an hour, within a limit of three.
#[tokio::test]
async fn cdrs_stored_while_the_gateway_starts_are_counted_once() {
    let over = start_after_outage_and_crash(2.0).await;
    assert_eq!(over.anomalies, 1, "all three calls counted: {over:?}");
    let within = start_after_outage_and_crash(3.0).await;
    assert_eq!(within.anomalies, 0, "none counted twice: {within:?}");
}
