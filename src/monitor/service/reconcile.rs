//! The concurrency leases against the live calls: the drift must stay 0.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::MonitorService;

impl MonitorService {
    /// Leases per trunk against live calls per trunk. A call takes its lease just before it is
    /// registered and gives it back as it is marked ended: a pass can fall between the two. A
    /// difference counts only when three passes a millisecond apart all see one.
    pub(super) async fn reconcile(&self) -> i64 {
        let mut drift = 0;
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let leases = self.leases();
            let calls = self.calls.calls_per_trunk();
            drift = self
                .trunk_names
                .iter()
                .map(|t| {
                    i64::from(leases.get(t).copied().unwrap_or(0))
                        - i64::from(calls.get(t).copied().unwrap_or(0))
                })
                .sum();
            if drift == 0 {
                break;
            }
        }
        self.shared.reconciliations.fetch_add(1, Ordering::Relaxed);
        self.shared.drift.store(drift, Ordering::Relaxed);
        if drift != 0 {
            self.shared.drift_seen.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(drift, "concurrency counters and live calls disagree");
        }
        drift
    }

    fn leases(&self) -> HashMap<String, u32> {
        self.trunk_names
            .iter()
            .filter_map(|t| self.policy.live(t).map(|l| (t.clone(), l.active)))
            .collect()
    }
}
