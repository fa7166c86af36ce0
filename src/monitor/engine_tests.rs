//! The monitor with a fake clock and synthetic CDRs: each rule fires exactly when its threshold
//! is crossed with its minimum sample. The ladder (steps imposed, escalated, lifted, restored)
//! is tested in `engine_ladder_tests.rs`, with the helpers of this file.

use crate::model::RefusalReason;
use chrono::{DateTime, Duration, Utc};

use super::enforcement::{Cause, EnforcementAction};
use super::kpi::Subject;
use super::rules::{Complaint, ComplaintCategory, ComplaintSource, LiveCallView};
use super::testkit::{cdr, secs, t0, Outcome, CALLER, CALLER2, TRUNK};
use super::{Monitor, MonitorLimits, MonitorOutput};
use crate::config::{RuleId, RuleWindow, TrunkConfig};
use crate::model::Direction;
use crate::model::Step;

#[path = "engine_ladder_tests.rs"]
mod ladder;

fn trunk_with(rules: &str) -> TrunkConfig {
    let text = format!(
        "[sip]\ninside = \"127.0.0.1:5060\"\noutside = \"127.0.0.1:5070\"\n\
         [[trunks]]\nname = \"{TRUNK}\"\npbx = [\"10.0.0.0/24\"]\ncarrier = \"192.0.2.1:5060\"\n\
         inbound_to = \"10.0.0.5:5060\"\nnumbers = [\"+{CALLER}\", \"+{CALLER2}\"]\n{rules}"
    );
    let c = crate::config::Config::from_toml(&text).unwrap();
    c.trunks[0].clone()
}

fn monitor(rules: &str) -> Monitor {
    Monitor::new(&[trunk_with(rules)], MonitorLimits::default())
}

fn caller() -> Subject {
    Subject::caller_id(TRUNK, CALLER)
}

/// Feed one attempt ending at `t0 + n s` to callee `callee`.
fn feed(m: &mut Monitor, n: i64, callee: &str, outcome: Outcome) -> MonitorOutput {
    let at = t0() + secs(n);
    m.on_cdr(&cdr(&format!("call{n}"), CALLER, callee, at, outcome), at)
}

fn fired(o: &MonitorOutput, rule: RuleId) -> bool {
    o.anomalies.iter().any(|a| a.rule == rule)
}

fn imposed(o: &MonitorOutput) -> Vec<(Subject, Step, Option<DateTime<Utc>>)> {
    o.actions
        .iter()
        .filter_map(|a| match a {
            EnforcementAction::Impose(i) => Some((i.subject.clone(), i.step, i.until)),
            _ => None,
        })
        .collect()
}

#[test]
fn error_rate_fires_at_the_crossing_with_its_sample_not_one_call_earlier() {
    // 100 calls in 100 s would also be over-frequent: that rule is tested on its own.
    let mut m = monitor("[trunks.rules.over_frequent_number]\nenabled = false\n");
    // 89 answered, then 10 invalid: 99 calls at 10.1 %, but the sample is one short.
    for n in 0..89 {
        let o = feed(&mut m, n, &format!("33{n}"), Outcome::Answered(30));
        assert!(o.is_empty(), "{o:?}");
    }
    for n in 89..99 {
        let o = feed(&mut m, n, &format!("33{n}"), Outcome::Status(404, false));
        assert!(!fired(&o, RuleId::ErrorRate), "fired at call {}", n + 1);
    }
    let o = feed(&mut m, 99, "3399", Outcome::Status(404, false));
    let a = o
        .anomalies
        .iter()
        .find(|a| a.rule == RuleId::ErrorRate)
        .unwrap();
    assert_eq!(
        (a.sample, a.threshold, a.window),
        (100, 0.10, RuleWindow::Hour)
    );
    assert!((a.observed - 0.11).abs() < 1e-9);
    assert_eq!(a.subject, caller());
    assert_eq!(
        a.examples,
        vec!["call95", "call96", "call97", "call98", "call99"]
    );
    let at = t0() + secs(99);
    assert_eq!(
        imposed(&o),
        vec![(
            caller(),
            Step::SuspendNumber,
            Some(at + Duration::minutes(30))
        )]
    );
    match &o.actions[0] {
        EnforcementAction::Impose(i) => {
            assert_eq!(
                i.cause,
                Cause::Rule {
                    rule: RuleId::ErrorRate,
                    anomaly_id: a.id,
                    rule_subject: caller(),
                    escalated_from: None,
                }
            );
        }
        other => panic!("{other:?}"),
    }
    // While in force, further failing calls do not fire again.
    for n in 100..110 {
        assert!(feed(&mut m, n, &format!("33{n}"), Outcome::Status(404, false)).is_empty());
    }
}

