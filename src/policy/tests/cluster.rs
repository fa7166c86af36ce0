//! A cluster node's admission (`Policy::admit_in_cluster`) against the real Redis: two nodes
//! (two policies, two `SharedAdmission`s under one key prefix) share every cap exactly; the
//! screening checks stay local; while the shared state is down `refuse` answers 503 and
//! `local` admits under the node's share of the caps.

use std::time::Duration;

use super::*;
use crate::cluster::testing::{options, redis_here, Prefix, RedisProxy};
use crate::cluster::{ClusterOptions, SharedAdmission};
use crate::config::OnSharedStateDown;
use crate::model::RefusalReason as R;
use crate::policy::{Admission, Policy};
use crate::shutdown::{self, ShutdownTrigger};

const FROM_A: &str = "sip:+861012345678@10.0.0.1";
const FROM_B: &str = "sip:+861012345679@10.0.0.1";

/// One gateway node: its policy and its handle on the shared state, its worker running.
struct Node {
    policy: Policy,
    shared: SharedAdmission,
    _stop: ShutdownTrigger,
}

async fn node(opts: ClusterOptions, t: &TrunkConfig) -> Node {
    let shared = SharedAdmission::new(opts).unwrap();
    shared.join().await.unwrap();
    let (stop, shutdown) = shutdown::channel();
    shared.spawn(shutdown);
    Node {
        policy: Policy::new(std::slice::from_ref(t)),
        shared,
        _stop: stop,
    }
}

impl Node {
    async fn admit(&self, req: &AdmissionRequest<'_>) -> Decision {
        self.policy
            .admit_in_cluster(&self.shared, req, Utc::now())
            .await
    }
}

async fn two_nodes(prefix: &Prefix, t: &TrunkConfig) -> (Node, Node) {
    let a = node(options(prefix, "gw-a"), t).await;
    let b = node(options(prefix, "gw-b"), t).await;
    (a, b)
}

fn capped(f: impl FnOnce(&mut TrunkConfig)) -> TrunkConfig {
    let mut t = trunk("demo");
    f(&mut t);
    t
}

/// `n` outbound calls from `from`, alternating between the nodes: the admissions and the
/// refusals.
async fn alternate(nodes: [&Node; 2], n: usize, from: &str) -> (Vec<Admission>, Vec<Refusal>) {
    let (mut admitted, mut refused) = (Vec::new(), Vec::new());
    for i in 0..n {
        match nodes[i % 2].admit(&out(from, CUSTOMER)).await {
            Decision::Admit(a) => admitted.push(a),
            Decision::Refuse(r) => refused.push(r),
        }
    }
    (admitted, refused)
}

