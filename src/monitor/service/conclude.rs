//! What the running monitor does with the engine's decisions: applies the enforcement actions
//! to admission (and ends live calls a suspension covers), stores anomalies and log rows, and
//! keeps what the database refused for a later retry.

use super::*;

impl MonitorService {
    /// Applies and stores what the engine decided: each anomaly with the actions it caused.
    pub(super) async fn conclude(&mut self, out: MonitorOutput) {
        if out.is_empty() {
            return;
        }
        self.apply(&out.actions);
        let mut by_anomaly: BTreeMap<u64, Vec<NewEnforcement>> = BTreeMap::new();
        let mut others = Vec::new();
        for action in &out.actions {
            let row = persist::log_row(action);
            match action {
                EnforcementAction::Impose(Imposition {
                    cause: crate::monitor::enforcement::Cause::Rule { anomaly_id, .. },
                    ..
                }) if out.anomalies.iter().any(|a| a.id == *anomaly_id) => {
                    by_anomaly.entry(*anomaly_id).or_default().push(row)
                }
                _ => others.push(row),
            }
        }
        for a in &out.anomalies {
            self.shared.anomalies.fetch_add(1, Ordering::Relaxed);
            let rows = by_anomaly.remove(&a.id).unwrap_or_default();
            let step = rows.first().map_or("none", |r| r.step.as_str()).to_string();
            tracing::warn!(anomaly = a.id, rule = %a.rule, subject = %a.subject,
                observed = a.observed, threshold = a.threshold, sample = a.sample,
                step = %step, "anomaly");
            let row = persist::anomaly_row(a, &step);
            if let Err(e) = self.store.record_anomaly(&row, &rows).await {
                tracing::warn!(anomaly = a.id, error = %e, "cannot store the anomaly; will retry");
                self.keep(Unsaved::Anomaly(Box::new(row), rows));
            }
        }
        if !others.is_empty() {
            if let Err(e) = self.store.append_enforcement(&others).await {
                tracing::warn!(error = %e, "cannot write the enforcement log; will retry");
                self.keep(Unsaved::Log(others));
            }
        }
        if !out.actions.is_empty() {
            self.announce();
        }
    }

    pub(super) async fn apply_and_log(&mut self, actions: Vec<EnforcementAction>) {
        self.conclude(MonitorOutput {
            anomalies: Vec::new(),
            actions,
        })
        .await;
    }

    /// Admission first (the very next call sees it), then live calls on a suspension.
    pub(super) fn apply(&mut self, actions: &[EnforcementAction]) {
        for action in actions {
            self.shared.actions.fetch_add(1, Ordering::Relaxed);
            action.apply_to(self.policy.restrictions());
            match action {
                EnforcementAction::Impose(i) => {
                    self.applied.insert(i.id, i.clone());
                    tracing::warn!(id = i.id, subject = %i.subject, step = %i.step, until = ?i.until, "enforcement step imposed");
                    self.hang_up_if_suspended(i);
                }
                EnforcementAction::Lift {
                    id, subject, step, ..
                } => {
                    self.applied.remove(id);
                    tracing::info!(id, subject = %subject, step = %step, "enforcement step lifted")
                }
            }
        }
    }

    pub(super) fn hang_up_if_suspended(&self, i: &Imposition) {
        let trunk = i.subject.trunk();
        if !self.hangup_on_suspend.get(trunk).copied().unwrap_or(false) {
            return;
        }
        let ended = match (i.step, &i.subject) {
            (Step::SuspendTrunk, _) => self.calls.hang_up(trunk, None, EndReason::TrunkSuspended),
            (Step::SuspendNumber, Subject::CallerId { number, .. }) => {
                self.calls
                    .hang_up(trunk, Some(number), EndReason::CallerIdSuspended)
            }
            _ => 0,
        };
        if ended > 0 {
            tracing::warn!(subject = %i.subject, calls = ended, "live calls ended by the suspension");
        }
    }

    pub(super) fn keep(&mut self, w: Unsaved) {
        if self.unsaved.len() >= MAX_UNSAVED {
            self.unsaved.remove(0);
            self.shared.unsaved_dropped.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                "enforcement writes pile up while the database refuses them; oldest dropped"
            );
        }
        self.unsaved.push(w);
        self.shared
            .unsaved
            .store(self.unsaved.len() as u64, Ordering::Relaxed);
    }

    pub(super) async fn retry_unsaved(&mut self) {
        let pending = std::mem::take(&mut self.unsaved);
        let had = pending.len();
        let mut left = Vec::new();
        let mut failing = false;
        for w in pending {
            if failing {
                left.push(w);
                continue;
            }
            let res = match &w {
                Unsaved::Anomaly(a, rows) => self.store.record_anomaly(a, rows).await.map(drop),
                Unsaved::Log(rows) => self.store.append_enforcement(rows).await.map(drop),
            };
            if res.is_err() {
                failing = true;
                left.push(w);
            }
        }
        let stored = had - left.len();
        self.unsaved = left;
        self.shared
            .unsaved
            .store(self.unsaved.len() as u64, Ordering::Relaxed);
        if stored > 0 {
            self.announce();
        }
    }
}