#[test]
fn exactly_at_the_threshold_does_not_fire() {
    let mut m = monitor("");
    for n in 0..90 {
        feed(&mut m, n, &format!("33{n}"), Outcome::Answered(30));
    }
    for n in 90..100 {
        assert!(!fired(
            &feed(&mut m, n, &format!("33{n}"), Outcome::Status(484, false)),
            RuleId::ErrorRate
        ));
    }
}

#[test]
fn over_frequent_number_hourly_and_daily_limits() {
    let mut m = monitor("");
    for n in 0..60 {
        assert!(!fired(
            &feed(&mut m, n, &format!("33{n}"), Outcome::Answered(30)),
            RuleId::OverFrequentNumber
        ));
    }
    // Refused attempts were never offered: they do not count.
    let at = t0() + secs(60);
    let refused = cdr(
        "r",
        CALLER,
        "339",
        at,
        Outcome::Refused(RefusalReason::CalleeFrequencyLimit),
    );
    assert!(!fired(&m.on_cdr(&refused, at), RuleId::OverFrequentNumber));
    let o = feed(&mut m, 61, "3361", Outcome::Answered(30));
    let a = &o.anomalies[0];
    assert_eq!(
        (a.rule, a.observed, a.window),
        (RuleId::OverFrequentNumber, 61.0, RuleWindow::Hour)
    );
    assert_eq!(imposed(&o)[0].1, Step::Throttle);

    let mut m = monitor("[trunks.rules.over_frequent_number]\nthreshold = 2\nwindow = \"60s\"\ndaily_threshold = 3\n");
    for n in [0, 120, 240] {
        assert!(feed(&mut m, n, "331", Outcome::Answered(30)).is_empty());
    }
    let o = feed(&mut m, 360, "331", Outcome::Answered(30));
    let a = &o.anomalies[0];
    assert_eq!(
        (a.observed, a.threshold, a.window),
        (4.0, 3.0, RuleWindow::Day)
    );
}

#[test]
fn over_frequent_callee_alerts_and_its_window_is_exact() {
    let mut m = monitor("");
    let callee = Subject::callee(TRUNK, "3377");
    assert!(feed(&mut m, 0, "3377", Outcome::Answered(30)).is_empty());
    // The CDR's INVITE time counts: Answered(30) started 40 s before its end.
    let o = feed(&mut m, 60, "3377", Outcome::Answered(30));
    assert!(o.is_empty(), "the first attempt is exactly 60 s old: {o:?}");
    let o = feed(&mut m, 119, "3377", Outcome::Answered(30));
    let a = &o.anomalies[0];
    assert_eq!(
        (a.rule, &a.subject, a.observed, a.window),
        (RuleId::OverFrequentCallee, &callee, 2.0, RuleWindow::Minute)
    );
    assert_eq!(
        imposed(&o),
        vec![(
            callee,
            Step::Alert,
            Some(t0() + secs(119 - 40) + Duration::hours(1))
        )]
    );
    // Daily limit: four attempts 2 min apart.
    let mut m = monitor("");
    for n in 0..3 {
        assert!(feed(&mut m, n * 120, "3388", Outcome::Status(486, true)).is_empty());
    }
    let o = feed(&mut m, 360, "3388", Outcome::Status(486, true));
    assert_eq!(
        (o.anomalies[0].observed, o.anomalies[0].window),
        (4.0, RuleWindow::Day)
    );
}

