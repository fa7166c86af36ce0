//! A cluster node's calls when another node starts, and when the node dies (issue 13, items 5
//! and 6): real `trunkguard` processes on one PostgreSQL database and one Redis, SIPp as the
//! PBX and as the carrier.
//!
//! - A node starting while another carries calls leaves those calls alone: they end normally
//!   and their CDRs are the real ones (a start closes only the node's own journaled calls).
//! - A node killed (SIGKILL) with calls up: within `node_timeout_secs` and a few seconds a
//!   survivor closes its calls (CDRs `node_lost`, answered, recordings repaired and marked
//!   incomplete when the recordings folder is shared) and the PBX's and the carrier's SIPp each
//!   get one BYE per call, from the survivor's address. The survivor's API serves the lost
//!   node's recording from the shared folder; with folders that are not shared it answers 404
//!   naming the node that recorded the call.
//! - The safety net: a lost node nobody reclaimed (its Redis entry gone) is found by a node's
//!   sweep of the journal.
//! - A node restarting under the same id while a survivor closes its calls: each call is closed
//!   once, with one BYE to each peer.
//! - Redis away for every node longer than `node_timeout_secs`: when it is back the first node
//!   to beat reclaims the others, but they rejoin at once and their calls are left alone.
//!
//! Needs PostgreSQL (the nodes share one database) and Redis; without them a test is skipped
//! with a message, under CI=true it fails. Every process is bounded; failures print every
//! node's log and every SIPp screen.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/cluster.rs"]
mod cluster;
#[path = "sipp/harness.rs"]
mod harness;
#[path = "sipp/node_loss.rs"]
mod node_loss;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cluster::{ClusterSettings, PbxBatch, RedisProxy};
use harness::{Scenario, SippSpec, TrunkLimits, PBX_IP, TRUNK_NUMBER};
use node_loss::*;
use trunkguard::model::{Disposition, EndReason, HangupSide, RecordingStatus};

/// Node b starts while node a carries three calls: b closes none of them (a start closes only
/// the node's own journaled calls). The calls end normally, and their CDRs are a's real ones.
#[test]
fn a_node_starting_leaves_another_nodes_calls_alone() {
    let Some(mut scene) = shared_scene("a_node_starting_leaves_another_nodes_calls_alone") else {
        return;
    };
    scene.add_node(TrunkLimits::default(), settings(), |c| c);
    let uas = scene.carrier_uas(3, 60);
    // Three calls on a, each hung up by the PBX 8 s after the answer.
    let pbx = scene.pbx_batch(PbxBatch {
        node: 0,
        name: "pbx-a",
        calls: 3,
        caller: TRUNK_NUMBER,
        callee: CALLEE,
        rate: 10,
        hold_ms: 8000,
    });
    wait_journaled_answered(&scene, 3);
    scene.add_node(TrunkLimits::default(), settings(), |c| c);
    // b's first sweep of lost nodes' calls runs two beats after its start: let it.
    std::thread::sleep(Duration::from_secs(3));
    scene.expect_exit_ok(pbx);
    scene.expect_exit_ok(uas);
    let answered = scene.ok(scene.ok(scene.sipps[pbx].counts()).first("200_Recv"));
    scene.ensure(answered == 3, || format!("{answered} of 3 calls answered"));
    let b_log = scene.nodes[1].gateway.log();
    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(
        cdrs.len() == 3
            && cdrs.iter().all(|c| {
                c.outcome.end_reason == EndReason::NormalClearing
                    && c.outcome.hangup_side == Some(HangupSide::Inside)
                    && c.outcome.disposition == Disposition::Answered
                    && c.outcome.talk_ms >= 7_000
                    && c.attempt.node.as_deref() == Some("gw-a")
            }),
        || format!("a's real CDRs expected:\n{}", summary(&cdrs)),
    );
    scene.ensure(!b_log.contains("call cut off mid-way"), || {
        format!("node b closed calls at its start:\n{b_log}")
    });
}

