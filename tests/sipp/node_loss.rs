//! What the node-loss tests (`tests/sipp_node_loss.rs`) share: the SIPp peers (a carrier
//! streaming a tone, a PBX keeping its calls until a BYE), waits on the shared database's
//! journal, the BYEs a SIPp instance received, and a node's API (a token from the CLI, the
//! address from the log).
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::cluster::{redis_here, ClusterScene, ClusterSettings};
pub use super::harness::args;
use super::harness::{self, Scenario, SippSpec, TrunkLimits, CARRIER_IP, PBX_IP, TRUNK_NUMBER};
use sha2::{Digest, Sha256};
use trunkguard::model::Cdr;

pub const CALLEE: &str = "8613800138000";

pub fn settings() -> ClusterSettings {
    ClusterSettings {
        heartbeat_secs: 1,
        node_timeout_secs: 3,
        ..ClusterSettings::default()
    }
}

/// Redis is needed; without it the test is skipped (failed under CI=true).
pub fn ready(test: &str) -> bool {
    redis_here(test)
}

/// The nodes must share one PostgreSQL database; without a server the scene gives each its own
/// SQLite file and the test is skipped (under CI=true the scene fails before).
pub fn shared_db(scene: &ClusterScene, test: &str) -> bool {
    if scene.db.is_none() {
        eprintln!("{test}: skipped: the nodes need one shared PostgreSQL database");
        return false;
    }
    true
}

/// An empty scene whose nodes will share one PostgreSQL database and Redis, or `None` (the
/// test skipped, with a message) when this machine has neither (under CI=true: a failure).
pub fn shared_scene(test: &str) -> Option<ClusterScene> {
    if !ready(test) {
        return None;
    }
    let scene = ClusterScene::empty();
    shared_db(&scene, test).then_some(scene)
}

/// Two nodes recording into `shared`, and `calls` calls answered on node a, each up until the
/// far end's BYE: returns the carrier's and the PBX's SIPp.
pub fn calls_up_on_a_sharing_recordings(
    scene: &mut ClusterScene,
    shared: &Path,
    calls: u32,
) -> (usize, usize) {
    let edit = recording_in(shared);
    scene.add_node(TrunkLimits::default(), settings(), |c| edit(0, c));
    scene.add_node(TrunkLimits::default(), settings(), |c| edit(1, c));
    let carrier = carrier_with_audio(scene, calls);
    let pbx = pbx_until_bye(scene, 0, "pbx-a", calls);
    wait_journaled_answered(scene, calls as usize);
    (carrier, pbx)
}

/// The config with `[recording] dir` set to `dir`.
pub fn recording_in(dir: &Path) -> impl Fn(usize, String) -> String {
    let dir = dir.to_path_buf();
    move |_, config| format!("{config}\n[recording]\ndir = \"{}\"\n", dir.display())
}

