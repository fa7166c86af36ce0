//! The monitor's values as the store's rows, and back: subjects, anomalies, enforcement log
//! entries, complaints.

use chrono::{DateTime, Utc};

use super::enforcement::{Cause, EnforcementAction, Imposition, LiftReason};
use super::kpi::{bucket_rows, KpiCounters, Subject};
use super::rules::{Anomaly, Complaint, ComplaintCategory, ComplaintSource};
use crate::model::{Cdr, StepAction, SubjectKind};
use crate::store::{
    AnomalyRow, BucketKey, EnforcementEntry, NewEnforcement, StoredComplaint, SubjectKey,
};

pub fn subject_key(s: &Subject) -> SubjectKey {
    SubjectKey {
        kind: s.kind().to_string(),
        trunk: s.trunk().to_string(),
        number: s.number().unwrap_or("").to_string(),
    }
}

/// `None` for a kind this version does not know.
pub fn subject_of_key(k: &SubjectKey) -> Option<Subject> {
    let kind = k.kind.parse::<SubjectKind>().ok()?;
    Some(Subject::of_kind(kind, &k.trunk, &k.number))
}

/// The bucket rows one stored CDR adds to (the CDR writer's rollup).
pub fn rollup(cdr: &Cdr, over_long_secs: u64) -> Vec<(BucketKey, KpiCounters)> {
    bucket_rows(cdr, over_long_secs)
        .into_iter()
        .map(|(subject, hour_start, k)| {
            (
                BucketKey {
                    subject: subject_key(&subject),
                    hour_start,
                },
                k,
            )
        })
        .collect()
}

/// An anomaly row; `step` is what was imposed for it (or the rule's step when nothing new was).
pub fn anomaly_row(a: &Anomaly, step: &str) -> AnomalyRow {
    AnomalyRow {
        id: a.id.to_string(),
        detected_at: a.at,
        rule: a.rule.code().to_string(),
        subject: subject_key(&a.subject),
        window_secs: a.window.span().num_seconds(),
        observed: a.observed,
        threshold: a.threshold,
        sample: i64::try_from(a.sample).unwrap_or(i64::MAX),
        step: step.to_string(),
        detail: format!(
            "{} {} over {}: observed {} against {} with {} in the sample",
            a.subject, a.rule, a.window, a.observed, a.threshold, a.sample
        ),
        call_ids: a.examples.clone(),
    }
}

/// The log row of an action.
pub fn log_row(action: &EnforcementAction) -> NewEnforcement {
    let detail_json = serde_json::to_string(action).unwrap_or_else(|_| "{}".to_string());
    match action {
        EnforcementAction::Impose(i) => {
            let (cause, rule, anomaly_id, operator, reason) = match &i.cause {
                Cause::Rule {
                    rule,
                    anomaly_id,
                    escalated_from,
                    ..
                } => (
                    "rule",
                    Some(rule.code().to_string()),
                    Some(anomaly_id.to_string()),
                    None,
                    match escalated_from {
                        Some(from) => format!("{rule} fired again: escalated from {from}"),
                        None => format!("{rule} fired"),
                    },
                ),
                Cause::Operator { name, reason } => {
                    ("operator", None, None, Some(name.clone()), reason.clone())
                }
            };
            NewEnforcement {
                at: i.at,
                action: StepAction::Impose.as_str().into(),
                imposition: id_of(i.id),
                subject: subject_key(&i.subject),
                step: i.step.code().into(),
                until: i.until,
                cause: cause.into(),
                rule,
                anomaly_id,
                operator,
                reason,
                detail_json,
            }
        }
        EnforcementAction::Lift {
            id,
            subject,
            step,
            at,
            why,
        } => {
            let (cause, operator, reason) = match why {
                LiftReason::Resumed => (
                    "resumed",
                    None,
                    "resume time passed and the rule stayed clear".to_string(),
                ),
                LiftReason::Escalated { by_id } => {
                    ("escalated", None, format!("replaced by step {by_id}"))
                }
                LiftReason::Operator { name, reason } => {
                    ("operator", Some(name.clone()), reason.clone())
                }
            };
            NewEnforcement {
                at: *at,
                action: StepAction::Lift.as_str().into(),
                imposition: id_of(*id),
                subject: subject_key(subject),
                step: step.code().into(),
                until: None,
                cause: cause.into(),
                rule: None,
                anomaly_id: None,
                operator,
                reason,
                detail_json,
            }
        }
    }
}

