//! A follower's operators' orders (its HTTP API): checked here, then handed to the cluster's
//! monitor leader as an `enforcement_requests` row (the path the CLI uses) with a notice on the
//! bus. A task waits (at most `FORWARD_WAIT`) for the leader to handle it, reads what it wrote
//! to the log, has this node mirror it, and answers with those log entries; the monitor's loop
//! is not held meanwhile.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::oneshot;

use super::{Command, MonitorError, MonitorService, Reply};
use crate::cluster::bus::{Change, ChangeBus};
use crate::model::{Step, StepAction, Subject};
use crate::monitor::enforcement::EnforcementAction;
use crate::monitor::persist;
use crate::store::{EnforcementEntry, NewRequest, Store};

/// How long a follower's API waits for the leader to handle its order.
pub const FORWARD_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);
/// Log rows read back for the answer, at most.
const LOG_ROWS: u32 = 1_000;

impl MonitorService {
    pub(super) fn forward_impose(
        &self,
        subject: Subject,
        step: Step,
        duration: Option<chrono::Duration>,
        operator: String,
        reason: String,
        reply: Reply,
    ) {
        // A bad order is answered here, with the same errors as the leader's.
        if let Err(e) = self.engine.check_order(&subject, step, duration) {
            let _ = reply.send(Err(e.into()));
            return;
        }
        self.forward(
            NewRequest {
                requested_at: Utc::now(),
                action: StepAction::Impose.as_str().to_string(),
                subject: persist::subject_key(&subject),
                step: Some(step.code().to_string()),
                duration_secs: duration.map(|d| d.num_seconds()),
                operator,
                reason,
            },
            reply,
        );
    }

    pub(super) fn forward_lift(
        &self,
        subject: Subject,
        step: Option<Step>,
        operator: String,
        reason: String,
        reply: Reply,
    ) {
        self.forward(
            NewRequest {
                requested_at: Utc::now(),
                action: StepAction::Lift.as_str().to_string(),
                subject: persist::subject_key(&subject),
                step: step.map(|s| s.code().to_string()),
                duration_secs: None,
                operator,
                reason,
            },
            reply,
        );
    }

    fn forward(&self, request: NewRequest, reply: Reply) {
        let Some(c) = &self.cluster else {
            return;
        };
        let store = self.store.clone();
        let bus = c.bus().clone();
        let commands = c.commands.clone();
        tokio::spawn(async move {
            let answer = hand_over(&store, &bus, &request).await;
            if answer.is_ok() {
                // Applied here too before the API answers: the next call on this node sees it.
                if let Some(tx) = commands.upgrade() {
                    let (done, wait) = oneshot::channel();
                    if tx.send(Command::Mirror(done)).await.is_ok() {
                        let _ = wait.await;
                    }
                }
            }
            let _ = reply.send(answer);
        });
    }
}

/// Stores the request, tells the leader, waits for its outcome; the log entries it wrote.
async fn hand_over(
    store: &Store,
    bus: &ChangeBus,
    request: &NewRequest,
) -> Result<Vec<EnforcementAction>, MonitorError> {
    let last_log = store.last_enforcement_id().await?;
    let id = store.insert_enforcement_request(request).await?;
    // Without the notice the leader still finds it at its next poll (a second).
    let _ = bus.publish(Change::Enforcement).await;
    let started = tokio::time::Instant::now();
    let handled = loop {
        if let Some(r) = store.enforcement_request(id).await? {
            if r.state != "pending" {
                break r;
            }
        }
        if started.elapsed() >= FORWARD_WAIT {
            tracing::warn!(
                request = id,
                "the monitor leader did not handle a forwarded order in time"
            );
            return Err(MonitorError::NotHandled {
                request: id,
                waited: FORWARD_WAIT,
            });
        }
        tokio::time::sleep(POLL).await;
    };
    if handled.state != "applied" {
        return Err(MonitorError::Rejected {
            request: id,
            reason: handled.result.unwrap_or_default(),
        });
    }
    let rows = store.enforcement_after(last_log, LOG_ROWS).await?;
    Ok(rows
        .iter()
        .filter(|e| written_for(e, request))
        .filter_map(|e| serde_json::from_str(&e.entry.detail_json).ok())
        .collect())
}

/// Whether a log row is what the leader wrote for `request`.
fn written_for(e: &EnforcementEntry, request: &NewRequest) -> bool {
    let r = &e.entry;
    r.action == request.action
        && r.subject == request.subject
        && r.operator.as_deref() == Some(request.operator.as_str())
        && r.reason == request.reason
        && request.step.as_deref().is_none_or(|s| s == r.step)
}
