//! `Monitor`: the KPI windows, rules and enforcement ladder of all trunks, owned by one task.
//! Every method takes its events and the time, and returns the anomalies to store and the
//! enforcement actions to log and apply (`policy::Restrictions::apply`). No I/O, no clock.
//! What a restart puts back (the windows refilled, the steps in force) is `engine/restart.rs`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};

use super::enforcement::{EnforcementAction, EnforcementError, Imposition, Ladder, LadderStats};
use super::ids::IdGen;
use super::kpi::{KpiCounters, Subject, Windows};
use super::rules::{
    evaluate_callee, evaluate_complaints, evaluate_counters, Anomaly, CalleeAttempts, Complaint,
    ComplaintLog, Examples, LiveCallView, Observation,
};
use crate::bounded::LruMap;
use crate::config::{RuleConfig, RuleId, RuleWindow, TrunkConfig};
use crate::model::normalize_number;
use crate::model::Cdr;
use crate::model::Step;

mod restart;

/// Memory bounds and timing of the monitor.
#[derive(Debug, Clone, Copy)]
pub struct MonitorLimits {
    /// Trunk and caller-ID subjects kept (least recently active evicted beyond).
    pub max_subjects: usize,
    /// Called numbers kept (least recently called evicted beyond); also callee alert tracks.
    pub max_callees: usize,
    /// A rule firing again this long after its step lifted still escalates.
    pub repeat_memory: Duration,
}

impl Default for MonitorLimits {
    fn default() -> Self {
        MonitorLimits {
            max_subjects: 50_000,
            max_callees: 100_000,
            repeat_memory: Duration::hours(24),
        }
    }
}

/// What an event produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MonitorOutput {
    pub anomalies: Vec<Anomaly>,
    pub actions: Vec<EnforcementAction>,
}

impl MonitorOutput {
    pub fn is_empty(&self) -> bool {
        self.anomalies.is_empty() && self.actions.is_empty()
    }
}

/// Sizes and evictions, for /metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MonitorStats {
    pub subjects: usize,
    pub subjects_evicted: u64,
    pub callees: usize,
    pub callees_evicted: u64,
    pub complaints_unmatched: u64,
    /// Live calls already alerted as over-long (bounded by the live calls).
    pub long_calls_alerted: usize,
    pub ladder: LadderStats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Attempt,
    Unanswered,
    Invalid,
    Network,
    Short,
    OutsideHours,
    Unauthorized,
    Silent,
}

const KINDS: usize = 8;

#[derive(Debug, Default)]
struct SubjectData {
    windows: Windows,
    examples: [Examples; KINDS],
    complaints: ComplaintLog,
    last_seen: Option<DateTime<Utc>>,
}

#[derive(Debug)]
struct TrunkRules {
    rules: HashMap<RuleId, RuleConfig>,
}

impl TrunkRules {
    fn get(&self, rule: RuleId) -> RuleConfig {
        self.rules
            .get(&rule)
            .copied()
            .unwrap_or_else(|| rule.default_config())
    }
}

#[derive(Debug)]
pub struct Monitor {
    trunks: HashMap<String, TrunkRules>,
    by_number: HashMap<String, String>,
    subjects: LruMap<Subject, SubjectData>,
    callees: LruMap<Subject, CalleeAttempts>,
    long_calls_alerted: HashSet<String>,
    ladder: Ladder,
    ids: IdGen,
    complaints_unmatched: u64,
}

/// Rules measured on the KPI windows, by subject kind.
const TRUNK_RULES: [RuleId; 3] = [
    RuleId::NetworkErrors,
    RuleId::OutsideHours,
    RuleId::UnauthorizedCallerId,
];
const CALLER_RULES: [RuleId; 5] = [
    RuleId::OverFrequentNumber,
    RuleId::LowAnswerRate,
    RuleId::ErrorRate,
    RuleId::ShortCalls,
    RuleId::SilentCalls,
];
const COMPLAINT_RULES: [RuleId; 3] = [
    RuleId::ComplaintBatch,
    RuleId::RepeatedComplaint,
    RuleId::FraudComplaint,
];

impl Monitor {
    pub fn new(trunks: &[TrunkConfig], limits: MonitorLimits) -> Monitor {
        let mut m = Monitor {
            trunks: HashMap::new(),
            by_number: HashMap::new(),
            subjects: LruMap::new(limits.max_subjects),
            callees: LruMap::new(limits.max_callees),
            long_calls_alerted: HashSet::new(),
            ladder: Ladder::new(limits.max_callees, limits.repeat_memory),
            ids: IdGen::default(),
            complaints_unmatched: 0,
        };
        m.replace_trunks(trunks);
        m
    }

