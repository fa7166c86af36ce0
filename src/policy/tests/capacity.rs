//! Rate limit, concurrency caps, leases, and counters across live trunk edits.

use std::sync::Arc;
use std::thread;

use chrono::Duration;

use super::*;
use crate::model::RefusalReason as R;
use crate::policy::{AdmissionLease, Policy, TrunkLoad};

const FROM_A: &str = "sip:+861012345678@10.0.0.1";
const FROM_B: &str = "sip:+861012345679@10.0.0.1";

fn policy_with(f: impl FnOnce(&mut TrunkConfig)) -> Policy {
    let mut t = trunk("demo");
    f(&mut t);
    Policy::new(&[t])
}

fn lease(p: &Policy, req: &AdmissionRequest<'_>) -> AdmissionLease {
    admitted(p.admit(req, t0())).lease
}

fn load(p: &Policy) -> TrunkLoad {
    p.live("demo").unwrap()
}

#[test]
fn token_bucket_refills_at_max_cps() {
    let p = policy_with(|t| t.max_cps = 2.0);
    let ms = |n| t0() + Duration::milliseconds(n);
    assert!(p.admit(&out(FROM_A, CUSTOMER), ms(0)).is_admit());
    // Outbound and inbound share the trunk's bucket.
    assert!(p.admit(&inb(CUSTOMER, FROM_A), ms(0)).is_admit());
    let r = refused(p.admit(&out(FROM_A, CUSTOMER), ms(0)));
    assert_eq!((r.status, r.phrase.as_str()), (503, "Call Rate Exceeded"));
    assert_eq!((r.reason, r.retry_after), (R::RateLimited, Some(1)));
    let d = p.admit(&inb(CUSTOMER, FROM_A), ms(499));
    assert_refused(d, 503, "Call Rate Exceeded", R::RateLimited);
    assert!(p.admit(&out(FROM_A, CUSTOMER), ms(500)).is_admit());
    assert!(!p.admit(&out(FROM_A, CUSTOMER), ms(500)).is_admit());
    // After a long pause the burst is ceil(max_cps), no more.
    let later = ms(60_000);
    assert!(p.admit(&out(FROM_A, CUSTOMER), later).is_admit());
    assert!(p.admit(&out(FROM_A, CUSTOMER), later).is_admit());
    assert!(!p.admit(&out(FROM_A, CUSTOMER), later).is_admit());
    assert_eq!(
        p.total_active(),
        0,
        "dropped admissions released their leases"
    );
}

#[test]
fn fractional_rate_bursts_one() {
    let p = policy_with(|t| t.max_cps = 0.5);
    assert!(p.admit(&out(FROM_A, CUSTOMER), t0()).is_admit());
    assert!(!p
        .admit(&out(FROM_A, CUSTOMER), t0() + Duration::seconds(1))
        .is_admit());
    assert!(p
        .admit(&out(FROM_A, CUSTOMER), t0() + Duration::seconds(2))
        .is_admit());
}

#[test]
fn trunk_cap_is_exact_and_counts_both_directions() {
    let p = policy_with(|t| t.max_concurrent = 3);
    let l1 = lease(&p, &out(FROM_A, CUSTOMER));
    let _l2 = lease(&p, &out(FROM_B, CUSTOMER));
    let _l3 = lease(&p, &inb(CUSTOMER, FROM_A));
    assert_eq!(load(&p).active, 3);
    let r = refused(p.admit(&out(FROM_B, CUSTOMER), t0()));
    assert_eq!(
        (r.status, r.phrase.as_str()),
        (503, "Trunk Concurrency Limit")
    );
    assert_eq!((r.reason, r.retry_after), (R::TrunkConcurrency, Some(5)));
    assert_eq!(r.caller.as_deref(), Some(B_DIGITS));
    let d = p.admit(&inb(CUSTOMER, FROM_B), t0());
    assert_refused(d, 503, "Trunk Concurrency Limit", R::TrunkConcurrency);

    p.set_retry_after_secs(7);
    let r = refused(p.admit(&out(FROM_B, CUSTOMER), t0()));
    assert_eq!(r.retry_after, Some(7));
    // Refusals took nothing.
    assert_eq!(load(&p).active, 3);

    drop(l1);
    assert_eq!(load(&p).active, 2);
    let _l4 = lease(&p, &out(FROM_B, CUSTOMER));
    assert_eq!(p.total_active(), 3);
}

#[test]
fn per_number_cap_is_exact_and_shared_by_directions() {
    let p = policy_with(|t| t.max_concurrent_per_caller_id = 2);
    let l1 = lease(&p, &out(FROM_A, CUSTOMER));
    let _l2 = lease(&p, &inb(CUSTOMER, FROM_A));
    let r = refused(p.admit(&out(FROM_A, CUSTOMER), t0()));
    assert_eq!(
        (r.status, r.phrase.as_str()),
        (503, "Caller ID Concurrency Limit")
    );
    assert_eq!((r.reason, r.retry_after), (R::CallerIdConcurrency, Some(5)));
    let d = p.admit(&inb(CUSTOMER, FROM_A), t0());
    assert_refused(
        d,
        503,
        "Caller ID Concurrency Limit",
        R::CallerIdConcurrency,
    );
    // Another line is unaffected.
    let _l3 = lease(&p, &out(FROM_B, CUSTOMER));
    assert_eq!(load(&p).per_number[A_DIGITS], 2);
    drop(l1);
    let _l4 = lease(&p, &out(FROM_A, CUSTOMER));
}

