use super::*;
use crate::model::Subject;

#[test]
fn steps_per_subject_kind() {
    let trunk = Subject::trunk_of("t");
    let caller = Subject::caller_id("t", "1");
    let callee = Subject::callee("t", "2");
    assert!(check_step(&trunk, Step::SuspendNumber).is_err());
    assert!(check_step(&trunk, Step::SuspendTrunk).is_ok());
    assert!(check_step(&caller, Step::SuspendTrunk).is_err());
    assert!(check_step(&callee, Step::Alert).is_ok());
    assert!(check_step(&callee, Step::Throttle).is_err());
    assert_eq!(escalate(&trunk, Step::Alert), Step::Throttle);
    assert_eq!(escalate(&trunk, Step::Throttle), Step::SuspendTrunk);
    assert_eq!(escalate(&caller, Step::Throttle), Step::SuspendNumber);
    assert_eq!(escalate(&caller, Step::SuspendNumber), Step::SuspendNumber);
    assert_eq!(escalate(&callee, Step::Alert), Step::Alert);
    assert_eq!(target(&caller, Step::SuspendTrunk), trunk);
    assert_eq!(target(&caller, Step::Throttle), caller);
}

#[test]
fn actions_serialize_for_the_log() {
    let a = EnforcementAction::Lift {
        id: 3,
        subject: Subject::caller_id("t", "1"),
        step: Step::SuspendNumber,
        at: crate::monitor::testkit::t0(),
        why: LiftReason::Operator {
            name: "ops".into(),
            reason: "checked".into(),
        },
    };
    let json = serde_json::to_string(&a).unwrap();
    assert!(json.contains("\"action\":\"lift\""), "{json}");
    assert!(json.contains("\"kind\":\"caller_id\""), "{json}");
    let back: EnforcementAction = serde_json::from_str(&json).unwrap();
    assert_eq!(back, a);
}