    /// Apply edited trunk configs; windows and steps in force are kept.
    pub fn replace_trunks(&mut self, trunks: &[TrunkConfig]) {
        self.trunks = trunks
            .iter()
            .map(|t| {
                let rules = RuleId::ALL.into_iter().map(|r| (r, t.rule(r))).collect();
                (t.name.clone(), TrunkRules { rules })
            })
            .collect();
        self.by_number = crate::policy::number_owners(trunks);
    }

    fn rule(&self, trunk: &str, rule: RuleId) -> RuleConfig {
        self.trunks
            .get(trunk)
            .map(|t| t.get(rule))
            .unwrap_or_else(|| rule.default_config())
    }

    /// The over-long threshold of a trunk, in seconds (for `KpiCounters::from_cdr`).
    pub fn over_long_secs(&self, trunk: &str) -> u64 {
        self.rule(trunk, RuleId::OverLongCall).threshold as u64
    }

    /// Every call attempt's CDR (refused ones too) at `now`, when it is final.
    pub fn on_cdr(&mut self, cdr: &Cdr, now: DateTime<Utc>) -> MonitorOutput {
        let mut out = MonitorOutput::default();
        let Some(trunk) = cdr.attempt.trunk.clone() else {
            return out;
        };
        let k = KpiCounters::from_cdr(cdr, self.over_long_secs(&trunk));
        let kinds = kinds_of(&k);
        for subject in Subject::of_cdr(cdr) {
            match subject {
                Subject::Callee { .. } => self.callee_attempt(&subject, cdr, &mut out),
                _ => {
                    let data = self
                        .subjects
                        .get_or_insert_with(&subject, SubjectData::default);
                    data.windows.add(
                        now,
                        &crate::monitor::kpi::with_peak(&subject, cdr, k.clone()),
                    );
                    data.last_seen = Some(now);
                    for kind in &kinds {
                        data.examples[*kind as usize].push(&cdr.attempt.id);
                    }
                    let rules: &[RuleId] = match subject {
                        Subject::Trunk { .. } => &TRUNK_RULES,
                        _ => &CALLER_RULES,
                    };
                    for &rule in rules {
                        self.evaluate(&subject, rule, now, &mut out);
                    }
                }
            }
        }
        out
    }

    fn evaluate(
        &mut self,
        subject: &Subject,
        rule: RuleId,
        now: DateTime<Utc>,
        out: &mut MonitorOutput,
    ) {
        let cfg = self.rule(subject.trunk(), rule);
        let Some(data) = self.subjects.peek(subject) else {
            return;
        };
        let Some(obs) = evaluate_counters(rule, &cfg, &data.windows, now) else {
            return;
        };
        let examples = data.examples[example_kind(rule) as usize].to_vec();
        self.conclude(subject, rule, &cfg, obs, examples, now, out);
    }

    /// Feed an observation to the ladder; on a firing, the anomaly and its actions.
    #[allow(clippy::too_many_arguments)]
    fn conclude(
        &mut self,
        subject: &Subject,
        rule: RuleId,
        cfg: &RuleConfig,
        obs: Observation,
        examples: Vec<String>,
        now: DateTime<Utc>,
        out: &mut MonitorOutput,
    ) {
        let holds = obs.holds && cfg.enabled;
        if !self.ladder.observe(subject, rule, holds, now) {
            return;
        }
        let anomaly = self.anomaly(subject, rule, obs, examples, now);
        out.actions
            .extend(self.ladder.fire(subject, rule, cfg, anomaly.id, now));
        out.anomalies.push(anomaly);
    }

    fn anomaly(
        &mut self,
        subject: &Subject,
        rule: RuleId,
        obs: Observation,
        examples: Vec<String>,
        now: DateTime<Utc>,
    ) -> Anomaly {
        let a = Anomaly {
            id: self.ids.next(now),
            rule,
            subject: subject.clone(),
            window: obs.window,
            observed: obs.observed,
            threshold: obs.threshold,
            sample: obs.sample,
            examples,
            at: now,
        };
        tracing::warn!(
            anomaly_id = a.id, rule = rule.code(), subject = %subject, window = obs.window.code(),
            observed = obs.observed, threshold = obs.threshold, sample = obs.sample, "anomaly"
        );
        a
    }

