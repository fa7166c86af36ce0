//! The enforcement ladder through the monitor, with a fake clock: a step imposed when a rule
//! fires, escalated on a repeat, lifted after its resume time and a clear window, imposed and
//! lifted by an operator, and put back after a restart.

use chrono::Duration;

use super::{caller, complaint, feed, imposed, monitor};
use crate::model::Step;
use crate::model::Subject;
use crate::monitor::enforcement::{Cause, EnforcementAction, EnforcementError, LiftReason};
use crate::monitor::rules::ComplaintCategory;
use crate::monitor::testkit::{secs, t0, Outcome, TRUNK};
use crate::monitor::{Monitor, MonitorOutput};

#[test]
fn step_lifts_after_resume_time_and_a_clear_window() {
    let mut m = monitor(
        "[trunks.rules.error_rate]\nmin_sample = 10\nresume_after = \"10m\"\n\
         [trunks.rules.over_frequent_callee]\nenabled = false\n",
    );
    for n in 0..8 {
        feed(&mut m, n, "331", Outcome::Answered(30));
    }
    feed(&mut m, 8, "332", Outcome::Status(404, false));
    let o = feed(&mut m, 9, "333", Outcome::Status(404, false));
    let id = match &o.actions[..] {
        [EnforcementAction::Impose(i)] => i.id,
        other => panic!("{other:?}"),
    };
    let fire_at = t0() + secs(9);
    // resume_after passed, but the rule held 10 min ago: its 1 h window is not clear yet.
    assert!(m.tick(fire_at + Duration::minutes(10)).is_empty());
    // A call at +30 min still finds the rule true (the bad calls are in the window).
    let o = feed(&mut m, 9 + 1_800, "334", Outcome::Answered(30));
    assert!(o.is_empty());
    let last_true = fire_at + secs(1_800);
    let o = m.tick(last_true + Duration::minutes(59));
    assert!(o.is_empty(), "{o:?}");
    let o = m.tick(last_true + Duration::hours(1));
    assert_eq!(
        o.actions,
        vec![EnforcementAction::Lift {
            id,
            subject: caller(),
            step: Step::SuspendNumber,
            at: last_true + Duration::hours(1),
            why: LiftReason::Resumed,
        }]
    );
    assert!(m.in_force().is_empty());
}

#[test]
fn a_repeat_escalates_while_in_force_and_after_lifting() {
    let mut m = monitor(
        "[trunks.rules.error_rate]\nmin_sample = 10\nstep = \"alert\"\nwindow = \"5m\"\nresume_after = \"1m\"\n",
    );
    let mut n = 0;
    let mut call = |m: &mut Monitor, o: Outcome| {
        n += 1;
        feed(m, n, "331", o)
    };
    for _ in 0..8 {
        call(&mut m, Outcome::Answered(30));
    }
    call(&mut m, Outcome::Status(404, false));
    let o = call(&mut m, Outcome::Status(404, false));
    assert_eq!(
        imposed(&o),
        vec![(caller(), Step::Alert, Some(t0() + secs(10 + 60)))]
    );
    // Clear (2 / 20 = 10 %), then cross again while the alert is in force: throttle.
    for _ in 0..10 {
        assert!(call(&mut m, Outcome::Answered(30)).is_empty());
    }
    let o = call(&mut m, Outcome::Status(404, false));
    assert_eq!(o.actions.len(), 2, "{:?}", o.actions);
    assert!(matches!(
        o.actions[0],
        EnforcementAction::Lift {
            why: LiftReason::Escalated { .. },
            step: Step::Alert,
            ..
        }
    ));
    assert_eq!(imposed(&o)[0].1, Step::Throttle);
    // Lift it (clear for 5 min), then a new crossing within 24 h escalates again.
    let lifted = m.tick(t0() + Duration::minutes(20));
    assert_eq!(lifted.actions.len(), 1);
    let base = 20 * 60;
    for i in 0..9 {
        feed(&mut m, base + i, "331", Outcome::Answered(30));
    }
    let o = feed(&mut m, base + 9, "331", Outcome::Status(404, false));
    assert!(o.is_empty(), "1 / 10 is not above 10 %");
    let o = feed(&mut m, base + 10, "331", Outcome::Status(404, false));
    assert_eq!(imposed(&o)[0].1, Step::SuspendNumber);
    match &o.actions[..] {
        [EnforcementAction::Impose(i)] => assert!(matches!(
            i.cause,
            Cause::Rule {
                escalated_from: Some(Step::Throttle),
                ..
            }
        )),
        other => panic!("{other:?}"),
    }
}

