//! Rule measures are tested through `Monitor` (engine_tests.rs); here the callee times.

use chrono::Duration;

use super::CalleeAttempts;
use crate::monitor::testkit::t0;

#[test]
fn callee_times_keep_only_what_the_limits_need() {
    let mut a = CalleeAttempts::default();
    for s in [30, 0, 10, 20] {
        a.record(t0() + Duration::seconds(s), "c", 3);
    }
    // Out-of-order times are kept sorted; the oldest (0) went.
    assert_eq!(
        a.count(t0() + Duration::seconds(30), Duration::seconds(60)),
        3
    );
    assert_eq!(
        a.count(t0() + Duration::seconds(70), Duration::seconds(60)),
        2
    );
    assert_eq!(a.newest(), Some(t0() + Duration::seconds(30)));
}
