//! The calls in progress, as the parts that watch them see them: the monitor (over-long calls,
//! drift, hang-ups on suspension) and retention (never purge a running call). The b2bua's
//! registry implements [`LiveCalls`]; the watchers depend on this trait, not on the b2bua.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::enforcement::Subject;
use super::outcome::EndReason;
use super::side::Direction;

/// What `check_live` needs of a live call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCallView {
    pub call_id: String,
    pub trunk: String,
    pub direction: Direction,
    /// Normalized caller (outbound: the caller ID).
    pub caller: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
}

impl LiveCallView {
    /// The subject an over-long call counts on.
    pub fn subject(&self) -> Subject {
        match (&self.direction, &self.caller) {
            (Direction::Outbound, Some(n)) => Subject::caller_id(&self.trunk, n),
            _ => Subject::trunk_of(&self.trunk),
        }
    }
}

/// What the monitor needs of the live calls (the b2bua's registry implements it).
pub trait LiveCalls: Send + Sync + 'static {
    /// Calls in progress (not ended), for the over-long-call check.
    fn live_calls(&self) -> Vec<LiveCallView>;
    /// Live calls (not ended: an ended call has given its lease back), per trunk.
    fn calls_per_trunk(&self) -> HashMap<String, u32>;
    /// Ends the live calls on `trunk` (presenting `caller_id`, when given); returns how many.
    fn hang_up(&self, trunk: &str, caller_id: Option<&str>, reason: EndReason) -> usize;
    /// Is the call with this id still running (live, or closing its media, recording and
    /// CDR)? Retention keeps such a call's files.
    fn is_running(&self, id: &str) -> bool;
}
