//! `[trunks.rules.<rule>]`: the anomaly rules of a trunk, their defaults, and the durations
//! they are written with. Every key is optional; a rule's missing keys take its defaults.
//! What the keys name (the rules, their windows, the ladder's steps) is `rules/kinds.rs`.

use chrono::Duration;
use serde::Deserialize;

use super::ConfigError;
use crate::model::Step;

mod kinds;

pub use kinds::{Cmp, RuleId, RuleScope, RuleWindow};

impl RuleId {
    /// The defaults of the issue's table; steps chosen as documented in docs/architecture.md.
    pub fn default_config(self) -> RuleConfig {
        let c = |threshold, min_sample, window, step, resume_min: i64| RuleConfig {
            threshold,
            min_sample,
            window,
            step,
            resume_after: Duration::minutes(resume_min),
            daily_threshold: None,
            enabled: true,
        };
        use RuleWindow::*;
        use Step::*;
        match self {
            RuleId::OverFrequentNumber => RuleConfig {
                daily_threshold: Some(300.0),
                ..c(60.0, 1, Hour, Throttle, 60)
            },
            RuleId::OverFrequentCallee => RuleConfig {
                daily_threshold: Some(3.0),
                ..c(1.0, 1, Minute, Alert, 60)
            },
            RuleId::OverLongCall => c(3600.0, 1, Hour, Alert, 60),
            RuleId::LowAnswerRate => c(0.20, 100, Hour, Throttle, 60),
            RuleId::ErrorRate => c(0.10, 100, Hour, SuspendNumber, 30),
            RuleId::NetworkErrors => c(0.05, 100, Hour, Alert, 30),
            RuleId::ShortCalls => c(0.40, 100, Day, Throttle, 60),
            RuleId::OutsideHours => c(1.0, 1, Hour, Alert, 60),
            RuleId::UnauthorizedCallerId => c(5.0, 5, Hour, Alert, 60),
            RuleId::ComplaintBatch => c(3.0, 3, Day, SuspendNumber, 24 * 60),
            RuleId::RepeatedComplaint => c(2.0, 2, Week, SuspendNumber, 24 * 60),
            RuleId::FraudComplaint => c(1.0, 1, Week, SuspendNumber, 7 * 24 * 60),
            // Answered calls with no packet either way: a dialer's silent calls. Alert only by
            // default (a broken PBX media path looks the same).
            RuleId::SilentCalls => c(5.0, 5, Hour, Alert, 60),
        }
    }
}

/// A rule with every key resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleConfig {
    /// A ratio (0..=1), a count, or seconds (over_long_call), as the rule measures.
    pub threshold: f64,
    /// Sample (attempts offered, answered calls or complaints, as the rule measures) needed
    /// before the rule may fire.
    pub min_sample: u64,
    pub window: RuleWindow,
    pub step: Step,
    /// Shortest time a step imposed by this rule stays in force.
    pub resume_after: Duration,
    /// Second limit of the two frequency rules, always over 24 h (`daily_threshold`); `None`
    /// for the other rules.
    pub daily_threshold: Option<f64>,
    /// `enabled = false` turns the rule off (for over_frequent_callee, admission's callee limit
    /// too). Default true.
    pub enabled: bool,
}

/// One rule's table as written: every key optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleOverride {
    pub threshold: Option<f64>,
    pub min_sample: Option<u64>,
    pub window: Option<RuleWindow>,
    pub step: Option<Step>,
    /// `30s`, `30m`, `2h`, `1d`.
    pub resume_after: Option<String>,
    /// Only for `over_frequent_number` and `over_frequent_callee`: the 24 h limit.
    pub daily_threshold: Option<f64>,
    pub enabled: Option<bool>,
}

/// `[trunks.rules]`: one optional table per rule.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    #[serde(default)]
    pub over_frequent_number: RuleOverride,
    #[serde(default)]
    pub over_frequent_callee: RuleOverride,
    #[serde(default)]
    pub over_long_call: RuleOverride,
    #[serde(default)]
    pub low_answer_rate: RuleOverride,
    #[serde(default)]
    pub error_rate: RuleOverride,
    #[serde(default)]
    pub network_errors: RuleOverride,
    #[serde(default)]
    pub short_calls: RuleOverride,
    #[serde(default)]
    pub outside_hours: RuleOverride,
    #[serde(default)]
    pub unauthorized_caller_id: RuleOverride,
    #[serde(default)]
    pub complaint_batch: RuleOverride,
    #[serde(default)]
    pub repeated_complaint: RuleOverride,
    #[serde(default)]
    pub fraud_complaint: RuleOverride,
    #[serde(default)]
    pub silent_calls: RuleOverride,
}

