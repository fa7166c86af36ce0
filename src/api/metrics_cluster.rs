//! The cluster families of `/metrics` (a node with `[cluster]` only): whether the shared
//! admission state is usable, the live nodes, this node's leases, the admissions by how the
//! shared state answered, and the worker's figures (heartbeats, releases, reclaims, drift
//! repaired). Gateway-wide series (no trunk label): every token that reads `/metrics` sees them.

use std::sync::atomic::{AtomicU64, Ordering};

use super::exposition::Exposition;
use crate::cluster::{ClusterCounters, SharedAdmission};

pub(super) fn render(out: &mut Exposition<'_>, shared: &SharedAdmission) {
    let status = shared.status();
    let node = [("node", status.node_id.as_str())];
    gauge(
        out,
        "trunkguard_cluster_shared_state_up",
        "1 while admissions are taken against the shared state (Redis), 0 while \
         on_shared_state_down applies.",
        &node,
        u64::from(status.state == "up"),
    );
    gauge(
        out,
        "trunkguard_cluster_live_nodes",
        "Live nodes last seen by this node (itself included).",
        &node,
        u64::from(status.live_nodes),
    );
    gauge(
        out,
        "trunkguard_cluster_leases_held",
        "Leases in the shared state held by this node's live calls.",
        &node,
        status.leases_held as u64,
    );
    let c = shared.counters();
    let name = "trunkguard_cluster_admissions_total";
    out.family(
        name,
        "counter",
        "Admissions asked of the shared state, by answer: granted, refused by a limit \
         (callee, rate, trunk, number), or answered by on_shared_state_down (down).",
    );
    let answers: [(&str, &AtomicU64); 6] = [
        ("granted", &c.granted),
        ("callee", &c.refused_callee),
        ("rate", &c.refused_rate),
        ("trunk", &c.refused_trunk),
        ("number", &c.refused_number),
        ("down", &c.answered_down),
    ];
    for (answer, counter) in answers {
        let labels = [node[0], ("answer", answer)];
        out.sample(name, &labels, counter.load(Ordering::Relaxed));
    }
    let name = "trunkguard_cluster_drift_repaired_total";
    out.family(
        name,
        "counter",
        "Leases reconciliation put back (a live call missing from the shared state) or took \
         away (a lease no live call holds).",
    );
    for (change, counter) in [
        ("added", &c.reconcile_added),
        ("removed", &c.reconcile_removed),
    ] {
        let labels = [node[0], ("change", change)];
        out.sample(name, &labels, counter.load(Ordering::Relaxed));
    }
    for (name, help, counter) in counters(c) {
        out.family(name, "counter", help);
        out.sample(name, &node, counter.load(Ordering::Relaxed));
    }
}

fn gauge(out: &mut Exposition<'_>, name: &str, help: &str, labels: &[(&str, &str)], v: u64) {
    out.family(name, "gauge", help);
    out.sample(name, labels, v);
}

fn counters(c: &ClusterCounters) -> [(&'static str, &'static str, &AtomicU64); 9] {
    [
        (
            "trunkguard_cluster_shared_state_down_total",
            "Times the shared state became unreachable (each logged).",
            &c.went_down,
        ),
        (
            "trunkguard_cluster_redis_errors_total",
            "Redis commands that failed or timed out.",
            &c.redis_errors,
        ),
        (
            "trunkguard_cluster_releases_total",
            "Leases released in the shared state (calls ended).",
            &c.releases,
        ),
        (
            "trunkguard_cluster_releases_retried_total",
            "Releases that failed and were kept for retry.",
            &c.releases_retried,
        ),
        (
            "trunkguard_cluster_releases_dropped_total",
            "Releases given up beyond the retry bound (reconciliation repairs them).",
            &c.releases_dropped,
        ),
        (
            "trunkguard_cluster_heartbeat_failures_total",
            "Heartbeats that failed.",
            &c.heartbeat_failures,
        ),
        (
            "trunkguard_cluster_rejoins_total",
            "Times this node rejoined the cluster (after a lapse, or Redis losing its state).",
            &c.rejoins,
        ),
        (
            "trunkguard_cluster_nodes_reclaimed_total",
            "Dead nodes whose leases this node reclaimed.",
            &c.nodes_reclaimed,
        ),
        (
            "trunkguard_cluster_leases_reclaimed_total",
            "Leases of dead nodes this node reclaimed.",
            &c.leases_reclaimed,
        ),
    ]
}
