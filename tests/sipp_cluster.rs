//! Several gateway nodes sharing their admission state in Redis (`[cluster]`), each a real
//! `trunkguard` process on its own loopback addresses, SIPp as the PBX sending to every node
//! and as the one carrier behind them. The caps are the cluster's: a trunk capped at 10 carries
//! 10 calls across the nodes, never 10 per node; a node killed with calls up stops holding its
//! slots once its heartbeat is `node_timeout_secs` old.
//!
//! Every process is bounded (SIPp `-timeout`, Rust-side deadlines, kill on drop); failures
//! print every node's log and every SIPp screen. No assertion is about speed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/cluster.rs"]
mod cluster;
#[path = "sipp/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use cluster::{redis_here, ClusterScene, ClusterSettings, PbxBatch, RedisProxy};
use harness::{TrunkLimits, OTHER_TRUNK_NUMBER, TRUNK_NUMBER};
use trunkguard::model::{Cdr, Disposition, RefusalReason};

const CALLEE: &str = "8613800138000";

/// SIPp as the PBX sending `calls` calls at once to node `node` from `caller`; each admitted
/// call talks `hold_ms`, then hangs up.
fn pbx_batch(
    scene: &mut ClusterScene,
    node: usize,
    name: &str,
    calls: u32,
    caller: &str,
    hold_ms: u32,
) -> usize {
    scene.pbx_batch(PbxBatch {
        node,
        name,
        calls,
        caller,
        callee: CALLEE,
        rate: 1000,
        hold_ms,
    })
}

/// (answered, refused with 503) as one PBX SIPp counted them.
fn outcomes(scene: &mut ClusterScene, sipp: usize) -> (u64, u64) {
    scene.expect_exit_ok(sipp);
    let counts = scene.ok(scene.sipps[sipp].counts());
    let answered = scene.ok(counts.first("200_Recv"));
    let refused = scene.ok(counts.first("503_Recv"));
    (answered, refused)
}

fn count(cdrs: &[Cdr], disposition: Disposition, reason: Option<RefusalReason>) -> usize {
    cdrs.iter()
        .filter(|c| c.outcome.disposition == disposition && c.outcome.refusal_reason == reason)
        .count()
}

