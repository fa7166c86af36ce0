use crate::model::RefusalReason;
use chrono::Duration;

use super::*;
use crate::config::RuleWindow;
use crate::monitor::testkit::{cdr, secs, t0, Outcome, CALLER};

fn k(outcome: Outcome) -> KpiCounters {
    KpiCounters::from_cdr(&cdr("c", CALLER, "33100", t0(), outcome), 3_600)
}

#[test]
fn classification_follows_the_metric_definitions() {
    let a = k(Outcome::Answered(5));
    assert_eq!(
        (a.attempts, a.answered, a.short_calls, a.talk_ms),
        (1, 1, 1, 5_000)
    );
    assert_eq!((a.pdd.count, a.pdd.sum_ms), (1, 2_000));
    assert_eq!(k(Outcome::Answered(6)).short_calls, 0);
    assert_eq!(k(Outcome::Answered(3_600)).over_long, 0);
    assert_eq!(k(Outcome::Answered(3_601)).over_long, 1);
    for s in [404, 410, 484, 604] {
        assert_eq!(k(Outcome::Status(s, false)).invalid_number, 1, "{s}");
    }
    for s in [500, 502, 503, 504] {
        assert_eq!(k(Outcome::Status(s, true)).network_errors, 1, "{s}");
    }
    assert_eq!(k(Outcome::Status(408, false)).network_errors, 1);
    let late = k(Outcome::Status(408, true));
    assert_eq!((late.network_errors, late.no_answer), (0, 1));
    assert_eq!(k(Outcome::Status(486, true)).busy, 1);
    assert_eq!(k(Outcome::Status(603, true)).rejected_by_user, 1);
    assert_eq!(k(Outcome::Status(501, false)).network_errors, 0);
    // Our own refusals (whatever their status) are only refusals.
    let r = k(Outcome::Refused(RefusalReason::TrunkConcurrency));
    assert_eq!(
        (r.attempts, r.refused_by_gateway, r.network_errors),
        (1, 1, 0)
    );
    assert_eq!(
        k(Outcome::Refused(RefusalReason::OutsideCallingHours)).refused_outside_hours,
        1
    );
    assert_eq!(
        k(Outcome::Refused(RefusalReason::CallerIdNotAuthorized)).refused_unauthorized,
        1
    );
}

#[test]
fn ratios_are_over_offered_attempts() {
    let mut total = KpiCounters::default();
    for o in [
        Outcome::Answered(100),
        Outcome::Answered(2),
        Outcome::Status(404, false),
        Outcome::Status(486, true),
        Outcome::Status(503, false),
        Outcome::Refused(RefusalReason::CallerIdSuspended),
        Outcome::Refused(RefusalReason::CallerIdSuspended),
    ] {
        total.merge(&k(o));
    }
    total.complaints = 1;
    assert_eq!((total.attempts, total.offered()), (7, 5));
    assert_eq!(total.asr(), Some(0.4));
    assert_eq!(total.ner(), Some(0.6));
    assert_eq!(total.error_rate(), Some(0.2));
    assert_eq!(total.network_error_ratio(), Some(0.2));
    assert_eq!(total.acd_secs(), Some(51.0));
    assert_eq!(total.short_call_ratio(), Some(0.5));
    assert_eq!(total.complaints_per_1000_answered(), Some(500.0));
    assert_eq!(KpiCounters::default().asr(), None);
}

#[test]
fn counters_round_trip_and_merge_like_buckets() {
    let mut a = k(Outcome::Answered(30));
    a.peak_concurrency = 4;
    let mut b = k(Outcome::Status(404, false));
    b.peak_concurrency = 7;
    let json = serde_json::to_string(&a).unwrap();
    let mut back: KpiCounters = serde_json::from_str(&json).unwrap();
    assert_eq!(back, a);
    back.merge(&b);
    assert_eq!(
        (back.attempts, back.peak_concurrency, back.invalid_number),
        (2, 7, 1)
    );
    // A bucket written before a field existed still reads.
    let old: KpiCounters = serde_json::from_str(r#"{"attempts":3}"#).unwrap();
    assert_eq!(old.attempts, 3);
}

#[test]
fn window_slides_by_sub_buckets() {
    let mut w = SlidingWindow::new(RuleWindow::Minute);
    let one = k(Outcome::Answered(30));
    w.add(t0(), &one);
    w.add(t0() + secs(30), &one);
    assert_eq!(w.sum(t0() + secs(30)).attempts, 2);
    // The first sub-bucket [t0, t0+5 s) leaves the window once t0+60 s is reached.
    assert_eq!(w.sum(t0() + secs(59)).attempts, 2);
    assert_eq!(w.sum(t0() + secs(60)).attempts, 1);
    assert_eq!(w.sum(t0() + secs(90)).attempts, 0);
    // A late event lands in its own sub-bucket; one older than the window is dropped.
    w.add(t0() + secs(10), &one);
    w.add(t0() - secs(60), &one);
    assert_eq!(w.sum(t0() + secs(30)).attempts, 3);
    w.prune(t0() + secs(120));
    assert!(w.is_empty());
}

#[test]
fn windows_keep_only_active_sub_buckets() {
    let mut ws = Windows::default();
    let one = k(Outcome::Answered(30));
    for i in 0..1_000 {
        ws.add(t0() + Duration::seconds(i), &one);
    }
    let now = t0() + Duration::seconds(999);
    assert_eq!(ws.sum(RuleWindow::Hour, now).attempts, 1_000);
    assert_eq!(ws.sum(RuleWindow::Minute, now).attempts, 60);
    assert_eq!(ws.sum(RuleWindow::Week, now).attempts, 1_000);
    ws.prune(now + Duration::days(8));
    assert!(ws.is_empty());
}

#[test]
fn subjects_and_bucket_keys() {
    let c = cdr(
        "c1",
        CALLER,
        "33100",
        t0() + Duration::minutes(61),
        Outcome::Answered(30),
    );
    let rows = bucket_rows(&c, 3_600);
    let subjects: Vec<_> = rows.iter().map(|(s, _, _)| s.clone()).collect();
    assert_eq!(
        subjects,
        vec![
            Subject::trunk_of("demo"),
            Subject::caller_id("demo", CALLER),
            Subject::callee("demo", "33100"),
        ]
    );
    assert!(rows
        .iter()
        .all(|(_, h, k)| *h == t0() + Duration::hours(1) && k.answered == 1));
    let mut inbound = c.clone();
    inbound.attempt.direction = crate::model::Direction::Inbound;
    assert_eq!(Subject::of_cdr(&inbound), vec![Subject::trunk_of("demo")]);
    assert_eq!(
        day_start(t0() + Duration::minutes(61)),
        t0() - Duration::hours(12)
    );
    assert_eq!(hour_start(t0() + secs(3_599)), t0());
}
