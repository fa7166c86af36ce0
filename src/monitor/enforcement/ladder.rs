//! The ladder's state: per (rule subject, rule) whether the rule holds, since when it is clear,
//! its step in force and its last level; plus the operators' impositions.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};

use super::{
    check_step, escalate, target, Cause, EnforcementAction, EnforcementError, Imposition,
    LiftReason,
};
use crate::bounded::LruMap;
use crate::config::{RuleConfig, RuleId};
use crate::model::Step;
use crate::model::Subject;
use crate::monitor::ids::IdGen;

type Key = (Subject, RuleId);

#[derive(Debug, Clone)]
struct Track {
    /// The rule held at its last evaluation.
    active: bool,
    /// Last evaluation that found it true.
    last_true: DateTime<Utc>,
    /// The rule's window: how long it must stay clear before its step lifts.
    window: Duration,
    imposition: Option<Imposition>,
    /// Last step imposed by this rule on this subject (escalation starts from it).
    level: Option<Step>,
    lifted_at: Option<DateTime<Utc>>,
}

impl Track {
    fn clear_since_window(&self, now: DateTime<Utc>) -> bool {
        now - self.last_true >= self.window
    }
}

/// Sizes for reports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LadderStats {
    pub tracks: usize,
    pub callee_tracks: usize,
    pub callee_tracks_evicted: u64,
    pub manual: usize,
}

#[derive(Debug)]
pub struct Ladder {
    /// Trunk and caller-ID rules: as many as numbers that ever fired, which only the call
    /// center's own numbers (and complained-about numbers) can.
    tracks: HashMap<Key, Track>,
    /// Callee alerts: bounded, any number can be called. An evicted track may alert again.
    callee_tracks: LruMap<Key, Track>,
    manual: BTreeMap<u64, Imposition>,
    ids: IdGen,
    repeat_memory: Duration,
}

impl Ladder {
    pub fn new(callee_cap: usize, repeat_memory: Duration) -> Ladder {
        Ladder {
            tracks: HashMap::new(),
            callee_tracks: LruMap::new(callee_cap),
            manual: BTreeMap::new(),
            ids: IdGen::default(),
            repeat_memory,
        }
    }

    fn track_mut(&mut self, key: &Key) -> Option<&mut Track> {
        match key.0 {
            Subject::Callee { .. } => self.callee_tracks.get_mut(key),
            _ => self.tracks.get_mut(key),
        }
    }

    /// Record a rule's evaluation for a subject. Returns true when it fires: it holds now and
    /// did not at its previous evaluation (edge), so it fires once per crossing, not per call.
    pub fn observe(
        &mut self,
        subject: &Subject,
        rule: RuleId,
        holds: bool,
        now: DateTime<Utc>,
    ) -> bool {
        let key = (subject.clone(), rule);
        match self.track_mut(&key) {
            Some(t) if holds && t.active => {
                t.last_true = now;
                false
            }
            Some(t) if !holds => {
                t.active = false;
                false
            }
            _ => holds,
        }
    }

    /// A rule fired (after `observe` said so): impose its step, or the next one on a repeat.
    pub fn fire(
        &mut self,
        subject: &Subject,
        rule: RuleId,
        cfg: &RuleConfig,
        anomaly_id: u64,
        now: DateTime<Utc>,
    ) -> Vec<EnforcementAction> {
        let key = (subject.clone(), rule);
        let fresh = || Track {
            active: true,
            last_true: now,
            window: cfg.window.span(),
            imposition: None,
            level: None,
            lifted_at: None,
        };
        let memory = self.repeat_memory;
        let new_id = self.ids.next(now);
        let track = match subject {
            Subject::Callee { .. } => self.callee_tracks.get_or_insert_with(&key, fresh),
            _ => self.tracks.entry(key).or_insert_with(fresh),
        };
        track.active = true;
        track.last_true = now;
        track.window = cfg.window.span();
        let repeat =
            track.imposition.is_some() || track.lifted_at.is_some_and(|t| now - t <= memory);
        let escalated_from = track.level.filter(|_| repeat);
        let step = match escalated_from {
            Some(level) => escalate(subject, level).max(cfg.step),
            None => cfg.step,
        };
        let step = if matches!(subject, Subject::Callee { .. }) {
            Step::Alert
        } else {
            step
        };
        let mut actions = Vec::with_capacity(2);
        if let Some(old) = track.imposition.take() {
            actions.push(EnforcementAction::Lift {
                id: old.id,
                subject: old.subject,
                step: old.step,
                at: now,
                why: LiftReason::Escalated { by_id: new_id },
            });
        }
        let imposition = Imposition {
            id: new_id,
            subject: target(subject, step),
            step,
            at: now,
            until: Some(now + cfg.resume_after),
            cause: Cause::Rule {
                rule,
                anomaly_id,
                rule_subject: subject.clone(),
                escalated_from,
            },
        };
        tracing::info!(
            rule = rule.code(), subject = %subject, step = step.code(), id = new_id,
            escalated_from = escalated_from.map(Step::code), "enforcement step imposed"
        );
        track.imposition = Some(imposition.clone());
        track.level = Some(step);
        track.lifted_at = None;
        actions.push(EnforcementAction::Impose(imposition));
        actions
    }

