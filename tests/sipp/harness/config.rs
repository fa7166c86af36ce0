//! The gateway's configuration for a test: its addresses, one trunk and the limits a test varies.

use std::path::Path;

use super::{Addrs, OTHER_TRUNK_NUMBER, PBX_IP, TRUNK_NUMBER};

/// What a test varies in the trunk.
#[derive(Debug, Clone, Copy)]
pub struct TrunkLimits {
    pub max_concurrent: u32,
    pub max_concurrent_per_caller_id: u32,
    pub max_cps: f64,
    /// Admission's per-callee frequency limit (SIPp scenarios call one number repeatedly).
    pub callee_limit: bool,
}

impl Default for TrunkLimits {
    fn default() -> Self {
        TrunkLimits {
            max_concurrent: 30,
            max_concurrent_per_caller_id: 30,
            max_cps: 50.0,
            callee_limit: false,
        }
    }
}

/// Below Linux's ephemeral ports, apart from the in-process tests' range.
pub(super) const MEDIA_SECTION: &str = "[media]\nport_range = [25000, 28999]\n";

pub fn config_toml(addrs: &Addrs, db: &Path, limits: TrunkLimits) -> String {
    format!(
        r#"[sip]
inside = "{inside}"
outside = "{outside}"
unknown_sources = "drop"
t1_ms = 500
ring_timeout_secs = 30
drain_timeout_secs = 5
retry_after_secs = 5

[database]
url = "sqlite://{db}"

{media}
[http]
listen = "127.0.0.1:0"

[[trunks]]
name = "interop"
pbx = ["{pbx_ip}/32"]
carrier = "{carrier}"
inbound_to = "{pbx_uas}"
numbers = ["{n1}", "{n2}"]
max_concurrent = {mc}
max_concurrent_per_caller_id = {mcc}
max_cps = {cps:.1}
allow_anonymous = false
calling_hours = "00:00-24:00"
timezone = "UTC"
max_call_secs = 600
blocked_numbers = []

[trunks.rules.over_frequent_callee]
enabled = {callee_limit}
"#,
        media = MEDIA_SECTION,
        inside = addrs.inside,
        outside = addrs.outside,
        db = db.display(),
        pbx_ip = PBX_IP,
        carrier = addrs.carrier,
        pbx_uas = addrs.pbx_uas,
        n1 = TRUNK_NUMBER,
        n2 = OTHER_TRUNK_NUMBER,
        mc = limits.max_concurrent,
        mcc = limits.max_concurrent_per_caller_id,
        cps = limits.max_cps,
        callee_limit = limits.callee_limit,
    )
}