#[tokio::test]
async fn a_trunk_cap_holds_across_the_nodes() {
    if !redis_here("a_trunk_cap_holds_across_the_nodes").await {
        return;
    }
    let prefix = Prefix::new();
    let t = capped(|t| {
        t.max_concurrent = 4;
        t.max_concurrent_per_caller_id = 100;
    });
    let (a, b) = two_nodes(&prefix, &t).await;
    let (admitted, refused) = alternate([&a, &b], 10, FROM_A).await;
    assert_eq!(admitted.len(), 4, "{refused:?}");
    assert!(refused
        .iter()
        .all(|r| (r.status, r.reason) == (503, R::TrunkConcurrency)));
    // Each node counts its own calls too; the grant saw the cluster's count.
    let actives: Vec<u32> = admitted
        .iter()
        .map(|a| a.lease.trunk_active_at_grant())
        .collect();
    assert_eq!(actives, vec![1, 2, 3, 4]);
    assert!(admitted.iter().all(|a| a.lease.is_shared()));
    assert_eq!(a.policy.total_active() + b.policy.total_active(), 4);
    assert_eq!(a.policy.live("demo").unwrap().active, 2);

    // A call that ends frees its slot for the other node (the release goes through the
    // worker: poll).
    drop(admitted.into_iter().next());
    let mut freed = false;
    for _ in 0..50 {
        if let Decision::Admit(a) = b.admit(&out(FROM_A, CUSTOMER)).await {
            freed = true;
            drop(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "the ended call's slot was never freed");
}

#[tokio::test]
async fn caller_id_rate_and_callee_limits_are_shared() {
    if !redis_here("caller_id_rate_and_callee_limits_are_shared").await {
        return;
    }
    // Caller ID: 2 per number across both nodes; the other number is still free.
    let prefix = Prefix::new();
    let t = capped(|t| t.max_concurrent_per_caller_id = 2);
    let (a, b) = two_nodes(&prefix, &t).await;
    let (on_a, refused) = alternate([&a, &b], 5, FROM_A).await;
    assert_eq!(on_a.len(), 2);
    assert!(refused
        .iter()
        .all(|r| r.reason == R::CallerIdConcurrency && r.status == 503));
    assert!(b.admit(&out(FROM_B, CUSTOMER)).await.is_admit());

    // Rate: max_cps 0.05 is a bucket of one call, refilled in 20 s: one call in the cluster.
    let prefix = Prefix::new();
    let t = capped(|t| t.max_cps = 0.05);
    let (a, b) = two_nodes(&prefix, &t).await;
    let (held, refused) = alternate([&a, &b], 4, FROM_A).await;
    assert_eq!(held.len(), 1);
    assert!(refused
        .iter()
        .all(|r| (r.status, r.reason, r.retry_after) == (503, R::RateLimited, Some(1))));

    // Callee: once per window per number, whichever node calls.
    let prefix = Prefix::new();
    let mut t = trunk("demo");
    t.rules =
        toml::from_str("[over_frequent_callee]\nenabled = true\nthreshold = 1\nwindow = \"1h\"\n")
            .unwrap();
    let (a, b) = two_nodes(&prefix, &t).await;
    let first = a.admit(&out(FROM_A, CUSTOMER)).await;
    assert!(first.is_admit());
    assert_refused(
        b.admit(&out(FROM_B, CUSTOMER)).await,
        480,
        "Callee Frequency Limit",
        R::CalleeFrequencyLimit,
    );
    assert!(b
        .admit(&out(FROM_B, "sip:+8613900000000@carrier"))
        .await
        .is_admit());
}

#[tokio::test]
async fn screening_stays_local_and_throttles_cut_the_shared_cap() {
    if !redis_here("screening_stays_local_and_throttles_cut_the_shared_cap").await {
        return;
    }
    let prefix = Prefix::new();
    let t = capped(|t| {
        t.max_concurrent = 4;
        t.throttle_share = 0.5;
    });
    let (a, b) = two_nodes(&prefix, &t).await;
    // An unauthorized caller ID is refused before the shared state is asked.
    assert_refused(
        a.admit(&out("sip:+861099999999@10.0.0.1", CUSTOMER)).await,
        403,
        "Caller ID Not Authorized",
        R::CallerIdNotAuthorized,
    );
    assert_eq!(
        a.shared
            .counters()
            .granted
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    // A throttle imposed on both nodes (as the enforcement bus does) halves the cluster cap.
    let subject = crate::model::Subject::trunk_of("demo");
    for n in [&a, &b] {
        n.policy
            .restrictions()
            .impose(7, &subject, crate::model::Step::Throttle);
    }
    let (held, refused) = alternate([&a, &b], 4, FROM_A).await;
    assert_eq!(held.len(), 2);
    assert!(refused.iter().all(|r| r.reason == R::TrunkThrottled));
}

#[tokio::test]
async fn shared_state_down_refuses_or_divides_the_caps() {
    if !redis_here("shared_state_down_refuses_or_divides_the_caps").await {
        return;
    }
    let prefix = Prefix::new();
    let t = capped(|t| {
        t.max_concurrent = 10;
        t.max_concurrent_per_caller_id = 10;
    });
    // Node c reaches Redis through a proxy the test cuts; node a directly.
    let proxy = RedisProxy::start().await;
    let through_proxy = |on_down| ClusterOptions {
        redis_url: proxy.url().to_string(),
        on_down,
        op_timeout: Duration::from_millis(300),
        ..options(&prefix, "gw-c")
    };
    let _a = node(options(&prefix, "gw-a"), &t).await;
    let c = node(through_proxy(OnSharedStateDown::Local), &t).await;
    assert_eq!(c.shared.status().live_nodes, 2);
    let before = c.admit(&out(FROM_A, CUSTOMER)).await;
    assert!(before.is_admit());

    proxy.cut();
    // The first admission after the cut finds out (a failed script), later ones are answered
    // at once: this node's share is 10 ÷ 2 live nodes = 5, the call before the cut counted.
    let mut held = Vec::new();
    let mut refusals = Vec::new();
    for _ in 0..8 {
        match c.admit(&out(FROM_A, CUSTOMER)).await {
            Decision::Admit(a) => held.push(a),
            Decision::Refuse(r) => refusals.push(r.reason),
        }
    }
    assert_eq!(c.shared.status().state, "down");
    assert_eq!(held.len(), 4, "{refusals:?}");
    assert!(
        held.iter().all(|a| a.lease.is_shared()),
        "adopted for later"
    );
    assert!(refusals.iter().all(|r| *r == R::TrunkConcurrency));

    // Back: the calls admitted while it was down are in the shared state (reconciliation).
    proxy.restore();
    let mut counted = 0;
    for _ in 0..60 {
        let load = c.shared.load("demo").await;
        counted = load.map(|l| l.active).unwrap_or(0);
        if counted == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        counted, 5,
        "calls admitted while down are counted once it is back"
    );
    drop(before);
    drop(held);

    // Refuse: 503 Shared State Unavailable while down.
    let refusing = node(
        ClusterOptions {
            node_id: "gw-d".into(),
            ..through_proxy(OnSharedStateDown::Refuse)
        },
        &t,
    )
    .await;
    proxy.cut();
    let mut last = None;
    for _ in 0..3 {
        last = Some(refused(refusing.admit(&out(FROM_A, CUSTOMER)).await));
    }
    let r = last.unwrap();
    assert_eq!(
        (r.status, r.phrase.as_str(), r.reason, r.retry_after),
        (
            503,
            "Shared State Unavailable",
            R::SharedStateUnavailable,
            Some(5)
        )
    );
}