    /// Lift what is due at `now` and forget tracks with nothing left to remember.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<EnforcementAction> {
        let mut actions = Vec::new();
        let memory = self.repeat_memory;
        let mut visit = |t: &mut Track| {
            let due = t
                .imposition
                .as_ref()
                .is_some_and(|i| i.until.is_some_and(|u| u <= now) && t.clear_since_window(now));
            if due {
                if let Some(i) = t.imposition.take() {
                    tracing::info!(subject = %i.subject, step = i.step.code(), id = i.id, "enforcement step lifted");
                    actions.push(lift(i, now, LiftReason::Resumed));
                }
                t.active = false;
                t.lifted_at = Some(now);
            }
            // Worth keeping while something is in force, the rule holds, or a repeat would
            // still escalate.
            t.imposition.is_some()
                || (t.active && !t.clear_since_window(now))
                || t.lifted_at.is_some_and(|l| now - l <= memory)
        };
        self.tracks.retain(|_, t| visit(t));
        self.callee_tracks.retain(|_, t| visit(t));
        let due: Vec<u64> = self
            .manual
            .values()
            .filter(|i| i.until.is_some_and(|u| u <= now))
            .map(|i| i.id)
            .collect();
        for id in due {
            if let Some(i) = self.manual.remove(&id) {
                actions.push(lift(i, now, LiftReason::Resumed));
            }
        }
        actions
    }

    /// An operator imposes `step` on `subject`, for `duration` or until lifted by hand.
    pub fn impose(
        &mut self,
        subject: &Subject,
        step: Step,
        duration: Option<Duration>,
        operator: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<EnforcementAction>, EnforcementError> {
        check_step(subject, step)?;
        if duration.is_some_and(|d| d <= Duration::zero()) {
            return Err(EnforcementError::NonPositiveDuration);
        }
        let imposition = Imposition {
            id: self.ids.next(now),
            subject: subject.clone(),
            step,
            at: now,
            until: duration.map(|d| now + d),
            cause: Cause::Operator {
                name: operator.to_string(),
                reason: reason.to_string(),
            },
        };
        tracing::info!(subject = %subject, step = step.code(), operator, reason, "enforcement step imposed by hand");
        self.manual.insert(imposition.id, imposition.clone());
        Ok(vec![EnforcementAction::Impose(imposition)])
    }

    /// An operator lifts every step in force on `subject` (only `step` when given), automatic
    /// or manual.
    pub fn lift(
        &mut self,
        subject: &Subject,
        step: Option<Step>,
        operator: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Vec<EnforcementAction> {
        let why = || LiftReason::Operator {
            name: operator.to_string(),
            reason: reason.to_string(),
        };
        let matches = |i: &Imposition| &i.subject == subject && step.is_none_or(|s| s == i.step);
        let mut actions = Vec::new();
        let ids: Vec<u64> = self
            .manual
            .values()
            .filter(|i| matches(i))
            .map(|i| i.id)
            .collect();
        for id in ids {
            if let Some(i) = self.manual.remove(&id) {
                actions.push(lift(i, now, why()));
            }
        }
        let mut visit = |t: &mut Track| {
            if t.imposition.as_ref().is_some_and(matches) {
                if let Some(i) = t.imposition.take() {
                    actions.push(lift(i, now, why()));
                }
                // A deliberate lift starts the ladder afresh for this rule and subject.
                t.level = None;
                t.lifted_at = None;
            }
        };
        self.tracks.values_mut().for_each(&mut visit);
        self.callee_tracks.retain(|_, t| {
            visit(t);
            true
        });
        if !actions.is_empty() {
            tracing::info!(subject = %subject, operator, reason, lifted = actions.len(), "enforcement lifted by hand");
        }
        actions
    }

    /// Put back a step read from the log after a restart. An automatic one is treated as if its
    /// rule had just held, so it lifts no earlier than one window from now.
    pub fn restore(&mut self, imposition: Imposition, window: Duration, now: DateTime<Utc>) {
        self.ids.observe(imposition.id);
        match &imposition.cause {
            Cause::Rule {
                rule, rule_subject, ..
            } => {
                let key = (rule_subject.clone(), *rule);
                let track = Track {
                    active: true,
                    last_true: now,
                    window,
                    level: Some(imposition.step),
                    imposition: Some(imposition),
                    lifted_at: None,
                };
                match key.0 {
                    Subject::Callee { .. } => {
                        self.callee_tracks.remove(&key);
                        self.callee_tracks.get_or_insert_with(&key, || track);
                    }
                    _ => {
                        self.tracks.insert(key, track);
                    }
                }
            }
            Cause::Operator { .. } => {
                self.manual.insert(imposition.id, imposition);
            }
        }
    }

    /// Ids below this were handed out already (seed from the log's largest id).
    pub fn observe_id(&mut self, id: u64) {
        self.ids.observe(id);
    }

    /// Every step in force, oldest first.
    pub fn in_force(&self) -> Vec<Imposition> {
        let mut all: Vec<Imposition> = self
            .manual
            .values()
            .cloned()
            .chain(self.tracks.values().filter_map(|t| t.imposition.clone()))
            .chain(
                self.callee_tracks
                    .iter()
                    .filter_map(|(_, t)| t.imposition.clone()),
            )
            .collect();
        all.sort_by_key(|i| i.id);
        all
    }

    pub fn stats(&self) -> LadderStats {
        LadderStats {
            tracks: self.tracks.len(),
            callee_tracks: self.callee_tracks.len(),
            callee_tracks_evicted: self.callee_tracks.evicted(),
            manual: self.manual.len(),
        }
    }
}

fn lift(i: Imposition, now: DateTime<Utc>, why: LiftReason) -> EnforcementAction {
    EnforcementAction::Lift {
        id: i.id,
        subject: i.subject,
        step: i.step,
        at: now,
        why,
    }
}