    fn callee_attempt(&mut self, subject: &Subject, cdr: &Cdr, out: &mut MonitorOutput) {
        let cfg = self.rule(subject.trunk(), RuleId::OverFrequentCallee);
        let keep = cfg.threshold.max(cfg.daily_threshold.unwrap_or(0.0)) as usize + 1;
        let at = cdr.attempt.invite_at;
        let a = self
            .callees
            .get_or_insert_with(subject, CalleeAttempts::default);
        a.record(at, &cdr.attempt.id, keep);
        let obs = evaluate_callee(&cfg, a, at);
        let examples = a.examples.to_vec();
        self.conclude(
            subject,
            RuleId::OverFrequentCallee,
            &cfg,
            obs,
            examples,
            at,
            out,
        );
    }

    /// A complaint received at `now`. Its caller ID must be one of a trunk's numbers; others
    /// are counted as unmatched and fire nothing.
    pub fn on_complaint(&mut self, c: &Complaint, now: DateTime<Utc>) -> MonitorOutput {
        let mut out = MonitorOutput::default();
        let number = normalize_number(&c.caller_id).unwrap_or_else(|| c.caller_id.clone());
        let Some(trunk) = self.by_number.get(&number).cloned() else {
            self.complaints_unmatched += 1;
            tracing::warn!(complaint = %c.id, caller_id = %c.caller_id, "complaint about a number of no trunk");
            return out;
        };
        let subject = Subject::caller_id(&trunk, &number);
        let data = self
            .subjects
            .get_or_insert_with(&subject, SubjectData::default);
        data.complaints.add(c);
        data.complaints.prune(now, RuleWindow::Week.span());
        data.last_seen = Some(now);
        // In memory a complaint counts when received; persisted buckets count it at its time.
        let k = KpiCounters {
            complaints: 1,
            ..KpiCounters::default()
        };
        data.windows.add(now, &k);
        for rule in COMPLAINT_RULES {
            let cfg = self.rule(&trunk, rule);
            let Some(data) = self.subjects.peek(&subject) else {
                return out;
            };
            if let Some((obs, examples)) = evaluate_complaints(rule, &cfg, &data.complaints, now) {
                self.conclude(&subject, rule, &cfg, obs, examples, now, &mut out);
            }
        }
        out
    }

    /// The live calls now: each answered call reaching the over-long threshold alerts once.
    pub fn check_live(&mut self, calls: &[LiveCallView], now: DateTime<Utc>) -> MonitorOutput {
        let mut out = MonitorOutput::default();
        let live: HashSet<&str> = calls.iter().map(|c| c.call_id.as_str()).collect();
        // Only calls still live are remembered: memory stays bounded by the live calls.
        self.long_calls_alerted
            .retain(|id| live.contains(id.as_str()));
        let mut long_by_subject: HashMap<Subject, Vec<&LiveCallView>> = HashMap::new();
        for call in calls {
            let cfg = self.rule(&call.trunk, RuleId::OverLongCall);
            let Some(answered) = call.answered_at else {
                continue;
            };
            let secs = (now - answered).num_milliseconds() as f64 / 1_000.0;
            if secs >= cfg.threshold {
                long_by_subject
                    .entry(call.subject())
                    .or_default()
                    .push(call);
            }
        }
        for (subject, calls) in &long_by_subject {
            let cfg = self.rule(subject.trunk(), RuleId::OverLongCall);
            let fires = self
                .ladder
                .observe(subject, RuleId::OverLongCall, true, now);
            let mut fired = false;
            for call in calls {
                if !self.long_calls_alerted.insert(call.call_id.clone()) {
                    continue;
                }
                let secs = call
                    .answered_at
                    .map_or(0.0, |a| (now - a).num_seconds() as f64);
                let obs = Observation {
                    window: cfg.window,
                    observed: secs,
                    threshold: cfg.threshold,
                    sample: 1,
                    holds: true,
                };
                let anomaly = self.anomaly(
                    subject,
                    RuleId::OverLongCall,
                    obs,
                    vec![call.call_id.clone()],
                    now,
                );
                if fires && !fired {
                    fired = true;
                    out.actions.extend(self.ladder.fire(
                        subject,
                        RuleId::OverLongCall,
                        &cfg,
                        anomaly.id,
                        now,
                    ));
                }
                out.anomalies.push(anomaly);
            }
        }
        // Subjects with no over-long call left: the rule no longer holds for them.
        let cleared: Vec<Subject> = self
            .ladder
            .in_force()
            .into_iter()
            .filter_map(|i| match i.cause {
                super::enforcement::Cause::Rule {
                    rule: RuleId::OverLongCall,
                    rule_subject,
                    ..
                } => Some(rule_subject),
                _ => None,
            })
            .filter(|s| !long_by_subject.contains_key(s))
            .collect();
        for s in cleared {
            self.ladder.observe(&s, RuleId::OverLongCall, false, now);
        }
        out
    }

