//! Scanners and floods against the real `trunkguard` binary on loopback:
//! - SIPVicious (`svmap`, `svwar`) from an address that is no configured peer learns nothing on
//!   either interface; the same scan against a gateway set to answer unknown sources
//!   (`unknown_sources = "reject"`) does find it, so the scan would see a gateway that talked;
//! - a bounded SIPp OPTIONS flood from a configured PBX and one from an unknown address get both
//!   sources banned, while the other PBX's calls all complete during the flood.
//!
//! Every process is bounded (SIPp `-timeout`, `timeout` around SIPVicious, kill on drop).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[path = "sipp/harness.rs"]
mod harness;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};

use harness::{args, Scenario, Scene, SippSpec, TrunkLimits, CARRIER_IP, PBX_IP, TRUNK_NUMBER};
use trunkguard::model::Disposition;

const CALLEE: &str = "8613800138000";
/// A second PBX of the trunk, the one that floods.
const FLOODING_PBX: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 13);
/// No peer at all.
const STRANGER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 14);
const SCANNER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 50);

/// Runs a SIPVicious tool (bounded by `timeout`), returns what it printed.
fn sipvicious(tool: &str, a: &[String]) -> String {
    let out = Command::new("timeout")
        .arg("60")
        .arg(tool)
        .args(a)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool} (package sipvicious): {e}"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn svmap(target: SocketAddr) -> String {
    sipvicious(
        "svmap",
        &args(&[
            "-b",
            &SCANNER.to_string(),
            "-p",
            &target.port().to_string(),
            &target.ip().to_string(),
        ]),
    )
}

#[test]
fn sipvicious_learns_nothing_from_either_interface() {
    let scene = Scene::start(TrunkLimits::default());
    for target in [scene.addrs.inside, scene.addrs.outside] {
        let out = svmap(target);
        scene.ensure(
            out.contains("found nothing") && !out.contains(&target.ip().to_string()),
            || format!("svmap against {target} found something:\n{out}"),
        );
        let out = sipvicious(
            "svwar",
            &args(&[
                "-b",
                &SCANNER.to_string(),
                "-e",
                "100-120",
                &format!("udp://{target}"),
            ]),
        );
        // svwar's first probe gets no answer: it gives up without a single extension.
        scene.ensure(
            out.contains("timed out") && out.contains("found nothing"),
            || format!("svwar against {target} got an answer:\n{out}"),
        );
    }
}

/// The control: the same scan sees a gateway that answers unknown sources.
#[test]
fn sipvicious_finds_a_gateway_that_answers_unknown_sources() {
    let scene = Scene::start_edited(TrunkLimits::default(), |_, config| {
        config.replace("unknown_sources = \"drop\"", "unknown_sources = \"reject\"")
    });
    let target = scene.addrs.inside;
    let out = svmap(target);
    scene.ensure(
        out.contains(&format!("{}:{}", target.ip(), target.port())),
        || format!("svmap did not report the answering gateway at {target}:\n{out}"),
    );
    // Found, but not named: no Server header by default (`[sip] server_header`).
    scene.ensure(!out.to_lowercase().contains("trunkguard"), || {
        format!("svmap learnt what the gateway is:\n{out}")
    });
}

#[test]
fn flooding_sources_are_banned_while_the_other_pbx_keeps_calling() {
    const CALLS: u64 = 20;
    let pbxs = format!("pbx = [\"{PBX_IP}/32\", \"{FLOODING_PBX}/32\"]");
    let mut scene = Scene::start_edited(TrunkLimits::default(), |_, config| {
        config.replace(&format!("pbx = [\"{PBX_IP}/32\"]"), &pbxs)
    });
    let inside = scene.addrs.inside;
    let carrier = scene.addrs.carrier;
    let uas = scene.sipp(SippSpec {
        name: "carrier-uas",
        scenario: Scenario::Builtin("uas"),
        local: carrier,
        remote: None,
        args: args(&["-m", &CALLS.to_string()]),
        timeout_secs: 60,
    });
    // The trunk allows 50 calls/s: a peer's budget is 50 × 2 s × 4 = 400 requests per 2 s.
    // 1,000 OPTIONS/s for 3 s is far over it; the stranger's budget is 30.
    let flood = |name: &'static str, ip: Ipv4Addr, rate: &str, count: &str| SippSpec {
        name,
        scenario: Scenario::File("options_flood.xml"),
        local: SocketAddr::new(ip.into(), harness::free_port(ip, false)),
        remote: Some(inside),
        args: args(&["-r", rate, "-m", count, "-l", "100000"]),
        timeout_secs: 30,
    };
    let pbx_flood = scene.sipp(flood("pbx-flood", FLOODING_PBX, "1000", "3000"));
    let stranger_flood = scene.sipp(flood("stranger-flood", STRANGER, "500", "1500"));
    let uac = scene.sipp(SippSpec {
        name: "pbx-uac",
        scenario: Scenario::File("pbx_uac.xml"),
        local: SocketAddr::new(PBX_IP.into(), harness::free_port(PBX_IP, false)),
        remote: Some(inside),
        args: args(&[
            "-key",
            "caller",
            TRUNK_NUMBER,
            "-s",
            CALLEE,
            "-m",
            &CALLS.to_string(),
            "-r",
            "5",
            "-d",
            "1000",
        ]),
        timeout_secs: 60,
    });

    scene.expect_exit_ok(uac);
    let stats = scene.ok(scene.sipps[uac].stats());
    let ok = scene.ok(stats.get("SuccessfulCall"));
    let failed = scene.ok(stats.get("FailedCall"));
    scene.ensure(ok == CALLS && failed == 0, || {
        format!("the calling PBX: {ok} successful, {failed} failed of {CALLS} during the flood")
    });
    scene.expect_exit_ok(uas);
    for f in [pbx_flood, stranger_flood] {
        // A flooder's "calls" are single sends: it ends by itself.
        let r = scene.sipps[f].wait();
        scene.ensure(r.is_ok(), || format!("flooder {f}: {r:?}"));
    }

    let log = scene.gateway.log_tail(100_000);
    let banned = |ip: Ipv4Addr| {
        log.lines()
            .any(|l| l.contains("banned") && l.contains(&format!("source={ip}")))
    };
    scene.ensure(banned(FLOODING_PBX), || {
        format!("the flooding PBX {FLOODING_PBX} was not banned")
    });
    scene.ensure(banned(STRANGER), || {
        format!("the flooding stranger {STRANGER} was not banned")
    });
    scene.ensure(!banned(PBX_IP) && !banned(CARRIER_IP), || {
        "a well-behaved peer was banned".to_string()
    });

    let cdrs = scene.stop_and_read_cdrs();
    let answered = cdrs
        .iter()
        .filter(|c| c.outcome.disposition == Disposition::Answered)
        .count() as u64;
    scene.ensure(answered == CALLS && cdrs.len() as u64 == CALLS, || {
        format!(
            "{} CDRs, {answered} answered; expected {CALLS} answered",
            cdrs.len()
        )
    });
}
