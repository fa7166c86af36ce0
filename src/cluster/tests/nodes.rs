//! Nodes coming and going: a silent node's leases reclaimed, a node rejoining with its live
//! calls, calls adopted from the fallback, a node leaving when it stops.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::*;
use crate::cluster::Limit;

fn capped<'a>(trunk: &'a str, line: &'a str, cap: u32) -> SharedRequest<'a> {
    SharedRequest {
        caps: SharedCaps {
            max_concurrent: cap,
            max_per_number: cap,
        },
        ..open_request(trunk, line)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_nodes_leases_are_reclaimed_and_the_cap_is_whole_again() {
    if !redis_here("silent_node").await {
        return;
    }
    let p = Prefix::new();
    let opts = options(&p, "a");
    let a = node(opts.clone()).await;
    let b = silent_node(ClusterOptions {
        node_id: "b".into(),
        ..opts
    })
    .await;
    let req = capped("t1", "8610", 10);
    let mut held_by_b = Vec::new();
    for _ in 0..10 {
        held_by_b.push(b.admit(&req).await.unwrap());
    }
    assert_eq!(
        a.adm.admit(&req).await.unwrap_err(),
        Refused::Limit(Limit::Trunk)
    );
    // b beats no more: after node_timeout its calls stop counting and a reclaims them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut held_by_a = Vec::new();
    while held_by_a.len() < 10 && tokio::time::Instant::now() < deadline {
        match a.adm.admit(&req).await {
            Ok(lease) => held_by_a.push(lease),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(held_by_a.len(), 10, "a got the whole cap");
    assert_eq!(
        a.adm.admit(&req).await.unwrap_err(),
        Refused::Limit(Limit::Trunk)
    );
    let mut conn = raw().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(p.key("nodes"))
            .arg("b")
            .query_async(&mut conn)
            .await
            .unwrap();
        let exists: i64 = redis::cmd("EXISTS")
            .arg(p.key("node:b:leases"))
            .query_async(&mut conn)
            .await
            .unwrap();
        if score.is_none() && exists == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "b's keys were not reclaimed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = a.adm.counters();
    assert_eq!(c.nodes_reclaimed.load(Ordering::Relaxed), 1);
    assert_eq!(c.leases_reclaimed.load(Ordering::Relaxed), 10);
    assert_eq!(active(&a.adm, "t1").await, 10);
    // b's calls end after all: their releases change nothing (nobody runs b's worker here).
    drop(held_by_b);
    assert!(!b.release_lease("no-such-lease").await.unwrap());
    assert_eq!(active(&a.adm, "t1").await, 10);
}

/// A dead node is handed on once, by the survivor that reclaimed it, to close its journaled
/// calls; the live list names the survivors only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reclaimed_node_is_handed_on_once_and_leaves_the_live_list() {
    if !redis_here("lost_nodes").await {
        return;
    }
    let p = Prefix::new();
    let opts = options(&p, "a");
    let a = node(opts.clone()).await;
    let c = node(ClusterOptions {
        node_id: "c".into(),
        ..opts.clone()
    })
    .await;
    let b = silent_node(ClusterOptions {
        node_id: "b".into(),
        ..opts
    })
    .await;
    let mut live = a.adm.live_nodes().await.unwrap();
    live.sort();
    assert_eq!(live, ["a", "b", "c"]);
    let mut lost_a = a.adm.lost_nodes().expect("the first reader");
    assert!(a.adm.lost_nodes().is_none(), "one reader");
    let mut lost_c = c.adm.lost_nodes().expect("the first reader");
    // b is silent: within the timeout and a beat one survivor, and only one, reports it.
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            Some(n) = lost_a.recv() => ("a", n),
            Some(n) = lost_c.recv() => ("c", n),
        }
    })
    .await
    .expect("b handed on within 10 s");
    assert_eq!(got.1, "b");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        lost_a.try_recv().is_err() && lost_c.try_recv().is_err(),
        "handed on once: {got:?}"
    );
    let mut live = a.adm.live_nodes().await.unwrap();
    live.sort();
    assert_eq!(live, ["a", "c"]);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_rejoins_with_its_live_calls_after_redis_lost_its_state() {
    if !redis_here("rejoin").await {
        return;
    }
    let p = Prefix::new();
    let a = node(options(&p, "a")).await;
    let mut leases = Vec::new();
    for i in 0..3 {
        let line = format!("861000{i}");
        leases.push(a.adm.admit(&capped("t1", &line, 10)).await.unwrap());
    }
    assert_eq!(active(&a.adm, "t1").await, 3);
    // As if Redis restarted empty: every key of the cluster gone.
    let mut conn = raw().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{{{}}}*", p.0))
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            active(&a.adm, "t1").await == 3
        })
        .await
    );
    assert!(a.adm.counters().rejoins.load(Ordering::Relaxed) >= 2);
    leases.pop();
    assert!(
        eventually(Duration::from_secs(10), || async {
            active(&a.adm, "t1").await == 2
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_admitted_by_the_local_fallback_are_adopted_into_the_shared_state() {
    if !redis_here("adopt").await {
        return;
    }
    let p = Prefix::new();
    let a = node(options(&p, "a")).await;
    let adopted = a.adm.adopt("t1", "8610");
    assert!(
        eventually(Duration::from_secs(10), || async {
            active(&a.adm, "t1").await == 1
        })
        .await
    );
    let load = a.adm.load("t1").await.unwrap();
    assert_eq!(load.per_number.get("8610"), Some(&1));
    drop(adopted);
    assert!(
        eventually(Duration::from_secs(10), || async {
            active(&a.adm, "t1").await == 0
        })
        .await
    );
    let r = a.adm.reconcile().await.unwrap();
    assert_eq!((r.added, r.removed), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_removes_leases_no_live_call_holds() {
    if !redis_here("reconcile").await {
        return;
    }
    let p = Prefix::new();
    let a = node(options(&p, "a")).await;
    let lease = a.adm.admit(&capped("t1", "8610", 10)).await.unwrap();
    // A lease in Redis that no call of a holds (as if its release had been lost).
    let mut conn = raw().await;
    let _: i64 = redis::cmd("HSET")
        .arg(p.key("node:a:leases"))
        .arg("stray")
        .arg("t1\n8611")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: i64 = redis::cmd("HINCRBY")
        .arg(p.key("node:a:load"))
        .arg("t1")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(active(&a.adm, "t1").await, 2);
    let r = a.adm.reconcile().await.unwrap();
    assert_eq!((r.added, r.removed), (0, 1));
    assert_eq!(r.held.get("t1"), Some(&1));
    assert_eq!(active(&a.adm, "t1").await, 1);
    assert_eq!(lease.trunk(), "t1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_node_beats_while_calls_drain_then_leaves() {
    if !redis_here("leave").await {
        return;
    }
    let p = Prefix::new();
    let mut a = node(options(&p, "a")).await;
    let lease = a.adm.admit(&capped("t1", "8610", 10)).await.unwrap();
    a.stop.trigger();
    // Beyond the node timeout the draining call still counts: the node still beats.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(active(&a.adm, "t1").await, 1);
    let worker = a.worker.take().unwrap();
    assert!(!worker.is_finished());
    drop(lease);
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("the worker stops once no call holds a lease")
        .unwrap();
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(p.key("nodes"))
        .arg("a")
        .query_async(&mut raw().await)
        .await
        .unwrap();
    assert_eq!(score, None, "the node left the cluster");
    assert!(!a.adm.is_up());
}
