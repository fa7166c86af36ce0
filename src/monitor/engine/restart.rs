//! The monitor after a restart: the windows refilled from the stored attempts and complaints
//! (`warm`, `warm_complaint`, over `warm_spans`), and the steps still in force put back on the
//! ladder (`restore`). Nothing here is judged again: what it caused was stored before.

use chrono::{DateTime, Duration, Utc};

use super::{kinds_of, Monitor, SubjectData, COMPLAINT_RULES};
use crate::config::{RuleId, RuleWindow};
use crate::model::normalize_number;
use crate::model::Cdr;
use crate::monitor::enforcement::{Cause, Imposition};
use crate::monitor::kpi::{KpiCounters, Subject};
use crate::monitor::rules::{CalleeAttempts, Complaint};

impl Monitor {
    /// How far back the windows reach: (calls, complaints), the longest windows configured
    /// (callee limits count a day), so that a restart can refill them.
    pub fn warm_spans(&self) -> (Duration, Duration) {
        let mut calls = RuleWindow::Day.span();
        let mut complaints = Duration::zero();
        for t in self.trunks.values() {
            for (id, cfg) in &t.rules {
                let span = cfg.window.span();
                if COMPLAINT_RULES.contains(id) {
                    complaints = complaints.max(span);
                } else {
                    calls = calls.max(span);
                }
            }
        }
        (calls, complaints)
    }

    /// After a restart: puts a stored attempt back into the windows as of when it ended, without
    /// judging it (what it caused was found, stored and restored before the restart). Fed in
    /// INVITE order, so the windows take them nearly in order.
    pub fn warm(&mut self, cdr: &Cdr) {
        let Some(trunk) = cdr.attempt.trunk.clone() else {
            return;
        };
        let k = KpiCounters::from_cdr(cdr, self.over_long_secs(&trunk));
        let kinds = kinds_of(&k);
        let at = cdr.outcome.end_at;
        for subject in Subject::of_cdr(cdr) {
            if let Subject::Callee { .. } = subject {
                let cfg = self.rule(subject.trunk(), RuleId::OverFrequentCallee);
                let keep = cfg.threshold.max(cfg.daily_threshold.unwrap_or(0.0)) as usize + 1;
                self.callees
                    .get_or_insert_with(&subject, CalleeAttempts::default)
                    .record(cdr.attempt.invite_at, &cdr.attempt.id, keep);
                continue;
            }
            let data = self
                .subjects
                .get_or_insert_with(&subject, SubjectData::default);
            data.windows.add(
                at,
                &crate::monitor::kpi::with_peak(&subject, cdr, k.clone()),
            );
            data.last_seen = Some(data.last_seen.map_or(at, |t| t.max(at)));
            for kind in &kinds {
                data.examples[*kind as usize].push(&cdr.attempt.id);
            }
        }
    }

    /// After a restart: a complaint already judged goes back into its caller ID's record.
    pub fn warm_complaint(&mut self, c: &Complaint) {
        let number = normalize_number(&c.caller_id).unwrap_or_else(|| c.caller_id.clone());
        let Some(trunk) = self.by_number.get(&number).cloned() else {
            return;
        };
        let subject = Subject::caller_id(&trunk, &number);
        let data = self
            .subjects
            .get_or_insert_with(&subject, SubjectData::default);
        data.complaints.add(c);
        data.last_seen = Some(data.last_seen.map_or(c.time, |t| t.max(c.time)));
    }

    /// After a restart: the impositions of the log that were never lifted, and the largest
    /// anomaly id stored, so that new ids stay above.
    pub fn restore(&mut self, in_force: &[Imposition], last_anomaly_id: u64, now: DateTime<Utc>) {
        self.ids.observe(last_anomaly_id);
        for i in in_force {
            let window = match &i.cause {
                Cause::Rule {
                    rule, rule_subject, ..
                } => self.rule(rule_subject.trunk(), *rule).window.span(),
                Cause::Operator { .. } => Duration::zero(),
            };
            self.ladder.restore(i.clone(), window, now);
        }
    }
}