#[test]
fn operator_impose_and_lift() {
    let mut m = monitor("");
    let trunk = Subject::trunk_of(TRUNK);
    let a = m
        .impose(
            &trunk,
            Step::SuspendTrunk,
            None,
            "ops",
            "carrier asked",
            t0(),
        )
        .unwrap();
    assert_eq!(
        imposed(&MonitorOutput {
            anomalies: vec![],
            actions: a
        }),
        vec![(trunk.clone(), Step::SuspendTrunk, None)]
    );
    assert!(m.tick(t0() + Duration::days(30)).is_empty());
    assert!(m
        .impose(&trunk, Step::SuspendNumber, None, "ops", "x", t0())
        .is_err());
    assert!(m
        .impose(
            &Subject::callee(TRUNK, "331"),
            Step::Throttle,
            None,
            "ops",
            "x",
            t0()
        )
        .is_err());
    assert_eq!(
        m.impose(
            &Subject::caller_id("no-such-trunk", "861012345678"),
            Step::SuspendNumber,
            None,
            "ops",
            "typo",
            t0()
        ),
        Err(EnforcementError::UnknownTrunk("no-such-trunk".into()))
    );
    assert_eq!(
        m.impose(
            &Subject::caller_id(TRUNK, "861099999999"),
            Step::SuspendNumber,
            None,
            "ops",
            "not ours",
            t0()
        ),
        Err(EnforcementError::NotTheTrunksNumber {
            trunk: TRUNK.into(),
            number: "861099999999".into()
        })
    );
    assert!(m
        .impose(
            &caller(),
            Step::Throttle,
            Some(Duration::zero()),
            "ops",
            "x",
            t0()
        )
        .is_err());
    let l = m.lift(&trunk, None, "ops", "resolved", t0() + secs(5));
    assert!(matches!(
        &l[..],
        [EnforcementAction::Lift {
            why: LiftReason::Operator { .. },
            step: Step::SuspendTrunk,
            ..
        }]
    ));
    // With a duration it lifts by itself.
    m.impose(
        &caller(),
        Step::Throttle,
        Some(Duration::minutes(10)),
        "ops",
        "x",
        t0(),
    )
    .unwrap();
    assert!(m.tick(t0() + secs(599)).is_empty());
    assert_eq!(m.tick(t0() + secs(600)).actions.len(), 1);
}

#[test]
fn operator_lift_of_an_automatic_step_is_not_undone_by_the_next_call() {
    let mut m = monitor("[trunks.rules.error_rate]\nmin_sample = 2\n");
    feed(&mut m, 0, "331", Outcome::Status(404, false));
    let o = feed(&mut m, 1, "332", Outcome::Status(404, false));
    assert_eq!(imposed(&o).len(), 1);
    assert_eq!(
        m.lift(
            &caller(),
            Some(Step::SuspendNumber),
            "ops",
            "checked",
            t0() + secs(2)
        )
        .len(),
        1
    );
    assert!(feed(&mut m, 3, "333", Outcome::Status(404, false)).is_empty());
    assert!(m.in_force().is_empty());
}

#[test]
fn caller_rule_with_suspend_trunk_lands_on_the_trunk() {
    let mut m = monitor("[trunks.rules.fraud_complaint]\nstep = \"suspend_trunk\"\n");
    let o = m.on_complaint(
        &complaint("k1", "1391", ComplaintCategory::Fraud, t0()),
        t0(),
    );
    assert_eq!(imposed(&o)[0].0, Subject::trunk_of(TRUNK));
    assert_eq!(imposed(&o)[0].1, Step::SuspendTrunk);
}

#[test]
fn restore_keeps_steps_in_force_after_a_restart() {
    let mut m = monitor("[trunks.rules.error_rate]\nmin_sample = 2\n");
    feed(&mut m, 0, "331", Outcome::Status(404, false));
    feed(&mut m, 1, "332", Outcome::Status(404, false));
    m.impose(
        &Subject::trunk_of(TRUNK),
        Step::Throttle,
        None,
        "ops",
        "x",
        t0(),
    )
    .unwrap();
    let saved = m.in_force();
    assert_eq!(saved.len(), 2);
    let mut fresh = monitor("[trunks.rules.error_rate]\nmin_sample = 2\n");
    let later = t0() + Duration::minutes(5);
    fresh.restore(&saved, 0, later);
    assert_eq!(fresh.in_force(), saved);
    // Lifts one window (1 h) after the restart at the earliest.
    assert!(fresh.tick(later + Duration::minutes(59)).is_empty());
    assert_eq!(fresh.tick(later + Duration::hours(1)).actions.len(), 1);
    let next = fresh
        .impose(&caller(), Step::Alert, None, "ops", "x", later)
        .unwrap();
    match &next[..] {
        [EnforcementAction::Impose(i)] => assert!(saved.iter().all(|s| s.id < i.id)),
        other => panic!("{other:?}"),
    }
}
