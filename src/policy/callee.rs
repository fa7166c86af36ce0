//! Per-callee frequency at admission: a trunk may call one number at most `per_window` times in
//! its window (default once in 60 s) and `daily` times in 24 h (default 3), whatever caller IDs
//! it uses, so that one person is not harassed from many lines. The call that would exceed a
//! limit is refused `480 Callee Frequency Limit`.
//!
//! Counts are exact: each number keeps the times of its last admitted calls (as many as the
//! larger limit), and a time exactly one window old no longer counts (windows are
//! `(now − span, now]`). Memory is bounded: numbers idle for 24 h are dropped, and beyond
//! `MAX_CALLEES` numbers the least recently called one is evicted (counted), which restarts its
//! count — exactness holds while fewer numbers than that are called in 24 h.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;

use crate::bounded::LruMap;
use crate::config::{RuleId, TrunkConfig};

/// Called numbers remembered per trunk.
pub const MAX_CALLEES: usize = 200_000;

/// A trunk's callee limits, from its `over_frequent_callee` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CalleeLimits {
    pub window: Duration,
    pub per_window: u32,
    pub daily: Option<u32>,
    pub enabled: bool,
}

impl CalleeLimits {
    pub(super) fn of(t: &TrunkConfig) -> CalleeLimits {
        let r = t.rule(RuleId::OverFrequentCallee);
        CalleeLimits {
            window: r.window.span(),
            per_window: r.threshold as u32,
            daily: r.daily_threshold.map(|d| d as u32),
            enabled: r.enabled,
        }
    }

    fn keep(&self) -> usize {
        self.per_window.max(self.daily.unwrap_or(0)).max(1) as usize
    }
}

#[derive(Debug)]
pub(super) struct CalleeLimiter {
    inner: Mutex<LruMap<String, VecDeque<DateTime<Utc>>>>,
}

impl Default for CalleeLimiter {
    fn default() -> Self {
        CalleeLimiter {
            inner: Mutex::new(LruMap::new(MAX_CALLEES)),
        }
    }
}

impl CalleeLimiter {
    /// Count the call at `now` if it stays within the limits; false (nothing recorded) if not.
    pub(super) fn reserve(&self, callee: &str, now: DateTime<Utc>, limits: CalleeLimits) -> bool {
        if !limits.enabled {
            return true;
        }
        let mut map = self.inner.lock();
        let day = Duration::hours(24);
        let horizon = limits.window.max(day);
        map.remove_idle(|times| times.back().is_none_or(|t| *t <= now - horizon));
        let key = callee.to_string();
        let times = map.get_or_insert_with(&key, VecDeque::new);
        let count = |span: Duration| {
            times
                .iter()
                .filter(|t| **t > now - span && **t <= now)
                .count()
        };
        if count(limits.window) >= limits.per_window as usize {
            return false;
        }
        if limits.daily.is_some_and(|d| count(day) >= d as usize) {
            return false;
        }
        times.push_back(now);
        while times.len() > limits.keep() {
            times.pop_front();
        }
        true
    }

    /// Undo a reservation whose call was then refused for another reason.
    pub(super) fn cancel(&self, callee: &str, at: DateTime<Utc>) {
        let mut map = self.inner.lock();
        if let Some(times) = map.get_mut(&callee.to_string()) {
            if let Some(p) = times.iter().rposition(|t| *t == at) {
                times.remove(p);
            }
        }
    }

    pub(super) fn evicted(&self) -> u64 {
        self.inner.lock().evicted()
    }
}