    /// Periodic: lift due steps, forget idle subjects.
    pub fn tick(&mut self, now: DateTime<Utc>) -> MonitorOutput {
        let week = RuleWindow::Week.span();
        self.subjects
            .remove_idle(|d| d.last_seen.is_none_or(|t| now - t > week));
        self.callees
            .remove_idle(|a| a.newest().is_none_or(|t| now - t > RuleWindow::Day.span()));
        MonitorOutput {
            anomalies: Vec::new(),
            actions: self.ladder.tick(now),
        }
    }

    /// An operator imposes a step (see `enforcement` for what each step means on a subject) on
    /// a subject of a configured trunk.
    pub fn impose(
        &mut self,
        subject: &Subject,
        step: Step,
        duration: Option<Duration>,
        operator: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<EnforcementAction>, EnforcementError> {
        self.check_subject(subject)?;
        self.ladder
            .impose(subject, step, duration, operator, reason, now)
    }

    /// Whether `impose` would take this order, without taking it: a node that is not the
    /// cluster's monitor leader answers a bad order itself before it hands a good one on.
    pub fn check_order(
        &self,
        subject: &Subject,
        step: Step,
        duration: Option<Duration>,
    ) -> Result<(), EnforcementError> {
        self.check_subject(subject)?;
        crate::monitor::enforcement::check_step(subject, step)?;
        if duration.is_some_and(|d| d <= Duration::zero()) {
            return Err(EnforcementError::NonPositiveDuration);
        }
        Ok(())
    }

    fn check_subject(&self, subject: &Subject) -> Result<(), EnforcementError> {
        if !self.trunks.contains_key(subject.trunk()) {
            return Err(EnforcementError::UnknownTrunk(subject.trunk().to_string()));
        }
        // A caller ID step on a number the trunk does not own would change nothing at admission
        // (such a caller ID is refused anyway) and mislead whoever reads the log.
        if let Subject::CallerId { trunk, number } = subject {
            if self.by_number.get(number) != Some(trunk) {
                return Err(EnforcementError::NotTheTrunksNumber {
                    trunk: trunk.clone(),
                    number: number.clone(),
                });
            }
        }
        Ok(())
    }

    /// An operator lifts the steps in force on a subject (one step, or all).
    pub fn lift(
        &mut self,
        subject: &Subject,
        step: Option<Step>,
        operator: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Vec<EnforcementAction> {
        self.ladder.lift(subject, step, operator, reason, now)
    }

    pub fn in_force(&self) -> Vec<Imposition> {
        self.ladder.in_force()
    }

    /// A trunk's or caller ID's figures over a window (None when unknown or evicted).
    pub fn kpis(
        &self,
        subject: &Subject,
        window: RuleWindow,
        now: DateTime<Utc>,
    ) -> Option<KpiCounters> {
        self.subjects
            .peek(subject)
            .map(|d| d.windows.sum(window, now))
    }

    pub fn stats(&self) -> MonitorStats {
        MonitorStats {
            subjects: self.subjects.len(),
            subjects_evicted: self.subjects.evicted(),
            callees: self.callees.len(),
            callees_evicted: self.callees.evicted(),
            complaints_unmatched: self.complaints_unmatched,
            long_calls_alerted: self.long_calls_alerted.len(),
            ladder: self.ladder.stats(),
        }
    }
}

fn kinds_of(k: &KpiCounters) -> Vec<Kind> {
    let mut v = vec![Kind::Attempt];
    let pairs = [
        (k.offered() > 0 && k.answered == 0, Kind::Unanswered),
        (k.invalid_number > 0, Kind::Invalid),
        (k.network_errors > 0, Kind::Network),
        (k.short_calls > 0, Kind::Short),
        (k.refused_outside_hours > 0, Kind::OutsideHours),
        (k.refused_unauthorized > 0, Kind::Unauthorized),
        (k.silent_calls > 0, Kind::Silent),
    ];
    v.extend(pairs.into_iter().filter(|(b, _)| *b).map(|(_, kind)| kind));
    v
}

/// The calls that show a rule.
fn example_kind(rule: RuleId) -> Kind {
    match rule {
        RuleId::LowAnswerRate => Kind::Unanswered,
        RuleId::ErrorRate => Kind::Invalid,
        RuleId::NetworkErrors => Kind::Network,
        RuleId::ShortCalls => Kind::Short,
        RuleId::OutsideHours => Kind::OutsideHours,
        RuleId::UnauthorizedCallerId => Kind::Unauthorized,
        RuleId::SilentCalls => Kind::Silent,
        _ => Kind::Attempt,
    }
}
