//! Each rule's measure: the observed value, the sample it rests on, and whether it holds.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{CalleeAttempts, ComplaintLog};
use crate::config::{RuleConfig, RuleId, RuleWindow};
use crate::monitor::kpi::Windows;

/// A rule measured at one time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub window: RuleWindow,
    pub observed: f64,
    pub threshold: f64,
    pub sample: u64,
    pub holds: bool,
}

impl Observation {
    fn new(
        rule: RuleId,
        cfg: &RuleConfig,
        window: RuleWindow,
        threshold: f64,
        observed: f64,
        sample: u64,
    ) -> Observation {
        Observation {
            window,
            observed,
            threshold,
            sample,
            holds: sample > 0 && sample >= cfg.min_sample && rule.cmp().holds(observed, threshold),
        }
    }
}

/// The rules measured on KPI windows (trunk and caller-ID subjects). `None` for the others.
pub fn evaluate_counters(
    rule: RuleId,
    cfg: &RuleConfig,
    w: &Windows,
    now: DateTime<Utc>,
) -> Option<Observation> {
    let k = w.sum(cfg.window, now);
    let ratio = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    let obs =
        |observed, sample| Observation::new(rule, cfg, cfg.window, cfg.threshold, observed, sample);
    Some(match rule {
        RuleId::OverFrequentNumber => {
            let first = obs(k.offered() as f64, k.offered());
            match cfg.daily_threshold {
                Some(daily) if !first.holds => {
                    let day = w.sum(RuleWindow::Day, now).offered();
                    Observation::new(rule, cfg, RuleWindow::Day, daily, day as f64, day)
                }
                _ => first,
            }
        }
        RuleId::LowAnswerRate => obs(ratio(k.answered, k.offered()), k.offered()),
        RuleId::ErrorRate => obs(ratio(k.invalid_number, k.offered()), k.offered()),
        RuleId::NetworkErrors => obs(ratio(k.network_errors, k.offered()), k.offered()),
        RuleId::ShortCalls => obs(ratio(k.short_calls, k.answered), k.answered),
        RuleId::SilentCalls => obs(k.silent_calls as f64, k.answered),
        RuleId::OutsideHours => obs(k.refused_outside_hours as f64, k.refused_outside_hours),
        RuleId::UnauthorizedCallerId => obs(k.refused_unauthorized as f64, k.refused_unauthorized),
        _ => return None,
    })
}

/// over_frequent_callee at the time of an attempt.
pub fn evaluate_callee(cfg: &RuleConfig, a: &CalleeAttempts, at: DateTime<Utc>) -> Observation {
    let rule = RuleId::OverFrequentCallee;
    let n = a.count(at, cfg.window.span());
    let first = Observation::new(rule, cfg, cfg.window, cfg.threshold, n as f64, n);
    match cfg.daily_threshold {
        Some(daily) if !first.holds => {
            let day = a.count(at, RuleWindow::Day.span());
            Observation::new(rule, cfg, RuleWindow::Day, daily, day as f64, day)
        }
        _ => first,
    }
}

/// The complaint rules for one caller ID; also the ids of the complaints that count.
pub fn evaluate_complaints(
    rule: RuleId,
    cfg: &RuleConfig,
    log: &ComplaintLog,
    now: DateTime<Utc>,
) -> Option<(Observation, Vec<String>)> {
    let span = cfg.window.span();
    let obs =
        |observed, sample| Observation::new(rule, cfg, cfg.window, cfg.threshold, observed, sample);
    let ids = |f: &dyn Fn(&super::Complaint) -> bool| -> Vec<String> {
        let all: Vec<String> = log
            .within(now, span)
            .filter(|c| f(c))
            .map(|c| c.id.clone())
            .collect();
        all[all.len().saturating_sub(super::MAX_EXAMPLES)..].to_vec()
    };
    Some(match rule {
        RuleId::ComplaintBatch => {
            let sample = log.within(now, span).count() as u64;
            let distinct: HashSet<&str> = log
                .within(now, span)
                .map(|c| c.complainant.as_str())
                .collect();
            (obs(distinct.len() as f64, sample), ids(&|_| true))
        }
        RuleId::RepeatedComplaint => {
            let mut per: HashMap<&str, u64> = HashMap::new();
            for c in log.within(now, span) {
                *per.entry(c.complainant.as_str()).or_default() += 1;
            }
            let (who, most) = per
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(w, n)| (w.to_string(), *n))
                .unwrap_or_default();
            let sample = per.values().sum();
            (obs(most as f64, sample), ids(&|c| c.complainant == who))
        }
        RuleId::FraudComplaint => {
            let n = log
                .within(now, span)
                .filter(|c| c.category.is_fraud())
                .count() as u64;
            (obs(n as f64, n), ids(&|c| c.category.is_fraud()))
        }
        _ => return None,
    })
}