fn id_of(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

/// The imposition an `impose` row recorded; `None` for lift rows and rows that do not decode.
pub fn imposition_of(entry: &EnforcementEntry) -> Option<Imposition> {
    match serde_json::from_str::<EnforcementAction>(&entry.entry.detail_json) {
        Ok(EnforcementAction::Impose(i)) => Some(i),
        _ => None,
    }
}

/// A stored complaint as the rules take it; `None` when its codes are unknown.
pub fn complaint_of(s: &StoredComplaint) -> Option<Complaint> {
    let category = match s.complaint.category.as_str() {
        "harassment" => ComplaintCategory::Harassment,
        "fraud" => ComplaintCategory::Fraud,
        "false_information" => ComplaintCategory::FalseInformation,
        "other" => ComplaintCategory::Other,
        _ => return None,
    };
    let source = match s.complaint.source.as_str() {
        "carrier" => ComplaintSource::Carrier,
        "regulator" => ComplaintSource::Regulator,
        "internal" => ComplaintSource::Internal,
        _ => return None,
    };
    Some(Complaint {
        id: s.id.to_string(),
        complainant: s.complaint.complainant.clone(),
        caller_id: s.complaint.caller_id.clone(),
        time: s.complaint.received_at,
        category,
        source,
        text: s.complaint.text.clone(),
    })
}

/// What a complaint adds to the persisted buckets: one complaint for its caller ID and trunk,
/// in the hour of its time.
pub fn complaint_rollup(
    trunk: &str,
    caller_id: &str,
    at: DateTime<Utc>,
) -> Vec<(BucketKey, KpiCounters)> {
    let k = KpiCounters {
        complaints: 1,
        ..KpiCounters::default()
    };
    let hour_start = super::kpi::hour_start(at);
    [
        Subject::trunk_of(trunk),
        Subject::caller_id(trunk, caller_id),
    ]
    .iter()
    .map(|s| {
        (
            BucketKey {
                subject: subject_key(s),
                hour_start,
            },
            k.clone(),
        )
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RuleId, RuleWindow};
    use crate::model::Step;

    fn t() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn subjects_round_trip() {
        for s in [
            Subject::trunk_of("demo"),
            Subject::caller_id("demo", "861012345678"),
            Subject::callee("demo", "8613900000001"),
        ] {
            assert_eq!(subject_of_key(&subject_key(&s)), Some(s));
        }
        let odd = SubjectKey {
            kind: "planet".into(),
            trunk: "x".into(),
            number: String::new(),
        };
        assert_eq!(subject_of_key(&odd), None);
    }

    #[test]
    fn an_imposition_round_trips_through_its_log_row() {
        let i = Imposition {
            id: 1_790_000_000_000_001,
            subject: Subject::caller_id("demo", "861012345678"),
            step: Step::SuspendNumber,
            at: t(),
            until: Some(t() + chrono::Duration::minutes(30)),
            cause: Cause::Rule {
                rule: RuleId::ErrorRate,
                anomaly_id: 42,
                rule_subject: Subject::caller_id("demo", "861012345678"),
                escalated_from: None,
            },
        };
        let row = log_row(&EnforcementAction::Impose(i.clone()));
        assert_eq!(row.action, "impose");
        assert_eq!(row.cause, "rule");
        assert_eq!(row.rule.as_deref(), Some("error_rate"));
        assert_eq!(row.anomaly_id.as_deref(), Some("42"));
        assert_eq!(row.step, "suspend_number");
        let entry = EnforcementEntry { id: 1, entry: row };
        assert_eq!(imposition_of(&entry), Some(i));

        let lift = log_row(&EnforcementAction::Lift {
            id: 7,
            subject: Subject::trunk_of("demo"),
            step: Step::Throttle,
            at: t(),
            why: LiftReason::Operator {
                name: "alice".into(),
                reason: "carrier agreed".into(),
            },
        });
        assert_eq!(
            (lift.action.as_str(), lift.cause.as_str(), lift.imposition),
            ("lift", "operator", 7)
        );
        assert_eq!(lift.operator.as_deref(), Some("alice"));
        assert_eq!(
            imposition_of(&EnforcementEntry { id: 2, entry: lift }),
            None
        );
    }

    #[test]
    fn anomaly_rows_carry_the_evidence() {
        let a = Anomaly {
            id: 9,
            rule: RuleId::ErrorRate,
            subject: Subject::caller_id("demo", "861012345678"),
            window: RuleWindow::Hour,
            observed: 0.5,
            threshold: 0.1,
            sample: 100,
            examples: vec!["C1".into()],
            at: t(),
        };
        let row = anomaly_row(&a, "suspend_number");
        assert_eq!(row.id, "9");
        assert_eq!(row.window_secs, 3600);
        assert_eq!(row.sample, 100);
        assert_eq!(row.call_ids, vec!["C1".to_string()]);
        assert!(row.detail.contains("error_rate"), "{}", row.detail);
    }
}