impl RulesConfig {
    pub fn raw(&self, rule: RuleId) -> &RuleOverride {
        match rule {
            RuleId::OverFrequentNumber => &self.over_frequent_number,
            RuleId::OverFrequentCallee => &self.over_frequent_callee,
            RuleId::OverLongCall => &self.over_long_call,
            RuleId::LowAnswerRate => &self.low_answer_rate,
            RuleId::ErrorRate => &self.error_rate,
            RuleId::NetworkErrors => &self.network_errors,
            RuleId::ShortCalls => &self.short_calls,
            RuleId::OutsideHours => &self.outside_hours,
            RuleId::UnauthorizedCallerId => &self.unauthorized_caller_id,
            RuleId::ComplaintBatch => &self.complaint_batch,
            RuleId::RepeatedComplaint => &self.repeated_complaint,
            RuleId::FraudComplaint => &self.fraud_complaint,
            RuleId::SilentCalls => &self.silent_calls,
        }
    }

    pub fn raw_mut(&mut self, rule: RuleId) -> &mut RuleOverride {
        match rule {
            RuleId::OverFrequentNumber => &mut self.over_frequent_number,
            RuleId::OverFrequentCallee => &mut self.over_frequent_callee,
            RuleId::OverLongCall => &mut self.over_long_call,
            RuleId::LowAnswerRate => &mut self.low_answer_rate,
            RuleId::ErrorRate => &mut self.error_rate,
            RuleId::NetworkErrors => &mut self.network_errors,
            RuleId::ShortCalls => &mut self.short_calls,
            RuleId::OutsideHours => &mut self.outside_hours,
            RuleId::UnauthorizedCallerId => &mut self.unauthorized_caller_id,
            RuleId::ComplaintBatch => &mut self.complaint_batch,
            RuleId::RepeatedComplaint => &mut self.repeated_complaint,
            RuleId::FraudComplaint => &mut self.fraud_complaint,
            RuleId::SilentCalls => &mut self.silent_calls,
        }
    }

    /// The rule with defaults filled in. A `resume_after` that does not parse falls back to the
    /// default; `validate` refuses such a config before it is ever used.
    pub fn rule(&self, rule: RuleId) -> RuleConfig {
        let d = rule.default_config();
        let raw = self.raw(rule);
        RuleConfig {
            threshold: raw.threshold.unwrap_or(d.threshold),
            min_sample: raw.min_sample.unwrap_or(d.min_sample),
            window: raw.window.unwrap_or(d.window),
            step: raw.step.unwrap_or(d.step),
            resume_after: raw
                .resume_after
                .as_deref()
                .and_then(|s| parse_duration(s).ok())
                .unwrap_or(d.resume_after),
            daily_threshold: raw.daily_threshold.or(d.daily_threshold),
            enabled: raw.enabled.unwrap_or(d.enabled),
        }
    }