#[test]
fn answer_rate_short_calls_and_network_errors() {
    let mut m = monitor("");
    for n in 0..80 {
        feed(&mut m, n, "331", Outcome::Status(486, true));
    }
    for n in 80..99 {
        assert!(!fired(
            &feed(&mut m, n, "331", Outcome::Answered(30)),
            RuleId::LowAnswerRate
        ));
    }
    let o = feed(&mut m, 99, "331", Outcome::Status(486, true));
    let a = o
        .anomalies
        .iter()
        .find(|a| a.rule == RuleId::LowAnswerRate)
        .unwrap();
    assert_eq!((a.sample, a.observed), (100, 0.19));

    let mut m = monitor("");
    for n in 0..59 {
        feed(&mut m, n, "331", Outcome::Answered(60));
    }
    for n in 59..99 {
        assert!(!fired(
            &feed(&mut m, n, "331", Outcome::Answered(5)),
            RuleId::ShortCalls
        ));
    }
    let o = feed(&mut m, 99, "331", Outcome::Answered(5));
    let a = o
        .anomalies
        .iter()
        .find(|a| a.rule == RuleId::ShortCalls)
        .unwrap();
    assert_eq!(
        (a.sample, a.observed, a.window),
        (100, 0.41, RuleWindow::Day)
    );

    let mut m = monitor("");
    for n in 0..94 {
        feed(&mut m, n, "331", Outcome::Answered(60));
    }
    for n in 94..99 {
        assert!(!fired(
            &feed(&mut m, n, "331", Outcome::Status(503, false)),
            RuleId::NetworkErrors
        ));
    }
    let o = feed(&mut m, 99, "331", Outcome::Status(503, false));
    let a = o
        .anomalies
        .iter()
        .find(|a| a.rule == RuleId::NetworkErrors)
        .unwrap();
    assert_eq!((&a.subject, a.sample), (&Subject::trunk_of(TRUNK), 100));
    assert_eq!(
        imposed(&o)[0],
        (
            Subject::trunk_of(TRUNK),
            Step::Alert,
            Some(t0() + secs(99) + Duration::minutes(30))
        )
    );
}

#[test]
fn refusal_rules_on_the_trunk() {
    let mut m = monitor("");
    let at = t0();
    let o = m.on_cdr(
        &cdr(
            "h1",
            CALLER,
            "331",
            at,
            Outcome::Refused(RefusalReason::OutsideCallingHours),
        ),
        at,
    );
    assert!(fired(&o, RuleId::OutsideHours));
    for i in 0..4 {
        let c = cdr(
            &format!("u{i}"),
            "4499",
            "331",
            at,
            Outcome::Refused(RefusalReason::CallerIdNotAuthorized),
        );
        assert!(!fired(&m.on_cdr(&c, at), RuleId::UnauthorizedCallerId));
    }
    let c = cdr(
        "u4",
        "4499",
        "331",
        at,
        Outcome::Refused(RefusalReason::CallerIdNotAuthorized),
    );
    let o = m.on_cdr(&c, at);
    let a = o
        .anomalies
        .iter()
        .find(|a| a.rule == RuleId::UnauthorizedCallerId)
        .unwrap();
    assert_eq!((a.observed, a.examples.len()), (5.0, 5));
    // Spoofed caller IDs create no subjects.
    assert_eq!(
        m.kpis(&Subject::caller_id(TRUNK, "4499"), RuleWindow::Hour, at),
        None
    );
}

fn complaint(id: &str, who: &str, cat: ComplaintCategory, at: DateTime<Utc>) -> Complaint {
    Complaint {
        id: id.to_string(),
        complainant: who.to_string(),
        caller_id: format!("+{CALLER}"),
        time: at,
        category: cat,
        source: ComplaintSource::Carrier,
        text: String::new(),
    }
}

#[test]
fn complaint_rules() {
    use ComplaintCategory::*;
    let mut m = monitor("");
    let at = t0();
    assert!(m
        .on_complaint(&complaint("k1", "1391", Other, at), at)
        .is_empty());
    assert!(m
        .on_complaint(&complaint("k2", "1392", Harassment, at), at)
        .is_empty());
    let o = m.on_complaint(&complaint("k3", "1393", Other, at), at);
    assert_eq!(o.anomalies.len(), 1);
    let a = &o.anomalies[0];
    assert_eq!(
        (a.rule, a.observed, a.examples.len()),
        (RuleId::ComplaintBatch, 3.0, 3)
    );
    assert_eq!(imposed(&o)[0].1, Step::SuspendNumber);
    assert_eq!(
        m.kpis(&caller(), RuleWindow::Hour, at).unwrap().complaints,
        3
    );

    let mut m = monitor("");
    assert!(m
        .on_complaint(&complaint("k1", "1391", Other, at - Duration::days(6)), at)
        .is_empty());
    let o = m.on_complaint(&complaint("k2", "1391", Other, at), at);
    assert_eq!(o.anomalies[0].rule, RuleId::RepeatedComplaint);
    assert_eq!(o.anomalies[0].examples, vec!["k1", "k2"]);

    let mut m = monitor("");
    let o = m.on_complaint(&complaint("k1", "1391", FalseInformation, at), at);
    assert_eq!(o.anomalies[0].rule, RuleId::FraudComplaint);
    let mut other = complaint("k2", "1391", Fraud, at);
    other.caller_id = "+4411111".into();
    assert!(m.on_complaint(&other, at).is_empty());
    assert_eq!(m.stats().complaints_unmatched, 1);
}

