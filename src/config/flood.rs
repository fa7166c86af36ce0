//! `[sip.flood]`: the per-source request budget and ban (`sip::flood`).

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloodConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Requests a source that is no configured peer may send per window (and the least any
    /// peer gets).
    #[serde(default = "default_requests")]
    pub requests: u32,
    #[serde(default = "default_window_ms")]
    pub window_ms: u64,
    /// How long a source over its budget is ignored.
    #[serde(default = "default_ban_secs")]
    pub ban_secs: u64,
    /// A configured peer's budget: its trunk's `max_cps` × window × this many requests a call
    /// (INVITE, ACK, BYE and a spare), at least `requests`.
    #[serde(default = "default_peer_requests_per_call")]
    pub peer_requests_per_call: u32,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            enabled: true,
            requests: default_requests(),
            window_ms: default_window_ms(),
            ban_secs: default_ban_secs(),
            peer_requests_per_call: default_peer_requests_per_call(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_requests() -> u32 {
    30
}
fn default_window_ms() -> u64 {
    2_000
}
fn default_ban_secs() -> u64 {
    300
}
fn default_peer_requests_per_call() -> u32 {
    4
}
