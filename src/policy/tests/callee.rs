//! Per-callee frequency at admission: exact at the boundaries, per trunk across caller IDs.

use chrono::Duration;

use super::*;
use crate::model::RefusalReason as R;
use crate::policy::Policy;

const FROM_A: &str = "sip:+861012345678@10.0.0.1";
const FROM_B: &str = "sip:+861012345679@10.0.0.1";
const X: &str = "sip:+8613900000001@carrier";
const Y: &str = "sip:+8613900000002@carrier";

fn limited(rules: &str) -> Policy {
    let mut t = trunk("demo");
    t.rules = toml::from_str(rules).unwrap();
    Policy::new(&[t])
}

fn at(secs: i64) -> chrono::DateTime<chrono::Utc> {
    t0() + Duration::seconds(secs)
}

#[test]
fn second_call_within_sixty_seconds_is_refused_from_any_caller_id() {
    let p = limited("");
    assert!(p.admit(&out(FROM_A, X), at(0)).is_admit());
    let r = refused(p.admit(&out(FROM_B, X), at(59)));
    assert_eq!(
        (r.status, r.phrase.as_str()),
        (480, "Callee Frequency Limit")
    );
    assert_eq!(r.reason.as_str(), "callee_frequency_limit");
    assert_eq!(r.callee.as_deref(), Some("8613900000001"));
    // Another number is not affected.
    assert!(p.admit(&out(FROM_A, Y), at(59)).is_admit());
    // Exactly 60 s later the first call has left the window.
    assert!(p.admit(&out(FROM_A, X), at(60)).is_admit());
}

#[test]
fn fourth_call_in_a_day_is_refused_until_the_first_is_a_day_old() {
    let p = limited("");
    for s in [0, 60, 120] {
        assert!(p.admit(&out(FROM_A, X), at(s)).is_admit(), "call at {s}");
    }
    let d = p.admit(&out(FROM_A, X), at(180));
    assert_refused(d, 480, "Callee Frequency Limit", R::CalleeFrequencyLimit);
    let d = p.admit(&out(FROM_A, X), at(86_399));
    assert_refused(d, 480, "Callee Frequency Limit", R::CalleeFrequencyLimit);
    assert!(p.admit(&out(FROM_A, X), at(86_400)).is_admit());
}

#[test]
fn configured_limits_are_exact() {
    let p =
        limited("[over_frequent_callee]\nthreshold = 3\nwindow = \"5m\"\ndaily_threshold = 5\n");
    for s in [0, 1, 2] {
        assert!(p.admit(&out(FROM_A, X), at(s)).is_admit(), "call at {s}");
    }
    assert!(!p.admit(&out(FROM_A, X), at(299)).is_admit());
    assert!(p.admit(&out(FROM_A, X), at(300)).is_admit());
    assert!(p.admit(&out(FROM_A, X), at(302)).is_admit());
    // Five in 24 h now.
    assert!(!p.admit(&out(FROM_A, X), at(900)).is_admit());
}

#[test]
fn refused_attempts_do_not_count_and_a_later_refusal_undoes_the_count() {
    let mut t = trunk("demo");
    t.max_concurrent = 1;
    t.rules = toml::from_str("").unwrap();
    let p = Policy::new(&[t]);
    let lease = admitted(p.admit(&out(FROM_A, X), at(0))).lease;
    // Refused by trunk concurrency: its callee reservation is undone.
    let d = p.admit(&out(FROM_B, Y), at(1));
    assert_refused(d, 503, "Trunk Concurrency Limit", R::TrunkConcurrency);
    drop(lease);
    assert!(p.admit(&out(FROM_B, Y), at(2)).is_admit());
    // Inbound calls are not limited: the trunk does not call anyone.
    assert!(p.admit(&inb(CUSTOMER, FROM_A), at(3)).is_admit());
    assert!(p.admit(&inb(CUSTOMER, FROM_A), at(3)).is_admit());
}

#[test]
fn many_distinct_callees_stay_bounded() {
    let mut t = trunk("demo");
    t.max_cps = 1e9;
    t.rules = toml::from_str("").unwrap();
    let p = Policy::new(&[t]);
    let n = crate::policy::MAX_CALLEES + 500;
    for i in 0..n {
        let callee = format!("sip:+86139{i:08}@carrier");
        assert!(p.admit(&out(FROM_A, &callee), at(0)).is_admit());
    }
    assert_eq!(p.callees_evicted("demo"), Some(500));
}