/// Node a killed with three calls up, the recordings folder shared: within node_timeout_secs +
/// a few seconds node b closes a's calls — CDRs `node_lost`, answered, recordings repaired,
/// marked incomplete and playable — and the PBX's and the carrier's SIPp each get one BYE per
/// call from b's addresses. b's API serves a's recording from the shared folder.
#[test]
fn a_killed_nodes_calls_are_closed_by_a_survivor_from_its_own_address() {
    let Some(mut scene) =
        shared_scene("a_killed_nodes_calls_are_closed_by_a_survivor_from_its_own_address")
    else {
        return;
    };
    let shared = scene.path().join("recordings");
    let (carrier, pbx) = calls_up_on_a_sharing_recordings(&mut scene, &shared, 3);
    // Audio in the files (their headers are made valid every second).
    std::thread::sleep(Duration::from_secs(2));

    let killed = Instant::now();
    scene.nodes[0].gateway.kill();
    scene.expect_exit_ok(pbx);
    let took = killed.elapsed();
    scene.expect_exit_ok(carrier);
    // node_timeout (3 s) + a beat + the PBX's 1 s after its 200 to the BYE + margin.
    scene.ensure(took < Duration::from_secs(3 + 1 + 1 + 5), || {
        format!(
            "the PBX's calls ended {:.1} s after the kill",
            took.as_secs_f64()
        )
    });
    let (b_inside, b_outside) = (scene.nodes[1].addrs.inside, scene.nodes[1].addrs.outside);
    one_bye_each_from(&scene, pbx, 3, b_inside);
    one_bye_each_from(&scene, carrier, 3, b_outside);

    let cdrs = scene.ok(scene.nodes[1].gateway.cdrs());
    scene.ensure(cdrs.len() == 3, || format!("CDRs:\n{}", summary(&cdrs)));
    for cdr in &cdrs {
        scene.ensure(
            cdr.outcome.end_reason == EndReason::NodeLost
                && cdr.outcome.disposition == Disposition::Answered
                && cdr.outcome.hangup_side == Some(HangupSide::Gateway)
                && cdr.attempt.node.as_deref() == Some("gw-a")
                && cdr.outcome.talk_ms >= 1_000,
            || format!("a node_lost CDR of a's call expected:\n{}", summary(&cdrs)),
        );
        let rec = cdr.recording.as_ref().expect("checked");
        let stored = rec.path.clone().unwrap_or_default();
        scene.ensure(
            rec.status == RecordingStatus::Incomplete && stored.starts_with("gw-a/"),
            || format!("an incomplete recording under gw-a/ expected: {rec:#?}"),
        );
        let file = shared.join(&stored);
        let bytes =
            std::fs::read(&file).unwrap_or_else(|e| scene.fail(format!("{}: {e}", file.display())));
        scene.ensure(
            rec.sha256.as_deref() == Some(sha256_hex(&bytes).as_str()),
            || format!("the repaired file's digest is on the CDR: {rec:#?}"),
        );
        scene.ensure(
            !PathBuf::from(format!("{}.part", file.display())).exists(),
            || format!("{} left as .part", file.display()),
        );
        let reader = hound::WavReader::open(&file)
            .unwrap_or_else(|e| scene.fail(format!("{}: not a WAV: {e}", file.display())));
        let secs = f64::from(reader.duration()) / f64::from(reader.spec().sample_rate);
        scene.ensure(reader.spec().channels == 2 && secs >= 1.0, || {
            format!(
                "{}: {secs:.2} s of audio, 2 channels expected",
                file.display()
            )
        });
        // b's API serves a's recording from the shared folder.
        let (status, _, body) = get_recording(&scene, 1, &cdr.attempt.id);
        scene.ensure(status == 200 && body == bytes, || {
            format!(
                "b's API answered {status} ({} bytes) for a's recording",
                body.len()
            )
        });
    }
    let b_log = scene.nodes[1].gateway.log();
    let closed = b_log.matches("call cut off mid-way").count();
    scene.ensure(closed == 3, || {
        format!("b closed {closed} calls, expected 3 (each once):\n{b_log}")
    });
    scene.ensure(journal_left(&scene) == 0, || {
        "journal rows left".to_string()
    });
    let r = scene.nodes[1].gateway.stop();
    scene.ok(r);
}

