//! What the cluster part shows: the answer to apply while the shared state is down
//! (`Fallback`), its state for `/healthz` (`ClusterStatus`) and its counters for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::config::OnSharedStateDown;

/// The `on_shared_state_down` policy as the admission code applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Refuse the call (503): no cap can be exceeded while nobody knows the others' calls.
    Refuse,
    /// Admit in memory against this node's share of each cap: `live_nodes` is the count of live
    /// nodes last seen (≥ 1), so the shares add up to at most the cap.
    Local { live_nodes: u32 },
}

impl Fallback {
    pub(super) fn of(policy: OnSharedStateDown, live_nodes: u32) -> Fallback {
        match policy {
            OnSharedStateDown::Refuse => Fallback::Refuse,
            OnSharedStateDown::Local => Fallback::Local {
                live_nodes: live_nodes.max(1),
            },
        }
    }

    /// This node's share of a concurrency cap: rounded down, so that the nodes' shares never
    /// add up to more than the cap (a cap below the node count leaves some nodes none).
    /// `None` when the policy is to refuse.
    pub fn local_cap(self, cap: u32) -> Option<u32> {
        match self {
            Fallback::Refuse => None,
            Fallback::Local { live_nodes } => Some(cap / live_nodes.max(1)),
        }
    }

    /// This node's share of a call rate (`max_cps`).
    pub fn local_rate(self, max_cps: f64) -> Option<f64> {
        match self {
            Fallback::Refuse => None,
            Fallback::Local { live_nodes } => Some(max_cps / f64::from(live_nodes.max(1))),
        }
    }
}

/// The node's view of the cluster, for `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    pub node_id: String,
    /// `up`: admissions are taken against the shared state; `down`: `on_shared_state_down`.
    pub state: &'static str,
    /// Live nodes last seen (this one included).
    pub live_nodes: u32,
    /// Leases this node's calls hold.
    pub leases_held: usize,
    pub on_shared_state_down: &'static str,
    /// Why the state is down, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counters for `/metrics` (relaxed atomics: each is read on its own).
#[derive(Debug, Default)]
pub struct ClusterCounters {
    pub granted: AtomicU64,
    pub refused_callee: AtomicU64,
    pub refused_rate: AtomicU64,
    pub refused_trunk: AtomicU64,
    pub refused_number: AtomicU64,
    /// Admissions answered by `on_shared_state_down` (the shared state unreachable).
    pub answered_down: AtomicU64,
    /// Times the shared state became unreachable (each logged).
    pub went_down: AtomicU64,
    pub redis_errors: AtomicU64,
    pub releases: AtomicU64,
    /// Releases that failed and wait to be retried.
    pub releases_retried: AtomicU64,
    /// Releases given up beyond the retry queue's bound (the next reconcile repairs them).
    pub releases_dropped: AtomicU64,
    pub heartbeats: AtomicU64,
    pub heartbeat_failures: AtomicU64,
    /// Times this node rejoined (after a lapse of its heartbeat, or Redis losing its state).
    pub rejoins: AtomicU64,
    pub nodes_reclaimed: AtomicU64,
    pub leases_reclaimed: AtomicU64,
    /// Leases put back / taken away by reconciliation (drift found).
    pub reconcile_added: AtomicU64,
    pub reconcile_removed: AtomicU64,
}

impl ClusterCounters {
    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
