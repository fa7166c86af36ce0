//! The enforcement ladder (the carrier's "technical measures"): alert → throttle →
//! suspend_number → suspend_trunk. The ladder decides; its output is a list of
//! `EnforcementAction`s that the caller appends to the enforcement log and applies to the
//! policy's `Restrictions`.
//!
//! What a step means on each subject kind:
//! - **trunk**: alert; throttle (the trunk's `max_concurrent` cut to `throttle_share`);
//!   suspend_trunk (every new call `403 Trunk Suspended`). suspend_number has no meaning on a
//!   trunk: config validation refuses it on trunk rules, operators get an error.
//! - **caller ID**: alert; throttle (its `max_concurrent_per_caller_id` cut); suspend_number
//!   (`403 Caller ID Suspended`); suspend_trunk on a caller-ID rule suspends the number's
//!   trunk (the imposition's subject is then the trunk).
//! - **called number**: alert only; admission's callee frequency limit is its enforcement.
//!
//! Lifecycle of an automatic step: a rule fires (its condition turns true with its minimum
//! sample) → the rule's step is imposed on the subject for `resume_after`. It lifts at the first
//! `tick` (or event) when `resume_after` has passed **and** the rule has stayed clear for its
//! window (hysteresis: no evaluation found it true during the last window). A rule that fires
//! again — it cleared and crossed again while its step is in force, or within `repeat_memory`
//! (default 24 h) after its step lifted — escalates one step: trunk alert → throttle →
//! suspend_trunk; caller ID alert → throttle → suspend_number (automatic escalation never turns
//! one number's trouble into a whole-trunk suspension; a rule configured with suspend_trunk, or
//! an operator, does that); callee alerts do not escalate. While a step is in force the rule
//! does not fire again on each following call.
//!
//! Operators impose any step on any subject (as mapped above) with a reason, with or without a
//! duration, and lift any step in force, automatic or manual. Lifting an automatic step by hand
//! also resets that rule's ladder level for the subject, and the rule fires again only after it
//! has cleared and crossed anew.

mod ladder;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use ladder::{Ladder, LadderStats};

use crate::config::RuleId;
use crate::model::Step;
use crate::model::Subject;
use crate::policy::Restrictions;

/// Why a step was imposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Cause {
    /// A rule fired; `anomaly_id` is the stored anomaly; `rule_subject` is what the rule
    /// measured (it differs from the imposition's subject when a caller-ID rule suspends the
    /// trunk). `escalated_from`: the step this one escalates.
    Rule {
        rule: RuleId,
        anomaly_id: u64,
        rule_subject: Subject,
        escalated_from: Option<Step>,
    },
    Operator {
        name: String,
        reason: String,
    },
}

/// Why a step was lifted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum LiftReason {
    /// Its time passed and its rule stayed clear for its window (or, manual with a duration,
    /// its time passed).
    Resumed,
    /// Replaced by the imposition `by_id` (the next step of the ladder).
    Escalated {
        by_id: u64,
    },
    Operator {
        name: String,
        reason: String,
    },
}

/// One step in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Imposition {
    pub id: u64,
    pub subject: Subject,
    pub step: Step,
    pub at: DateTime<Utc>,
    /// Earliest lift; `None`: until lifted by hand.
    pub until: Option<DateTime<Utc>>,
    pub cause: Cause,
}

/// An entry of the append-only enforcement log, and an order to the policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum EnforcementAction {
    Impose(Imposition),
    Lift {
        /// The imposition lifted.
        id: u64,
        subject: Subject,
        step: Step,
        at: DateTime<Utc>,
        why: LiftReason,
    },
}

impl EnforcementAction {
    pub fn subject(&self) -> &Subject {
        match self {
            EnforcementAction::Impose(i) => &i.subject,
            EnforcementAction::Lift { subject, .. } => subject,
        }
    }

    pub fn step(&self) -> Step {
        match self {
            EnforcementAction::Impose(i) => i.step,
            EnforcementAction::Lift { step, .. } => *step,
        }
    }

    /// Apply this entry to admission's steps in force.
    pub fn apply_to(&self, restrictions: &Restrictions) {
        match self {
            EnforcementAction::Impose(i) => restrictions.impose(i.id, &i.subject, i.step),
            EnforcementAction::Lift { id, subject, .. } => restrictions.lift(*id, subject),
        }
    }
}

/// An operator's order that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnforcementError {
    #[error("{step} cannot apply to a {kind} subject: {hint}")]
    StepNotApplicable {
        step: Step,
        kind: &'static str,
        hint: &'static str,
    },
    #[error("a duration must be positive")]
    NonPositiveDuration,
    /// An order about a trunk the configuration does not have (a typo would otherwise be
    /// "applied" and change nothing).
    #[error("{number} is not a number of trunk `{trunk}`")]
    NotTheTrunksNumber { trunk: String, number: String },
    #[error("no trunk is named `{0}`")]
    UnknownTrunk(String),
}

/// Whether `step` can be imposed on `subject` directly (operator orders, restored log entries).
pub fn check_step(subject: &Subject, step: Step) -> Result<(), EnforcementError> {
    let err = |hint| {
        Err(EnforcementError::StepNotApplicable {
            step,
            kind: subject.kind().as_str(),
            hint,
        })
    };
    match (subject, step) {
        (Subject::Callee { .. }, Step::Alert) => Ok(()),
        (Subject::Callee { .. }, _) => err("a called number can only be alerted on"),
        (Subject::Trunk { .. }, Step::SuspendNumber) => err("suspend a caller ID, or the trunk"),
        (Subject::CallerId { .. }, Step::SuspendTrunk) => err("suspend the trunk subject"),
        _ => Ok(()),
    }
}

/// The next step of the ladder for a rule's subject kind (see the module doc); the same step
/// at the top.
pub fn escalate(subject: &Subject, step: Step) -> Step {
    match (subject, step) {
        (Subject::Callee { .. }, _) => Step::Alert,
        (Subject::Trunk { .. }, Step::Alert) => Step::Throttle,
        (Subject::Trunk { .. }, _) => Step::SuspendTrunk,
        (Subject::CallerId { .. }, Step::Alert) => Step::Throttle,
        (Subject::CallerId { .. }, Step::Throttle) => Step::SuspendNumber,
        (Subject::CallerId { .. }, s) => s,
    }
}

/// The subject a step lands on: a caller-ID rule's suspend_trunk lands on its trunk.
pub fn target(rule_subject: &Subject, step: Step) -> Subject {
    match (rule_subject, step) {
        (Subject::CallerId { trunk, .. }, Step::SuspendTrunk) => Subject::trunk_of(trunk),
        (s, _) => s.clone(),
    }
}