#[test]
fn over_long_call_alerts_once_per_call() {
    let mut m = monitor("");
    let call = |id: &str, answered: DateTime<Utc>| LiveCallView {
        call_id: id.to_string(),
        trunk: TRUNK.to_string(),
        direction: Direction::Outbound,
        caller: Some(CALLER.to_string()),
        answered_at: Some(answered),
    };
    let now = t0() + Duration::hours(1);
    let a = call("long1", t0() + secs(1));
    assert!(m.check_live(std::slice::from_ref(&a), now).is_empty());
    let a = call("long1", t0());
    let o = m.check_live(std::slice::from_ref(&a), now);
    assert_eq!((o.anomalies.len(), o.anomalies[0].observed), (1, 3_600.0));
    assert_eq!(
        imposed(&o),
        vec![(caller(), Step::Alert, Some(now + Duration::hours(1)))]
    );
    assert!(m
        .check_live(std::slice::from_ref(&a), now + secs(60))
        .is_empty());
    let b = call("long2", t0());
    let o = m.check_live(&[a, b], now + secs(120));
    assert_eq!(o.anomalies.len(), 1, "only the new call");
    assert!(o.actions.is_empty(), "the alert is in force");
    assert_eq!(m.stats().long_calls_alerted, 2);
    assert!(m.check_live(&[], now + secs(180)).is_empty());
    assert_eq!(m.stats().long_calls_alerted, 0);
}
#[test]
fn subject_maps_are_bounded() {
    let limits = MonitorLimits {
        max_subjects: 50,
        max_callees: 1_000,
        ..MonitorLimits::default()
    };
    let mut m = Monitor::new(&[trunk_with("")], limits);
    for n in 0..20_000 {
        let at = t0() + Duration::milliseconds(n);
        let callee = format!("339{n:07}");
        let caller = format!("86{n:07}");
        m.on_cdr(
            &cdr(
                &format!("c{n}"),
                &caller,
                &callee,
                at,
                Outcome::Status(404, false),
            ),
            at,
        );
    }
    let s = m.stats();
    assert_eq!((s.callees, s.callees_evicted), (1_000, 19_000));
    assert_eq!((s.subjects, s.subjects_evicted), (50, 20_001 - 50));
    // Idle subjects go on tick.
    m.tick(t0() + Duration::days(8));
    let s = m.stats();
    assert_eq!((s.subjects, s.callees), (0, 0));
}

/// An answered call whose recording holds no audio at all.
fn silent(n: i64) -> crate::model::Cdr {
    let at = t0() + secs(n);
    let mut c = cdr(
        &format!("call{n}"),
        CALLER,
        "331",
        at,
        Outcome::Answered(30),
    );
    let mut rec = crate::model::RecordingInfo::failed("unused");
    rec.status = crate::model::RecordingStatus::NoMedia;
    rec.note = None;
    c.recording = Some(rec);
    c
}

#[test]
fn silent_calls_fire_at_the_fifth_answered_call_without_audio() {
    let mut m = monitor("");
    for n in 0..10 {
        feed(&mut m, n, "331", Outcome::Answered(30));
    }
    for n in 10..14 {
        let at = t0() + secs(n);
        assert!(!fired(&m.on_cdr(&silent(n), at), RuleId::SilentCalls));
    }
    let at = t0() + secs(14);
    let o = m.on_cdr(&silent(14), at);
    let a = o
        .anomalies
        .iter()
        .find(|a| a.rule == RuleId::SilentCalls)
        .unwrap();
    assert_eq!(
        (a.sample, a.observed, a.window, a.subject.clone()),
        (15, 5.0, RuleWindow::Hour, Subject::caller_id(TRUNK, CALLER))
    );
    assert_eq!(
        a.examples,
        ["call10", "call11", "call12", "call13", "call14"]
    );

    // `min_sample`, `threshold` and `window` as the other rules; answered calls with audio
    // never count.
    let mut m = monitor("[trunks.rules.silent_calls]\nthreshold = 2\nmin_sample = 1\n");
    feed(&mut m, 0, "331", Outcome::Answered(30));
    assert!(!fired(
        &m.on_cdr(&silent(1), t0() + secs(1)),
        RuleId::SilentCalls
    ));
    assert!(fired(
        &m.on_cdr(&silent(2), t0() + secs(2)),
        RuleId::SilentCalls
    ));
}
