//! The rules' vocabulary: which rule (`RuleId`), what it watches (`RuleScope`), how it compares
//! (`Cmp`), the windows it is measured over (`RuleWindow`) and the enforcement ladder's steps
//! (`Step`, defined with the enforcement vocabulary in `model`), with the codes the config keys and the stored rows spell them with.

use std::fmt;
use std::str::FromStr;

use chrono::Duration;
use serde::{Deserialize, Serialize};

/// The thirteen rules: the twelve of issue 4's table (in its order, as the config keys), then
/// `silent_calls` (issue 15: answered calls that carried no audio at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    OverFrequentNumber,
    OverFrequentCallee,
    OverLongCall,
    LowAnswerRate,
    ErrorRate,
    NetworkErrors,
    ShortCalls,
    OutsideHours,
    UnauthorizedCallerId,
    ComplaintBatch,
    RepeatedComplaint,
    FraudComplaint,
    SilentCalls,
}

impl RuleId {
    pub const ALL: [RuleId; 13] = [
        RuleId::OverFrequentNumber,
        RuleId::OverFrequentCallee,
        RuleId::OverLongCall,
        RuleId::LowAnswerRate,
        RuleId::ErrorRate,
        RuleId::NetworkErrors,
        RuleId::ShortCalls,
        RuleId::OutsideHours,
        RuleId::UnauthorizedCallerId,
        RuleId::ComplaintBatch,
        RuleId::RepeatedComplaint,
        RuleId::FraudComplaint,
        RuleId::SilentCalls,
    ];

    /// The config key and the code stored with anomalies.
    pub fn code(self) -> &'static str {
        match self {
            RuleId::OverFrequentNumber => "over_frequent_number",
            RuleId::OverFrequentCallee => "over_frequent_callee",
            RuleId::OverLongCall => "over_long_call",
            RuleId::LowAnswerRate => "low_answer_rate",
            RuleId::ErrorRate => "error_rate",
            RuleId::NetworkErrors => "network_errors",
            RuleId::ShortCalls => "short_calls",
            RuleId::OutsideHours => "outside_hours",
            RuleId::UnauthorizedCallerId => "unauthorized_caller_id",
            RuleId::ComplaintBatch => "complaint_batch",
            RuleId::RepeatedComplaint => "repeated_complaint",
            RuleId::FraudComplaint => "fraud_complaint",
            RuleId::SilentCalls => "silent_calls",
        }
    }

    pub fn from_code(code: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.code() == code)
    }

    /// What the rule watches: a trunk, one caller ID, or one called number.
    pub fn scope(self) -> RuleScope {
        match self {
            RuleId::OverFrequentCallee => RuleScope::Callee,
            RuleId::NetworkErrors | RuleId::OutsideHours | RuleId::UnauthorizedCallerId => {
                RuleScope::Trunk
            }
            _ => RuleScope::CallerId,
        }
    }

    /// How the observed value is compared with the threshold. `≥` where the issue says "any",
    /// "≥ n" or "twice"; `<` for the answer rate; `>` elsewhere.
    pub fn cmp(self) -> Cmp {
        match self {
            RuleId::LowAnswerRate => Cmp::Below,
            RuleId::OutsideHours
            | RuleId::UnauthorizedCallerId
            | RuleId::ComplaintBatch
            | RuleId::RepeatedComplaint
            | RuleId::FraudComplaint
            | RuleId::SilentCalls => Cmp::AtLeast,
            _ => Cmp::Above,
        }
    }

    /// Whether the threshold is a count (must be a whole number) rather than a ratio or seconds.
    pub fn counts(self) -> bool {
        !matches!(
            self,
            RuleId::LowAnswerRate
                | RuleId::ErrorRate
                | RuleId::NetworkErrors
                | RuleId::ShortCalls
                | RuleId::OverLongCall
        )
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The kind of subject a rule measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleScope {
    Trunk,
    CallerId,
    Callee,
}

/// How a rule compares its observed value with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// observed > threshold
    Above,
    /// observed ≥ threshold
    AtLeast,
    /// observed < threshold
    Below,
}

impl Cmp {
    pub fn holds(self, observed: f64, threshold: f64) -> bool {
        match self {
            Cmp::Above => observed > threshold,
            Cmp::AtLeast => observed >= threshold,
            Cmp::Below => observed < threshold,
        }
    }
}

/// The sliding windows a rule may be measured over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RuleWindow {
    #[serde(rename = "60s")]
    Minute,
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
}

impl RuleWindow {
    pub const ALL: [RuleWindow; 5] = [
        RuleWindow::Minute,
        RuleWindow::FiveMinutes,
        RuleWindow::Hour,
        RuleWindow::Day,
        RuleWindow::Week,
    ];

    pub fn code(self) -> &'static str {
        match self {
            RuleWindow::Minute => "60s",
            RuleWindow::FiveMinutes => "5m",
            RuleWindow::Hour => "1h",
            RuleWindow::Day => "24h",
            RuleWindow::Week => "7d",
        }
    }

    pub fn span(self) -> Duration {
        match self {
            RuleWindow::Minute => Duration::seconds(60),
            RuleWindow::FiveMinutes => Duration::minutes(5),
            RuleWindow::Hour => Duration::hours(1),
            RuleWindow::Day => Duration::hours(24),
            RuleWindow::Week => Duration::days(7),
        }
    }

    /// Position in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RuleWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for RuleWindow {
    type Err = String;
    fn from_str(s: &str) -> Result<RuleWindow, String> {
        RuleWindow::ALL
            .into_iter()
            .find(|w| w.code() == s)
            .ok_or_else(|| format!("`{s}` is not one of 60s, 5m, 1h, 24h, 7d"))
    }
}
