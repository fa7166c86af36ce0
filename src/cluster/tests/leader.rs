//! The monitor lease: exactly one leader; a dead one's lease is taken over within ttl + a round;
//! a clean stop hands it over at once, after the monitor acknowledged it stopped.

use std::time::Duration;

use tokio::time::Instant;

use super::{options, raw, redis_here, Prefix};
use crate::cluster::leader::{holder_of, leader_key, LeaderOptions, Leadership, RoleWatch};
use crate::shutdown::{self, ShutdownTrigger};

const TIMING: LeaderOptions = LeaderOptions {
    ttl: Duration::from_millis(1500),
    renew_every: Duration::from_millis(200),
};

struct Candidate {
    role: RoleWatch,
    stop: ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
}

fn candidate(prefix: &Prefix, node: &str) -> Candidate {
    let l = Leadership::new(&options(prefix, node), TIMING).unwrap();
    let role = l.watch();
    let (stop, shutdown) = shutdown::channel();
    let task = l.spawn(shutdown);
    Candidate { role, stop, task }
}

fn leading(c: &Candidate) -> bool {
    c.role.role.borrow().leading
}

/// Waits (bounded) until exactly one of `cs` leads; returns its index.
async fn one_leader(cs: &[&Candidate], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let leaders: Vec<usize> = (0..cs.len()).filter(|i| leading(cs[*i])).collect();
        if leaders.len() == 1 {
            return leaders[0];
        }
        assert!(leaders.len() <= 1, "two leaders at once");
        assert!(Instant::now() < deadline, "no leader within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn holder(prefix: &Prefix) -> Option<String> {
    let v: Option<String> = redis::cmd("GET")
        .arg(leader_key(&prefix.0))
        .query_async(&mut raw().await)
        .await
        .unwrap();
    v.map(|v| holder_of(&v).to_string())
}

#[tokio::test]
async fn exactly_one_leads_and_a_dead_leader_is_replaced_within_a_few_seconds() {
    if !redis_here("leader_dead").await {
        return;
    }
    let prefix = Prefix::new();
    let a = candidate(&prefix, "gw-a");
    let b = candidate(&prefix, "gw-b");
    let first = one_leader(&[&a, &b], Duration::from_secs(3)).await;
    // It stays one leader over many renewals.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(one_leader(&[&a, &b], Duration::ZERO).await, first);
    }
    let (dead, survivor, name) = if first == 0 {
        (a, b, "gw-b")
    } else {
        (b, a, "gw-a")
    };
    // A crash: the task is gone without releasing anything.
    dead.task.abort();
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(5);
    while !leading(&survivor) {
        assert!(Instant::now() < deadline, "nobody took over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = killed.elapsed();
    assert!(
        took <= TIMING.ttl + TIMING.renew_every * 3,
        "took over after {took:?}"
    );
    assert_eq!(holder(&prefix).await.as_deref(), Some(name));
    drop(dead.stop);
    survivor.stop.trigger();
    survivor.task.await.unwrap();
}

#[tokio::test]
async fn a_clean_stop_hands_over_after_the_monitor_stopped() {
    if !redis_here("leader_stop").await {
        return;
    }
    let prefix = Prefix::new();
    let a = candidate(&prefix, "gw-a");
    one_leader(&[&a], Duration::from_secs(3)).await;
    let b = candidate(&prefix, "gw-b");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!leading(&b), "the lease is a's");

    a.stop.trigger();
    // a says it no longer leads, and waits for its monitor's acknowledgement before it lets go.
    let mut role = a.role.role.clone();
    let epoch = role.wait_for(|r| !r.leading).await.unwrap().epoch;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(holder(&prefix).await.as_deref(), Some("gw-a"));
    a.role.acknowledge(epoch);
    a.task.await.unwrap();
    // b takes it at its next try, long before the ttl would have run out.
    let released = Instant::now();
    one_leader(&[&b], Duration::from_secs(1)).await;
    assert!(released.elapsed() < TIMING.ttl, "{:?}", released.elapsed());
    assert_eq!(holder(&prefix).await.as_deref(), Some("gw-b"));
    b.stop.trigger();
    b.task.await.unwrap();
    assert_eq!(holder(&prefix).await, None, "released on a clean stop");
}

#[tokio::test]
async fn a_leader_that_cannot_renew_steps_down_before_its_lease_can_expire() {
    if !redis_here("leader_cut").await {
        return;
    }
    let prefix = Prefix::new();
    let a = candidate(&prefix, "gw-a");
    one_leader(&[&a], Duration::from_secs(3)).await;
    // Someone else's value in the key: the renewal finds the lease is not a's any more.
    let _: () = redis::cmd("SET")
        .arg(leader_key(&prefix.0))
        .arg("gw-x 1")
        .query_async(&mut raw().await)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while leading(&a) {
        assert!(Instant::now() < deadline, "still leading");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.stop.trigger();
    a.task.await.unwrap();
    // Not a's to release.
    assert_eq!(holder(&prefix).await.as_deref(), Some("gw-x"));
}
