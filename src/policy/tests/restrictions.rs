//! Steps in force at admission: suspensions and throttles take effect on the very next call and
//! lifting them restores admission.

use super::*;
use crate::model::RefusalReason as R;
use crate::model::Step;
use crate::model::Subject;
use crate::policy::{AdmissionLease, Policy};

const FROM_A: &str = "sip:+861012345678@10.0.0.1";
const FROM_B: &str = "sip:+861012345679@10.0.0.1";

fn policy_with(f: impl FnOnce(&mut TrunkConfig)) -> Policy {
    let mut t = trunk("demo");
    f(&mut t);
    Policy::new(&[t])
}

#[test]
fn suspended_trunk_refuses_every_call_until_lifted() {
    let p = policy_with(|_| {});
    let s = Subject::trunk_of("demo");
    assert!(p.admit(&out(FROM_A, CUSTOMER), t0()).is_admit());
    p.restrictions().impose(1, &s, Step::SuspendTrunk);
    let d = p.admit(&out(FROM_A, CUSTOMER), t0());
    assert_refused(d, 403, "Trunk Suspended", R::TrunkSuspended);
    let d = p.admit(&inb(CUSTOMER, FROM_A), t0());
    assert_refused(d, 403, "Trunk Suspended", R::TrunkSuspended);
    assert_eq!(R::TrunkSuspended.as_str(), "trunk_suspended");
    p.restrictions().lift(1, &s);
    assert!(p.admit(&out(FROM_A, CUSTOMER), t0()).is_admit());
    assert!(p.restrictions().is_empty());
}

#[test]
fn suspended_caller_id_refuses_only_calls_presenting_it() {
    let p = policy_with(|_| {});
    let s = Subject::caller_id("demo", A_DIGITS);
    p.restrictions().impose(7, &s, Step::SuspendNumber);
    let r = refused(p.admit(&out(FROM_A, CUSTOMER), t0()));
    assert_eq!((r.status, r.phrase.as_str()), (403, "Caller ID Suspended"));
    assert_eq!(r.reason.as_str(), "caller_id_suspended");
    assert_eq!(r.caller.as_deref(), Some(A_DIGITS));
    assert!(p.admit(&out(FROM_B, CUSTOMER), t0()).is_admit());
    // A customer calling the suspended number in is not that number's traffic.
    assert!(p.admit(&inb(CUSTOMER, FROM_A), t0()).is_admit());
    // Two steps on one number: lifting one leaves the other in force.
    p.restrictions().impose(8, &s, Step::Throttle);
    p.restrictions().lift(8, &s);
    assert!(!p.admit(&out(FROM_A, CUSTOMER), t0()).is_admit());
    p.restrictions().lift(7, &s);
    assert!(p.admit(&out(FROM_A, CUSTOMER), t0()).is_admit());
}

#[test]
fn trunk_throttle_cuts_the_cap_with_its_own_reason() {
    let p = policy_with(|t| t.max_concurrent = 4);
    let s = Subject::trunk_of("demo");
    p.restrictions().impose(1, &s, Step::Throttle);
    let _l: Vec<AdmissionLease> = (0..2)
        .map(|_| admitted(p.admit(&out(FROM_A, CUSTOMER), t0())).lease)
        .collect();
    let r = refused(p.admit(&out(FROM_B, CUSTOMER), t0()));
    assert_eq!(
        (r.status, r.reason, r.retry_after),
        (503, R::TrunkThrottled, Some(5))
    );
    assert_eq!(r.phrase, "Trunk Throttled");
    p.restrictions().lift(1, &s);
    assert!(p.admit(&out(FROM_B, CUSTOMER), t0()).is_admit());
}

#[test]
fn caller_throttle_cuts_the_number_cap_and_never_below_one() {
    let p = policy_with(|t| {
        t.max_concurrent_per_caller_id = 1;
        t.throttle_share = 0.1;
    });
    p.restrictions()
        .impose(1, &Subject::caller_id("demo", A_DIGITS), Step::Throttle);
    let _l = admitted(p.admit(&out(FROM_A, CUSTOMER), t0())).lease;
    let d = p.admit(&out(FROM_A, CUSTOMER), t0());
    assert_refused(d, 503, "Caller ID Throttled", R::CallerIdThrottled);
    // Other numbers keep their cap.
    assert!(p.admit(&out(FROM_B, CUSTOMER), t0()).is_admit());
    // An alert changes nothing.
    p.restrictions()
        .impose(2, &Subject::trunk_of("demo"), Step::Alert);
    assert!(p.admit(&out(FROM_B, CUSTOMER), t0()).is_admit());
}
