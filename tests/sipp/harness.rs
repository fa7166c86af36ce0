//! Test harness for the SIPp interop tests: the real `trunkguard` binary and SIPp processes on
//! loopback, each test with its own tempdir and ports, every process bounded in time and killed
//! when the harness is dropped (also on panic).
//!
//! Roles and addresses (ports are picked free per test, so tests run in parallel):
//! - SIPp as the PBX on 127.0.0.10, SIPp as the carrier on 127.0.0.11;
//! - the gateway's inside interface on 127.0.0.20, its outside interface on 127.0.0.21.
//!
//! Several test binaries include this file and each uses a part of it.
//!
//! This file holds the addresses, the process helpers and `Scene` (one test's world); the parts
//! stand in `harness/`: `ports.rs` (free ports, a test's addresses), `config.rs` (the gateway's
//! config), `gateway.rs` (the gateway process), `sipp.rs` (a SIPp process and its statistics).
//! Each is declared with a `#[path]` relative to this file, so that every test binary that
//! includes it (`#[path = "sipp/harness.rs"] mod harness;`) finds them.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use trunkguard::model::Cdr;

#[path = "harness/config.rs"]
mod config;
#[path = "harness/gateway.rs"]
mod gateway;
#[path = "harness/ports.rs"]
mod ports;
#[path = "harness/sipp.rs"]
mod sipp;

use config::MEDIA_SECTION;
// Each test binary that includes the harness uses a part of it: a re-export one of them leaves
// unused is not a mistake.
#[allow(unused_imports)]
pub use config::{config_toml, TrunkLimits};
#[allow(unused_imports)]
pub use gateway::Gateway;
#[allow(unused_imports)]
pub use ports::{free_port, local, pbx_local, Addrs};
#[allow(unused_imports)]
pub use sipp::{args, sipp_dir, Counts, Scenario, Sipp, SippSpec, Stats};

pub const PBX_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 10);
pub const CARRIER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
pub const INSIDE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 20);
pub const OUTSIDE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 21);

/// The trunk's numbers: the only caller IDs allowed out, the only numbers reachable in.
pub const TRUNK_NUMBER: &str = "+861012345678";
pub const OTHER_TRUNK_NUMBER: &str = "+861012345679";

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sipp");

/// Last `lines` lines of a file, or a note that it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// Poll `child` until it exits or `limit` passes; then kill it. `Ok` carries the exit status,
/// `Err` says the limit was hit.
fn wait_bounded(child: &mut Child, limit: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("still running after {limit:?}: killed"));
            }
            Ok(None) => sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("cannot wait: {e}")),
        }
    }
}

fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Every CDR has its own id, and the CDRs name exactly the calls in `inside_call_ids` (the
/// PBX's Call-IDs): one CDR per call, none lost, none twice.
pub fn assert_one_cdr_per_call(cdrs: &[Cdr], inside_call_ids: &HashSet<String>) {
    let ids: HashSet<&str> = cdrs.iter().map(|c| c.attempt.id.as_str()).collect();
    assert_eq!(ids.len(), cdrs.len(), "one CDR per id: {cdrs:#?}");
    let inside: HashSet<String> = cdrs
        .iter()
        .filter_map(|c| c.attempt.inside_call_id.clone())
        .collect();
    assert_eq!(&inside, inside_call_ids, "one CDR per call");
}

/// One test's world: a tempdir, the gateway and the SIPp instances. Failures go through
/// [`Scene::fail`] so that the message carries the gateway log and the SIPp screens. Dropping
/// it kills whatever still runs; on panic the tempdir is kept and its path printed.
pub struct Scene {
    // Field order is drop order: processes first, then the directory.
    pub sipps: Vec<Sipp>,
    pub gateway: Gateway,
    pub addrs: Addrs,
    dir: Option<tempfile::TempDir>,
}

impl Scene {
    pub fn start(limits: TrunkLimits) -> Scene {
        Scene::start_with(limits, |_| String::new())
    }

    /// Like [`Scene::start`], with more TOML appended to the gateway's config (further tables
    /// such as `[media]` or `[recording]`); `extra` gets the test's directory.
    pub fn start_with(limits: TrunkLimits, extra: impl FnOnce(&Path) -> String) -> Scene {
        Scene::start_edited(limits, |dir, mut config| {
            let extra = extra(dir);
            if extra.contains("[media]\n") {
                // One [media] table: the test's keys join the port range.
                config = config.replace(MEDIA_SECTION, "");
                config.push_str(&extra.replacen("[media]\n", MEDIA_SECTION, 1));
            } else {
                config.push_str(&extra);
            }
            config
        })
    }

    /// Like [`Scene::start`], the config text passed through `edit` (with the test's directory)
    /// before the gateway starts.
    pub fn start_edited(limits: TrunkLimits, edit: impl FnOnce(&Path, String) -> String) -> Scene {
        let dir = tempfile::Builder::new()
            .prefix("trunkguard-sipp-")
            .tempdir()
            .expect("create a tempdir");
        let addrs = Addrs::pick();
        let db = dir.path().join("cdrs.db");
        let config = edit(dir.path(), config_toml(&addrs, &db, limits));
        let gateway = Gateway::start(dir.path(), &config);
        Scene {
            sipps: Vec::new(),
            gateway,
            addrs,
            dir: Some(dir),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("tempdir").path()
    }

    /// Start a SIPp instance; returns its index in `sipps`.
    pub fn sipp(&mut self, spec: SippSpec<'_>) -> usize {
        let sipp = Sipp::spawn(self.path(), spec);
        self.sipps.push(sipp);
        self.sipps.len() - 1
    }

    /// Everything a reader needs to see why a test failed.
    pub fn diagnostics(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "--- gateway log (last 40 lines) ---\n{}",
            self.gateway.log_tail(40)
        );
        for sipp in &self.sipps {
            let _ = writeln!(
                s,
                "--- sipp {} screen (last 30 lines) ---\n{}\n--- sipp {} errors (last 20 lines) ---\n{}",
                sipp.name,
                sipp.screen_tail(30),
                sipp.name,
                sipp.errors_tail(20)
            );
        }
        s
    }

    pub fn fail(&self, what: impl std::fmt::Display) -> ! {
        panic!("{what}\n{}", self.diagnostics());
    }

    pub fn ensure(&self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.fail(what());
        }
    }

    /// Unwrap a harness result or fail with diagnostics.
    pub fn ok<T>(&self, r: Result<T, String>) -> T {
        r.unwrap_or_else(|e| self.fail(e))
    }

    /// The first INVITE SIPp `i` received (it must run with `-trace_msg`); fails the test when
    /// there is none.
    pub fn received_invite(&self, i: usize) -> String {
        let received = self.ok(self.sipps[i].received_messages());
        received
            .into_iter()
            .find(|m| m.starts_with("INVITE "))
            .unwrap_or_else(|| self.fail(format!("sipp {} received no INVITE", self.sipps[i].name)))
    }

    /// Wait for SIPp `i` to end by itself and require exit code 0.
    pub fn expect_exit_ok(&mut self, i: usize) {
        let r = self.sipps[i].wait();
        match r {
            Ok(s) if s.success() => {}
            Ok(s) => {
                let name = self.sipps[i].name.clone();
                self.fail(format!("sipp {name} exited with {s}, expected 0"))
            }
            Err(e) => self.fail(e),
        }
    }

    /// SIGTERM the gateway, wait for it, then read every CDR.
    pub fn stop_and_read_cdrs(&mut self) -> Vec<Cdr> {
        let r = self.gateway.stop();
        self.ok(r);
        let r = self.gateway.cdrs();
        self.ok(r)
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        // Kill processes before the directory goes.
        self.sipps.clear();
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("kept the test directory for inspection: {}", kept.display());
            }
        }
    }
}