/// One second of a 1 kHz tone as raw PCMU (what SIPp's RTPSTREAM loops).
pub fn tone() -> Vec<u8> {
    (0..8000)
        .map(|i| {
            let t = f64::from(i) / 8000.0;
            trunkguard::recording::g711::encode_ulaw(
                (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16,
            )
        })
        .collect()
}

/// The carrier: answers `calls` calls, streams a tone over RTP once answered, waits for a BYE.
pub fn carrier_with_audio(scene: &mut ClusterScene, calls: u32) -> usize {
    let dir = harness::sipp_dir(scene.path(), "carrier-uas");
    std::fs::write(dir.join("carrier.g711"), tone()).expect("write the carrier's audio");
    let local = scene.carrier;
    let rtp = harness::free_port(CARRIER_IP, false).to_string();
    scene.sipp(SippSpec {
        name: "carrier-uas",
        scenario: Scenario::File("carrier_uas_media.xml"),
        local,
        remote: None,
        args: args(&[
            "-mi",
            &CARRIER_IP.to_string(),
            "-mp",
            &rtp,
            "-rtp_payload",
            "0",
            "-key",
            "codec_pt",
            "0",
            "-key",
            "codec_name",
            "PCMU",
            "-key",
            "ring_ms",
            "0",
            "-m",
            &calls.to_string(),
            "-trace_msg",
        ]),
        timeout_secs: 90,
    })
}

/// The PBX: `calls` calls to node `node`, each kept until a BYE comes (and answered).
pub fn pbx_until_bye(scene: &mut ClusterScene, node: usize, name: &str, calls: u32) -> usize {
    let local = SocketAddr::new(PBX_IP.into(), harness::free_port(PBX_IP, false));
    let rtp = harness::free_port(PBX_IP, false).to_string();
    let inside = scene.nodes[node].addrs.inside;
    scene.sipp(SippSpec {
        name,
        scenario: Scenario::File("pbx_uac_until_bye.xml"),
        local,
        remote: Some(inside),
        args: args(&[
            "-key",
            "caller",
            TRUNK_NUMBER,
            "-s",
            CALLEE,
            "-m",
            &calls.to_string(),
            "-l",
            &calls.to_string(),
            "-r",
            "10",
            "-mi",
            &PBX_IP.to_string(),
            "-mp",
            &rtp,
            "-trace_msg",
        ]),
        timeout_secs: 90,
    })
}

/// A tokio runtime for the store reads.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Waits (bounded) until `n` calls are journaled answered with their recording open.
pub fn wait_journaled_answered(scene: &ClusterScene, n: usize) {
    wait_journaled(scene, n, true);
}

/// Waits (bounded) until `n` calls are journaled answered (recorded or not).
pub fn wait_journaled_answered_without_recording(scene: &ClusterScene, n: usize) {
    wait_journaled(scene, n, false);
}

pub fn wait_journaled(scene: &ClusterScene, n: usize, recorded: bool) {
    let url = scene.db.as_ref().expect("a shared database").url();
    let rt = rt();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = 0;
    while Instant::now() < deadline {
        seen = rt.block_on(async {
            let store = trunkguard::store::Store::connect(&url)
                .await
                .expect("connect");
            let calls = store.journaled_calls().await.expect("journal");
            store.close().await;
            calls
                .into_iter()
                .flatten()
                .filter(|c| {
                    (!recorded || c.recording_part.is_some())
                        && c.dialogs
                            .as_deref()
                            .is_some_and(|d| d.contains(r#""state":"confirmed""#))
                })
                .count()
        });
        if seen >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    scene.fail(format!(
        "{seen} of {n} calls journaled answered (recorded: {recorded})"
    ));
}

/// The journal's rows left (none once every call is closed).
pub fn journal_left(scene: &ClusterScene) -> usize {
    let url = scene.db.as_ref().expect("a shared database").url();
    rt().block_on(async {
        let store = trunkguard::store::Store::connect(&url)
            .await
            .expect("connect");
        let n = store.journaled_calls().await.expect("journal").len();
        store.close().await;
        n
    })
}

/// A header's value in a SIP message (the first of that name).
pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.trim().split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The BYEs a SIPp instance received: per Call-ID, the distinct Via branches (a retransmission
/// repeats one) and the Via values.
pub fn byes(scene: &ClusterScene, sipp: usize) -> HashMap<String, (HashSet<String>, Vec<String>)> {
    let msgs = scene.ok(scene.sipps[sipp].received_messages());
    let mut out: HashMap<String, (HashSet<String>, Vec<String>)> = HashMap::new();
    for m in msgs.iter().filter(|m| m.trim_start().starts_with("BYE ")) {
        let call_id = header(m, "Call-ID").unwrap_or_default().to_string();
        let via = header(m, "Via").unwrap_or_default().to_string();
        let branch = via
            .split(';')
            .find_map(|p| p.trim().strip_prefix("branch="))
            .unwrap_or_default()
            .to_string();
        let entry = out.entry(call_id).or_default();
        entry.0.insert(branch);
        entry.1.push(via);
    }
    out
}

/// Each of `calls` calls got exactly one BYE (retransmissions aside), every one from `from`.
pub fn one_bye_each_from(scene: &ClusterScene, sipp: usize, calls: usize, from: SocketAddr) {
    let got = byes(scene, sipp);
    let name = scene.sipps[sipp].name.clone();
    scene.ensure(got.len() == calls, || {
        format!(
            "{name}: BYEs for {} calls, expected {calls}: {got:#?}",
            got.len()
        )
    });
    for (call_id, (branches, vias)) in &got {
        scene.ensure(branches.len() == 1, || {
            format!(
                "{name}: call {call_id} got {} BYEs: {vias:#?}",
                branches.len()
            )
        });
        scene.ensure(vias.iter().all(|v| v.contains(&from.to_string())), || {
            format!("{name}: call {call_id}'s BYE is not from {from}: {vias:#?}")
        });
    }
}

/// `trunkguard token create` against node `i`'s config: a compliance token.
pub fn token(scene: &ClusterScene, i: usize) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_trunkguard"))
        .arg("--config")
        .arg(scene.nodes[i].gateway.config_path())
        .args(["token", "create", "--role", "compliance", "--name"])
        .arg(format!("officer-{i}-{:x}", rand::random::<u32>()))
        .stdin(Stdio::null())
        .output()
        .expect("run trunkguard token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("tg_"))
        .expect("a token printed")
        .to_string()
}

/// Node `i`'s HTTP API address, from its log.
pub fn api_addr(scene: &ClusterScene, i: usize) -> String {
    scene.nodes[i]
        .gateway
        .log()
        .lines()
        .find(|l| l.contains("http api listening"))
        .and_then(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .expect("the API's address in the log")
        .to_string()
}

/// GET a call's recording from node `i`'s API: status, `X-Recording-Node`, body.
pub fn get_recording(scene: &ClusterScene, i: usize, id: &str) -> (u16, Option<String>, Vec<u8>) {
    let (addr, token) = (api_addr(scene, i), token(scene, i));
    rt().block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let resp = client
            .get(format!("http://{addr}/api/v1/calls/{id}/recording"))
            .bearer_auth(token)
            .send()
            .await
            .expect("the API answers");
        let status = resp.status().as_u16();
        let node = resp
            .headers()
            .get("x-recording-node")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (
            status,
            node,
            resp.bytes().await.unwrap_or_default().to_vec(),
        )
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

pub fn summary(cdrs: &[Cdr]) -> String {
    cdrs.iter()
        .map(|c| {
            format!(
                "{} node={:?} {} {} {:?}",
                c.attempt.id,
                c.attempt.node,
                c.outcome.disposition,
                c.outcome.end_reason,
                c.recording
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