    /// Check every rule; `prefix` is the table's key, e.g. `trunks[0].rules`.
    pub(crate) fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        for rule in RuleId::ALL {
            let key = |k: &str| format!("{prefix}.{}.{k}", rule.code());
            let raw = self.raw(rule);
            if let Some(s) = &raw.resume_after {
                parse_duration(s).map_err(|m| ConfigError::invalid(key("resume_after"), m))?;
            }
            let c = self.rule(rule);
            if !c.threshold.is_finite() || c.threshold < 0.0 {
                return Err(ConfigError::invalid(key("threshold"), "must be ≥ 0"));
            }
            let ratio = matches!(
                rule,
                RuleId::LowAnswerRate
                    | RuleId::ErrorRate
                    | RuleId::NetworkErrors
                    | RuleId::ShortCalls
            );
            if ratio && c.threshold > 1.0 {
                return Err(ConfigError::invalid(
                    key("threshold"),
                    "is a ratio: must be 0..=1",
                ));
            }
            if rule.counts() && c.threshold.fract() != 0.0 {
                return Err(ConfigError::invalid(
                    key("threshold"),
                    "is a count: must be a whole number",
                ));
            }
            if rule == RuleId::OverLongCall && c.threshold < 1.0 {
                return Err(ConfigError::invalid(
                    key("threshold"),
                    "seconds: must be ≥ 1",
                ));
            }
            match (rule, raw.daily_threshold) {
                (RuleId::OverFrequentNumber | RuleId::OverFrequentCallee, Some(d)) => {
                    if !d.is_finite() || d < 0.0 || d.fract() != 0.0 {
                        return Err(ConfigError::invalid(
                            key("daily_threshold"),
                            "is a count: must be a whole number ≥ 0",
                        ));
                    }
                }
                (_, Some(_)) => {
                    return Err(ConfigError::invalid(
                        key("daily_threshold"),
                        "only over_frequent_number and over_frequent_callee have a second limit",
                    ))
                }
                (_, None) => {}
            }
            if rule == RuleId::OverFrequentCallee && c.enabled {
                if c.threshold < 1.0 || c.daily_threshold.is_some_and(|d| d < 1.0) {
                    return Err(ConfigError::invalid(
                        key("threshold"),
                        "callee limits must be ≥ 1 (set enabled = false to turn the limit off)",
                    ));
                }
                // Admission keeps this many attempt times per callee: keep it small.
                let most = c.threshold.max(c.daily_threshold.unwrap_or(0.0));
                if most > MAX_CALLEE_LIMIT as f64 {
                    return Err(ConfigError::invalid(
                        key("threshold"),
                        format!("callee limits must be ≤ {MAX_CALLEE_LIMIT}"),
                    ));
                }
            }
            if c.resume_after <= Duration::zero() {
                return Err(ConfigError::invalid(key("resume_after"), "must be > 0"));
            }
            match (rule.scope(), c.step) {
                (RuleScope::Callee, Step::Alert) => {}
                (RuleScope::Callee, _) => return Err(ConfigError::invalid(
                    key("step"),
                    "a called-number rule can only alert (admission's callee limit enforces it)",
                )),
                (RuleScope::Trunk, Step::SuspendNumber) => {
                    return Err(ConfigError::invalid(
                        key("step"),
                        "this rule watches the whole trunk: use alert, throttle or suspend_trunk",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Largest callee limit (count) accepted: admission keeps that many times per called number.
pub const MAX_CALLEE_LIMIT: u32 = 64;

/// `90s`, `30m`, `2h`, `1d` (a positive whole number and a unit).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let err = || format!("`{s}` is not a duration like 90s, 30m, 2h or 7d");
    let unit = s.chars().last().ok_or_else(err)?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| err())?;
    if n <= 0 || n > 365 * 24 * 3600 {
        return Err(err());
    }
    match unit {
        's' => Ok(Duration::seconds(n)),
        'm' => Ok(Duration::minutes(n)),
        'h' => Ok(Duration::hours(n)),
        'd' => Ok(Duration::days(n)),
        _ => Err(err()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(Duration::minutes(30)));
        assert_eq!(parse_duration("7d"), Ok(Duration::days(7)));
        assert_eq!(parse_duration("90s"), Ok(Duration::seconds(90)));
        assert!(parse_duration("0m").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("3é").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn defaults_follow_the_issue() {
        let r = RulesConfig::default();
        let f = r.rule(RuleId::OverFrequentNumber);
        assert_eq!(
            (f.threshold, f.window, f.daily_threshold),
            (60.0, RuleWindow::Hour, Some(300.0))
        );
        let c = r.rule(RuleId::OverFrequentCallee);
        assert_eq!(
            (c.threshold, c.window, c.daily_threshold),
            (1.0, RuleWindow::Minute, Some(3.0))
        );
        let e = r.rule(RuleId::ErrorRate);
        assert_eq!(
            (e.threshold, e.min_sample, e.step),
            (0.10, 100, Step::SuspendNumber)
        );
        assert_eq!(r.rule(RuleId::ShortCalls).window, RuleWindow::Day);
        assert_eq!(r.rule(RuleId::OverLongCall).threshold, 3600.0);
        for rule in RuleId::ALL {
            assert_eq!(RuleId::from_code(rule.code()), Some(rule));
        }
        r.validate("rules").unwrap();
    }

    #[test]
    fn overrides_merge_with_defaults() {
        let r: RulesConfig = toml::from_str(
            "[error_rate]\nthreshold = 0.2\nresume_after = \"2h\"\nwindow = \"5m\"\n",
        )
        .unwrap();
        let e = r.rule(RuleId::ErrorRate);
        assert_eq!(e.threshold, 0.2);
        assert_eq!(e.min_sample, 100);
        assert_eq!(e.window, RuleWindow::FiveMinutes);
        assert_eq!(e.resume_after, Duration::hours(2));
        assert!(toml::from_str::<RulesConfig>("[error_rate]\nwindow = \"2h\"\n").is_err());
        assert!(toml::from_str::<RulesConfig>("[nope]\nthreshold = 1\n").is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let bad = |text: &str, want: &str| {
            let r: RulesConfig = toml::from_str(text).unwrap();
            let e = r.validate("trunks[0].rules").unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        };
        bad(
            "[error_rate]\nthreshold = 1.5\n",
            "trunks[0].rules.error_rate.threshold",
        );
        bad(
            "[error_rate]\nresume_after = \"soon\"\n",
            "trunks[0].rules.error_rate.resume_after",
        );
        bad(
            "[error_rate]\ndaily_threshold = 3\n",
            "trunks[0].rules.error_rate.daily_threshold",
        );
        bad(
            "[over_frequent_callee]\nstep = \"throttle\"\n",
            "over_frequent_callee.step",
        );
        bad(
            "[network_errors]\nstep = \"suspend_number\"\n",
            "network_errors.step",
        );
        bad(
            "[over_frequent_number]\nthreshold = 2.5\n",
            "over_frequent_number.threshold",
        );
        bad(
            "[over_frequent_callee]\ndaily_threshold = 1000\n",
            "over_frequent_callee.threshold",
        );
    }
}
