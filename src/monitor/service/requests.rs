//! Operators' orders that another process (the CLI) stored in `enforcement_requests`.

use chrono::Utc;
use std::sync::atomic::Ordering;

use super::MonitorService;
use crate::model::Step;
use crate::model::StepAction;
use crate::monitor::enforcement::EnforcementAction;
use crate::monitor::persist;

impl MonitorService {
    pub(super) async fn handle_request(&mut self, r: crate::store::EnforcementRequest) {
        let now = Utc::now();
        let req = &r.request;
        let outcome: Result<Vec<EnforcementAction>, String> =
            match persist::subject_of_key(&req.subject) {
                None => Err(format!("unknown subject kind `{}`", req.subject.kind)),
                Some(subject) => {
                    let step = req
                        .step
                        .as_deref()
                        .map(|s| Step::from_code(s).ok_or_else(|| format!("unknown step `{s}`")));
                    let action = req.action.parse::<StepAction>();
                    match (action, step.transpose()) {
                        (_, Err(e)) => Err(e),
                        (Err(_), _) => Err(format!("unknown action `{}`", req.action)),
                        (Ok(StepAction::Impose), Ok(Some(step))) => self
                            .engine
                            .impose(
                                &subject,
                                step,
                                req.duration_secs.map(chrono::Duration::seconds),
                                &req.operator,
                                &req.reason,
                                now,
                            )
                            .map_err(|e| e.to_string()),
                        (Ok(StepAction::Impose), Ok(None)) => {
                            Err("impose needs a step".to_string())
                        }
                        (Ok(StepAction::Lift), Ok(step)) => {
                            Ok(self
                                .engine
                                .lift(&subject, step, &req.operator, &req.reason, now))
                        }
                    }
                }
            };
        let (state, result) = match outcome {
            Ok(actions) => {
                let summary = describe(&actions);
                self.apply_and_log(actions).await;
                ("applied", summary)
            }
            Err(e) => ("rejected", e),
        };
        self.shared.requests_handled.fetch_add(1, Ordering::Relaxed);
        tracing::info!(request = r.id, state, result = %result, operator = %req.operator, "operator request handled");
        if let Err(e) = self
            .store
            .finish_enforcement_request(r.id, state, &result, now)
            .await
        {
            tracing::warn!(request = r.id, error = %e, "cannot mark the request handled");
        }
    }
}

/// One line per action, for a request's result.
fn describe(actions: &[EnforcementAction]) -> String {
    if actions.is_empty() {
        return "nothing to do".to_string();
    }
    actions
        .iter()
        .map(|a| match a {
            EnforcementAction::Impose(i) => format!(
                "imposed {} on {} (step {}{})",
                i.step,
                i.subject,
                i.id,
                i.until
                    .map(|u| format!(", until {}", u.to_rfc3339()))
                    .unwrap_or_default()
            ),
            EnforcementAction::Lift {
                id, subject, step, ..
            } => format!("lifted {step} on {subject} (step {id})"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}
