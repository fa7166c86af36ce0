#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One truth for configuration and enforcement (issue 13, item 3): two gateway nodes on one
//! database and one Redis. A step imposed or lifted through either node's API, and a number
//! added to or blocked on a trunk through either, is in force on the other node within a second,
//! before its next call.

mod common;

use std::time::Duration;

use common::cluster::{redis_here, Cluster};
use common::*;
use reqwest::StatusCode;
use serde_json::json;
use tokio::time::Instant;
use trunkguard::app::Gateway;
use trunkguard::config::TrunkConfig;
use trunkguard::model::{Step, Subject};

/// What the issue allows between a change on one node and the other node applying it.
const WITHIN: Duration = Duration::from_secs(1);

fn digits(n: &str) -> String {
    n.trim_start_matches('+').to_string()
}

fn step_on(gw: &Gateway, number: &str) -> Option<Step> {
    gw.policy()
        .restrictions()
        .step_of(&Subject::caller_id(TRUNK, &digits(number)))
}

/// Waits until `done` holds on `gw`; fails past `WITHIN` after `since`.
async fn within_a_second(since: Instant, what: &str, done: impl Fn() -> bool) {
    while !done() {
        assert!(
            since.elapsed() < WITHIN,
            "{what}: not applied within {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `gw`'s trunks in force (admission's: the book applies them there first) satisfy
/// `done`; fails past `WITHIN` after `since`.
async fn trunks_within(
    gw: &Gateway,
    since: Instant,
    what: &str,
    done: impl Fn(&TrunkConfig) -> bool,
) {
    loop {
        let trunks = gw.trunks().await;
        if trunks.iter().any(|t| t.name == TRUNK && done(t)) {
            return;
        }
        assert!(
            since.elapsed() < WITHIN,
            "{what}: not applied within {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn lists(list: &[String], number: &str) -> bool {
    list.iter().any(|n| digits(n) == digits(number))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_imposed_or_lifted_through_either_nodes_api_is_in_force_on_the_other_before_its_next_call(
) {
    if !redis_here("cluster_sync_enforcement").await {
        return;
    }
    let mut c = Cluster::start(2, &[]).await;
    let leader = c.leader(Duration::from_secs(10)).await;
    let follower = 1 - leader;
    // Through the follower's API (handed to the leader) and through the leader's own.
    for (via, other, number) in [(follower, leader, CALLER), (leader, follower, CALLER2)] {
        let id = c.suspend(via, number).await;
        let answered = Instant::now();
        // The node that took the order applies it before it answers.
        assert_eq!(
            step_on(c.nodes[via].gw(), number),
            Some(Step::SuspendNumber)
        );
        let other_gw = c.nodes[other].gw();
        within_a_second(answered, "suspension on the other node", || {
            step_on(other_gw, number) == Some(Step::SuspendNumber)
        })
        .await;
        let (code, reason) = c.nodes[other].refused_call(number, CALLEE).await;
        assert_eq!((code, reason.as_str()), (403, "Caller ID Suspended"));
        // The other node's API shows it in force.
        let listed = c.nodes[other]
            .api
            .get("/api/v1/enforcement", &c.admin)
            .await
            .ok(StatusCode::OK)
            .json();
        let in_force = listed["in_force"].as_array().unwrap();
        assert!(in_force.iter().any(|s| s["id"] == id.as_str()), "{listed}");

        // Lifted through the other node's API: the first node admits it again.
        c.order(
            other,
            &format!("/api/v1/enforcement/{id}/lift"),
            json!({ "reason": "resolved" }),
        )
        .await
        .ok(StatusCode::OK);
        let lifted = Instant::now();
        assert_eq!(step_on(c.nodes[other].gw(), number), None);
        let via_gw = c.nodes[via].gw();
        within_a_second(lifted, "lift on the first node", || {
            step_on(via_gw, number).is_none()
        })
        .await;
        let node = &mut c.nodes[via];
        node.failed_call(&mut c.carrier, number, CALLEE, 486).await;
    }
    // An order for a trunk that does not exist is refused by a follower as by the leader.
    for i in [follower, leader] {
        c.order(
            i,
            "/api/v1/enforcement",
            json!({ "trunk": "nope", "step": "alert", "reason": "typo" }),
        )
        .await
        .refused(StatusCode::NOT_FOUND, "not_found", None);
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_added_or_blocked_on_one_node_is_applied_on_the_other_before_its_next_call() {
    if !redis_here("cluster_sync_trunks").await {
        return;
    }
    let mut c = Cluster::start(2, &[]).await;
    let new_number = "+861012345670";
    let (code, reason) = c.nodes[0].refused_call(new_number, CALLEE).await;
    assert_eq!((code, reason.as_str()), (403, "Caller ID Not Authorized"));

    // Added through node b's API: admitted on node a.
    c.nodes[1]
        .api
        .post(
            &format!("/api/v1/trunks/{TRUNK}/numbers"),
            &c.admin,
            json!({ "number": new_number }),
        )
        .await
        .ok(StatusCode::CREATED);
    let added = Instant::now();
    trunks_within(c.nodes[0].gw(), added, "number on node a", |t| {
        lists(&t.numbers, new_number)
    })
    .await;
    let node = &mut c.nodes[0];
    node.failed_call(&mut c.carrier, new_number, CALLEE, 486)
        .await;

    // Blocked through node a's API: refused on node b.
    c.nodes[0]
        .api
        .post(
            &format!("/api/v1/trunks/{TRUNK}/blocked"),
            &c.admin,
            json!({ "number": CALLEE2 }),
        )
        .await
        .ok(StatusCode::CREATED);
    let blocked = Instant::now();
    trunks_within(c.nodes[1].gw(), blocked, "block on node b", |t| {
        lists(&t.blocked_numbers, CALLEE2)
    })
    .await;
    let (code, reason) = c.nodes[1].refused_call(CALLER, CALLEE2).await;
    assert_eq!((code, reason.as_str()), (403, "Number Blocked"));
    // Both nodes hold the same trunks as the database.
    let defs = |gw: &Gateway| {
        let book = gw.trunk_book().clone();
        async move { book.definitions().await.unwrap() }
    };
    let (a, b) = (defs(c.nodes[0].gw()).await, defs(c.nodes[1].gw()).await);
    assert_eq!(a, b);
    for gw in [c.nodes[0].gw(), c.nodes[1].gw()] {
        let t = gw.trunks().await;
        assert!(lists(&t[0].numbers, new_number) && lists(&t[0].blocked_numbers, CALLEE2));
    }
    c.shutdown().await;
}

/// `/healthz` names each node and its cluster state (up, both nodes live), and `/metrics` shows
/// the shared state up under the node's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_metrics_name_each_nodes_cluster_state() {
    if !redis_here("cluster_sync_healthz").await {
        return;
    }
    let c = Cluster::start(2, &[]).await;
    for (i, id) in ["gw-a", "gw-b"].iter().enumerate() {
        let api = &c.nodes[i].api;
        let mut cluster = serde_json::Value::Null;
        // Node a sees node b live at its next heartbeat (1 s).
        for _ in 0..30 {
            let health = api.call(reqwest::Method::GET, "/healthz", None).await;
            assert_eq!(health.status, StatusCode::OK, "{}", health.text);
            cluster = health.json()["checks"]["cluster"].clone();
            if cluster["live_nodes"] == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(cluster["node_id"], *id, "{cluster}");
        assert_eq!(cluster["state"], "up", "{cluster}");
        assert_eq!(cluster["ok"], true, "{cluster}");
        assert_eq!(cluster["live_nodes"], 2, "{cluster}");
        let metrics = api.get("/metrics", &c.admin).await.ok(StatusCode::OK).text;
        let up = format!("trunkguard_cluster_shared_state_up{{node=\"{id}\"}} 1");
        assert!(metrics.contains(&up), "{metrics}");
    }
    c.shutdown().await;
}