fn summary(cdrs: &[Cdr]) -> String {
    cdrs.iter()
        .map(|c| {
            format!(
                "{} {} {} {:?}",
                c.attempt.id,
                c.outcome.disposition,
                c.outcome.final_status,
                c.outcome.refusal_reason
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// 30 simultaneous calls split over two nodes against `limits`: exactly `admitted` answered,
/// the rest refused 503 with `reason`, on the wire and in the CDRs of both nodes.
fn thirty_calls_over_two_nodes(
    test: &str,
    limits: TrunkLimits,
    reason: RefusalReason,
    admitted: u64,
) {
    if !redis_here(test) {
        return;
    }
    let mut scene = ClusterScene::start(2, limits, ClusterSettings::default());
    let uas = scene.carrier_uas(admitted as u32, 60);
    let a = pbx_batch(&mut scene, 0, "pbx-a", 15, TRUNK_NUMBER, 6000);
    let b = pbx_batch(&mut scene, 1, "pbx-b", 15, TRUNK_NUMBER, 6000);
    let (answered_a, refused_a) = outcomes(&mut scene, a);
    let (answered_b, refused_b) = outcomes(&mut scene, b);
    scene.ensure(
        answered_a + answered_b == admitted && refused_a + refused_b == 30 - admitted,
        || {
            format!(
                "node a: {answered_a} answered, {refused_a} refused; node b: {answered_b} \
                 answered, {refused_b} refused; expected {admitted} answered in all"
            )
        },
    );
    scene.expect_exit_ok(uas);
    let cdrs = scene.stop_and_read_cdrs();
    let answered = count(&cdrs, Disposition::Answered, None);
    let refused = count(&cdrs, Disposition::Refused, Some(reason));
    let phrase_ok = cdrs
        .iter()
        .filter(|c| c.outcome.disposition == Disposition::Refused)
        .all(|c| {
            let line = reason.status_line();
            (c.outcome.final_status, c.outcome.final_reason.as_str()) == (line.code, line.phrase)
        });
    scene.ensure(
        cdrs.len() == 30
            && answered as u64 == admitted
            && refused as u64 == 30 - admitted
            && phrase_ok,
        || format!("CDRs of both nodes:\n{}", summary(&cdrs)),
    );
}

#[test]
fn a_trunk_cap_of_ten_is_ten_across_two_nodes() {
    let limits = TrunkLimits {
        max_concurrent: 10,
        max_concurrent_per_caller_id: 30,
        max_cps: 1000.0,
        ..TrunkLimits::default()
    };
    thirty_calls_over_two_nodes(
        "a_trunk_cap_of_ten_is_ten_across_two_nodes",
        limits,
        RefusalReason::TrunkConcurrency,
        10,
    );
}

#[test]
fn a_caller_id_cap_of_ten_is_ten_across_two_nodes() {
    let limits = TrunkLimits {
        max_concurrent: 30,
        max_concurrent_per_caller_id: 10,
        max_cps: 1000.0,
        ..TrunkLimits::default()
    };
    thirty_calls_over_two_nodes(
        "a_caller_id_cap_of_ten_is_ten_across_two_nodes",
        limits,
        RefusalReason::CallerIdConcurrency,
        10,
    );
}

/// `max_cps = 2`: a bucket of two calls, refilled at two a second, shared by the nodes. Thirty
/// INVITEs sent at once to two nodes: the cluster admits the burst of two plus what refilled
/// while the INVITEs arrived (counted from the CDRs' own times), never two per node.
#[test]
fn max_cps_is_the_clusters_rate() {
    let test = "max_cps_is_the_clusters_rate";
    if !redis_here(test) {
        return;
    }
    let limits = TrunkLimits {
        max_concurrent: 30,
        max_concurrent_per_caller_id: 30,
        max_cps: 2.0,
        ..TrunkLimits::default()
    };
    let mut scene = ClusterScene::start(2, limits, ClusterSettings::default());
    // A carrier that answers however many the rate lets through.
    let uas = scene.carrier_uas(0, 60);
    // Held 3 s: the BYEs come after the flood guard's 2 s window (30 INVITEs and ACKs fill a
    // node's budget of 30 requests from the PBX's address).
    let a = pbx_batch(&mut scene, 0, "pbx-a", 15, TRUNK_NUMBER, 3000);
    let b = pbx_batch(&mut scene, 1, "pbx-b", 15, TRUNK_NUMBER, 3000);
    let (answered_a, refused_a) = outcomes(&mut scene, a);
    let (answered_b, refused_b) = outcomes(&mut scene, b);
    let _ = scene.sipps[uas].finish();
    let cdrs = scene.stop_and_read_cdrs();
    let first = cdrs.iter().map(|c| c.attempt.invite_at).min().unwrap();
    let last = cdrs.iter().map(|c| c.attempt.invite_at).max().unwrap();
    let spread = (last - first).num_milliseconds().max(0) as f64 / 1000.0;
    // Two at once, two a second after that, one more for a token refilled at the boundary.
    let most = 2 + (2.0 * spread).floor() as u64 + 1;
    let answered = answered_a + answered_b;
    let rate_refused = count(
        &cdrs,
        Disposition::Refused,
        Some(RefusalReason::RateLimited),
    );
    scene.ensure(
        answered >= 2
            && answered <= most
            && refused_a + refused_b == 30 - answered
            && rate_refused as u64 == 30 - answered
            && cdrs.len() == 30,
        || {
            format!(
                "{answered} answered ({answered_a} on a, {answered_b} on b) over {spread:.3} s of \
                 INVITEs: expected 2..={most}; {rate_refused} CDRs refused rate_limited:\n{}",
                summary(&cdrs)
            )
        },
    );
}

/// Node a killed (SIGKILL) with five calls up, node b carrying five: node b admits up to the
/// full cap again once node a's heartbeat is `node_timeout_secs` old (+1 s), and no lease is
/// left behind once every call has ended.
#[test]
fn a_killed_nodes_slots_come_back_after_the_node_timeout() {
    let test = "a_killed_nodes_slots_come_back_after_the_node_timeout";
    if !redis_here(test) {
        return;
    }
    let limits = TrunkLimits {
        max_concurrent: 10,
        max_concurrent_per_caller_id: 30,
        max_cps: 1000.0,
        ..TrunkLimits::default()
    };
    let settings = ClusterSettings {
        node_timeout_secs: 3,
        ..ClusterSettings::default()
    };
    let mut scene = ClusterScene::start(2, limits, settings.clone());
    let uas = scene.carrier_uas(0, 90);
    // Five long calls on each node: the cap is full.
    let on_a = pbx_batch(&mut scene, 0, "pbx-a", 5, TRUNK_NUMBER, 30_000);
    let on_b = pbx_batch(&mut scene, 1, "pbx-b", 5, OTHER_TRUNK_NUMBER, 20_000);
    std::thread::sleep(Duration::from_secs(2));
    // Full: one more call on b is refused.
    let probe = pbx_batch(&mut scene, 1, "pbx-b-full", 1, OTHER_TRUNK_NUMBER, 100);
    let (answered, refused) = outcomes(&mut scene, probe);
    scene.ensure(answered == 0 && refused == 1, || {
        format!("with the cap full, b answered {answered}, refused {refused}")
    });

    let killed = Instant::now();
    scene.nodes[0].gateway.kill();
    // Within node_timeout + 1 s b admits node a's five again.
    std::thread::sleep(
        Duration::from_secs(settings.node_timeout_secs + 1).saturating_sub(killed.elapsed()),
    );
    let after = pbx_batch(&mut scene, 1, "pbx-b-after", 6, OTHER_TRUNK_NUMBER, 1000);
    let (answered, refused) = outcomes(&mut scene, after);
    scene.ensure(answered == 5 && refused == 1, || {
        format!(
            "{:.1} s after node a died, b answered {answered} and refused {refused} of 6: \
             expected 5 and 1",
            killed.elapsed().as_secs_f64()
        )
    });
    let _ = outcomes(&mut scene, on_b);
    // Node a's PBX and the carrier still hold dialogs of a's calls (nobody ends them: that is
    // the survivor's work, not this test's): they are killed with the scene.
    let _ = (on_a, uas);
    // Every call on b has ended: the shared state holds no lease of b's and none of a's.
    let mut conn = scene.redis();
    let pattern = format!("{{{}}}*lease*", scene.prefix);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left: Vec<String> = Vec::new();
    while Instant::now() < deadline {
        left = redis::cmd("KEYS").arg(&pattern).query(&mut conn).unwrap();
        let held: usize = left
            .iter()
            .map(|k| {
                redis::cmd("HLEN")
                    .arg(k)
                    .query::<usize>(&mut conn)
                    .unwrap_or(0)
            })
            .sum();
        if held == 0 {
            left.clear();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    scene.ensure(left.is_empty(), || {
        format!("leases left in Redis: {left:?}")
    });
    let r = scene.nodes[1].gateway.stop();
    scene.ok(r);
}

/// Redis stops under two nodes: node a (`on_shared_state_down = "refuse"`) answers 503 Shared
/// State Unavailable and says so in its log; node b (`"local"`) goes on under its share of the
/// cap (10 ÷ 2 live nodes). Redis back: b's calls are counted in the shared state again (rebuilt
/// from its live calls), so a admits only what is left of the cap.
#[test]
fn redis_stopping_refuses_or_divides_and_its_return_rebuilds_the_state() {
    let test = "redis_stopping_refuses_or_divides_and_its_return_rebuilds_the_state";
    if !redis_here(test) {
        return;
    }
    let proxy = RedisProxy::start();
    let limits = TrunkLimits {
        max_concurrent: 10,
        max_concurrent_per_caller_id: 30,
        max_cps: 1000.0,
        ..TrunkLimits::default()
    };
    let mut scene = ClusterScene::start_each(2, limits, |i| ClusterSettings {
        redis_url: Some(proxy.url.clone()),
        on_shared_state_down: if i == 0 { "refuse" } else { "local" },
        ..ClusterSettings::default()
    });
    let uas = scene.carrier_uas(0, 90);
    // Both nodes see each other before Redis stops (b's share is then 10 ÷ 2).
    std::thread::sleep(Duration::from_secs(2));
    proxy.cut();

    let refused_on_a = pbx_batch(&mut scene, 0, "pbx-a-down", 3, TRUNK_NUMBER, 1000);
    let (answered, refused) = outcomes(&mut scene, refused_on_a);
    let logged = scene.nodes[0]
        .gateway
        .log()
        .contains("shared admission state unavailable");
    scene.ensure(answered == 0 && refused == 3 && logged, || {
        format!("node a (refuse) with Redis down: {answered} answered, {refused} refused, logged: {logged}")
    });

    let held_on_b = pbx_batch(&mut scene, 1, "pbx-b-down", 8, OTHER_TRUNK_NUMBER, 15_000);
    std::thread::sleep(Duration::from_secs(3));
    let b_dir = scene.path().join("sipp-pbx-b-down");
    let b_answered = answered_so_far(&b_dir);
    scene.ensure(b_answered == 5, || {
        format!("node b (local) with Redis down answered {b_answered} of 8, expected 10 ÷ 2 = 5")
    });

    proxy.restore();
    // Rebuilt: b's five live calls are in the shared state again.
    let mut conn = scene.redis();
    let key = format!("{{{}}}:node:gw-b:leases", scene.prefix);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut leases = 0;
    while Instant::now() < deadline {
        leases = redis::cmd("HLEN")
            .arg(&key)
            .query::<usize>(&mut conn)
            .unwrap_or(0);
        if leases == 5 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    scene.ensure(leases == 5, || {
        format!("node b's leases in Redis after its return: {leases}")
    });
    // a may admit what is left of the cap: 5 of 6.
    let after = pbx_batch(&mut scene, 0, "pbx-a-back", 6, TRUNK_NUMBER, 1000);
    let (answered, refused) = outcomes(&mut scene, after);
    scene.ensure(answered == 5 && refused == 1, || {
        format!("node a after Redis came back: {answered} answered, {refused} refused of 6")
    });
    let _ = outcomes(&mut scene, held_on_b);
    let _ = scene.sipps[uas].finish();
    let cdrs = scene.stop_and_read_cdrs();
    let unavailable = count(
        &cdrs,
        Disposition::Refused,
        Some(RefusalReason::SharedStateUnavailable),
    );
    scene.ensure(unavailable == 3, || format!("CDRs:\n{}", summary(&cdrs)));
}

/// Calls a running PBX SIPp has seen answered so far (its counts file, dumped every second).
fn answered_so_far(dir: &std::path::Path) -> u64 {
    let Some(path) = std::fs::read_dir(dir).ok().and_then(|d| {
        d.filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with("_counts.csv"))
    }) else {
        return 0;
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else { return 0 };
    let Some(last) = lines.next_back() else {
        return 0;
    };
    let mut first_200: Option<(u32, u64)> = None;
    for (k, v) in header.split(';').zip(last.split(';')) {
        if let Some(idx) = k
            .strip_suffix("_200_Recv")
            .and_then(|i| i.parse::<u32>().ok())
        {
            let n = v.trim().parse().unwrap_or(0);
            if first_200.is_none_or(|(i, _)| idx < i) {
                first_200 = Some((idx, n));
            }
        }
    }
    first_200.map_or(0, |(_, n)| n)
}
