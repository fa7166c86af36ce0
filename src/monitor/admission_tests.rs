//! The monitor drives admission: what the engine decides reaches `Policy::restrictions()`.

use chrono::Duration;

use crate::model::RefusalReason as R;
use crate::monitor::testkit::{cdr, Outcome};
use crate::monitor::{Monitor, MonitorLimits};
use crate::policy::tests::{assert_refused, out, t0, trunk, A_DIGITS, CUSTOMER};
use crate::policy::Policy;

const FROM_A: &str = "sip:+861012345678@10.0.0.1";

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
        for a in &o.actions {
            a.apply_to(p.restrictions());
        }
    }
    let d = p.admit(&out(FROM_A, CUSTOMER), last);
    assert_refused(d, 403, "Caller ID Suspended", R::CallerIdSuspended);
    // resume_after (10 m) has passed and the rule has been clear for its window (5 m).
    let later = last + Duration::minutes(10);
    for a in &m.tick(later).actions {
        a.apply_to(p.restrictions());
    }
    assert!(p.admit(&out(FROM_A, CUSTOMER), later).is_admit());
}
