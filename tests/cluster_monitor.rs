#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One monitor for the cluster (issue 13, item 4): two gateway nodes on one database and one
//! Redis. Exactly one node runs the monitor (the Redis lease); when it dies (its gateway dropped
//! without a stop: nothing released) the other takes over within a few seconds, warms up from
//! the database and counts every call once. A rule sees the whole cluster's traffic: a caller
//! ID's 404 burst split over both nodes is one burst, one anomaly.

mod common;

use std::time::Duration;

use common::cluster::{redis_here, Cluster};
use common::*;
use tokio::time::Instant;
use trunkguard::config::RuleWindow;
use trunkguard::model::{Step, Subject};
use trunkguard::monitor::report::{kpi_report, Bucket, ReportQuery};

fn digits(n: &str) -> String {
    n.trim_start_matches('+').to_string()
}

/// A dead leader's lease runs out after `node_timeout_secs` (3 in these tests); the survivor
/// tries every heartbeat (1 s). A few seconds, with room for a loaded machine.
const TAKEOVER: Duration = Duration::from_secs(6);

/// Drops node `i`'s gateway without stopping it, as a crash would: its lease is not released.
fn crash(c: &mut Cluster, i: usize) {
    drop(c.nodes[i].gw.take().expect("running"));
}

/// Waits until node `i`'s monitor has counted `n` attempts on the trunk in the last hour.
async fn counted(c: &Cluster, i: usize, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let k = c.nodes[i]
            .gw()
            .monitor()
            .kpis(Subject::trunk_of(TRUNK), RuleWindow::Hour)
            .await
            .unwrap();
        let got = k.map_or(0, |k| k.attempts);
        if got == n {
            return;
        }
        assert!(
            got < n,
            "node {i} counted {got} attempts, {n} calls were made"
        );
        assert!(
            Instant::now() < deadline,
            "node {i} counted {got} attempts within 5 s, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_node_runs_the_monitor_and_another_takes_over_when_it_dies() {
    if !redis_here("cluster_monitor_leader").await {
        return;
    }
    let mut c = Cluster::start(2, &[]).await;
    let leader = c.leader(Duration::from_secs(10)).await;
    // It stays one leader over many renewals.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(c.leader(Duration::ZERO).await, leader);
    }
    crash(&mut c, leader);
    let died = Instant::now();
    let survivor = c.leader(TAKEOVER).await;
    assert_ne!(survivor, leader);
    assert!(died.elapsed() <= TAKEOVER, "took {:?}", died.elapsed());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_burst_from_one_caller_id_split_over_both_nodes_raises_one_anomaly() {
    if !redis_here("cluster_monitor_burst").await {
        return;
    }
    // Six invalid numbers in a minute suspend the caller ID: each node alone sees only three.
    let rules = "trunk.rules = { over_frequent_callee = { enabled = false }, error_rate = { \
                 threshold = 0.5, min_sample = 6, window = \"60s\", step = \"suspend_number\", \
                 resume_after = \"1h\" } }";
    let mut c = Cluster::start(2, &[rules]).await;
    c.leader(Duration::from_secs(10)).await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    for i in 0..6 {
        let node = &mut c.nodes[i % 2];
        node.failed_call(&mut c.carrier, CALLER, CALLEE, 404).await;
    }
    let store = c.nodes[0].gw().store().clone();
    let caller = digits(CALLER);
    let deadline = Instant::now() + Duration::from_secs(5);
    let anomalies = loop {
        let found = store
            .anomalies(since, chrono::Utc::now(), Some(TRUNK), Some(&caller))
            .await
            .unwrap();
        if !found.is_empty() {
            break found;
        }
        assert!(Instant::now() < deadline, "no anomaly within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Both nodes apply the suspension before their next call.
    for node in &mut c.nodes {
        let deadline = Instant::now() + Duration::from_secs(1);
        let subject = Subject::caller_id(TRUNK, &caller);
        while node.gw().policy().restrictions().step_of(&subject) != Some(Step::SuspendNumber) {
            assert!(Instant::now() < deadline, "{} did not suspend", node.id);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (code, reason) = node.refused_call(CALLER, CALLEE).await;
        assert_eq!((code, reason.as_str()), (403, "Caller ID Suspended"));
    }
    // One burst, judged once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let anomalies_now = store
        .anomalies(since, chrono::Utc::now(), Some(TRUNK), Some(&caller))
        .await
        .unwrap();
    assert_eq!(anomalies_now.len(), 1, "{anomalies_now:#?}");
    let a = &anomalies[0];
    // Six in the sample: three from each node.
    assert_eq!((a.rule.as_str(), a.sample), ("error_rate", 6), "{a:#?}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpis_count_each_call_once_after_a_leader_change() {
    if !redis_here("cluster_monitor_kpis").await {
        return;
    }
    let mut c = Cluster::start(2, &[]).await;
    let leader = c.leader(Duration::from_secs(10)).await;
    let survivor = 1 - leader;
    let mut calls = 0;
    for i in [leader, survivor, leader, survivor] {
        let node = &mut c.nodes[i];
        node.failed_call(&mut c.carrier, CALLER, CALLEE, 486).await;
        calls += 1;
    }
    counted(&c, leader, calls).await;

    // The leader dies; calls go on through the survivor while nobody judges.
    crash(&mut c, leader);
    for _ in 0..3 {
        let node = &mut c.nodes[survivor];
        node.failed_call(&mut c.carrier, CALLER, CALLEE2, 486).await;
        calls += 1;
    }
    c.leader(TAKEOVER).await;
    // And after the takeover.
    for _ in 0..2 {
        let node = &mut c.nodes[survivor];
        node.failed_call(&mut c.carrier, CALLER2, CALLEE, 486).await;
        calls += 1;
    }
    // The new leader's windows: the calls before its cursor from the warm-up, the ones after
    // judged; each once.
    counted(&c, survivor, calls).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    counted(&c, survivor, calls).await;
    let caller = c.nodes[survivor]
        .gw()
        .monitor()
        .kpis(Subject::caller_id(TRUNK, &digits(CALLER)), RuleWindow::Hour)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(caller.attempts, calls - 2);

    // The persisted hourly rows (each node's writer adds its own CDRs) agree.
    let now = chrono::Utc::now();
    let rows = kpi_report(
        c.nodes[survivor].gw().store(),
        &ReportQuery {
            from: now - chrono::Duration::days(1),
            to: now + chrono::Duration::days(1),
            trunk: Some(TRUNK.to_string()),
            number: None,
            kind: Some("trunk".to_string()),
            bucket: Bucket::Day,
        },
    )
    .await
    .unwrap();
    let attempts: u64 = rows.iter().map(|r| r.attempts).sum();
    assert_eq!(attempts, calls);
    c.shutdown().await;
}

/// Nodes of one cluster on databases of their own (each on its own SQLite file) cannot share a
/// monitor: each keeps its own and judges the CDRs it stores, as a single node does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_databases_of_their_own_each_keep_their_own_monitor() {
    if !redis_here("cluster_monitor_own_databases").await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let mut c = Cluster::start_each(2, &[], |i| {
        vec![format!(
            "database.url = \"sqlite://{}/own-{i}.db\"",
            root.display()
        )]
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        c.nodes[0].leads() && c.nodes[1].leads(),
        "each judges its own"
    );
    for i in [0, 1] {
        let node = &mut c.nodes[i];
        node.failed_call(&mut c.carrier, CALLER, CALLEE, 486).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.nodes[i].gw().monitor().figures().cdrs_seen < 1 {
            assert!(Instant::now() < deadline, "node {i} did not judge its call");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    c.shutdown().await;
}
