//! Calling hours, evaluated in the trunk's time zone at the `now` passed in.

use super::*;
use crate::model::RefusalReason as R;
use crate::policy::Policy;

const FROM_A: &str = "sip:+861012345678@10.0.0.1";

fn policy(hours: &str, tz: chrono_tz::Tz) -> Policy {
    let mut t = trunk("demo");
    t.calling_hours = CallingHours::parse(hours).unwrap();
    t.timezone = tz;
    Policy::new(&[t])
}

fn allowed(p: &Policy, now: DateTime<Utc>) -> bool {
    match p.admit(&out(FROM_A, CUSTOMER), now) {
        Decision::Admit(_) => true,
        Decision::Refuse(r) => {
            assert_eq!(
                (r.status, r.phrase.as_str()),
                (403, "Outside Calling Hours")
            );
            assert_eq!(r.reason, R::OutsideCallingHours);
            assert_eq!(r.retry_after, None);
            false
        }
    }
}

#[test]
fn office_hours_in_shanghai() {
    let p = policy("09:00-18:00", chrono_tz::Asia::Shanghai);
    // Shanghai is UTC+8 all year.
    assert!(!allowed(&p, utc(2024, 3, 1, 0, 30))); // 08:30 local
    assert!(allowed(&p, utc(2024, 3, 1, 1, 0))); // 09:00 local
    assert!(allowed(&p, utc(2024, 3, 1, 1, 30))); // 09:30 local
    assert!(allowed(&p, utc(2024, 3, 1, 9, 59))); // 17:59 local
    assert!(!allowed(&p, utc(2024, 3, 1, 10, 0))); // 18:00 local: end is exclusive
    assert!(!allowed(&p, utc(2024, 3, 1, 11, 0))); // 19:00 local
}

#[test]
fn local_date_differs_from_utc_date() {
    let p = policy("07:00-09:00", chrono_tz::Asia::Shanghai);
    // 23:30 UTC on March 1st is 07:30 on March 2nd in Shanghai.
    assert!(allowed(&p, utc(2024, 3, 1, 23, 30)));
    assert!(!allowed(&p, utc(2024, 3, 1, 7, 30))); // 15:30 local
}

#[test]
fn window_wrapping_midnight() {
    let p = policy("22:00-06:00", chrono_tz::Asia::Shanghai);
    assert!(!allowed(&p, utc(2024, 3, 1, 13, 59))); // 21:59 local
    assert!(allowed(&p, utc(2024, 3, 1, 14, 0))); // 22:00 local
    assert!(allowed(&p, utc(2024, 3, 1, 16, 30))); // 00:30 local, next day
    assert!(allowed(&p, utc(2024, 3, 1, 21, 59))); // 05:59 local
    assert!(!allowed(&p, utc(2024, 3, 1, 22, 0))); // 06:00 local
}

#[test]
fn daylight_saving_time_follows_the_zone() {
    let p = policy("09:00-18:00", chrono_tz::America::New_York);
    // 13:30 UTC is 08:30 EST in January but 09:30 EDT in July.
    assert!(!allowed(&p, utc(2024, 1, 15, 13, 30)));
    assert!(allowed(&p, utc(2024, 7, 15, 13, 30)));
}

#[test]
fn inbound_calls_ignore_calling_hours() {
    let p = policy("09:00-18:00", chrono_tz::Asia::Shanghai);
    let night = utc(2024, 3, 1, 16, 0); // 00:00 local
    assert!(!allowed(&p, night));
    assert!(p.admit(&inb(CUSTOMER, FROM_A), night).is_admit());
}

#[test]
fn hours_come_after_identity_and_blocks() {
    let mut t = trunk("demo");
    t.calling_hours = CallingHours::parse("09:00-10:00").unwrap();
    t.blocked_numbers = vec!["+8613800000000".into()];
    let p = Policy::new(&[t]);
    let night = utc(2024, 3, 1, 23, 0);
    let d = p.admit(&out("sip:+861099999999@x", CUSTOMER), night);
    assert_refused(d, 403, "Caller ID Not Authorized", R::CallerIdNotAuthorized);
    let d = p.admit(&out(FROM_A, CUSTOMER), night);
    assert_refused(d, 403, "Number Blocked", R::NumberBlocked);
}
