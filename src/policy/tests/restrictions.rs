//! Steps in force at admission: suspensions and throttles take effect on the very next call and
//! lifting them restores admission.

use chrono::Duration;

use super::*;
use crate::config::Step;
use crate::monitor::enforcement::{Cause, EnforcementAction, Imposition, LiftReason};
use crate::monitor::kpi::Subject;
use crate::monitor::testkit::{cdr, Outcome};
use crate::monitor::{Monitor, MonitorLimits};
use crate::policy::{Lease, Policy, RefusalReason as R};

const FROM_A: &str = "sip:+861012345678@10.0.0.1";
const FROM_B: &str = "sip:+861012345679@10.0.0.1";

fn policy_with(f: impl FnOnce(&mut TrunkConfig)) -> Policy {
    let mut t = trunk("demo");
    f(&mut t);
    Policy::new(&[t])
}

fn impose(id: u64, subject: Subject, step: Step) -> EnforcementAction {
    EnforcementAction::Impose(Imposition {
        id,
        subject,
        step,
        at: t0(),
        until: None,
        cause: Cause::Operator {
            name: "test".into(),
            reason: "test".into(),
        },
    })
}

fn lift(id: u64, subject: Subject, step: Step) -> EnforcementAction {
    EnforcementAction::Lift {
        id,
        subject,
        step,
        at: t0(),
        why: LiftReason::Resumed,
    }
}

#[test]
fn suspended_trunk_refuses_every_call_until_lifted() {
    let p = policy_with(|_| {});
    let s = Subject::trunk_of("demo");
    assert!(p.admit(&out(FROM_A, CUSTOMER), t0()).is_admit());
    p.restrictions()
        .apply(&impose(1, s.clone(), Step::SuspendTrunk));
    let d = p.admit(&out(FROM_A, CUSTOMER), t0());
    assert_refused(d, 403, "Trunk Suspended", R::TrunkSuspended);
    let d = p.admit(&inb(CUSTOMER, FROM_A), t0());
    assert_refused(d, 403, "Trunk Suspended", R::TrunkSuspended);
    assert_eq!(R::TrunkSuspended.code(), "trunk_suspended");
    p.restrictions().apply(&lift(1, s, Step::SuspendTrunk));
    assert!(p.admit(&out(FROM_A, CUSTOMER), t0()).is_admit());
    assert!(p.restrictions().is_empty());
}

#[test]
fn suspended_caller_id_refuses_only_calls_presenting_it() {
    let p = policy_with(|_| {});
    let s = Subject::caller_id("demo", A_DIGITS);
    p.restrictions()
        .apply(&impose(7, s.clone(), Step::SuspendNumber));
    let r = refused(p.admit(&out(FROM_A, CUSTOMER), t0()));
    assert_eq!((r.status, r.phrase.as_str()), (403, "Caller ID Suspended"));
    assert_eq!(r.reason.code(), "caller_id_suspended");
    assert_eq!(r.caller.as_deref(), Some(A_DIGITS));
    assert!(p.admit(&out(FROM_B, CUSTOMER), t0()).is_admit());
    // A customer calling the suspended number in is not that number's traffic.
    assert!(p.admit(&inb(CUSTOMER, FROM_A), t0()).is_admit());
    // Two steps on one number: lifting one leaves the other in force.
    p.restrictions()
        .apply(&impose(8, s.clone(), Step::Throttle));
    p.restrictions().apply(&lift(8, s.clone(), Step::Throttle));
    assert!(!p.admit(&out(FROM_A, CUSTOMER), t0()).is_admit());
    p.restrictions().apply(&lift(7, s, Step::SuspendNumber));
    assert!(p.admit(&out(FROM_A, CUSTOMER), t0()).is_admit());
}

#[test]
fn trunk_throttle_cuts_the_cap_with_its_own_reason() {
    let p = policy_with(|t| t.max_concurrent = 4);
    let s = Subject::trunk_of("demo");
    p.restrictions()
        .apply(&impose(1, s.clone(), Step::Throttle));
    let _l: Vec<Lease> = (0..2)
        .map(|_| admitted(p.admit(&out(FROM_A, CUSTOMER), t0())).lease)
        .collect();
    let r = refused(p.admit(&out(FROM_B, CUSTOMER), t0()));
    assert_eq!(
        (r.status, r.reason, r.retry_after),
        (503, R::TrunkThrottled, Some(5))
    );
    assert_eq!(r.phrase, "Trunk Throttled");
    p.restrictions().apply(&lift(1, s, Step::Throttle));
    assert!(p.admit(&out(FROM_B, CUSTOMER), t0()).is_admit());
}

#[test]
fn caller_throttle_cuts_the_number_cap_and_never_below_one() {
    let p = policy_with(|t| {
        t.max_concurrent_per_caller_id = 1;
        t.throttle_share = 0.1;
    });
    p.restrictions().apply(&impose(
        1,
        Subject::caller_id("demo", A_DIGITS),
        Step::Throttle,
    ));
    let _l = admitted(p.admit(&out(FROM_A, CUSTOMER), t0())).lease;
    let d = p.admit(&out(FROM_A, CUSTOMER), t0());
    assert_refused(d, 503, "Caller ID Throttled", R::CallerIdThrottled);
    // Other numbers keep their cap.
    assert!(p.admit(&out(FROM_B, CUSTOMER), t0()).is_admit());
    // An alert changes nothing.
    p.restrictions()
        .apply(&impose(2, Subject::trunk_of("demo"), Step::Alert));
    assert!(p.admit(&out(FROM_B, CUSTOMER), t0()).is_admit());
}

#[test]
fn every_reason_code_round_trips() {
    for r in R::ALL {
        assert_eq!(R::from_code(r.code()), Some(r));
    }
}

/// The monitor's actions drive admission: an error-rate firing suspends the caller ID for the
/// very next call, and the lift after hysteresis lets it through again.
#[test]
fn monitor_actions_reach_admission() {
    let mut cfg = trunk("demo");
    cfg.rules = toml::from_str(
        "[over_frequent_callee]\nenabled = false\n\
         [error_rate]\nmin_sample = 10\nwindow = \"5m\"\nresume_after = \"10m\"\n",
    )
    .unwrap();
    let p = Policy::new(std::slice::from_ref(&cfg));
    let mut m = Monitor::new(std::slice::from_ref(&cfg), MonitorLimits::default());
    let mut last = t0();
    for i in 0..10 {
        last = t0() + Duration::seconds(i);
        let outcome = if i < 8 {
            Outcome::Answered(30)
        } else {
            Outcome::Status(404, false)
        };
        let o = m.on_cdr(
            &cdr(&format!("c{i}"), A_DIGITS, "33100", last, outcome),
            last,
        );
        p.restrictions().apply_all(&o.actions);
    }
    let d = p.admit(&out(FROM_A, CUSTOMER), last);
    assert_refused(d, 403, "Caller ID Suspended", R::CallerIdSuspended);
    // resume_after (10 m) has passed and the rule has been clear for its window (5 m).
    let later = last + Duration::minutes(10);
    p.restrictions().apply_all(&m.tick(later).actions);
    assert!(p.admit(&out(FROM_A, CUSTOMER), later).is_admit());
}
