//! The shared limits across two nodes: never more than the cap, counted once.

use std::time::Duration;

use super::*;
use crate::cluster::Limit;

const SETTLE: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_cap_of_10_grants_exactly_10_of_30_across_two_nodes() {
    if !redis_here("trunk_cap").await {
        return;
    }
    let p = Prefix::new();
    let (a, b) = (node(options(&p, "a")).await, node(options(&p, "b")).await);
    let caps = SharedCaps {
        max_concurrent: 10,
        max_per_number: 100,
    };
    let rate = RateLimit::from_max_cps(10_000.0);
    let (granted, refused) = admit_all(&[&a.adm, &b.adm], 30, |i| {
        let line = format!("8610000000{i:02}");
        ("t1".into(), line, SharedRequestOwned { caps, rate })
    })
    .await;
    assert_eq!(granted.len(), 10);
    assert!(refused.iter().all(|r| *r == Refused::Limit(Limit::Trunk)));
    assert_eq!(active(&a.adm, "t1").await, 10);
    let peak = granted.iter().map(|l| l.trunk_active_at_grant()).max();
    assert_eq!(peak, Some(10));
    // Both nodes took some: the cap is the cluster's, not one node's.
    let on_a = a.adm.held_per_trunk().get("t1").copied().unwrap_or(0);
    let on_b = b.adm.held_per_trunk().get("t1").copied().unwrap_or(0);
    assert_eq!(on_a + on_b, 10);

    drop(granted);
    assert!(eventually(SETTLE, || async { active(&a.adm, "t1").await == 0 }).await);
    // Released slots are free again, to either node.
    let req = SharedRequest {
        caps,
        ..open_request("t1", "8610000000")
    };
    let again = b.adm.admit(&req).await.unwrap();
    assert_eq!(again.trunk_active_at_grant(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_id_cap_of_10_grants_exactly_10_of_30_across_two_nodes() {
    if !redis_here("caller_id_cap").await {
        return;
    }
    let p = Prefix::new();
    let (a, b) = (node(options(&p, "a")).await, node(options(&p, "b")).await);
    let caps = SharedCaps {
        max_concurrent: 100,
        max_per_number: 10,
    };
    let rate = RateLimit::from_max_cps(10_000.0);
    let (granted, refused) = admit_all(&[&a.adm, &b.adm], 30, |_| {
        let owned = SharedRequestOwned { caps, rate };
        ("t1".into(), "861012345678".into(), owned)
    })
    .await;
    assert_eq!(granted.len(), 10);
    assert!(refused.iter().all(|r| *r == Refused::Limit(Limit::Number)));
    let load = a.adm.load("t1").await.unwrap();
    assert_eq!(load.active, 10);
    assert_eq!(load.per_number.get("861012345678"), Some(&10));
    // Another line on the same trunk is not affected.
    let other = SharedRequest {
        caps,
        ..open_request("t1", "861087654321")
    };
    let _lease = a.adm.admit(&other).await.unwrap();
    drop(granted);
    assert!(eventually(SETTLE, || async { active(&b.adm, "t1").await == 1 }).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_bucket_of_10_grants_exactly_10_of_30_across_two_nodes() {
    if !redis_here("rate_bucket").await {
        return;
    }
    let p = Prefix::new();
    let (a, b) = (node(options(&p, "a")).await, node(options(&p, "b")).await);
    let caps = SharedCaps {
        max_concurrent: 100,
        max_per_number: 100,
    };
    // A burst of 10 that refills one token in 1000 s: no refill during the test.
    let rate = RateLimit {
        per_sec: 0.001,
        burst: 10.0,
    };
    let (granted, refused) = admit_all(&[&a.adm, &b.adm], 30, |i| {
        let line = format!("8610000000{i:02}");
        ("t1".into(), line, SharedRequestOwned { caps, rate })
    })
    .await;
    assert_eq!(granted.len(), 10);
    assert!(refused.iter().all(|r| *r == Refused::Limit(Limit::Rate)));
    // Freed slots give no token back: the rate counts attempts admitted, not calls up.
    drop(granted);
    assert!(eventually(SETTLE, || async { active(&a.adm, "t1").await == 0 }).await);
    let req = SharedRequest {
        caps,
        rate,
        ..open_request("t1", "861000000000")
    };
    assert_eq!(
        b.adm.admit(&req).await.unwrap_err(),
        Refused::Limit(Limit::Rate)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_released_twice_counts_once_and_never_below_zero() {
    if !redis_here("release_twice").await {
        return;
    }
    let p = Prefix::new();
    let a = node(options(&p, "a")).await;
    let lease = a.adm.admit(&open_request("t1", "8610")).await.unwrap();
    let id = lease.id().to_string();
    assert_eq!(active(&a.adm, "t1").await, 1);
    assert!(a.adm.release_lease(&id).await.unwrap());
    assert!(!a.adm.release_lease(&id).await.unwrap());
    assert_eq!(active(&a.adm, "t1").await, 0);
    // The lease's own drop releases it a third time, through the worker: still nothing.
    drop(lease);
    let mut conn = raw().await;
    let load_key = p.key("node:a:load");
    assert!(
        eventually(Duration::from_secs(5), || async {
            a.adm
                .counters()
                .releases
                .load(std::sync::atomic::Ordering::Relaxed)
                == 1
                && a.adm.held_per_trunk().is_empty()
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let load: Vec<String> = redis::cmd("HGETALL")
        .arg(&load_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        load.is_empty(),
        "no zero or negative count is left: {load:?}"
    );
    // The next call counts from zero, not from minus one.
    let next = a.adm.admit(&open_request("t1", "8610")).await.unwrap();
    assert_eq!(next.trunk_active_at_grant(), 1);
    assert_eq!(next.number_active_at_grant(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_windows_are_shared_by_the_nodes() {
    if !redis_here("callee_window").await {
        return;
    }
    let p = Prefix::new();
    let (a, b) = (node(options(&p, "a")).await, node(options(&p, "b")).await);
    let minute = Duration::from_secs(60);
    let with = |number, window, per, daily| SharedRequest {
        callee: Some(callee(number, window, per, daily)),
        ..open_request("t1", "8610")
    };
    // Once a minute: the second call, from the other node, is refused; another number is not.
    let _first = a
        .adm
        .admit(&with("8613900000001", minute, 1, Some(3)))
        .await
        .unwrap();
    let second = b
        .adm
        .admit(&with("8613900000001", minute, 1, Some(3)))
        .await;
    assert_eq!(second.unwrap_err(), Refused::Limit(Limit::Callee));
    let _other = b
        .adm
        .admit(&with("8613900000002", minute, 1, Some(3)))
        .await
        .unwrap();

    // Three a day (a 1 ms window lets them come in quick succession), from both nodes.
    let ms = Duration::from_millis(1);
    for i in 0..3 {
        let n = if i % 2 == 0 { &a.adm } else { &b.adm };
        drop(
            n.admit(&with("8613900000003", ms, 1, Some(3)))
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fourth = a.adm.admit(&with("8613900000003", ms, 1, Some(3))).await;
    assert_eq!(fourth.unwrap_err(), Refused::Limit(Limit::Callee));

    // All or nothing: a call refused for the trunk cap leaves no trace in the callee's window.
    let full = SharedRequest {
        caps: SharedCaps {
            max_concurrent: 1,
            max_per_number: 10,
        },
        ..with("8613900000004", minute, 1, None)
    };
    assert_eq!(
        a.adm.admit(&full).await.unwrap_err(),
        Refused::Limit(Limit::Trunk)
    );
    let _now = b
        .adm
        .admit(&with("8613900000004", minute, 1, None))
        .await
        .unwrap();
    let times: Vec<String> = redis::cmd("LRANGE")
        .arg(p.key("callee:t1:8613900000004"))
        .arg(0)
        .arg(-1)
        .query_async(&mut raw().await)
        .await
        .unwrap();
    assert_eq!(times.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_churn_no_grant_ever_sees_more_than_the_cap() {
    if !redis_here("churn").await {
        return;
    }
    let p = Prefix::new();
    let (a, b) = (node(options(&p, "a")).await, node(options(&p, "b")).await);
    let caps = SharedCaps {
        max_concurrent: 5,
        max_per_number: 3,
    };
    let mut set = tokio::task::JoinSet::new();
    for i in 0..200u64 {
        let adm = if i % 2 == 0 {
            a.adm.clone()
        } else {
            b.adm.clone()
        };
        set.spawn(async move {
            let line = format!("861000{}", i % 4);
            let req = SharedRequest {
                caps,
                ..open_request("t1", &line)
            };
            let lease = adm.admit(&req).await.ok()?;
            let seen = (
                lease.trunk_active_at_grant(),
                lease.number_active_at_grant(),
            );
            tokio::time::sleep(Duration::from_millis(i % 7)).await;
            drop(lease);
            Some(seen)
        });
    }
    let mut granted = 0;
    while let Some(seen) = set.join_next().await {
        if let Some((on_trunk, on_line)) = seen.unwrap() {
            assert!(on_trunk <= 5 && on_line <= 3, "{on_trunk} {on_line}");
            granted += 1;
        }
    }
    assert!(granted >= 5, "{granted}");
    assert!(eventually(SETTLE, || async { active(&a.adm, "t1").await == 0 }).await);
    let load = b.adm.load("t1").await.unwrap();
    assert!(load.per_number.is_empty(), "{load:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_calls_ending_at_once_are_released_in_batches_each_once() {
    if !redis_here("release_batches").await {
        return;
    }
    let p = Prefix::new();
    let a = node(options(&p, "a")).await;
    // More than one batch (256) of leases on two lines, all dropped in the same instant.
    let mut leases = Vec::new();
    for i in 0..600 {
        let line = if i % 2 == 0 { "8610" } else { "8611" };
        leases.push(a.adm.admit(&open_request("t1", line)).await.unwrap());
    }
    assert_eq!(active(&a.adm, "t1").await, 600);
    // One of them released by hand first: its drop must not count it twice.
    let early = leases[0].id().to_string();
    assert!(a.adm.release_lease(&early).await.unwrap());
    drop(leases);
    assert!(
        eventually(SETTLE, || async {
            a.adm
                .counters()
                .releases
                .load(std::sync::atomic::Ordering::Relaxed)
                == 600
        })
        .await
    );
    let load = a.adm.load("t1").await.unwrap();
    assert_eq!((load.active, load.per_number.len()), (0, 0), "{load:?}");
    assert!(a.adm.held_per_trunk().is_empty());
}
