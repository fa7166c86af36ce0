//! What enforcement and the KPIs are about: a subject — a trunk, one of its caller IDs, or a
//! number it calls. The policy restricts subjects, the monitor measures them, the store keeps
//! their rows.

use serde::{Deserialize, Serialize};

use super::outcome::RefusalReason;
use super::side::Direction;
use crate::model::Cdr;

/// What kind of subject: the `kind` of KPI rows, anomalies and enforcement entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Trunk,
    CallerId,
    Callee,
}
text_enum!(SubjectKind, "subject kind", {
    Trunk => "trunk", CallerId => "caller_id", Callee => "callee",
});

/// The enforcement ladder, in escalation order (`Ord` follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Alert,
    Throttle,
    SuspendNumber,
    SuspendTrunk,
}
text_enum!(Step, "step", {
    Alert => "alert", Throttle => "throttle", SuspendNumber => "suspend_number",
    SuspendTrunk => "suspend_trunk",
});

impl Step {
    /// The step's code (as in config keys, stored rows and JSON).
    pub fn code(self) -> &'static str {
        self.as_str()
    }

    pub fn from_code(code: &str) -> Option<Step> {
        code.parse().ok()
    }
}

/// An entry of the enforcement log, or an operator's request: a step imposed or lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    Impose,
    Lift,
}
text_enum!(StepAction, "enforcement action", { Impose => "impose", Lift => "lift" });

/// Who a figure is about. Numbers are normalized digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    Trunk { trunk: String },
    CallerId { trunk: String, number: String },
    Callee { trunk: String, number: String },
}

impl Subject {
    pub fn trunk_of(trunk: &str) -> Subject {
        Subject::Trunk {
            trunk: trunk.to_string(),
        }
    }

    pub fn caller_id(trunk: &str, number: &str) -> Subject {
        Subject::CallerId {
            trunk: trunk.to_string(),
            number: number.to_string(),
        }
    }

    pub fn callee(trunk: &str, number: &str) -> Subject {
        Subject::Callee {
            trunk: trunk.to_string(),
            number: number.to_string(),
        }
    }

    pub fn trunk(&self) -> &str {
        match self {
            Subject::Trunk { trunk }
            | Subject::CallerId { trunk, .. }
            | Subject::Callee { trunk, .. } => trunk,
        }
    }

    /// The number, for caller-ID and callee subjects.
    pub fn number(&self) -> Option<&str> {
        match self {
            Subject::Trunk { .. } => None,
            Subject::CallerId { number, .. } | Subject::Callee { number, .. } => Some(number),
        }
    }

    /// `trunk`, `caller_id` or `callee`: the kind column of stored rows.
    pub fn kind(&self) -> SubjectKind {
        match self {
            Subject::Trunk { .. } => SubjectKind::Trunk,
            Subject::CallerId { .. } => SubjectKind::CallerId,
            Subject::Callee { .. } => SubjectKind::Callee,
        }
    }

    /// The subject of a kind, a trunk and (for numbers) a number, as stored in rows.
    pub fn of_kind(kind: SubjectKind, trunk: &str, number: &str) -> Subject {
        match kind {
            SubjectKind::Trunk => Subject::trunk_of(trunk),
            SubjectKind::CallerId => Subject::caller_id(trunk, number),
            SubjectKind::Callee => Subject::callee(trunk, number),
        }
    }

    /// The subjects a CDR counts on (none when it matched no trunk).
    pub fn of_cdr(cdr: &Cdr) -> Vec<Subject> {
        let Some(trunk) = cdr.attempt.trunk.as_deref() else {
            return Vec::new();
        };
        let mut out = vec![Subject::trunk_of(trunk)];
        // A caller ID refused as not ours is no number of the call center: counting it would
        // let a spoofing PBX create subjects at will. The trunk still counts the attempt.
        let foreign_caller = cdr
            .outcome
            .refusal_reason
            .is_some_and(RefusalReason::caller_is_foreign);
        if cdr.attempt.direction == Direction::Outbound {
            if let Some(n) = cdr.attempt.caller.as_deref().filter(|_| !foreign_caller) {
                out.push(Subject::caller_id(trunk, n));
            }
            if let Some(n) = cdr.attempt.callee.as_deref() {
                out.push(Subject::callee(trunk, n));
            }
        }
        out
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Trunk { trunk } => write!(f, "trunk {trunk}"),
            Subject::CallerId { trunk, number } => write!(f, "caller ID {number} on {trunk}"),
            Subject::Callee { trunk, number } => write!(f, "callee {number} on {trunk}"),
        }
    }
}