/// Recordings folders that are not shared: b's API answers 404 naming node a for a call a
/// recorded, and a's serves it. Then a is killed with a call up: b closes it (`node_lost`), its
/// recording marked incomplete under a's name without a digest (b cannot reach it); when a
/// starts again under its id it repairs that file where the CDR says, closes nothing twice.
#[test]
fn a_recording_on_another_nodes_disk_is_named_not_served() {
    let Some(mut scene) = shared_scene("a_recording_on_another_nodes_disk_is_named_not_served")
    else {
        return;
    };
    // Each node records in its own directory (the default, under its working directory).
    scene.add_node(TrunkLimits::default(), settings(), |c| c);
    scene.add_node(TrunkLimits::default(), settings(), |c| c);
    let carrier = carrier_with_audio(&mut scene, 2);
    // One call on a that ends normally.
    let local = SocketAddr::new(PBX_IP.into(), harness::free_port(PBX_IP, false));
    let inside = scene.nodes[0].addrs.inside;
    let short = scene.sipp(SippSpec {
        name: "pbx-a-short",
        scenario: Scenario::File("pbx_uac_capacity.xml"),
        local,
        remote: Some(inside),
        args: args(&[
            "-key",
            "caller",
            TRUNK_NUMBER,
            "-s",
            CALLEE,
            "-m",
            "1",
            "-d",
            "1500",
        ]),
        timeout_secs: 60,
    });
    scene.expect_exit_ok(short);
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        let cdrs = scene.ok(scene.nodes[1].gateway.cdrs());
        if let Some(c) = cdrs.into_iter().find(|c| c.recording.is_some()) {
            break c;
        }
        scene.ensure(Instant::now() < deadline, || {
            "no CDR of a's call".to_string()
        });
        std::thread::sleep(Duration::from_millis(200));
    };
    let (status, node, body) = get_recording(&scene, 1, &first.attempt.id);
    let text = String::from_utf8_lossy(&body).to_string();
    scene.ensure(
        status == 404 && node.as_deref() == Some("gw-a") && text.contains("gw-a"),
        || format!("b's API: {status} {node:?} {text}"),
    );
    let (status, _, _) = get_recording(&scene, 0, &first.attempt.id);
    scene.ensure(status == 200, || format!("a's API: {status}"));

    // A call up on a when it is killed.
    let pbx = pbx_until_bye(&mut scene, 0, "pbx-a", 1);
    wait_journaled_answered(&scene, 1);
    std::thread::sleep(Duration::from_secs(1));
    scene.nodes[0].gateway.kill();
    scene.expect_exit_ok(pbx);
    scene.expect_exit_ok(carrier);
    let cdrs = scene.ok(scene.nodes[1].gateway.cdrs());
    let lost = cdrs
        .iter()
        .find(|c| c.outcome.end_reason == EndReason::NodeLost)
        .unwrap_or_else(|| scene.fail(format!("no node_lost CDR:\n{}", summary(&cdrs))));
    let rec = lost.recording.clone().expect("a recording on the CDR");
    let stored = rec.path.clone().unwrap_or_default();
    scene.ensure(
        rec.status == RecordingStatus::Incomplete
            && rec.sha256.is_none()
            && stored.starts_with("gw-a/")
            && rec.note.as_deref().is_some_and(|n| n.contains("gw-a")),
        || format!("an incomplete recording named under gw-a, no digest: {rec:#?}"),
    );
    // a starts again: it repairs its own file where the CDR says, and closes nothing again.
    scene.restart_node(0);
    let a_dir = scene.path().join("gw-a");
    let root = a_dir.join(
        trunkguard::config::Config::from_toml(
            &std::fs::read_to_string(scene.nodes[0].gateway.config_path()).unwrap(),
        )
        .unwrap()
        .recording
        .dir,
    );
    let file = root.join(&stored);
    scene.ensure(file.exists(), || {
        format!("{} not repaired by a", file.display())
    });
    let a_log = scene.nodes[0].gateway.log();
    scene.ensure(!a_log.contains("call cut off mid-way"), || {
        format!("a closed a call again at its restart:\n{a_log}")
    });
    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(cdrs.len() == 2, || format!("CDRs:\n{}", summary(&cdrs)));
}

/// The safety net: node a killed with two calls up and its entry gone from Redis (as if its
/// keys expired before a survivor reclaimed it), so no reclaim hands it on. Node b, started
/// after, finds a's journaled calls in its sweep (a is not live) and closes them: CDRs
/// `node_lost`, one BYE per call from b.
#[test]
fn the_sweep_closes_calls_of_a_node_nobody_reclaimed() {
    let Some(mut scene) = shared_scene("the_sweep_closes_calls_of_a_node_nobody_reclaimed") else {
        return;
    };
    scene.add_node(TrunkLimits::default(), settings(), |c| c);
    let carrier = carrier_with_audio(&mut scene, 2);
    let pbx = pbx_until_bye(&mut scene, 0, "pbx-a", 2);
    wait_journaled_answered(&scene, 2);
    scene.nodes[0].gateway.kill();
    let mut conn = scene.redis();
    let _: i64 = redis::cmd("ZREM")
        .arg(format!("{{{}}}:nodes", scene.prefix))
        .arg("gw-a")
        .query(&mut conn)
        .unwrap();
    // a's rows must be older than node_timeout for the sweep to take them.
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    scene.add_node(TrunkLimits::default(), settings(), |c| c);
    scene.expect_exit_ok(pbx);
    scene.expect_exit_ok(carrier);
    scene.ensure(started.elapsed() < Duration::from_secs(20), || {
        format!(
            "closed {:.1} s after b started",
            started.elapsed().as_secs_f64()
        )
    });
    one_bye_each_from(&scene, pbx, 2, scene.nodes[1].addrs.inside);
    let b_log = scene.nodes[1].gateway.log();
    scene.ensure(!b_log.contains("its leases reclaimed"), || {
        format!("a was reclaimed, not swept:\n{b_log}")
    });
    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(
        cdrs.len() == 2
            && cdrs.iter().all(|c| {
                c.outcome.end_reason == EndReason::NodeLost
                    && c.outcome.disposition == Disposition::Answered
            }),
        || format!("two node_lost CDRs expected:\n{}", summary(&cdrs)),
    );
}

