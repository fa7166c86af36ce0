//! Anomaly rules: what they measure (`evaluate`), their inputs beyond CDRs (complaints, live
//! calls), and the `Anomaly` a firing produces with its evidence.
//!
//! Which subject each rule watches, and on what:
//! | rule | subject | observed / sample |
//! |---|---|---|
//! | over_frequent_number | caller ID | attempts offered in `window` (`threshold`) or in 24 h (`daily_threshold`) |
//! | over_frequent_callee | callee | attempts (all, refused too: the dialer kept trying) in `window` or 24 h |
//! | over_long_call | caller ID (trunk for inbound) | a live call's seconds since answer, ≥ threshold; once per call |
//! | low_answer_rate | caller ID | ASR / offered attempts |
//! | error_rate | caller ID | invalid-number rate / offered attempts |
//! | network_errors | trunk | network error ratio / offered attempts |
//! | short_calls | caller ID | short-call ratio / answered calls |
//! | outside_hours | trunk | refusals `outside_calling_hours` / same |
//! | unauthorized_caller_id | trunk | refusals `caller_id_not_authorized` / same |
//! | complaint_batch | caller ID | distinct complainants / complaints |
//! | repeated_complaint | caller ID | most complaints by one complainant / complaints |
//! | fraud_complaint | caller ID | fraud and false-information complaints / same |
//! | silent_calls | caller ID | answered calls without a packet either way (`no_media`) / answered calls |
//!
//! A rule holds when its sample is at least `min_sample` (and not zero) and the observed value
//! compares with the threshold as `RuleId::cmp` says.

mod callee;
mod complaints;
mod evaluate;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use callee::CalleeAttempts;
pub use complaints::ComplaintLog;
pub use evaluate::{evaluate_callee, evaluate_complaints, evaluate_counters, Observation};

use crate::config::{RuleId, RuleWindow};
pub use crate::model::LiveCallView;
use crate::model::Subject;

/// At most this many example ids go with an anomaly.
pub const MAX_EXAMPLES: usize = 5;

/// One firing of a rule, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub id: u64,
    pub rule: RuleId,
    pub subject: Subject,
    pub window: RuleWindow,
    pub observed: f64,
    pub threshold: f64,
    pub sample: u64,
    /// Up to five call ids (complaint ids for complaint rules) that show it, newest last.
    pub examples: Vec<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplaintCategory {
    Harassment,
    Fraud,
    FalseInformation,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplaintSource {
    Carrier,
    Regulator,
    Internal,
}

/// A complaint about one of the call center's numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Complaint {
    /// The store's id (shown as evidence).
    pub id: String,
    /// Who complained: normalized digits.
    pub complainant: String,
    /// The number complained about: normalized digits.
    pub caller_id: String,
    /// When the complained-about call happened (or the complaint was made).
    pub time: DateTime<Utc>,
    pub category: ComplaintCategory,
    pub source: ComplaintSource,
    pub text: String,
}

/// Recent ids, newest last, at most `MAX_EXAMPLES`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Examples(std::collections::VecDeque<String>);

impl Examples {
    pub fn push(&mut self, id: &str) {
        if self.0.len() == MAX_EXAMPLES {
            self.0.pop_front();
        }
        self.0.push_back(id.to_string());
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}