#[test]
fn concurrency_refusal_spends_no_rate_token() {
    let p = policy_with(|t| {
        t.max_cps = 1.0;
        t.max_concurrent = 1;
    });
    let l = lease(&p, &out(FROM_A, CUSTOMER));
    let t1 = t0() + Duration::seconds(1);
    for _ in 0..5 {
        assert!(!p.admit(&out(FROM_B, CUSTOMER), t1).is_admit());
    }
    drop(l);
    assert!(p.admit(&out(FROM_B, CUSTOMER), t1).is_admit());
}

#[test]
fn dropping_leases_releases_and_prunes() {
    let p = policy_with(|_| {});
    let a = lease(&p, &out(FROM_A, CUSTOMER));
    let b = lease(&p, &out(FROM_B, CUSTOMER));
    let b2 = lease(&p, &inb(CUSTOMER, FROM_B));
    let want = TrunkLoad {
        active: 3,
        per_number: [(A_DIGITS.to_string(), 1), (B_DIGITS.to_string(), 2)].into(),
    };
    assert_eq!(load(&p), want);
    a.release();
    drop(b);
    let l = load(&p);
    assert_eq!((l.active, l.per_number.len()), (1, 1));
    drop(b2);
    assert_eq!(load(&p), TrunkLoad::default());
    assert_eq!(p.total_active(), 0);
}

#[test]
fn many_threads_leave_counters_at_zero() {
    let p = Arc::new(policy_with(|t| {
        t.max_cps = 1e9;
        t.max_concurrent = 100_000;
        t.max_concurrent_per_caller_id = 100_000;
    }));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let p = Arc::clone(&p);
            thread::spawn(move || {
                let mut held = Vec::new();
                for i in 0..1250 {
                    let req = if (w + i) % 2 == 0 {
                        out(FROM_A, CUSTOMER)
                    } else {
                        inb(CUSTOMER, FROM_B)
                    };
                    held.push(admitted(p.admit(&req, t0())).lease);
                    if held.len() > 16 {
                        drop(held.swap_remove(i % 16));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(p.total_active(), 0);
    assert_eq!(load(&p), TrunkLoad::default());
}

#[test]
fn racing_threads_never_exceed_the_cap() {
    let p = Arc::new(policy_with(|t| {
        t.max_cps = 1e9;
        t.max_concurrent = 5;
    }));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let p = Arc::clone(&p);
            thread::spawn(move || {
                let mut admitted = 0;
                for _ in 0..2000 {
                    if let Decision::Admit(a) = p.admit(&out(FROM_A, CUSTOMER), t0()) {
                        admitted += 1;
                        assert!(p.live("demo").unwrap().active <= 5);
                        drop(a);
                    }
                }
                admitted
            })
        })
        .collect();
    let total: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(total > 0);
    assert_eq!(p.total_active(), 0);
}

#[test]
fn replace_trunks_keeps_live_leases_counting() {
    let p = policy_with(|_| {});
    let a = lease(&p, &out(FROM_A, CUSTOMER));
    let b = lease(&p, &out(FROM_B, CUSTOMER));

    // Edit: lower the cap to what is live now.
    let mut edited = trunk("demo");
    edited.max_concurrent = 2;
    p.replace_trunks(&[edited.clone(), trunk("other")]);
    assert_eq!(load(&p).active, 2);
    let d = p.admit(&out(FROM_A, CUSTOMER), t0());
    assert_refused(d, 503, "Trunk Concurrency Limit", R::TrunkConcurrency);
    drop(a);
    assert_eq!(load(&p).active, 1);
    let c = lease(&p, &out(FROM_A, CUSTOMER));
    assert_eq!(load(&p).active, 2);

    // Remove the trunk: its calls go on and still count in the total.
    p.replace_trunks(&[trunk("other")]);
    assert!(p.live("demo").is_none());
    assert_eq!(p.total_active(), 2);
    let d = p.admit(&out(FROM_A, CUSTOMER), t0());
    assert_refused(d, 403, "Unknown Trunk", R::UnknownTrunk);
    drop(b);
    assert_eq!(p.total_active(), 1);

    // Re-added under the same name, it resumes counting the call still up.
    p.replace_trunks(&[edited]);
    assert_eq!(load(&p).active, 1);
    assert_eq!(load(&p).per_number[A_DIGITS], 1);
    drop(c);
    assert_eq!(load(&p), TrunkLoad::default());
    assert_eq!(p.total_active(), 0);
}

#[test]
fn replace_trunks_keeps_the_rate_bucket() {
    let p = policy_with(|t| t.max_cps = 2.0);
    assert!(p.admit(&out(FROM_A, CUSTOMER), t0()).is_admit());
    assert!(p.admit(&out(FROM_A, CUSTOMER), t0()).is_admit());
    let mut edited = trunk("demo");
    edited.max_cps = 4.0;
    p.replace_trunks(&[edited]);
    // Still empty: an edit must not hand out a fresh burst.
    assert!(!p.admit(&out(FROM_A, CUSTOMER), t0()).is_admit());
    // New rate applies: 4 cps refills one token in 250 ms.
    assert!(p
        .admit(&out(FROM_A, CUSTOMER), t0() + Duration::milliseconds(250))
        .is_admit());
}