/// Node a killed with three calls up and started again under its id just as node b finds it
/// lost: whoever gets each call first closes it — once. Each peer gets one BYE per call, every
/// call has one CDR (`node_lost` or `gateway_restart`), the journal is empty.
#[test]
fn a_node_restarting_while_a_survivor_closes_its_calls_closes_each_once() {
    let Some(mut scene) =
        shared_scene("a_node_restarting_while_a_survivor_closes_its_calls_closes_each_once")
    else {
        return;
    };
    let shared = scene.path().join("recordings");
    let (carrier, pbx) = calls_up_on_a_sharing_recordings(&mut scene, &shared, 3);
    scene.nodes[0].gateway.kill();
    std::thread::sleep(Duration::from_secs(3));
    scene.restart_node(0);
    scene.expect_exit_ok(pbx);
    scene.expect_exit_ok(carrier);
    for sipp in [pbx, carrier] {
        let got = byes(&scene, sipp);
        scene.ensure(
            got.len() == 3 && got.values().all(|(branches, _)| branches.len() == 1),
            || format!("one BYE per call expected: {got:#?}"),
        );
    }
    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(
        cdrs.len() == 3
            && cdrs.iter().all(|c| {
                matches!(
                    c.outcome.end_reason,
                    EndReason::NodeLost | EndReason::GatewayRestart
                ) && c.outcome.disposition == Disposition::Answered
                    && c.recording.as_ref().is_some_and(|r| {
                        r.status == RecordingStatus::Incomplete && r.sha256.is_some()
                    })
            }),
        || format!("three calls closed once each:\n{}", summary(&cdrs)),
    );
    scene.ensure(journal_left(&scene) == 0, || {
        "journal rows left".to_string()
    });
}

/// Redis away for both nodes for longer than node_timeout_secs while node b carries three
/// calls: when it is back, whichever node beats first reclaims the other, which rejoins within
/// a beat. Nobody closes b's calls: they end normally (a node is closed only after staying
/// silent while its survivor is live).
#[test]
fn redis_away_for_everyone_closes_nobodys_calls() {
    let Some(mut scene) = shared_scene("redis_away_for_everyone_closes_nobodys_calls") else {
        return;
    };
    let proxy = RedisProxy::start();
    let via_proxy = ClusterSettings {
        redis_url: Some(proxy.url.clone()),
        ..settings()
    };
    scene.add_node(TrunkLimits::default(), via_proxy.clone(), |c| c);
    scene.add_node(TrunkLimits::default(), via_proxy, |c| c);
    let uas = scene.carrier_uas(3, 60);
    let pbx = scene.pbx_batch(PbxBatch {
        node: 1,
        name: "pbx-b",
        calls: 3,
        caller: TRUNK_NUMBER,
        callee: CALLEE,
        rate: 10,
        hold_ms: 14000,
    });
    wait_journaled_answered_without_recording(&scene, 3);
    proxy.cut();
    std::thread::sleep(Duration::from_secs(3 + 3));
    proxy.restore();
    scene.expect_exit_ok(pbx);
    scene.expect_exit_ok(uas);
    let logs: Vec<String> = scene.nodes.iter().map(|n| n.gateway.log()).collect();
    let cdrs = scene.stop_and_read_cdrs();
    scene.ensure(
        cdrs.len() == 3
            && cdrs.iter().all(|c| {
                c.outcome.end_reason == EndReason::NormalClearing
                    && c.outcome.hangup_side == Some(HangupSide::Inside)
            }),
        || format!("b's calls ended by the PBX expected:\n{}", summary(&cdrs)),
    );
    scene.ensure(
        logs.iter().all(|l| !l.contains("call cut off mid-way")),
        || format!("a node closed calls:\n{}", logs.join("\n----\n")),
    );
}
